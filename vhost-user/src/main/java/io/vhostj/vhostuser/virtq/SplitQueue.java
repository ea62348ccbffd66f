package io.vhostj.vhostuser.virtq;

import static io.vhostj.vhostuser.virtq.SplitRingLayout.AVAIL_FLAGS;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.AVAIL_F_NO_INTERRUPT;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.AVAIL_IDX;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.AVAIL_RING;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.USED_ELEM_ID;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.USED_ELEM_LEN;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.USED_ELEM_SIZE;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.USED_FLAGS;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.USED_F_NO_NOTIFY;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.USED_IDX;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.USED_RING;

import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.sys.Native;

/**
 * Device side of a split virtqueue (virtio 1.2, 2.7) over translated host addresses. The ring
 * addresses were checked against guest memory when the queue was set up (see
 * {@link #create}); descriptor addresses are checked per descriptor by {@link DescriptorChain}.
 */
public final class SplitQueue implements Virtqueue {
    private final int size;
    private final int mask;
    private final long desc;
    private final long avail;
    private final long used;
    private final long usedEventAddr;
    private final long availEventAddr;
    private final GuestMemory memory;
    private final boolean eventIdx;
    private final boolean indirect;

    private int lastAvail;      // next avail entry to pop (16-bit, kept in an int)
    private int shadowAvail;    // avail->idx as last read
    private int usedIdx;        // next used entry to fill
    private int publishedUsed;  // used->idx as last stored
    private int signalledUsed;
    private boolean signalledUsedValid;
    private InflightRegion inflight;
    private int batchSize;
    private int[] resubmit = new int[0];
    private int resubmitted;

    private SplitQueue(int size, long desc, long avail, long used, GuestMemory memory, long features,
            int lastAvail) {
        this.size = size;
        this.mask = size - 1;
        this.desc = desc;
        this.avail = avail;
        this.used = used;
        this.usedEventAddr = avail + SplitRingLayout.usedEventOffset(size);
        this.availEventAddr = used + SplitRingLayout.availEventOffset(size);
        this.memory = memory;
        this.eventIdx = VirtioFeatures.has(features, VirtioFeatures.RING_EVENT_IDX);
        this.indirect = VirtioFeatures.has(features, VirtioFeatures.RING_INDIRECT_DESC);
        this.lastAvail = lastAvail & 0xffff;
        this.shadowAvail = this.lastAvail;
        this.usedIdx = Native.getShortVolatile(used + USED_IDX) & 0xffff;
        this.publishedUsed = usedIdx;
    }

    /**
     * Sets up a queue over rings at the given host addresses. The caller has translated the
     * three ring addresses with their full sizes ({@link SplitRingLayout}), so every ring access
     * below stays inside guest memory.
     */
    public static SplitQueue create(int size, long descHost, long availHost, long usedHost, GuestMemory memory,
            long features, int lastAvailIndex) {
        if (!SplitRingLayout.isValidQueueSize(size)) {
            throw new IllegalArgumentException("queue size " + size + " is not a power of two <= 32768");
        }
        return new SplitQueue(size, descHost, availHost, usedHost, memory, features, lastAvailIndex);
    }

    /**
     * Tracks this queue's requests in an INFLIGHT_SHMFD region and takes back what a previous
     * backend left in flight: those heads are popped first, oldest first, and the avail index
     * moves past them (as libvhost-user does: last_avail = used_idx + in flight).
     * Returns how many requests will be resubmitted.
     */
    public int attachInflight(InflightRegion region) {
        this.inflight = region;
        int ringUsed = Native.getShortVolatile(used + USED_IDX) & 0xffff;
        resubmit = region.recover(ringUsed);
        resubmitted = 0;
        if (resubmit.length > 0) {
            lastAvail = (ringUsed + resubmit.length) & 0xffff;
            shadowAvail = lastAvail;
        }
        return resubmit.length;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public boolean hasAvailable() throws QueueBrokenException {
        if (shadowAvail != lastAvail || resubmitted < resubmit.length) {
            return true;
        }
        readAvailIdx();
        return shadowAvail != lastAvail;
    }

    private void readAvailIdx() throws QueueBrokenException {
        int idx = Native.getShortAcquire(avail + AVAIL_IDX) & 0xffff;
        if (((idx - lastAvail) & 0xffff) > size) {
            throw new QueueBrokenException("avail index " + idx + " is more than a queue of " + size
                    + " ahead of " + lastAvail);
        }
        shadowAvail = idx;
    }

    @Override
    public boolean pop(DescriptorChain chain) throws QueueBrokenException, ChainException {
        if (resubmitted < resubmit.length) {
            chain.load(resubmit[resubmitted++], desc, size, memory, indirect);
            return true;
        }
        if (!hasAvailable()) {
            return false;
        }
        int head = Native.getShort(avail + AVAIL_RING + 2L * (lastAvail & mask)) & 0xffff;
        lastAvail = (lastAvail + 1) & 0xffff;
        if (head >= size) {
            throw new QueueBrokenException("avail ring names head " + head + " in a queue of " + size);
        }
        if (inflight != null) {
            inflight.popped(head);
        }
        chain.load(head, desc, size, memory, indirect);
        return true;
    }

    @Override
    public void addUsed(int head, int writtenLength) {
        long elem = used + USED_RING + (long) USED_ELEM_SIZE * (usedIdx & mask);
        Native.putInt(elem + USED_ELEM_ID, head);
        Native.putInt(elem + USED_ELEM_LEN, writtenLength);
        usedIdx = (usedIdx + 1) & 0xffff;
        if (inflight != null) {
            inflight.used(head);
            batchSize++;
        }
    }

    @Override
    public boolean publishUsed() {
        int now = usedIdx;
        if (publishedUsed == now) {
            return false;
        }
        // Entries before index (2.7.8.2): the release store orders the element writes first.
        Native.putShortRelease(used + USED_IDX, (short) now);
        publishedUsed = now;
        if (inflight != null) {
            inflight.published(batchSize, now);
            batchSize = 0;
        }
        // The index store must be visible before we read the driver's suppression state,
        // or both sides can miss each other (2.7.10 / Linux virtqueue_kick_prepare).
        Native.fullFence();
        if (!eventIdx) {
            return (Native.getShortVolatile(avail + AVAIL_FLAGS) & AVAIL_F_NO_INTERRUPT) == 0;
        }
        // As Linux vhost_notify(): compare against the index of the previous check; the first
        // check after (re)start always notifies.
        int event = Native.getShortVolatile(usedEventAddr) & 0xffff;
        int since = signalledUsed;
        boolean valid = signalledUsedValid;
        signalledUsed = now;
        signalledUsedValid = true;
        return !valid || EventIdx.needEvent(event, now, since);
    }

    @Override
    public void enableNotifications() {
        if (eventIdx) {
            Native.putShortVolatile(availEventAddr, (short) lastAvail);
        } else {
            Native.putShortVolatile(used + USED_FLAGS, (short) 0);
        }
        Native.fullFence();
    }

    @Override
    public void disableNotifications() {
        if (!eventIdx) {
            Native.putShortVolatile(used + USED_FLAGS, USED_F_NO_NOTIFY);
        }
        // With EVENT_IDX, leaving avail_event behind is enough: the driver only kicks when it
        // moves avail->idx across avail_event.
    }

    @Override
    public int lastAvailIndex() {
        return lastAvail;
    }
}
