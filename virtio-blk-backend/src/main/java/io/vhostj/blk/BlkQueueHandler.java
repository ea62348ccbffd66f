package io.vhostj.blk;

import static io.vhostj.blk.VirtioBlk.*;

import java.util.function.BooleanSupplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.IoUring;
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
 *
 * <p>With an {@link IoUring} (the default engine) reads, writes and flushes go to the kernel
 * asynchronously, up to one ring's worth per queue: each takes a slot holding its iovecs and
 * what its completion needs, and is submitted with the rest of its batch in one
 * {@code io_uring_enter}. Without one, every request is served inline with preadv/pwritev.
 */
final class BlkQueueHandler implements QueueHandler {
    private static final Logger LOG = LoggerFactory.getLogger(BlkQueueHandler.class);

    private final BackingStore store;
    private final byte[] serial;
    private final boolean flushIsNoop;
    private final long scratch; // header copy + discard segment + iovecs
    private final long iov;
    private long ioErrors;

    // ---- the asynchronous engine (ring == null: synchronous) ----
    private static final long SLOT_IOV_BYTES = (long) FileIo.IOV_MAX * FileIo.IOVEC_SIZE;
    private final IoUring ring;
    private final int storeFd;
    private final long slotIovs;
    private final int[] slotHead;
    private final int[] slotWritten;
    private final long[] slotStatus;
    private final long[] slotOffset;
    private final long[] slotLength;
    private final int[] slotIovCount;
    private final byte[] slotType;
    private final int[] freeSlots;
    private int freeCount;
    private int pendingCount;
    private final IoUring.Completions onCompletion = this::completed;
    private Completion reapSink;
    private int reaped;

    private final BooleanSupplier writeThrough;

    BlkQueueHandler(BackingStore store, byte[] serial, boolean flushIsNoop) {
        this(store, serial, flushIsNoop, null, () -> false);
    }

