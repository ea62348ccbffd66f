package io.vhostj.bench;

import java.nio.file.Path;

import io.vhostj.vhostuser.frontend.DriverQueue;
import io.vhostj.vhostuser.frontend.GuestRam;
import io.vhostj.vhostuser.frontend.VhostUserFrontend;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.VirtioFeatures;
import io.vhostj.vsock.VirtioVsock;

/**
 * The guest's side of a vhost-user-vsock device through vhostj's frontend, as the Linux driver
 * drives it: rx buffers of {@code rxBufferSize} (Linux: 4 KiB) kept posted, packets sent on tx
 * from a pool of buffers. Single-threaded: the caller polls ({@link #pollRx}); the rings are
 * polled, not interrupted.
 */
public final class VsockClient implements AutoCloseable {
    private static final long RAM_GPA = 0x4000_0000L;
    private static final int TX_SLOTS = 64;
    /** Largest payload of one tx packet. */
    public static final int MAX_TX_PAYLOAD = 64 * 1024;

    /** One received packet: its header and payload in guest memory (valid during the call). */
    @FunctionalInterface
    public interface PacketConsumer {
        void onPacket(long hdr, long payload, int length) throws NativeException;
    }

    private final VhostUserFrontend frontend;
    private final GuestRam ram;
    private final DriverQueue rx;
    private final DriverQueue tx;
    private final EventFd rxKick = EventFd.create();
    private final EventFd rxCall = EventFd.create();
    private final EventFd txKick = EventFd.create();
    private final EventFd txCall = EventFd.create();
    private final long guestCid;
    private final int rxBufferSize;
    private final long[] rxGpa;
    private final int[] rxSlotOfHead;
    private final long[] txGpa = new long[TX_SLOTS];
    private final int[] txSlotOfHead;
    private final int[] freeTx = new int[TX_SLOTS];
    private int freeTxCount;
    private final long[] one = new long[1];
    private final int[] oneLen = new int[1];
    private PacketConsumer current;
    private int type = VirtioVsock.TYPE_STREAM;
    private NativeException failure;

