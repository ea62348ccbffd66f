package io.vhostj.bench.jmh;

import java.util.List;

import io.vhostj.vhostuser.frontend.DriverQueue;
import io.vhostj.vhostuser.frontend.GuestRam;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.GuestMemoryException;
import io.vhostj.vhostuser.memory.MemoryRegion;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.InflightRegion;
import io.vhostj.vhostuser.virtq.SplitQueue;
import io.vhostj.vhostuser.virtq.SplitRingLayout;

/**
 * Both sides of one split queue in one process, as the backend would see them: guest RAM is a
 * memfd the driver has mapped once and the device maps again through {@link MemoryRegion} (two
 * virtual mappings of the same pages, as between QEMU and a backend), so the device reaches the
 * rings only through {@link GuestMemory#translateUser} and the buffers through
 * {@link GuestMemory#translate}.
 */
final class QueueFixture implements AutoCloseable {
    /** Guest-physical base of RAM; not 0, so a translation that forgot the base would show. */
    static final long GUEST_BASE = 0x4000_0000L;

    final GuestRam ram;
    final MemoryRegion region;
    final GuestMemory memory;
    final DriverQueue driver;
    private long inflightBase;

    QueueFixture(long ramSize, int queueSize, boolean eventIdx) throws NativeException, GuestMemoryException {
        ram = new GuestRam(GUEST_BASE, ramSize);
        MemoryRegion r = null;
        try {
            r = MemoryRegion.map(GUEST_BASE, ramSize, ram.userAddr(), 0, ram.fd());
            memory = GuestMemory.of(List.of(r));
        } catch (NativeException | GuestMemoryException e) {
            if (r != null) {
                r.close();
            }
            ram.close();
            throw e;
        }
        region = r;
        driver = new DriverQueue(ram, queueSize, eventIdx);
    }

    /** The device side of {@link #driver}, negotiated with {@code features}, starting at avail index 0. */
    SplitQueue deviceQueue(long features) throws GuestMemoryException {
        int n = driver.size();
        return SplitQueue.create(n,
                memory.translateUser(driver.descUserAddr(), SplitRingLayout.descTableSize(n)),
                memory.translateUser(driver.availUserAddr(), SplitRingLayout.availRingSize(n)),
                memory.translateUser(driver.usedUserAddr(), SplitRingLayout.usedRingSize(n)),
                memory, features, 0);
    }

    /** Attaches a fresh INFLIGHT_SHMFD-style tracking region (native memory; nothing to resubmit). */
    void attachInflight(SplitQueue queue) {
        int n = driver.size();
        inflightBase = Native.allocate(InflightRegion.queueRegionSize(n));
        InflightRegion.format(inflightBase, n);
        if (queue.attachInflight(InflightRegion.open(inflightBase, n)) != 0) {
            throw new IllegalStateException("a fresh inflight region has requests to resubmit");
        }
    }

    @Override
    public void close() {
        if (inflightBase != 0) {
            Native.free(inflightBase);
            inflightBase = 0;
        }
        region.close();
        ram.close();
    }
}
