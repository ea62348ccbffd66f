package io.vhostj.vsock;

import static io.vhostj.vsock.EpollBits.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.unix.FileDescriptor;
import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.UnixSocket;

/**
 * The hybrid vsock socket ({@code --uds-path}): accepts host programs and reads their first
 * line, {@code CONNECT <port>} or Kata's {@code passfd} (then {@code <port>[ keep]} carrying a
 * descriptor in SCM_RIGHTS). It reads with recvmsg itself, not through netty: a passed
 * descriptor rides on the bytes after {@code passfd\n}, and a plain read would make the kernel
 * drop it. After the line, a CONNECT socket goes to netty as a channel; a passfd's descriptor
 * becomes the stream's host end ({@link FdEnd}). Everything here runs on one event loop.
 */
final class HybridListener implements EpollIoHandle {
    private static final Logger LOG = LoggerFactory.getLogger(HybridListener.class);
    /** Longest first line (and passfd argument) a host program may send. */
    static final int MAX_COMMAND = 64;
    /** How long a host program has for its first line. */
    private static final long HANDSHAKE_SECONDS = 10;
    /** Host programs at most in their first line at once; more are closed at once. */
    private static final int MAX_HANDSHAKES = 1024;
    private static final long REST_MS = 100;

    /** What the mux does once a host program has said what it wants. */
    interface Requests {
        /** {@code CONNECT port}: {@code socket} becomes the stream; {@code rest} came after the line. */
        void connect(UnixSocket socket, int port, ByteBuf rest);

        /** {@code passfd}: {@code passed} becomes the stream's host end; {@code control} gets the OK. */
        void passfd(UnixSocket control, int passed, int port, boolean keep);
    }

    private final Path path;
    private final IoEventLoop loop;
    private final Requests requests;
    private final UnixSocket socket;
    private final FileDescriptor fd;
    private IoRegistration registration;
    /** Accepting failed (out of descriptors): waiting before trying again. */
    private boolean resting;
    /** Host programs accepted that have not finished their first line. */
    private int handshakes;

    private HybridListener(Path path, IoEventLoop loop, Requests requests, UnixSocket socket) {
        this.path = path;
        this.loop = loop;
        this.requests = requests;
        this.socket = socket;
        this.fd = new FileDescriptor(socket.fd());
    }

    /** Listens on {@code path} and serves it on {@code loop}. */
    static HybridListener listen(Path path, IoEventLoop loop, Requests requests) throws NativeException,
            InterruptedException {
        UnixSocket socket = UnixSocket.listen(path, 1024);
        try {
            Fd.setNonBlocking(socket.fd());
            HybridListener l = new HybridListener(path, loop, requests, socket);
            l.registration = loop.register(l).sync().getNow();
            l.registration.submit(EpollIoOps.valueOf(EPOLLIN | EPOLLERR));
            return l;
        } catch (Exception e) {
            socket.close();
            if (e instanceof InterruptedException ie) {
                throw ie;
            }
            throw e instanceof NativeException ne ? ne : new NativeException("listen(" + path + ")", e.getMessage());
        }
    }

    @Override
    public FileDescriptor fd() {
        return fd;
    }

    @Override
    public void handle(IoRegistration registration, IoEvent event) {
        while (true) {
            UnixSocket client;
            try {
                client = socket.acceptNonBlocking();
            } catch (NativeException e) {
                // EMFILE and the like: the connection waits in the backlog; the listener rests
                // (level-triggered, it would fire at once again) and tries later
                if (!resting) {
                    LOG.warn("vsock: accepting on {}: {}; trying again every {} ms", path, e.getMessage(), REST_MS);
                }
                rest();
                return;
            }
            if (client == null) {
                resting = false;
                return;
            }
            if (handshakes >= MAX_HANDSHAKES) {
                LOG.warn("vsock: {} host programs connected to {} and sent no command yet: one more closed",
                        handshakes, path);
                client.close();
                continue;
            }
            Handshake h = new Handshake(client);
            handshakes++;
            loop.schedule(() -> h.timeout(), HANDSHAKE_SECONDS, TimeUnit.SECONDS);
            loop.register(h).addListener(f -> {
                if (!f.isSuccess()) {
                    LOG.warn("vsock: host client on {}: {}", path, f.cause().getMessage());
                    h.finish();
                    client.close();
                    return;
                }
                h.registration = (IoRegistration) f.getNow();
                try {
                    h.registration.submit(EpollIoOps.valueOf(EPOLLIN | EPOLLERR | EPOLLET));
                } catch (Exception e) {
                    h.finish();
                    client.close();
                    return;
                }
                h.read(); // what came before the registration raises no edge
            });
        }
    }

    /** Stops watching the listener for {@link #REST_MS}, then watches it again. */
    private void rest() {
        resting = true;
        try {
            registration.submit(EpollIoOps.valueOf(EPOLLERR));
        } catch (Exception e) {
            LOG.debug("vsock: {}: {}", path, e.getMessage());
        }
        loop.schedule(() -> {
            try {
                if (registration.isValid()) {
                    registration.submit(EpollIoOps.valueOf(EPOLLIN | EPOLLERR));
                }
            } catch (Exception e) {
                LOG.debug("vsock: {}: {}", path, e.getMessage());
            }
        }, REST_MS, TimeUnit.MILLISECONDS);
    }

    /** Stops listening; handshakes in progress end with the loop. */
    void stop() {
        if (loop.isShuttingDown()) {
            return; // the loop closes every registration itself
        }
        loop.submit(() -> {
            try {
                registration.cancel();
            } catch (Exception e) {
                LOG.debug("vsock: {}: {}", path, e.getMessage());
            }
            close();
        }).syncUninterruptibly();
    }

