package io.vhostj.bench;

import java.nio.file.Path;

import io.vhostj.fs.Fuse;
import io.vhostj.vhostuser.frontend.DriverQueue;
import io.vhostj.vhostuser.frontend.GuestRam;
import io.vhostj.vhostuser.frontend.VhostUserFrontend;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.SplitRingLayout;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/**
 * The guest's side of a vhost-user-fs device with many FUSE requests in flight on the first
 * request queue, as {@link BlkClient} does for virtio-blk. Each of {@code slots} request slots owns
 * a request buffer (in-header at 0, argument at 40), a reply buffer (out-header at 0, result at 16)
 * and, for READ and WRITE, a page-aligned data buffer in guest RAM. A request is laid out as the
 * Linux driver lays out one with page-cache pages: the in-header and argument, then (WRITE) the
 * data, then the out-header and result, then (READ) the data, the data one 4 KiB page per
 * descriptor and the whole in an indirect table when the device offers INDIRECT_DESC (as the
 * driver does for every request of more than one buffer). The pages are posted last to first, so
 * that no two are adjacent in the order given, as scattered page-cache pages are not. Data 16
 * bytes off a 64-byte boundary (as this client once sent it) makes the kernel's copy several
 * times slower on this machine's CPUs, which a benchmark must not measure in place of the backend. Completions come from polling the used ring, in the
 * order the backend finishes them. Allocation-free per request; single-threaded.
 * {@link FuseClient} stays the one-at-a-time client the tests use.
 */
public final class FuseQueueClient implements AutoCloseable {
    /** Completion callback: the slot, the out-header's error (0 or a negated errno) and the used length. */
    public interface Completion {
        void completed(int slot, int error, int usedLength);
    }

    private static final long RAM_GPA = 0x4000_0000L;

    private final VhostUserFrontend frontend;
    private final GuestRam ram;
    private final DriverQueue queue;
    private final EventFd kick;
    private final EventFd call;
    private final int inBytes;
    private final int outBytes;
    private final int dataBytes;
    private final long[] inGpa;
    private final long[] outGpa;
    private final long[] inHost;
    private final long[] outHost;
    private final long[] dataGpa;
    private final long[] dataHost;
    /** Each slot's indirect descriptor table, or null without INDIRECT_DESC. */
    private final long[] tableGpa;
    private final long[] tableHost;
    private final long[] uniqueOfSlot;
    private final int[] slotOfHead;
    /** The request being posted, a buffer each: in order, device-readable first. */
    private final long[] addrs;
    private final int[] lens;
    private long unique = 1;
    private DriverQueue.UsedConsumer reaper;
    private Completion completion;

