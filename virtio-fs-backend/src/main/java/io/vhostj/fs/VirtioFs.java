package io.vhostj.fs;

/**
 * virtio-fs device layouts (virtio 1.2, 5.11): config space {@code char tag[36]; le32
 * num_request_queues; le32 notify_buf_size} (the last only with VIRTIO_FS_F_NOTIFICATION, which
 * we do not offer). Queue 0 is the high-priority queue, 1.. are request queues.
 */
public final class VirtioFs {
    public static final int CFG_TAG = 0;
    public static final int TAG_BYTES = 36;
    public static final int CFG_NUM_REQUEST_QUEUES = CFG_TAG + TAG_BYTES;
    /** Config space without notify_buf_size. */
    public static final int CONFIG_SIZE = CFG_NUM_REQUEST_QUEUES + 4;
    public static final int HIPRIO_QUEUE = 0;

    private VirtioFs() {
    }
}
