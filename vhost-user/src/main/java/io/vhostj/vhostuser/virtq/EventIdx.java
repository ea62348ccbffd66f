package io.vhostj.vhostuser.virtq;

/** VIRTIO_F_EVENT_IDX arithmetic (virtio 1.2, 2.7.10; Linux {@code vring_need_event}). */
public final class EventIdx {
    private EventIdx() {
    }

    /**
     * Whether moving an index from {@code oldIdx} to {@code newIdx} crossed {@code eventIdx}, i.e.
     * the other side asked to be notified at some index in {@code [oldIdx, newIdx)}. All values
     * are 16-bit ring indices and wrap.
     */
    public static boolean needEvent(int eventIdx, int newIdx, int oldIdx) {
        return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
    }
}
