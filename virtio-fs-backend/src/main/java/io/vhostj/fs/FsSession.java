package io.vhostj.fs;

/**
 * What the FUSE session has agreed with the guest's driver (FUSE_INIT), shared by every queue
 * of the device. Reset with the device.
 */
final class FsSession {
    private volatile int minor;
    private volatile boolean submounts;

    /** Whether submounts are announced (--announce-submounts, and the driver has FUSE_SUBMOUNTS). */
    boolean submounts() {
        return submounts;
    }

    void submounts(boolean value) {
        submounts = value;
    }

    /** The negotiated minor version, or 0 before INIT. */
    int minor() {
        return minor;
    }

    boolean initialized() {
        return minor != 0;
    }

    void initialized(int minor) {
        this.minor = minor;
    }

    void reset() {
        minor = 0;
        submounts = false;
    }
}