    private VsockClient(Path socket, int queueSize, int rxBufferSize, boolean seqpacket) throws Exception {
        this.rxBufferSize = rxBufferSize;
        frontend = VhostUserFrontend.connect(socket, 5000);
        try {
            long features = frontend.negotiate(
                    VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX)
                            | (seqpacket ? VirtioFeatures.bit(VirtioVsock.F_SEQPACKET) : 0),
                    ProtocolFeature.bit(ProtocolFeature.REPLY_ACK) | ProtocolFeature.bit(ProtocolFeature.CONFIG));
            byte[] config = frontend.getConfig(0, VirtioVsock.CONFIG_SIZE);
            guestCid = java.nio.ByteBuffer.wrap(config).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong(0);
            ram = new GuestRam(RAM_GPA, 32 << 20);
            frontend.setMemTable(ram);
            boolean eventIdx = VirtioFeatures.has(features, VirtioFeatures.RING_EVENT_IDX);
            rx = new DriverQueue(ram, queueSize, eventIdx);
            tx = new DriverQueue(ram, queueSize, eventIdx);
            rx.interrupts(false);
            tx.interrupts(false);
            rxGpa = new long[queueSize];
            rxSlotOfHead = new int[queueSize];
            txSlotOfHead = new int[queueSize];
            for (int i = 0; i < queueSize; i++) {
                rxGpa[i] = ram.allocate(VirtioVsock.HDR_SIZE + rxBufferSize, 64);
            }
            for (int i = 0; i < TX_SLOTS; i++) {
                txGpa[i] = ram.allocate(VirtioVsock.HDR_SIZE + MAX_TX_PAYLOAD, 64);
                freeTx[freeTxCount++] = i;
            }
            frontend.startQueue(VirtioVsock.RX, rx, rxKick, rxCall);
            frontend.startQueue(VirtioVsock.TX, tx, txKick, txCall);
            for (int i = 0; i < queueSize; i++) {
                postRx(i);
            }
            rx.publishAndKick(rxKick);
        } catch (Exception e) {
            frontend.close();
            throw e;
        }
    }

    public static VsockClient connect(Path socket, int queueSize, int rxBufferSize) throws Exception {
        return new VsockClient(socket, queueSize, rxBufferSize, false);
    }

    /** A driver that also takes VIRTIO_VSOCK_F_SEQPACKET (if the device offers it). */
    public static VsockClient connectSeqpacket(Path socket, int queueSize, int rxBufferSize) throws Exception {
        return new VsockClient(socket, queueSize, rxBufferSize, true);
    }

    /** The socket type of the packets sent from now on: VirtioVsock.TYPE_STREAM (the default) or TYPE_SEQPACKET. */
    public void type(int type) {
        this.type = type;
    }

    /** The CID the device's config space gives this guest. */
    public long guestCid() {
        return guestCid;
    }

    private void postRx(int slot) {
        one[0] = rxGpa[slot];
        oneLen[0] = VirtioVsock.HDR_SIZE + rxBufferSize;
        int head = rx.add(one, oneLen, 0, 1);
        if (head < 0) {
            throw new IllegalStateException("rx ring full");
        }
        rxSlotOfHead[head] = slot;
    }

    /** Hands every received packet to {@code consumer}, then gives the buffers back; returns how many. */
    public int pollRx(PacketConsumer consumer) throws NativeException {
        current = consumer;
        failure = null;
        int n = rx.reap(this::received);
        if (failure != null) {
            throw failure;
        }
        if (n > 0) {
            rx.publishAndKick(rxKick);
        }
        return n;
    }

    private void received(int head, int length) {
        int slot = rxSlotOfHead[head];
        long hdr = ram.host(rxGpa[slot]);
        int len = Native.getInt(hdr + VirtioVsock.LEN);
        if (failure == null && length >= VirtioVsock.HDR_SIZE) {
            try {
                current.onPacket(hdr, hdr + VirtioVsock.HDR_SIZE, Math.min(len, length - VirtioVsock.HDR_SIZE));
            } catch (NativeException e) {
                failure = e;
            }
        }
        postRx(slot);
    }

    /**
     * Sends one packet from this guest to (CID 2, {@code dstPort}); {@code payload} (a host
     * address, or 0) holds {@code length} bytes. Waits for a free tx buffer.
     */
    public void send(int op, int srcPort, int dstPort, int flags, int bufAlloc, int fwdCnt, long payload, int length)
            throws NativeException {
        while (!trySend(op, srcPort, dstPort, flags, bufAlloc, fwdCnt, payload, length)) {
            Thread.onSpinWait();
        }
    }

    /** {@link #send} to another CID than the host's (a sibling VM). */
    public void sendTo(long dstCid, int op, int srcPort, int dstPort, int flags, int bufAlloc, int fwdCnt, long payload,
            int length) throws NativeException {
        while (!trySendTo(dstCid, op, srcPort, dstPort, flags, bufAlloc, fwdCnt, payload, length)) {
            Thread.onSpinWait();
        }
    }

    /** {@link #send}, unless every tx buffer is still with the device: then false. */
    public boolean trySend(int op, int srcPort, int dstPort, int flags, int bufAlloc, int fwdCnt, long payload,
            int length) throws NativeException {
        return trySendTo(VirtioVsock.HOST_CID, op, srcPort, dstPort, flags, bufAlloc, fwdCnt, payload, length);
    }

    private boolean trySendTo(long dstCid, int op, int srcPort, int dstPort, int flags, int bufAlloc, int fwdCnt,
            long payload, int length) throws NativeException {
        if (length > MAX_TX_PAYLOAD) {
            throw new IllegalArgumentException("payload of " + length + " bytes");
        }
        if (freeTxCount == 0) {
            tx.reap((head, len) -> freeTx[freeTxCount++] = txSlotOfHead[head]);
            if (freeTxCount == 0) {
                return false;
            }
        }
        int slot = freeTx[--freeTxCount];
        long hdr = ram.host(txGpa[slot]);
        VirtioVsock.putHeader(hdr, type, guestCid, dstCid, srcPort, dstPort, length, op, flags, bufAlloc, fwdCnt);
        if (length > 0 && payload != 0) {
            Native.copy(payload, hdr + VirtioVsock.HDR_SIZE, length);
        }
        one[0] = txGpa[slot];
        oneLen[0] = VirtioVsock.HDR_SIZE + length;
        int head = tx.add(one, oneLen, 1, 0);
        if (head < 0) {
            throw new IllegalStateException("tx ring full");
        }
        txSlotOfHead[head] = slot;
        tx.publishAndKick(txKick);
        return true;
    }

    @Override
    public void close() {
        frontend.close();
        ram.close();
        rxKick.close();
        rxCall.close();
        txKick.close();
        txCall.close();
    }
}
