package io.vhostj.tests;

import static io.vhostj.tests.VsockPackets.*;
import static org.junit.jupiter.api.Assertions.*;

import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.bench.VsockClient;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vsock.VirtioVsock;

/**
 * {@code vhostj vsock --vm ... --vm ...}: two VMs in one process, each with its own CID, its
 * own vhost-user socket and its own hybrid socket; vhostj's frontend plays both guests. A
 * repeated CID is refused at start.
 */
class VsockMultiVmIT {

    @TempDir
    Path dir;

    @Test
    void shouldServeTwoVmsEachOnItsOwnSockets() throws Exception {
        Path log = dir.resolve("vsock.log");
        Process p = start(log, "--vm", "guest-cid=3,socket=" + dir.resolve("a.sock") + ",uds-path=" + dir.resolve("a.vsock"),
                "--vm", "guest-cid=4,socket=" + dir.resolve("b.sock") + ",uds-path=" + dir.resolve("b.vsock")
                        + ",tx-buffer-size=65536");
        try {
            for (int i = 0; i < 400 && !(Files.exists(dir.resolve("a.sock")) && Files.exists(dir.resolve("b.sock"))); i++) {
                Thread.sleep(50);
            }
            assertTrue(p.isAlive(), Files.readString(log));
            for (String[] vm : new String[][] {{"a", "3"}, {"b", "4"}}) {
                try (ServerSocketChannel host = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
                        VsockClient guest = VsockClient.connect(dir.resolve(vm[0] + ".sock"), 64, 4096)) {
                    host.bind(UnixDomainSocketAddress.of(dir.resolve(vm[0] + ".vsock_6000")));
                    assertEquals(Long.parseLong(vm[1]), guest.guestCid(), "the CID in the config space");
                    guest.send(VirtioVsock.OP_REQUEST, 1000, 6000, 0, 65536, 0, 0, 0);
                    assertEquals(VirtioVsock.OP_RESPONSE, awaitOp(guest), Files.readString(log));
                    byte[] hello = ("hello from CID " + vm[1]).getBytes(StandardCharsets.US_ASCII);
                    long buf = Native.allocate(hello.length);
                    Native.copyFromArray(hello, 0, buf, hello.length);
                    guest.send(VirtioVsock.OP_RW, 1000, 6000, 0, 65536, 0, buf, hello.length);
                    Native.free(buf);
                    try (SocketChannel c = host.accept()) {
                        ByteBuffer got = ByteBuffer.allocate(hello.length);
                        while (got.hasRemaining() && c.read(got) >= 0) {
                            // until all of it
                        }
                        assertEquals("hello from CID " + vm[1], new String(got.array(), StandardCharsets.US_ASCII),
                                "the VM's data reaches its own host listener");
                    }
                }
            }
        } finally {
            p.destroy();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
        }
        assertEquals(0, p.exitValue(), "SIGTERM exits cleanly:\n" + Files.readString(log));
        assertFalse(Files.readString(log).contains("Exception"), Files.readString(log));
        assertFalse(Files.exists(dir.resolve("a.vsock")), "the hybrid sockets are removed at exit");
    }

    @Test
    void shouldCarrySiblingTrafficWithinAGroupOnly() throws Exception {
        Path log = dir.resolve("groups.log");
        Process p = start(log,
                "--vm", "guest-cid=3,socket=" + dir.resolve("a.sock") + ",uds-path=" + dir.resolve("a.vsock") + ",groups=g1",
                "--vm", "guest-cid=4,socket=" + dir.resolve("b.sock") + ",uds-path=" + dir.resolve("b.vsock") + ",groups=g1+g2",
                "--vm", "guest-cid=5,socket=" + dir.resolve("c.sock") + ",uds-path=" + dir.resolve("c.vsock") + ",groups=g2");
        try {
            for (int i = 0; i < 400 && !Files.exists(dir.resolve("c.sock")); i++) {
                Thread.sleep(50);
            }
            try (VsockClient a = VsockClient.connect(dir.resolve("a.sock"), 64, 4096);
                    VsockClient b = VsockClient.connect(dir.resolve("b.sock"), 64, 4096);
                    VsockClient c = VsockClient.connect(dir.resolve("c.sock"), 64, 4096)) {
                // A (g1) connects to B (g1+g2) port 5000; B answers
                a.sendTo(4, VirtioVsock.OP_REQUEST, 1000, 5000, 0, 65536, 0, 0, 0);
                Packet req = receive(b, 1).get(0);
                assertEquals(List.of(3L, 4L, 1000L, 5000L, (long) VirtioVsock.OP_REQUEST, 0L),
                        List.of(req.srcCid(), req.dstCid(), (long) req.srcPort(), (long) req.dstPort(), (long) req.op(),
                                (long) req.payload().length), "B sees A's REQUEST as A sent it");
                b.sendTo(3, VirtioVsock.OP_RESPONSE, 5000, 1000, 0, 65536, 0, 0, 0);
                Packet resp = receive(a, 1).get(0);
                assertEquals(VirtioVsock.OP_RESPONSE, resp.op());
                assertEquals(4, resp.srcCid(), "the RESPONSE comes from B's CID");
                // 60 KiB from A to B arrive in B's 4 KiB buffers, in order
                byte[] data = new byte[60 * 1024];
                new java.util.Random(7).nextBytes(data);
                long buf = Native.allocate(data.length);
                Native.copyFromArray(data, 0, buf, data.length);
                a.sendTo(4, VirtioVsock.OP_RW, 1000, 5000, 0, 65536, 0, buf, data.length);
                Native.free(buf);
                java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
                long deadline = System.nanoTime() + TIMEOUT;
                while (all.size() < data.length && System.nanoTime() < deadline) {
                    for (Packet pk : receive(b, 1)) {
                        assertEquals(VirtioVsock.OP_RW, pk.op());
                        assertEquals(3, pk.srcCid());
                        all.write(pk.payload());
                    }
                }
                assertArrayEquals(data, all.toByteArray(), "the sibling's bytes, whole and in order");
                // C shares no group with A: refused with an RST from the CID A addressed; so is a CID nobody has
                a.sendTo(5, VirtioVsock.OP_REQUEST, 1001, 5000, 0, 65536, 0, 0, 0);
                a.sendTo(9, VirtioVsock.OP_REQUEST, 1002, 5000, 0, 65536, 0, 0, 0);
                List<Packet> rsts = receive(a, 2);
                assertEquals(2, rsts.size(), Files.readString(log));
                assertEquals(List.of(5L, 9L), rsts.stream().map(Packet::srcCid).toList());
                assertTrue(rsts.stream().allMatch(r -> r.op() == VirtioVsock.OP_RST));
                assertTrue(receive(c, 1, 500_000_000L).isEmpty(), "C heard nothing");
                // B (g2 too) reaches C
                b.sendTo(5, VirtioVsock.OP_REQUEST, 2000, 6000, 0, 65536, 0, 0, 0);
                assertEquals(4, receive(c, 1).get(0).srcCid());

                // C never reads: past its share (4 MiB waiting) B's packets to it are refused with
                // RSTs, and B's traffic to others goes on
                long big = Native.allocate(60 * 1024);
                int refused = 0;
                for (int i = 0; i < 120; i++) {
                    b.sendTo(5, VirtioVsock.OP_RW, 2000, 6000, 0, 65536, 0, big, 60 * 1024);
                    for (Packet pk : receive(b, Integer.MAX_VALUE, 1_000_000L)) {
                        refused += pk.op() == VirtioVsock.OP_RST && pk.srcCid() == 5 ? 1 : 0;
                    }
                }
                Native.free(big);
                for (Packet pk : receive(b, 1, 2_000_000_000L)) {
                    refused += pk.op() == VirtioVsock.OP_RST && pk.srcCid() == 5 ? 1 : 0;
                }
                assertTrue(refused > 0, "B heard RSTs for what C's queue could not take\n" + Files.readString(log));
                b.sendTo(3, VirtioVsock.OP_REQUEST, 2001, 5001, 0, 65536, 0, 0, 0);
                assertEquals(4, receive(a, 1).get(0).srcCid(), "B still reaches A");
            }
        } finally {
            p.destroy();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
        }
        assertFalse(Files.readString(log).contains("Exception"), Files.readString(log));
    }

