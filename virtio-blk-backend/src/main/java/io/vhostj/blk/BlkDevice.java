package io.vhostj.blk;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.device.VirtioDevice;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.sys.IoUring;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/** A virtio-blk device over a {@link BackingStore} (virtio 1.2, 5.2). */
public final class BlkDevice implements VirtioDevice {
    private static final Logger LOG = LoggerFactory.getLogger(BlkDevice.class);
    /** Requests one queue keeps in flight with io_uring (its ring's submission entries). */
    static final int RING_ENTRIES = 128;
    /** Largest single data segment we advertise (size_max). */
    static final int SIZE_MAX = 1 << 20;
    /** Largest discard / write-zeroes request, in sectors: 1 GiB. */
    static final int MAX_DWZ_SECTORS = 1 << 21;
    static final int MAX_DWZ_SEGMENTS = 1;

    private final BackingStore store;
    private final int numQueues;
    private final int maxQueueSize;
    private final int blockSize;
    private final byte[] serial;
    private final boolean flushIsNoop;
    private volatile boolean writeback = true;
    private final Aio aio;
    private volatile boolean uringFailed;

    public BlkDevice(BackingStore store, int numQueues, int maxQueueSize, int blockSize, String serial,
            boolean flushIsNoop) {
        this(store, numQueues, maxQueueSize, blockSize, serial, flushIsNoop, Aio.SYNC);
    }

    public BlkDevice(BackingStore store, int numQueues, int maxQueueSize, int blockSize, String serial,
            boolean flushIsNoop, Aio aio) {
        if (blockSize != 512 && blockSize != 4096) {
            throw new IllegalArgumentException("block size must be 512 or 4096, not " + blockSize);
        }
        if (store.size() % blockSize != 0) {
            throw new IllegalArgumentException("the backing store's size " + store.size()
                    + " is not a multiple of the block size " + blockSize);
        }
        this.store = store;
        this.numQueues = numQueues;
        this.maxQueueSize = maxQueueSize;
        this.blockSize = blockSize;
        byte[] s = serial.getBytes(StandardCharsets.UTF_8);
        this.serial = java.util.Arrays.copyOf(s, Math.min(s.length, VirtioBlk.ID_BYTES));
        this.flushIsNoop = flushIsNoop;
        this.aio = aio;
    }

    @Override
    public String name() {
        return "blk";
    }

    @Override
    public int queueCount() {
        return numQueues;
    }

    @Override
    public int maxQueueSize() {
        return maxQueueSize;
    }

