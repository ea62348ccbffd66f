package io.vhostj.vhostuser.sys;

/** An eventfd: the kick and call doorbells of a virtqueue. */
public final class EventFd extends Fd {
    private static final int EFD_CLOEXEC = 0x80000;
    private static final int EFD_NONBLOCK = 0x800;

    public EventFd(int fd) {
        super(fd);
    }

    public static EventFd create() throws NativeException {
        return new EventFd(Native.check("eventfd", Native.LIBC.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)));
    }

    /** Adds 1 to the counter: wakes whoever waits on it. */
    public void signal() throws NativeException {
        long buf = Native.scratch();
        Native.putLong(buf, 1L);
        long rc = Native.LIBC.write(fd(), buf, 8);
        if (rc < 0) {
            int errno = Native.errno();
            if (errno != Errno.EAGAIN) { // counter saturated: the reader is already due to wake
                throw new NativeException("write(eventfd)", errno);
            }
        }
    }

    /** Reads and resets the counter without blocking; returns 0 if it was not signalled. */
    public long drain() throws NativeException {
        long buf = Native.scratch();
        long rc = Native.LIBC.read(fd(), buf, 8);
        if (rc < 0) {
            int errno = Native.errno();
            if (errno == Errno.EAGAIN) {
                return 0;
            }
            throw new NativeException("read(eventfd)", errno);
        }
        return Native.getLong(buf);
    }

    /** Waits up to {@code timeoutMs} for a signal; true if readable. Does not consume it. */
    public boolean await(int timeoutMs) throws NativeException {
        return Poll.readable(fd(), timeoutMs);
    }
}
