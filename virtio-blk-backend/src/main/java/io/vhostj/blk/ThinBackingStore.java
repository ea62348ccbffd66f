package io.vhostj.blk;

import java.io.IOException;

import io.vhostj.devmapper.PoolControl;
import io.vhostj.devmapper.ThinVolume;
import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * A thin device of a userspace pool ({@code --thin POOL_DIR:ID}). There is no one descriptor
 * whose offsets are the device's, so requests run inline on the queue's thread; DISCARD and
 * WRITE_ZEROES unmap whole blocks, FLUSH commits the pool (data, then metadata).
 */
public final class ThinBackingStore implements BackingStore {
    private final ThinVolume volume;
    /** The pool's control socket while this process holds the pool, or null. */
    private final PoolControl control;

    public ThinBackingStore(ThinVolume volume) {
        this(volume, null);
    }

    public ThinBackingStore(ThinVolume volume, PoolControl control) {
        this.volume = volume;
        this.control = control;
    }

    @Override
    public long size() {
        return volume.size();
    }

    @Override
    public boolean isReadOnly() {
        return volume.isReadOnly();
    }

    @Override
    public int allocationUnit() {
        return volume.blockSize();
    }

    @Override
    public boolean read(long iov, int iovCount, long offset, long length) throws NativeException {
        return volume.read(iov, iovCount, offset, length);
    }

    @Override
    public boolean write(long iov, int iovCount, long offset, long length) throws NativeException {
        return volume.write(iov, iovCount, offset, length);
    }

    @Override
    public void flush() throws NativeException {
        try {
            volume.flush();
        } catch (NativeException e) {
            throw e;
        } catch (IOException e) {
            throw new NativeException("commit of the thin pool: " + e.getMessage(), Errno.EIO);
        }
    }

    @Override
    public void discard(long offset, long length) {
        volume.discard(offset, length);
    }

    @Override
    public void writeZeroes(long offset, long length, boolean unmap) throws NativeException {
        if (!volume.writeZeroes(offset, length)) {
            throw new NativeException("write zeroes on the thin device", Errno.EIO);
        }
    }

    @Override
    public void close() {
        if (control != null) {
            control.close();
        }
        volume.close();
    }
}
