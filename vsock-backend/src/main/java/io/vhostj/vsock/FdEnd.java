package io.vhostj.vsock;

import static io.vhostj.vsock.EpollBits.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.epoll.EpollIoEvent;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.unix.FileDescriptor;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.UnixSocket;

/**
 * A descriptor a host program passed with {@code passfd} (Kata's stdio streams), used as the
 * connection's host end itself: usually a FIFO, so often one direction only (a write-only FIFO
 * is never read, a read-only one never written), or a socket or terminal; also the SOCK_SEQPACKET
 * socket of a SEQPACKET connection (each read and write one whole message). It is served on the
 * same netty event loop as every other host socket, edge-triggered, so it costs no thread; all
 * its state is touched on that loop only.
 *
 * <p>The Unix connection that carried it ({@code control}) gets the {@code OK <port>} answer;
 * with {@code keep} it stays open for the life of the stream and closes with it (the host
 * program learns there that the stream ended), otherwise it closes after the answer.
 */
final class FdEnd implements HostEnd, EpollIoHandle {
    private static final Logger LOG = LoggerFactory.getLogger(FdEnd.class);
    private static final int READ_SIZE = 64 * 1024;
    /** Reads per turn on the event loop, as netty's channels make 16 per read event. */
    private static final int READS_PER_TURN = 16;
    private static final int SHUT_WR = 1;

    private record Pending(ByteBuf data, Runnable done) {
    }

    private final VsockMux mux;
    private final VsockConnection conn;
    private final IoEventLoop loop;
    private final FileDescriptor fd;
    private final boolean readable;
    private final boolean writable;
    private final boolean socket;
    private final boolean keep;
    private UnixSocket control;
    private IoRegistration registration;
    /** The epoll mask last given to the registration (0: none yet). */
    private int submitted;
    private final ArrayDeque<Pending> writes = new ArrayDeque<>();
    /** What {@link #reading} last asked for; applied on the loop. */
    private volatile boolean wantReading;
    private boolean eof;
    private boolean failed;
    private boolean shutdownPending;
    private boolean closePending;
    private boolean closed;

    /**
     * Takes {@code passed} (a descriptor number the caller owns until now) and {@code control};
     * registers on {@code loop}. The descriptor must be a FIFO, socket or character device:
     * {@link #check} says so before.
     */
    FdEnd(VsockMux mux, VsockConnection conn, IoEventLoop loop, int passed, UnixSocket control, boolean keep)
            throws NativeException {
        this.mux = mux;
        this.conn = conn;
        this.loop = loop;
        this.control = control;
        this.keep = keep;
        int access = Fd.statusFlags(passed) & Fd.O_ACCMODE;
        this.readable = access == Fd.O_RDONLY || access == Fd.O_RDWR;
        this.writable = access == Fd.O_WRONLY || access == Fd.O_RDWR;
        this.socket = (Fd.fileMode(passed) & Fd.S_IFMT) == Fd.S_IFSOCK;
        Fd.setNonBlocking(passed);
        this.fd = new FileDescriptor(passed);
        loop.register(this).addListener(f -> {
            if (f.isSuccess()) {
                registration = (IoRegistration) f.getNow();
                if (closed) {
                    registration.cancel();
                    return;
                }
                update();
                readNow(); // ready data came before the registration: edge-triggered, no event for it
            } else {
                LOG.warn("vsock: passed {} cannot be watched: {}", describe(passed), f.cause().getMessage());
                closeNow();
                mux.hostFailed(conn);
            }
        });
    }

    /** Why a passed descriptor cannot be a stream's host end, or null when it can. */
    static String check(int passed) throws NativeException {
        int type = Fd.fileMode(passed) & Fd.S_IFMT;
        if (type != Fd.S_IFIFO && type != Fd.S_IFSOCK && type != Fd.S_IFCHR) {
            return "a " + typeName(type) + ", not a FIFO, socket or character device";
        }
        return null;
    }

    /** Whether the guest's data has anywhere to go. */
    boolean writable() {
        return writable;
    }

    private static String typeName(int type) {
        return switch (type) {
            case 0x8000 -> "regular file";
            case 0x4000 -> "directory";
            case 0x6000 -> "block device";
            case 0xa000 -> "symbolic link";
            default -> String.format("file of type 0%o", type);
        };
    }

    private static String describe(int fd) {
        return "descriptor " + fd;
    }

    @Override
    public FileDescriptor fd() {
        return fd;
    }

    // ---- HostEnd: from any thread ------------------------------------------------------------

