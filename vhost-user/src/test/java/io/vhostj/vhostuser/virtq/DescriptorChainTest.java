package io.vhostj.vhostuser.virtq;

import static io.vhostj.vhostuser.virtq.SplitRingFixture.DATA_OFFSET;
import static io.vhostj.vhostuser.virtq.SplitRingFixture.gpa;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import io.vhostj.vhostuser.sys.Native;

/**
 * Walking descriptor chains by hand-built tables (virtio 1.2, 2.7.5 and 2.7.4.2): segments and
 * byte counts, copies across segment boundaries, indirect tables, and every rule a chain can
 * break. Each refused chain still names its head.
 */
class DescriptorChainTest {
    private static final int QUEUE_SIZE = 16;
    private static final int NEXT = SplitRingLayout.DESC_F_NEXT;
    private static final int WRITE = SplitRingLayout.DESC_F_WRITE;
    private static final int INDIRECT = SplitRingLayout.DESC_F_INDIRECT;

    // four buffers of a request: two device-readable, two device-writable
    private static final long R0 = DATA_OFFSET;
    private static final long R1 = DATA_OFFSET + 0x1000;
    private static final long W0 = DATA_OFFSET + 0x2000;
    private static final long W1 = DATA_OFFSET + 0x3000;
    private static final long INDIRECT_TABLE = 0x20000; // region offset of an indirect table

    private SplitRingFixture ring;
    private DescriptorChain chain;
    private long scratch;

    @BeforeEach
    void setUp() throws Exception {
        ring = new SplitRingFixture(QUEUE_SIZE);
        chain = new DescriptorChain();
        scratch = Native.allocate(4096);
    }

    @AfterEach
    void tearDown() {
        Native.free(scratch);
        ring.close();
    }

    private void load(int head) throws ChainException {
        chain.load(head, ring.desc, QUEUE_SIZE, ring.memory, false);
    }

    private void loadIndirect(int head) throws ChainException {
        chain.load(head, ring.desc, QUEUE_SIZE, ring.memory, true);
    }

    private long table() {
        return ring.host(INDIRECT_TABLE);
    }

    /** head 5 -> 9 -> 2 -> 7: 100 + 28 readable bytes, 200 + 56 writable. */
    private void fourSegmentChain() {
        ring.desc(5, gpa(R0), 100, NEXT, 9);
        ring.desc(9, gpa(R1), 28, NEXT, 2);
        ring.desc(2, gpa(W0), 200, NEXT | WRITE, 7);
        ring.desc(7, gpa(W1), 56, WRITE, 0);
    }

    private ChainException refused(int head, boolean indirectAllowed) {
        ChainException e = assertThrows(ChainException.class,
                () -> chain.load(head, ring.desc, QUEUE_SIZE, ring.memory, indirectAllowed));
        assertEquals(head, chain.head(), "a refused chain still names its head");
        return e;
    }

    @Test
    void shouldWalkAReadableThenWritableChain() throws Exception {
        fourSegmentChain();

        load(5);

        assertEquals(5, chain.head());
        assertEquals(2, chain.readableCount());
        assertEquals(2, chain.writableCount());
        assertEquals(128, chain.readableBytes());
        assertEquals(256, chain.writableBytes());
        assertEquals(ring.host(R0), chain.readableAddress(0));
        assertEquals(100, chain.readableLength(0));
        assertEquals(ring.host(R1), chain.readableAddress(1));
        assertEquals(28, chain.readableLength(1));
        assertEquals(ring.host(W0), chain.writableAddress(0));
        assertEquals(200, chain.writableLength(0));
        assertEquals(ring.host(W1), chain.writableAddress(1));
        assertEquals(56, chain.writableLength(1));
    }

    @Test
    void shouldWalkASingleDescriptorChain() throws Exception {
        ring.desc(15, gpa(W0), 4096, WRITE, 3); // next is ignored without NEXT

        load(15);

        assertEquals(0, chain.readableCount());
        assertEquals(1, chain.writableCount());
        assertEquals(0, chain.readableBytes());
        assertEquals(4096, chain.writableBytes());
    }

