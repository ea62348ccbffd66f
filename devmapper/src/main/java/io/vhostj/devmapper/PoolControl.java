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

    private final ThinPool pool;
    private final Path socket;
    private final ServerSocketChannel server;
    private final Thread thread;

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
            try (SocketChannel ch = server.accept()) {
                answer(ch);
            } catch (IOException e) {
                if (server.isOpen()) {
                    LOG.warn("pool {}: control socket: {}", pool.directory(), e.getMessage());
                }
            }
        }
    }

    private void answer(SocketChannel ch) throws IOException {
        ByteBuffer in = ByteBuffer.allocate(MAX_REQUEST);
        while (in.hasRemaining() && ch.read(in) >= 0) {
            // until the client's EOF
        }
        String request = new String(in.array(), 0, in.position(), StandardCharsets.UTF_8);
        List<String> args = request.isEmpty() ? List.of() : List.of(request.split("\0", -1));
        StringWriter text = new StringWriter();
        int rc;
        try (PrintWriter w = new PrintWriter(text)) {
            var cl = DevmapperMain.commandLine();
            cl.setOut(w);
            cl.setErr(w);
            rc = cl.execute(args.toArray(String[]::new));
            w.flush();
        }
        LOG.info("pool {}: '{}' from the control socket: exit {}", pool.directory(), String.join(" ", args), rc);
        ByteBuffer out = StandardCharsets.UTF_8.encode(rc + "\n" + text);
        while (out.hasRemaining()) {
            ch.write(out);
        }
    }

    /** Sends a command to the holder of the pool in {@code dir}; prints its output, returns its exit code. */
    static int forward(Path dir, List<String> args, PrintWriter out, PrintWriter err) throws IOException {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(dir.resolve(SOCKET)))) {
            ch.write(StandardCharsets.UTF_8.encode(String.join("\0", args)));
            ch.shutdownOutput();
            ByteBuffer buf = ByteBuffer.allocate(1 << 16);
            List<byte[]> parts = new ArrayList<>();
            int total = 0;
            while (ch.read(buf) >= 0) {
                if (!buf.hasRemaining()) {
                    parts.add(java.util.Arrays.copyOf(buf.array(), buf.position()));
                    total += buf.position();
                    buf.clear();
                }
            }
            parts.add(java.util.Arrays.copyOf(buf.array(), buf.position()));
            total += buf.position();
            ByteBuffer all = ByteBuffer.allocate(total);
            parts.forEach(all::put);
            String reply = new String(all.array(), StandardCharsets.UTF_8);
            int nl = reply.indexOf('\n');
            if (nl < 0) {
                throw new IOException("no answer");
            }
            int rc = Integer.parseInt(reply.substring(0, nl).strip());
            (rc == 0 ? out : err).print(reply.substring(nl + 1));
            return rc;
        }
    }

    @Override
    public void close() {
        SERVED.remove(key(pool.directory()));
        try {
            server.close();
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            LOG.debug("pool {}: closing the control socket: {}", pool.directory(), e.getMessage());
        }
    }
}
