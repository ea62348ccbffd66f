package io.vhostj.fs;

/**
 * What the FUSE session has agreed with the guest's driver (FUSE_INIT), shared by every queue
 * of the device. Reset with the device.
 */
final class FsSession {
    private volatile int minor;
    private volatile boolean submounts;
    private volatile boolean writeback;
    private volatile boolean posixAcl;

    /** Whether submounts are announced (--announce-submounts, and the driver has FUSE_SUBMOUNTS). */
    boolean submounts() {
        return submounts;
    }

    void submounts(boolean value) {
        submounts = value;
    }

    /** Whether FUSE_WRITEBACK_CACHE was agreed (--writeback, and the driver offered it). */
    boolean writeback() {
        return writeback;
    }

    /**
     * Whether FUSE_POSIX_ACL was agreed, with FUSE_DONT_MASK and FUSE_SETXATTR_EXT (--posix-acl,
     * and the driver offered all three): creations carry the guest's umask for us to apply, and
     * SETXATTR has its 16-byte argument.
     */
    boolean posixAcl() {
        return posixAcl;
    }

    void agreed(boolean writeback, boolean posixAcl) {
        this.writeback = writeback;
        this.posixAcl = posixAcl;
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
        writeback = false;
        posixAcl = false;
    }
}
