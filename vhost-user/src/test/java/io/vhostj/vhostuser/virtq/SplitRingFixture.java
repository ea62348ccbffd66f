package io.vhostj.vhostuser.virtq;

import java.util.List;

import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.MemoryRegion;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.Memfd;
import io.vhostj.vhostuser.sys.Native;

/**
 * A split ring laid out by hand in one region of guest memory, playing the driver: 1 MiB at
 * gpa 0x10000 (frontend address 0x7f0000000000), the descriptor table at offset 0, avail ring at
 * 0x1000, used ring at 0x2000, buffers from 0x4000 on. Every driver-side store is spelled out
 * with {@link Native} so a test reads as the bytes the spec describes.
 */
final class SplitRingFixture implements AutoCloseable {
    static final long GPA = 0x10000;
    static final long UVA = 0x7f00_0000_0000L;
    static final long SIZE = 1 << 20;
    static final long DESC_OFFSET = 0;
    static final long AVAIL_OFFSET = 0x1000;
    static final long USED_OFFSET = 0x2000;
    static final long DATA_OFFSET = 0x4000;

    final int queueSize;
    final MemoryRegion region;
    final GuestMemory memory;
    final long desc;
    final long avail;
    final long used;
    private int availIdx;

    SplitRingFixture(int queueSize) throws Exception {
        this.queueSize = queueSize;
        try (Fd fd = Memfd.create("split-ring-fixture", SIZE)) {
            region = MemoryRegion.map(GPA, SIZE, UVA, 0, fd.fd());
        }
        memory = GuestMemory.of(List.of(region));
        // as SET_VRING_ADDR would: frontend addresses translated with the rings' full sizes
        desc = memory.translateUser(UVA + DESC_OFFSET, SplitRingLayout.descTableSize(queueSize));
        avail = memory.translateUser(UVA + AVAIL_OFFSET, SplitRingLayout.availRingSize(queueSize));
        used = memory.translateUser(UVA + USED_OFFSET, SplitRingLayout.usedRingSize(queueSize));
    }

    SplitQueue queue(long features) {
        return queue(features, 0);
    }

    SplitQueue queue(long features, int lastAvailIndex) {
        return SplitQueue.create(queueSize, desc, avail, used, memory, features, lastAvailIndex);
    }

    /** Guest-physical address of byte {@code offset} of the region. */
    static long gpa(long offset) {
        return GPA + offset;
    }

    /** Our host address of byte {@code offset} of the region. */
    long host(long offset) {
        return region.hostAddr() + offset;
    }

    /** Host address of the guest-physical address {@code gpa}. */
    long hostOfGpa(long gpa) {
        return region.hostAddr() + (gpa - GPA);
    }

    void desc(int index, long addr, int len, int flags, int next) {
        putDesc(desc, index, addr, len, flags, next);
    }

    /** Writes entry {@code index} of a descriptor table at host address {@code table}. */
    static void putDesc(long table, int index, long addr, int len, int flags, int next) {
        long d = table + (long) index * SplitRingLayout.DESC_SIZE;
        Native.putLong(d + SplitRingLayout.DESC_ADDR, addr);
        Native.putInt(d + SplitRingLayout.DESC_LEN, len);
        Native.putShort(d + SplitRingLayout.DESC_FLAGS, (short) flags);
        Native.putShort(d + SplitRingLayout.DESC_NEXT, (short) next);
    }

    /** Makes {@code head} available: ring entry, then the index (2.7.13). */
    void offer(int head) {
        Native.putShort(avail + SplitRingLayout.AVAIL_RING + 2L * (availIdx & (queueSize - 1)), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
        Native.putShortRelease(avail + SplitRingLayout.AVAIL_IDX, (short) availIdx);
    }

    /** Sets avail->idx (and where {@link #offer} writes next) without touching the ring. */
    void availIdx(int idx) {
        availIdx = idx & 0xffff;
        Native.putShortRelease(avail + SplitRingLayout.AVAIL_IDX, (short) availIdx);
    }

    void availFlags(int flags) {
        Native.putShort(avail + SplitRingLayout.AVAIL_FLAGS, (short) flags);
    }

    void usedEvent(int idx) {
        Native.putShort(avail + SplitRingLayout.usedEventOffset(queueSize), (short) idx);
    }

    int usedFlags() {
        return Native.getShort(used + SplitRingLayout.USED_FLAGS) & 0xffff;
    }

    int usedIdx() {
        return Native.getShortVolatile(used + SplitRingLayout.USED_IDX) & 0xffff;
    }

    void usedIdx(int idx) {
        Native.putShort(used + SplitRingLayout.USED_IDX, (short) idx);
    }

    int usedId(int slot) {
        return Native.getInt(used + SplitRingLayout.USED_RING + (long) SplitRingLayout.USED_ELEM_SIZE * slot
                + SplitRingLayout.USED_ELEM_ID);
    }

    int usedLen(int slot) {
        return Native.getInt(used + SplitRingLayout.USED_RING + (long) SplitRingLayout.USED_ELEM_SIZE * slot
                + SplitRingLayout.USED_ELEM_LEN);
    }

    int availEvent() {
        return Native.getShort(used + SplitRingLayout.availEventOffset(queueSize)) & 0xffff;
    }

    void availEvent(int idx) {
        Native.putShort(used + SplitRingLayout.availEventOffset(queueSize), (short) idx);
    }

    @Override
    public void close() {
        region.close();
    }
}
