package io.vhostj.vhostuser.backend;

import java.nio.file.Path;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.protocol.VhostUserConnection;
import io.vhostj.vhostuser.sys.FsIo;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.UnixSocket;

/**
 * Serves a device on a vhost-user socket: a path we listen on, or an inherited descriptor
 * (vhost-user.json's {@code --fd}) that is either listening or already connected. One frontend
 * at a time; after a disconnect the next connection starts from clean state.
 */
public final class VhostUserServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(VhostUserServer.class);

    private final VhostUserBackend backend;
    private final UnixSocket socket;
    private final boolean listening;
    private final Path socketPath;
    private volatile boolean closed;
    private volatile VhostUserConnection current;
    private int socketDirFd = -1;

    private VhostUserServer(VhostUserBackend backend, UnixSocket socket, boolean listening, Path socketPath) {
        this.backend = backend;
        this.socket = socket;
        this.listening = listening;
        this.socketPath = socketPath;
    }

    public static VhostUserServer listen(VhostUserBackend backend, Path path) throws NativeException {
        VhostUserServer server = new VhostUserServer(backend, UnixSocket.listen(path, 1), true, path);
        // held so the socket can be removed at the end even from inside a sandbox, where the path is gone
        Path parent = path.toAbsolutePath().getParent();
        server.socketDirFd = Native.LIBC.open(parent.toString(), FsIo.O_PATH | FsIo.O_DIRECTORY | FsIo.O_CLOEXEC, 0);
        return server;
    }

    public static VhostUserServer adopt(VhostUserBackend backend, int fd) throws NativeException {
        UnixSocket s = UnixSocket.adopt(fd);
        return new VhostUserServer(backend, s, s.isListening(), null);
    }

    public VhostUserBackend backend() {
        return backend;
    }

    /**
     * Serves connections until {@link #close()}; on a connected (not listening) inherited fd,
     * serves that one connection and returns.
     */
    public void run() {
        if (!listening) {
            LOG.info("{}: serving the inherited connection on fd {}", backend.device().name(), socket.fd());
            serveOne(new VhostUserConnection(socket));
            return;
        }
        LOG.info("{}: waiting for a frontend on {}", backend.device().name(),
                socketPath != null ? socketPath : "fd " + socket.fd());
        while (!closed) {
            UnixSocket client;
            try {
                client = socket.accept();
            } catch (NativeException e) {
                if (!closed) {
                    LOG.error("accept failed, no more connections: {}", e.getMessage());
                }
                return;
            }
            LOG.info("{}: frontend connected", backend.device().name());
            try (VhostUserConnection c = new VhostUserConnection(client)) {
                serveOne(c);
            }
        }
    }

    private void serveOne(VhostUserConnection c) {
        current = c;
        try {
            backend.serve(c);
        } finally {
            current = null;
        }
    }

    /** Stops serving: wakes the accept/read, which then resets the device. */
    @Override
    public void close() {
        closed = true;
        VhostUserConnection c = current;
        if (c != null) {
            c.shutdown();
        }
        socket.shutdown();
    }

    /** Releases the socket (after {@link #run()} has returned). */
    public void release() {
        socket.close();
        if (socketPath != null && socketDirFd >= 0) {
            byte[] name = socketPath.getFileName().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            long buf = Native.allocate(name.length + 1);
            try {
                Native.copyFromArray(name, 0, buf, name.length);
                Native.putByte(buf + name.length, (byte) 0);
                if (Native.LIBC.unlinkat(socketDirFd, buf, 0) < 0) {
                    LOG.debug("cannot remove {}: errno {}", socketPath, Native.errno());
                }
            } finally {
                Native.free(buf);
                Native.LIBC.close(socketDirFd);
                socketDirFd = -1;
            }
        }
    }
}