    @Test
    void shouldReadAcrossSegmentBoundaries() throws Exception {
        fourSegmentChain();
        for (int i = 0; i < 100; i++) {
            Native.putByte(ring.host(R0) + i, (byte) i);
        }
        for (int i = 0; i < 28; i++) {
            Native.putByte(ring.host(R1) + i, (byte) (100 + i));
        }
        load(5);

        chain.readFromChain(90, scratch, 20);
        for (int i = 0; i < 20; i++) {
            assertEquals((byte) (90 + i), Native.getByte(scratch + i), "byte " + i);
        }

        chain.readFromChain(0, scratch, 128);
        for (int i = 0; i < 128; i++) {
            assertEquals((byte) i, Native.getByte(scratch + i), "byte " + i);
        }
    }

    @Test
    void shouldWriteAcrossSegmentBoundaries() throws Exception {
        fourSegmentChain();
        load(5);
        for (int i = 0; i < 20; i++) {
            Native.putByte(scratch + i, (byte) (0xa0 + i));
        }

        chain.writeToChain(190, scratch, 20);

        assertEquals(0, Native.getByte(ring.host(W0) + 189));
        for (int i = 0; i < 10; i++) {
            assertEquals((byte) (0xa0 + i), Native.getByte(ring.host(W0) + 190 + i));
            assertEquals((byte) (0xaa + i), Native.getByte(ring.host(W1) + i));
        }
        assertEquals(0, Native.getByte(ring.host(W1) + 10));
        assertEquals(0, Native.getByte(ring.host(W0) + 200), "nothing past the descriptor's length");
    }

    @Test
    void shouldRefuseCopiesPastTheChain() throws Exception {
        fourSegmentChain();
        load(5);

        chain.readFromChain(128, scratch, 0);
        chain.readFromChain(127, scratch, 1);
        assertThrows(ChainException.class, () -> chain.readFromChain(120, scratch, 9));
        assertThrows(ChainException.class, () -> chain.readFromChain(0, scratch, 129));
        assertThrows(ChainException.class, () -> chain.readFromChain(-1, scratch, 1));
        assertThrows(ChainException.class, () -> chain.readFromChain(0, scratch, -1));
        chain.writeToChain(255, scratch, 1);
        assertThrows(ChainException.class, () -> chain.writeToChain(0, scratch, 257));
        assertThrows(ChainException.class, () -> chain.writeToChain(256, scratch, 1));
    }

    /**
     * The bounds checks of readFromChain, writeToChain and toIovecs must not compute
     * {@code offset + length}: it overflows to a negative number and passes (a range of
     * {@code Long.MAX_VALUE} bytes at offset 2 is "inside" 128 bytes). Compare
     * {@code offset > total || length > total - offset} instead.
     */
    @Test
    void shouldRefuseRangesWhoseEndOverflowsALong() throws Exception {
        fourSegmentChain();
        load(5);
        // scratch is 4096 bytes: enough for whatever a broken check lets through (at most 256)

        assertThrows(ChainException.class, () -> chain.readFromChain(Long.MAX_VALUE, scratch, 2));
        assertThrows(ChainException.class, () -> chain.readFromChain(1, scratch, Long.MAX_VALUE));
        assertThrows(ChainException.class, () -> chain.writeToChain(1, scratch, Long.MAX_VALUE));
        assertThrows(ChainException.class, () -> chain.toIovecs(false, 1, Long.MAX_VALUE, scratch, 4));
    }

    @Test
    void shouldDescribeARangeAsIovecs() throws Exception {
        fourSegmentChain();
        load(5);

        assertEquals(2, chain.toIovecs(false, 90, 20, scratch, 4));
        assertEquals(ring.host(R0) + 90, Native.getLong(scratch));
        assertEquals(10, Native.getLong(scratch + 8));
        assertEquals(ring.host(R1), Native.getLong(scratch + 16));
        assertEquals(10, Native.getLong(scratch + 24));

        assertEquals(1, chain.toIovecs(true, 200, 56, scratch, 4));
        assertEquals(ring.host(W1), Native.getLong(scratch));
        assertEquals(56, Native.getLong(scratch + 8));

        assertThrows(ChainException.class, () -> chain.toIovecs(true, 0, 256, scratch, 1));
        assertThrows(ChainException.class, () -> chain.toIovecs(true, 0, 257, scratch, 4));
    }

