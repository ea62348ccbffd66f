package io.vhostj.blk;

import java.nio.file.Path;

import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * A regular file or a block device, read and written with preadv/pwritev straight between the
 * file and guest memory. Thread-safe: positional I/O only.
 */
public final class FileBackingStore implements BackingStore {
    private final Fd fd;
    /** With O_DIRECT: a buffered descriptor for requests whose guest buffers are not aligned. */
    private final Fd buffered;
    private final long size;
    private final boolean readOnly;
    private volatile boolean zeroRangeUnsupported;

    private FileBackingStore(Fd fd, Fd buffered, long size, boolean readOnly) {
        this.fd = fd;
        this.buffered = buffered;
        this.size = size;
        this.readOnly = readOnly;
    }

    public static FileBackingStore open(Path path, boolean readOnly, boolean direct) throws NativeException {
        int flags = (readOnly ? FileIo.O_RDONLY : FileIo.O_RDWR) | (direct ? FileIo.O_DIRECT : 0);
        Fd fd = FileIo.open(path, flags);
        Fd buffered = null;
        try {
            if (direct) {
                buffered = FileIo.open(path, flags & ~FileIo.O_DIRECT);
            }
            return new FileBackingStore(fd, buffered, FileIo.size(fd), readOnly);
        } catch (NativeException e) {
            fd.close();
            if (buffered != null) {
                buffered.close();
            }
            throw e;
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    @Override
    public int fd() {
        return fd.fd();
    }

    @Override
    public boolean isDirect() {
        return buffered != null;
    }

    @Override
    public boolean readIfCached(long iov, int iovCount, long offset, long length) throws NativeException {
        return buffered == null && FileIo.preadvNoWait(fd, iov, iovCount, offset) == length;
    }

    @Override
    public boolean read(long iov, int iovCount, long offset, long length) throws NativeException {
        return transfer(false, iov, iovCount, offset, length);
    }

    @Override
    public boolean write(long iov, int iovCount, long offset, long length) throws NativeException {
        return transfer(true, iov, iovCount, offset, length);
    }

    private boolean transfer(boolean write, long iov, int iovCount, long offset, long length) throws NativeException {
        Fd target = fd;
        long done;
        try {
            done = write ? FileIo.pwritev(fd, iov, iovCount, offset) : FileIo.preadv(fd, iov, iovCount, offset);
        } catch (NativeException e) {
            // O_DIRECT refuses guest buffers that are not block-aligned: the page cache takes them
            if (buffered == null || e.errno() != Errno.EINVAL) {
                throw e;
            }
            target = buffered;
            done = write ? FileIo.pwritev(buffered, iov, iovCount, offset) : FileIo.preadv(buffered, iov, iovCount, offset);
        }
        if (done == length) {
            return true;
        }
        return FileIo.finishShort(target, write, iov, iovCount, offset, length, done);
    }

    @Override
    public void flush() throws NativeException {
        FileIo.fdatasync(fd);
    }

    @Override
    public void discard(long offset, long length) throws NativeException {
        FileIo.fallocate(fd, FileIo.FALLOC_FL_PUNCH_HOLE | FileIo.FALLOC_FL_KEEP_SIZE, offset, length);
    }

    @Override
    public void writeZeroes(long offset, long length, boolean unmap) throws NativeException {
        if (unmap) {
            try {
                discard(offset, length);
                return;
            } catch (NativeException e) {
                if (e.errno() != Errno.ENOTSUP && e.errno() != Errno.EINVAL) {
                    throw e;
                }
            }
        }
        if (!zeroRangeUnsupported) {
            try {
                FileIo.fallocate(fd, FileIo.FALLOC_FL_ZERO_RANGE | FileIo.FALLOC_FL_KEEP_SIZE, offset, length);
                return;
            } catch (NativeException e) {
                if (e.errno() != Errno.ENOTSUP && e.errno() != Errno.EINVAL) {
                    throw e;
                }
                zeroRangeUnsupported = true;
            }
        }
        writeZeroBuffers(offset, length);
    }

    private void writeZeroBuffers(long offset, long length) throws NativeException {
        int chunk = 1 << 20;
        long buf = Native.allocate(chunk);
        try {
            long done = 0;
            while (done < length) {
                long n = FileIo.pwrite(fd, buf, Math.min(chunk, length - done), offset + done);
                if (n <= 0) {
                    throw new NativeException("pwrite(zeroes)", Errno.EIO);
                }
                done += n;
            }
        } finally {
            Native.free(buf);
        }
    }

    @Override
    public void close() {
        fd.close();
        if (buffered != null) {
            buffered.close();
        }
    }
}
