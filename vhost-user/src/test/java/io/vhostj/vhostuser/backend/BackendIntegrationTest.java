package io.vhostj.vhostuser.backend;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.vhostuser.frontend.DriverQueue;
import io.vhostj.vhostuser.frontend.GuestRam;
import io.vhostj.vhostuser.frontend.VhostUserFrontend;
import io.vhostj.vhostuser.protocol.FrontendRequest;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.protocol.VhostUserMessage;
import io.vhostj.vhostuser.protocol.VhostUserProtocolException;
import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.SplitRingLayout;

/**
 * The project's frontend driving the project's backend over a real Unix socket, with a small
 * test device ({@link EchoDevice}).
 */
class BackendIntegrationTest {
    private static final long RAM_GPA = 0x1_0000_0000L; // above 4 GiB: translation must not assume 0
    private static final long RAM_SIZE = 16 << 20;

    @TempDir
    Path dir;
    private Path socket;
    private EchoDevice device;
    private VhostUserServer server;
    private Thread serverThread;

    @BeforeEach
    void startBackend() throws NativeException {
        socket = dir.resolve("echo.sock");
        device = new EchoDevice(2);
        server = VhostUserServer.listen(new VhostUserBackend(device, 20_000), socket);
        serverThread = new Thread(server::run, "test-server");
        serverThread.start();
    }

    @AfterEach
    void stopBackend() throws InterruptedException {
        server.close();
        serverThread.join(5000);
        assertFalse(serverThread.isAlive(), "server thread must stop on close");
        server.release();
    }

    /** A negotiated connection with one queue running, as QEMU would set it up. */
    private final class Session implements AutoCloseable {
        final VhostUserFrontend fe;
        final GuestRam ram;
        final DriverQueue q;
        final EventFd kick;
        final long bufIn;
        final long bufOut;

        Session(int queueSize, boolean eventIdx, long protocolFeatures) throws Exception {
            fe = VhostUserFrontend.connect(socket, 5000);
            long offered = fe.getFeatures();
            assertTrue(ProtocolFeature.has(offered, ProtocolFeature.VHOST_USER_F_PROTOCOL_FEATURES));
            long wanted = EchoDevice.FEATURES | ProtocolFeature.bit(ProtocolFeature.VHOST_USER_F_PROTOCOL_FEATURES);
            if (!eventIdx) {
                wanted &= ~(1L << 29);
            }
            fe.setFeatures(wanted);
            fe.setProtocolFeatures(fe.getProtocolFeatures() & protocolFeatures);
            fe.setOwner();
            ram = new GuestRam(RAM_GPA, RAM_SIZE);
            fe.setMemTable(ram);
            q = new DriverQueue(ram, queueSize, eventIdx);
            kick = EventFd.create();
            q.interrupts(false);
            fe.startQueue(0, q, kick, null);
            bufOut = ram.allocate(1 << 20, 4096);
            bufIn = ram.allocate(1 << 20, 4096);
        }

        /** Sends {@code data} through the echo device and returns what came back. */
        byte[] echo(byte[] data, int segments) throws Exception {
            long[] addrs = new long[segments * 2];
            int[] lens = new int[segments * 2];
            int per = data.length / segments;
            Native.copyFromArray(data, 0, ram.host(bufOut), data.length);
            ram.zero(bufIn, data.length);
            for (int i = 0; i < segments; i++) {
                int len = i == segments - 1 ? data.length - per * i : per;
                addrs[i] = bufOut + (long) per * i;
                lens[i] = len;
                addrs[segments + i] = bufIn + (long) per * i;
                lens[segments + i] = len;
            }
            int head = q.add(addrs, lens, segments, segments);
            assertTrue(head >= 0);
            q.publishAndKick(kick);
            int[] got = {-1, -1};
            awaitUsed(q, (h, len) -> {
                got[0] = h;
                got[1] = len;
            });
            assertEquals(head, got[0]);
            assertEquals(data.length, got[1]);
            byte[] out = new byte[data.length];
            Native.copyToArray(ram.host(bufIn), out, 0, data.length);
            return out;
        }