    @Override
    public void write(ByteBuf data, Runnable done) {
        onLoop(() -> {
            if (closed || failed || !writable) {
                data.release();
                done.run();
                return;
            }
            writes.add(new Pending(data, done));
            flush();
        });
    }

    @Override
    public void reading(boolean on) {
        if (wantReading == on) {
            return;
        }
        wantReading = on;
        onLoop(() -> {
            update();
            readNow();
        });
    }

    @Override
    public void shutdownOutput() {
        onLoop(() -> {
            shutdownPending = true;
            flush();
        });
    }

    @Override
    public void accepted(int hostPort) {
        onLoop(() -> {
            UnixSocket c = control;
            if (c == null) {
                return;
            }
            byte[] ok = ("OK " + hostPort + "\n").getBytes(StandardCharsets.US_ASCII);
            long buf = Native.allocate(ok.length);
            try {
                Native.copyFromArray(ok, 0, buf, ok.length);
                c.send(buf, ok.length, null, 0); // a few bytes on a fresh socket: its buffer takes them
            } catch (NativeException e) {
                LOG.debug("vsock: passfd: the OK to the host program: {}", e.getMessage());
            } finally {
                Native.free(buf);
            }
            if (!keep) {
                c.close();
                control = null;
            }
        });
    }

    @Override
    public void closeAfterWrites() {
        onLoop(() -> {
            closePending = true;
            flush();
        });
    }

    @Override
    public void abort() {
        onLoop(this::closeNow);
    }

    // ---- on the loop -------------------------------------------------------------------------

    private void onLoop(Runnable r) {
        if (loop.inEventLoop()) {
            r.run();
        } else {
            loop.execute(r);
        }
    }

