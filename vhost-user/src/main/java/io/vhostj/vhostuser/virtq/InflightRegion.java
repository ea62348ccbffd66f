package io.vhostj.vhostuser.virtq;

import io.vhostj.vhostuser.sys.Native;

/**
 * One queue's part of the INFLIGHT_SHMFD region (QEMU vhost-user.rst, "Inflight I/O tracking",
 * split virtqueues). The frontend keeps this memory across backend restarts; after a crash the
 * new backend resubmits what was popped but never returned, in the order it was popped.
 *
 * <pre>
 * struct DescStateSplit { u8 inflight; u8 padding[5]; u16 next; u64 counter; };      16 bytes
 * struct QueueRegionSplit { u64 features; u16 version; u16 desc_num;
 *                           u16 last_batch_head; u16 used_idx; DescStateSplit desc[]; }  16 + 16n
 * </pre>
 */
public final class InflightRegion {
    public static final int HEADER_SIZE = 16;
    public static final int FEATURES = 0;
    public static final int VERSION = 8;
    public static final int DESC_NUM = 10;
    public static final int LAST_BATCH_HEAD = 12;
    public static final int USED_IDX = 14;
    public static final int DESC_STATE_SIZE = 16;
    public static final int DESC_INFLIGHT = 0;
    public static final int DESC_NEXT = 6;
    public static final int DESC_COUNTER = 8;
    public static final int REGION_VERSION = 1;
    private static final int ALIGN = 64;

    private final long base;
    private final int size;
    private long counter;

    private InflightRegion(long base, int size) {
        this.base = base;
        this.size = size;
    }

    /** Bytes one queue of {@code queueSize} takes, aligned as libvhost-user lays them out. */
    public static long queueRegionSize(int queueSize) {
        long raw = HEADER_SIZE + (long) DESC_STATE_SIZE * queueSize;
        return (raw + ALIGN - 1) & -ALIGN;
    }

    /** Writes an empty region (a fresh memfd from GET_INFLIGHT_FD). */
    public static void format(long base, int queueSize) {
        Native.zero(base, queueRegionSize(queueSize));
        Native.putShort(base + VERSION, (short) REGION_VERSION);
        Native.putShort(base + DESC_NUM, (short) queueSize);
    }

    /**
     * Opens the region of a queue about to start. Returns null if the region was laid out for
     * another queue size (then nothing can be recovered from it, and it is re-formatted).
     */
    public static InflightRegion open(long base, int queueSize) {
        int version = Native.getShort(base + VERSION) & 0xffff;
        int descNum = Native.getShort(base + DESC_NUM) & 0xffff;
        if (version != REGION_VERSION || descNum != (queueSize & 0xffff)) {
            format(base, queueSize);
        }
        InflightRegion r = new InflightRegion(base, queueSize);
        long max = 0;
        for (int i = 0; i < queueSize; i++) {
            max = Math.max(max, Native.getLong(r.desc(i) + DESC_COUNTER));
        }
        r.counter = max + 1;
        return r;
    }

    private long desc(int head) {
        return base + HEADER_SIZE + (long) head * DESC_STATE_SIZE;
    }

    /** A head was popped from the avail ring. */
    public void popped(int head) {
        long d = desc(head);
        Native.putLong(d + DESC_COUNTER, counter++);
        Native.putByte(d + DESC_INFLIGHT, (byte) 1);
    }

    /** A head goes into the used ring in the current batch. */
    public void used(int head) {
        Native.putShort(desc(head) + DESC_NEXT, Native.getShort(base + LAST_BATCH_HEAD));
        Native.putShort(base + LAST_BATCH_HEAD, (short) head);
    }

    /**
     * The batch is published with used index {@code newUsedIdx}: clear the batch's inflight
     * flags ({@code batchSize} entries from last_batch_head), then record the index.
     */
    public void published(int batchSize, int newUsedIdx) {
        clearBatch(batchSize);
        Native.putShortRelease(base + USED_IDX, (short) newUsedIdx);
    }

    private void clearBatch(int batchSize) {
        int head = Native.getShort(base + LAST_BATCH_HEAD) & 0xffff;
        for (int i = 0; i < batchSize && head < size; i++) {
            long d = desc(head);
            Native.putByte(d + DESC_INFLIGHT, (byte) 0);
            head = Native.getShort(d + DESC_NEXT) & 0xffff;
        }
    }

    /**
     * After a restart: finishes a batch that the old backend published to the used ring but
     * not to this region, then returns the heads still in flight, oldest first.
     */
    public int[] recover(int ringUsedIdx) {
        int recorded = Native.getShort(base + USED_IDX) & 0xffff;
        if (recorded != ringUsedIdx) {
            clearBatch((ringUsedIdx - recorded) & 0xffff);
            Native.putShort(base + USED_IDX, (short) ringUsedIdx);
        }
        int n = 0;
        int[] heads = new int[size];
        for (int i = 0; i < size; i++) {
            if (Native.getByte(desc(i) + DESC_INFLIGHT) != 0) {
                heads[n++] = i;
            }
        }
        int[] out = java.util.Arrays.copyOf(heads, n);
        // insertion sort by counter: n is at most the queue size and usually tiny
        for (int i = 1; i < out.length; i++) {
            int h = out[i];
            long c = Native.getLong(desc(h) + DESC_COUNTER);
            int j = i - 1;
            while (j >= 0 && Native.getLong(desc(out[j]) + DESC_COUNTER) > c) {
                out[j + 1] = out[j];
                j--;
            }
            out[j + 1] = h;
        }
        return out;
    }
}
