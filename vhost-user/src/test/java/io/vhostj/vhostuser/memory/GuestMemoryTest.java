package io.vhostj.vhostuser.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.MappedRegion;
import io.vhostj.vhostuser.sys.Memfd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * Translation of guest-physical and frontend-virtual addresses over real memfd mappings: a range
 * translates only if every byte of it lies in one region, with all arithmetic unsigned.
 */
class GuestMemoryTest {
    private static final long PAGE = 0x1000;

    private final List<MemoryRegion> regions = new ArrayList<>();

    @AfterEach
    void tearDown() {
        regions.forEach(MemoryRegion::close);
    }

    /** A region backed by a memfd of its own; the fd is closed, the mapping keeps the memory. */
    private MemoryRegion region(long gpa, long size, long uva) throws Exception {
        try (Fd fd = Memfd.create("guest-memory-test", size)) {
            MemoryRegion region = MemoryRegion.map(gpa, size, uva, 0, fd.fd());
            regions.add(region);
            return region;
        }
    }

    @Test
    void shouldTranslateGuestPhysicalAddressesInsideARegion() throws Exception {
        MemoryRegion r = region(0x10000, 4 * PAGE, 0x7f00_0000_0000L);
        GuestMemory memory = GuestMemory.of(List.of(r));

        assertEquals(r.hostAddr(), memory.translate(0x10000, 1));
        assertEquals(r.hostAddr() + 0x1234, memory.translate(0x11234, 16));
        assertEquals(r.hostAddr(), memory.translate(0x10000, 4 * PAGE));

        // the host address is the memory itself: a store through it reads back through the other
        long host = memory.translate(0x12000, 8);
        Native.putLong(host, 0x0123_4567_89ab_cdefL);
        assertEquals(0x0123_4567_89ab_cdefL, Native.getLong(r.hostAddr() + 0x2000));
    }

    @Test
    void shouldTranslateTheLastByteOfARegion() throws Exception {
        MemoryRegion r = region(0x10000, PAGE, 0x7f00_0000_0000L);
        GuestMemory memory = GuestMemory.of(List.of(r));

        assertEquals(r.hostAddr() + PAGE - 1, memory.translate(0x10000 + PAGE - 1, 1));
        assertEquals(r.hostAddr() + PAGE - 8, memory.translate(0x10000 + PAGE - 8, 8));
        assertEquals(r.hostAddr() + PAGE - 1, memory.translateUser(0x7f00_0000_0000L + PAGE - 1, 1));
    }