    @Test
    void shouldFindAByteOfTheWritablePart() throws Exception {
        fourSegmentChain();
        load(5);

        assertEquals(ring.host(W0), chain.writableAddressAt(0));
        assertEquals(ring.host(W0) + 199, chain.writableAddressAt(199));
        assertEquals(ring.host(W1), chain.writableAddressAt(200));
        assertEquals(ring.host(W1) + 55, chain.writableAddressAt(255));
        assertThrows(ChainException.class, () -> chain.writableAddressAt(256));
        assertThrows(ChainException.class, () -> chain.writableAddressAt(-1));
    }

    @Test
    void shouldSkipZeroLengthDescriptors() throws Exception {
        ring.desc(0, gpa(R0), 0, NEXT, 1);
        ring.desc(1, gpa(R1), 28, NEXT, 2);
        ring.desc(2, 0, 0, NEXT, 3); // a zero-length descriptor touches no memory: not translated
        ring.desc(3, gpa(W0), 200, WRITE | NEXT, 4);
        ring.desc(4, gpa(W1), 0, WRITE, 0);

        load(0);

        assertEquals(1, chain.readableCount());
        assertEquals(ring.host(R1), chain.readableAddress(0));
        assertEquals(28, chain.readableBytes());
        assertEquals(1, chain.writableCount());
        assertEquals(ring.host(W0), chain.writableAddress(0));
        assertEquals(200, chain.writableBytes());
    }

    @Test
    void shouldStartAfreshOnEachLoad() throws Exception {
        fourSegmentChain();
        ring.desc(11, gpa(R1), 8, 0, 0);
        load(5);

        load(11);

        assertEquals(11, chain.head());
        assertEquals(1, chain.readableCount());
        assertEquals(0, chain.writableCount());
        assertEquals(8, chain.readableBytes());
        assertEquals(0, chain.writableBytes());
        assertThrows(ChainException.class, () -> chain.writableAddressAt(0));
    }

    @Test
    void shouldFollowAnIndirectTable() throws Exception {
        ring.desc(3, gpa(INDIRECT_TABLE), 4 * 16, INDIRECT, 0);
        SplitRingFixture.putDesc(table(), 0, gpa(R0), 100, NEXT, 1);
        SplitRingFixture.putDesc(table(), 1, gpa(R1), 28, NEXT, 2);
        SplitRingFixture.putDesc(table(), 2, gpa(W0), 200, NEXT | WRITE, 3);
        SplitRingFixture.putDesc(table(), 3, gpa(W1), 56, WRITE, 0);

        loadIndirect(3);

        assertEquals(3, chain.head());
        assertEquals(2, chain.readableCount());
        assertEquals(2, chain.writableCount());
        assertEquals(ring.host(R0), chain.readableAddress(0));
        assertEquals(ring.host(R1), chain.readableAddress(1));
        assertEquals(ring.host(W0), chain.writableAddress(0));
        assertEquals(ring.host(W1), chain.writableAddress(1));
        assertEquals(128, chain.readableBytes());
        assertEquals(256, chain.writableBytes());
    }

    @Test
    void shouldFollowAnIndirectTableLongerThanTheQueue() throws Exception {
        // Linux sizes indirect tables by seg_max, not by the ring: 40 segments in a queue of 16
        int entries = 40;
        ring.desc(0, gpa(INDIRECT_TABLE), entries * 16, INDIRECT, 0);
        for (int i = 0; i < entries; i++) {
            int flags = (i < entries - 1 ? NEXT : 0) | (i >= 30 ? WRITE : 0);
            SplitRingFixture.putDesc(table(), i, gpa(DATA_OFFSET + 64L * i), 64, flags, i + 1);
        }

        loadIndirect(0);

        assertEquals(30, chain.readableCount());
        assertEquals(10, chain.writableCount());
        assertEquals(30 * 64, chain.readableBytes());
        assertEquals(10 * 64, chain.writableBytes());
        assertEquals(ring.host(DATA_OFFSET + 64L * 29), chain.readableAddress(29));
        assertEquals(ring.host(DATA_OFFSET + 64L * 39), chain.writableAddress(9));
    }

    @Test
    void shouldContinueIntoAnIndirectTableAtTheEndOfARingChain() throws Exception {
        ring.desc(6, gpa(R0), 100, NEXT, 8);
        ring.desc(8, gpa(INDIRECT_TABLE), 16, INDIRECT, 0);
        SplitRingFixture.putDesc(table(), 0, gpa(W0), 200, WRITE, 0);

        loadIndirect(6);

        assertEquals(1, chain.readableCount());
        assertEquals(1, chain.writableCount());
        assertEquals(ring.host(W0), chain.writableAddress(0));
    }

