package io.vhostj.devmapper;

/** A thin-pool operation that cannot be done as asked (no such device, pool in use, full, corrupt ...). */
public class PoolException extends Exception {
    public PoolException(String message) {
        super(message);
    }

    public PoolException(String message, Throwable cause) {
        super(message, cause);
    }
}
