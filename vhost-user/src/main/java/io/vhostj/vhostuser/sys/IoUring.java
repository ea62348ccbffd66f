package io.vhostj.vhostuser.sys;

/**
 * An io_uring instance driven through raw syscalls (Linux 5.6+; glibc has no wrapper and
 * liburing is not assumed). One thread owns it: it fills submission entries, submits them in a
 * batch with {@link #submit()}, and reaps completions with {@link #reap(Completions)}. The ring
 * descriptor is readable when completions are waiting, so a worker can poll(2) it beside its
 * kick eventfd.
 *
 * <p>Layouts are those of {@code include/uapi/linux/io_uring.h}; see {@link #PARAMS_SIZE},
 * {@link #SQE_SIZE}, {@link #CQE_SIZE} (checked in a test).
 */
public final class IoUring implements AutoCloseable {
    private static final long SYS_IO_URING_SETUP = 425;
    private static final long SYS_IO_URING_ENTER = 426;
    private static final int IORING_ENTER_GETEVENTS = 1;
    private static final long IORING_OFF_SQ_RING = 0L;
    private static final long IORING_OFF_CQ_RING = 0x8000000L;
    private static final long IORING_OFF_SQES = 0x10000000L;
    private static final int IORING_FEAT_SINGLE_MMAP = 1;
    private static final int PROT_READ_WRITE = 3;
    private static final int MAP_SHARED_POPULATE = 0x1 | 0x8000;

    // struct io_uring_params
    static final int PARAMS_SIZE = 120;
    private static final int P_SQ_ENTRIES = 0;
    private static final int P_CQ_ENTRIES = 4;
    private static final int P_FLAGS = 8;
    private static final int P_FEATURES = 20;
    /** Completions are posted when the owner next enters the kernel, not by interrupting it (5.19+). */
    private static final int IORING_SETUP_COOP_TASKRUN = 1 << 8;
    /** With COOP_TASKRUN: the kernel raises IORING_SQ_TASKRUN in the SQ flags when completions wait to be posted. */
    private static final int IORING_SETUP_TASKRUN_FLAG = 1 << 9;
    private static final int IORING_SQ_TASKRUN = 1 << 1;
    private static final int P_SQ_OFF = 40; // struct io_sqring_offsets
    private static final int P_CQ_OFF = 80; // struct io_cqring_offsets
    // io_sqring_offsets fields
    private static final int SQ_HEAD = 0;
    private static final int SQ_TAIL = 4;
    private static final int SQ_RING_MASK = 8;
    private static final int SQ_FLAGS = 16;
    private static final int SQ_ARRAY = 24;
    // io_cqring_offsets fields
    private static final int CQ_HEAD = 0;
    private static final int CQ_TAIL = 4;
    private static final int CQ_RING_MASK = 8;
    private static final int CQ_CQES = 20;

    // struct io_uring_sqe
    static final int SQE_SIZE = 64;
    private static final int SQE_OPCODE = 0;
    private static final int SQE_FD = 4;
    private static final int SQE_OFF = 8;
    private static final int SQE_ADDR = 16;
    private static final int SQE_LEN = 24;
    private static final int SQE_RW_FLAGS = 28;
    private static final int SQE_USER_DATA = 32;
    // struct io_uring_cqe
    static final int CQE_SIZE = 16;
    private static final int CQE_USER_DATA = 0;
    private static final int CQE_RES = 8;

    public static final byte OP_READV = 1;
    public static final byte OP_WRITEV = 2;
    public static final byte OP_FSYNC = 3;
    private static final int IORING_FSYNC_DATASYNC = 1;

    /** Receives completions: {@code res} is the byte count, or a negated errno. */
    @FunctionalInterface
    public interface Completions {
        void complete(long userData, int res);
    }

    private final Fd ring;
    private final int entries;
    private final long sqRing;
    private final long sqRingSize;
    private final long cqRing;
    private final long cqRingSize;
    private final long sqes;
    private final long sqesSize;
    private final long sqHead;
    private final long sqTail;
    private final int sqMask;
    private final long sqArray;
    private final long sqFlags;
    private final long cqHead;
    private final long cqTail;
    private final int cqMask;
    private final long cqes;
    /** Our copy of the SQ tail: entries prepared but not yet published to the kernel. */
    private int localTail;
    private int unsubmitted;

