package io.vhostj.fuzz;

import static io.vhostj.fuzz.DescriptorChainFuzzTest.GPA_A;
import static io.vhostj.fuzz.DescriptorChainFuzzTest.GPA_B;
import static io.vhostj.fuzz.DescriptorChainFuzzTest.HEADER;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_F_INDIRECT;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_F_NEXT;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_F_WRITE;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;

import io.vhostj.fuzz.DescriptorChainFuzzTest.Layout;
import io.vhostj.vhostuser.virtq.InflightRegion;
import io.vhostj.vhostuser.virtq.SplitRingLayout;

/**
 * The committed seed corpus of {@link DescriptorChainFuzzTest}: rings as a Linux driver fills
 * them (direct and indirect chains, buffers in both regions, an avail index that wraps, requests
 * a previous backend left in flight), plus the classic mistakes (a loop, a buffer across the
 * region boundary). {@link SeedCorpus} writes
 * them out.
 */
final class ChainSeeds {
    private static final int INDIRECT = 1;
    private static final int EVENT_IDX = 2;
    private static final int INFLIGHT = 4;

    private ChainSeeds() {
    }

    static Map<String, byte[]> seeds() {
        Map<String, byte[]> seeds = new LinkedHashMap<>();

        Ring r = new Ring(8, 0, 0, 0x0000_2000, 0x0001_ffff);
        r.desc(0, GPA_A + 0x1000, 64, DESC_F_NEXT, 1);
        r.desc(1, GPA_B + 0x100, 128, DESC_F_WRITE, 0);
        r.desc(2, GPA_A + 0x2000, 16, 0, 0);
        r.desc(3, GPA_A + 0x3000, 8, DESC_F_NEXT, 4);
        r.desc(4, GPA_A + 0x3100, 0, DESC_F_NEXT, 5); // zero-length descriptors are skipped
        r.desc(5, GPA_B + 0x3000, 4096, DESC_F_WRITE | DESC_F_NEXT, 6);
        r.desc(6, GPA_B + 0x5000, 512, DESC_F_WRITE, 0);
        r.avail(0, 2, 3);
        seeds.put("direct-chains", r.build(0x100));

        r = new Ring(4, INDIRECT, 0, 0x0004_0010, 0x0010_0000);
        r.desc(0, GPA_A + 0xc0, 3 * SplitRingLayout.DESC_SIZE, DESC_F_INDIRECT, 0);
        r.desc(1, GPA_A + 0x1800, 32, 0, 0);
        r.put(0xc0, GPA_A + 0x1000, 32, DESC_F_NEXT, 1);
        r.put(0xd0, GPA_B + 0x10, 32, DESC_F_NEXT, 2);
        r.put(0xe0, GPA_B + 0x1000, 256, DESC_F_WRITE, 0);
        r.avail(0, 1);
        seeds.put("indirect", r.build(0x100));

        r = new Ring(16, INDIRECT | EVENT_IDX, 0xfffe, 0x0010_0000, 0x0008_0000);
        for (int i = 0; i < 3; i++) {
            r.desc(i, GPA_A + 0x1000 + 0x100L * i, 0x80, DESC_F_NEXT, 8 + i);
            r.desc(8 + i, GPA_B + 0x100L * i, 0x40, DESC_F_WRITE, 0);
        }
        r.availFrom(0xfffe, 0, 1, 2);
        seeds.put("event-idx-wrap", r.build(0x1c0));

        // Longer than the 16 segments a DescriptorChain holds before it grows its arrays.
        r = new Ring(64, EVENT_IDX, 0, 0x0100_0100, 0x4000_0010);
        for (int i = 0; i < 40; i++) {
            long gpa = (i % 2 == 0 ? GPA_A + 0x4000 : GPA_B) + 0x100L * i;
            r.desc(i, gpa, 0x100, (i >= 20 ? DESC_F_WRITE : 0) | (i < 39 ? DESC_F_NEXT : 0), i + 1);
        }
        r.avail(0);
        seeds.put("long-chain", r.build(0x700));

        // An indirect table longer than the ring, as Linux builds for a large request.
        r = new Ring(8, INDIRECT, 0, 0x0200_0000, 0x0080_0080);
        r.desc(0, GPA_A + 0x200, 48 * SplitRingLayout.DESC_SIZE, DESC_F_INDIRECT, 0);
        for (int i = 0; i < 48; i++) {
            r.put(0x200 + 16L * i, GPA_B + 0x200L * i, 0x200, (i >= 24 ? DESC_F_WRITE : 0)
                    | (i < 47 ? DESC_F_NEXT : 0), i + 1);
        }
        r.avail(0);
        seeds.put("indirect-past-ring-size", r.build(0x500));

        // A restarted backend: heads 2 and 0 were popped by its predecessor and never used.
        r = new Ring(8, INFLIGHT | EVENT_IDX, 3, 0x0000_0010, 0x0000_0020);
        r.desc(0, GPA_A + 0x1000, 64, DESC_F_NEXT, 1);
        r.desc(1, GPA_B + 0x100, 128, DESC_F_WRITE, 0);
        r.desc(2, GPA_A + 0x2000, 16, 0, 0);
        r.avail(2, 0, 2);
        r.inflightHeader(1, 8, 2, 0);
        r.inflightDesc(0, 1, 0, 7);
        r.inflightDesc(2, 1, 0, 5);
        seeds.put("inflight-resubmit", r.build(0x200));

        r = new Ring(2, 0, 0, 0, 0);
        r.desc(0, GPA_A, 16, DESC_F_NEXT, 0); // a loop
        r.desc(1, GPA_B - 8, 16, 0, 0); // across the boundary of the two regions
        r.avail(0, 1);
        seeds.put("loop-and-boundary", r.build(0x100));
        return seeds;
    }

