package io.vhostj.vhostuser.frontend;

import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.MappedRegion;
import io.vhostj.vhostuser.sys.Memfd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * Guest RAM as a hypervisor would have it: a memfd mapped shared into this process, placed at a
 * guest-physical base. Our own mapping's address is the "frontend virtual address" the backend
 * sees in ring addresses. A bump allocator hands out rings and buffers; nothing is freed.
 */
public final class GuestRam implements AutoCloseable {
    private final long guestPhysBase;
    private final long size;
    private final Fd fd;
    private final MappedRegion mapping;
    private long next;

    public GuestRam(long guestPhysBase, long size) throws NativeException {
        this.guestPhysBase = guestPhysBase;
        this.size = size;
        this.fd = Memfd.create("vhostj-guest-ram", size);
        try {
            this.mapping = MappedRegion.map(fd.fd(), size, 0);
        } catch (NativeException e) {
            fd.close();
            throw e;
        }
    }

    public long guestPhysBase() {
        return guestPhysBase;
    }

    public long size() {
        return size;
    }

    public int fd() {
        return fd.fd();
    }

    /** The frontend-virtual address of the region's first byte (our mapping). */
    public long userAddr() {
        return mapping.address();
    }

    /** Allocates {@code length} bytes aligned to {@code align} (a power of two); returns the guest-physical address. */
    public long allocate(long length, long align) {
        long offset = (next + align - 1) & -align;
        if (offset + length > size) {
            throw new IllegalStateException("guest RAM of " + size + " bytes exhausted");
        }
        next = offset + length;
        return guestPhysBase + offset;
    }

    /** Host (= frontend-virtual) address of guest-physical {@code gpa}. */
    public long host(long gpa) {
        long offset = gpa - guestPhysBase;
        if (offset < 0 || offset >= size) {
            throw new IllegalArgumentException(String.format("gpa 0x%x outside guest RAM", gpa));
        }
        return mapping.address() + offset;
    }

    public void fill(long gpa, long length, byte value) {
        host(gpa + length - 1);
        org.agrona.UnsafeApi.setMemory(host(gpa), length, value);
    }

    public void zero(long gpa, long length) {
        host(gpa + length - 1);
        Native.zero(host(gpa), length);
    }

    @Override
    public void close() {
        mapping.close();
        fd.close();
    }
}
