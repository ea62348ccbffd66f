package io.vhostj.vhostuser.protocol;

/**
 * The peer broke the vhost-user protocol (bad header, wrong payload size, wrong fd count,
 * invalid values). The connection cannot be trusted any further: close it and wait for the next.
 */
public final class VhostUserProtocolException extends Exception {
    public VhostUserProtocolException(String message) {
        super(message);
    }

    public VhostUserProtocolException(String message, Throwable cause) {
        super(message, cause);
    }
}