    @Override
    public void handle(IoRegistration reg, IoEvent event) {
        int ops = ((EpollIoEvent) event).ops().value();
        if ((ops & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0) {
            readNow();
        }
        if ((ops & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
            flush();
        }
        if (!closed && !failed && (ops & (EPOLLHUP | EPOLLERR)) != 0 && (eof || !readable) && writes.isEmpty()) {
            // nobody is at the other end any more (a FIFO's last reader or writer left, the socket died)
            gone();
        }
    }

    /**
     * Reads until the pipe is empty, reading is paused, or EOF; at most {@link #READS_PER_TURN}
     * reads at a time, then the loop's other work goes first and this goes on after it.
     */
    private void readNow() {
        for (int reads = 0; !closed && !failed && !eof && readable && wantReading && registration != null; reads++) {
            if (reads == READS_PER_TURN) {
                loop.execute(this::readNow); // edge-triggered: no new event comes for what is left
                return;
            }
            int size = READ_SIZE;
            if (conn.seqpacket()) { // one message per read, whole
                try {
                    long next = UnixSocket.nextMessageSize(fd.intValue());
                    if (next < 0) {
                        return;
                    }
                    int most;
                    synchronized (conn) {
                        most = conn.peerBufAlloc;
                    }
                    if (next > most) {
                        // the guest takes a message only whole, within its buffer: this one never could be
                        LOG.warn("vsock: {}: a {}-byte message, the guest's buffer holds {}: reset", conn, next, most);
                        closeNow();
                        mux.hostFailed(conn);
                        return;
                    }
                    if (next == 0) {
                        emptyMessageOrEof();
                        continue;
                    }
                    size = (int) next;
                } catch (NativeException e) {
                    LOG.debug("vsock: {}: read: {}", conn, e.getMessage());
                    gone();
                    return;
                }
            }
            ByteBuf buf = PooledByteBufAllocator.DEFAULT.directBuffer(size);
            int n;
            try {
                n = fd.readAddress(buf.memoryAddress(), 0, size);
            } catch (IOException e) {
                buf.release();
                LOG.debug("vsock: {}: read: {}", conn, e.getMessage());
                gone();
                return;
            }
            if (n == 0) { // EAGAIN
                buf.release();
                return;
            }
            if (n < 0) {
                buf.release();
                atEof();
                return;
            }
            buf.writerIndex(n);
            mux.fromHost(conn, buf); // may pause reading, or close
        }
    }

    /** The host end sends no more. A read-only end has nothing left to do: it leaves epoll. */
    private void atEof() {
        eof = true;
        if (!writable) {
            cancel();
        } else {
            update();
        }
        mux.hostDone(conn, false);
    }

    /**
     * A message socket read 0 bytes: an empty message (consumed, and passed on as one) unless
     * the peer is done, which is the end of the stream.
     */
    private void emptyMessageOrEof() throws NativeException {
        if (UnixSocket.peerDone(fd.intValue())) {
            atEof();
            return;
        }
        // takes the empty message off (a read of 0 bytes would return before looking at the socket)
        long one = Native.allocate(1);
        long rc;
        try {
            rc = Native.LIBC.read(fd.intValue(), one, 1);
        } finally {
            Native.free(one);
        }
        if (rc < 0 && Native.errno() != io.vhostj.vhostuser.sys.Errno.EAGAIN) {
            throw new NativeException("read", Native.errno());
        }
        if (rc == 0) {
            mux.fromHost(conn, PooledByteBufAllocator.DEFAULT.directBuffer(0));
        }
    }

    /** Writes what waits; then a pending shutdown or close. */
    private void flush() {
        while (!closed && !failed && !writes.isEmpty()) {
            Pending p = writes.peek();
            ByteBuf b = p.data();
            int n;
            try {
                if (!b.isReadable()) { // an empty SEQPACKET message: one write of nothing sends it
                    long rc = Native.LIBC.write(fd.intValue(), 0, 0);
                    if (rc < 0 && Native.errno() != io.vhostj.vhostuser.sys.Errno.EAGAIN) {
                        throw new NativeException("write", Native.errno());
                    }
                    n = rc < 0 ? 0 : 1;
                } else {
                    n = fd.writeAddress(b.memoryAddress() + b.readerIndex(), 0, b.readableBytes());
                }
            } catch (IOException e) {
                LOG.debug("vsock: {}: write: {}", conn, e.getMessage());
                gone();
                return;
            }
            if (n == 0) { // EAGAIN: EPOLLOUT tells when to go on
                update();
                return;
            }
            b.skipBytes(Math.min(n, b.readableBytes()));
            if (!b.isReadable()) {
                writes.poll();
                b.release();
                p.done().run();
            }
        }
        update();
        if (closed || !writes.isEmpty()) {
            return;
        }
        if (closePending) {
            closeNow();
        } else if (shutdownPending) {
            shutdownPending = false;
            if (socket) {
                Native.LIBC.shutdown(fd.intValue(), SHUT_WR);
            } else if (!readable) {
                closeNow(); // a write-only FIFO: its reader sees EOF
            }
        }
    }

    /** The other end is gone: what waits is dropped, and the guest hears it (SHUTDOWN, both ways). */
    private void gone() {
        if (failed || closed) {
            return;
        }
        failed = true;
        dropWrites();
        cancel(); // nothing more is read or written: its HUP or ERR must not wake the loop again
        mux.hostDone(conn, true);
    }

    private void dropWrites() {
        Pending p;
        while ((p = writes.poll()) != null) {
            p.data().release();
            p.done().run();
        }
    }

    /**
     * Sets what epoll watches, only when that changes: every epoll_ctl(MOD) re-arms the edge, and
     * a HUP or ERR that holds (a FIFO's other end gone) would fire again each time.
     */
    private void update() {
        if (registration == null || closed || !registration.isValid()) {
            return;
        }
        int ops = EPOLLET | EPOLLERR;
        if (readable && wantReading && !eof && !failed) {
            ops |= EPOLLIN | EPOLLRDHUP;
        }
        if (!writes.isEmpty() && !failed) {
            ops |= EPOLLOUT;
        }
        if (ops == submitted) {
            return;
        }
        submitted = ops;
        try {
            registration.submit(EpollIoOps.valueOf(ops));
        } catch (Exception e) {
            LOG.warn("vsock: {}: epoll refuses the host end: {}", conn, e.getMessage());
            closeNow();
            mux.hostFailed(conn);
        }
    }

    /** Leaves epoll for good (the descriptor stays open until the connection closes). */
    private void cancel() {
        if (registration != null && registration.isValid()) {
            try {
                registration.cancel();
            } catch (Exception e) {
                LOG.debug("vsock: {}: epoll: {}", conn, e.getMessage());
            }
        }
    }

    private void closeNow() {
        if (closed) {
            return;
        }
        closed = true;
        while (!writes.isEmpty()) {
            writes.poll().data().release();
        }
        cancel();
        closeFds();
    }

    private void closeFds() {
        try {
            fd.close();
        } catch (IOException e) {
            LOG.debug("vsock: {}: close: {}", conn, e.getMessage());
        }
        if (control != null) {
            control.close();
            control = null;
        }
    }

    /** The event loop shuts down (on the loop). */
    @Override
    public void close() {
        closeNow();
    }
}