        @Override
        public void close() {
            fe.close();
            kick.close();
            ram.close();
        }
    }

    private static void awaitUsed(DriverQueue q, DriverQueue.UsedConsumer c) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (q.reap(c) == 0) {
            if (System.nanoTime() > deadline) {
                fail("no used entry within 5 s");
            }
            Thread.onSpinWait();
        }
    }

    @Test
    void shouldEchoRequestsAcrossSegmentsWithAndWithoutEventIdx() throws Exception {
        for (boolean eventIdx : new boolean[] {true, false}) {
            try (Session s = new Session(128, eventIdx, ProtocolFeature.IMPLEMENTED)) {
                Random rnd = new Random(42);
                for (int i = 0; i < 300; i++) {
                    byte[] data = new byte[1 + rnd.nextInt(9000)];
                    rnd.nextBytes(data);
                    assertArrayEquals(data, s.echo(data, 1 + rnd.nextInt(Math.min(data.length, 4))));
                }
                // GET_VRING_BASE stops the ring and reports where the backend stands.
                assertEquals(300, s.fe.getVringBase(0));
            }
        }
    }

    @Test
    void shouldServeInPureInterruptModeWithAndWithoutEventIdx() throws Exception {
        // --poll-us 0: the worker parks after every batch and must re-arm notifications each time
        restartBackend(0);
        for (boolean eventIdx : new boolean[] {true, false}) {
            try (Session s = new Session(64, eventIdx, ProtocolFeature.IMPLEMENTED)) {
                for (int i = 0; i < 200; i++) {
                    byte[] data = ("request " + i).getBytes();
                    assertArrayEquals(data, s.echo(data, 1));
                }
                assertEquals(200, s.fe.getVringBase(0));
            }
        }
    }

    private void restartBackend(long pollNanos) throws Exception {
        stopBackend();
        server = VhostUserServer.listen(new VhostUserBackend(device, pollNanos), socket);
        serverThread = new Thread(server::run, "test-server-" + pollNanos);
        serverThread.start();
    }

    @Test
    void shouldKeepManyRequestsInFlightAndSuppressKicksWhilePolling() throws Exception {
        // a poll budget far longer than the test. Polling adapts: it starts at 0 and doubles from
        // 4 µs each time work came after a park, so a park (and a kick) happens at most about
        // log2(longest gap / 4 µs) times (~20 for a 4 s gap), whatever the scheduler does; after
        // that the worker never parks and the driver never kicks.
        restartBackend(30_000_000_000L);
        try (Session s = new Session(256, true, ProtocolFeature.IMPLEMENTED)) {
            int total = 20_000;
            int chunk = 512;
            long[] addrs = new long[2];
            int[] lens = {chunk, chunk};
            int posted = 0;
            int[] done = {0};
            for (int i = 0; i < 256; i++) {
                Native.putLong(s.ram.host(s.bufOut) + (long) i * chunk, i);
            }
            while (done[0] < total) {
                while (posted < total && s.q.inFlight() < 64) {
                    int slot = posted % 256;
                    addrs[0] = s.bufOut + (long) slot * chunk;
                    addrs[1] = s.bufIn + (long) slot * chunk;
                    assertTrue(s.q.add(addrs, lens, 1, 1) >= 0);
                    posted++;
                }
                s.q.publishAndKick(s.kick);
                s.q.reap((h, len) -> {
                    assertEquals(chunk, len);
                    done[0]++;
                });
            }
            assertEquals(total & 0xffff, s.fe.getVringBase(0));
            assertTrue(s.q.kicks <= 24 && s.q.kicksSuppressed > 100,
                    "a busy-polling backend turns kicks off: " + s.q.kicks + " kicks, " + s.q.kicksSuppressed + " suppressed");
            for (int i = 0; i < 256; i++) {
                assertEquals(i, Native.getLong(s.ram.host(s.bufIn) + (long) i * chunk));
            }
        }
    }

    @Test
    void shouldServeIndirectDescriptors() throws Exception {
        try (Session s = new Session(16, true, ProtocolFeature.IMPLEMENTED)) {
            long table = s.ram.allocate(3 * SplitRingLayout.DESC_SIZE, 16);
            long t = s.ram.host(table);
            Native.putLong(s.ram.host(s.bufOut), 0x1122334455667788L);
            putDesc(t, 0, s.bufOut, 8, SplitRingLayout.DESC_F_NEXT, 1);
            putDesc(t, 1, s.bufIn, 4, (short) (SplitRingLayout.DESC_F_WRITE | SplitRingLayout.DESC_F_NEXT), 2);
            putDesc(t, 2, s.bufIn + 100, 4, SplitRingLayout.DESC_F_WRITE, 0);
            int head = s.q.addIndirect(table, 3);
            s.q.publishAndKick(s.kick);
            int[] len = {-1};
            awaitUsed(s.q, (h, l) -> {
                assertEquals(head, h);
                len[0] = l;
            });
            assertEquals(8, len[0]);
            assertEquals(0x55667788, Native.getInt(s.ram.host(s.bufIn)));
            assertEquals(0x11223344, Native.getInt(s.ram.host(s.bufIn + 100)));
        }
    }

    private static void putDesc(long table, int i, long addr, int len, short flags, int next) {
        long d = table + (long) i * SplitRingLayout.DESC_SIZE;
        Native.putLong(d, addr);
        Native.putInt(d + 8, len);
        Native.putShort(d + 12, flags);
        Native.putShort(d + 14, (short) next);
    }

    @Test
    void shouldReturnABadChainWithZeroLengthAndKeepServing() throws Exception {
        try (Session s = new Session(16, true, ProtocolFeature.IMPLEMENTED)) {
            // a descriptor pointing far outside guest memory
            int head = s.q.add(new long[] {0x10L, s.bufIn}, new int[] {64, 64}, 1, 1);
            s.q.publishAndKick(s.kick);
            int[] len = {-1};
            awaitUsed(s.q, (h, l) -> {
                assertEquals(head, h);
                len[0] = l;
            });
            assertEquals(0, len[0]);
            byte[] data = "still serving".getBytes();
            assertArrayEquals(data, s.echo(data, 1));
        }
    }

    @Test
    void shouldAnswerConfigStatusAndQueueCount() throws Exception {
        try (Session s = new Session(16, true, ProtocolFeature.IMPLEMENTED)) {
            assertEquals(2, s.fe.getQueueNum());
            assertArrayEquals(new byte[] {3, 4, 5}, s.fe.getConfig(2, 3));
            assertEquals(VhostUserBackend.MAX_MEM_SLOTS, s.fe.getMaxMemSlots());
            s.fe.setStatus(0x0f);
            assertEquals(0x0f, s.fe.getStatus());
            // out of range config read: refused with an empty reply, the connection stays
            VhostUserProtocolException e = assertThrows(VhostUserProtocolException.class, () -> s.fe.getConfig(6, 4));
            assertTrue(e.getMessage().contains("refused"), e.getMessage());
            assertArrayEquals("ok".getBytes(), s.echo("ok".getBytes(), 1));
        }
    }

    @Test
    void shouldAckRefusedRequestsWithFailureWhenReplyAckIsNegotiated() throws Exception {
        try (Session s = new Session(16, true, ProtocolFeature.IMPLEMENTED)) {
            VhostUserMessage m = s.fe.message();
            m.begin(FrontendRequest.SEND_RARP, 0, 8); // a net-only message
            VhostUserProtocolException e = assertThrows(VhostUserProtocolException.class, () -> s.fe.send(m));
            assertTrue(e.getMessage().contains("failed in the backend"), e.getMessage());
            assertArrayEquals("alive".getBytes(), s.echo("alive".getBytes(), 1));
        }
    }

    @Test
    void shouldChangeTheMemoryTableUnderARunningQueue() throws Exception {
        try (Session s = new Session(16, true, ProtocolFeature.IMPLEMENTED);
                GuestRam extra = new GuestRam(0x2_0000_0000L, 1 << 20)) {
            assertArrayEquals("before".getBytes(), s.echo("before".getBytes(), 1));
            s.fe.addMemRegion(extra);
            // a buffer in the new region is served
            Native.copyFromArray("hotplug".getBytes(), 0, extra.host(extra.guestPhysBase()), 7);
            int head = s.q.add(new long[] {extra.guestPhysBase(), s.bufIn}, new int[] {7, 7}, 1, 1);
            s.q.publishAndKick(s.kick);
            awaitUsed(s.q, (h, l) -> assertEquals(7, l));
            byte[] out = new byte[7];
            Native.copyToArray(s.ram.host(s.bufIn), out, 0, 7);
            assertArrayEquals("hotplug".getBytes(), out);
            s.fe.removeMemRegion(extra);
            s.fe.setMemTable(s.ram); // full replacement while the queue runs
            assertArrayEquals("after".getBytes(), s.echo("after".getBytes(), 1));
            assertTrue(head >= 0);
        }
    }

    @Test
    void shouldCloseAConnectionThatBreaksTheProtocolAndServeTheNextOneClean() throws Exception {
        try (Session s = new Session(16, true, ProtocolFeature.IMPLEMENTED)) {
            int resetsBefore = device.resets;
            VhostUserMessage m = s.fe.message();
            m.begin(FrontendRequest.SET_VRING_NUM, 0, 3); // payload of the wrong size
            s.fe.connection().write(m);
            assertFalse(s.fe.connection().read(m), "the backend must hang up on a malformed message");
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (device.resets == resetsBefore && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertTrue(device.resets > resetsBefore, "the device must be reset after the connection broke");
        }
        try (Session s = new Session(16, true, ProtocolFeature.IMPLEMENTED)) {
            assertArrayEquals("fresh".getBytes(), s.echo("fresh".getBytes(), 1));
        }
    }

    @Test
    void shouldRefuseQueueSizesThatAreNotAPowerOfTwo() throws Exception {
        try (VhostUserFrontend fe = VhostUserFrontend.connect(socket, 5000)) {
            fe.setVringNum(0, 100);
            VhostUserMessage m = fe.message();
            assertFalse(fe.connection().read(m), "a bad ring size must close the connection");
        }
    }

    @Test
    void shouldNotLeakDescriptorsOverAThousandConnections() throws Exception {
        // warm up: first connection loads classes and opens jars
        try (Session s = new Session(16, true, ProtocolFeature.IMPLEMENTED)) {
            s.echo("warm".getBytes(), 1);
        }
        int before = awaitStableFdCount(-1);
        for (int i = 0; i < 1000; i++) {
            try (Session s = new Session(16, (i & 1) == 0, ProtocolFeature.IMPLEMENTED)) {
                if (i % 10 == 0) {
                    s.echo(("c" + i).getBytes(), 1);
                }
            }
        }
        int after = awaitStableFdCount(before);
        assertEquals(before, after, "descriptors open before and after 1000 connections");
    }

    /** Waits until the backend has finished tearing down (fd count settles at {@code target}). */
    private static int awaitStableFdCount(int target) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        int n = countFds();
        while (System.nanoTime() < deadline) {
            Thread.sleep(50);
            int m = countFds();
            if (m == n && (target < 0 || m == target)) {
                return m;
            }
            n = m;
        }
        return n;
    }

    private static int countFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return (int) s.count();
        }
    }

    @Test
    void shouldUseEveryDescriptorWhenTheRingIsFull() throws Exception {
        try (Session s = new Session(8, true, ProtocolFeature.IMPLEMENTED)) {
            long[] addrs = {s.bufOut, s.bufIn};
            int[] lens = {16, 16};
            for (int round = 0; round < 50; round++) {
                int posted = 0;
                while (s.q.add(addrs, lens, 1, 1) >= 0) {
                    posted++;
                }
                assertEquals(4, posted, "8 descriptors hold 4 two-descriptor chains");
                s.q.publishAndKick(s.kick);
                int[] got = {0};
                while (got[0] < posted) {
                    s.q.reap((h, l) -> got[0]++);
                }
            }
            assertEquals(200, s.fe.getVringBase(0));
            assertTrue(Arrays.stream(new int[] {1}).sum() > 0);
        }
    }
}
