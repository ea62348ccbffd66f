package io.vhostj.fuzz;

import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.GuestMemoryException;
import io.vhostj.vhostuser.memory.MemoryRegion;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.MappedRegion;
import io.vhostj.vhostuser.sys.Memfd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;
import io.vhostj.vhostuser.virtq.InflightRegion;
import io.vhostj.vhostuser.virtq.QueueBrokenException;
import io.vhostj.vhostuser.virtq.SplitQueue;
import io.vhostj.vhostuser.virtq.SplitRingLayout;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/**
 * A guest driver that writes whatever the fuzzer wrote into its split ring: the device side
 * ({@link SplitQueue}, {@link DescriptorChain}) pops every chain the avail ring offers.
 *
 * <p>Guest memory is two adjacent 64 KiB regions, gpa {@link #GPA_A} and {@link #GPA_B}, mapped
 * from one memfd at unrelated host addresses, so a descriptor that runs from one region into the
 * next names memory that is not contiguous on the host. Input layout ({@link #HEADER} bytes, then
 * the memory image):
 *
 * <pre>
 * u8  queue size       1 &lt;&lt; (value % 9): 1 to 256
 * u8  features         bit 0 VIRTIO_F_INDIRECT_DESC, bit 1 VIRTIO_F_EVENT_IDX,
 *                      bit 2 the queue records into an inflight region (INFLIGHT_SHMFD)
 * u16 last avail idx   where the device starts (GET/SET_VRING_BASE)
 * u32 read selector    picks the offset and length of a copy out of each chain
 * u32 write selector   picks the offset and length of a copy into each chain
 * u32 iovec selector   picks the part, range and room of an iovec export of each chain
 * u8  image[]          copied to gpa GPA_A: descriptor table at 0, then the avail ring, then
 *                      the used ring (4-aligned), then (64-aligned) what a previous backend
 *                      left in the inflight region; everything else reads as zero
 * </pre>
 *
 * <p>The inflight region is a copy in memory of its own that ends where its file ends, so that a
 * read past its end raises SIGBUS, which the JVM reports as an InternalError: a finding.
 *
 * <p>What must hold for every chain the queue hands out: every segment lies inside one region
 * on the host; the byte totals are the sums of the segments; no chain has more segments than the
 * queue size allows; copies, iovec exports and addresses inside the bounds name exactly the
 * chain's bytes, and past the bounds they throw ChainException. Anything else a ring does wrong
 * must come out as ChainException or QueueBrokenException.
 */
class DescriptorChainFuzzTest {
    static final long GPA_A = 0x1_0000;
    static final long REGION_SIZE = 64 << 10;
    static final long GPA_B = GPA_A + REGION_SIZE;
    static final int HEADER = 16;
    /** Bytes compared after an in-bounds copy; the copy itself may be longer. */
    private static final int MAX_COPY = 64 << 10;
    /**
     * Where copies out of a chain land. An out-of-bounds copy that is wrongly let through can
     * move a whole chain, so those probes run only on chains that fit.
     */
    private static final long SCRATCH_SIZE = 16L << 20;
    private static final int MAX_IOVECS = 1024;
    private static final long PAGE = 4096;
    /** The inflight file: two pages, mapped with a third page past its end. */
    private static final long INFLIGHT_FILE_SIZE = 2 * PAGE;
    /** Reused from input to input, as a queue reuses it from request to request. */
    private static final DescriptorChain CHAIN = new DescriptorChain();

    private static Fd memfd;
    private static MemoryRegion regionA;
    private static MemoryRegion regionB;
    private static GuestMemory memory;
    private static Fd inflightFd;
    private static MappedRegion inflightMapping;
    private static long scratch;
    private static long iovecs;

