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
 * program reads {@code <uds-path>_6000}; connect: connection setup both ways; unix: the same
 * copy through a plain Unix socket, the ceiling.
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
            description = "h2g, g2h, connect or unix. Default: ${DEFAULT-VALUE}.")
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
            if (!op.matches("h2g|g2h|connect|unix")) {
                throw new IllegalArgumentException("--op must be h2g, g2h, connect or unix");
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
                case "h2g" -> hostToGuest(blockSize);
                case "g2h" -> guestToHost(blockSize);
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

    /** The socket {@link #startWriter} writes into, opened on its thread. */
    @FunctionalInterface
    private interface Opener {
        SocketChannel open() throws IOException;
    }

    /** A daemon thread that writes {@code blockSize} chunks into what {@code opener} gives until interrupted. */
    private static Thread startWriter(String name, Opener opener, int blockSize) {
        Thread writer = new Thread(() -> {
            try (SocketChannel c = opener.open()) {
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

    /** A host program writes into CONNECT 5000; the guest takes the bytes and returns credit. */
    private String hostToGuest(int blockSize) throws Exception {
        try (VsockClient guest = VsockClient.connect(socket, 256, rxBuf)) {
            AtomicLong received = new AtomicLong();
            int[] fwd = new int[2]; // fwd_cnt, reported
            Thread writer = startWriter("bench-host-writer", () -> hostConnect(GUEST_PORT), blockSize);
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
        }
    }

    /** The guest writes to CID 2 port 6000 within its credit; a host program reads and counts. */
    private String guestToHost(int blockSize) throws Exception {
        Path listenAt = Path.of(udsPath + "_" + HOST_PORT);
        Files.deleteIfExists(listenAt);
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
                VsockClient guest = VsockClient.connect(socket, 256, rxBuf)) {
            server.bind(UnixDomainSocketAddress.of(listenAt));
            AtomicLong read = new AtomicLong();
            Thread reader = new Thread(() -> {
                try (SocketChannel c = server.accept()) {
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
            guest.send(VirtioVsock.OP_REQUEST, localPort, HOST_PORT, 0, BUF_ALLOC, 0, 0, 0);
            long connectBy = System.nanoTime() + 5_000_000_000L;
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
                        guest.send(VirtioVsock.OP_RW, localPort, HOST_PORT, 0, BUF_ALLOC, 0, data, n);
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
                guest.send(VirtioVsock.OP_RST, localPort, HOST_PORT, 0, BUF_ALLOC, 0, 0, 0);
                return throughput(bytes, took, blockSize);
            } finally {
                Native.free(data);
                Files.deleteIfExists(listenAt);
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