    private IoUring(Fd ring, int entries, long sqRing, long sqRingSize, long cqRing, long cqRingSize, long sqes,
            long sqesSize, long params) {
        this.ring = ring;
        this.entries = entries;
        this.sqRing = sqRing;
        this.sqRingSize = sqRingSize;
        this.cqRing = cqRing;
        this.cqRingSize = cqRingSize;
        this.sqes = sqes;
        this.sqesSize = sqesSize;
        this.sqHead = sqRing + Native.getInt(params + P_SQ_OFF + SQ_HEAD);
        this.sqTail = sqRing + Native.getInt(params + P_SQ_OFF + SQ_TAIL);
        this.sqMask = Native.getInt(sqRing + Native.getInt(params + P_SQ_OFF + SQ_RING_MASK));
        this.sqArray = sqRing + Native.getInt(params + P_SQ_OFF + SQ_ARRAY);
        this.sqFlags = sqRing + Native.getInt(params + P_SQ_OFF + SQ_FLAGS);
        this.cqHead = cqRing + Native.getInt(params + P_CQ_OFF + CQ_HEAD);
        this.cqTail = cqRing + Native.getInt(params + P_CQ_OFF + CQ_TAIL);
        this.cqMask = Native.getInt(cqRing + Native.getInt(params + P_CQ_OFF + CQ_RING_MASK));
        this.cqes = cqRing + Native.getInt(params + P_CQ_OFF + CQ_CQES);
        this.localTail = Native.getInt(sqTail);
        // The SQ array maps slot i to SQE i, once: we always fill the SQE of the slot we publish.
        for (int i = 0; i < entries; i++) {
            Native.putInt(sqArray + 4L * i, i);
        }
    }

    /**
     * Sets up a ring of {@code entries} submission entries (a power of two; the completion ring is
     * twice that). Throws if the kernel has no io_uring or forbids it (ENOSYS, EPERM under seccomp).
     */
    public static IoUring create(int entries) throws NativeException {
        long params = Native.allocate(PARAMS_SIZE);
        Fd ring = null;
        long sqRing = 0;
        long cqRing = 0;
        long sqRingSize = 0;
        long cqRingSize = 0;
        try {
            Native.putInt(params + P_FLAGS, Integer.getInteger("vhostj.uring.flags",
                    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG));
            long rc = Native.LIBC.syscall(SYS_IO_URING_SETUP, entries, params, 0, 0, 0, 0);
            if (rc < 0 && Native.errno() == Errno.EINVAL) {
                Native.zero(params, PARAMS_SIZE); // an older kernel: no setup flags
                rc = Native.LIBC.syscall(SYS_IO_URING_SETUP, entries, params, 0, 0, 0, 0);
            }
            if (rc < 0) {
                throw new NativeException("io_uring_setup", Native.errno());
            }
            ring = new Fd((int) rc);
            int sqEntries = Native.getInt(params + P_SQ_ENTRIES);
            int cqEntries = Native.getInt(params + P_CQ_ENTRIES);
            sqRingSize = Native.getInt(params + P_SQ_OFF + SQ_ARRAY) + 4L * sqEntries;
            cqRingSize = Native.getInt(params + P_CQ_OFF + CQ_CQES) + (long) CQE_SIZE * cqEntries;
            boolean single = (Native.getInt(params + P_FEATURES) & IORING_FEAT_SINGLE_MMAP) != 0;
            if (single) {
                sqRingSize = cqRingSize = Math.max(sqRingSize, cqRingSize);
            }
            sqRing = mmap(ring, sqRingSize, IORING_OFF_SQ_RING);
            cqRing = single ? sqRing : mmap(ring, cqRingSize, IORING_OFF_CQ_RING);
            long sqesSize = (long) SQE_SIZE * sqEntries;
            long sqes = mmap(ring, sqesSize, IORING_OFF_SQES);
            return new IoUring(ring, sqEntries, sqRing, sqRingSize, cqRing, cqRingSize, sqes, sqesSize,
                    params);
        } catch (NativeException e) {
            if (cqRing != 0 && cqRing != sqRing) {
                Native.LIBC.munmap(cqRing, cqRingSize);
            }
            if (sqRing != 0) {
                Native.LIBC.munmap(sqRing, sqRingSize);
            }
            if (ring != null) {
                ring.close();
            }
            throw e;
        } finally {
            Native.free(params);
        }
    }

    private static long mmap(Fd ring, long size, long offset) throws NativeException {
        long addr = Native.LIBC.mmap(0L, size, PROT_READ_WRITE, MAP_SHARED_POPULATE, ring.fd(), offset);
        if (addr == -1L) {
            throw new NativeException("mmap(io_uring)", Native.errno());
        }
        return addr;
    }

    /** Submission entries the ring holds. */
    public int entries() {
        return entries;
    }

    /** The ring's descriptor: readable while completions wait to be reaped. */
    public int fd() {
        return ring.fd();
    }

    /** Free submission slots (entries the kernel has consumed or we have not filled). */
    public int freeSlots() {
        return entries - (localTail - Native.getIntAcquire(sqHead));
    }

