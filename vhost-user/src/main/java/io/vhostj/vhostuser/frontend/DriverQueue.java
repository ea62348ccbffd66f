package io.vhostj.vhostuser.frontend;

import static io.vhostj.vhostuser.virtq.SplitRingLayout.*;

import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.EventIdx;

/**
 * The driver side of a split virtqueue in {@link GuestRam}: places descriptor chains, publishes
 * them, kicks only when the device asked (EVENT_IDX or NO_NOTIFY), and reaps used entries by
 * polling the used ring. Allocation-free after construction; single-threaded.
 */
public final class DriverQueue {
    /** Receives completed requests from {@link #reap}. */
    public interface UsedConsumer {
        void onUsed(int head, int writtenLength);
    }

    private final GuestRam ram;
    private final int size;
    private final int mask;
    private final boolean eventIdx;
    private final long descGpa;
    private final long availGpa;
    private final long usedGpa;
    private final long desc;
    private final long avail;
    private final long used;
    private final int[] chainLength;

    private int freeHead;
    private int freeCount;
    private int availIdx;       // next avail slot (shadow of avail->idx)
    private int publishedAvail; // avail->idx as last stored
    private int kickedAvail;    // avail->idx at the last kick decision
    private int lastUsed;
    public long kicks;
    public long kicksSuppressed;

    public DriverQueue(GuestRam ram, int size, boolean eventIdx) {
        if (!isValidQueueSize(size)) {
            throw new IllegalArgumentException("queue size " + size);
        }
        this.ram = ram;
        this.size = size;
        this.mask = size - 1;
        this.eventIdx = eventIdx;
        this.descGpa = ram.allocate(descTableSize(size), 4096);
        this.availGpa = ram.allocate(availRingSize(size), 4096);
        this.usedGpa = ram.allocate(usedRingSize(size), 4096);
        ram.zero(descGpa, descTableSize(size));
        ram.zero(availGpa, availRingSize(size));
        ram.zero(usedGpa, usedRingSize(size));
        this.desc = ram.host(descGpa);
        this.avail = ram.host(availGpa);
        this.used = ram.host(usedGpa);
        this.chainLength = new int[size];
        for (int i = 0; i < size; i++) {
            Native.putShort(desc + (long) i * DESC_SIZE + DESC_NEXT, (short) ((i + 1) & mask));
        }
        freeHead = 0;
        freeCount = size;
    }

    public int size() {
        return size;
    }

    public long descUserAddr() {
        return desc;
    }

    public long availUserAddr() {
        return avail;
    }

    public long usedUserAddr() {
        return used;
    }

    public long descGuestAddr() {
        return descGpa;
    }

    public int freeDescriptors() {
        return freeCount;
    }

    /** Requests posted and not yet reaped. */
    public int inFlight() {
        return (availIdx - lastUsed) & 0xffff;
    }

