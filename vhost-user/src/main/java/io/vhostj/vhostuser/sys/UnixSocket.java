package io.vhostj.vhostuser.sys;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;

/**
 * A Unix stream socket with SCM_RIGHTS descriptor passing. netty's domain sockets carry one fd
 * with a dummy byte; a vhost-user message needs up to 8 fds riding on the header bytes, so this
 * is our own sendmsg/recvmsg.
 */
public final class UnixSocket extends Fd {
    public static final int MAX_FDS = 8;

    private static final int AF_UNIX = 1;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_DGRAM = 2;
    public static final int SOCK_SEQPACKET = 5;
    private static final int SO_TYPE = 3;
    private static final int SO_SNDBUF = 7;
    private static final int POLLRDHUP = 0x2000;
    private static final int MSG_PEEK = 0x2;
    private static final int MSG_TRUNC = 0x20;
    private static final int MSG_DONTWAIT = 0x40;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int SOCK_NONBLOCK = 0x800;
    private static final int SOL_SOCKET = 1;
    private static final int SO_ACCEPTCONN = 30;
    private static final int SCM_RIGHTS = 1;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int SHUT_RDWR = 2;
    private static final int SUN_PATH_MAX = 108;
    private static final int SOCKADDR_UN_SIZE = 110;

    // struct msghdr (x86_64): name 0, namelen 8, iov 16, iovlen 24, control 32, controllen 40, flags 48
    private static final int MSG_IOV = 16;
    private static final int MSG_IOVLEN = 24;
    private static final int MSG_CONTROL = 32;
    private static final int MSG_CONTROLLEN = 40;
    private static final int MSG_FLAGS = 48;
    private static final int MSGHDR_SIZE = 56;
    // struct cmsghdr: len 0 (size_t), level 8, type 12, data 16
    private static final int CMSG_HDR = 16;

    private int receivedFds;

    private UnixSocket(int fd) {
        super(fd);
    }

    /** Adopts an inherited descriptor (vhost-user.json's {@code --fd}). */
    public static UnixSocket adopt(int fd) {
        return new UnixSocket(fd);
    }

    /** Whether this socket is a listening one (SO_ACCEPTCONN) rather than a connected one. */
    public boolean isListening() throws NativeException {
        return intOption(fd(), SO_ACCEPTCONN, "SO_ACCEPTCONN") != 0;
    }

    public static UnixSocket listen(Path path, int backlog) throws NativeException {
        return listen(path, backlog, SOCK_STREAM);
    }

    /** A SOCK_SEQPACKET listener: each send is one message, kept whole. */
    public static UnixSocket listenSeqpacket(Path path, int backlog) throws NativeException {
        return listen(path, backlog, SOCK_SEQPACKET);
    }

    private static UnixSocket listen(Path path, int backlog, int type) throws NativeException {
        removeStaleSocket(path);
        UnixSocket s = create(type, 0);
        try {
            long addr = sockaddr(path);
            Native.check("bind(" + path + ")", Native.LIBC.bind(s.fd(), addr, SOCKADDR_UN_SIZE));
            Native.check("listen", Native.LIBC.listen(s.fd(), backlog));
            return s;
        } catch (NativeException e) {
            s.close();
            throw e;
        }
    }

    public static UnixSocket connect(Path path) throws NativeException {
        return connect(path, SOCK_STREAM, 0);
    }

    /** A SOCK_DGRAM socket connected to {@code path} (syslog's /dev/log): it keeps working once the path is out of reach. */
    public static UnixSocket connectDatagram(Path path) throws NativeException {
        return connect(path, SOCK_DGRAM, 0);
    }

    /** A SOCK_DGRAM socket bound at {@code path}, to receive datagrams (tests stand in for syslog with one). */
    public static UnixSocket bindDatagram(Path path) throws NativeException {
        removeStaleSocket(path);
        UnixSocket s = create(SOCK_DGRAM, 0);
        try {
            Native.check("bind(" + path + ")", Native.LIBC.bind(s.fd(), sockaddr(path), SOCKADDR_UN_SIZE));
            return s;
        } catch (NativeException e) {
            s.close();
            throw e;
        }
    }