    /** preadv2/pwritev2 flag: the write is durable (as if followed by fdatasync) when it completes. */
    public static final int RWF_DSYNC = 2;

    /** Queues a readv/writev of {@code count} iovecs at {@code iov}. Call {@link #freeSlots()} first. */
    public void prepareRw(byte opcode, int fd, long iov, int count, long offset, long userData) {
        prepareRw(opcode, fd, iov, count, offset, 0, userData);
    }

    /** The same with preadv2/pwritev2 {@code rwFlags} ({@link #RWF_DSYNC}). */
    public void prepareRw(byte opcode, int fd, long iov, int count, long offset, int rwFlags, long userData) {
        long sqe = nextSqe();
        Native.putByte(sqe + SQE_OPCODE, opcode);
        Native.putInt(sqe + SQE_FD, fd);
        Native.putLong(sqe + SQE_OFF, offset);
        Native.putLong(sqe + SQE_ADDR, iov);
        Native.putInt(sqe + SQE_LEN, count);
        Native.putInt(sqe + SQE_RW_FLAGS, rwFlags);
        Native.putLong(sqe + SQE_USER_DATA, userData);
    }

    /** Queues an fdatasync of {@code fd}. */
    public void prepareFdatasync(int fd, long userData) {
        long sqe = nextSqe();
        Native.putByte(sqe + SQE_OPCODE, OP_FSYNC);
        Native.putInt(sqe + SQE_FD, fd);
        Native.putInt(sqe + SQE_RW_FLAGS, IORING_FSYNC_DATASYNC);
        Native.putLong(sqe + SQE_USER_DATA, userData);
    }

    private long nextSqe() {
        if (freeSlots() <= 0) {
            throw new IllegalStateException("io_uring submission queue full");
        }
        long sqe = sqes + (long) (localTail & sqMask) * SQE_SIZE;
        Native.zero(sqe, SQE_SIZE);
        localTail++;
        unsubmitted++;
        return sqe;
    }

    /** Entries prepared that the kernel has not taken yet (a submit failed with EAGAIN/EBUSY). */
    public boolean hasUnsubmitted() {
        return unsubmitted > 0;
    }

    /** Hands everything queued since the last call to the kernel; returns how many it took. */
    public int submit() throws NativeException {
        return enter(0, 0);
    }

    /** Submits what is queued and waits until at least {@code minComplete} completions are ready. */
    public int submitAndWait(int minComplete) throws NativeException {
        return enter(minComplete, IORING_ENTER_GETEVENTS);
    }

    private int enter(int minComplete, int flags) throws NativeException {
        int toSubmit = unsubmitted;
        if (toSubmit == 0 && flags == 0) {
            return 0;
        }
        Native.putIntRelease(sqTail, localTail);
        while (true) {
            long rc = Native.LIBC.syscall(SYS_IO_URING_ENTER, ring.fd(), toSubmit, minComplete, flags, 0, 0);
            if (rc >= 0) {
                unsubmitted -= (int) rc;
                return (int) rc;
            }
            int errno = Native.errno();
            if (errno != Errno.EINTR) {
                throw new NativeException("io_uring_enter", errno);
            }
        }
    }

    /** Passes every completion that is ready to {@code sink}; returns how many. Never blocks. */
    public int reap(Completions sink) {
        int head = Native.getInt(cqHead);
        int tail = Native.getIntAcquire(cqTail);
        if (head == tail && (Native.getIntAcquire(sqFlags) & IORING_SQ_TASKRUN) != 0) {
            // Finished I/O whose completions the kernel posts only when we enter it (COOP_TASKRUN)
            try {
                enter(0, IORING_ENTER_GETEVENTS);
            } catch (NativeException e) {
                // EINTR is retried; anything else shows again at the next submit
            }
            tail = Native.getIntAcquire(cqTail);
        }
        int n = 0;
        while (head != tail) {
            long cqe = cqes + (long) (head & cqMask) * CQE_SIZE;
            long userData = Native.getLong(cqe + CQE_USER_DATA);
            int res = Native.getInt(cqe + CQE_RES);
            head++;
            n++;
            // release the slot before the callback: it may queue new work that needs CQ room
            Native.putIntRelease(cqHead, head);
            sink.complete(userData, res);
        }
        return n;
    }

    @Override
    public void close() {
        if (!ring.isOpen()) {
            return;
        }
        Native.LIBC.munmap(sqes, sqesSize);
        if (cqRing != sqRing) {
            Native.LIBC.munmap(cqRing, cqRingSize);
        }
        Native.LIBC.munmap(sqRing, sqRingSize);
        ring.close();
    }
}
