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
        checkFileCovers(fd, size, offset);
        long addr = Native.LIBC.mmap(0L, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
        if (addr == -1L) {
            throw new NativeException("mmap", Native.errno());
        }
        return new MappedRegion(addr, size);
    }

    // x86_64 struct stat: st_mode (u32) at 24, st_size (i64) at 48, 144 bytes in all.
    private static final int STAT_MODE = 24;
    private static final int STAT_SIZE = 48;
    private static final int S_IFMT = 0xf000;
    private static final int S_IFREG = 0x8000;

    /**
     * A peer hands us the fd; touching a page of the mapping past the end of its file raises
     * SIGBUS, which kills or poisons the JVM. So only regular files (memfd, tmpfs, hugetlbfs)
     * that are already long enough are mapped.
     */
    private static void checkFileCovers(int fd, long size, long offset) throws NativeException {
        long stat = Native.scratch();
        Native.check("fstat", Native.LIBC.fstat(fd, stat));
        int mode = Native.getInt(stat + STAT_MODE);
        long fileSize = Native.getLong(stat + STAT_SIZE);
        if ((mode & S_IFMT) != S_IFREG) {
            throw new NativeException("mmap", String.format("fd %d is not a regular file (mode 0%o)", fd, mode));
        }
        if (offset < 0 || size + offset < 0 || size + offset > fileSize) {
            throw new NativeException("mmap", String.format("%d bytes at offset %d of fd %d: the file has only %d",
                    size, offset, fd, fileSize));
        }
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
