package io.vhostj.vhostuser.memory;

import io.vhostj.vhostuser.sys.MappedRegion;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * One region of guest RAM as vhost-user describes it (VhostUserMemoryRegion): where it sits in
 * guest-physical space, where the frontend has it mapped, and our own MAP_SHARED mapping of the
 * fd that came with it. Owns the mapping; {@link #close()} unmaps.
 */
public final class MemoryRegion implements AutoCloseable {
    private final long guestPhysAddr;
    private final long size;
    private final long userAddr;
    private final long mmapOffset;
    private final MappedRegion mapping;

    private MemoryRegion(long guestPhysAddr, long size, long userAddr, long mmapOffset, MappedRegion mapping) {
        this.guestPhysAddr = guestPhysAddr;
        this.size = size;
        this.userAddr = userAddr;
        this.mmapOffset = mmapOffset;
        this.mapping = mapping;
    }

    /**
     * Maps {@code size} bytes at {@code mmapOffset} of {@code fd}. The offset need not be page
     * aligned, so the mapping starts at file offset 0 (as QEMU's libvhost-user does).
     */
    public static MemoryRegion map(long guestPhysAddr, long size, long userAddr, long mmapOffset, int fd)
            throws NativeException, GuestMemoryException {
        validate(guestPhysAddr, size, userAddr, mmapOffset);
        MappedRegion mapping = MappedRegion.map(fd, size + mmapOffset, 0);
        return new MemoryRegion(guestPhysAddr, size, userAddr, mmapOffset, mapping);
    }

    static void validate(long guestPhysAddr, long size, long userAddr, long mmapOffset) throws GuestMemoryException {
        if (size <= 0) {
            throw new GuestMemoryException("memory region of size " + Long.toUnsignedString(size));
        }
        if (Long.compareUnsigned(guestPhysAddr + size, guestPhysAddr) < 0
                || Long.compareUnsigned(userAddr + size, userAddr) < 0
                || mmapOffset < 0 || size + mmapOffset < 0) {
            throw new GuestMemoryException(String.format(
                    "memory region wraps the address space: gpa=0x%x size=0x%x uva=0x%x offset=0x%x",
                    guestPhysAddr, size, userAddr, mmapOffset));
        }
    }

    public long guestPhysAddr() {
        return guestPhysAddr;
    }

    public long size() {
        return size;
    }

    public long userAddr() {
        return userAddr;
    }

    public long mmapOffset() {
        return mmapOffset;
    }

    /** Host address of the region's first byte. */
    public long hostAddr() {
        return mapping.address() + mmapOffset;
    }

    @Override
    public void close() {
        mapping.close();
    }

    @Override
    public String toString() {
        return String.format("gpa 0x%x..0x%x (uva 0x%x, offset 0x%x)", guestPhysAddr, guestPhysAddr + size - 1,
                userAddr, mmapOffset);
    }
}
