package io.vhostj.vhostuser.memory;

/** An address the guest or frontend gave that does not lie inside mapped guest memory. */
public final class GuestMemoryException extends Exception {
    public GuestMemoryException(String message) {
        super(message, null, false, false); // thrown per bad request: no stack trace to fill
    }
}
