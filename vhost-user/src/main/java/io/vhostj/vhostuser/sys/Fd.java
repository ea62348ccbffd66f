package io.vhostj.vhostuser.sys;

import java.util.concurrent.atomic.AtomicInteger;

/** An owned file descriptor. Closing is idempotent and safe from any thread. */
public class Fd implements AutoCloseable {
    private final AtomicInteger fd;

    public Fd(int fd) {
        if (fd < 0) {
            throw new IllegalArgumentException("invalid fd " + fd);
        }
        this.fd = new AtomicInteger(fd);
    }

    /** The raw number; -1 once closed. */
    public final int fd() {
        return fd.get();
    }

    public final boolean isOpen() {
        return fd.get() >= 0;
    }

    /** Gives up ownership without closing (the number now belongs to someone else). */
    public final int release() {
        return fd.getAndSet(-1);
    }

    @Override
    public void close() {
        int old = fd.getAndSet(-1);
        if (old >= 0) {
            Native.LIBC.close(old);
        }
    }

    @Override
    public String toString() {
        return "fd " + fd.get();
    }

    private static final int F_GETFL = 3;
    private static final int F_SETFL = 4;
    /** O_NONBLOCK. */
    public static final int O_NONBLOCK = 0x800;
    /** O_ACCMODE and its values. */
    public static final int O_ACCMODE = 3;
    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    /** st_mode's file type bits and the types a stream can be made of. */
    public static final int S_IFMT = 0xf000;
    public static final int S_IFIFO = 0x1000;
    public static final int S_IFCHR = 0x2000;
    public static final int S_IFSOCK = 0xc000;
    private static final int STAT_MODE = 24; // x86_64 struct stat

    /** The open file's status flags (F_GETFL): access mode, O_NONBLOCK, ... */
    public static int statusFlags(int fd) throws NativeException {
        return Native.check("fcntl(F_GETFL)", Native.LIBC.fcntl(fd, F_GETFL, 0));
    }

    /** Sets O_NONBLOCK on the open file (shared with every holder of the same open file). */
    public static void setNonBlocking(int fd) throws NativeException {
        int flags = statusFlags(fd);
        if ((flags & O_NONBLOCK) == 0) {
            Native.check("fcntl(F_SETFL)", Native.LIBC.fcntl(fd, F_SETFL, flags | O_NONBLOCK));
        }
    }

    /** st_mode of what {@code fd} refers to (fstat). */
    public static int fileMode(int fd) throws NativeException {
        long stat = Native.scratch();
        Native.check("fstat", Native.LIBC.fstat(fd, stat));
        return Native.getInt(stat + STAT_MODE);
    }

    public static void closeAll(int[] fds, int count) {
        for (int i = 0; i < count; i++) {
            if (fds[i] >= 0) {
                Native.LIBC.close(fds[i]);
                fds[i] = -1;
            }
        }
    }
}