    @BeforeAll
    static void mapGuestMemory() throws NativeException, GuestMemoryException {
        memfd = Memfd.create("vhostj-fuzz-guest", 2 * REGION_SIZE);
        regionA = MemoryRegion.map(GPA_A, REGION_SIZE, 0x7000_0000L, 0, memfd.fd());
        regionB = MemoryRegion.map(GPA_B, REGION_SIZE, 0x5000_0000L, REGION_SIZE, memfd.fd());
        memory = GuestMemory.of(List.of(regionA, regionB));
        scratch = Native.allocate(SCRATCH_SIZE);
        iovecs = Native.allocate(16L * MAX_IOVECS);
        // MappedRegion.map refuses to map past the end of a file, so the guard page is made by
        // shrinking the file under the mapping: touching it raises SIGBUS.
        inflightFd = Memfd.create("vhostj-fuzz-inflight", INFLIGHT_FILE_SIZE + PAGE);
        inflightMapping = MappedRegion.map(inflightFd.fd(), INFLIGHT_FILE_SIZE + PAGE, 0);
        Native.check("ftruncate", Native.LIBC.ftruncate(inflightFd.fd(), INFLIGHT_FILE_SIZE));
    }

    @AfterAll
    static void unmapGuestMemory() {
        regionA.close();
        regionB.close();
        memfd.close();
        Native.free(scratch);
        Native.free(iovecs);
        inflightMapping.close();
        inflightFd.close();
    }

    /** Where the rings of a queue of {@code size} lie, as offsets into region A. */
    record Layout(int size, long desc, long avail, long used, long inflight) {
        static Layout of(int size) {
            long avail = SplitRingLayout.descTableSize(size);
            long used = (avail + SplitRingLayout.availRingSize(size) + 3) & ~3L;
            long inflight = (used + SplitRingLayout.usedRingSize(size) + 63) & ~63L;
            return new Layout(size, 0, avail, used, inflight);
        }
    }