    @Test
    void shouldRefuseARepeatedCid() throws Exception {
        Path log = dir.resolve("dup.log");
        Process p = start(log, "--vm", "guest-cid=3,socket=" + dir.resolve("a.sock") + ",uds-path=" + dir.resolve("a.vsock"),
                "--vm", "guest-cid=3,socket=" + dir.resolve("b.sock") + ",uds-path=" + dir.resolve("b.vsock"));
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(2, p.exitValue());
        assertEquals("vhostj vsock: --vm: guest CID 3 is given twice", Files.readString(log).strip());
    }

    @Test
    void shouldStopTakingTxWhileRepliesPileUpAndGoOnWhenTheGuestReadsThem() throws Exception {
        Path log = dir.resolve("flood.log");
        Process p = start(log, "--guest-cid", "3", "--socket-path", dir.resolve("f.sock").toString(),
                "--uds-path", dir.resolve("f.vsock").toString());
        try {
            for (int i = 0; i < 400 && !Files.exists(dir.resolve("f.sock")); i++) {
                Thread.sleep(50);
            }
            try (VsockClient guest = VsockClient.connect(dir.resolve("f.sock"), 256, 4096)) {
                // data for connections that do not exist: each earns an RST the guest never reads
                int sent = 0;
                long stalledSince = 0;
                while (sent < 10_000) {
                    if (guest.trySend(VirtioVsock.OP_RW, 1000 + sent, 7, 0, 65536, 0, 0, 0)) {
                        sent++;
                        stalledSince = 0;
                    } else if (stalledSince == 0) {
                        stalledSince = System.nanoTime();
                    } else if (System.nanoTime() - stalledSince > 2_000_000_000L) {
                        break; // the device has stopped taking tx
                    }
                }
                // 1024 replies waiting, 256 more already in the rx buffers the guest posted, 64 tx buffers held
                assertTrue(sent >= 1024 && sent <= 1024 + 256 + 64,
                        "tx stops once 1024 replies wait (sent " + sent + ")\n" + Files.readString(log));
                int[] rsts = {0};
                long deadline = System.nanoTime() + TIMEOUT;
                while (rsts[0] < sent && System.nanoTime() < deadline) {
                    guest.pollRx((hdr, payload, len) -> rsts[0]++);
                }
                assertEquals(sent, rsts[0], "every packet got its RST once the guest read them");
                assertTrue(guest.trySend(VirtioVsock.OP_RW, 1, 7, 0, 65536, 0, 0, 0) || retry(guest),
                        "tx goes on after the replies drained");
            }
            assertTrue(p.isAlive(), Files.readString(log));
        } finally {
            p.destroy();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
        }
    }

    private static boolean retry(VsockClient guest) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT;
        while (System.nanoTime() < deadline) {
            if (guest.trySend(VirtioVsock.OP_RW, 1, 7, 0, 65536, 0, 0, 0)) {
                return true;
            }
            guest.pollRx((hdr, payload, len) -> { });
        }
        return false;
    }

    private static Process start(Path log, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("vsock"));
        cmd.addAll(List.of(args));
        return BackendProcess.launchVhostj(log, cmd.toArray(String[]::new));
    }
}