    /**
     * A non-blocking SOCK_SEQPACKET connection to {@code path}. A Unix connect does not wait:
     * it succeeds at once, or fails (EAGAIN when the listener's backlog is full).
     */
    public static UnixSocket connectSeqpacket(Path path) throws NativeException {
        return connect(path, SOCK_SEQPACKET, SOCK_NONBLOCK);
    }

    private static UnixSocket connect(Path path, int type, int flags) throws NativeException {
        UnixSocket s = create(type, flags);
        try {
            long addr = sockaddr(path);
            Native.check("connect(" + path + ")", Native.LIBC.connect(s.fd(), addr, SOCKADDR_UN_SIZE));
            return s;
        } catch (NativeException e) {
            s.close();
            throw e;
        }
    }

    /** Blocks for the next connection. Throws once {@link #shutdown()} was called. */
    public UnixSocket accept() throws NativeException {
        while (true) {
            int rc = Native.LIBC.accept4(fd(), 0L, 0L, SOCK_CLOEXEC);
            if (rc >= 0) {
                return new UnixSocket(rc);
            }
            int errno = Native.errno();
            if (errno != Errno.EINTR) {
                throw new NativeException("accept", errno);
            }
        }
    }

    /**
     * The next connection on a non-blocking listener, itself non-blocking, or null when none is
     * waiting.
     */
    public UnixSocket acceptNonBlocking() throws NativeException {
        while (true) {
            int rc = Native.LIBC.accept4(fd(), 0L, 0L, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (rc >= 0) {
                return new UnixSocket(rc);
            }
            int errno = Native.errno();
            if (errno == Errno.EAGAIN) {
                return null;
            }
            if (errno != Errno.EINTR && errno != Errno.ECONNABORTED) {
                throw new NativeException("accept", errno);
            }
        }
    }

    /** Wakes a thread blocked in accept/recv on this socket; the socket stays open. */
    public void shutdown() {
        int fd = fd();
        if (fd >= 0) {
            Native.LIBC.shutdown(fd, SHUT_RDWR);
        }
    }

    /**
     * Sends {@code length} bytes at {@code address}; {@code fds[0..fdCount)} ride on the first
     * byte. Loops over short writes.
     */
    public void send(long address, int length, int[] fds, int fdCount) throws NativeException {
        if (fdCount > MAX_FDS) {
            throw new IllegalArgumentException("at most " + MAX_FDS + " fds per message");
        }
        long msg = Native.scratch();
        long iov = msg + MSGHDR_SIZE;
        long control = iov + 16;
        int sent = 0;
        // at least one sendmsg: descriptors with no bytes, or an empty SEQPACKET message
        for (boolean first = true; first || sent < length; first = false) {
            Native.zero(msg, MSGHDR_SIZE);
            Native.putLong(iov, address + sent);
            Native.putLong(iov + 8, length - sent);
            Native.putLong(msg + MSG_IOV, iov);
            Native.putLong(msg + MSG_IOVLEN, 1);
            if (fdCount > 0 && sent == 0) {
                int controlLen = cmsgSpace(fdCount);
                Native.zero(control, controlLen);
                Native.putLong(control, CMSG_HDR + 4L * fdCount);
                Native.putInt(control + 8, SOL_SOCKET);
                Native.putInt(control + 12, SCM_RIGHTS);
                for (int i = 0; i < fdCount; i++) {
                    Native.putInt(control + CMSG_HDR + 4L * i, fds[i]);
                }
                Native.putLong(msg + MSG_CONTROL, control);
                Native.putLong(msg + MSG_CONTROLLEN, controlLen);
            }
            long rc = Native.LIBC.sendmsg(fd(), msg, MSG_NOSIGNAL);
            if (rc < 0) {
                int errno = Native.errno();
                if (errno == Errno.EINTR) {
                    continue;
                }
                throw new NativeException("sendmsg", errno);
            }
            sent += (int) rc;
            if (length == 0) {
                break;
            }
        }
    }

    /**
     * Receives up to {@code length} bytes. Descriptors that arrive are stored in {@code fds} and
     * counted by {@link #receivedFds()}; the caller owns them. Returns 0 at end of stream.
     * More than {@code fds.length} descriptors is a protocol violation: they are closed and
     * an exception is thrown.
     */
    public int receive(long address, int length, int[] fds) throws NativeException {
        receivedFds = 0;
        long msg = Native.scratch();
        long iov = msg + MSGHDR_SIZE;
        long control = iov + 16;
        int controlLen = cmsgSpace(MAX_FDS);
        while (true) {
            Native.zero(msg, MSGHDR_SIZE);
            Native.zero(control, controlLen);
            Native.putLong(iov, address);
            Native.putLong(iov + 8, length);
            Native.putLong(msg + MSG_IOV, iov);
            Native.putLong(msg + MSG_IOVLEN, 1);
            Native.putLong(msg + MSG_CONTROL, control);
            Native.putLong(msg + MSG_CONTROLLEN, controlLen);
            long rc = Native.LIBC.recvmsg(fd(), msg, MSG_CMSG_CLOEXEC);
            if (rc < 0) {
                int errno = Native.errno();
                if (errno == Errno.EINTR) {
                    continue;
                }
                throw new NativeException("recvmsg", errno);
            }
            int count = collectFds(msg, control, fds);
            boolean truncated = (Native.getInt(msg + MSG_FLAGS) & MSG_CTRUNC) != 0;
            if (truncated || count > fds.length) {
                Fd.closeAll(fds, Math.min(count, fds.length));
                throw new NativeException("recvmsg", "more than " + fds.length + " descriptors in one message");
            }
            receivedFds = count;
            return (int) rc;
        }
    }

    /** Reads exactly {@code length} bytes (no descriptors expected); false on end of stream. */
    public boolean receiveFully(long address, int length) throws NativeException {
        int got = 0;
        while (got < length) {
            long rc = Native.LIBC.read(fd(), address + got, length - got);
            if (rc < 0) {
                int errno = Native.errno();
                if (errno == Errno.EINTR) {
                    continue;
                }
                throw new NativeException("read(socket)", errno);
            }
            if (rc == 0) {
                return false;
            }
            got += (int) rc;
        }
        return true;
    }

    public int receivedFds() {
        return receivedFds;
    }

    private static int collectFds(long msg, long control, int[] fds) {
        long controlLen = Native.getLong(msg + MSG_CONTROLLEN);
        int count = 0;
        long cmsg = control;
        // Walk every cmsghdr so that nothing received leaks, even if it is not SCM_RIGHTS.
        while (cmsg + CMSG_HDR <= control + controlLen) {
            long len = Native.getLong(cmsg);
            if (len < CMSG_HDR || cmsg + len > control + controlLen) {
                break;
            }
            if (Native.getInt(cmsg + 8) == SOL_SOCKET && Native.getInt(cmsg + 12) == SCM_RIGHTS) {
                int n = (int) ((len - CMSG_HDR) / 4);
                for (int i = 0; i < n; i++) {
                    int fd = Native.getInt(cmsg + CMSG_HDR + 4L * i);
                    if (count < fds.length) {
                        fds[count] = fd;
                    } else {
                        Native.LIBC.close(fd);
                    }
                    count++;
                }
            }
            cmsg += (len + 7) & ~7L;
        }
        return count;
    }

    private static int cmsgSpace(int fdCount) {
        return CMSG_HDR + ((4 * fdCount + 7) & ~7);
    }

    private static UnixSocket create(int type, int flags) throws NativeException {
        return new UnixSocket(Native.check("socket(AF_UNIX)",
                Native.LIBC.socket(AF_UNIX, type | SOCK_CLOEXEC | flags, 0)));
    }

    /** The socket type of {@code fd} (SO_TYPE): {@link #SOCK_STREAM}, {@link #SOCK_SEQPACKET}, ... */
    public static int socketType(int fd) throws NativeException {
        return intOption(fd, SO_TYPE, "SO_TYPE");
    }

    /** The socket's send buffer (SO_SNDBUF, as the kernel counts it); a Unix message may be 32 bytes less. */
    public static int sendBufferSize(int fd) throws NativeException {
        return intOption(fd, SO_SNDBUF, "SO_SNDBUF");
    }

    /** An int-valued SOL_SOCKET option of {@code fd}. */
    private static int intOption(int fd, int option, String name) throws NativeException {
        long buf = Native.scratch();
        Native.putInt(buf, 0);
        Native.putInt(buf + 8, 4);
        Native.check("getsockopt(" + name + ")", Native.LIBC.getsockopt(fd, SOL_SOCKET, option, buf, buf + 8));
        return Native.getInt(buf);
    }

    /**
     * Whether the peer has shut its sending side or closed (POLLRDHUP or POLLHUP now): what tells
     * a message socket's end of stream from an empty message, both of which read as 0 bytes.
     */
    public static boolean peerDone(int fd) throws NativeException {
        long pfd = Native.scratch() + 512;
        Native.putInt(pfd, fd);
        Native.putShort(pfd + 4, (short) (POLLRDHUP | Poll.POLLHUP));
        Native.putShort(pfd + 6, (short) 0);
        int rc = Native.LIBC.poll(pfd, 1, 0);
        if (rc < 0) {
            throw new NativeException("poll", Native.errno());
        }
        return rc > 0 && (Native.getShort(pfd + 6) & (POLLRDHUP | Poll.POLLHUP)) != 0;
    }

    /**
     * The length of the next message waiting on a message socket, without taking it
     * (MSG_PEEK|MSG_TRUNC); -1 when none waits; 0 at end of stream (or for an empty message).
     */
    public static long nextMessageSize(int fd) throws NativeException {
        long msg = Native.scratch();
        while (true) {
            Native.zero(msg, MSGHDR_SIZE);
            long rc = Native.LIBC.recvmsg(fd, msg, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
            if (rc >= 0) {
                return rc;
            }
            int errno = Native.errno();
            if (errno == Errno.EAGAIN) {
                return -1;
            }
            if (errno != Errno.EINTR) {
                throw new NativeException("recvmsg(MSG_PEEK)", errno);
            }
        }
    }

    private static long sockaddr(Path path) throws NativeException {
        byte[] bytes = path.toString().getBytes(StandardCharsets.UTF_8);
        if (bytes.length >= SUN_PATH_MAX) {
            throw new NativeException("sockaddr_un", "socket path longer than " + (SUN_PATH_MAX - 1) + " bytes: " + path);
        }
        long addr = Native.scratch() + 1024;
        Native.zero(addr, SOCKADDR_UN_SIZE);
        Native.putShort(addr, (short) AF_UNIX);
        Native.copyFromArray(bytes, 0, addr + 2, bytes.length);
        return addr;
    }

    private static void removeStaleSocket(Path path) throws NativeException {
        try {
            if (Files.exists(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                PosixFileAttributes attrs = Files.readAttributes(path, PosixFileAttributes.class,
                        java.nio.file.LinkOption.NOFOLLOW_LINKS);
                if (!attrs.isOther()) {
                    throw new NativeException("bind(" + path + ")", "path exists and is not a socket");
                }
                Files.delete(path);
            }
        } catch (java.io.IOException e) {
            if (e instanceof NativeException ne) {
                throw ne;
            }
            throw new NativeException("bind(" + path + ")", e.getMessage());
        }
    }
}