    @Override
    public long features() {
        long f = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC)
                | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX)
                | VirtioFeatures.bit(VirtioBlk.F_SIZE_MAX) | VirtioFeatures.bit(VirtioBlk.F_SEG_MAX)
                | VirtioFeatures.bit(VirtioBlk.F_BLK_SIZE) | VirtioFeatures.bit(VirtioBlk.F_TOPOLOGY)
                | VirtioFeatures.bit(VirtioBlk.F_FLUSH) | VirtioFeatures.bit(VirtioBlk.F_MQ);
        if (offersWce()) {
            f |= VirtioFeatures.bit(VirtioBlk.F_CONFIG_WCE);
        }
        if (store.isReadOnly()) {
            f |= VirtioFeatures.bit(VirtioBlk.F_RO);
        } else {
            f |= VirtioFeatures.bit(VirtioBlk.F_DISCARD) | VirtioFeatures.bit(VirtioBlk.F_WRITE_ZEROES);
        }
        return f;
    }

    @Override
    public long protocolFeatures() {
        return ProtocolFeature.bit(ProtocolFeature.MQ) | ProtocolFeature.bit(ProtocolFeature.REPLY_ACK)
                | ProtocolFeature.bit(ProtocolFeature.CONFIG) | ProtocolFeature.bit(ProtocolFeature.CONFIGURE_MEM_SLOTS)
                | ProtocolFeature.bit(ProtocolFeature.INFLIGHT_SHMFD) | ProtocolFeature.bit(ProtocolFeature.RESET_DEVICE)
                | ProtocolFeature.bit(ProtocolFeature.STATUS);
    }

    @Override
    public int configSize() {
        return VirtioBlk.CONFIG_SIZE;
    }

    byte[] config() {
        ByteBuffer b = ByteBuffer.allocate(VirtioBlk.CONFIG_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(VirtioBlk.CFG_CAPACITY, store.size() >>> VirtioBlk.SECTOR_SHIFT);
        b.putInt(VirtioBlk.CFG_SIZE_MAX, SIZE_MAX);
        b.putInt(VirtioBlk.CFG_SEG_MAX, maxQueueSize - 2); // header and status take two descriptors
        b.putInt(VirtioBlk.CFG_BLK_SIZE, blockSize);
        b.put(VirtioBlk.CFG_PHYSICAL_BLOCK_EXP, (byte) 0);
        b.put(VirtioBlk.CFG_ALIGNMENT_OFFSET, (byte) 0);
        b.putShort(VirtioBlk.CFG_MIN_IO_SIZE, (short) 1);
        b.putInt(VirtioBlk.CFG_OPT_IO_SIZE, 0);
        b.put(VirtioBlk.CFG_WRITEBACK, (byte) (writeback ? 1 : 0));
        b.putShort(VirtioBlk.CFG_NUM_QUEUES, (short) numQueues);
        b.putInt(VirtioBlk.CFG_MAX_DISCARD_SECTORS, MAX_DWZ_SECTORS);
        b.putInt(VirtioBlk.CFG_MAX_DISCARD_SEG, MAX_DWZ_SEGMENTS);
        b.putInt(VirtioBlk.CFG_DISCARD_SECTOR_ALIGNMENT,
                Math.max(blockSize, store.allocationUnit()) >>> VirtioBlk.SECTOR_SHIFT);
        b.putInt(VirtioBlk.CFG_MAX_WRITE_ZEROES_SECTORS, MAX_DWZ_SECTORS);
        b.putInt(VirtioBlk.CFG_MAX_WRITE_ZEROES_SEG, MAX_DWZ_SEGMENTS);
        b.put(VirtioBlk.CFG_WRITE_ZEROES_MAY_UNMAP, (byte) 1);
        return b.array();
    }

    @Override
    public void readConfig(int offset, byte[] dst) {
        System.arraycopy(config(), offset, dst, 0, dst.length);
    }

    /**
     * Only the writeback byte is writable (5.2.5, VIRTIO_BLK_F_CONFIG_WCE): 1 = writeback (FLUSH
     * makes writes durable), 0 = writethrough (every write is durable when it completes).
     */
    @Override
    public boolean writeConfig(int offset, byte[] data) {
        if (!offersWce() || offset != VirtioBlk.CFG_WRITEBACK || data.length != 1 || (data[0] & 0xfe) != 0) {
            return false;
        }
        boolean on = data[0] == 1;
        if (on != writeback) {
            writeback = on;
            LOG.info("blk: the driver switched the cache to {}", on ? "writeback" : "writethrough");
        }
        return true;
    }

    /** Whether writes must be durable when they complete (the driver chose writethrough). */
    boolean writeThrough() {
        return !writeback;
    }

    private boolean offersWce() {
        return !store.isReadOnly() && !flushIsNoop;
    }

    @Override
    public QueueHandler queueHandler(int index, GuestMemory memory) {
        IoUring ring = null;
        if (aio == Aio.IO_URING && store.fd() >= 0 && !uringFailed) {
            try {
                ring = IoUring.create(Math.min(RING_ENTRIES, maxQueueSize));
            } catch (NativeException e) {
                // seccomp (docker's default profile) and old kernels refuse io_uring: keep serving
                uringFailed = true;
                LOG.warn("blk: io_uring unavailable ({}): queues serve requests inline (--aio sync)", e.getMessage());
            }
        }
        return new BlkQueueHandler(store, serial, flushIsNoop, ring, this::writeThrough);
    }

    BackingStore store() {
        return store;
    }
}