    /**
     * Places a chain of {@code readable} device-readable then {@code writable} device-writable
     * buffers ({@code addrs}/{@code lens}, guest-physical) and queues it in the avail ring
     * (visible at {@link #publish()}). Returns the head index, or -1 if descriptors ran out.
     */
    public int add(long[] addrs, int[] lens, int readable, int writable) {
        int n = readable + writable;
        if (n == 0 || n > freeCount) {
            return -1;
        }
        int head = freeHead;
        int index = head;
        for (int i = 0; i < n; i++) {
            long d = desc + (long) index * DESC_SIZE;
            Native.putLong(d + DESC_ADDR, addrs[i]);
            Native.putInt(d + DESC_LEN, lens[i]);
            short flags = (short) ((i >= readable ? DESC_F_WRITE : 0) | (i < n - 1 ? DESC_F_NEXT : 0));
            Native.putShort(d + DESC_FLAGS, flags);
            if (i < n - 1) {
                index = Native.getShort(d + DESC_NEXT) & 0xffff;
            }
        }
        freeHead = Native.getShort(desc + (long) index * DESC_SIZE + DESC_NEXT) & 0xffff;
        freeCount -= n;
        chainLength[head] = n;
        Native.putShort(avail + AVAIL_RING + 2L * (availIdx & mask), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
        return head;
    }

    /**
     * Writes an indirect descriptor table at host address {@code table}: {@code readable}
     * device-readable buffers, then {@code writable} device-writable ones, chained in order, as
     * {@link #add} lays a chain in the ring. Returns the descriptor count, for {@link #addIndirect}.
     */
    public static int writeIndirectTable(long table, long[] addrs, int[] lens, int readable, int writable) {
        int n = readable + writable;
        for (int i = 0; i < n; i++) {
            long d = table + (long) i * DESC_SIZE;
            Native.putLong(d + DESC_ADDR, addrs[i]);
            Native.putInt(d + DESC_LEN, lens[i]);
            Native.putShort(d + DESC_FLAGS, (short) ((i >= readable ? DESC_F_WRITE : 0) | (i < n - 1 ? DESC_F_NEXT : 0)));
            Native.putShort(d + DESC_NEXT, (short) (i < n - 1 ? i + 1 : 0));
        }
        return n;
    }

    /**
     * Places a single INDIRECT descriptor pointing at a table the caller built at {@code tableGpa}
     * ({@code count} descriptors). Returns the head, or -1.
     */
    public int addIndirect(long tableGpa, int count) {
        if (freeCount == 0) {
            return -1;
        }
        int head = freeHead;
        long d = desc + (long) head * DESC_SIZE;
        Native.putLong(d + DESC_ADDR, tableGpa);
        Native.putInt(d + DESC_LEN, count * DESC_SIZE);
        Native.putShort(d + DESC_FLAGS, DESC_F_INDIRECT);
        freeHead = Native.getShort(d + DESC_NEXT) & 0xffff;
        freeCount--;
        chainLength[head] = 1;
        Native.putShort(avail + AVAIL_RING + 2L * (availIdx & mask), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
        return head;
    }

    /** Makes added chains visible to the device (one release store of avail->idx). */
    public void publish() {
        if (publishedAvail != availIdx) {
            Native.putShortRelease(avail + AVAIL_IDX, (short) availIdx);
            publishedAvail = availIdx;
        }
    }

    /** Publishes and kicks if the device wants a kick for what was published since the last call. */
    public void publishAndKick(EventFd kick) throws NativeException {
        publish();
        int old = kickedAvail;
        int now = publishedAvail;
        if (old == now) {
            return;
        }
        kickedAvail = now;
        Native.fullFence(); // avail->idx visible before we read the device's suppression state
        boolean needed;
        if (eventIdx) {
            int event = Native.getShortVolatile(used + availEventOffset(size)) & 0xffff;
            needed = EventIdx.needEvent(event, now, old);
        } else {
            needed = (Native.getShortVolatile(used + USED_FLAGS) & USED_F_NO_NOTIFY) == 0;
        }
        if (needed) {
            kicks++;
            kick.signal();
        } else {
            kicksSuppressed++;
        }
    }

    /**
     * Tells the device whether to interrupt us: off while we busy-poll the used ring. With
     * EVENT_IDX, "off" parks used_event half a ring-index space behind, so the device would need
     * 32768 completions to cross it again before we next turn interrupts on.
     */
    public void interrupts(boolean on) {
        if (eventIdx) {
            Native.putShortVolatile(avail + usedEventOffset(size), (short) (on ? lastUsed : lastUsed - 0x8000));
        } else {
            Native.putShortVolatile(avail + AVAIL_FLAGS, on ? 0 : AVAIL_F_NO_INTERRUPT);
        }
        Native.fullFence();
    }

    /** True if the device has completed requests we have not reaped. */
    public boolean hasUsed() {
        return (Native.getShortAcquire(used + USED_IDX) & 0xffff) != lastUsed;
    }

    /** Reaps every completed request; returns how many. */
    public int reap(UsedConsumer consumer) {
        int usedIdx = Native.getShortAcquire(used + USED_IDX) & 0xffff;
        int n = 0;
        while (lastUsed != usedIdx) {
            long elem = used + USED_RING + (long) USED_ELEM_SIZE * (lastUsed & mask);
            int head = Native.getInt(elem + USED_ELEM_ID);
            int len = Native.getInt(elem + USED_ELEM_LEN);
            lastUsed = (lastUsed + 1) & 0xffff;
            release(head);
            consumer.onUsed(head, len);
            n++;
        }
        return n;
    }

    private void release(int head) {
        if (head < 0 || head >= size || chainLength[head] == 0) {
            throw new IllegalStateException("device returned head " + head + " that is not in flight");
        }
        int n = chainLength[head];
        chainLength[head] = 0;
        int last = head;
        for (int i = 1; i < n; i++) {
            last = Native.getShort(desc + (long) last * DESC_SIZE + DESC_NEXT) & 0xffff;
        }
        Native.putShort(desc + (long) last * DESC_SIZE + DESC_NEXT, (short) freeHead);
        freeHead = head;
        freeCount += n;
    }

    public int lastUsedIndex() {
        return lastUsed;
    }

    public int availIndex() {
        return availIdx;
    }
}
