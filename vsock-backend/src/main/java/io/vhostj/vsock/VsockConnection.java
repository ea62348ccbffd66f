package io.vhostj.vsock;

import java.util.ArrayDeque;

import io.netty.buffer.ByteBuf;

/**
 * One stream between a guest port and a host Unix socket, with the spec's credit accounting
 * (virtio 1.2, 5.10.6.3): the guest may have at most {@code bufAlloc - (rxCnt - fwdCnt)} bytes in
 * flight towards us, and we send it at most {@code peerBufAlloc - (txCnt - peerFwdCnt)}. Counters
 * are u32 and wrap, so every difference is taken as an int. Guarded by its own monitor: the tx
 * worker, the rx worker and the event loop all touch it.
 */
final class VsockConnection {
    enum State {
        /** A host client sent CONNECT; the guest has not answered the REQUEST yet. */
        CONNECTING_TO_GUEST,
        /** The guest sent a REQUEST; the host socket is being connected. */
        CONNECTING_TO_HOST,
        ESTABLISHED,
        CLOSED
    }

    final int localPort; // the host end's port (CID 2)
    final int peerPort; // the guest end's port
    final int bufAlloc; // what we tell the guest we can hold for it
    /** VirtioVsock.TYPE_STREAM or TYPE_SEQPACKET (messages: each host read or write is one). */
    final int type;
    /** The host side: a netty channel or a passed descriptor; null until connected. */
    HostEnd host;
    State state;

    int peerBufAlloc;
    int peerFwdCnt;
    /** Payload bytes sent to the guest. */
    int txCnt;
    /** Payload bytes received from the guest, and of those, written to the host socket. */
    int rxCnt;
    int fwdCnt;
    /** The fwd_cnt the guest last saw from us. */
    int reportedFwdCnt;

    /** Host bytes waiting for rx buffers and guest credit. */
    final ArrayDeque<ByteBuf> toGuest = new ArrayDeque<>();
    int toGuestBytes;
    /** The host end will send no more (EOF): tell the guest once what came before is delivered. */
    boolean hostDone;
    /** The host end is gone altogether: it will not take what the guest sends either. */
    boolean hostGone;
    /** SHUTDOWN flags already sent to the guest. */
    int shutdownSent;
    /** In the mux's ready queue. */
    boolean queued;

    /** SEQPACKET: the pieces of the guest's message so far (its RW packets until one says EOM). */
    final ArrayDeque<ByteBuf> partial = new ArrayDeque<>();
    int partialBytes;

    VsockConnection(int localPort, int peerPort, int bufAlloc, State state, int type) {
        this.localPort = localPort;
        this.peerPort = peerPort;
        this.bufAlloc = bufAlloc;
        this.state = state;
        this.type = type;
    }

    boolean seqpacket() {
        return type == VirtioVsock.TYPE_SEQPACKET;
    }

    /** Bytes the guest can take now. */
    int peerCredit() {
        return Math.max(0, peerBufAlloc - (txCnt - peerFwdCnt));
    }

    /** Whether there is something to put in an rx buffer for this connection. */
    boolean sendable() {
        return state == State.ESTABLISHED && !toGuest.isEmpty() && peerCredit() > 0; // (an empty SEQPACKET message too)
    }

    /** Bytes the guest sent that the host socket has not taken yet. */
    int unforwarded() {
        return rxCnt - fwdCnt;
    }

    void releaseBuffers() {
        for (ByteBuf b : toGuest) {
            b.release();
        }
        toGuest.clear();
        toGuestBytes = 0;
        for (ByteBuf b : partial) {
            b.release();
        }
        partial.clear();
        partialBytes = 0;
    }

    long key() {
        return VsockMux.key(localPort, peerPort);
    }

    @Override
    public String toString() {
        return "2:" + localPort + "<->guest:" + peerPort;
    }
}
