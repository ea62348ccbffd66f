package io.vhostj.vhostuser.virtq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The split ring's structs as virtio 1.2, 2.7 lays them out. */
class SplitRingLayoutTest {
    @Test
    void shouldLayOutADescriptorInSixteenBytes() {
        // struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
        assertEquals(16, SplitRingLayout.DESC_SIZE);
        assertEquals(0, SplitRingLayout.DESC_ADDR);
        assertEquals(8, SplitRingLayout.DESC_LEN);
        assertEquals(12, SplitRingLayout.DESC_FLAGS);
        assertEquals(14, SplitRingLayout.DESC_NEXT);
        assertEquals(16, SplitRingLayout.DESC_ALIGN);
    }

    @Test
    void shouldUseTheSpecFlagValues() {
        assertEquals(1, SplitRingLayout.DESC_F_NEXT);
        assertEquals(2, SplitRingLayout.DESC_F_WRITE);
        assertEquals(4, SplitRingLayout.DESC_F_INDIRECT);
        assertEquals(1, SplitRingLayout.AVAIL_F_NO_INTERRUPT);
        assertEquals(1, SplitRingLayout.USED_F_NO_NOTIFY);
    }

    @Test
    void shouldLayOutTheAvailRing() {
        // struct virtq_avail { le16 flags; le16 idx; le16 ring[N]; le16 used_event; }
        assertEquals(0, SplitRingLayout.AVAIL_FLAGS);
        assertEquals(2, SplitRingLayout.AVAIL_IDX);
        assertEquals(4, SplitRingLayout.AVAIL_RING);
        assertEquals(2, SplitRingLayout.AVAIL_ALIGN);
    }

    @Test
    void shouldLayOutTheUsedRingWithEightByteElements() {
        // struct virtq_used_elem { le32 id; le32 len; }
        assertEquals(8, SplitRingLayout.USED_ELEM_SIZE);
        assertEquals(0, SplitRingLayout.USED_ELEM_ID);
        assertEquals(4, SplitRingLayout.USED_ELEM_LEN);
        // struct virtq_used { le16 flags; le16 idx; virtq_used_elem ring[N]; le16 avail_event; }
        assertEquals(0, SplitRingLayout.USED_FLAGS);
        assertEquals(2, SplitRingLayout.USED_IDX);
        assertEquals(4, SplitRingLayout.USED_RING);
        assertEquals(4, SplitRingLayout.USED_ALIGN);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 16, 256, 1024, 32768})
    void shouldSizeTheRingsAsTheSpecDoes(int n) {
        assertEquals(16L * n, SplitRingLayout.descTableSize(n));
        assertEquals(6L + 2L * n, SplitRingLayout.availRingSize(n));
        assertEquals(6L + 8L * n, SplitRingLayout.usedRingSize(n));
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 16, 256, 1024, 32768})
    void shouldPlaceTheEventIndicesAfterTheRings(int n) {
        assertEquals(4L + 2L * n, SplitRingLayout.usedEventOffset(n));
        assertEquals(4L + 8L * n, SplitRingLayout.availEventOffset(n));
        // each event index is the last le16 of its ring
        assertEquals(SplitRingLayout.availRingSize(n), SplitRingLayout.usedEventOffset(n) + 2);
        assertEquals(SplitRingLayout.usedRingSize(n), SplitRingLayout.availEventOffset(n) + 2);
    }

    @Test
    void shouldSizeAQueueOf256AsLegacyVringSizeDoes() {
        // Linux vring_size(256, 4096): desc 4096 + avail 6 + 512 rounded to a page, used 6 + 2048
        assertEquals(4096, SplitRingLayout.descTableSize(256));
        assertEquals(518, SplitRingLayout.availRingSize(256));
        assertEquals(2054, SplitRingLayout.usedRingSize(256));
    }

    @ParameterizedTest
    @CsvSource({"0, false", "1, true", "2, true", "3, false", "6, false", "255, false", "256, true", "32767, false",
            "32768, true", "65536, false", "-1, false", "-32768, false", "-2147483648, false"})
    void shouldAcceptOnlyPowersOfTwoUpTo32768(int size, boolean valid) {
        assertEquals(valid, SplitRingLayout.isValidQueueSize(size));
    }

    @Test
    void shouldCapQueueSizeAt32768() {
        assertEquals(32768, SplitRingLayout.MAX_QUEUE_SIZE);
        assertTrue(SplitRingLayout.isValidQueueSize(SplitRingLayout.MAX_QUEUE_SIZE));
        assertFalse(SplitRingLayout.isValidQueueSize(SplitRingLayout.MAX_QUEUE_SIZE * 2));
    }
}