    @Test
    void shouldRefuseARangeRunningOneBytePastTheEnd() throws Exception {
        GuestMemory memory = GuestMemory.of(List.of(region(0x10000, PAGE, 0x7f00_0000_0000L)));

        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000 + PAGE - 1, 2));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000 + PAGE - 8, 9));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000, PAGE + 1));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000 + PAGE, 1));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000 - 1, 1));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000 - 1, 2));
        assertThrows(GuestMemoryException.class, () -> memory.translateUser(0x7f00_0000_0000L + PAGE - 1, 2));
        assertThrows(GuestMemoryException.class, () -> memory.translateUser(0x7f00_0000_0000L - 1, 1));
    }

    @Test
    void shouldRefuseAnAddressBetweenTwoRegions() throws Exception {
        MemoryRegion low = region(0x10000, PAGE, 0x7f00_0000_0000L);
        MemoryRegion high = region(0x40000, PAGE, 0x7f00_1000_0000L);
        GuestMemory memory = GuestMemory.of(List.of(low, high));

        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000 + PAGE, 1));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x20000, 1));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x40000 - 1, 1));
        assertThrows(GuestMemoryException.class, () -> memory.translateUser(0x7f00_0800_0000L, 1));
        assertEquals(-1, memory.userToGuestPhys(0x7f00_0800_0000L));

        assertEquals(low.hostAddr() + PAGE - 1, memory.translate(0x10000 + PAGE - 1, 1));
        assertEquals(high.hostAddr(), memory.translate(0x40000, 1));
        assertEquals(high.hostAddr() + 0x10, memory.translateUser(0x7f00_1000_0010L, 4));
    }

    @Test
    void shouldRefuseARangeSpanningTwoAdjacentRegions() throws Exception {
        MemoryRegion first = region(0x10000, PAGE, 0x7f00_0000_0000L);
        MemoryRegion second = region(0x10000 + PAGE, PAGE, 0x7f00_0000_0000L + PAGE);
        GuestMemory memory = GuestMemory.of(List.of(first, second));

        // contiguous in both spaces, but two mappings on our side: no single host range covers it
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000 + PAGE - 4, 8));
        assertThrows(GuestMemoryException.class, () -> memory.translateUser(0x7f00_0000_0000L + PAGE - 4, 8));
        assertEquals(first.hostAddr() + PAGE - 4, memory.translate(0x10000 + PAGE - 4, 4));
        assertEquals(second.hostAddr(), memory.translate(0x10000 + PAGE, 4));
    }

    @Test
    void shouldRefuseALengthThatWouldWrapTheAddressSpace() throws Exception {
        long top = 0xffff_ffff_ffff_0000L; // a region near 2^64; it ends at 0xffff_ffff_ffff_1000
        MemoryRegion high = region(top, PAGE, 0xffff_ffff_fff0_0000L);
        MemoryRegion low = region(0x10000, PAGE, 0x7f00_0000_0000L);
        GuestMemory memory = GuestMemory.of(List.of(high, low));

        // gpa + length wraps past 2^64 to a small number: a naive "end <= regionEnd" would pass
        assertThrows(GuestMemoryException.class, () -> memory.translate(top + 0x800, 0x10000));
        assertThrows(GuestMemoryException.class, () -> memory.translate(top + 0x800, -0x800L));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000, -1L));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000, Long.MIN_VALUE));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000, Long.MAX_VALUE));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000 + 0x10, 0xffff_ffff_ffff_fff0L));
        assertThrows(GuestMemoryException.class,
                () -> memory.translateUser(0xffff_ffff_fff0_0800L, 0x0010_0000_0000_0000L));
        assertThrows(GuestMemoryException.class, () -> memory.translateUser(0xffff_ffff_fff0_0800L, -0x800L));

        // addresses above 2^63 are ordinary addresses, compared unsigned
        assertEquals(high.hostAddr() + PAGE - 1, memory.translate(top + PAGE - 1, 1));
        assertEquals(high.hostAddr() + 0x800, memory.translateUser(0xffff_ffff_fff0_0800L, 0x800));
        assertEquals(top + 0x10, memory.userToGuestPhys(0xffff_ffff_fff0_0010L));
    }

    @Test
    void shouldTranslateFrontendVirtualAddresses() throws Exception {
        MemoryRegion r = region(0x10000, 4 * PAGE, 0x7f00_0000_0000L);
        GuestMemory memory = GuestMemory.of(List.of(r));

        assertEquals(r.hostAddr(), memory.translateUser(0x7f00_0000_0000L, 4 * PAGE));
        assertEquals(r.hostAddr() + 0x40, memory.translateUser(0x7f00_0000_0040L, 8));
        assertEquals(0x10040, memory.userToGuestPhys(0x7f00_0000_0040L));
        assertEquals(0x10000 + 4 * PAGE - 1, memory.userToGuestPhys(0x7f00_0000_0000L + 4 * PAGE - 1));
        assertEquals(-1, memory.userToGuestPhys(0x7f00_0000_0000L + 4 * PAGE));

        // the two spaces are separate: a guest-physical address is no frontend address, and back
        assertThrows(GuestMemoryException.class, () -> memory.translateUser(0x10040, 1));
        assertThrows(GuestMemoryException.class, () -> memory.translate(0x7f00_0000_0040L, 1));
    }

    @Test
    void shouldRefuseEveryAddressWithNoRegions() throws Exception {
        GuestMemory empty = GuestMemory.EMPTY;

        assertTrue(empty.isEmpty());
        assertTrue(empty.regions().isEmpty());
        assertThrows(GuestMemoryException.class, () -> empty.translate(0, 1));
        assertThrows(GuestMemoryException.class, () -> empty.translate(0, 0));
        assertThrows(GuestMemoryException.class, () -> empty.translate(0x10000, 8));
        assertThrows(GuestMemoryException.class, () -> empty.translateUser(0x7f00_0000_0000L, 8));
        assertEquals(-1, empty.userToGuestPhys(0x7f00_0000_0000L));
        assertTrue(GuestMemory.of(List.of()).isEmpty());
    }

    @Test
    void shouldRefuseRegionsOverlappingInGuestPhysicalSpace() throws Exception {
        MemoryRegion a = region(0x10000, 2 * PAGE, 0x7f00_0000_0000L);
        MemoryRegion oneByteInto = region(0x10000 + 2 * PAGE - 1, PAGE, 0x7f00_1000_0000L);
        MemoryRegion inside = region(0x10000 + PAGE, 0x100, 0x7f00_2000_0000L);
        MemoryRegion around = region(0x8000, 16 * PAGE, 0x7f00_3000_0000L);

        assertThrows(GuestMemoryException.class, () -> GuestMemory.of(List.of(a, oneByteInto)));
        assertThrows(GuestMemoryException.class, () -> GuestMemory.of(List.of(oneByteInto, a)));
        assertThrows(GuestMemoryException.class, () -> GuestMemory.of(List.of(a, inside)));
        assertThrows(GuestMemoryException.class, () -> GuestMemory.of(List.of(inside, around)));
        assertThrows(GuestMemoryException.class, () -> GuestMemory.of(List.of(a, a)));
    }

    @Test
    void shouldRefuseRegionsOverlappingInFrontendAddressSpace() throws Exception {
        MemoryRegion a = region(0x10000, 2 * PAGE, 0x7f00_0000_0000L);
        MemoryRegion oneByteInto = region(0x100000, PAGE, 0x7f00_0000_0000L + 2 * PAGE - 1);
        MemoryRegion below = region(0x200000, PAGE, 0x7f00_0000_0000L - PAGE + 1);

        assertThrows(GuestMemoryException.class, () -> GuestMemory.of(List.of(a, oneByteInto)));
        assertThrows(GuestMemoryException.class, () -> GuestMemory.of(List.of(below, a)));
    }

    @Test
    void shouldAcceptRegionsThatTouchWithoutOverlapping() throws Exception {
        MemoryRegion a = region(0x10000, PAGE, 0x7f00_0000_0000L);
        MemoryRegion b = region(0x10000 + PAGE, PAGE, 0x7f00_0000_0000L - PAGE);
        MemoryRegion c = region(0x10000 - PAGE, PAGE, 0x7f00_0000_0000L + PAGE);

        GuestMemory memory = GuestMemory.of(List.of(a, b, c));

        assertEquals(List.of(a, b, c), memory.regions());
        assertThrows(UnsupportedOperationException.class, () -> memory.regions().clear());
        assertEquals(b.hostAddr(), memory.translate(0x10000 + PAGE, 1));
        assertEquals(c.hostAddr() + PAGE - 1, memory.translate(0x10000 - 1, 1));
        assertEquals(b.hostAddr() + PAGE - 1, memory.translateUser(0x7f00_0000_0000L - 1, 1));
    }

    @Test
    void shouldPointHostAddressesAtTheMmapOffsetOfTheFile() throws Exception {
        long fileSize = 4 * PAGE;
        long offset = PAGE + 0x10; // need not be page aligned
        long size = 2 * PAGE;
        try (Fd fd = Memfd.create("guest-memory-offset-test", fileSize);
                MappedRegion file = MappedRegion.map(fd.fd(), fileSize, 0)) {
            for (long i = 0; i < fileSize; i += 8) {
                Native.putLong(file.address() + i, i); // each word holds its own file offset
            }
            MemoryRegion r = MemoryRegion.map(0x10000, size, 0x7f00_0000_0000L, offset, fd.fd());
            regions.add(r);
            GuestMemory memory = GuestMemory.of(List.of(r));

            assertEquals(offset, r.mmapOffset());
            assertEquals(offset, Native.getLong(memory.translate(0x10000, 8)));
            assertEquals(offset + 0x100, Native.getLong(memory.translate(0x10100, 8)));
            assertEquals(offset + size - 8, Native.getLong(memory.translate(0x10000 + size - 8, 8)));
            assertEquals(offset + 0x200, Native.getLong(memory.translateUser(0x7f00_0000_0200L, 8)));
            assertThrows(GuestMemoryException.class, () -> memory.translate(0x10000 + size - 4, 8));

            // MAP_SHARED both ways: a store by the guest is seen by the frontend at file offset
            Native.putLong(memory.translate(0x10008, 8), 0x5a5a_5a5a_5a5a_5a5aL);
            assertEquals(0x5a5a_5a5a_5a5a_5a5aL, Native.getLong(file.address() + offset + 8));
        }
    }

    @Test
    void shouldRefuseRegionsThatAreEmptyOrWrap() throws Exception {
        try (Fd fd = Memfd.create("guest-memory-invalid-test", PAGE)) {
            assertThrows(GuestMemoryException.class, () -> MemoryRegion.map(0x10000, 0, 0x7f00_0000_0000L, 0, fd.fd()));
            assertThrows(GuestMemoryException.class, () -> MemoryRegion.map(0x10000, -PAGE, 0x7f00_0000_0000L, 0, fd.fd()));
            assertThrows(GuestMemoryException.class,
                    () -> MemoryRegion.map(0xffff_ffff_ffff_f800L, PAGE, 0x7f00_0000_0000L, 0, fd.fd()));
            assertThrows(GuestMemoryException.class,
                    () -> MemoryRegion.map(0x10000, PAGE, 0xffff_ffff_ffff_f800L, 0, fd.fd()));
            assertThrows(GuestMemoryException.class, () -> MemoryRegion.map(0x10000, PAGE, 0x7f00_0000_0000L, -1, fd.fd()));
            assertThrows(GuestMemoryException.class,
                    () -> MemoryRegion.map(0x10000, PAGE, 0x7f00_0000_0000L, Long.MAX_VALUE, fd.fd()));
        }
    }

    @Test
    void shouldDescribeItsRegionInclusively() throws Exception {
        MemoryRegion r = region(0x10000, PAGE, 0x7f00_0000_0000L);

        assertEquals(0x10000, r.guestPhysAddr());
        assertEquals(PAGE, r.size());
        assertEquals(0x7f00_0000_0000L, r.userAddr());
        assertTrue(r.toString().contains("0x10000..0x10fff"), r.toString());
        assertFalse(GuestMemory.of(List.of(r)).isEmpty());
    }

    @Test
    void shouldRefuseARegionThatReachesPastTheEndOfItsFile() throws Exception {
        // Touching a mapped page past the end of the file would raise SIGBUS in the JVM.
        try (Fd fd = Memfd.create("guest-memory-short-file", 2 * PAGE);
                Fd eventFd = new Fd(Native.LIBC.eventfd(0, 0))) {
            assertThrows(NativeException.class, () -> MemoryRegion.map(0x10000, 2 * PAGE, 0x7f00_0000_0000L, PAGE, fd.fd()));
            assertThrows(NativeException.class, () -> MemoryRegion.map(0x10000, 3 * PAGE, 0x7f00_0000_0000L, 0, fd.fd()));
            assertThrows(NativeException.class, () -> MemoryRegion.map(0x10000, PAGE, 0x7f00_0000_0000L, 0, eventFd.fd()));
            try (MemoryRegion exact = MemoryRegion.map(0x10000, PAGE, 0x7f00_0000_0000L, PAGE, fd.fd())) {
                assertEquals(PAGE, exact.size());
            }
        }
    }
}