    @Test
    void shouldRefuseIndirectDescriptorsWithoutTheFeature() {
        ring.desc(3, gpa(INDIRECT_TABLE), 16, INDIRECT, 0);
        SplitRingFixture.putDesc(table(), 0, gpa(R0), 100, 0, 0);

        refused(3, false);
    }

    @Test
    void shouldRefuseAnIndirectDescriptorInsideAnIndirectTable() {
        ring.desc(3, gpa(INDIRECT_TABLE), 2 * 16, INDIRECT, 0);
        SplitRingFixture.putDesc(table(), 0, gpa(R0), 100, NEXT, 1);
        SplitRingFixture.putDesc(table(), 1, gpa(INDIRECT_TABLE), 2 * 16, INDIRECT, 0);

        refused(3, true);
    }

    @Test
    void shouldRefuseAnIndirectDescriptorWithNext() {
        ring.desc(3, gpa(INDIRECT_TABLE), 16, INDIRECT | NEXT, 4);
        ring.desc(4, gpa(W0), 200, WRITE, 0);
        SplitRingFixture.putDesc(table(), 0, gpa(R0), 100, 0, 0);

        refused(3, true);
    }

    @Test
    void shouldRefuseAnIndirectTableNotAMultipleOf16Bytes() {
        SplitRingFixture.putDesc(table(), 0, gpa(R0), 100, NEXT, 1);
        SplitRingFixture.putDesc(table(), 1, gpa(R1), 28, NEXT, 2);
        SplitRingFixture.putDesc(table(), 2, gpa(W0), 200, WRITE, 0);

        ring.desc(3, gpa(INDIRECT_TABLE), 40, INDIRECT, 0);
        refused(3, true);
        ring.desc(3, gpa(INDIRECT_TABLE), 47, INDIRECT, 0);
        refused(3, true);
        ring.desc(3, gpa(INDIRECT_TABLE), 0, INDIRECT, 0);
        refused(3, true);
    }

    @Test
    void shouldRefuseAnIndirectTableOutsideGuestMemory() {
        ring.desc(3, 0x1000, 16, INDIRECT, 0);
        refused(3, true);
        ring.desc(3, gpa(SplitRingFixture.SIZE - 16), 32, INDIRECT, 0);
        refused(3, true);
    }

    @Test
    void shouldRefuseAnIndirectTableOfMoreThan32768Descriptors() throws Exception {
        int max = DescriptorChain.MAX_INDIRECT_DESCRIPTORS;
        assertEquals(32768, max);
        for (int i = 0; i < max; i++) {
            SplitRingFixture.putDesc(table(), i, gpa(R0), 0, i < max - 1 ? NEXT : 0, i + 1);
        }

        ring.desc(3, gpa(INDIRECT_TABLE), max * 16, INDIRECT, 0);
        loadIndirect(3);
        assertEquals(0, chain.readableCount());

        ring.desc(3, gpa(INDIRECT_TABLE), (max + 1) * 16, INDIRECT, 0);
        refused(3, true);
    }

    @Test
    void shouldDetectALoop() {
        ring.desc(0, gpa(R0), 100, NEXT, 1);
        ring.desc(1, gpa(R1), 28, NEXT, 0);

        refused(0, false);
    }

    @Test
    void shouldDetectADescriptorThatIsItsOwnNext() {
        ring.desc(4, gpa(W0), 200, WRITE | NEXT, 4);

        refused(4, false);
    }

    @Test
    void shouldDetectALoopInsideAnIndirectTable() {
        ring.desc(3, gpa(INDIRECT_TABLE), 4 * 16, INDIRECT, 0);
        SplitRingFixture.putDesc(table(), 0, gpa(R0), 10, NEXT, 1);
        SplitRingFixture.putDesc(table(), 1, gpa(R0), 10, NEXT, 2);
        SplitRingFixture.putDesc(table(), 2, gpa(R0), 10, NEXT, 1);

        refused(3, true);
    }

    @Test
    void shouldAcceptAChainOfExactlyQueueSizeDescriptors() throws Exception {
        for (int i = 0; i < QUEUE_SIZE; i++) {
            ring.desc(i, gpa(DATA_OFFSET + 16L * i), 16, i < QUEUE_SIZE - 1 ? NEXT : 0, i + 1);
        }

        load(0);

        assertEquals(QUEUE_SIZE, chain.readableCount());
        assertEquals(16L * QUEUE_SIZE, chain.readableBytes());
    }

