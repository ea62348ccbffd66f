package io.vhostj.vsock;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.vhostj.fuzz.OneChainRing;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.MemoryRegion;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.Memfd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.UnixSocket;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;
import io.vhostj.vhostuser.virtq.QueueBrokenException;
import io.vhostj.vhostuser.virtq.SplitQueue;

/**
 * A guest that sends vsock packets of its own making on the tx queue, several per input, into
 * one VM's mux with a real host side: a host listener at {@code <uds>_6000} accepts what the
 * guest asks for, and a SOCK_SEQPACKET one at {@code <uds>_6001} (the guest took SEQPACKET). Each packet is one chain whose shape and bytes come from the fuzzer.
 *
 * <pre>
 * repeated:
 *   u8  count     descriptors: 1 + count % 4
 *   u8[3] each    u16 length (% 1025), u8 bit 0 device-writable
 *   u8  n         bytes of the chain that follow (laid end to end), then the next packet
 * </pre>
 *
 * What must hold: nothing but {@link ChainException} comes out; what the mux puts in rx buffers
 * is a well-formed packet from CID 2 to the guest's CID that fits the buffer; no connection
 * holds more of the guest's data than the credit it was given.
 */
public class VsockPacketFuzzTest {
    private static final long GPA = 0x10_0000;
    private static final long REGION = 64 << 10;
    private static final long DATA = 4096;
    private static final int QUEUE = 16;
    private static final long GUEST_CID = 3;
    private static final int BUF_ALLOC = 16 * 1024;

    private static Fd ram;
    private static MemoryRegion region;
    private static GuestMemory memory;
    private static Path dir;
    private static EventLoopGroup group;
    private static VsockMux mux;
    private static ServerSocketChannel hostListener;
    private static UnixSocket seqpacketListener;
    private static final java.util.Queue<UnixSocket> SEQ_ACCEPTED = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private static Thread acceptor;
    /** What the host listener accepted for the current input; closed after it. */
    private static final java.util.Queue<SocketChannel> ACCEPTED = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private static final DescriptorChain CHAIN = new DescriptorChain();
    private static final long HDR = Native.allocate(VirtioVsock.HDR_SIZE);
    private static final long RX = Native.allocate(VirtioVsock.HDR_SIZE);

