package io.vhostj.tests;

import static io.vhostj.tests.VsockPackets.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
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
 * Kata's fd passthrough on the hybrid socket: a host program writes {@code passfd\n}, then
 * {@code <port>[ keep]} with a descriptor in SCM_RIGHTS, and is answered {@code OK <hostport>}
 * once the guest accepts; the descriptor itself is then the stream's host end. vhostj's frontend
 * plays the guest. Shown for a socket (both ways, {@code keep}), a write-only FIFO (a container's
 * stdout: the guest's bytes, then EOF) and a read-only FIFO (stdin: the host's bytes, then
 * SHUTDOWN), and for what is refused; CONNECT goes on working beside it.
 */
class VsockPassfdIT {
    private static final int GUEST_PORT = 5000;
    private static final int O_RDONLY = 0;
    private static final int O_WRONLY = 1;
    private static final int O_NONBLOCK = 0x800;
    private static final int O_CLOEXEC = 0x80000;
    private static final int GUEST_BUF_ALLOC = 256 * 1024;

    @TempDir
    Path dir;

    private Path log;
    private Path uds;
    private Process backend;
    private VsockClient guest;

    @BeforeEach
    void start() throws Exception {
        log = dir.resolve("vsock.log");
        uds = dir.resolve("v.vsock");
        Path sock = dir.resolve("v.sock");
        backend = startVsock(log, sock, uds);
        guest = VsockClient.connect(sock, 64, 4096);
    }

    @AfterEach
    void stop() throws Exception {
        if (guest != null) {
            guest.close();
        }
        stopVsock(backend, log);
    }

    @Test
    void shouldUseAPassedSocketBothWaysAndKeepTheControlConnectionForItsLife() throws Exception {
        Path peerPath = dir.resolve("peer.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(peerPath));
            UnixSocket passed = UnixSocket.connect(peerPath);
            try (SocketChannel peer = server.accept(); UnixSocket control = passfd(passed.fd(), GUEST_PORT + " keep")) {
                passed.close(); // the backend holds its own copy now
                int hostPort = accept(GUEST_PORT);
                assertEquals("OK " + hostPort + "\n", readLine(control), Files.readString(log));

                writeFully(peer, "hello-from-host".getBytes(StandardCharsets.US_ASCII));
                assertEquals("hello-from-host", new String(receiveData(hostPort, 15), StandardCharsets.US_ASCII));

                send(VirtioVsock.OP_RW, hostPort, 0, "hello-from-guest".getBytes(StandardCharsets.US_ASCII));
                assertEquals("hello-from-guest", new String(readExactly(peer, 16), StandardCharsets.US_ASCII));
                assertFalse(Poll.readable(control.fd(), 200), "with keep the control connection stays open");

                send(VirtioVsock.OP_SHUTDOWN, hostPort, VirtioVsock.SHUTDOWN_RCV | VirtioVsock.SHUTDOWN_SEND, new byte[0]);
                assertEquals(-1, peer.read(ByteBuffer.allocate(1)), "the guest closed: the passed socket is closed");
                assertEquals("", readLine(control), "and so is the control connection kept with it");
                assertTrue(receive(guest, 1).stream().anyMatch(p -> p.op() == VirtioVsock.OP_RST));
            }
        }
    }

