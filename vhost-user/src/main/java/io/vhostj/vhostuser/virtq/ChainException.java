package io.vhostj.vhostuser.virtq;

/** A descriptor chain that breaks the rules of virtio 2.7.5: the request cannot be served. */
public final class ChainException extends Exception {
    public ChainException(String message) {
        super(message, null, false, false); // per bad request: no stack trace to fill
    }
}
