package io.vhostj.vhostuser.virtq;

/**
 * The split virtqueue as it lies in guest memory (virtio 1.2, 2.7 "Split Virtqueues").
 * All fields little-endian.
 *
 * <pre>
 * struct virtq_desc  { le64 addr; le32 len; le16 flags; le16 next; };            16 bytes, align 16
 * struct virtq_avail { le16 flags; le16 idx; le16 ring[N]; le16 used_event; };   6 + 2N, align 2
 * struct virtq_used_elem { le32 id; le32 len; };                                 8 bytes
 * struct virtq_used  { le16 flags; le16 idx; virtq_used_elem ring[N]; le16 avail_event; }  6 + 8N, align 4
 * </pre>
 */
public final class SplitRingLayout {
    public static final int DESC_SIZE = 16;
    public static final int DESC_ADDR = 0;
    public static final int DESC_LEN = 8;
    public static final int DESC_FLAGS = 12;
    public static final int DESC_NEXT = 14;

    public static final short DESC_F_NEXT = 1;
    public static final short DESC_F_WRITE = 2;
    public static final short DESC_F_INDIRECT = 4;

    public static final int AVAIL_FLAGS = 0;
    public static final int AVAIL_IDX = 2;
    public static final int AVAIL_RING = 4;
    public static final short AVAIL_F_NO_INTERRUPT = 1;

    public static final int USED_FLAGS = 0;
    public static final int USED_IDX = 2;
    public static final int USED_RING = 4;
    public static final int USED_ELEM_SIZE = 8;
    public static final int USED_ELEM_ID = 0;
    public static final int USED_ELEM_LEN = 4;
    public static final short USED_F_NO_NOTIFY = 1;

    public static final int DESC_ALIGN = 16;
    public static final int AVAIL_ALIGN = 2;
    public static final int USED_ALIGN = 4;

    /** Largest queue a split ring may have (2.7: "Queue Size ... maximum 32768"). */
    public static final int MAX_QUEUE_SIZE = 32768;

    private SplitRingLayout() {
    }

    public static long descTableSize(int queueSize) {
        return (long) DESC_SIZE * queueSize;
    }

    /** Including used_event, present whether or not EVENT_IDX is negotiated. */
    public static long availRingSize(int queueSize) {
        return AVAIL_RING + 2L * queueSize + 2;
    }

    /** Including avail_event. */
    public static long usedRingSize(int queueSize) {
        return USED_RING + (long) USED_ELEM_SIZE * queueSize + 2;
    }

    public static long usedEventOffset(int queueSize) {
        return AVAIL_RING + 2L * queueSize;
    }

    public static long availEventOffset(int queueSize) {
        return USED_RING + (long) USED_ELEM_SIZE * queueSize;
    }

    public static boolean isValidQueueSize(int size) {
        return size > 0 && size <= MAX_QUEUE_SIZE && Integer.bitCount(size) == 1;
    }
}
