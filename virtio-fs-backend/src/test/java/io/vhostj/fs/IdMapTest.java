package io.vhostj.fs;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;

import org.junit.jupiter.api.Test;

class IdMapTest {
    @Test
    void shouldMapEachWayAsItsTypeSays() {
        IdMap m = IdMap.parse(List.of("map:1000:5000:10", "guest:0:100:1", "host:200:7:1", "squash-host:300:9:100",
                "forbid-guest:2000:5"), "--translate-uid");
        assertEquals(5003, m.toHost(1003));
        assertEquals(1003, m.toGuest(5003));
        assertEquals(100, m.toHost(0), "guest: one way only");
        assertEquals(100, m.toGuest(100), "nothing maps host 100 back");
        assertEquals(7, m.toGuest(200));
        assertEquals(9, m.toGuest(350), "squashed");
        assertEquals(IdMap.FORBIDDEN, m.toHost(2004));
        assertEquals(2005, m.toHost(2005), "past the forbidden range");
        assertEquals(42, m.toHost(42), "unmapped ids stay");
    }

    @Test
    void shouldTakeIdsAsUnsigned() {
        IdMap m = IdMap.parse(List.of("squash-guest:0:65534:4294967295"), "--translate-gid");
        assertEquals(65534, m.toHost(-2), "4294967294 is in the range");
        assertEquals(4294967295L, m.toHost(-1), "4294967295 is not (and is not FORBIDDEN)");
    }

    @Test
    void shouldRefuseOverlapsAndNonsense() {
        assertThrows(IllegalArgumentException.class,
                () -> IdMap.parse(List.of("map:0:100:10", "squash-guest:5:1:1"), "--translate-uid"));
        for (String bad : List.of("map:1:2", "forbid-guest:1:2:3", "swap:1:2:3", "map:-1:2:3", "map:1:2:0",
                "map:4294967295:0:2", "guest:a:1:1")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> IdMap.parse(List.of(bad), "--translate-uid"), bad);
            assertTrue(e.getMessage().startsWith("--translate-uid " + bad), e.getMessage());
        }
        assertTrue(IdMap.parse(List.of(), "--translate-uid").isIdentity());
    }
}