    /** On the loop: its registration is gone. */
    @Override
    public void close() {
        socket.release();
        try {
            fd.close();
        } catch (IOException e) {
            LOG.debug("vsock: closing {}: {}", path, e.getMessage());
        }
    }

    /** One host program's first line. */
    private final class Handshake implements EpollIoHandle {
        private static final int BUF = 256;
        private final UnixSocket client;
        private final FileDescriptor clientFd;
        private final StringBuilder line = new StringBuilder();
        private final int[] fds = new int[UnixSocket.MAX_FDS];
        IoRegistration registration;
        /** After {@code passfd\n}: collecting the argument that comes with the descriptor. */
        private boolean passfd;
        private boolean done;

        Handshake(UnixSocket client) {
            this.client = client;
            this.clientFd = new FileDescriptor(client.fd());
        }

        @Override
        public FileDescriptor fd() {
            return clientFd;
        }

        @Override
        public void handle(IoRegistration reg, IoEvent event) {
            read();
        }

        void read() {
            long buf = Native.allocate(BUF);
            try {
                while (!done) {
                    int n;
                    try {
                        n = client.receive(buf, BUF, fds);
                    } catch (NativeException e) {
                        if (e.errno() != Errno.EAGAIN) {
                            refuse(e.getMessage());
                        }
                        return;
                    }
                    int got = client.receivedFds();
                    if (n == 0 && got == 0) {
                        refuse("closed before its command");
                        return;
                    }
                    byte[] bytes = new byte[n];
                    Native.copyToArray(buf, bytes, 0, n);
                    take(bytes, got);
                }
            } finally {
                Native.free(buf);
            }
        }

        /** Bytes and descriptors of one recvmsg. */
        private void take(byte[] bytes, int fdCount) {
            int i = 0;
            if (!passfd) {
                while (i < bytes.length && bytes[i] != '\n') {
                    line.append((char) (bytes[i++] & 0xff));
                }
                if (line.length() > MAX_COMMAND) {
                    closeFds(fdCount);
                    refuse("a command line longer than " + MAX_COMMAND + " bytes");
                    return;
                }
                if (i == bytes.length) { // no newline yet
                    if (fdCount > 0) {
                        closeFds(fdCount);
                        refuse("a descriptor before any command");
                    }
                    return;
                }
                i++; // the newline
                String command = line.toString().strip();
                line.setLength(0);
                if (!command.equals("passfd")) {
                    closeFds(fdCount);
                    connect(command, bytes, i);
                    return;
                }
                passfd = true;
            }
            while (i < bytes.length) {
                line.append((char) (bytes[i++] & 0xff));
            }
            if (line.length() > MAX_COMMAND) {
                closeFds(fdCount);
                refuse("a passfd argument longer than " + MAX_COMMAND + " bytes");
                return;
            }
            if (fdCount == 0) {
                return; // the descriptor comes with the argument's last bytes
            }
            if (fdCount > 1) {
                closeFds(fdCount);
                refuse("passfd with " + fdCount + " descriptors, not one");
                return;
            }
            passfd(line.toString().strip(), fds[0]);
        }

        private void connect(String command, byte[] bytes, int restAt) {
            String[] words = command.split(" ");
            int port;
            try {
                if (words.length != 2 || !words[0].equals("CONNECT")) {
                    throw new NumberFormatException();
                }
                port = Integer.parseUnsignedInt(words[1]);
            } catch (NumberFormatException e) {
                refuse("'" + printable(command) + "' is neither CONNECT <port> nor passfd");
                return;
            }
            finish();
            ByteBuf rest = restAt < bytes.length ? Unpooled.copiedBuffer(bytes, restAt, bytes.length - restAt) : null;
            requests.connect(client, port, rest);
        }

        private void passfd(String args, int passed) {
            String[] words = args.split(" ");
            int port;
            try {
                if (words.length > 2 || (words.length == 2 && !words[1].equals("keep"))) {
                    throw new NumberFormatException();
                }
                port = Integer.parseUnsignedInt(words[0]);
                String why = FdEnd.check(passed);
                if (why != null) {
                    Native.LIBC.close(passed);
                    refuse("passfd " + port + ": the descriptor is " + why);
                    return;
                }
            } catch (NumberFormatException e) {
                Native.LIBC.close(passed);
                refuse("passfd: '" + printable(args) + "' is not <port>[ keep]");
                return;
            } catch (NativeException e) {
                Native.LIBC.close(passed);
                refuse("passfd: " + e.getMessage());
                return;
            }
            finish();
            requests.passfd(client, passed, port, words.length == 2);
        }

        /** Nothing came in time: the host program is closed. */
        void timeout() {
            if (!done) {
                refuse("no command within " + HANDSHAKE_SECONDS + " s");
            }
        }

        /** Hands the socket on: no more events here. */
        void finish() {
            if (!done) {
                handshakes--;
            }
            done = true;
            if (registration != null) {
                try {
                    registration.cancel();
                } catch (Exception e) {
                    LOG.debug("vsock: host client: {}", e.getMessage());
                }
            }
        }

        private void refuse(String why) {
            LOG.warn("vsock: host client on {}: {}: closed", path, why);
            finish();
            client.close();
        }

        private void closeFds(int count) {
            Fd.closeAll(fds, count);
        }

        /** The loop shuts down with this handshake unfinished. */
        @Override
        public void close() {
            if (!done) {
                finish();
                client.close();
            }
        }
    }

    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            b.append(c >= 0x20 && c < 0x7f ? c : '?');
        }
        return b.toString();
    }

    @Override
    public String toString() {
        return "hybrid vsock " + path;
    }
}
