package io.vhostj.fuzz;

import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.virtq.SplitQueue;
import io.vhostj.vhostuser.virtq.SplitRingLayout;

/**
 * A split ring in one guest region that offers a single request: the descriptor table, avail
 * and used rings at the start of the region, the chain's buffers laid end to end from
 * {@code dataOffset}. What the device-side targets (virtio-blk, FUSE) build for every input.
 */
public final class OneChainRing {
    private final long host;
    private final long gpa;
    private final int queueSize;
    private final long desc;
    private final long avail;
    private final long used;
    private long next;
    private int count;
    private long writable;

    /** Zeroes {@code regionSize} bytes at {@code host} (guest-physical {@code gpa}) and lays the rings out. */
    public OneChainRing(long host, long gpa, long regionSize, long dataOffset, int queueSize) {
        this.host = host;
        this.gpa = gpa;
        this.queueSize = queueSize;
        Native.zero(host, regionSize);
        desc = host;
        avail = host + SplitRingLayout.descTableSize(queueSize);
        used = (avail + SplitRingLayout.availRingSize(queueSize) + 3) & ~3L;
        next = dataOffset;
    }

    /** Appends a descriptor of {@code length} bytes (device-writable or not) to the chain. */
    public void add(int length, boolean deviceWritable) {
        if (count > 0) {
            long prev = desc + 16L * (count - 1);
            Native.putShort(prev + 12, (short) (Native.getShort(prev + 12) | 1)); // VIRTQ_DESC_F_NEXT
        }
        long d = desc + 16L * count;
        Native.putLong(d, gpa + next);
        Native.putInt(d + 8, length);
        Native.putShort(d + 12, (short) (deviceWritable ? 2 : 0));
        Native.putShort(d + 14, (short) (count + 1));
        next += length;
        writable += deviceWritable ? length : 0;
        count++;
    }

    /** Bytes of the chain the device may write. */
    public long writableBytes() {
        return writable;
    }

    /** Puts head 0 in the avail ring (avail->idx = 1) and returns the device's queue over it. */
    public SplitQueue offer(GuestMemory memory) {
        Native.putShort(avail + 2, (short) 1);
        return SplitQueue.create(queueSize, desc, avail, used, memory, 0, 0);
    }

    /** Host address of the region's first byte. */
    public long host() {
        return host;
    }
}
