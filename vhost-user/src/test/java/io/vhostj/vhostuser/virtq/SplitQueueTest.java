package io.vhostj.vhostuser.virtq;

import static io.vhostj.vhostuser.virtq.SplitRingFixture.DATA_OFFSET;
import static io.vhostj.vhostuser.virtq.SplitRingFixture.gpa;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The device side of a split ring of 16 over a ring the test lays out by hand: popping heads,
 * the ring-level errors that break a queue, the used ring, and both notification schemes
 * (flags, and EVENT_IDX per virtio 1.2, 2.7.7 / 2.7.10).
 */
class SplitQueueTest {
    private static final int QUEUE_SIZE = 16;
    private static final long PLAIN = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    private static final long EVENT_IDX = PLAIN | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX);
    private static final long INDIRECT = PLAIN | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC);
    private static final long INDIRECT_TABLE = 0x20000;

    private SplitRingFixture ring;
    private final DescriptorChain chain = new DescriptorChain();

    @BeforeEach
    void setUp() throws Exception {
        ring = new SplitRingFixture(QUEUE_SIZE);
    }

    @AfterEach
    void tearDown() {
        ring.close();
    }

    private static long buffer(int head) {
        return DATA_OFFSET + 0x100L * head;
    }

    /** Offers a one-descriptor request of 64 readable bytes at head {@code head}. */
    private void request(int head) {
        ring.desc(head, gpa(buffer(head)), 64, 0, 0);
        ring.offer(head);
    }

    private int pop(SplitQueue queue) throws Exception {
        assertTrue(queue.pop(chain), "a request is available");
        return chain.head();
    }

    private boolean publish(SplitQueue queue, int entries) {
        for (int i = 0; i < entries; i++) {
            queue.addUsed(i, 0);
        }
        return queue.publishUsed();
    }

    @Test
    void shouldHaveNothingToPopFromAnEmptyRing() throws Exception {
        SplitQueue queue = ring.queue(PLAIN);

        assertEquals(QUEUE_SIZE, queue.size());
        assertFalse(queue.hasAvailable());
        assertFalse(queue.pop(chain));
        assertEquals(0, queue.lastAvailIndex());
    }

    @Test
    void shouldPopHeadsInTheOrderTheDriverOfferedThem() throws Exception {
        request(3);
        request(0);
        request(15);
        SplitQueue queue = ring.queue(PLAIN);

        assertTrue(queue.hasAvailable());
        assertEquals(3, pop(queue));
        assertEquals(ring.host(buffer(3)), chain.readableAddress(0));
        assertEquals(64, chain.readableBytes());
        assertEquals(0, pop(queue));
        assertEquals(ring.host(buffer(0)), chain.readableAddress(0));
        assertEquals(15, pop(queue));
        assertFalse(queue.hasAvailable());
        assertFalse(queue.pop(chain));
        assertEquals(3, queue.lastAvailIndex());
    }

    @Test
    void shouldSeeRequestsOfferedAfterItLastLooked() throws Exception {
        SplitQueue queue = ring.queue(PLAIN);
        assertFalse(queue.pop(chain));

        request(7);

        assertTrue(queue.hasAvailable());
        assertEquals(7, pop(queue));
    }

    @Test
    void shouldStartPoppingAtTheGivenAvailIndex() throws Exception {
        ring.availIdx(5);
        request(2);
        request(4);
        SplitQueue queue = ring.queue(PLAIN, 5);

        assertEquals(2, pop(queue));
        assertEquals(4, pop(queue));
        assertFalse(queue.pop(chain));
        assertEquals(7, queue.lastAvailIndex());
    }

    @Test
    void shouldPopAcrossTheAvailIndexWrap() throws Exception {
        ring.availIdx(65534);
        request(1); // ring slot 14
        request(2); // ring slot 15
        request(3); // ring slot 0, avail->idx now 1
        SplitQueue queue = ring.queue(PLAIN, 65534);

        assertEquals(1, pop(queue));
        assertEquals(65535, queue.lastAvailIndex());
        assertEquals(2, pop(queue));
        assertEquals(0, queue.lastAvailIndex());
        assertEquals(3, pop(queue));
        assertEquals(1, queue.lastAvailIndex());
        assertFalse(queue.pop(chain));
    }

    @Test
    void shouldPopAFullRing() throws Exception {
        for (int head = 0; head < QUEUE_SIZE; head++) {
            request(head);
        }
        SplitQueue queue = ring.queue(PLAIN);

        for (int head = 0; head < QUEUE_SIZE; head++) {
            assertEquals(head, pop(queue));
        }
        assertFalse(queue.pop(chain));
    }

    @Test
    void shouldBreakOnAHeadOutsideTheRing() {
        ring.offer(QUEUE_SIZE);
        SplitQueue queue = ring.queue(PLAIN);

        assertThrows(QueueBrokenException.class, () -> queue.pop(chain));
    }

    @Test
    void shouldBreakOnTheLargestHeadIndex() throws Exception {
        request(1);
        ring.offer(0xffff);
        SplitQueue queue = ring.queue(PLAIN);

        assertEquals(1, pop(queue));
        assertThrows(QueueBrokenException.class, () -> queue.pop(chain));
    }

    @Test
    void shouldBreakWhenTheAvailIndexRunsMoreThanAQueueAhead() {
        ring.availIdx(QUEUE_SIZE + 1);
        SplitQueue queue = ring.queue(PLAIN);

        assertThrows(QueueBrokenException.class, queue::hasAvailable);
        assertThrows(QueueBrokenException.class, () -> queue.pop(chain));
    }

    @Test
    void shouldBreakWhenTheAvailIndexMovesBackwards() {
        ring.availIdx(9);
        SplitQueue queue = ring.queue(PLAIN, 10); // the driver "took back" one request

        assertThrows(QueueBrokenException.class, queue::hasAvailable);
    }

    @Test
    void shouldAcceptAnAvailIndexExactlyAQueueAheadAcrossTheWrap() throws Exception {
        ring.availIdx(65530);
        for (int head = 0; head < QUEUE_SIZE; head++) {
            request(head);
        }
        SplitQueue queue = ring.queue(PLAIN, 65530);
        assertTrue(queue.hasAvailable());
        assertEquals(0, pop(queue));

        SplitQueue tooFar = ring.queue(PLAIN, 65529);
        assertThrows(QueueBrokenException.class, tooFar::hasAvailable);
    }

    @Test
    void shouldNameTheHeadOfABrokenChainSoItCanBeReturned() throws Exception {
        ring.desc(4, gpa(buffer(4)), 64, SplitRingLayout.DESC_F_NEXT, 5);
        ring.desc(5, gpa(buffer(5)), 64, SplitRingLayout.DESC_F_NEXT, 4);
        ring.offer(4);
        request(6);
        SplitQueue queue = ring.queue(PLAIN);

        assertThrows(ChainException.class, () -> queue.pop(chain));
        assertEquals(4, chain.head());
        assertEquals(1, queue.lastAvailIndex(), "the broken request is consumed");
        queue.addUsed(chain.head(), 0);

        assertEquals(6, pop(queue), "the queue goes on after a bad chain");
        queue.addUsed(chain.head(), 0);
        queue.publishUsed();
        assertEquals(2, ring.usedIdx());
        assertEquals(4, ring.usedId(0));
        assertEquals(6, ring.usedId(1));
    }

    @Test
    void shouldFollowIndirectDescriptorsOnlyWhenNegotiated() throws Exception {
        ring.desc(2, gpa(INDIRECT_TABLE), 2 * 16, SplitRingLayout.DESC_F_INDIRECT, 0);
        SplitRingFixture.putDesc(ring.host(INDIRECT_TABLE), 0, gpa(buffer(8)), 32, SplitRingLayout.DESC_F_NEXT, 1);
        SplitRingFixture.putDesc(ring.host(INDIRECT_TABLE), 1, gpa(buffer(9)), 48, SplitRingLayout.DESC_F_WRITE, 0);
        ring.offer(2);

        SplitQueue without = ring.queue(PLAIN);
        assertThrows(ChainException.class, () -> without.pop(chain));
        assertEquals(2, chain.head());

        SplitQueue with = ring.queue(INDIRECT);
        assertEquals(2, pop(with));
        assertEquals(1, chain.readableCount());
        assertEquals(ring.host(buffer(8)), chain.readableAddress(0));
        assertEquals(32, chain.readableBytes());
        assertEquals(1, chain.writableCount());
        assertEquals(ring.host(buffer(9)), chain.writableAddress(0));
        assertEquals(48, chain.writableBytes());
    }

    @Test
    void shouldWriteUsedEntriesButNotTheIndexUntilPublished() {
        SplitQueue queue = ring.queue(PLAIN);

        queue.addUsed(3, 100);
        queue.addUsed(0, 7);

        assertEquals(3, ring.usedId(0));
        assertEquals(100, ring.usedLen(0));
        assertEquals(0, ring.usedId(1));
        assertEquals(7, ring.usedLen(1));
        assertEquals(0, ring.usedIdx(), "entries are invisible until published");

        queue.publishUsed();
        assertEquals(2, ring.usedIdx());
    }

    @Test
    void shouldNotPublishOrNotifyWithNothingNew() {
        SplitQueue plain = ring.queue(PLAIN);
        assertFalse(plain.publishUsed());
        assertEquals(0, ring.usedIdx());

        plain.addUsed(1, 1);
        assertTrue(plain.publishUsed());
        assertFalse(plain.publishUsed(), "the same entries are not announced twice");
        assertEquals(1, ring.usedIdx());

        assertFalse(ring.queue(EVENT_IDX).publishUsed());
    }

    @Test
    void shouldContinueTheUsedIndexFoundInTheRing() {
        ring.usedIdx(65535);
        SplitQueue queue = ring.queue(PLAIN);

        queue.addUsed(9, 1);
        queue.publishUsed();
        assertEquals(9, ring.usedId(15));
        assertEquals(1, ring.usedLen(15));
        assertEquals(0, ring.usedIdx());

        queue.addUsed(10, 2);
        queue.publishUsed();
        assertEquals(10, ring.usedId(0));
        assertEquals(2, ring.usedLen(0));
        assertEquals(1, ring.usedIdx());
    }

    @Test
    void shouldNotifyUnlessTheDriverSetNoInterrupt() {
        SplitQueue queue = ring.queue(PLAIN);
        ring.usedEvent(100); // meaningless without EVENT_IDX

        assertTrue(publish(queue, 1));
        ring.availFlags(SplitRingLayout.AVAIL_F_NO_INTERRUPT);
        assertFalse(publish(queue, 1));
        assertFalse(publish(queue, 3));
        ring.availFlags(0);
        assertTrue(publish(queue, 1));
        assertEquals(6, ring.usedIdx(), "suppressed or not, entries are published");
    }

    @Test
    void shouldNotifyOnlyWhenUsedEventIsCrossed() {
        SplitQueue queue = ring.queue(EVENT_IDX);
        ring.usedEvent(100);

        assertTrue(publish(queue, 1), "the first check after start always notifies"); // 0 -> 1

        ring.usedEvent(2); // the driver wants to hear once entry 2 is used
        assertFalse(publish(queue, 1)); // 1 -> 2
        assertTrue(publish(queue, 1)); // 2 -> 3

        ring.usedEvent(4);
        assertTrue(publish(queue, 3)); // 3 -> 6: a batch that passes 4
        ring.usedEvent(10);
        assertFalse(publish(queue, 2)); // 6 -> 8
        ring.usedEvent(7); // already behind us: no interrupt until the index wraps round
        assertFalse(publish(queue, 1)); // 8 -> 9
        ring.usedEvent(9);
        assertTrue(publish(queue, 1)); // 9 -> 10
        assertEquals(10, ring.usedIdx());
    }

    @Test
    void shouldNotifyWhenUsedEventIsCrossedAcrossTheWrap() {
        ring.usedIdx(65533);
        SplitQueue queue = ring.queue(EVENT_IDX);
        assertTrue(publish(queue, 1)); // 65533 -> 65534, the first check

        ring.usedEvent(65535);
        assertTrue(publish(queue, 3)); // 65534 -> 1 passes 65535
        assertEquals(1, ring.usedIdx());
    }

    @Test
    void shouldNotNotifyWhenUsedEventIsAheadAcrossTheWrap() {
        ring.usedIdx(65533);
        SplitQueue queue = ring.queue(EVENT_IDX);
        assertTrue(publish(queue, 1)); // 65533 -> 65534, the first check

        ring.usedEvent(2);
        assertFalse(publish(queue, 3)); // 65534 -> 1 does not reach 2
        assertTrue(publish(queue, 2)); // 1 -> 3 does
    }

    @Test
    void shouldNotifyForEntryZeroAtTheWrap() {
        ring.usedIdx(65534);
        SplitQueue queue = ring.queue(EVENT_IDX);
        assertTrue(publish(queue, 1)); // 65534 -> 65535, the first check

        ring.usedEvent(0);
        assertFalse(publish(queue, 0));
        assertTrue(publish(queue, 2)); // 65535 -> 1 uses entry 0
    }

    @Test
    void shouldIgnoreNoInterruptWithEventIdx() {
        SplitQueue queue = ring.queue(EVENT_IDX);
        ring.availFlags(SplitRingLayout.AVAIL_F_NO_INTERRUPT);
        assertTrue(publish(queue, 1)); // first check

        // 2.7.7.2: with EVENT_IDX the device MUST ignore the driver's NO_INTERRUPT flag
        ring.usedEvent(1);
        assertTrue(publish(queue, 1));
    }

    @Test
    void shouldWriteAvailEventOnEnableWithEventIdx() throws Exception {
        request(0);
        request(1);
        request(2);
        ring.availEvent(0xabcd);
        SplitQueue queue = ring.queue(EVENT_IDX);
        pop(queue);
        pop(queue);
        pop(queue);

        queue.enableNotifications();

        assertEquals(3, ring.availEvent(), "kick me when entry 3 is made available");
        assertEquals(0, ring.usedFlags(), "the flag is not used with EVENT_IDX");

        queue.disableNotifications();
        assertEquals(0, ring.usedFlags(), "with EVENT_IDX, NO_NOTIFY is not used");
        assertEquals(3, ring.availEvent());
    }

    @Test
    void shouldWriteAvailEventAtTheWrap() {
        ring.availIdx(65535);
        SplitQueue queue = ring.queue(EVENT_IDX, 65535);

        queue.enableNotifications();

        assertEquals(65535, ring.availEvent());
    }

    @Test
    void shouldSetAndClearNoNotifyWithoutEventIdx() {
        ring.availEvent(0xabcd);
        SplitQueue queue = ring.queue(PLAIN);

        queue.disableNotifications();
        assertEquals(SplitRingLayout.USED_F_NO_NOTIFY, ring.usedFlags());

        queue.enableNotifications();
        assertEquals(0, ring.usedFlags());
        assertEquals(0xabcd, ring.availEvent(), "avail_event is not ours to write without EVENT_IDX");
    }

    @Test
    void shouldRefuseQueueSizesThatAreNotPowersOfTwoUpTo32768() {
        for (int size : new int[] {0, 3, 24, 65536, -16}) {
            assertThrows(IllegalArgumentException.class,
                    () -> SplitQueue.create(size, ring.desc, ring.avail, ring.used, ring.memory, PLAIN, 0),
                    "size " + size);
        }
    }
}