    /**
     * {@code ring} (owned from now on) makes this handler asynchronous; null keeps it inline.
     * {@code writeThrough} says, per request, whether a write must be durable when it completes.
     */
    BlkQueueHandler(BackingStore store, byte[] serial, boolean flushIsNoop, IoUring ring,
            BooleanSupplier writeThrough) {
        this.writeThrough = writeThrough;
        this.store = store;
        this.serial = serial;
        this.flushIsNoop = flushIsNoop;
        this.scratch = Native.allocate(64 + SLOT_IOV_BYTES);
        this.iov = scratch + 64;
        this.ring = ring;
        this.storeFd = ring == null ? -1 : store.fd();
        int slots = ring == null ? 0 : ring.entries();
        this.slotIovs = ring == null ? 0 : Native.allocate(slots * SLOT_IOV_BYTES);
        this.slotHead = new int[slots];
        this.slotWritten = new int[slots];
        this.slotStatus = new long[slots];
        this.slotOffset = new long[slots];
        this.slotLength = new long[slots];
        this.slotIovCount = new int[slots];
        this.slotType = new byte[slots];
        this.freeSlots = new int[slots];
        for (int i = 0; i < slots; i++) {
            freeSlots[i] = slots - 1 - i;
        }
        this.freeCount = slots;
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
                        // A page-cache hit costs less inline than a trip through the ring.
                        if (ring != null && !store.readIfCached(iov, n, sector << SECTOR_SHIFT, length)) {
                            return submit(chain, T_IN, true, 0, length, sector << SECTOR_SHIFT, statusAt,
                                    1 + (int) length);
                        }
                        status = ring != null || store.read(iov, n, sector << SECTOR_SHIFT, length) ? S_OK : S_IOERR;
                        written += (int) length;
                    }
                }
                case T_OUT -> {
                    long length = chain.readableBytes() - REQ_HEADER_SIZE;
                    status = store.isReadOnly() ? S_IOERR : checkRange(sector, length);
                    if (status == S_OK) {
                        // Buffered writes are a copy into the page cache: inline is cheapest (ext4
                        // would hand them from the ring to a kernel worker thread). Writes that wait
                        // for the disk (O_DIRECT, writethrough) go through the ring.
                        if (ring != null && (store.isDirect() || writeThrough.getAsBoolean())) {
                            return submit(chain, T_OUT, false, REQ_HEADER_SIZE, length, sector << SECTOR_SHIFT,
                                    statusAt, 1);
                        }
                        int n = chain.toIovecs(false, REQ_HEADER_SIZE, length, iov, FileIo.IOV_MAX);
                        status = store.write(iov, n, sector << SECTOR_SHIFT, length) ? S_OK : S_IOERR;
                        if (status == S_OK && writeThrough.getAsBoolean()) {
                            store.flush();
                        }
                    }
                }
                case T_FLUSH -> {
                    if (!flushIsNoop && !store.isReadOnly()) {
                        if (ring != null) {
                            return submit(chain, T_FLUSH, false, 0, 0, 0, statusAt, 1);
                        }
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
                case T_DISCARD, T_WRITE_ZEROES -> {
                    status = discardOrZero(chain, type);
                    // zeroes are data: with the cache off they must be durable on completion too
                    if (status == S_OK && type == T_WRITE_ZEROES && writeThrough.getAsBoolean()) {
                        store.flush();
                    }
                }
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

    /**
     * Takes a slot, exports the data segments into its iovecs and queues the operation; the
     * request completes in {@link #completed}. {@code written} is the used length on success.
     */
    private int submit(DescriptorChain chain, int type, boolean writable, long from, long length, long offset,
            long statusAt, int written) throws ChainException {
        int slot = freeSlots[freeCount - 1];
        long slotIov = slotIovs + slot * SLOT_IOV_BYTES;
        int n = type == T_FLUSH ? 0 : chain.toIovecs(writable, from, length, slotIov, FileIo.IOV_MAX);
        freeCount--;
        pendingCount++;
        slotHead[slot] = chain.head();
        slotWritten[slot] = written;
        slotStatus[slot] = chain.writableAddressAt(statusAt);
        slotOffset[slot] = offset;
        slotLength[slot] = length;
        slotIovCount[slot] = n;
        slotType[slot] = (byte) type;
        if (type == T_FLUSH) {
            ring.prepareFdatasync(storeFd, slot);
        } else {
            int flags = type == T_OUT && writeThrough.getAsBoolean() ? IoUring.RWF_DSYNC : 0;
            ring.prepareRw(type == T_IN ? IoUring.OP_READV : IoUring.OP_WRITEV, storeFd, slotIov, n, offset, flags,
                    slot);
        }
        return PENDING;
    }

    /** One completion from the ring: finish the request (retrying inline if it must), free its slot. */
    private void completed(long userData, int res) {
        int slot = (int) userData;
        int type = slotType[slot];
        int status = S_OK;
        int written = slotWritten[slot];
        if (type == T_FLUSH) {
            if (res < 0) {
                status = ioError(type, slotOffset[slot], "fdatasync: errno " + -res);
            }
        } else if (res != slotLength[slot]) {
            // Short transfers and O_DIRECT's EINVAL for unaligned guest buffers are legal: the
            // store's inline path finishes them (carrying on, or through the page cache).
            status = retryInline(slot, type, res);
            if (type == T_IN && status != S_OK) {
                written = 1;
            }
        }
        Native.putByte(slotStatus[slot], (byte) status);
        freeSlots[freeCount++] = slot;
        pendingCount--;
        reaped++;
        reapSink.complete(slotHead[slot], written);
    }

    private int retryInline(int slot, int type, int res) {
        if (res < 0 && res != -Errno.EINVAL) {
            return ioError(type, slotOffset[slot], "errno " + -res);
        }
        long slotIov = slotIovs + slot * SLOT_IOV_BYTES;
        try {
            boolean ok = type == T_IN
                    ? store.read(slotIov, slotIovCount[slot], slotOffset[slot], slotLength[slot])
                    : store.write(slotIov, slotIovCount[slot], slotOffset[slot], slotLength[slot]);
            if (ok && type == T_OUT && writeThrough.getAsBoolean()) {
                store.flush();
            }
            return ok ? S_OK : S_IOERR;
        } catch (NativeException e) {
            return ioError(type, slotOffset[slot], e.getMessage());
        }
    }

    private int ioError(int type, long offset, String what) {
        if (++ioErrors <= 10 || ioErrors % 1000 == 0) {
            LOG.warn("I/O error ({} so far) on request type {} at byte {}: {}", ioErrors, type, offset, what);
        }
        return S_IOERR;
    }

    @Override
    public boolean canAccept() {
        return ring == null || freeCount > 0;
    }

    @Override
    public void batchEnd() {
        if (ring == null) {
            return;
        }
        try {
            ring.submit();
        } catch (NativeException e) {
            // EAGAIN/EBUSY: the kernel is short of memory or completions; the next batch retries.
            LOG.warn("io_uring submit: {}", e.getMessage());
        }
    }

    @Override
    public int reap(Completion done) {
        if (ring == null || pendingCount == 0) {
            return 0;
        }
        if (ring.hasUnsubmitted()) {
            batchEnd();
        }
        reapSink = done;
        reaped = 0;
        ring.reap(onCompletion);
        return reaped;
    }

    @Override
    public int pending() {
        return pendingCount;
    }

    @Override
    public int completionFd() {
        return ring == null ? -1 : ring.fd();
    }

    @Override
    public void awaitCompletions() {
        if (ring == null || pendingCount == 0) {
            return;
        }
        try {
            ring.submitAndWait(1);
        } catch (NativeException e) {
            LOG.warn("io_uring wait: {}", e.getMessage());
        }
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
        if (ring != null) {
            ring.close();
            Native.free(slotIovs);
        }
    }
}
