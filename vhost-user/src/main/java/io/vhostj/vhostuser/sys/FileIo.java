package io.vhostj.vhostuser.sys;

import java.nio.file.Path;

/**
 * File I/O on host addresses: the zero-copy path between a backing file and guest memory.
 * Vectors are arrays of {@code struct iovec { void *base; size_t len; }} in native memory.
 */
public final class FileIo {
    public static final int O_RDONLY = 0;
    public static final int O_RDWR = 2;
    public static final int O_DIRECT = 0x4000;
    public static final int O_CLOEXEC = 0x80000;

    public static final int IOVEC_SIZE = 16;
    /** IOV_MAX on Linux. */
    public static final int IOV_MAX = 1024;

    public static final int FALLOC_FL_KEEP_SIZE = 0x01;
    public static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    public static final int FALLOC_FL_ZERO_RANGE = 0x10;

    private static final int SEEK_END = 2;

    private FileIo() {
    }

    public static Fd open(Path path, int flags) throws NativeException {
        int fd = Native.LIBC.open(path.toString(), flags | O_CLOEXEC, 0);
        if (fd < 0) {
            throw new NativeException("open(" + path + ")", Native.errno());
        }
        return new Fd(fd);
    }

    /** Size of a regular file or a block device (lseek to the end works for both). */
    public static long size(Fd fd) throws NativeException {
        return Native.check("lseek", Native.LIBC.lseek(fd.fd(), 0, SEEK_END));
    }

    /** preadv2 flag: fail with EAGAIN rather than wait for the disk (page-cache hits only). */
    public static final int RWF_NOWAIT = 8;

    /**
     * Reads what the page cache holds without waiting for the disk: the bytes read (possibly
     * short), or -1 if the first byte is not cached (EAGAIN) or the kernel has no RWF_NOWAIT.
     */
    public static long preadvNoWait(Fd fd, long iov, int count, long offset) throws NativeException {
        while (true) {
            long n = Native.LIBC.preadv2(fd.fd(), iov, count, offset, RWF_NOWAIT);
            if (n >= 0) {
                return n;
            }
            int errno = Native.errno();
            if (errno == Errno.EAGAIN || errno == Errno.ENOTSUP) {
                return -1;
            }
            if (errno != Errno.EINTR) {
                throw new NativeException("preadv2", errno);
            }
        }
    }

    /** preadv, retried on EINTR; returns bytes read (short only at end of file). */
    public static long preadv(Fd fd, long iov, int count, long offset) throws NativeException {
        while (true) {
            long n = Native.LIBC.preadv(fd.fd(), iov, count, offset);
            if (n >= 0) {
                return n;
            }
            int errno = Native.errno();
            if (errno != Errno.EINTR) {
                throw new NativeException("preadv", errno);
            }
        }
    }

    public static long pwritev(Fd fd, long iov, int count, long offset) throws NativeException {
        while (true) {
            long n = Native.LIBC.pwritev(fd.fd(), iov, count, offset);
            if (n >= 0) {
                return n;
            }
            int errno = Native.errno();
            if (errno != Errno.EINTR) {
                throw new NativeException("pwritev", errno);
            }
        }
    }

    public static long pread(Fd fd, long address, long length, long offset) throws NativeException {
        while (true) {
            long n = Native.LIBC.pread(fd.fd(), address, length, offset);
            if (n >= 0) {
                return n;
            }
            int errno = Native.errno();
            if (errno != Errno.EINTR) {
                throw new NativeException("pread", errno);
            }
        }
    }

    public static long pwrite(Fd fd, long address, long length, long offset) throws NativeException {
        while (true) {
            long n = Native.LIBC.pwrite(fd.fd(), address, length, offset);
            if (n >= 0) {
                return n;
            }
            int errno = Native.errno();
            if (errno != Errno.EINTR) {
                throw new NativeException("pwrite", errno);
            }
        }
    }

    /**
     * Completes a preadv/pwritev of {@code length} bytes at {@code offset} that moved only
     * {@code done}: short transfers are legal, so carry on iovec by iovec. A read past the end of
     * the file (it shrank under us) reads zeros; a write that makes no progress fails (false).
     */
    public static boolean finishShort(Fd fd, boolean write, long iov, int iovCount, long offset, long length, long done)
            throws NativeException {
        long skip = done;
        for (int i = 0; i < iovCount; i++) {
            long base = Native.getLong(iov + (long) i * IOVEC_SIZE);
            long len = Native.getLong(iov + (long) i * IOVEC_SIZE + 8);
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long pos = skip;
            skip = 0;
            while (pos < len) {
                long at = offset + done;
                long n = write ? pwrite(fd, base + pos, len - pos, at) : pread(fd, base + pos, len - pos, at);
                if (n == 0) {
                    if (!write) {
                        // past the end of a file that shrank under us: the rest reads as zeros
                        Native.zero(base + pos, len - pos);
                        done += len - pos;
                        pos = len;
                        continue;
                    }
                    return false;
                }
                pos += n;
                done += n;
            }
        }
        return done == length;
    }

    public static void fdatasync(Fd fd) throws NativeException {
        Native.check("fdatasync", Native.LIBC.fdatasync(fd.fd()));
    }

    public static void fallocate(Fd fd, int mode, long offset, long length) throws NativeException {
        Native.check("fallocate", Native.LIBC.fallocate(fd.fd(), mode, offset, length));
    }

    /** Writes one iovec entry at index {@code i} of the vector at {@code iov}. */
    public static void putIovec(long iov, int i, long base, long length) {
        Native.putLong(iov + (long) i * IOVEC_SIZE, base);
        Native.putLong(iov + (long) i * IOVEC_SIZE + 8, length);
    }
}
