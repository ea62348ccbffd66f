package io.vhostj.vsock;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoEventLoop;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.unix.DomainSocketAddress;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.UnixSocket;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;

/**
 * One VM's vsock: its connections, the host side (hybrid vsock on {@code udsPath}, netty epoll:
 * an idle connection costs no thread), and what waits for the rx queue. The tx worker hands it
 * the guest's packets ({@link #fromGuest}); the rx worker asks it to fill buffers
 * ({@link #fillRx}) whenever {@link #hasRxWork()}, woken through {@link #rxWake()}; the tx worker
 * is held back while too many replies wait ({@link #txMayGo()}), woken through {@link #txWake()}.
 */
final class VsockMux implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(VsockMux.class);
    /** How long the guest has to answer a host CONNECT. */
    private static final long CONNECT_TIMEOUT_SECONDS = 10;
    /**
     * Replies waiting for rx buffers past which the tx queue stops being served (as Linux's
     * vhost-vsock does): a guest that sends packets but posts no rx buffers cannot make the
     * backend queue replies without bound.
     */
    static final int MAX_CONTROL = 1024;
    /** Host bytes read ahead per connection beyond the guest's credit before reading pauses. */
    private static final int READ_AHEAD = 64 * 1024;

    /**
     * What may wait in one guest's queue of sibling packets (each counted with
     * {@link #SIBLING_OVERHEAD}): past it, a sibling's packet to this guest is refused with an
     * RST. A guest that reads slowly or never costs its own connections, not the senders' other
     * traffic; credit keeps well-behaved streams far below it.
     */
    static final int MAX_SIBLING_BYTES = 4 << 20;
    /** Bookkeeping a queued sibling packet costs beyond its header and payload. */
    private static final int SIBLING_OVERHEAD = 256;
    /** The largest SEQPACKET message either way (below net.core.wmem_default, 208 KiB). */
    static final int MAX_SEQPACKET_MESSAGE = 128 << 10;
    /** The largest payload a guest may put in one packet (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
    static final int MAX_PACKET_PAYLOAD = 64 << 10;

    /** A packet that carries no payload, waiting for an rx buffer; {@code cid} is its source. */
    private record Control(int localPort, int peerPort, int op, int flags, VsockConnection conn, long cid, int type) {
        /** A packet of {@code conn}'s, from the host. */
        Control(int localPort, int peerPort, int op, int flags, VsockConnection conn) {
            this(localPort, peerPort, op, flags, conn, VirtioVsock.HOST_CID, conn.type);
        }
    }

    /** A sibling guest's packet, header as it sent it, payload copied out of its memory. */
    private static final class SiblingPacket {
        final byte[] header;
        final ByteBuf payload;
        final int size;

        SiblingPacket(byte[] header, ByteBuf payload) {
            this.header = header;
            this.payload = payload;
            this.size = VirtioVsock.HDR_SIZE + payload.readableBytes();
        }

        long cost() {
            return size + SIBLING_OVERHEAD;
        }
    }

    private final long guestCid;
    private final java.util.Set<String> groups;
    private final VsockSiblings siblings;
    private final ConcurrentLinkedQueue<SiblingPacket> fromSiblings = new ConcurrentLinkedQueue<>();
    /** Cost of the sibling packets waiting in this guest's queue. */
    private final java.util.concurrent.atomic.AtomicLong siblingQueued = new java.util.concurrent.atomic.AtomicLong();
    /** Whether the guest's driver took VIRTIO_VSOCK_F_SEQPACKET. */
    private volatile boolean seqpacket;
    /** Whether a driver runs the queues (siblings' packets are refused while not). */
    private volatile boolean guestUp;
    private final Path udsPath;
    private final int bufAlloc;
    private final EventLoopGroup group;
    private final Map<Long, VsockConnection> connections = new ConcurrentHashMap<>();
    private final ConcurrentLinkedQueue<Control> control = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<VsockConnection> ready = new ConcurrentLinkedQueue<>();
    private final AtomicInteger nextPort = new AtomicInteger(1024);
    private final Wake rxWake;
    /** Signalled when control packets drain below {@link #MAX_CONTROL}: the tx queue may go on. */
    private final Wake txWake;
    /** Control packets waiting for rx buffers. */
    private final java.util.concurrent.atomic.AtomicInteger controlQueued = new java.util.concurrent.atomic.AtomicInteger();
    private HybridListener listener;
    private long foreignPackets; // tx worker only
    private long overruns; // tx worker only

    VsockMux(long guestCid, Path udsPath, int bufAlloc, EventLoopGroup group) throws NativeException {
        this(guestCid, udsPath, bufAlloc, group, java.util.Set.of("default"), null);
    }

    /** A VM in {@code groups}, reachable by and reaching the others of {@code siblings} it shares one with. */
    VsockMux(long guestCid, Path udsPath, int bufAlloc, EventLoopGroup group, java.util.Set<String> groups,
            VsockSiblings siblings) throws NativeException {
        this.guestCid = guestCid;
        this.groups = java.util.Set.copyOf(groups);
        this.siblings = siblings;
        this.udsPath = udsPath;
        this.bufAlloc = bufAlloc;
        this.group = group;
        this.rxWake = new Wake();
        this.txWake = new Wake();
    }

    static long key(int localPort, int peerPort) {
        return ((long) localPort << 32) | (peerPort & 0xffff_ffffL);
    }

    long guestCid() {
        return guestCid;
    }

    java.util.Set<String> groups() {
        return groups;
    }

    /** The driver's features: SEQPACKET sockets are served only if it took them. */
    void featuresAcked(boolean seqpacket) {
        this.seqpacket = seqpacket;
    }

    /** A driver started the queues: siblings' packets are accepted from now on. */
    void guestStarted() {
        guestUp = true;
    }

    Wake rxWake() {
        return rxWake;
    }

    Wake txWake() {
        return txWake;
    }

    /** Whether the tx queue may be served: not while too many replies wait for rx buffers. */
    boolean txMayGo() {
        return controlQueued.get() < MAX_CONTROL;
    }

    /** Listens for host programs on the hybrid vsock socket. */
    void listen() throws NativeException, InterruptedException {
        IoEventLoop loop = (IoEventLoop) group.next();
        listener = HybridListener.listen(udsPath, loop, new HybridListener.Requests() {
            @Override
            public void connect(UnixSocket socket, int port, ByteBuf rest) {
                connectFromHost(loop, socket, port, rest);
            }

            @Override
            public void passfd(UnixSocket control, int passed, int port, boolean keep) {
                passfdFromHost(loop, control, passed, port, keep);
            }
        });
        LOG.info("vsock: guest CID {}, host side on {} (CONNECT <port>, passfd), guest connections to {}_<port>",
                guestCid, udsPath, udsPath);
    }

    int connectionCount() {
        return connections.size();
    }

    /** The most guest bytes any connection holds for its host socket (never above its buf_alloc). */
    int mostUnforwarded() {
        int most = 0;
        for (VsockConnection conn : connections.values()) {
            synchronized (conn) {
                most = Math.max(most, conn.unforwarded());
            }
        }
        return most;
    }

    // ---- rx: packets to the guest ---------------------------------------------------------

    boolean hasRxWork() {
        return !control.isEmpty() || !fromSiblings.isEmpty() || !ready.isEmpty();
    }

    /**
     * Fills one rx buffer: a control packet first, else payload from a connection that has
     * data and credit. Returns the bytes written (0: nothing was left to send after all).
     */
    int fillRx(DescriptorChain chain, long hdr) throws ChainException {
        long room = chain.writableBytes();
        if (room < VirtioVsock.HDR_SIZE) {
            throw new ChainException("rx buffer of " + room + " bytes cannot hold a packet header");
        }
        Control c = control.poll();
        if (c != null) {
            if (controlQueued.getAndDecrement() == MAX_CONTROL) {
                txWake.signal();
            }
            int fwd = 0;
            if (c.conn() != null) {
                synchronized (c.conn()) {
                    fwd = c.conn().fwdCnt;
                    c.conn().reportedFwdCnt = fwd;
                }
            }
            VirtioVsock.putHeader(hdr, c.type(), c.cid(), guestCid, c.localPort(), c.peerPort(), 0, c.op(), c.flags(),
                    c.conn() != null ? c.conn().bufAlloc : bufAlloc, fwd);
            chain.writeToChain(0, hdr, VirtioVsock.HDR_SIZE);
            return VirtioVsock.HDR_SIZE;
        }
        SiblingPacket p = fromSiblings.peek(); // this rx worker is the only consumer
        if (p != null) {
            // a payload longer than the buffer goes in pieces, each a whole RW packet of its own
            int n = (int) Math.min(room - VirtioVsock.HDR_SIZE, p.payload.readableBytes());
            Native.copyFromArray(p.header, 0, hdr, VirtioVsock.HDR_SIZE);
            Native.putInt(hdr + VirtioVsock.LEN, n);
            chain.writeToChain(0, hdr, VirtioVsock.HDR_SIZE);
            if (n > 0) {
                copyToChain(p.payload, n, chain, VirtioVsock.HDR_SIZE);
                p.payload.skipBytes(n);
            }
            if (!p.payload.isReadable()) {
                fromSiblings.poll();
                p.payload.release();
                siblingQueued.addAndGet(-p.cost());
            }
            return VirtioVsock.HDR_SIZE + n;
        }
        VsockConnection conn;
        while ((conn = ready.poll()) != null) {
            synchronized (conn) {
                conn.queued = false;
                if (!conn.sendable()) {
                    continue;
                }
                int n = (int) Math.min(Math.min(room - VirtioVsock.HDR_SIZE, conn.peerCredit()), conn.toGuestBytes);
                int flags = 0;
                if (conn.seqpacket()) { // one message per packet at most; its last piece says so
                    ByteBuf message = conn.toGuest.peek();
                    n = Math.min(n, message.readableBytes());
                    copyToChain(message, n, chain, VirtioVsock.HDR_SIZE);
                    message.skipBytes(n);
                    if (!message.isReadable()) {
                        conn.toGuest.poll().release();
                        flags = VirtioVsock.SEQ_EOM | VirtioVsock.SEQ_EOR;
                    }
                } else {
                    long at = VirtioVsock.HDR_SIZE;
                    int left = n;
                    while (left > 0) {
                        ByteBuf b = conn.toGuest.peek();
                        int take = Math.min(left, b.readableBytes());
                        copyToChain(b, take, chain, at);
                        b.skipBytes(take);
                        if (!b.isReadable()) {
                            conn.toGuest.poll().release();
                        }
                        at += take;
                        left -= take;
                    }
                }
                conn.toGuestBytes -= n;
                conn.txCnt += n;
                conn.reportedFwdCnt = conn.fwdCnt;
                VirtioVsock.putHeader(hdr, conn.type, VirtioVsock.HOST_CID, guestCid, conn.localPort, conn.peerPort, n,
                        VirtioVsock.OP_RW, flags, conn.bufAlloc, conn.fwdCnt);
                chain.writeToChain(0, hdr, VirtioVsock.HDR_SIZE);
                afterDelivery(conn);
                return VirtioVsock.HDR_SIZE + n;
            }
        }
        return 0;
    }

    /** After payload went to the guest: requeue, resume reading the host, or pass on its EOF. */
    private void afterDelivery(VsockConnection conn) {
        if (conn.sendable()) {
            conn.queued = true;
            ready.add(conn);
        }
        resumeReading(conn);
        Control shutdown = shutdownDue(conn);
        if (shutdown != null) {
            queueControl(shutdown);
        }
    }

    /**
     * Reads the host socket again (its reading paused in {@link #fromHost}) once what waits for
     * the guest is within the guest's credit plus {@link #READ_AHEAD}.
     */
    private static void resumeReading(VsockConnection conn) {
        if (conn.state == VsockConnection.State.ESTABLISHED && conn.host != null && !conn.hostDone
                && conn.toGuestBytes < readLimit(conn)) {
            conn.host.reading(true);
        }
    }

    /**
     * Host bytes a connection may hold for the guest before reading its host end pauses: the
     * guest's credit plus {@link #READ_AHEAD}, the credit counted at most as our own buffer (the
     * guest's buf_alloc is its word, not a licence to make us buffer gigabytes).
     */
    private static int readLimit(VsockConnection conn) {
        return Math.min(conn.peerCredit(), conn.bufAlloc) + READ_AHEAD;
    }

    /**
     * The SHUTDOWN the guest should hear now, or null: once the host's data before its EOF is
     * delivered, SEND (the host sends no more); RCV too when the host socket is gone.
     */
    private static Control shutdownDue(VsockConnection conn) {
        if (conn.state != VsockConnection.State.ESTABLISHED || !conn.hostDone || !conn.toGuest.isEmpty()) {
            return null;
        }
        int flags = VirtioVsock.SHUTDOWN_SEND | (conn.hostGone ? VirtioVsock.SHUTDOWN_RCV : 0);
        if ((conn.shutdownSent | flags) == conn.shutdownSent) {
            return null;
        }
        conn.shutdownSent |= flags;
        return new Control(conn.localPort, conn.peerPort, VirtioVsock.OP_SHUTDOWN, conn.shutdownSent, conn);
    }

    private static void copyToChain(ByteBuf b, int n, DescriptorChain chain, long at) throws ChainException {
        if (b.hasMemoryAddress()) {
            chain.writeToChain(at, b.memoryAddress() + b.readerIndex(), n);
            return;
        }
        byte[] tmp = new byte[n];
        b.getBytes(b.readerIndex(), tmp);
        long buf = Native.allocate(n);
        try {
            Native.copyFromArray(tmp, 0, buf, n);
            chain.writeToChain(at, buf, n);
        } finally {
            Native.free(buf);
        }
    }

    private void queueControl(Control c) {
        controlQueued.incrementAndGet();
        control.add(c);
    }

    private void send(Control c) {
        queueControl(c);
        rxWake.signal();
    }

    /** An RST from the host to a connection of {@code type}. */
    private void rst(int type, int localPort, int peerPort) {
        rst(type, VirtioVsock.HOST_CID, localPort, peerPort);
    }

    /** An RST that seems to come from {@code cid}: the guest matches replies by the CID it addressed. */
    private void rst(int type, long cid, int localPort, int peerPort) {
        send(new Control(localPort, peerPort, VirtioVsock.OP_RST, 0, null, cid, type));
    }

    private void markReady(VsockConnection conn) {
        if (!conn.queued && conn.sendable()) {
            conn.queued = true;
            ready.add(conn);
            rxWake.signal();
        }
    }

    // ---- tx: packets from the guest ----------------------------------------------------------

    /** One packet from the tx queue; its header is at {@code hdr} (native), its payload in the chain after it. */
    void fromGuest(long hdr, DescriptorChain chain) throws ChainException {
        long srcCid = Native.getLong(hdr + VirtioVsock.SRC_CID);
        long dstCid = Native.getLong(hdr + VirtioVsock.DST_CID);
        int srcPort = Native.getInt(hdr + VirtioVsock.SRC_PORT);
        int dstPort = Native.getInt(hdr + VirtioVsock.DST_PORT);
        long len = Native.getInt(hdr + VirtioVsock.LEN) & 0xffff_ffffL;
        int type = Native.getShort(hdr + VirtioVsock.TYPE) & 0xffff;
        int op = Native.getShort(hdr + VirtioVsock.OP) & 0xffff;
        int flags = Native.getInt(hdr + VirtioVsock.FLAGS);
        if (VirtioVsock.HDR_SIZE + len > chain.readableBytes()) {
            throw new ChainException("vsock packet says " + len + " payload bytes, the chain holds "
                    + (chain.readableBytes() - VirtioVsock.HDR_SIZE));
        }
        if (srcCid != guestCid) {
            long n = ++foreignPackets; // the guest chooses how many: log the first few, then every 1000th
            if (n <= 10 || n % 1000 == 0) {
                LOG.warn("vsock: packet from CID {} on the queue of CID {}: dropped ({} so far)", srcCid, guestCid, n);
            }
            return;
        }
        boolean known = type == VirtioVsock.TYPE_STREAM || (type == VirtioVsock.TYPE_SEQPACKET && seqpacket);
        int replyType = known ? type : VirtioVsock.TYPE_STREAM;
        if (dstCid != VirtioVsock.HOST_CID || !known) {
            VsockMux to = siblings == null || !known ? null : siblings.reachable(this, dstCid);
            if (to != null && to.guestUp && (type == VirtioVsock.TYPE_STREAM || to.seqpacket)) {
                toSibling(to, hdr, chain, op, type, dstCid, srcPort, dstPort, len);
            } else if (op != VirtioVsock.OP_RST) {
                // nobody there, or not ours to reach, or a type not negotiated; from the CID
                // addressed if that could be another VM's (the guest matches the reply by it)
                boolean remote = dstCid > VirtioVsock.HOST_CID && dstCid != guestCid && dstCid <= 0xffff_ffffL;
                rst(replyType, remote ? dstCid : VirtioVsock.HOST_CID, dstPort, srcPort);
            }
            return;
        }
        VsockConnection conn = connections.get(key(dstPort, srcPort));
        if (conn == null || conn.type != type) {
            if (conn == null && op == VirtioVsock.OP_REQUEST) {
                connectToHost(dstPort, srcPort, hdr, type);
            } else if (op != VirtioVsock.OP_RST) {
                rst(type, dstPort, srcPort);
            }
            return;
        }
        synchronized (conn) {
            conn.peerBufAlloc = Native.getInt(hdr + VirtioVsock.BUF_ALLOC);
            conn.peerFwdCnt = Native.getInt(hdr + VirtioVsock.FWD_CNT);
            switch (op) {
                case VirtioVsock.OP_RESPONSE -> established(conn);
                case VirtioVsock.OP_RW -> forward(conn, chain, (int) len, flags);
                case VirtioVsock.OP_SHUTDOWN -> shutdownFromGuest(conn, flags);
                case VirtioVsock.OP_RST -> close(conn, false);
                case VirtioVsock.OP_CREDIT_UPDATE -> {
                    // the credit came with the header; below
                }
                case VirtioVsock.OP_CREDIT_REQUEST -> send(new Control(conn.localPort, conn.peerPort,
                        VirtioVsock.OP_CREDIT_UPDATE, 0, conn));
                case VirtioVsock.OP_REQUEST -> close(conn, true); // a second REQUEST on a live pair
                default -> LOG.debug("vsock: {} on {}: ignored", VirtioVsock.opName(op), conn);
            }
            if (conn.state != VsockConnection.State.CLOSED) {
                markReady(conn);
                resumeReading(conn);
            }
        }
    }

    /**
     * A packet for a sibling guest: copied out of this guest's memory as it is (the two guests
     * keep their own credit accounting end to end) into the sibling's queue, unless that queue
     * is full or the packet is not one a guest sends: then the sender hears an RST.
     */
    private void toSibling(VsockMux to, long hdr, DescriptorChain chain, int op, int type, long dstCid, int srcPort,
            int dstPort, long len) throws ChainException {
        // only RW carries payload; anything longer than a guest may send is refused, not buffered
        int payloadLen = op == VirtioVsock.OP_RW ? (int) Math.min(len, Integer.MAX_VALUE) : 0;
        long cost = VirtioVsock.HDR_SIZE + payloadLen + SIBLING_OVERHEAD;
        if (payloadLen > MAX_PACKET_PAYLOAD || to.siblingQueued.get() + cost > MAX_SIBLING_BYTES) {
            if (op != VirtioVsock.OP_RST) {
                rst(type, dstCid, dstPort, srcPort);
            }
            return;
        }
        byte[] header = new byte[VirtioVsock.HDR_SIZE];
        Native.copyToArray(hdr, header, 0, header.length);
        java.nio.ByteBuffer.wrap(header).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(VirtioVsock.LEN, payloadLen);
        ByteBuf payload = io.netty.buffer.PooledByteBufAllocator.DEFAULT.directBuffer(Math.max(payloadLen, 1));
        try {
            if (payloadLen > 0) {
                if (!payload.hasMemoryAddress()) {
                    throw new IllegalStateException("netty gave a direct buffer without an address");
                }
                chain.readFromChain(VirtioVsock.HDR_SIZE, payload.memoryAddress() + payload.writerIndex(), payloadLen);
                payload.writerIndex(payloadLen);
            }
        } catch (ChainException | RuntimeException e) {
            payload.release();
            throw e;
        }
        SiblingPacket p = new SiblingPacket(header, payload);
        to.siblingQueued.addAndGet(p.cost());
        to.fromSiblings.add(p);
        to.rxWake.signal();
    }

    /**
     * The guest's REQUEST to host port {@code localPort}: connect {@code udsPath_localPort}, a
     * stream socket, or for SEQPACKET a SOCK_SEQPACKET one.
     */
    private void connectToHost(int localPort, int peerPort, long hdr, int type) {
        String path = udsPath + "_" + localPort;
        if (type == VirtioVsock.TYPE_SEQPACKET) {
            UnixSocket s;
            try {
                s = UnixSocket.connectSeqpacket(Path.of(path));
            } catch (NativeException e) {
                LOG.debug("vsock: guest port {} -> {} (SEQPACKET): {}", peerPort, path, e.getMessage());
                rst(type, localPort, peerPort);
                return;
            }
            VsockConnection conn = new VsockConnection(localPort, peerPort, seqpacketBufAlloc(s.fd()),
                    VsockConnection.State.CONNECTING_TO_HOST, type);
            conn.peerBufAlloc = Native.getInt(hdr + VirtioVsock.BUF_ALLOC);
            conn.peerFwdCnt = Native.getInt(hdr + VirtioVsock.FWD_CNT);
            synchronized (conn) {
                try {
                    conn.host = new FdEnd(this, conn, (IoEventLoop) group.next(), s.fd(), null, false);
                    s.release(); // the end owns it now
                } catch (NativeException e) {
                    LOG.debug("vsock: guest port {} -> {} (SEQPACKET): {}", peerPort, path, e.getMessage());
                    s.close();
                    rst(type, localPort, peerPort);
                    return;
                }
                if (conn.state == VsockConnection.State.CLOSED) {
                    return; // epoll refused it; the guest has its RST
                }
                connections.put(conn.key(), conn);
                conn.state = VsockConnection.State.ESTABLISHED;
                send(new Control(localPort, peerPort, VirtioVsock.OP_RESPONSE, 0, conn));
                conn.host.reading(true);
            }
            return;
        }
        VsockConnection conn = new VsockConnection(localPort, peerPort, bufAlloc,
                VsockConnection.State.CONNECTING_TO_HOST, type);
        conn.peerBufAlloc = Native.getInt(hdr + VirtioVsock.BUF_ALLOC);
        conn.peerFwdCnt = Native.getInt(hdr + VirtioVsock.FWD_CNT);
        connections.put(conn.key(), conn);
        new Bootstrap().group(group).channel(EpollDomainSocketChannel.class)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new HostData(conn))
                .connect(new DomainSocketAddress(path)).addListener((ChannelFutureListener) f -> {
                    synchronized (conn) {
                        if (!f.isSuccess()) {
                            LOG.debug("vsock: guest port {} -> {}: {}", peerPort, path, f.cause().getMessage());
                            connections.remove(conn.key());
                            conn.state = VsockConnection.State.CLOSED;
                            rst(conn.type, localPort, peerPort);
                            return;
                        }
                        if (conn.state == VsockConnection.State.CLOSED) { // the guest gave up meanwhile
                            f.channel().close();
                            return;
                        }
                        conn.host = new HostEnd.ChannelEnd(f.channel());
                        conn.state = VsockConnection.State.ESTABLISHED;
                        send(new Control(localPort, peerPort, VirtioVsock.OP_RESPONSE, 0, conn));
                    }
                });
    }

    /** The guest accepted a host client's CONNECT. */
    private void established(VsockConnection conn) {
        if (conn.state != VsockConnection.State.CONNECTING_TO_GUEST) {
            return;
        }
        conn.state = VsockConnection.State.ESTABLISHED;
        conn.host.accepted(conn.localPort);
        if (!conn.hostDone) {
            conn.host.reading(true);
        }
        if (conn.host instanceof FdEnd end && !end.writable()) {
            // a read-only descriptor: whatever the guest would send has nowhere to go
            conn.shutdownSent |= VirtioVsock.SHUTDOWN_RCV;
            send(new Control(conn.localPort, conn.peerPort, VirtioVsock.OP_SHUTDOWN, conn.shutdownSent, conn));
        }
        Control shutdown = shutdownDue(conn);
        if (shutdown != null) {
            send(shutdown);
        }
    }

    /**
     * RW: the payload goes to the host socket; the credit comes back as the socket takes it. A
     * SEQPACKET connection's pieces wait until the one that ends the message (EOM), then go as
     * one message.
     */
    private void forward(VsockConnection conn, DescriptorChain chain, int len, int flags) throws ChainException {
        boolean eom = conn.seqpacket() && (flags & VirtioVsock.SEQ_EOM) != 0;
        if (conn.state != VsockConnection.State.ESTABLISHED || (len == 0 && !eom)) {
            return;
        }
        if (conn.unforwarded() + len > conn.bufAlloc) {
            long n = ++overruns; // guest-chosen: log the first few, then every 1000th
            if (n <= 10 || n % 1000 == 0) {
                LOG.warn("vsock: {} sent {} bytes beyond the credit it was given: reset ({} so far)", conn,
                        conn.unforwarded() + len - conn.bufAlloc, n);
            }
            close(conn, true);
            return;
        }
        ByteBuf buf = PooledByteBufAllocator.DEFAULT.directBuffer(Math.max(len, 1));
        try {
            if (buf.hasMemoryAddress()) {
                chain.readFromChain(VirtioVsock.HDR_SIZE, buf.memoryAddress() + buf.writerIndex(), len);
                buf.writerIndex(buf.writerIndex() + len);
            } else {
                long tmp = Native.allocate(len);
                try {
                    chain.readFromChain(VirtioVsock.HDR_SIZE, tmp, len);
                    byte[] bytes = new byte[len];
                    Native.copyToArray(tmp, bytes, 0, len);
                    buf.writeBytes(bytes);
                } finally {
                    Native.free(tmp);
                }
            }
        } catch (ChainException e) {
            buf.release();
            throw e;
        }
        conn.rxCnt += len;
        if (!conn.seqpacket()) {
            conn.host.write(buf, () -> forwarded(conn, len));
            return;
        }
        conn.partial.add(buf);
        conn.partialBytes += len;
        if (!eom) {
            return;
        }
        int size = conn.partialBytes;
        ByteBuf message = conn.partial.size() == 1 ? conn.partial.poll()
                : PooledByteBufAllocator.DEFAULT.directBuffer(Math.max(size, 1));
        for (ByteBuf piece; (piece = conn.partial.poll()) != null; ) {
            message.writeBytes(piece);
            piece.release();
        }
        conn.partialBytes = 0;
        conn.host.write(message, () -> forwarded(conn, size));
    }

    /** The host socket took {@code len} bytes: the guest gets its credit back, in steps. */
    private void forwarded(VsockConnection conn, int len) {
        synchronized (conn) {
            conn.fwdCnt += len;
            if (conn.state == VsockConnection.State.ESTABLISHED
                    && conn.fwdCnt - conn.reportedFwdCnt >= conn.bufAlloc / 4) {
                conn.reportedFwdCnt = conn.fwdCnt;
                send(new Control(conn.localPort, conn.peerPort, VirtioVsock.OP_CREDIT_UPDATE, 0, conn));
            }
        }
    }

    private void shutdownFromGuest(VsockConnection conn, int flags) {
        if ((flags & VirtioVsock.SHUTDOWN_SEND) != 0 && (flags & VirtioVsock.SHUTDOWN_RCV) != 0) {
            close(conn, true); // the guest closed: answer RST once the host has what it sent
            return;
        }
        if ((flags & VirtioVsock.SHUTDOWN_SEND) != 0 && conn.host != null) {
            conn.host.shutdownOutput();
        }
    }

    /** Ends {@code conn}: its host socket closes after what was written; {@code rst}: tell the guest. */
    private void close(VsockConnection conn, boolean rst) {
        if (conn.state == VsockConnection.State.CLOSED) {
            return;
        }
        conn.state = VsockConnection.State.CLOSED;
        connections.remove(conn.key());
        conn.releaseBuffers();
        if (conn.host != null) {
            conn.host.closeAfterWrites();
        }
        if (rst) {
            rst(conn.type, conn.localPort, conn.peerPort);
        }
    }

    // ---- the host side ---------------------------------------------------------------------

    /** Host bytes for the guest: queued until rx buffers and credit allow; reading pauses past that. */
    void fromHost(VsockConnection conn, ByteBuf data) {
        synchronized (conn) {
            if (conn.state == VsockConnection.State.CLOSED) {
                data.release();
                return;
            }
            conn.toGuest.add(data);
            conn.toGuestBytes += data.readableBytes();
            if (conn.toGuestBytes >= readLimit(conn) || conn.state != VsockConnection.State.ESTABLISHED) {
                conn.host.reading(false);
            }
            markReady(conn);
        }
    }

    /**
     * The host end sent EOF: the guest hears SHUTDOWN after the data before it (a client that
     * writes its request and half-closes before the guest has answered CONNECT included).
     */
    void hostDone(VsockConnection conn, boolean gone) {
        synchronized (conn) {
            if (conn.state == VsockConnection.State.CLOSED) {
                return;
            }
            conn.hostDone = true;
            conn.hostGone |= gone;
            Control shutdown = shutdownDue(conn);
            if (shutdown != null) {
                send(shutdown);
            }
        }
    }

    /** A host program's {@code CONNECT <port>}: its socket becomes the stream, served by netty. */
    private void connectFromHost(IoEventLoop loop, UnixSocket socket, int port, ByteBuf rest) {
        VsockConnection conn = newHostConnection(port, VirtioVsock.TYPE_STREAM, bufAlloc);
        EpollDomainSocketChannel ch = new EpollDomainSocketChannel(socket.release());
        ch.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
        ch.config().setAutoRead(false); // until the guest answers
        ch.pipeline().addLast("data", new HostData(conn));
        synchronized (conn) {
            conn.host = new HostEnd.ChannelEnd(ch);
            connections.put(conn.key(), conn);
            if (rest != null) {
                fromHost(conn, rest);
            }
        }
        loop.register(ch).addListener(f -> {
            if (!f.isSuccess()) {
                LOG.warn("vsock: CONNECT {}: {}", port, f.cause().getMessage());
                hostFailed(conn);
            }
        });
        requestGuest(loop, conn, "CONNECT " + port);
    }

    /**
     * Kata's {@code passfd}: the passed descriptor becomes the stream's host end; {@code control},
     * the Unix connection it came on, gets the OK (and, with {@code keep}, lives as long as the stream).
     */
    private void passfdFromHost(IoEventLoop loop, UnixSocket control, int passed, int port, boolean keep) {
        int type = VirtioVsock.TYPE_STREAM;
        try {
            if ((io.vhostj.vhostuser.sys.Fd.fileMode(passed) & io.vhostj.vhostuser.sys.Fd.S_IFMT)
                    == io.vhostj.vhostuser.sys.Fd.S_IFSOCK && UnixSocket.socketType(passed) == UnixSocket.SOCK_SEQPACKET) {
                if (!seqpacket) {
                    LOG.warn("vsock: passfd {}: a SOCK_SEQPACKET socket, and the guest's driver did not take "
                            + "SEQPACKET: closed", port);
                    Native.LIBC.close(passed);
                    control.close();
                    return;
                }
                type = VirtioVsock.TYPE_SEQPACKET; // messages, kept whole both ways
            }
        } catch (NativeException e) {
            LOG.debug("vsock: passfd {}: {}", port, e.getMessage()); // not a socket's option: a stream
        }
        VsockConnection conn = newHostConnection(port, type,
                type == VirtioVsock.TYPE_SEQPACKET ? seqpacketBufAlloc(passed) : bufAlloc);
        synchronized (conn) {
            try {
                conn.host = new FdEnd(this, conn, loop, passed, control, keep);
            } catch (NativeException e) {
                LOG.warn("vsock: passfd {}: {}: closed", port, e.getMessage());
                Native.LIBC.close(passed);
                control.close();
                return;
            }
            if (conn.state == VsockConnection.State.CLOSED) {
                return; // epoll refused the descriptor: the end closed it and the control socket
            }
            connections.put(conn.key(), conn);
        }
        requestGuest(loop, conn, "passfd " + port);
    }

    /** Asks the guest to accept a host connection; gives up if it does not answer in time. */
    private void requestGuest(IoEventLoop loop, VsockConnection conn, String what) {
        send(new Control(conn.localPort, conn.peerPort, VirtioVsock.OP_REQUEST, 0, conn));
        loop.schedule(() -> {
            synchronized (conn) {
                if (conn.state == VsockConnection.State.CONNECTING_TO_GUEST) {
                    LOG.debug("vsock: {}: the guest did not answer", what);
                    close(conn, true);
                }
            }
        }, CONNECT_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    }

    /** The host end failed before or while it was used: the connection ends, the guest hears an RST. */
    void hostFailed(VsockConnection conn) {
        synchronized (conn) {
            close(conn, true);
        }
    }

    /**
     * The buf_alloc a SEQPACKET connection on host socket {@code fd} offers the guest: the guest
     * sends a message only if it fits (else EMSGSIZE to its program), and the host socket must
     * take it in one write, which its send buffer bounds (SO_SNDBUF less 32 bytes).
     */
    private int seqpacketBufAlloc(int fd) {
        int most = Math.min(bufAlloc, MAX_SEQPACKET_MESSAGE);
        try {
            return Math.max(1, Math.min(most, UnixSocket.sendBufferSize(fd) - 32));
        } catch (NativeException e) {
            return most;
        }
    }

    /** A host port for a host client's connection: one no live connection uses. */
    private VsockConnection newHostConnection(int peerPort, int type, int connBufAlloc) {
        while (true) {
            int p = nextPort.getAndIncrement();
            if (p < 1024 || p == -1) {
                nextPort.set(1024);
                continue;
            }
            if (!connections.containsKey(key(p, peerPort))) {
                VsockConnection conn = new VsockConnection(p, peerPort, connBufAlloc,
                        VsockConnection.State.CONNECTING_TO_GUEST, type);
                conn.peerBufAlloc = 0; // the guest's RESPONSE tells
                return conn;
            }
        }
    }

    /** The data phase of a host socket, either way it was made. */
    private final class HostData extends ChannelInboundHandlerAdapter {
        private final VsockConnection conn;

        HostData(VsockConnection conn) {
            this.conn = conn;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            fromHost(conn, (ByteBuf) msg);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                hostDone(conn, false);
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            synchronized (conn) {
                if (conn.state == VsockConnection.State.ESTABLISHED) {
                    // the host end is gone: what it sent before still goes, then the guest hears it
                    hostDone(conn, true);
                } else if (conn.state == VsockConnection.State.CONNECTING_TO_GUEST) {
                    close(conn, true); // nobody is left to answer OK to
                }
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.debug("vsock: {}: {}", conn, cause.getMessage());
            hostFailed(conn);
        }
    }

    // ---- lifecycle -------------------------------------------------------------------------

    /** The guest went away (disconnect, reset): every host connection closes. */
    void reset() {
        guestUp = false;
        SiblingPacket p;
        while ((p = fromSiblings.poll()) != null) {
            p.payload.release();
            siblingQueued.addAndGet(-p.cost());
        }
        int n = 0;
        for (VsockConnection conn : connections.values()) {
            synchronized (conn) {
                conn.state = VsockConnection.State.CLOSED;
                conn.releaseBuffers();
                if (conn.host != null) {
                    conn.host.abort();
                }
            }
            n++;
        }
        connections.clear();
        control.clear();
        controlQueued.set(0);
        txWake.signal();
        ready.clear();
        if (n > 0) {
            LOG.info("vsock: guest gone: closed {} host connection(s)", n);
        }
    }

    @Override
    public void close() {
        reset();
        if (listener != null) {
            listener.stop();
        }
        rxWake.close();
        txWake.close();
    }
}