    @Test
    void shouldWriteTheGuestsBytesToAWriteOnlyFifoAndCloseItAtTheEnd() throws Exception {
        Path fifo = mkfifo("stdout");
        CompletableFuture<byte[]> read = CompletableFuture.supplyAsync(() -> {
            try (InputStream in = new FileInputStream(fifo.toFile())) {
                ByteArrayOutputStream all = new ByteArrayOutputStream();
                byte[] b = new byte[65536];
                for (int n; (n = in.read(b)) >= 0; ) { // readAllBytes seeks, which a FIFO refuses
                    all.write(b, 0, n);
                }
                return all.toByteArray();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        int fd = Native.LIBC.open(fifo.toString(), O_WRONLY | O_CLOEXEC, 0); // waits for the reader above
        assertTrue(fd >= 0);
        int hostPort;
        try (UnixSocket control = passfd(fd, String.valueOf(GUEST_PORT + 1))) {
            Native.LIBC.close(fd);
            hostPort = accept(GUEST_PORT + 1);
            assertEquals("OK " + hostPort + "\n", readLine(control));
            assertEquals("", readLine(control), "without keep the control connection closes after the OK");
        }
        byte[] data = new byte[150_000];
        new Random(5).nextBytes(data);
        for (int at = 0; at < data.length; at += 60_000) {
            send(VirtioVsock.OP_RW, hostPort, 0, java.util.Arrays.copyOfRange(data, at, Math.min(data.length, at + 60_000)));
        }
        send(VirtioVsock.OP_SHUTDOWN, hostPort, VirtioVsock.SHUTDOWN_RCV | VirtioVsock.SHUTDOWN_SEND, new byte[0]);
        assertArrayEquals(data, read.get(10, TimeUnit.SECONDS), "every byte, then EOF");
    }

    @Test
    void shouldSendAReadOnlyFifosBytesAndThenShutdown() throws Exception {
        Path fifo = mkfifo("stdin");
        int fd = Native.LIBC.open(fifo.toString(), O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
        assertTrue(fd >= 0);
        try (OutputStream writer = new FileOutputStream(fifo.toFile())) {
            int hostPort;
            try (UnixSocket control = passfd(fd, String.valueOf(GUEST_PORT + 2))) {
                Native.LIBC.close(fd);
                hostPort = accept(GUEST_PORT + 2);
                assertEquals("OK " + hostPort + "\n", readLine(control));
            }
            List<Packet> first = receive(guest, 1);
            assertEquals(VirtioVsock.OP_SHUTDOWN, first.get(0).op(), "a read-only end takes nothing from the guest");
            assertEquals(VirtioVsock.SHUTDOWN_RCV, first.get(0).flags());
            writer.write("stdin-bytes".getBytes(StandardCharsets.US_ASCII));
            writer.flush();
            assertEquals("stdin-bytes", new String(receiveData(hostPort, 11), StandardCharsets.US_ASCII));
        } // the writer closes: EOF
        List<Packet> end = receive(guest, 1);
        assertEquals(VirtioVsock.OP_SHUTDOWN, end.get(0).op(), Files.readString(log));
        assertEquals(VirtioVsock.SHUTDOWN_RCV | VirtioVsock.SHUTDOWN_SEND, end.get(0).flags());
    }

    @Test
    void shouldRefuseWhatIsNotAPassfdOrConnectAndGoOnServingConnect() throws Exception {
        Path regular = Files.writeString(dir.resolve("file"), "x");
        int fd = Native.LIBC.open(regular.toString(), O_RDONLY | O_CLOEXEC, 0);
        try (UnixSocket control = passfd(fd, String.valueOf(GUEST_PORT))) {
            assertEquals("", readLine(control), "a regular file cannot be a stream: closed without OK");
        }
        try (UnixSocket control = passfd(fd, "five thousand")) {
            assertEquals("", readLine(control), "not a port: closed without OK");
        }
        Native.LIBC.close(fd);
        try (UnixSocket control = UnixSocket.connect(uds)) {
            HybridVsockClient.sendText(control, "HELLO 5000\n");
            assertEquals("", readLine(control), "an unknown command: closed");
        }
        String logText = Files.readString(log);
        assertTrue(logText.contains("regular file"), logText);
        assertTrue(logText.contains("is not <port>[ keep]"), logText);
        assertTrue(logText.contains("is neither CONNECT <port> nor passfd"), logText);
        assertTrue(receive(guest, 1, 300_000_000L).isEmpty(), "the guest heard of none of them");

        // CONNECT with data right behind the line: the data reaches the guest once it accepts
        try (UnixSocket client = UnixSocket.connect(uds)) {
            HybridVsockClient.sendText(client, "CONNECT 5003\nearly-bytes");
            int hostPort = accept(5003);
            assertEquals("OK " + hostPort + "\n", readLine(client));
            assertEquals("early-bytes", new String(receiveData(hostPort, 11), StandardCharsets.US_ASCII));
        }
    }

    // ---- the host program's side ---------------------------------------------------------------

    @Test
    void shouldNotSpinOnAFifoWhoseWriterLeftBeforeTheGuestAnswersOrAfterTheEnd() throws Exception {
        Path fifo = mkfifo("gone");
        int fd = Native.LIBC.open(fifo.toString(), O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
        try (OutputStream w = new FileOutputStream(fifo.toFile())) {
            w.write("x".getBytes(StandardCharsets.US_ASCII));
        } // the writer is gone: the FIFO hangs up, and stays so
        try (UnixSocket control = passfd(fd, String.valueOf(GUEST_PORT))) {
            Native.LIBC.close(fd);
            List<Packet> req = receive(guest, 1);
            assertEquals(VirtioVsock.OP_REQUEST, req.get(0).op());
            double waiting = BackendProcess.cpuShare(backend, 2000); // the guest has not answered
            assertTrue(waiting < 0.3, "the backend spins while the guest has not answered: " + waiting + " CPU");
            guest.send(VirtioVsock.OP_RESPONSE, GUEST_PORT, req.get(0).srcPort(), 0, GUEST_BUF_ALLOC, 0, 0, 0);
            guestPorts.put(req.get(0).srcPort(), GUEST_PORT);
            assertEquals("x", new String(receiveData(req.get(0).srcPort(), 1), StandardCharsets.US_ASCII));
            double ended = BackendProcess.cpuShare(backend, 2000); // SHUTDOWN sent, the guest never closes
            assertTrue(ended < 0.3, "the backend spins after the host end's EOF: " + ended + " CPU");
        }
    }

    @Test
    void shouldRestWhenOutOfDescriptorsAndServeAgainAfter() throws Exception {
        ProcessHandle jvm = java.util.stream.Stream.concat(java.util.stream.Stream.of(backend.toHandle()),
                backend.toHandle().descendants()).filter(h -> h.info().command().orElse("").endsWith("java"))
                .findFirst().orElseThrow();
        int open = new java.io.File("/proc/" + jvm.pid() + "/fd").list().length;
        assertEquals(0, new ProcessBuilder("prlimit", "--pid", String.valueOf(jvm.pid()),
                "--nofile=" + (open + 8) + ":" + (open + 8)).inheritIO().start().waitFor());
        List<UnixSocket> idle = new java.util.ArrayList<>();
        try {
            for (int i = 0; i < 16; i++) {
                idle.add(UnixSocket.connect(uds)); // never a command: each holds a descriptor
            }
            double cpu = BackendProcess.cpuShare(backend, 2000);
            assertTrue(cpu < 0.3, "the listener spins while accept fails: " + cpu + " CPU");
            long warnings = Files.readString(log).lines().filter(l -> l.contains("trying again every")).count();
            assertEquals(1, warnings, "one warning for the episode\n" + Files.readString(log));
        } finally {
            idle.forEach(UnixSocket::close);
        }
        // the waiting connections are served once descriptors are free again
        try (UnixSocket client = UnixSocket.connect(uds)) {
            HybridVsockClient.sendText(client, "CONNECT 5004\n");
            int hostPort = accept(5004);
            assertEquals("OK " + hostPort + "\n", readLine(client));
        }
    }

    private UnixSocket passfd(int fd, String args) throws Exception {
        return HybridVsockClient.passfd(uds, fd, args);
    }

    /** The answer line; fails after 10 s of silence. */
    private static String readLine(UnixSocket s) throws Exception {
        String line = HybridVsockClient.readLine(s, 10_000);
        assertNotNull(line, "no answer within 10 s");
        return line;
    }

    // ---- the guest's side -----------------------------------------------------------------------

    /** The guest takes the REQUEST for {@code port} and accepts it; returns the host port it came from. */
    private int accept(int port) throws Exception {
        List<Packet> got = receive(guest, 1);
        assertFalse(got.isEmpty(), "no REQUEST reached the guest\n" + Files.readString(log));
        Packet req = got.get(0);
        assertEquals(VirtioVsock.OP_REQUEST, req.op());
        assertEquals(port, req.dstPort());
        guest.send(VirtioVsock.OP_RESPONSE, port, req.srcPort(), 0, GUEST_BUF_ALLOC, 0, 0, 0);
        guestPorts.put(req.srcPort(), port);
        return req.srcPort();
    }

    private void send(int op, int hostPort, int flags, byte[] payload) throws Exception {
        long buf = Native.allocate(Math.max(1, payload.length));
        Native.copyFromArray(payload, 0, buf, payload.length);
        int port = guestPortOf(hostPort);
        guest.send(op, port, hostPort, flags, GUEST_BUF_ALLOC, 0, buf, payload.length);
        Native.free(buf);
    }

    private final java.util.Map<Integer, Integer> guestPorts = new java.util.HashMap<>();

    private int guestPortOf(int hostPort) {
        return guestPorts.get(hostPort);
    }

    /** {@code n} payload bytes the guest receives on the stream from {@code hostPort}. */
    private byte[] receiveData(int hostPort, int n) throws Exception {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        long deadline = System.nanoTime() + TIMEOUT;
        while (all.size() < n && System.nanoTime() < deadline) {
            for (Packet p : receive(guest, 1)) {
                if (p.op() == VirtioVsock.OP_RW && p.srcPort() == hostPort) {
                    all.write(p.payload());
                }
            }
        }
        return all.toByteArray();
    }

    private Path mkfifo(String name) throws Exception {
        Path p = dir.resolve(name);
        Process mk = new ProcessBuilder("mkfifo", p.toString()).inheritIO().start();
        assertEquals(0, mk.waitFor());
        return p;
    }

    private static void writeFully(SocketChannel ch, byte[] data) throws Exception {
        ByteBuffer b = ByteBuffer.wrap(data);
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static byte[] readExactly(SocketChannel ch, int n) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                break;
            }
        }
        return java.util.Arrays.copyOf(b.array(), b.position());
    }
}
