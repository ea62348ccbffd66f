package io.vhostj.vhostuser.sys;

/** A MAP_SHARED mapping of a file descriptor. {@link #close()} unmaps it. */
public final class MappedRegion implements AutoCloseable {
    private static final int PROT_READ = 1;
    private static final int PROT_WRITE = 2;
    private static final int MAP_SHARED = 1;

    private long address;
    private final long size;

    private MappedRegion(long address, long size) {
        this.address = address;
        this.size = size;
    }

    public static MappedRegion map(int fd, long size, long offset) throws NativeException {
        if (size <= 0) {
            throw new NativeException("mmap", "size " + size);
        }
        long addr = Native.LIBC.mmap(0L, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
        if (addr == -1L) {
            throw new NativeException("mmap", Native.errno());
        }
        return new MappedRegion(addr, size);
    }

    public long address() {
        return address;
    }

    public long size() {
        return size;
    }

    @Override
    public synchronized void close() {
        if (address != 0) {
            Native.LIBC.munmap(address, size);
            address = 0;
        }
    }
}
