package io.vhostj.devmapper;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control socket of a pool a process holds ({@code POOL_DIR/control.sock}, mode 0600):
 * {@code vhostj devmapper} commands for that pool, run by another process while this one serves
 * a device of it, are sent here and run against the open pool (create_thin, create_snap of a
 * device not being served, status, ...). A request is the command's arguments separated by NUL,
 * ended by the client's EOF; the answer is the exit code on a line, then the command's output.
 */
public final class PoolControl implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PoolControl.class);
    static final String SOCKET = "control.sock";
    private static final int MAX_REQUEST = 64 << 10;
    /** Pools this process holds, by real directory, for commands that arrive on their sockets. */
    private static final Map<Path, ThinPool> SERVED = new ConcurrentHashMap<>();
    /** The exporters of pools this process holds, by real directory. */
    private static final Map<Path, Exporter> EXPORTERS = new ConcurrentHashMap<>();

    private final ThinPool pool;
    private final Path socket;
    private final ServerSocketChannel server;
    private final Thread thread;
    /** Connections being answered: closed (if still reading) and waited for by {@link #close}. */
    private final Map<SocketChannel, Thread> active = new ConcurrentHashMap<>();
    /** Set on a thread answering a control request: its commands may touch only the served pool. */
    private static final ThreadLocal<Boolean> IN_CONTROL = ThreadLocal.withInitial(() -> false);
    private static final String OWN_USER = System.getProperty("user.name");
    /** Connections whose request was read and whose command runs: {@link #close} waits for them. */
    private final java.util.Set<SocketChannel> running = ConcurrentHashMap.newKeySet();

    private PoolControl(ThinPool pool, Path socket, ServerSocketChannel server) {
        this.pool = pool;
        this.socket = socket;
        this.server = server;
        this.thread = new Thread(this::serve, "vhostj-pool-control");
        this.thread.setDaemon(true);
    }

    /** Listens on the pool's control socket until closed. */
    public static PoolControl serve(ThinPool pool) throws IOException {
        Path socket = pool.directory().resolve(SOCKET);
        Files.deleteIfExists(socket); // we hold the pool's lock: any socket here is a dead holder's
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            server.bind(UnixDomainSocketAddress.of(socket));
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
        } catch (IOException e) {
            server.close();
            throw e;
        }
        PoolControl c = new PoolControl(pool, socket, server);
        SERVED.put(key(pool.directory()), pool);
        c.thread.start();
        LOG.info("pool {}: devmapper commands accepted on {}", pool.directory(), socket);
        return c;
    }

    /** The pool in {@code dir} if this process serves it, else null. */
    static ThinPool served(Path dir) {
        return SERVED.isEmpty() ? null : SERVED.get(key(dir));
    }

    /** Lets {@code vhostj devmapper export/unexport} start and stop serving this pool's devices here. */
    public void exporter(Exporter exporter) {
        EXPORTERS.put(key(pool.directory()), exporter);
    }

    /** The exporter of the pool in {@code dir} if this process holds it and serves devices, else null. */
    static Exporter exporterOf(Path dir) {
        return EXPORTERS.isEmpty() ? null : EXPORTERS.get(key(dir));
    }

    /** Whether this thread answers a control request. */
    static boolean inControlThread() {
        return IN_CONTROL.get();
    }

    /** Whether a holder of the pool in {@code dir} listens for commands. */
    static boolean listening(Path dir) {
        return Files.exists(dir.resolve(SOCKET));
    }

    private static Path key(Path dir) {
        try {
            return dir.toRealPath();
        } catch (IOException e) {
            return dir.toAbsolutePath().normalize();
        }
    }

    private void serve() {
        while (server.isOpen()) {
            SocketChannel ch;
            try {
                ch = server.accept();
            } catch (IOException e) {
                if (server.isOpen()) {
                    LOG.warn("pool {}: control socket: {}", pool.directory(), e.getMessage());
                }
                continue;
            }
            // a thread per request: a client that never finishes its request holds up no other
            Thread t = new Thread(() -> {
                try (ch) {
                    answer(ch);
                } catch (IOException e) {
                    LOG.debug("pool {}: control request: {}", pool.directory(), e.getMessage());
                } finally {
                    active.remove(ch);
                    running.remove(ch);
                }
            }, "vhostj-pool-control-request");
            t.setDaemon(true);
            active.put(ch, t);
            t.start();
        }
    }

    private void answer(SocketChannel ch) throws IOException {
        String peer = ch.getOption(jdk.net.ExtendedSocketOptions.SO_PEERCRED).user().getName();
        if (!peer.equals("root") && !peer.equals(OWN_USER)) {
            reply(ch, 1, "", "vhostj devmapper: the pool's control socket takes commands from its owner or root only\n");
            return;
        }
        ByteBuffer in = ByteBuffer.allocate(MAX_REQUEST);
        boolean eof = false;
        while (in.hasRemaining()) {
            if (ch.read(in) < 0) {
                eof = true;
                break;
            }
        }
        if (!eof && ch.read(ByteBuffer.allocate(1)) >= 0) {
            reply(ch, 2, "", "vhostj devmapper: a control request longer than " + MAX_REQUEST + " bytes\n");
            return;
        }
        running.add(ch);
        String request = new String(in.array(), 0, in.position(), StandardCharsets.UTF_8);
        List<String> args = request.isEmpty() ? List.of() : List.of(request.split("\0", -1));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int rc;
        IN_CONTROL.set(true);
        try (PrintWriter o = new PrintWriter(out); PrintWriter e = new PrintWriter(err)) {
            var cl = DevmapperMain.commandLine();
            cl.setOut(o);
            cl.setErr(e);
            rc = cl.execute(args.toArray(String[]::new));
            o.flush();
            e.flush();
        } finally {
            IN_CONTROL.set(false);
        }
        LOG.info("pool {}: '{}' from the control socket: exit {}", pool.directory(), String.join(" ", args), rc);
        reply(ch, rc, out.toString(), err.toString());
    }

    /** The exit code, the length of what goes to stdout, then stdout, then stderr. */
    private static void reply(SocketChannel ch, int rc, String out, String err) throws IOException {
        byte[] o = out.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = StandardCharsets.UTF_8.encode(rc + "\n" + o.length + "\n" + out + err);
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /** Sends a command to the holder of the pool in {@code dir}; prints its output, returns its exit code. */
    static int forward(Path dir, List<String> args, PrintWriter out, PrintWriter err) throws IOException {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(dir.resolve(SOCKET)))) {
            ch.write(StandardCharsets.UTF_8.encode(String.join("\0", args)));
            ch.shutdownOutput();
            java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
            ByteBuffer buf = ByteBuffer.allocate(1 << 16);
            while (ch.read(buf) >= 0) {
                all.write(buf.array(), 0, buf.position());
                buf.clear();
            }
            byte[] bytes = all.toByteArray();
            int nl1 = indexOf(bytes, 0);
            int nl2 = nl1 < 0 ? -1 : indexOf(bytes, nl1 + 1);
            if (nl2 < 0) {
                throw new IOException("no answer");
            }
            int rc = Integer.parseInt(new String(bytes, 0, nl1, StandardCharsets.US_ASCII).strip());
            int outLen = Integer.parseInt(new String(bytes, nl1 + 1, nl2 - nl1 - 1, StandardCharsets.US_ASCII).strip());
            if (outLen < 0 || nl2 + 1 + outLen > bytes.length) {
                throw new IOException("a garbled answer");
            }
            out.print(new String(bytes, nl2 + 1, outLen, StandardCharsets.UTF_8));
            err.print(new String(bytes, nl2 + 1 + outLen, bytes.length - nl2 - 1 - outLen, StandardCharsets.UTF_8));
            return rc;
        } catch (NumberFormatException e) {
            throw new IOException("a garbled answer");
        }
    }

    private static int indexOf(byte[] b, int from) {
        for (int i = from; i < b.length; i++) {
            if (b[i] == '\n') {
                return i;
            }
        }
        return -1;
    }

    /**
     * Stops taking commands: no new connection, a client still sending its request is cut off,
     * and a command already running finishes (the pool is closed after this returns).
     */
    @Override
    public void close() {
        try {
            server.close();
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            LOG.debug("pool {}: closing the control socket: {}", pool.directory(), e.getMessage());
        }
        try {
            thread.join(5000);
            for (Map.Entry<SocketChannel, Thread> e : active.entrySet()) {
                if (!running.contains(e.getKey())) {
                    try {
                        e.getKey().close(); // still sending its request: cut off
                    } catch (IOException x) {
                        LOG.debug("pool {}: {}", pool.directory(), x.getMessage());
                    }
                }
                e.getValue().join(60_000);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        SERVED.remove(key(pool.directory()));
        EXPORTERS.remove(key(pool.directory()));
    }
}
