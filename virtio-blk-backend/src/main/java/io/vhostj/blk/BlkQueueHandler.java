package io.vhostj.blk;

import static io.vhostj.blk.VirtioBlk.*;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;

/**
 * Serves one virtio-blk queue. Layout of a request (5.2.6): a 16-byte header at the start of
 * the device-readable part, data (readable for OUT, writable for IN), and a status byte as the
 * last byte of the writable part. The chain may split these across descriptors any way it
 * likes. Every request that has room for a status byte gets one; requests outside the disk get
 * IOERR and never touch it.
 */
final class BlkQueueHandler implements QueueHandler {
    private static final Logger LOG = LoggerFactory.getLogger(BlkQueueHandler.class);

    private final BackingStore store;
    private final byte[] serial;
    private final boolean flushIsNoop;
    private final long scratch; // header copy + discard segment + iovecs
    private final long iov;
    private long ioErrors;

    BlkQueueHandler(BackingStore store, byte[] serial, boolean flushIsNoop) {
        this.store = store;
        this.serial = serial;
        this.flushIsNoop = flushIsNoop;
        this.scratch = Native.allocate(64 + (long) FileIo.IOV_MAX * FileIo.IOVEC_SIZE);
        this.iov = scratch + 64;
    }

    @Override
    public int handle(DescriptorChain chain) throws ChainException {
        if (chain.readableBytes() < REQ_HEADER_SIZE || chain.writableBytes() < STATUS_SIZE) {
            throw new ChainException("virtio-blk request without a header or a status byte");
        }
        chain.readFromChain(0, scratch, REQ_HEADER_SIZE);
        int type = Native.getInt(scratch + REQ_TYPE);
        long sector = Native.getLong(scratch + REQ_SECTOR);
        long statusAt = chain.writableBytes() - 1;
        int status;
        int written = 1;
        try {
            switch (type) {
                case T_IN -> {
                    long length = statusAt;
                    status = checkRange(sector, length);
                    if (status == S_OK) {
                        int n = chain.toIovecs(true, 0, length, iov, FileIo.IOV_MAX);
                        status = store.read(iov, n, sector << SECTOR_SHIFT, length) ? S_OK : S_IOERR;
                        written += (int) length;
                    }
                }
                case T_OUT -> {
                    long length = chain.readableBytes() - REQ_HEADER_SIZE;
                    status = store.isReadOnly() ? S_IOERR : checkRange(sector, length);
                    if (status == S_OK) {
                        int n = chain.toIovecs(false, REQ_HEADER_SIZE, length, iov, FileIo.IOV_MAX);
                        status = store.write(iov, n, sector << SECTOR_SHIFT, length) ? S_OK : S_IOERR;
                    }
                }
                case T_FLUSH -> {
                    if (!flushIsNoop && !store.isReadOnly()) {
                        store.flush();
                    }
                    status = S_OK;
                }
                case T_GET_ID -> {
                    long room = Math.min(statusAt, ID_BYTES);
                    Native.zero(scratch, ID_BYTES);
                    Native.copyFromArray(serial, 0, scratch, serial.length);
                    chain.writeToChain(0, scratch, room);
                    written += (int) room;
                    status = S_OK;
                }
                case T_DISCARD, T_WRITE_ZEROES -> status = discardOrZero(chain, type);
                default -> status = S_UNSUPP;
            }
        } catch (NativeException e) {
            if (++ioErrors <= 10 || ioErrors % 1000 == 0) {
                LOG.warn("I/O error ({} so far) on request type {} at sector {}: {}", ioErrors, type, sector,
                        e.getMessage());
            }
            status = S_IOERR;
        }
        Native.putByte(chain.writableAddressAt(statusAt), (byte) status);
        return written;
    }

    /** IOERR unless {@code [sector, sector + length)} lies inside the disk and is whole sectors. */
    private int checkRange(long sector, long length) {
        if ((length & (SECTOR_SIZE - 1)) != 0) {
            return S_IOERR;
        }
        long end = (sector << SECTOR_SHIFT) + length;
        if (sector < 0 || sector > (store.size() >>> SECTOR_SHIFT) || end < 0 || end > store.size()) {
            return S_IOERR;
        }
        return S_OK;
    }

    private int discardOrZero(DescriptorChain chain, int type) throws ChainException, NativeException {
        if (store.isReadOnly()) {
            return S_IOERR;
        }
        long payload = chain.readableBytes() - REQ_HEADER_SIZE;
        if (payload == 0 || payload % DWZ_SEGMENT_SIZE != 0
                || payload / DWZ_SEGMENT_SIZE > BlkDevice.MAX_DWZ_SEGMENTS) {
            return S_UNSUPP;
        }
        for (long off = REQ_HEADER_SIZE; off < chain.readableBytes(); off += DWZ_SEGMENT_SIZE) {
            long seg = scratch + REQ_HEADER_SIZE;
            chain.readFromChain(off, seg, DWZ_SEGMENT_SIZE);
            long sector = Native.getLong(seg + DWZ_SECTOR);
            long sectors = Native.getInt(seg + DWZ_NUM_SECTORS) & 0xffff_ffffL;
            int flags = Native.getInt(seg + DWZ_FLAGS);
            if (sectors > BlkDevice.MAX_DWZ_SECTORS || (flags & ~DWZ_F_UNMAP) != 0
                    || (type == T_DISCARD && flags != 0)) {
                return S_UNSUPP;
            }
            long length = sectors << SECTOR_SHIFT;
            if (checkRange(sector, length) != S_OK) {
                return S_IOERR;
            }
            if (length == 0) {
                continue;
            }
            if (type == T_DISCARD) {
                store.discard(sector << SECTOR_SHIFT, length);
            } else {
                store.writeZeroes(sector << SECTOR_SHIFT, length, (flags & DWZ_F_UNMAP) != 0);
            }
        }
        return S_OK;
    }

    @Override
    public void close() {
        Native.free(scratch);
    }
}
