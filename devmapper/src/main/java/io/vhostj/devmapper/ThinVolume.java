package io.vhostj.devmapper;

import java.io.IOException;
import java.nio.file.Path;

import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * One thin device open for I/O: reads and writes in bytes, moved straight between the pool's
 * data file and iovecs (guest memory) with preadv/pwritev. Unmapped blocks read as zeros without
 * touching the data file; a write to a block the device owns alone goes in place, outside the
 * pool's lock (runs of physically adjacent blocks in one call); anything else provisions a block
 * first ({@link ThinPool#writeProvisioning}). Offsets and lengths are checked by the caller.
 */
public final class ThinVolume implements AutoCloseable {
    private final ThinPool pool;
    private final ThinPool.Device device;
    private final Fd data;
    private final boolean readOnly;
    private final int shift;
    private final int blockSize;
    private final long size;
    /** A block of zeros, for WRITE_ZEROES on part of a block. */
    private final long zeros;
    private final boolean ownsPool;
    private boolean closed;
    /** Per thread: iovecs describing a slice of the caller's. */
    private static final ThreadLocal<Slicer> SLICERS = ThreadLocal.withInitial(Slicer::new);

    ThinVolume(ThinPool pool, ThinPool.Device device, Fd data, boolean readOnly, boolean ownsPool) {
        this.pool = pool;
        this.device = device;
        this.data = data;
        this.readOnly = readOnly;
        this.shift = pool.blockShift;
        this.blockSize = pool.blockSize;
        this.size = device.size;
        this.zeros = Native.allocate(blockSize);
        Native.zero(zeros, blockSize);
        this.ownsPool = ownsPool;
    }

    /** Opens the pool in {@code dir} and its device {@code id}; closing the volume closes the pool. */
    public static ThinVolume open(Path dir, int id, boolean readOnly) throws PoolException, IOException {
        ThinPool pool = ThinPool.open(dir);
        try {
            return pool.volume(id, readOnly, true);
        } catch (PoolException | RuntimeException e) {
            pool.close();
            throw e;
        }
    }

    public ThinPool pool() {
        return pool;
    }

    public int id() {
        return device.id;
    }

    public long size() {
        return size;
    }

    public boolean isReadOnly() {
        return readOnly;
    }

    public int blockSize() {
        return blockSize;
    }

    /** Reads {@code length} bytes at {@code offset} into the iovecs; false on an I/O error. */
    public boolean read(long iov, int iovCount, long offset, long length) throws NativeException {
        int epoch = pool.enterIo();
        try {
            return readMapped(iov, iovCount, offset, length);
        } finally {
            pool.exitIo(epoch);
        }
    }

    private boolean readMapped(long iov, int iovCount, long offset, long length) throws NativeException {
        Slicer s = SLICERS.get().start(iov, iovCount);
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            long vb = pos >>> shift;
            int block = pool.lookup(device, vb);
            long run = Math.min(((vb + 1) << shift) - pos, end - pos);
            // carry on over the following blocks while they continue the same kind of run
            for (long next = vb + 1; pos + run < end; next++) {
                int b = pool.lookup(device, next);
                if (block < 0 ? b >= 0 : b != block + (next - vb)) {
                    break;
                }
                run += Math.min(blockSize, end - pos - run);
            }
            if (block < 0) {
                s.zero(run);
            } else {
                int n = s.slice(run);
                if (!transfer(false, data, s.out, n, ((long) block << shift) + (pos & (blockSize - 1)), run)) {
                    return false;
                }
            }
            pos += run;
        }
        return true;
    }

    /** Writes {@code length} bytes at {@code offset} from the iovecs; false on an I/O error or a full pool. */
    public boolean write(long iov, int iovCount, long offset, long length) throws NativeException {
        if (readOnly) {
            return false;
        }
        int epoch = pool.enterIo();
        try {
            return writeMapped(iov, iovCount, offset, length);
        } finally {
            pool.exitIo(epoch);
        }
    }

    private boolean writeMapped(long iov, int iovCount, long offset, long length) throws NativeException {
        Slicer s = SLICERS.get().start(iov, iovCount);
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            long vb = pos >>> shift;
            int within = (int) (pos & (blockSize - 1));
            long run = Math.min(blockSize - within, end - pos);
            int block = pool.lookupWritable(device, vb);
            if (block < 0) {
                int n = s.slice(run);
                if (!pool.writeProvisioning(device, vb, within, (int) run, s.out, n)) {
                    return false;
                }
            } else {
                for (long next = vb + 1; pos + run < end; next++) {
                    if (pool.lookupWritable(device, next) != block + (next - vb)) {
                        break;
                    }
                    run += Math.min(blockSize, end - pos - run);
                }
                int n = s.slice(run);
                boolean ok = transfer(true, data, s.out, n, ((long) block << shift) + within, run);
                pool.dataWritten(); // after the write: a FLUSH that began before it must not count it
                if (!ok) {
                    return false;
                }
            }
            pos += run;
        }
        return true;
    }

    /** Unmaps the whole blocks inside the range (their data blocks go back to the pool); partial blocks stay. */
    public void discard(long offset, long length) {
        long first = (offset + blockSize - 1) >>> shift;
        long end = (offset + length) >>> shift;
        if (end > first && !readOnly) {
            pool.unmap(device, first, end - first);
        }
    }

    /** Makes the range read as zeros: whole blocks are unmapped, the partial ends written with zeros. */
    public boolean writeZeroes(long offset, long length) throws NativeException {
        if (readOnly) {
            return false;
        }
        long first = (offset + blockSize - 1) >>> shift;
        long last = (offset + length) >>> shift;
        if (last <= first) {
            return writeZeroBytes(offset, length);
        }
        pool.unmap(device, first, last - first);
        long head = (first << shift) - offset;
        long tail = offset + length - (last << shift);
        return writeZeroBytes(offset, head) && writeZeroBytes(last << shift, tail);
    }

    private boolean writeZeroBytes(long offset, long length) throws NativeException {
        if (length == 0) {
            return true;
        }
        long iov = Native.allocate(FileIo.IOVEC_SIZE);
        try {
            for (long done = 0; done < length; ) {
                long at = offset + done;
                long n = Math.min(blockSize - (at & (blockSize - 1)), length - done);
                // an unmapped block reads as zeros already: nothing to allocate
                if (pool.lookup(device, at >>> shift) >= 0) {
                    FileIo.putIovec(iov, 0, zeros, n);
                    if (!write(iov, 1, at, n)) {
                        return false;
                    }
                }
                done += n;
            }
            return true;
        } finally {
            Native.free(iov);
        }
    }

    /**
     * Copies the first {@code length} bytes of {@code source} onto the device, block by block;
     * blocks that are all zeros are unmapped rather than written. Returns the bytes written.
     */
    public long importFrom(Fd source, long length) throws NativeException {
        long buf = Native.allocate(blockSize);
        long iov = Native.allocate(FileIo.IOVEC_SIZE);
        long written = 0;
        try {
            for (long at = 0; at < length; at += blockSize) {
                long n = Math.min(blockSize, length - at);
                long got = 0;
                while (got < n) {
                    long r = FileIo.pread(source, buf + got, n - got, at + got);
                    if (r <= 0) {
                        throw new NativeException("pread(" + at + ")", io.vhostj.vhostuser.sys.Errno.EIO);
                    }
                    got += r;
                }
                boolean zero = true;
                for (long i = 0; i + 8 <= n && zero; i += 8) {
                    zero = Native.getLong(buf + i) == 0;
                }
                for (long i = n & ~7L; i < n && zero; i++) {
                    zero = Native.getByte(buf + i) == 0;
                }
                if (zero && n == blockSize) {
                    discard(at, n); // whatever the device held there, it reads zeros now, unmapped
                    continue;
                }
                FileIo.putIovec(iov, 0, buf, n);
                if (!write(iov, 1, at, n)) {
                    throw new NativeException("write to thin device " + device.id + " (pool full?)",
                            io.vhostj.vhostuser.sys.Errno.ENOSPC);
                }
                written += n;
            }
            return written;
        } finally {
            Native.free(buf);
            Native.free(iov);
        }
    }

    /** Data then metadata made durable: what a FLUSH promises. */
    public void flush() throws IOException {
        pool.commit();
    }

    @Override
    public void close() {
        close(ownsPool);
    }

    private void close(boolean withPool) {
        if (closed) {
            return;
        }
        closed = true;
        pool.release(device);
        Native.free(zeros);
        if (withPool) {
            try {
                pool.close();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
    }

    /** preadv/pwritev of exactly {@code length} bytes, carrying on after short transfers. */
    static boolean transfer(boolean write, Fd fd, long iov, int iovCount, long at, long length) throws NativeException {
        long n = write ? FileIo.pwritev(fd, iov, iovCount, at) : FileIo.preadv(fd, iov, iovCount, at);
        return n == length || FileIo.finishShort(fd, write, iov, iovCount, at, length, n);
    }

    /** Walks a caller's iovecs and describes the next N bytes of them as iovecs of its own. */
    static final class Slicer {
        final long out = Native.allocate((long) FileIo.IOV_MAX * FileIo.IOVEC_SIZE);
        private long iov;
        private int count;
        private int index;
        private long offset;

        Slicer start(long iov, int count) {
            this.iov = iov;
            this.count = Math.min(count, FileIo.IOV_MAX);
            this.index = 0;
            this.offset = 0;
            return this;
        }

        /** The next {@code length} bytes as iovecs in {@link #out}; returns how many. */
        int slice(long length) {
            int n = 0;
            while (length > 0 && index < count) {
                long base = Native.getLong(iov + (long) index * FileIo.IOVEC_SIZE);
                long len = Native.getLong(iov + (long) index * FileIo.IOVEC_SIZE + 8);
                long take = Math.min(len - offset, length);
                FileIo.putIovec(out, n++, base + offset, take);
                length -= take;
                offset += take;
                if (offset == len) {
                    index++;
                    offset = 0;
                }
            }
            return n;
        }

        void zero(long length) {
            while (length > 0 && index < count) {
                long base = Native.getLong(iov + (long) index * FileIo.IOVEC_SIZE);
                long len = Native.getLong(iov + (long) index * FileIo.IOVEC_SIZE + 8);
                long take = Math.min(len - offset, length);
                Native.zero(base + offset, take);
                length -= take;
                offset += take;
                if (offset == len) {
                    index++;
                    offset = 0;
                }
            }
        }
    }
}