    @FuzzTest(maxDuration = "5s")
    void popChains(byte[] input) throws GuestMemoryException {
        if (input.length < HEADER) {
            return;
        }
        int size = 1 << ((input[0] & 0xff) % 9);
        long features = ((input[1] & 1) != 0 ? VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC) : 0)
                | ((input[1] & 2) != 0 ? VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX) : 0);
        int lastAvail = (input[2] & 0xff) | (input[3] & 0xff) << 8;
        long readSelector = u32(input, 4);
        long writeSelector = u32(input, 8);
        long iovSelector = u32(input, 12);

        long hostA = regionA.hostAddr();
        Native.zero(hostA, REGION_SIZE);
        Native.zero(regionB.hostAddr(), REGION_SIZE);
        int image = (int) Math.min(input.length - HEADER, REGION_SIZE);
        Native.copyFromArray(input, HEADER, hostA, image);

        // As the backend does at queue start: the rings are translated with their full sizes.
        Layout l = Layout.of(size);
        SplitQueue queue = SplitQueue.create(size,
                memory.translate(GPA_A + l.desc(), SplitRingLayout.descTableSize(size)),
                memory.translate(GPA_A + l.avail(), SplitRingLayout.availRingSize(size)),
                memory.translate(GPA_A + l.used(), SplitRingLayout.usedRingSize(size)),
                memory, features, lastAvail);
        if ((input[1] & 4) != 0) {
            int recovered = queue.attachInflight(InflightRegion.open(inflightImage(input, l), size));
            if (recovered < 0 || recovered > size) {
                throw new AssertionError(recovered + " requests to resubmit in a queue of " + size);
            }
        }

        // A queue never offers more than its size before the device catches up; twice that bounds
        // the loop even if the chains' own writes move the avail index.
        for (int popped = 0; popped < 2 * size + 2; popped++) {
            try {
                if (!queue.pop(CHAIN)) {
                    break;
                }
            } catch (ChainException e) {
                checkHead(CHAIN, size);
                queue.addUsed(CHAIN.head(), 0); // the request is answered even when malformed
                continue;
            } catch (QueueBrokenException e) {
                break;
            }
            checkChain(CHAIN, size, (input[1] & 1) != 0);
            checkReads(CHAIN, readSelector);
            checkIovecs(CHAIN, iovSelector);
            checkWritableAddressAt(CHAIN, writeSelector);
            int written = checkWrites(CHAIN, writeSelector);
            queue.addUsed(CHAIN.head(), written);
            // One publish per request rather than per batch: EVENT_IDX decides from the second on.
            queue.publishUsed();
        }
        queue.publishUsed();
        queue.enableNotifications();
        queue.disableNotifications();
    }

    /**
     * Copies the input's inflight part into the inflight file so that the region ends at the end
     * of the file; returns the region's host address.
     */
    private static long inflightImage(byte[] input, Layout l) {
        long regionSize = InflightRegion.queueRegionSize(l.size());
        long base = inflightMapping.address() + INFLIGHT_FILE_SIZE - regionSize;
        Native.zero(inflightMapping.address(), INFLIGHT_FILE_SIZE);
        long from = HEADER + l.inflight();
        int n = (int) Math.max(0, Math.min(regionSize, input.length - from));
        Native.copyFromArray(input, (int) Math.min(from, input.length), base, n);
        return base;
    }

    private static void checkHead(DescriptorChain c, int size) {
        if (c.head() < 0 || c.head() >= size) {
            throw new AssertionError("chain head " + c.head() + " outside a queue of " + size);
        }
    }

    private static void checkChain(DescriptorChain c, int size, boolean indirect) {
        checkHead(c, size);
        // The ring part of a chain has at most queue-size descriptors; an indirect table may hold
        // more (Linux fills tables past the ring size), but never more than the largest ring.
        int maxSegments = size + (indirect ? SplitRingLayout.MAX_QUEUE_SIZE : 0);
        if (c.readableCount() + c.writableCount() > maxSegments) {
            throw new AssertionError(c.readableCount() + " + " + c.writableCount()
                    + " segments in a chain of a queue of " + size);
        }
        long readable = 0;
        for (int i = 0; i < c.readableCount(); i++) {
            readable += checkSegment("readable", i, c.readableAddress(i), c.readableLength(i));
        }
        long writable = 0;
        for (int i = 0; i < c.writableCount(); i++) {
            writable += checkSegment("writable", i, c.writableAddress(i), c.writableLength(i));
        }
        if (readable != c.readableBytes() || writable != c.writableBytes()) {
            throw new AssertionError("segments sum to " + readable + "/" + writable + " bytes, the chain says "
                    + c.readableBytes() + "/" + c.writableBytes());
        }
        if (readable > 0xffff_ffffL || writable > 0xffff_ffffL) {
            throw new AssertionError("chain longer than 2^32 - 1 bytes in one direction");
        }
    }

    /** A segment must be non-empty and lie inside one region's host mapping. */
    private static long checkSegment(String kind, int i, long addr, int length) {
        long len = length & 0xffff_ffffL;
        if (len == 0) {
            throw new AssertionError(kind + " segment " + i + " is empty");
        }
        if (!inside(regionA, addr, len) && !inside(regionB, addr, len)) {
            throw new AssertionError(String.format("%s segment %d at host 0x%x+0x%x lies outside guest memory "
                    + "(A at 0x%x, B at 0x%x, 0x%x bytes each)", kind, i, addr, len, regionA.hostAddr(),
                    regionB.hostAddr(), REGION_SIZE));
        }
        return len;
    }

    private static boolean inside(MemoryRegion r, long addr, long len) {
        long start = r.hostAddr();
        return addr >= start && addr - start <= r.size() - len;
    }

    /** An in-bounds copy out of the chain gathers its segments in order; out of bounds throws. */
    private static void checkReads(DescriptorChain c, long selector) {
        long total = c.readableBytes();
        long offset = (selector & 0xffff) % (total + 1);
        long length = Math.min((selector >>> 16) % (total - offset + 1), MAX_COPY);
        try {
            c.readFromChain(offset, scratch, length);
        } catch (ChainException e) {
            throw new AssertionError("readFromChain(" + offset + ", " + length + ") inside " + total
                    + " readable bytes threw", e);
        }
        byte[] expected = gather(c, offset, (int) length);
        byte[] actual = new byte[(int) length];
        Native.copyToArray(scratch, actual, 0, actual.length);
        if (!Arrays.equals(expected, actual)) {
            throw new AssertionError("readFromChain(" + offset + ", " + length + ") copied other bytes than the"
                    + " readable segments hold");
        }
        for (long[] bad : outOfBounds(total)) {
            try {
                c.readFromChain(bad[0], scratch, bad[1]);
                throw new AssertionError("readFromChain(" + bad[0] + ", " + bad[1] + ") past " + total
                        + " readable bytes did not throw");
            } catch (ChainException expectedFailure) {
                // refused, nothing copied
            }
        }
    }

    /**
     * An in-bounds copy into the chain lands in its segments in order (checked when the
     * segments do not overlap each other; the guest may make them overlap); out of bounds throws.
     * Returns the bytes written, the used length.
     */
    private static int checkWrites(DescriptorChain c, long selector) {
        long total = c.writableBytes();
        long offset = (selector & 0xffff) % (total + 1);
        long length = Math.min((selector >>> 16) % (total - offset + 1), MAX_COPY);
        byte[] pattern = new byte[(int) length];
        for (int i = 0; i < pattern.length; i++) {
            pattern[i] = (byte) (i * 31 + 7);
        }
        Native.copyFromArray(pattern, 0, scratch, pattern.length);
        try {
            c.writeToChain(offset, scratch, length);
        } catch (ChainException e) {
            throw new AssertionError("writeToChain(" + offset + ", " + length + ") inside " + total
                    + " writable bytes threw", e);
        }
        if (writableSegmentsDisjoint(c)) {
            byte[] landed = scatterView(c, offset, pattern.length);
            if (!Arrays.equals(pattern, landed)) {
                throw new AssertionError("writeToChain(" + offset + ", " + length + ") did not land in the writable"
                        + " segments in order");
            }
        }
        for (long[] bad : outOfBounds(total)) {
            try {
                c.writeToChain(bad[0], scratch, bad[1]);
                throw new AssertionError("writeToChain(" + bad[0] + ", " + bad[1] + ") past " + total
                        + " writable bytes did not throw");
            } catch (ChainException expectedFailure) {
                // refused, nothing copied
            }
        }
        return (int) length;
    }

    /**
     * An iovec export of a range lists the range's pieces of the segments in order, within the
     * room given, or throws ChainException for want of room; out of bounds throws.
     */
    private static void checkIovecs(DescriptorChain c, long selector) {
        boolean writable = (selector & 0x40) != 0;
        int maxIov = (int) (selector & 0x3f) + 1;
        long total = writable ? c.writableBytes() : c.readableBytes();
        long offset = ((selector >>> 7) & 0x1ff) % (total + 1);
        long length = (selector >>> 16) % (total - offset + 1);
        int n;
        try {
            n = c.toIovecs(writable, offset, length, iovecs, maxIov);
        } catch (ChainException e) {
            if (segmentsIn(c, writable, offset, length) <= maxIov) {
                throw new AssertionError("toIovecs(" + offset + ", " + length + ") threw with room for "
                        + maxIov + " entries", e);
            }
            return;
        }
        if (n < 0 || n > maxIov || n != segmentsIn(c, writable, offset, length)) {
            throw new AssertionError("toIovecs(" + offset + ", " + length + ") made " + n + " entries for "
                    + segmentsIn(c, writable, offset, length) + " pieces, room " + maxIov);
        }
        long expectedAddr = 0;
        long covered = 0;
        for (int i = 0; i < n; i++) {
            long base = Native.getLong(iovecs + 16L * i);
            long len = Native.getLong(iovecs + 16L * i + 8);
            if (len <= 0 || addressAt(c, writable, offset + covered) != base
                    || addressAt(c, writable, offset + covered + len - 1) != base + len - 1) {
                throw new AssertionError(String.format("toIovecs(%d, %d) entry %d (0x%x+%d) is not the chain's"
                        + " bytes at %d", offset, length, i, base, len, offset + covered));
            }
            covered += len;
        }
        if (covered != length) {
            throw new AssertionError("toIovecs(" + offset + ", " + length + ") covered " + covered + " bytes");
        }
        for (long[] bad : outOfBounds(total)) {
            try {
                c.toIovecs(writable, bad[0], bad[1], iovecs, MAX_IOVECS);
                throw new AssertionError("toIovecs(" + bad[0] + ", " + bad[1] + ") past " + total
                        + " bytes did not throw");
            } catch (ChainException expectedFailure) {
                // refused
            }
        }
    }

    /** writableAddressAt names the byte a walk of the writable segments finds. */
    private static void checkWritableAddressAt(DescriptorChain c, long selector) {
        long total = c.writableBytes();
        for (long offset : new long[] {0, total - 1, (selector & 0xffff) % Math.max(total, 1), total, -1}) {
            long expected = offset >= 0 && offset < total ? addressAt(c, true, offset) : -1;
            try {
                long actual = c.writableAddressAt(offset);
                if (actual != expected) {
                    throw new AssertionError(String.format("writableAddressAt(%d) = 0x%x, the segments say 0x%x",
                            offset, actual, expected));
                }
            } catch (ChainException e) {
                if (expected != -1) {
                    throw new AssertionError("writableAddressAt(" + offset + ") inside " + total + " bytes threw", e);
                }
            }
        }
    }

    /** Host address of byte {@code offset} of a part, walking its segments; -1 past the end. */
    private static long addressAt(DescriptorChain c, boolean writable, long offset) {
        int count = writable ? c.writableCount() : c.readableCount();
        long skip = offset;
        for (int i = 0; i < count; i++) {
            long len = (writable ? c.writableLength(i) : c.readableLength(i)) & 0xffff_ffffL;
            if (skip < len) {
                return (writable ? c.writableAddress(i) : c.readableAddress(i)) + skip;
            }
            skip -= len;
        }
        return -1;
    }

    /** How many segments the range {@code [offset, offset + length)} of a part touches. */
    private static int segmentsIn(DescriptorChain c, boolean writable, long offset, long length) {
        int count = writable ? c.writableCount() : c.readableCount();
        long start = 0;
        int n = 0;
        for (int i = 0; i < count; i++) {
            long len = (writable ? c.writableLength(i) : c.readableLength(i)) & 0xffff_ffffL;
            if (length > 0 && start < offset + length && offset < start + len) {
                n++;
            }
            start += len;
        }
        return n;
    }

    /** (offset, length) pairs that reach past {@code total} bytes, some only by overflowing. */
    private static long[][] outOfBounds(long total) {
        if (total > SCRATCH_SIZE) {
            return new long[][] {{total, 1}, {0, total + 1}, {total + 1, 0}, {-1, 1}, {0, -1}};
        }
        return new long[][] {
            {total, 1}, {0, total + 1}, {total + 1, 0}, {-1, 1}, {0, -1},
            {1, Long.MAX_VALUE}, {Long.MAX_VALUE, 1}, {Long.MAX_VALUE, Long.MAX_VALUE},
        };
    }

    /** The readable bytes [offset, offset + length) read segment by segment. */
    private static byte[] gather(DescriptorChain c, long offset, int length) {
        byte[] out = new byte[length];
        int done = 0;
        long skip = offset;
        for (int i = 0; i < c.readableCount() && done < length; i++) {
            long segLen = c.readableLength(i) & 0xffff_ffffL;
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            int n = (int) Math.min(segLen - skip, length - done);
            Native.copyToArray(c.readableAddress(i) + skip, out, done, n);
            done += n;
            skip = 0;
        }
        return out;
    }

    /** The writable bytes [offset, offset + length) read back segment by segment. */
    private static byte[] scatterView(DescriptorChain c, long offset, int length) {
        byte[] out = new byte[length];
        int done = 0;
        long skip = offset;
        for (int i = 0; i < c.writableCount() && done < length; i++) {
            long segLen = c.writableLength(i) & 0xffff_ffffL;
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            int n = (int) Math.min(segLen - skip, length - done);
            Native.copyToArray(c.writableAddress(i) + skip, out, done, n);
            done += n;
            skip = 0;
        }
        return out;
    }

    private static boolean writableSegmentsDisjoint(DescriptorChain c) {
        int n = c.writableCount();
        long[][] segs = new long[n][];
        for (int i = 0; i < n; i++) {
            segs[i] = new long[] {c.writableAddress(i), c.writableAddress(i) + (c.writableLength(i) & 0xffff_ffffL)};
        }
        Arrays.sort(segs, (x, y) -> Long.compare(x[0], y[0]));
        for (int i = 1; i < n; i++) {
            if (segs[i][0] < segs[i - 1][1]) {
                return false;
            }
        }
        return true;
    }

    private static long u32(byte[] b, int off) {
        return (b[off] & 0xffL) | (b[off + 1] & 0xffL) << 8 | (b[off + 2] & 0xffL) << 16 | (b[off + 3] & 0xffL) << 24;
    }
}
