package io.vhostj.vhostuser.memory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * An immutable view of guest RAM: translates guest-physical addresses (descriptors) and
 * frontend-virtual addresses (ring addresses) to host addresses, bounds-checked on every call.
 * A translation succeeds only if the whole range {@code [addr, addr + length)} lies in one region.
 *
 * <p>The regions themselves are owned by whoever built the view (the backend's memory table);
 * a view must not be used after its regions are closed, which the backend guarantees by stopping
 * every queue worker before it changes the table.
 */
public final class GuestMemory {
    public static final GuestMemory EMPTY = new GuestMemory(List.of());

    private final List<MemoryRegion> regions;
    // Parallel arrays: the lookup loop touches nothing but these.
    private final long[] gpaStart;
    private final long[] gpaEnd; // exclusive; unsigned
    private final long[] uvaStart;
    private final long[] uvaEnd;
    private final long[] host;

    private GuestMemory(List<MemoryRegion> regions) {
        this.regions = Collections.unmodifiableList(new ArrayList<>(regions));
        int n = regions.size();
        gpaStart = new long[n];
        gpaEnd = new long[n];
        uvaStart = new long[n];
        uvaEnd = new long[n];
        host = new long[n];
        for (int i = 0; i < n; i++) {
            MemoryRegion r = regions.get(i);
            gpaStart[i] = r.guestPhysAddr();
            gpaEnd[i] = r.guestPhysAddr() + r.size();
            uvaStart[i] = r.userAddr();
            uvaEnd[i] = r.userAddr() + r.size();
            host[i] = r.hostAddr();
        }
    }

    /** Builds a view; refuses regions that overlap in guest-physical or frontend-virtual space. */
    public static GuestMemory of(List<MemoryRegion> regions) throws GuestMemoryException {
        for (int i = 0; i < regions.size(); i++) {
            MemoryRegion a = regions.get(i);
            for (int j = i + 1; j < regions.size(); j++) {
                MemoryRegion b = regions.get(j);
                if (overlaps(a.guestPhysAddr(), a.size(), b.guestPhysAddr(), b.size())) {
                    throw new GuestMemoryException("memory regions overlap in guest-physical space: " + a + " and " + b);
                }
                if (overlaps(a.userAddr(), a.size(), b.userAddr(), b.size())) {
                    throw new GuestMemoryException("memory regions overlap in frontend address space: " + a + " and " + b);
                }
            }
        }
        return new GuestMemory(regions);
    }

    static boolean overlaps(long startA, long sizeA, long startB, long sizeB) {
        return Long.compareUnsigned(startA, startB + sizeB) < 0 && Long.compareUnsigned(startB, startA + sizeA) < 0;
    }

    public List<MemoryRegion> regions() {
        return regions;
    }

    public boolean isEmpty() {
        return regions.isEmpty();
    }

    /** Host address of guest-physical {@code gpa}, with {@code length} bytes all inside one region. */
    public long translate(long gpa, long length) throws GuestMemoryException {
        int i = find(gpaStart, gpaEnd, gpa, length);
        if (i < 0) {
            throw outOfRange("guest-physical", gpa, length);
        }
        return host[i] + (gpa - gpaStart[i]);
    }

    /** Host address of frontend-virtual {@code uva} (vring addresses in SET_VRING_ADDR). */
    public long translateUser(long uva, long length) throws GuestMemoryException {
        int i = find(uvaStart, uvaEnd, uva, length);
        if (i < 0) {
            throw outOfRange("frontend-virtual", uva, length);
        }
        return host[i] + (uva - uvaStart[i]);
    }

    /** Guest-physical address of frontend-virtual {@code uva}, or -1 if it is not in any region. */
    public long userToGuestPhys(long uva) {
        int i = find(uvaStart, uvaEnd, uva, 1);
        return i < 0 ? -1 : gpaStart[i] + (uva - uvaStart[i]);
    }

    private static int find(long[] start, long[] end, long addr, long length) {
        if (length < 0) {
            return -1;
        }
        for (int i = 0; i < start.length; i++) {
            if (Long.compareUnsigned(addr, start[i]) >= 0 && Long.compareUnsigned(addr, end[i]) < 0) {
                // addr is inside: the range fits if what is left of the region holds length bytes
                return Long.compareUnsigned(length, end[i] - addr) <= 0 ? i : -1;
            }
        }
        return -1;
    }

    private static GuestMemoryException outOfRange(String space, long addr, long length) {
        return new GuestMemoryException(String.format("%s range 0x%x+0x%x is not inside guest memory",
                space, addr, length));
    }
}
