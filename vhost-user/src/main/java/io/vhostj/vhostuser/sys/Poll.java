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
        long pfd = Native.scratch() + 512;
        Native.putInt(pfd, fd);
        Native.putShort(pfd + 4, POLLIN);
        Native.putShort(pfd + 6, (short) 0);
        int rc = Native.LIBC.poll(pfd, 1, timeoutMs);
        if (rc < 0) {
            int errno = Native.errno();
            if (errno == Errno.EINTR) {
                return false;
            }
            throw new NativeException("poll", errno);
        }
        if (rc == 0) {
            return false;
        }
        short revents = Native.getShort(pfd + 6);
        if ((revents & POLLNVAL) != 0) {
            throw new NativeException("poll", Errno.EBADF);
        }
        return true;
    }

    /**
     * True when {@code fd} or {@code other} is readable (or hung up / in error) within
     * {@code timeoutMs}; false on timeout or EINTR.
     */
    public static boolean eitherReadable(int fd, int other, int timeoutMs) throws NativeException {
        long pfd = Native.scratch() + 512;
        Native.putInt(pfd, fd);
        Native.putShort(pfd + 4, POLLIN);
        Native.putShort(pfd + 6, (short) 0);
        Native.putInt(pfd + 8, other);
        Native.putShort(pfd + 12, POLLIN);
        Native.putShort(pfd + 14, (short) 0);
        int rc = Native.LIBC.poll(pfd, 2, timeoutMs);
        if (rc < 0) {
            int errno = Native.errno();
            if (errno == Errno.EINTR) {
                return false;
            }
            throw new NativeException("poll", errno);
        }
        if (rc == 0) {
            return false;
        }
        if (((Native.getShort(pfd + 6) | Native.getShort(pfd + 14)) & POLLNVAL) != 0) {
            throw new NativeException("poll", Errno.EBADF);
        }
        return true;
    }
}
