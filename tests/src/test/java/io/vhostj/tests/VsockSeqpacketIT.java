package io.vhostj.tests;

import static io.vhostj.tests.VsockPackets.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.bench.HybridVsockClient;
import io.vhostj.bench.VsockClient;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.Poll;
import io.vhostj.vhostuser.sys.UnixSocket;
import io.vhostj.vsock.VirtioVsock;

/**
 * SEQPACKET sockets (VIRTIO_VSOCK_F_SEQPACKET), vhostj's frontend playing a guest that takes the
 * feature: a guest connection to CID 2 port P reaches a SOCK_SEQPACKET listener at
 * {@code <uds-path>_P}, and a host program reaches a guest's SEQPACKET port by passing a
 * SOCK_SEQPACKET socket with passfd. Message boundaries hold both ways: a message the guest sends
 * in pieces arrives as one; a host message larger than an rx buffer arrives in pieces, the last
 * marked EOM; every packet says SEQPACKET.
 */
class VsockSeqpacketIT {
    private static final int GUEST_BUF_ALLOC = 256 * 1024;

    @TempDir
    Path dir;

    private Path log;
    private Path uds;
    private Path sock;
    private Process backend;

    @BeforeEach
    void start() throws Exception {
        log = dir.resolve("vsock.log");
        uds = dir.resolve("v.vsock");
        sock = dir.resolve("v.sock");
        backend = startVsock(log, sock, uds);
    }

    @AfterEach
    void stop() throws Exception {
        stopVsock(backend, log);
    }

    @Test
    void shouldKeepMessageBoundariesBetweenAGuestAndAHostSeqpacketListener() throws Exception {
        try (UnixSocket listener = UnixSocket.listenSeqpacket(Path.of(uds + "_7000"), 8);
                VsockClient guest = VsockClient.connectSeqpacket(sock, 64, 4096)) {
            guest.type(VirtioVsock.TYPE_SEQPACKET);
            guest.send(VirtioVsock.OP_REQUEST, 1000, 7000, 0, GUEST_BUF_ALLOC, 0, 0, 0);
            Packet response = receive(guest, 1).get(0);
            assertEquals(VirtioVsock.OP_RESPONSE, response.op(), Files.readString(log));
            assertEquals(VirtioVsock.TYPE_SEQPACKET, response.type());
            try (UnixSocket host = listener.accept()) {
                // guest -> host: a message in two pieces, then one in a single packet
                send(guest, 1000, 7000, 0, "first half, ");
                send(guest, 1000, 7000, VirtioVsock.SEQ_EOM, "second half");
                send(guest, 1000, 7000, VirtioVsock.SEQ_EOM | VirtioVsock.SEQ_EOR, "another message");
                assertEquals("first half, second half", receiveMessage(host));
                assertEquals("another message", receiveMessage(host));

                // host -> guest: two small messages, then one larger than the guest's rx buffers
                sendMessage(host, "one".getBytes(StandardCharsets.US_ASCII));
                sendMessage(host, "two-two".getBytes(StandardCharsets.US_ASCII));
                byte[] big = new byte[100_000];
                new Random(3).nextBytes(big);
                sendMessage(host, big);
                List<byte[]> messages = receiveMessages(guest, 7000, 3);
                assertEquals("one", new String(messages.get(0), StandardCharsets.US_ASCII));
                assertEquals("two-two", new String(messages.get(1), StandardCharsets.US_ASCII));
                assertArrayEquals(big, messages.get(2), "the large message, whole, its last piece marked EOM");
            }
        }
    }

    @Test
    void shouldCarryEmptyMessagesBothWays() throws Exception {
        try (UnixSocket listener = UnixSocket.listenSeqpacket(Path.of(uds + "_7001"), 8);
                VsockClient guest = VsockClient.connectSeqpacket(sock, 64, 4096)) {
            guest.type(VirtioVsock.TYPE_SEQPACKET);
            guest.send(VirtioVsock.OP_REQUEST, 1001, 7001, 0, GUEST_BUF_ALLOC, 0, 0, 0);
            assertEquals(VirtioVsock.OP_RESPONSE, receive(guest, 1).get(0).op(), Files.readString(log));
            try (UnixSocket host = listener.accept()) {
                send(guest, 1001, 7001, VirtioVsock.SEQ_EOM, "");
                send(guest, 1001, 7001, VirtioVsock.SEQ_EOM, "after the empty one");
                assertEquals("", receiveMessage(host), "one empty message");
                assertEquals("after the empty one", receiveMessage(host), "then the next, nothing between");

                sendMessage(host, new byte[0]);
                sendMessage(host, "after".getBytes(StandardCharsets.US_ASCII));
                List<byte[]> got = receiveMessages(guest, 7001, 2);
                assertEquals(0, got.get(0).length, "the host's empty message reaches the guest as one");
                assertEquals("after", new String(got.get(1), StandardCharsets.US_ASCII), "and the stream goes on");
            }
        }
    }

