package io.vhostj.vhostuser.virtq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code needEvent(event, new, old)} is true exactly when {@code event} lies in the 16-bit index
 * range {@code [old, new)}: the other side asked to hear about one of the entries just added.
 */
class EventIdxTest {
    @Test
    void shouldNotifyWhenTheEventIndexIsCrossed() {
        assertTrue(EventIdx.needEvent(5, 6, 5));
        assertTrue(EventIdx.needEvent(5, 10, 0));
        assertTrue(EventIdx.needEvent(0, 10, 0));
        assertTrue(EventIdx.needEvent(9, 10, 0));
    }

    @Test
    void shouldNotNotifyBeforeTheEventIndexIsReached() {
        // event == new: entry 'event' itself is not yet used
        assertFalse(EventIdx.needEvent(10, 10, 0));
        assertFalse(EventIdx.needEvent(11, 10, 0));
        assertFalse(EventIdx.needEvent(5, 5, 4));
    }

    @Test
    void shouldNotNotifyWhenTheEventIndexWasAlreadyPassed() {
        // the driver asked about an entry before this batch: it was (or should have been) told then
        assertFalse(EventIdx.needEvent(4, 10, 5));
        assertFalse(EventIdx.needEvent(0, 10, 1));
    }

    @Test
    void shouldNeverNotifyWhenNothingMoved() {
        assertFalse(EventIdx.needEvent(7, 7, 7));
        assertFalse(EventIdx.needEvent(6, 7, 7));
        assertFalse(EventIdx.needEvent(8, 7, 7));
        assertFalse(EventIdx.needEvent(65535, 65535, 65535));
    }

    @ParameterizedTest
    @CsvSource({
        // event, new, old, expected
        "65535, 1, 65534, true",
        "2, 1, 65534, false",
        "65534, 1, 65534, true",
        "0, 1, 65534, true",
        "1, 1, 65534, false",
        "65533, 1, 65534, false",
        "65535, 0, 65535, true",
        "0, 0, 65535, false",
        "0, 1, 0, true",
        "65535, 1, 0, false",
    })
    void shouldWrapAround65535To0(int event, int newIdx, int oldIdx, boolean expected) {
        assertEquals(expected, EventIdx.needEvent(event, newIdx, oldIdx));
    }

    @Test
    void shouldCoverTheLargestPossibleBatch() {
        // 65535 entries in one go: every index but 'new' itself is in [old, new)
        assertTrue(EventIdx.needEvent(0, 65535, 0));
        assertTrue(EventIdx.needEvent(65534, 65535, 0));
        assertFalse(EventIdx.needEvent(65535, 65535, 0));
        assertTrue(EventIdx.needEvent(65535, 65534, 65535));
        assertFalse(EventIdx.needEvent(65534, 65534, 65535));
    }

    @ParameterizedTest
    @CsvSource({"0, 1", "0, 16", "100, 356", "65530, 10", "65535, 0", "32768, 32767", "12345, 12345"})
    void shouldMatchIntervalMembershipForEveryEventIndex(int oldIdx, int newIdx) {
        int distance = (newIdx - oldIdx) & 0xffff;
        for (int event = 0; event <= 0xffff; event++) {
            boolean inBatch = ((event - oldIdx) & 0xffff) < distance;
            assertEquals(inBatch, EventIdx.needEvent(event, newIdx, oldIdx),
                    () -> "old " + oldIdx + " new " + newIdx);
        }
    }
}
