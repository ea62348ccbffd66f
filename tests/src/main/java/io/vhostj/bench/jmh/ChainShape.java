package io.vhostj.bench.jmh;

import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_SIZE;

import io.vhostj.vhostuser.frontend.DriverQueue;
import io.vhostj.vhostuser.frontend.GuestRam;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.GuestMemoryException;
import io.vhostj.vhostuser.virtq.DescriptorChain;

/**
 * The request shapes the chain benchmarks post. Every chain of one shape points at the same
 * buffers: the device side never touches payload bytes while walking, so sharing them changes
 * nothing but the RAM the fixture needs.
 *
 * <ul>
 * <li>{@code 1}: one 4 KiB device-writable buffer (an rx buffer);</li>
 * <li>{@code 3}: virtio-blk read: 16-byte header (readable), 4 KiB data, 1-byte status (writable);</li>
 * <li>{@code 17}: virtio-blk read of 60 KiB: header, 15 x 4 KiB data, status;</li>
 * <li>{@code indirect3}: the {@code 3} shape in an indirect table behind one ring descriptor.</li>
 * </ul>
 */
final class ChainShape {
    static final String[] NAMES = {"1", "3", "17", "indirect3"};
    private static final int PAGE = 4096;
    private static final int BLK_HEADER = 16;

    private final long[] addrs;
    private final int[] lens;
    private final int readable;
    private final int writable;
    private final long indirectTable; // guest-physical, or -1
    /** What a device would report as written: all writable bytes. */
    final int writtenLength;

    private ChainShape(long[] addrs, int[] lens, int readable, long indirectTable) {
        this.addrs = addrs;
        this.lens = lens;
        this.readable = readable;
        this.writable = lens.length - readable;
        this.indirectTable = indirectTable;
        int w = 0;
        for (int i = readable; i < lens.length; i++) {
            w += lens[i];
        }
        this.writtenLength = w;
    }

    static ChainShape of(String name, GuestRam ram) {
        switch (name) {
            case "1":
                return new ChainShape(new long[] {ram.allocate(PAGE, PAGE)}, new int[] {PAGE}, 0, -1);
            case "3":
                return blk(ram, 1, -1);
            case "17":
                return blk(ram, 15, -1);
            case "indirect3": {
                ChainShape inner = blk(ram, 1, -1);
                long table = ram.allocate((long) DESC_SIZE * inner.lens.length, DESC_SIZE);
                DriverQueue.writeIndirectTable(ram.host(table), inner.addrs, inner.lens, inner.readable,
                        inner.lens.length - inner.readable);
                return new ChainShape(inner.addrs, inner.lens, inner.readable, table);
            }
            default:
                throw new IllegalArgumentException("unknown chain shape " + name);
        }
    }

    private static ChainShape blk(GuestRam ram, int dataPages, long indirectTable) {
        int n = dataPages + 2;
        long[] addrs = new long[n];
        int[] lens = new int[n];
        addrs[0] = ram.allocate(BLK_HEADER, BLK_HEADER);
        lens[0] = BLK_HEADER;
        for (int i = 1; i <= dataPages; i++) {
            addrs[i] = ram.allocate(PAGE, PAGE);
            lens[i] = PAGE;
        }
        addrs[n - 1] = ram.allocate(1, 1);
        lens[n - 1] = 1;
        return new ChainShape(addrs, lens, 1, indirectTable);
    }

    /** Descriptors one chain takes in the ring. */
    int ringDescriptors() {
        return indirectTable >= 0 ? 1 : lens.length;
    }

    /** Places one chain of this shape in the avail ring (not yet published); the head, or -1 if full. */
    int post(DriverQueue driver) {
        if (indirectTable >= 0) {
            return driver.addIndirect(indirectTable, lens.length);
        }
        return driver.add(addrs, lens, readable, writable);
    }

    /** Fails unless {@code chain} is one of ours, walked and translated as posted: the benchmark measures what it says. */
    void verify(DescriptorChain chain, GuestMemory memory) throws GuestMemoryException {
        boolean ok = chain.readableCount() == readable && chain.writableCount() == writable;
        for (int i = 0; ok && i < lens.length; i++) {
            long host = memory.translate(addrs[i], lens[i]);
            ok = i < readable
                    ? chain.readableAddress(i) == host && chain.readableLength(i) == lens[i]
                    : chain.writableAddress(i - readable) == host && chain.writableLength(i - readable) == lens[i];
        }
        if (!ok || chain.writableBytes() != writtenLength) {
            throw new IllegalStateException("chain walked as " + chain.readableCount() + " readable + "
                    + chain.writableCount() + " writable segments, " + chain.writableBytes()
                    + " writable bytes; posted " + readable + " + " + writable + ", " + writtenLength);
        }
    }
}