    /** A memory image with the rings of one queue in the fuzz target's layout. */
    private static final class Ring {
        private final ByteBuffer b = ByteBuffer.allocate(HEADER + 0x1000).order(ByteOrder.LITTLE_ENDIAN);
        private final Layout layout;
        private final int lastAvail;

        Ring(int size, int features, int lastAvail, int readSelector, int writeSelector) {
            this.layout = Layout.of(size);
            this.lastAvail = lastAvail;
            b.put(0, (byte) Integer.numberOfTrailingZeros(size));
            b.put(1, (byte) features);
            b.putShort(2, (short) lastAvail);
            b.putInt(4, readSelector);
            b.putInt(8, writeSelector);
        }

        void desc(int index, long gpa, int len, int flags, int next) {
            put(layout.desc() + (long) index * SplitRingLayout.DESC_SIZE, gpa, len, flags, next);
        }

        /** A descriptor anywhere in the image (an indirect table). */
        void put(long offset, long gpa, int len, int flags, int next) {
            int at = HEADER + (int) offset;
            b.putLong(at, gpa);
            b.putInt(at + 8, len);
            b.putShort(at + 12, (short) flags);
            b.putShort(at + 14, (short) next);
        }

        /** The QueueRegionSplit header a previous backend left behind. */
        void inflightHeader(int version, int descNum, int lastBatchHead, int usedIdx) {
            int at = HEADER + (int) layout.inflight();
            b.putShort(at + InflightRegion.VERSION, (short) version);
            b.putShort(at + InflightRegion.DESC_NUM, (short) descNum);
            b.putShort(at + InflightRegion.LAST_BATCH_HEAD, (short) lastBatchHead);
            b.putShort(at + InflightRegion.USED_IDX, (short) usedIdx);
        }

        void inflightDesc(int head, int inflight, int next, long counter) {
            int at = HEADER + (int) layout.inflight() + InflightRegion.HEADER_SIZE
                    + head * InflightRegion.DESC_STATE_SIZE;
            b.put(at + InflightRegion.DESC_INFLIGHT, (byte) inflight);
            b.putShort(at + InflightRegion.DESC_NEXT, (short) next);
            b.putLong(at + InflightRegion.DESC_COUNTER, counter);
        }

        void avail(int... heads) {
            availFrom(lastAvail, heads);
        }

        void availFrom(int first, int... heads) {
            int at = HEADER + (int) layout.avail();
            for (int i = 0; i < heads.length; i++) {
                int slot = (first + i) & (layout.size() - 1);
                b.putShort(at + SplitRingLayout.AVAIL_RING + 2 * slot, (short) heads[i]);
            }
            b.putShort(at + SplitRingLayout.AVAIL_IDX, (short) (first + heads.length));
        }

        /** The header and the first {@code imageLength} bytes of the image. */
        byte[] build(int imageLength) {
            byte[] out = new byte[HEADER + imageLength];
            System.arraycopy(b.array(), 0, out, 0, out.length);
            return out;
        }
    }
}
