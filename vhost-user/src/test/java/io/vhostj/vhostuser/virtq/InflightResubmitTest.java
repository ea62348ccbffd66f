package io.vhostj.vhostuser.virtq;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import io.vhostj.vhostuser.frontend.DriverQueue;
import io.vhostj.vhostuser.frontend.GuestRam;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.MemoryRegion;
import io.vhostj.vhostuser.sys.Native;

/**
 * A backend that dies between popping requests and returning them: the next backend, given the
 * same inflight region, must pop exactly those requests again, oldest first, and then carry on
 * with the avail ring where the driver left it.
 */
class InflightResubmitTest {
    private static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX);
    private GuestRam ram;
    private MemoryRegion region;
    private GuestMemory memory;
    private DriverQueue driver;
    private long inflight;

    @BeforeEach
    void setUp() throws Exception {
        ram = new GuestRam(0x10000, 1 << 20);
        region = MemoryRegion.map(ram.guestPhysBase(), ram.size(), ram.userAddr(), 0, ram.fd());
        memory = GuestMemory.of(List.of(region));
        driver = new DriverQueue(ram, 16, true);
        inflight = Native.allocate(InflightRegion.queueRegionSize(16));
        InflightRegion.format(inflight, 16);
    }

    @AfterEach
    void tearDown() {
        Native.free(inflight);
        region.close();
        ram.close();
    }

    private SplitQueue backend(int base) {
        return SplitQueue.create(16, ram.host(driver.descGuestAddr()), driver.availUserAddr(), driver.usedUserAddr(),
                memory, FEATURES, base);
    }

    private int post() {
        long buf = ram.allocate(64, 8);
        int head = driver.add(new long[] {buf}, new int[] {64}, 0, 1);
        driver.publish();
        return head;
    }

    @Test
    void shouldResubmitWhatACrashedBackendLeftInFlightInPopOrder() throws Exception {
        int[] heads = new int[5];
        for (int i = 0; i < 5; i++) {
            heads[i] = post();
        }
        DescriptorChain chain = new DescriptorChain();
        SplitQueue first = backend(0);
        assertEquals(0, first.attachInflight(InflightRegion.open(inflight, 16)));
        // serve two, pop three more, then die before returning them
        for (int i = 0; i < 2; i++) {
            assertTrue(first.pop(chain));
            first.addUsed(chain.head(), 0);
        }
        first.publishUsed();
        for (int i = 0; i < 3; i++) {
            assertTrue(first.pop(chain));
        }
        // QEMU could not ask the dead backend for its base: it restarts the ring at used->idx (2)
        SplitQueue second = backend(2);
        assertEquals(3, second.attachInflight(InflightRegion.open(inflight, 16)));
        for (int i = 2; i < 5; i++) {
            assertTrue(second.pop(chain));
            assertEquals(heads[i], chain.head(), "resubmitted in the order they were popped");
            second.addUsed(chain.head(), 0);
        }
        assertFalse(second.pop(chain), "nothing is served twice");
        second.publishUsed();
        int next = post();
        assertTrue(second.pop(chain));
        assertEquals(next, chain.head(), "new requests follow");
        second.addUsed(chain.head(), 0);
        second.publishUsed();
        int[] reaped = {0};
        driver.reap((h, len) -> reaped[0]++);
        assertEquals(6, reaped[0], "every request returned exactly once");
        // a third backend finds nothing in flight
        assertEquals(0, backend(6).attachInflight(InflightRegion.open(inflight, 16)));
    }

    @Test
    void shouldFinishABatchPublishedToTheRingButNotToTheRegion() throws Exception {
        for (int i = 0; i < 3; i++) {
            post();
        }
        DescriptorChain chain = new DescriptorChain();
        SplitQueue first = backend(0);
        InflightRegion r = InflightRegion.open(inflight, 16);
        first.attachInflight(r);
        for (int i = 0; i < 3; i++) {
            assertTrue(first.pop(chain));
            first.addUsed(chain.head(), 0);
        }
        first.publishUsed();
        // simulate a crash after used->idx was stored but before the region was updated
        Native.putShort(inflight + InflightRegion.USED_IDX, (short) 0);
        for (int i = 0; i < 3; i++) {
            Native.putByte(inflight + InflightRegion.HEADER_SIZE + 16L * i + InflightRegion.DESC_INFLIGHT, (byte) 1);
        }
        assertEquals(0, backend(3).attachInflight(InflightRegion.open(inflight, 16)),
                "the published batch is not in flight any more");
    }

    @Test
    void shouldReformatARegionLaidOutForAnotherQueueSize() {
        InflightRegion.format(inflight, 8);
        Native.putByte(inflight + InflightRegion.HEADER_SIZE + InflightRegion.DESC_INFLIGHT, (byte) 1);
        assertEquals(0, backend(0).attachInflight(InflightRegion.open(inflight, 16)));
        assertEquals(16, Native.getShort(inflight + InflightRegion.DESC_NUM));
    }

    @Test
    void shouldMatchTheSpecLayout() {
        assertEquals(16, InflightRegion.HEADER_SIZE);
        assertEquals(16, InflightRegion.DESC_STATE_SIZE);
        assertEquals(8, InflightRegion.DESC_COUNTER);
        assertEquals(14, InflightRegion.USED_IDX);
        assertEquals(16 * 128 + 64, InflightRegion.queueRegionSize(128), "16 + 16n rounded up to 64");
    }
}