    @Test
    void shouldReachAGuestSeqpacketPortWithAPassedSeqpacketSocket() throws Exception {
        Path pairPath = dir.resolve("pair.sock");
        try (UnixSocket listener = UnixSocket.listenSeqpacket(pairPath, 1);
                UnixSocket mine = UnixSocket.connectSeqpacket(pairPath);
                UnixSocket passed = listener.accept();
                VsockClient guest = VsockClient.connectSeqpacket(sock, 64, 4096)) {
            guest.type(VirtioVsock.TYPE_SEQPACKET);
            try (UnixSocket control = HybridVsockClient.passfd(uds, passed.fd(), "5000")) {
                passed.close();
                Packet req = receive(guest, 1).get(0);
                assertEquals(VirtioVsock.OP_REQUEST, req.op(), Files.readString(log));
                assertEquals(VirtioVsock.TYPE_SEQPACKET, req.type(), "a SEQPACKET socket makes a SEQPACKET connection");
                guest.send(VirtioVsock.OP_RESPONSE, 5000, req.srcPort(), 0, GUEST_BUF_ALLOC, 0, 0, 0);
                assertEquals("OK " + req.srcPort() + "\n", HybridVsockClient.readLine(control, 10_000));
                int hostPort = req.srcPort();
                sendMessage(mine, "from the host".getBytes(StandardCharsets.US_ASCII));
                assertEquals("from the host", new String(receiveMessages(guest, hostPort, 1).get(0),
                        StandardCharsets.US_ASCII));
                send(guest, 5000, hostPort, 0, "from ");
                send(guest, 5000, hostPort, VirtioVsock.SEQ_EOM, "the guest");
                assertEquals("from the guest", receiveMessage(mine));
            }
        }
    }

    @Test
    void shouldRefuseAPassedSeqpacketSocketWhenTheGuestDidNotTakeSeqpacket() throws Exception {
        Path pairPath = dir.resolve("pair.sock");
        try (UnixSocket listener = UnixSocket.listenSeqpacket(pairPath, 1);
                UnixSocket mine = UnixSocket.connectSeqpacket(pairPath);
                UnixSocket passed = listener.accept();
                VsockClient guest = VsockClient.connect(sock, 64, 4096);
                UnixSocket control = HybridVsockClient.passfd(uds, passed.fd(), "5000")) {
            assertEquals("", HybridVsockClient.readLine(control, 10_000), "closed without OK");
            assertTrue(receive(guest, 1, 300_000_000L).isEmpty(), "the guest heard nothing");
            assertTrue(Files.readString(log).contains("did not take SEQPACKET"), Files.readString(log));
        }
    }

    private static void send(VsockClient guest, int srcPort, int dstPort, int flags, String text) throws Exception {
        byte[] b = text.getBytes(StandardCharsets.US_ASCII);
        long buf = Native.allocate(Math.max(1, b.length));
        Native.copyFromArray(b, 0, buf, b.length);
        guest.send(VirtioVsock.OP_RW, srcPort, dstPort, flags, GUEST_BUF_ALLOC, 0, buf, b.length);
        Native.free(buf);
    }

    private static void sendMessage(UnixSocket s, byte[] message) throws Exception {
        long buf = Native.allocate(Math.max(1, message.length));
        Native.copyFromArray(message, 0, buf, message.length);
        s.send(buf, message.length, null, 0);
        Native.free(buf);
    }

    private static String receiveMessage(UnixSocket s) throws Exception {
        return HybridVsockClient.receiveMessage(s, 10_000);
    }

    /** {@code count} messages the guest receives from {@code hostPort}, each assembled up to its EOM. */
    private List<byte[]> receiveMessages(VsockClient guest, int hostPort, int count) throws Exception {
        List<byte[]> messages = new ArrayList<>();
        ByteArrayOutputStream current = new ByteArrayOutputStream();
        long deadline = System.nanoTime() + TIMEOUT;
        while (messages.size() < count && System.nanoTime() < deadline) {
            for (Packet p : receive(guest, 1)) {
                if (p.op() != VirtioVsock.OP_RW || p.srcPort() != hostPort) {
                    continue;
                }
                assertEquals(VirtioVsock.TYPE_SEQPACKET, p.type());
                current.write(p.payload());
                if ((p.flags() & VirtioVsock.SEQ_EOM) != 0) {
                    messages.add(current.toByteArray());
                    current.reset();
                }
            }
        }
        assertEquals(count, messages.size(), "messages within 10 s: " + messages.stream().map(Arrays::toString).toList()
                + "\n" + Files.readString(log));
        return messages;
    }
}
