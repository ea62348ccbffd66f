package io.vhostj.blk;

import io.vhostj.vhostuser.sys.NativeException;

/**
 * What a virtio-blk device stores its blocks in: a regular (sparse) file, a block device, later
 * a devmapper thin volume. Offsets and lengths are in bytes and already checked against
 * {@link #size()} by the caller. Data moves between the store and iovecs of guest memory.
 */
public interface BackingStore extends AutoCloseable {
    long size();

    boolean isReadOnly();

    /**
     * A descriptor on which positional reads, writes and fdatasync are exactly this store's
     * {@link #read}, {@link #write} and {@link #flush}, so that they may be issued
     * asynchronously (io_uring); -1 if there is none.
     */
    default int fd() {
        return -1;
    }

    /** Whether {@link #fd()} bypasses the page cache (O_DIRECT): every read and write waits for the disk. */
    default boolean isDirect() {
        return false;
    }

    /**
     * The unit in which the store allocates and frees space (a thin pool's block), 0 if none:
     * the guest is told to align discards to it.
     */
    default int allocationUnit() {
        return 0;
    }

    /**
     * Reads only if the data is at hand without waiting (the page cache): true if all
     * {@code length} bytes were read, false if the caller must read the normal way.
     */
    default boolean readIfCached(long iov, int iovCount, long offset, long length) throws NativeException {
        return false;
    }

    /** Reads {@code length} bytes at {@code offset} into the iovecs; false on a short read or I/O error. */
    boolean read(long iov, int iovCount, long offset, long length) throws NativeException;

    boolean write(long iov, int iovCount, long offset, long length) throws NativeException;

    void flush() throws NativeException;

    /** Deallocates the range (reads may return zeros afterwards). */
    void discard(long offset, long length) throws NativeException;

    /** Makes the range read as zeros; {@code unmap} allows deallocating it. */
    void writeZeroes(long offset, long length, boolean unmap) throws NativeException;

    @Override
    void close();
}
