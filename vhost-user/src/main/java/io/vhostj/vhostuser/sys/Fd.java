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

    public static void closeAll(int[] fds, int count) {
        for (int i = 0; i < count; i++) {
            if (fds[i] >= 0) {
                Native.LIBC.close(fds[i]);
                fds[i] = -1;
            }
        }
    }
}
