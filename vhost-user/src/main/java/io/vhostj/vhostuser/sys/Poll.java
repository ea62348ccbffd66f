package io.vhostj.vhostuser.sys;

/** poll(2) on one or two descriptors: a queue worker parks on its kick eventfd (and its I/O ring). */
public final class Poll {
    static final short POLLIN = 0x1;
    static final short POLLERR = 0x8;
    static final short POLLHUP = 0x10;
    static final short POLLNVAL = 0x20;

    private Poll() {
    }

    /**
     * True when {@code fd} is readable (or hung up / in error, which a read will report) within
     * {@code timeoutMs}; false on timeout or EINTR.
     */
    public static boolean readable(int fd, int timeoutMs) throws NativeException {
        return ready(fd, -1, timeoutMs) != 0;
    }

    /**
     * Waits up to {@code timeoutMs} for {@code fd} or {@code other} (-1: none) to be readable (or
     * hung up / in error). Returns which: bit 0 {@code fd}, bit 1 {@code other}; 0 on timeout or EINTR.
     */
    public static int ready(int fd, int other, int timeoutMs) throws NativeException {
        long pfd = Native.scratch() + 512;
        Native.putInt(pfd, fd);
        Native.putShort(pfd + 4, POLLIN);
        Native.putShort(pfd + 6, (short) 0);
        Native.putInt(pfd + 8, other);
        Native.putShort(pfd + 12, POLLIN);
        Native.putShort(pfd + 14, (short) 0);
        int rc = Native.LIBC.poll(pfd, other < 0 ? 1 : 2, timeoutMs);
        if (rc < 0) {
            int errno = Native.errno();
            if (errno == Errno.EINTR) {
                return 0;
            }
            throw new NativeException("poll", errno);
        }
        if (rc == 0) {
            return 0;
        }
        short first = Native.getShort(pfd + 6);
        short second = other < 0 ? 0 : Native.getShort(pfd + 14);
        if (((first | second) & POLLNVAL) != 0) {
            throw new NativeException("poll", Errno.EBADF);
        }
        return (first != 0 ? 1 : 0) | (second != 0 ? 2 : 0);
    }
}
