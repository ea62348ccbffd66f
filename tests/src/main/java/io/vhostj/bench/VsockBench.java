package io.vhostj.bench;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;

import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vsock.VirtioVsock;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code vhostj bench vsock}: a vhost-user-vsock backend's hybrid vsock driven through vhostj's
 * frontend acting as the guest driver. h2g: a host program writes into {@code CONNECT 5000},
 * the "guest" takes it from its rx buffers; g2h: the "guest" writes to CID 2 port 6000, a host
 * program reads {@code <uds-path>_6000}; h2g-passfd / g2h-passfd: the same with Kata's passfd,
 * the host end a FIFO the backend reads or writes itself (a container's stdin / stdout);
 * connect: connection setup both ways; unix: the same copy through a plain Unix socket, the ceiling.
 */
@Command(name = "vsock", mixinStandardHelpOptions = true,
        description = "Drive a hybrid-vsock backend (vhostj vsock) as its guest and print MiB/s, or connection "
                + "setup latency (p50/p99); 'unix' measures a plain Unix-socket copy for comparison.")
public final class VsockBench implements Callable<Integer> {
    @Option(names = "--socket", paramLabel = "PATH", description = "vhost-user-vsock socket (not for unix).")
    Path socket;

    @Option(names = "--uds-path", paramLabel = "PATH", description = "The backend's hybrid-vsock socket (not for unix).")
    Path udsPath;

    @Option(names = "--op", defaultValue = "h2g", paramLabel = "OP",
            description = "h2g, g2h, h2g-passfd, g2h-passfd, connect or unix. Default: ${DEFAULT-VALUE}.")
    String op;

    @Option(names = "--bs", defaultValue = "64k", paramLabel = "SIZE",
            description = "Bytes per write, up to 64k. Default: ${DEFAULT-VALUE}.")
    String bs;

    @Option(names = "--rx-buf", defaultValue = "4096", paramLabel = "BYTES",
            description = "The guest's rx buffer size (Linux: 4096). Default: ${DEFAULT-VALUE}.")
    int rxBuf;

    @Option(names = "--runtime", defaultValue = "5", paramLabel = "SECONDS", description = "Default: ${DEFAULT-VALUE}.")
    double runtime;

    @Option(names = "--json", description = "Print one JSON object instead of text.")
    boolean json;

    private static final int GUEST_PORT = 5000;
    private static final int HOST_PORT = 6000;
    private static final int BUF_ALLOC = 256 * 1024;

    @Override
    public Integer call() {
        int blockSize;
        try {
            blockSize = (int) BlkBench.parseSize(bs, "--bs");
            if (blockSize < 1 || blockSize > VsockClient.MAX_TX_PAYLOAD) {
                throw new IllegalArgumentException("--bs: 1 to 64k");
            }
            if (!op.matches("h2g|g2h|h2g-passfd|g2h-passfd|connect|unix")) {
                throw new IllegalArgumentException("--op must be h2g, g2h, h2g-passfd, g2h-passfd, connect or unix");
            }
            if (!op.equals("unix") && (socket == null || udsPath == null)) {
                throw new IllegalArgumentException("--socket and --uds-path are needed for --op " + op);
            }
            if (socket != null && !Files.exists(socket)) {
                throw new IllegalArgumentException("no socket at " + socket);
            }
        } catch (IllegalArgumentException e) {
            System.err.println("vhostj bench vsock: " + e.getMessage());
            return 2;
        }
        try {
            String result = switch (op) {
                case "h2g" -> hostToGuest(blockSize, false);
                case "g2h" -> guestToHost(blockSize, false);
                case "h2g-passfd" -> hostToGuest(blockSize, true);
                case "g2h-passfd" -> guestToHost(blockSize, true);
                case "connect" -> connectLatency();
                default -> unixCeiling(blockSize);
            };
            System.out.println(result);
            return 0;
        } catch (Exception e) {
            System.err.println("vhostj bench vsock: " + e);
            return 1;
        }
    }

    private long deadline() {
        return System.nanoTime() + (long) (runtime * 1e9);
    }

    private String throughput(long bytes, long nanos, int blockSize) {
        double mibs = bytes / 1048576.0 / (nanos / 1e9);
        if (json) {
            return String.format(Locale.ROOT, "{\"op\":\"%s\",\"bs\":%d,\"bytes\":%d,\"mib_s\":%.1f}", op, blockSize, bytes, mibs);
        }
        return String.format(Locale.ROOT, "%s bs=%s: %.1f MiB/s (%d bytes in %.1f s)", op, bs, mibs, bytes, nanos / 1e9);
    }

    /** The channel {@link #startWriter} writes into, opened on its thread. */
    @FunctionalInterface
    private interface Opener {
        java.nio.channels.WritableByteChannel open() throws IOException;
    }

    /** A daemon thread that writes {@code blockSize} chunks into what {@code opener} gives until interrupted. */
    private static Thread startWriter(String name, Opener opener, int blockSize) {
        Thread writer = new Thread(() -> {
            try (java.nio.channels.WritableByteChannel c = opener.open()) {
                ByteBuffer chunk = ByteBuffer.allocateDirect(blockSize);
                while (!Thread.currentThread().isInterrupted()) {
                    chunk.clear();
                    c.write(chunk);
                }
            } catch (IOException e) {
                // closed at the end
            }
        }, name);
        writer.setDaemon(true);
        writer.start();
        return writer;
    }

    /**
     * A host program writes into CONNECT 5000 (passfd: into a FIFO whose read end it passed for
     * port 5000); the guest takes the bytes and returns credit.
     */
    private String hostToGuest(int blockSize, boolean passfd) throws Exception {
        Path fifo = passfd ? mkfifo() : null;
        try (VsockClient guest = VsockClient.connect(socket, 256, rxBuf)) {
            AtomicLong received = new AtomicLong();
            int[] fwd = new int[2]; // fwd_cnt, reported
            Thread writer;
            if (passfd) {
                int readEnd = Native.LIBC.open(fifo.toString(), O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
                if (readEnd < 0) {
                    throw new IOException("open " + fifo + ": errno " + Native.errno());
                }
                // the OK comes once the guest answers, in the loop below: a thread waits for it
                Thread passer = new Thread(() -> {
                    try (io.vhostj.vhostuser.sys.UnixSocket control = HybridVsockClient.passfd(udsPath, readEnd,
                            String.valueOf(GUEST_PORT))) {
                        Native.LIBC.close(readEnd);
                        HybridVsockClient.readLine(control, 10_000);
                    } catch (IOException e) {
                        System.err.println("vhostj bench vsock: passfd: " + e.getMessage());
                    }
                }, "bench-passfd");
                passer.setDaemon(true);
                passer.start();
                writer = startWriter("bench-host-writer", () -> java.nio.channels.FileChannel.open(fifo,
                        java.nio.file.StandardOpenOption.WRITE), blockSize);
            } else {
                writer = startWriter("bench-host-writer", () -> hostConnect(GUEST_PORT), blockSize);
            }
            long start = 0;
            long end = Long.MAX_VALUE;
            while (System.nanoTime() < end) {
                guest.pollRx((hdr, payload, len) -> {
                    int op = Native.getShort(hdr + VirtioVsock.OP) & 0xffff;
                    int src = Native.getInt(hdr + VirtioVsock.SRC_PORT);
                    if (op == VirtioVsock.OP_REQUEST) {
                        guest.send(VirtioVsock.OP_RESPONSE, GUEST_PORT, src, 0, BUF_ALLOC, 0, 0, 0);
                    } else if (op == VirtioVsock.OP_RW) {
                        received.addAndGet(len);
                        fwd[0] += len;
                        if (fwd[0] - fwd[1] >= BUF_ALLOC / 4) {
                            fwd[1] = fwd[0];
                            guest.send(VirtioVsock.OP_CREDIT_UPDATE, GUEST_PORT, src, 0, BUF_ALLOC, fwd[0], 0, 0);
                        }
                    }
                });
                if (start == 0 && received.get() > 0) {
                    start = System.nanoTime();
                    received.set(0);
                    end = deadline();
                }
            }
            long took = System.nanoTime() - start;
            writer.interrupt();
            return throughput(received.get(), took, blockSize);
        } finally {
            removeFifo(fifo);
        }
    }

    private static final int O_RDONLY = 0;
    private static final int O_WRONLY = 1;
    private static final int O_NONBLOCK = 0x800;
    private static final int O_CLOEXEC = 0x80000;

    private static Path mkfifo() throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("vhostj-bench-fifo");
        Path fifo = dir.resolve("fifo");
        if (new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start().waitFor() != 0) {
            throw new IOException("mkfifo " + fifo + " failed");
        }
        return fifo;
    }

    private static void removeFifo(Path fifo) throws IOException {
        if (fifo != null) {
            Files.deleteIfExists(fifo);
            Files.deleteIfExists(fifo.getParent());
        }
    }

    /**
     * The guest writes to CID 2 port 6000 within its credit; a host program reads and counts.
     * passfd: the host program passed a FIFO's write end for the guest's port 5000 and reads the
     * FIFO.
     */
    private String guestToHost(int blockSize, boolean passfd) throws Exception {
        Path listenAt = Path.of(udsPath + "_" + HOST_PORT);
        Files.deleteIfExists(listenAt);
        Path fifo = passfd ? mkfifo() : null;
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
                VsockClient guest = VsockClient.connect(socket, 256, rxBuf)) {
            server.bind(UnixDomainSocketAddress.of(listenAt));
            AtomicLong read = new AtomicLong();
            Thread reader = new Thread(() -> {
                try (java.nio.channels.ReadableByteChannel c = passfd
                        ? java.nio.channels.FileChannel.open(fifo, java.nio.file.StandardOpenOption.READ)
                        : server.accept()) {
                    ByteBuffer b = ByteBuffer.allocateDirect(256 * 1024);
                    while (c.read(b) >= 0) {
                        read.addAndGet(b.position());
                        b.clear();
                    }
                } catch (IOException e) {
                    // closed at the end
                }
            }, "bench-host-reader");
            reader.setDaemon(true);
            reader.start();
            int[] peer = new int[3]; // buf_alloc, fwd_cnt, connected
            VsockClient.PacketConsumer credit = (hdr, payload, len) -> {
                int op = Native.getShort(hdr + VirtioVsock.OP) & 0xffff;
                if (op == VirtioVsock.OP_RST) {
                    throw new io.vhostj.vhostuser.sys.NativeException("vsock", "the backend reset the connection");
                }
                peer[0] = Native.getInt(hdr + VirtioVsock.BUF_ALLOC);
                peer[1] = Native.getInt(hdr + VirtioVsock.FWD_CNT);
                if (op == VirtioVsock.OP_RESPONSE) {
                    peer[2] = 1;
                }
            };
            int localPort = 40000;
            int hostPort = HOST_PORT;
            io.vhostj.vhostuser.sys.UnixSocket control = null;
            long connectBy = System.nanoTime() + 5_000_000_000L;
            if (passfd) {
                int writeEnd = Native.LIBC.open(fifo.toString(), O_WRONLY | O_CLOEXEC, 0); // the reader has it open
                if (writeEnd < 0) {
                    throw new IOException("open " + fifo + ": errno " + Native.errno());
                }
                control = HybridVsockClient.passfd(udsPath, writeEnd, String.valueOf(GUEST_PORT));
                Native.LIBC.close(writeEnd);
                localPort = GUEST_PORT;
                int[] request = {0};
                while (request[0] == 0) { // the backend's REQUEST for the guest's port, answered at once
                    guest.pollRx((hdr, payload, len) -> {
                        if ((Native.getShort(hdr + VirtioVsock.OP) & 0xffff) == VirtioVsock.OP_REQUEST) {
                            request[0] = Native.getInt(hdr + VirtioVsock.SRC_PORT);
                            peer[0] = Native.getInt(hdr + VirtioVsock.BUF_ALLOC);
                            peer[1] = Native.getInt(hdr + VirtioVsock.FWD_CNT);
                        }
                    });
                    if (System.nanoTime() > connectBy) {
                        throw new IllegalStateException("no REQUEST from the backend after passfd");
                    }
                }
                hostPort = request[0];
                guest.send(VirtioVsock.OP_RESPONSE, localPort, hostPort, 0, BUF_ALLOC, 0, 0, 0);
                peer[2] = 1;
            } else {
                guest.send(VirtioVsock.OP_REQUEST, localPort, HOST_PORT, 0, BUF_ALLOC, 0, 0, 0);
            }
            while (peer[2] == 0) {
                guest.pollRx(credit);
                if (System.nanoTime() > connectBy) {
                    throw new IllegalStateException("no RESPONSE to the guest's REQUEST for port " + HOST_PORT);
                }
            }
            long data = Native.allocate(blockSize);
            try {
                int txCnt = 0;
                long start = System.nanoTime();
                long rampEnd = start + 500_000_000L;
                long startBytes = -1;
                long end = Long.MAX_VALUE;
                while (System.nanoTime() < end) {
                    guest.pollRx(credit);
                    int room = peer[0] - (txCnt - peer[1]);
                    if (room > 0) {
                        int n = Math.min(room, blockSize);
                        guest.send(VirtioVsock.OP_RW, localPort, hostPort, 0, BUF_ALLOC, 0, data, n);
                        txCnt += n;
                    }
                    if (startBytes < 0 && System.nanoTime() > rampEnd) {
                        startBytes = read.get();
                        start = System.nanoTime();
                        end = deadline();
                    }
                }
                long took = System.nanoTime() - start;
                long bytes = read.get() - startBytes;
                guest.send(VirtioVsock.OP_RST, localPort, hostPort, 0, BUF_ALLOC, 0, 0, 0);
                return throughput(bytes, took, blockSize);
            } finally {
                Native.free(data);
                Files.deleteIfExists(listenAt);
                if (control != null) {
                    control.close();
                }
                removeFifo(fifo);
            }
        }
    }

    /** Connection setup: the guest's REQUEST to a host listener, and a host CONNECT to the guest. */
    private String connectLatency() throws Exception {
        Path listenAt = Path.of(udsPath + "_" + HOST_PORT);
        Files.deleteIfExists(listenAt);
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
                VsockClient guest = VsockClient.connect(socket, 256, rxBuf)) {
            server.bind(UnixDomainSocketAddress.of(listenAt));
            Thread acceptor = new Thread(() -> {
                while (true) {
                    try {
                        server.accept().close();
                    } catch (IOException e) {
                        return;
                    }
                }
            }, "bench-acceptor");
            acceptor.setDaemon(true);
            acceptor.start();
            long[] g2h = new long[100_000];
            int n = 0;
            int[] answer = new int[1];
            long end = deadline() - (long) (runtime * 0.5e9);
            int port = 50000;
            while (System.nanoTime() < end && n < g2h.length) {
                answer[0] = 0;
                long t0 = System.nanoTime();
                guest.send(VirtioVsock.OP_REQUEST, port, HOST_PORT, 0, BUF_ALLOC, 0, 0, 0);
                while (answer[0] == 0) {
                    guest.pollRx((hdr, payload, len) -> {
                        int op = Native.getShort(hdr + VirtioVsock.OP) & 0xffff;
                        if (op == VirtioVsock.OP_RESPONSE || op == VirtioVsock.OP_RST) {
                            answer[0] = op;
                        }
                    });
                }
                g2h[n++] = System.nanoTime() - t0;
                guest.send(VirtioVsock.OP_RST, port, HOST_PORT, 0, BUF_ALLOC, 0, 0, 0);
                port++;
            }
            // host -> guest: CONNECT until OK, the guest answering every REQUEST at once
            long[] h2g = new long[100_000];
            int m = 0;
            end = deadline() - (long) (runtime * 0.5e9);
            Thread guestLoop = new Thread(() -> {
                try {
                    while (!Thread.currentThread().isInterrupted()) {
                        guest.pollRx((hdr, payload, len) -> {
                            int op = Native.getShort(hdr + VirtioVsock.OP) & 0xffff;
                            int src = Native.getInt(hdr + VirtioVsock.SRC_PORT);
                            if (op == VirtioVsock.OP_REQUEST) {
                                guest.send(VirtioVsock.OP_RESPONSE, GUEST_PORT, src, 0, BUF_ALLOC, 0, 0, 0);
                            } else if (op == VirtioVsock.OP_SHUTDOWN) {
                                guest.send(VirtioVsock.OP_RST, GUEST_PORT, src, 0, BUF_ALLOC, 0, 0, 0);
                            }
                        });
                    }
                } catch (Exception e) {
                    // the bench ends
                }
            }, "bench-guest");
            guestLoop.start();
            try {
                while (System.nanoTime() < end && m < h2g.length) {
                    long t0 = System.nanoTime();
                    try (SocketChannel c = hostConnect(GUEST_PORT)) {
                        h2g[m++] = System.nanoTime() - t0;
                    }
                }
            } finally {
                guestLoop.interrupt();
                guestLoop.join(5000);
                Files.deleteIfExists(listenAt);
            }
            long[] a = Arrays.copyOf(g2h, n);
            long[] b = Arrays.copyOf(h2g, m);
            Arrays.sort(a);
            Arrays.sort(b);
            if (json) {
                return String.format(Locale.ROOT, "{\"op\":\"connect\",\"g2h_p50_us\":%.1f,\"g2h_p99_us\":%.1f,"
                        + "\"h2g_p50_us\":%.1f,\"h2g_p99_us\":%.1f,\"g2h_n\":%d,\"h2g_n\":%d}",
                        pct(a, 50), pct(a, 99), pct(b, 50), pct(b, 99), n, m);
            }
            return String.format(Locale.ROOT, "connect: guest->host p50=%.1fus p99=%.1fus (%d); host->guest CONNECT..OK "
                    + "p50=%.1fus p99=%.1fus (%d)", pct(a, 50), pct(a, 99), n, pct(b, 50), pct(b, 99), m);
        }
    }

    private static double pct(long[] sorted, int p) {
        return sorted.length == 0 ? Double.NaN : sorted[Math.min(sorted.length - 1, sorted.length * p / 100)] / 1000.0;
    }

    /** The same copy through a plain Unix socket: one thread writes, this one reads. */
    private String unixCeiling(int blockSize) throws Exception {
        Path dir = Files.createTempDirectory("vhostj-bench-unix");
        Path at = dir.resolve("s");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(at));
            Thread writer = startWriter("bench-unix-writer", () -> SocketChannel.open(UnixDomainSocketAddress.of(at)),
                    blockSize);
            try (SocketChannel c = server.accept()) {
                ByteBuffer b = ByteBuffer.allocateDirect(256 * 1024);
                long start = System.nanoTime();
                long end = deadline();
                long bytes = 0;
                while (System.nanoTime() < end) {
                    bytes += c.read(b);
                    b.clear();
                }
                long took = System.nanoTime() - start;
                writer.interrupt();
                return throughput(bytes, took, blockSize);
            }
        } finally {
            Files.deleteIfExists(at);
            Files.deleteIfExists(dir);
        }
    }

    /** Connects to the backend's hybrid socket and completes {@code CONNECT port}. */
    private SocketChannel hostConnect(int port) throws IOException {
        SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(udsPath));
        c.write(ByteBuffer.wrap(("CONNECT " + port + "\n").getBytes(StandardCharsets.US_ASCII)));
        ByteBuffer one = ByteBuffer.allocate(1);
        StringBuilder line = new StringBuilder();
        while (true) {
            one.clear();
            if (c.read(one) < 0) {
                c.close();
                throw new IOException("CONNECT " + port + ": closed without OK");
            }
            char ch = (char) one.get(0);
            if (ch == '\n') {
                break;
            }
            line.append(ch);
        }
        if (!line.toString().startsWith("OK ")) {
            c.close();
            throw new IOException("CONNECT " + port + ": " + line);
        }
        return c;
    }
}
