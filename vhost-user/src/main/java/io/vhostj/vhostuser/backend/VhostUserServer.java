package io.vhostj.vhostuser.backend;

import java.nio.file.Files;
import java.nio.file.Path;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.protocol.VhostUserConnection;
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

    private VhostUserServer(VhostUserBackend backend, UnixSocket socket, boolean listening, Path socketPath) {
        this.backend = backend;
        this.socket = socket;
        this.listening = listening;
        this.socketPath = socketPath;
    }

    public static VhostUserServer listen(VhostUserBackend backend, Path path) throws NativeException {
        return new VhostUserServer(backend, UnixSocket.listen(path, 1), true, path);
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
        if (socketPath != null) {
            try {
                Files.deleteIfExists(socketPath);
            } catch (java.io.IOException e) {
                LOG.debug("cannot remove {}: {}", socketPath, e.getMessage());
            }
        }
    }
}
