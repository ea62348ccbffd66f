package io.vhostj.bench;

import java.nio.file.Path;

import io.vhostj.blk.VirtioBlk;
import io.vhostj.vhostuser.frontend.DriverQueue;
import io.vhostj.vhostuser.frontend.GuestRam;
import io.vhostj.vhostuser.frontend.VhostUserFrontend;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.protocol.VhostUserProtocolException;
import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/**
 * A virtio-blk driver on the project's vhost-user frontend: what a guest kernel does, minus the
 * guest. Each of {@code slots} request slots owns a header, a data buffer and a status byte in
 * guest RAM; requests are 3-descriptor chains. Allocation-free per request; single-threaded.
 */
public final class BlkClient implements AutoCloseable {
    /** Completion callback: the slot and the status byte the device wrote. */
    public interface Completion {
        void completed(int slot, int status, int writtenLength);
    }

    private static final long RAM_GPA = 0x4000_0000L;

    private final VhostUserFrontend frontend;
    private final GuestRam ram;
    private final DriverQueue queue;
    private final EventFd kick;
    private final EventFd call;
    private final long capacityBytes;
    private final int maxLength;
    private final long[] headerGpa;
    private final long[] dataGpa;
    private final long[] statusGpa;
    private final int[] slotOfHead;
    private final long[] addrs = new long[3];
    private final int[] lens = new int[3];
    private final long negotiatedFeatures;
    private DriverQueue.UsedConsumer reaper;
    private Completion completion;

    private BlkClient(Path socket, int queueSize, int slots, int maxLength) throws Exception {
        this.maxLength = maxLength;
        frontend = VhostUserFrontend.connect(socket, 5000);
        try {
            negotiatedFeatures = frontend.negotiate(VirtioFeatures.bit(VirtioFeatures.VERSION_1)
                    | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX)
                    | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC) | VirtioFeatures.bit(VirtioBlk.F_FLUSH)
                    | VirtioFeatures.bit(VirtioBlk.F_BLK_SIZE) | VirtioFeatures.bit(VirtioBlk.F_SEG_MAX),
                    ProtocolFeature.bit(ProtocolFeature.REPLY_ACK) | ProtocolFeature.bit(ProtocolFeature.CONFIG));
            if (!ProtocolFeature.has(frontend.protocolFeatures(), ProtocolFeature.CONFIG)) {
                throw new VhostUserProtocolException("backend does not offer the CONFIG protocol feature: "
                        + "cannot learn the disk size");
            }
            byte[] cap = frontend.getConfig(VirtioBlk.CFG_CAPACITY, 8);
            long sectors = 0;
            for (int i = 7; i >= 0; i--) {
                sectors = (sectors << 8) | (cap[i] & 0xff);
            }
            capacityBytes = sectors << VirtioBlk.SECTOR_SHIFT;

            long ramSize = ((long) slots * (maxLength + 4096L) + 64L * queueSize + (4 << 20) + 0xfffff) & ~0xfffffL;
            ram = new GuestRam(RAM_GPA, ramSize);
            frontend.setMemTable(ram);
            boolean eventIdx = VirtioFeatures.has(negotiatedFeatures, VirtioFeatures.RING_EVENT_IDX);
            queue = new DriverQueue(ram, queueSize, eventIdx);
            queue.interrupts(false); // we busy-poll the used ring
            kick = EventFd.create();
            call = EventFd.create();
            frontend.startQueue(0, queue, kick, call);

            headerGpa = new long[slots];
            dataGpa = new long[slots];
            statusGpa = new long[slots];
            for (int i = 0; i < slots; i++) {
                dataGpa[i] = ram.allocate(maxLength, 4096);
                headerGpa[i] = ram.allocate(VirtioBlk.REQ_HEADER_SIZE, 16);
                statusGpa[i] = ram.allocate(1, 1);
            }
            slotOfHead = new int[queueSize];
        } catch (Exception e) {
            frontend.close();
            throw e;
        }
    }

    public static BlkClient connect(Path socket, int queueSize, int slots, int maxLength) throws Exception {
        return new BlkClient(socket, queueSize, slots, maxLength);
    }

    public long capacityBytes() {
        return capacityBytes;
    }

    public long negotiatedFeatures() {
        return negotiatedFeatures;
    }

    /** Host address of slot {@code slot}'s data buffer. */
    public long data(int slot) {
        return ram.host(dataGpa[slot]);
    }

    /**
     * Queues a request (visible after {@link #flush()}). IN/OUT move {@code length} bytes at byte
     * {@code offset}; FLUSH and GET_ID ignore the offset. False if the ring is full.
     */
    public boolean submit(int slot, int type, long offset, int length) {
        if (length > maxLength) {
            throw new IllegalArgumentException("length " + length + " > " + maxLength);
        }
        long h = ram.host(headerGpa[slot]);
        Native.putInt(h + VirtioBlk.REQ_TYPE, type);
        Native.putInt(h + VirtioBlk.REQ_RESERVED, 0);
        Native.putLong(h + VirtioBlk.REQ_SECTOR, offset >>> VirtioBlk.SECTOR_SHIFT);
        Native.putByte(ram.host(statusGpa[slot]), (byte) 0xff);
        addrs[0] = headerGpa[slot];
        lens[0] = VirtioBlk.REQ_HEADER_SIZE;
        int head;
        if (type == VirtioBlk.T_FLUSH || length == 0) {
            addrs[1] = statusGpa[slot];
            lens[1] = 1;
            head = queue.add(addrs, lens, 1, 1);
        } else {
            boolean toDevice = type == VirtioBlk.T_OUT || type == VirtioBlk.T_DISCARD
                    || type == VirtioBlk.T_WRITE_ZEROES;
            addrs[1] = dataGpa[slot];
            lens[1] = length;
            addrs[2] = statusGpa[slot];
            lens[2] = 1;
            head = toDevice ? queue.add(addrs, lens, 2, 1) : queue.add(addrs, lens, 1, 2);
        }
        if (head < 0) {
            return false;
        }
        slotOfHead[head] = slot;
        return true;
    }

    /** Publishes queued requests and kicks if the backend wants a kick. */
    public void flush() throws NativeException {
        queue.publishAndKick(kick);
    }

    /** Reaps completed requests; returns how many. */
    public int poll(Completion c) {
        if (reaper == null) {
            reaper = (head, len) -> {
                int slot = slotOfHead[head];
                completion.completed(slot, Native.getByte(ram.host(statusGpa[slot])) & 0xff, len);
            };
        }
        completion = c;
        return queue.reap(reaper);
    }

    public int inFlight() {
        return queue.inFlight();
    }

    /** Submits one request and waits (busy) for it; returns the status byte. */
    public int syncRequest(int type, long offset, int length, long timeoutNanos) throws NativeException {
        if (!submit(0, type, offset, length)) {
            throw new IllegalStateException("ring full");
        }
        flush();
        int[] status = {-1};
        long deadline = System.nanoTime() + timeoutNanos;
        while (poll((slot, st, len) -> status[0] = st) == 0) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("no completion within " + timeoutNanos / 1_000_000 + " ms");
            }
            Thread.onSpinWait();
        }
        return status[0];
    }

    @Override
    public void close() {
        frontend.close();
        kick.close();
        call.close();
        ram.close();
    }
}