    @BeforeAll
    static void setUp() throws Exception {
        ram = Memfd.create("vhostj-fuzz-vsock", REGION);
        region = MemoryRegion.map(GPA, REGION, 0x7000_0000L, 0, ram.fd());
        memory = GuestMemory.of(List.of(region));
        dir = Files.createTempDirectory("vhostj-fuzz-vsock");
        group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        mux = new VsockMux(GUEST_CID, dir.resolve("v.sock"), BUF_ALLOC, group);
        mux.listen();
        mux.featuresAcked(true);
        seqpacketListener = UnixSocket.listenSeqpacket(dir.resolve("v.sock_6001"), 64);
        Thread seqAcceptor = new Thread(() -> {
            while (true) {
                try {
                    SEQ_ACCEPTED.add(seqpacketListener.accept()); // held open, never read
                } catch (IOException e) {
                    return;
                }
            }
        }, "fuzz-seqpacket-listener");
        seqAcceptor.setDaemon(true);
        seqAcceptor.start();
        hostListener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        hostListener.bind(UnixDomainSocketAddress.of(dir.resolve("v.sock_6000")));
        acceptor = new Thread(() -> {
            while (true) {
                try {
                    ACCEPTED.add(hostListener.accept()); // held open, never read: a slow host reader
                } catch (IOException e) {
                    return;
                }
            }
        }, "fuzz-host-listener");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    @AfterAll
    static void tearDown() throws IOException {
        mux.close();
        group.shutdownGracefully().syncUninterruptibly();
        hostListener.close();
        seqpacketListener.shutdown();
        seqpacketListener.close();
        region.close();
        ram.close();
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }

    @FuzzTest(maxDuration = "5s")
    void sendPackets(byte[] input) throws Exception {
        int at = 0;
        try {
            while (at < input.length) {
                int count = 1 + (input[at++] & 0xff) % 4;
                if (at + count * 3 + 1 > input.length) {
                    return;
                }
                OneChainRing ring = new OneChainRing(region.hostAddr(), GPA, REGION, DATA, QUEUE);
                for (int i = 0; i < count; i++) {
                    int length = ((input[at] & 0xff) | (input[at + 1] & 0xff) << 8) % 1025;
                    ring.add(length, (input[at + 2] & 1) != 0);
                    at += 3;
                }
                int n = Math.min(input[at++] & 0xff, input.length - at);
                Native.copyFromArray(input, at, ring.host() + DATA, n);
                at += n;
                send(ring.offer(memory));
                drainRx();
                if (mux.mostUnforwarded() > BUF_ALLOC) {
                    throw new AssertionError("a connection holds " + mux.mostUnforwarded()
                            + " bytes of guest data, over the " + BUF_ALLOC + " it was given");
                }
            }
        } finally {
            mux.reset();
            SocketChannel c;
            while ((c = ACCEPTED.poll()) != null) {
                c.close();
            }
            UnixSocket u;
            while ((u = SEQ_ACCEPTED.poll()) != null) {
                u.close();
            }
        }
    }

    private static void send(SplitQueue queue) throws Exception {
        try {
            if (!queue.pop(CHAIN)) {
                throw new AssertionError("the packet was not offered");
            }
        } catch (ChainException | QueueBrokenException e) {
            return; // DescriptorChainFuzzTest's business
        }
        if (CHAIN.readableBytes() < VirtioVsock.HDR_SIZE) {
            return; // the tx handler refuses it before the mux sees it
        }
        CHAIN.readFromChain(0, HDR, VirtioVsock.HDR_SIZE);
        try {
            mux.fromGuest(HDR, CHAIN);
        } catch (ChainException e) {
            // refused cleanly
        }
    }

    /** Takes what the mux has for the guest through rx buffers of 64 bytes of payload, checking each. */
    private static void drainRx() throws Exception {
        for (int i = 0; i < 1000 && mux.hasRxWork(); i++) {
            OneChainRing ring = new OneChainRing(region.hostAddr(), GPA, REGION, DATA, QUEUE);
            ring.add(VirtioVsock.HDR_SIZE + 64, true);
            SplitQueue rx = ring.offer(memory);
            if (!rx.pop(CHAIN)) {
                throw new AssertionError("no rx buffer");
            }
            int written = mux.fillRx(CHAIN, RX);
            if (written == 0) {
                continue;
            }
            long hdr = ring.host() + DATA;
            int len = Native.getInt(hdr + VirtioVsock.LEN);
            if (written != VirtioVsock.HDR_SIZE + len || written > VirtioVsock.HDR_SIZE + 64) {
                throw new AssertionError("rx packet of " + written + " bytes says len " + len);
            }
            long src = Native.getLong(hdr + VirtioVsock.SRC_CID);
            // from the host, or (an RST to a packet for another CID) from that CID, never the guest's own
            if (src < VirtioVsock.HOST_CID || src > 0xffff_ffffL || src == GUEST_CID
                    || Native.getLong(hdr + VirtioVsock.DST_CID) != GUEST_CID
                    || (Native.getShort(hdr + VirtioVsock.TYPE) != VirtioVsock.TYPE_STREAM
                            && Native.getShort(hdr + VirtioVsock.TYPE) != VirtioVsock.TYPE_SEQPACKET)) {
                throw new AssertionError("rx packet with a wrong address or type");
            }
            Thread.onSpinWait();
        }
    }

    /** Seeds: a connection to the host listener and what follows on it, and packets that must be refused. */
    public static Map<String, byte[]> seeds() {
        Map<String, byte[]> s = new LinkedHashMap<>();
        s.put("request-rw-shutdown", concat(
                packet(VirtioVsock.OP_REQUEST, 1234, 6000, 0, new byte[0]),
                packet(VirtioVsock.OP_RW, 1234, 6000, 0, "hello host".getBytes()),
                packet(VirtioVsock.OP_CREDIT_REQUEST, 1234, 6000, 0, new byte[0]),
                packet(VirtioVsock.OP_SHUTDOWN, 1234, 6000, VirtioVsock.SHUTDOWN_SEND | VirtioVsock.SHUTDOWN_RCV,
                        new byte[0])));
        s.put("rw-without-connection", packet(VirtioVsock.OP_RW, 1, 6000, 0, new byte[100]));
        s.put("request-nobody-listens", packet(VirtioVsock.OP_REQUEST, 7, 4999, 0, new byte[0]));
        byte[] big = packet(VirtioVsock.OP_RW, 1234, 6000, 0, new byte[200]);
        ByteBuffer.wrap(big).order(ByteOrder.LITTLE_ENDIAN).putInt(5 + VirtioVsock.LEN, 100_000); // len lies (after 5 bytes of chain shape)
        s.put("seqpacket-request-pieces-eom", concat(
                packet(VirtioVsock.TYPE_SEQPACKET, VirtioVsock.OP_REQUEST, 1235, 6001, 0, new byte[0]),
                packet(VirtioVsock.TYPE_SEQPACKET, VirtioVsock.OP_RW, 1235, 6001, 0, "half ".getBytes()),
                packet(VirtioVsock.TYPE_SEQPACKET, VirtioVsock.OP_RW, 1235, 6001, VirtioVsock.SEQ_EOM, "whole".getBytes()),
                packet(VirtioVsock.OP_RW, 1235, 6001, 0, "stream on a seqpacket pair".getBytes())));
        s.put("len-beyond-chain", concat(packet(VirtioVsock.OP_REQUEST, 1234, 6000, 0, new byte[0]), big));
        return s;
    }

    /** One stream packet as a single readable descriptor of header + payload. */
    static byte[] packet(int op, int srcPort, int dstPort, int flags, byte[] payload) {
        return packet(VirtioVsock.TYPE_STREAM, op, srcPort, dstPort, flags, payload);
    }

    static byte[] packet(int type, int op, int srcPort, int dstPort, int flags, byte[] payload) {
        int length = VirtioVsock.HDR_SIZE + payload.length;
        ByteBuffer b = ByteBuffer.allocate(5 + length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0); // one descriptor
        b.putShort((short) length).put((byte) 0);
        b.put((byte) Math.min(255, length));
        b.putLong(GUEST_CID).putLong(VirtioVsock.HOST_CID).putInt(srcPort).putInt(dstPort).putInt(payload.length)
                .putShort((short) type).putShort((short) op).putInt(flags).putInt(64 * 1024).putInt(0);
        b.put(payload);
        return b.array();
    }

    private static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] all = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        return all;
    }
}