    @Test
    void shouldRefuseAChainLongerThanTheQueueSize() {
        // every descriptor of the ring once, then round again: queue-size + 1 descriptors
        for (int i = 0; i < QUEUE_SIZE; i++) {
            ring.desc(i, gpa(DATA_OFFSET + 16L * i), 16, NEXT, (i + 1) % QUEUE_SIZE);
        }

        refused(0, false);
        refused(9, false);
    }

    @Test
    void shouldRefuseANextIndexOutsideTheTable() {
        ring.desc(0, gpa(R0), 100, NEXT, QUEUE_SIZE);
        refused(0, false);

        ring.desc(1, gpa(R0), 100, NEXT, 0xffff);
        refused(1, false);

        ring.desc(3, gpa(INDIRECT_TABLE), 2 * 16, INDIRECT, 0);
        SplitRingFixture.putDesc(table(), 0, gpa(R0), 10, NEXT, 1);
        SplitRingFixture.putDesc(table(), 1, gpa(R0), 10, NEXT, 2); // a table of two has no entry 2
        refused(3, true);
    }

    @Test
    void shouldRefuseAHeadOutsideTheTable() {
        refused(QUEUE_SIZE, false);
        refused(0xffff, false);
    }

    @Test
    void shouldRefuseADescriptorPointingOutsideGuestMemory() {
        ring.desc(0, 0x1000, 16, 0, 0); // below the region
        refused(0, false);

        ring.desc(1, gpa(SplitRingFixture.SIZE - 8), 16, WRITE, 0); // runs 8 bytes past the end
        refused(1, false);

        ring.desc(2, gpa(SplitRingFixture.SIZE), 1, 0, 0); // first byte after the region
        refused(2, false);

        ring.desc(3, 0xffff_ffff_ffff_fff0L, 0x20, 0, 0); // wraps 2^64
        refused(3, false);

        ring.desc(4, gpa(R0), 100, NEXT, 5);
        ring.desc(5, SplitRingFixture.UVA, 100, WRITE, 0); // a frontend address is no guest address
        refused(4, false);
    }

    @Test
    void shouldAcceptADescriptorEndingAtTheLastByteOfGuestMemory() throws Exception {
        ring.desc(0, gpa(SplitRingFixture.SIZE - 16), 16, 0, 0);

        load(0);

        assertEquals(ring.host(SplitRingFixture.SIZE - 16), chain.readableAddress(0));
    }

    @Test
    void shouldRefuseAReadableDescriptorAfterAWritableOne() {
        ring.desc(0, gpa(R0), 100, NEXT, 1);
        ring.desc(1, gpa(W0), 200, WRITE | NEXT, 2);
        ring.desc(2, gpa(R1), 28, 0, 0);

        refused(0, false);
    }

    @Test
    void shouldRefuseAReadableDescriptorAfterAWritableOneInAnIndirectTable() {
        ring.desc(3, gpa(INDIRECT_TABLE), 2 * 16, INDIRECT, 0);
        SplitRingFixture.putDesc(table(), 0, gpa(W0), 200, WRITE | NEXT, 1);
        SplitRingFixture.putDesc(table(), 1, gpa(R0), 100, 0, 0);

        refused(3, true);
    }

    @Test
    void shouldCapEachDirectionAt4GiBMinusOne() throws Exception {
        // 4096 descriptors of the whole 1 MiB region each: 2^32 bytes, one more than allowed
        int entries = 4096;
        long mib = SplitRingFixture.SIZE;
        for (int i = 0; i < entries; i++) {
            SplitRingFixture.putDesc(table(), i, gpa(0), (int) mib, i < entries - 1 ? NEXT : 0, i + 1);
        }
        ring.desc(3, gpa(INDIRECT_TABLE), entries * 16, INDIRECT, 0);
        refused(3, true);

        SplitRingFixture.putDesc(table(), entries - 1, gpa(0), (int) mib - 1, 0, 0);
        loadIndirect(3);
        assertEquals(0xffff_ffffL, chain.readableBytes());
        assertEquals(entries, chain.readableCount());
        assertEquals(mib - 1, chain.readableLength(entries - 1));
    }
}