    private FuseQueueClient(Path socket, int queueSize, int slots, int inBytes, int outBytes, int dataBytes)
            throws Exception {
        this.inBytes = inBytes;
        this.outBytes = outBytes;
        this.dataBytes = dataBytes;
        this.addrs = new long[2 + (dataBytes + PAGE - 1) / PAGE];
        this.lens = new int[addrs.length];
        frontend = VhostUserFrontend.connect(socket, 5000);
        try {
            long features = frontend.negotiate(
                    VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX)
                            | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC),
                    ProtocolFeature.bit(ProtocolFeature.REPLY_ACK) | ProtocolFeature.bit(ProtocolFeature.CONFIG)
                            | ProtocolFeature.bit(ProtocolFeature.MQ));
            boolean indirect = VirtioFeatures.has(features, VirtioFeatures.RING_INDIRECT_DESC);
            long perSlot = align(inBytes) + align(outBytes) + align(dataBytes) + align(tableBytes(dataBytes));
            long ramSize = (slots * perSlot + 64L * queueSize + (4 << 20) + 0xfffff) & ~0xfffffL;
            ram = new GuestRam(RAM_GPA, ramSize);
            frontend.setMemTable(ram);
            queue = new DriverQueue(ram, queueSize, VirtioFeatures.has(features, VirtioFeatures.RING_EVENT_IDX));
            queue.interrupts(false); // we busy-poll the used ring
            kick = EventFd.create();
            call = EventFd.create();
            frontend.startQueue(1, queue, kick, call); // queue 0 is the high-priority queue
            inGpa = new long[slots];
            outGpa = new long[slots];
            inHost = new long[slots];
            outHost = new long[slots];
            dataGpa = new long[slots];
            dataHost = new long[slots];
            tableGpa = indirect ? new long[slots] : null;
            tableHost = indirect ? new long[slots] : null;
            for (int i = 0; i < slots; i++) {
                inGpa[i] = ram.allocate(inBytes, 4096);
                outGpa[i] = ram.allocate(outBytes, 4096);
                inHost[i] = ram.host(inGpa[i]);
                outHost[i] = ram.host(outGpa[i]);
                if (dataBytes > 0) {
                    dataGpa[i] = ram.allocate(dataBytes, 4096);
                    dataHost[i] = ram.host(dataGpa[i]);
                }
                if (indirect) {
                    tableGpa[i] = ram.allocate(tableBytes(dataBytes), 16);
                    tableHost[i] = ram.host(tableGpa[i]);
                }
            }
            uniqueOfSlot = new long[slots];
            slotOfHead = new int[queueSize];
        } catch (Exception e) {
            frontend.close();
            throw e;
        }
    }

    /**
     * Connects with {@code slots} request slots of {@code inBytes} request, {@code outBytes} reply
     * and {@code dataBytes} data buffer (0: none) each; {@code queueSize} must leave three
     * descriptors per slot (two without data).
     */
    public static FuseQueueClient connect(Path socket, int queueSize, int slots, int inBytes, int outBytes,
            int dataBytes) throws Exception {
        if (slots < 1 || (dataBytes > 0 ? 3 : 2) * slots > queueSize) {
            throw new IllegalArgumentException(slots + " slots on a queue of " + queueSize);
        }
        return new FuseQueueClient(socket, queueSize, slots, inBytes, outBytes, dataBytes);
    }

    /** An indirect table for a request: in, out and one descriptor per data page. */
    private static int tableBytes(int dataBytes) {
        return (2 + (dataBytes + PAGE - 1) / PAGE) * SplitRingLayout.DESC_SIZE;
    }

    private static final int PAGE = 4096;

    private static long align(long n) {
        return (n + 4095) & ~4095L;
    }

    /** Host address of slot {@code slot}'s request buffer: the in-header at 0, the argument at 40. */
    public long in(int slot) {
        return inHost[slot];
    }

    /** Host address of slot {@code slot}'s reply buffer: the out-header at 0, the result at 16. */
    public long out(int slot) {
        return outHost[slot];
    }

    /** Host address of slot {@code slot}'s page-aligned data buffer (READ's result, WRITE's data). */
    public long data(int slot) {
        return dataHost[slot];
    }

    /**
     * Queues the request whose argument the caller put at {@code in(slot) + 40}, of
     * {@code argBytes} bytes, with room for {@code replyBytes} of reply (0: a request without
     * reply, FORGET); visible to the backend after {@link #flush()}. False if the ring is full.
     */
    public boolean submit(int slot, int opcode, long nodeId, int argBytes, int replyBytes) {
        return submit(slot, opcode, nodeId, argBytes, replyBytes, 0, false);
    }

    /**
     * As {@link #submit(int, int, long, int, int)}, with {@code dataBytes} of the slot's data
     * buffer in a descriptor of their own: written by the backend after the reply's
     * {@code replyBytes} if {@code toGuest} (READ), else read after the argument (WRITE); the
     * in-header's length counts them.
     */
    public boolean submit(int slot, int opcode, long nodeId, int argBytes, int replyBytes, int dataBytes,
            boolean toGuest) {
        int len = Fuse.IN_HEADER_SIZE + argBytes;
        if (len > inBytes || replyBytes > outBytes || dataBytes > this.dataBytes) {
            throw new IllegalArgumentException("request of " + len + " bytes, reply of " + replyBytes + " or data of "
                    + dataBytes + " does not fit the slot's buffers");
        }
        long h = inHost[slot];
        long u = ++unique;
        Native.putInt(h + Fuse.IN_LEN, toGuest ? len : len + dataBytes);
        Native.putInt(h + Fuse.IN_OPCODE, opcode);
        Native.putLong(h + Fuse.IN_UNIQUE, u);
        Native.putLong(h + Fuse.IN_NODEID, nodeId);
        Native.putInt(h + Fuse.IN_UID, 0);
        Native.putInt(h + Fuse.IN_GID, 0);
        Native.putInt(h + Fuse.IN_PID, 1);
        Native.putShort(h + Fuse.IN_TOTAL_EXTLEN, (short) 0);
        Native.putShort(h + Fuse.IN_PADDING, (short) 0);
        // with INDIRECT_DESC the data goes a page per descriptor, in a table, as the driver posts it
        boolean indirect = tableHost != null && dataBytes > 0;
        addrs[0] = inGpa[slot];
        lens[0] = len;
        int n = 1;
        if (!toGuest) {
            n = data(n, slot, dataBytes, indirect);
        }
        int readable = n;
        if (replyBytes > 0) {
            Native.zero(outHost[slot], Fuse.OUT_HEADER_SIZE);
            addrs[n] = outGpa[slot];
            lens[n++] = replyBytes;
            if (toGuest) {
                n = data(n, slot, dataBytes, indirect);
            }
        }
        int head = indirect
                ? queue.addIndirect(tableGpa[slot], DriverQueue.writeIndirectTable(tableHost[slot], addrs, lens, readable,
                        n - readable))
                : queue.add(addrs, lens, readable, n - readable);
        if (head < 0) {
            return false;
        }
        uniqueOfSlot[slot] = u;
        slotOfHead[head] = slot;
        return true;
    }

    /**
     * Adds the slot's {@code dataBytes} of data (if any) at {@code n}: one buffer, or with
     * {@code pages} a buffer per 4 KiB page, taken last to first (none adjacent to the one
     * before, as scattered page-cache pages are not). Returns the new count.
     */
    private int data(int n, int slot, int dataBytes, boolean pages) {
        if (dataBytes == 0) {
            return n;
        }
        if (!pages) {
            addrs[n] = dataGpa[slot];
            lens[n] = dataBytes;
            return n + 1;
        }
        int count = (dataBytes + PAGE - 1) / PAGE;
        for (int p = 0; p < count; p++) {
            addrs[n] = dataGpa[slot] + (long) (count - 1 - p) * PAGE;
            lens[n++] = Math.min(PAGE, dataBytes - p * PAGE);
        }
        return n;
    }

    /** Publishes queued requests and kicks if the backend wants a kick. */
    public void flush() throws NativeException {
        queue.publishAndKick(kick);
    }

    /**
     * Reaps completed requests; returns how many. A reply whose out-header does not echo its
     * request's unique is a broken backend: IllegalStateException.
     */
    public int poll(Completion c) {
        if (reaper == null) {
            reaper = (head, length) -> {
                int slot = slotOfHead[head];
                int error = 0;
                if (length >= Fuse.OUT_HEADER_SIZE) {
                    long o = outHost[slot];
                    long echoed = Native.getLong(o + Fuse.OUT_UNIQUE);
                    if (echoed != uniqueOfSlot[slot]) {
                        throw new IllegalStateException("reply carries unique " + echoed + ", its request had "
                                + uniqueOfSlot[slot]);
                    }
                    error = Native.getInt(o + Fuse.OUT_ERROR);
                }
                completion.completed(slot, error, length);
            };
        }
        completion = c;
        return queue.reap(reaper);
    }

    /** Requests posted and not yet reaped. */
    public int inFlight() {
        return queue.inFlight();
    }

    /**
     * Sends one request in {@code slot} and waits (busy) for it, with nothing else in flight;
     * returns the out-header's error.
     */
    public int call(int slot, int opcode, long nodeId, int argBytes, int replyBytes, long timeoutNanos)
            throws NativeException {
        if (queue.inFlight() != 0) {
            throw new IllegalStateException("call() with requests in flight");
        }
        if (!submit(slot, opcode, nodeId, argBytes, replyBytes)) {
            throw new IllegalStateException("ring full");
        }
        flush();
        int[] error = {0};
        long deadline = System.nanoTime() + timeoutNanos;
        while (poll((s, e, len) -> error[0] = e) == 0) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("no reply within " + timeoutNanos / 1_000_000 + " ms");
            }
            Thread.onSpinWait();
        }
        return error[0];
    }

    @Override
    public void close() {
        frontend.close();
        kick.close();
        call.close();
        ram.close();
    }
}
