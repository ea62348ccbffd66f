package io.vhostj.fs;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.FsIo;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;

/**
 * Serves FUSE requests on one virtio-fs queue. Every request with room for a reply gets one:
 * its result, or an error (EINVAL for a malformed request, EIO before INIT, ENOSYS for what is
 * not implemented). FORGET and BATCH_FORGET get none, as the protocol says.
 * Creations run with the guest caller's ids (and umask, with --posix-acl) on the worker thread;
 * READ and WRITE move data straight between the file and the guest's buffers.
 */
final class FuseQueueHandler implements QueueHandler {
    private static final Logger LOG = LoggerFactory.getLogger(FuseQueueHandler.class);
    /** Largest READ/WRITE payload we announce: 1 MiB, in 4 KiB pages. */
    static final int MAX_WRITE = 1 << 20;
    static final int MAX_PAGES = MAX_WRITE / 4096;
    /** FUSE_INIT flags we offer. */
    static final int FUSE_BIG_WRITES = 1 << 5;
    static final int FUSE_MAX_PAGES = 1 << 22;
    static final int FUSE_DO_READDIRPLUS = 1 << 13;
    static final int FUSE_READDIRPLUS_AUTO = 1 << 14;
    static final int FUSE_POSIX_LOCKS = 1 << 1;
    static final int FUSE_FLOCK_LOCKS = 1 << 10;
    static final int FUSE_SUBMOUNTS = 1 << 27;
    /** fuse_init_in/out carry flags2, the upper 32 bits of the flags. */
    static final int FUSE_INIT_EXT = 1 << 30;
    /** FUSE_CREATE_SUPP_GROUP (bit 34), in flags2: creating requests carry the caller's group of the parent. */
    static final int FUSE_CREATE_SUPP_GROUP2 = 1 << (34 - 32);
    static final int FUSE_DONT_MASK = 1 << 6;
    static final int FUSE_WRITEBACK_CACHE = 1 << 16;
    static final int FUSE_POSIX_ACL = 1 << 20;
    static final int FUSE_HANDLE_KILLPRIV_V2 = 1 << 28;
    static final int FUSE_SETXATTR_EXT = 1 << 29;
    static final int POSIX_ACL_FLAGS = FUSE_POSIX_ACL | FUSE_DONT_MASK | FUSE_SETXATTR_EXT;
    /**
     * FUSE_DIRECT_IO_ALLOW_MMAP (bit 36, in flags2; fuse 7.39): shared mmap of FOPEN_DIRECT_IO
     * files. The driver reads it whatever minor version was agreed; see {@link Fuse#KERNEL_MINOR_VERSION}.
     */
    static final int FUSE_DIRECT_IO_ALLOW_MMAP2 = 1 << (36 - 32);
    static final int OFFERED_FLAGS = FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO
            | FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS;

    /** Largest READDIR reply we build. */
    static final int MAX_DIR_REPLY = 64 * 1024;
    private static final int NAME_MAX = 4096;

    private final FsSession session;
    private final Passthrough fs;
    private final FuseRequest request = new FuseRequest();
    private final long reply = Native.allocate(Fuse.OUT_HEADER_SIZE + MAX_DIR_REPLY);
    private final long name = Native.allocate(NAME_MAX + 1);
    private final long name2 = Native.allocate(NAME_MAX + 1);
    private final long proc = Native.allocate(64);
    private final long times = Native.allocate(32);
    private final long stat = Native.allocate(FsIo.STAT_SIZE + FsIo.STATFS_SIZE);
    private final long statx = Native.allocate(FsIo.STATX_SIZE);
    private final long dents = Native.allocate(MAX_DIR_REPLY);
    private final long iov = Native.allocate((long) FileIo.IOV_MAX * FileIo.IOVEC_SIZE);
    private long malformed;

    FuseQueueHandler(FsSession session) {
        this(session, null);
    }

    FuseQueueHandler(FsSession session, Passthrough fs) {
        this.session = session;
        this.fs = fs;
    }

    @Override
    public int handle(DescriptorChain chain) throws ChainException {
        try {
            return serve(chain);
        } finally {
            closeTemporaries();
        }
    }

    // descriptors opened from file handles for the request being served, closed after it
    private final int[] temporaries = new int[4];
    private final Passthrough.Inode[] temporaryOf = new Passthrough.Inode[4];
    private int temporaryCount;

    /** An O_PATH descriptor on {@code inode} for this request (see {@link Passthrough#pathFd}). */
    private int fd(Passthrough.Inode inode) throws NativeException {
        if (!Passthrough.isTemporary(inode)) {
            return inode.fd;
        }
        for (int i = 0; i < temporaryCount; i++) {
            if (temporaryOf[i] == inode) {
                return temporaries[i];
            }
        }
        if (temporaryCount == temporaries.length) {
            throw new IllegalStateException("more than " + temporaries.length + " inodes in one request");
        }
        int fd = fs.pathFd(inode);
        temporaryOf[temporaryCount] = inode;
        temporaries[temporaryCount++] = fd;
        return fd;
    }

    private void closeTemporaries() {
        while (temporaryCount > 0) {
            temporaryOf[--temporaryCount] = null;
            Native.LIBC.close(temporaries[temporaryCount]);
        }
    }

    private int serve(DescriptorChain chain) throws ChainException {
        if (!request.parse(chain)) {
            if (!request.canReply()) {
                throw new ChainException("FUSE request without room for a reply header");
            }
            if (++malformed <= 10 || malformed % 1000 == 0) {
                LOG.warn("malformed FUSE request ({} so far): opcode {}, len {}, {} readable bytes", malformed,
                        request.opcode(), Integer.toUnsignedString(request.length()), chain.readableBytes());
            }
            return error(Errno.EINVAL);
        }
        int opcode = request.opcode();
        if (Fuse.isOneWay(opcode)) {
            if (fs != null && session.initialized() && opcode != Fuse.INTERRUPT) {
                forget(opcode);
            }
            return 0;
        }
        if (opcode == Fuse.INIT) {
            return init();
        }
        if (!session.initialized()) {
            return error(Errno.EIO);
        }
        if (opcode == Fuse.DESTROY) {
            session.reset();
            if (fs != null) {
                fs.reset();
            }
            return ok(0);
        }
        if (fs == null) {
            return error(Errno.ENOSYS);
        }
        try {
            return switch (opcode) {
                case Fuse.LOOKUP -> lookup();
                case Fuse.GETATTR -> getattr();
                case Fuse.STATFS -> statfs();
                case Fuse.OPEN -> open(0);
                case Fuse.OPENDIR -> open(FsIo.O_DIRECTORY);
                case Fuse.READ -> read();
                case Fuse.READDIR -> readdir(false);
                case Fuse.READDIRPLUS -> readdir(true);
                case Fuse.RELEASE, Fuse.RELEASEDIR -> fs.release(request.argLong(Fuse.RELEASE_IN_FH)) ? ok(0)
                        : error(Errno.EBADF);
                case Fuse.FLUSH -> {
                    fs.locks.release(request.nodeId(), request.argLong(Fuse.FLUSH_IN_LOCK_OWNER));
                    yield ok(0);
                }
                case Fuse.GETLK -> getlk();
                case Fuse.SETLK, Fuse.SETLKW -> setlk(opcode == Fuse.SETLKW);
                case Fuse.READLINK -> readlink();
                case Fuse.GETXATTR, Fuse.LISTXATTR -> fs.xattr() ? getxattr(opcode) : error(Errno.ENOSYS);
                case Fuse.ACCESS -> access();
                case Fuse.LSEEK -> lseek();
                case Fuse.CREATE, Fuse.MKDIR, Fuse.MKNOD, Fuse.SYMLINK, Fuse.LINK, Fuse.UNLINK, Fuse.RMDIR,
                        Fuse.RENAME, Fuse.RENAME2, Fuse.SETATTR, Fuse.WRITE, Fuse.FSYNC, Fuse.FSYNCDIR,
                        Fuse.FALLOCATE, Fuse.SETXATTR, Fuse.REMOVEXATTR, Fuse.COPY_FILE_RANGE, Fuse.TMPFILE ->
                        (opcode == Fuse.SETXATTR || opcode == Fuse.REMOVEXATTR) && !fs.xattr() ? error(Errno.ENOSYS)
                                : fs.readOnly() ? error(Errno.EROFS) : write(opcode);
                case Fuse.SYNCFS -> syncfs();
                default -> error(Errno.ENOSYS);
            };
        } catch (NativeException e) {
            return error(e.errno() > 0 ? e.errno() : Errno.EIO);
        }
    }

    private Passthrough.Inode node() {
        return fs.inode(request.nodeId());
    }

    /** LOOKUP: one name in the parent, never following a symlink, as a new or known inode. */
    private int lookup() throws ChainException, NativeException {
        Passthrough.Inode parent = node();
        if (parent == null) {
            return error(Errno.EBADF);
        }
        int length = readName(0);
        if (length < 0) {
            return error(-length);
        }
        Passthrough.Inode child = lookUpAt(fd(parent), name, FsIo.O_PATH | FsIo.O_NOFOLLOW);
        putEntry(reply + Fuse.OUT_HEADER_SIZE, child);
        markSubmount(reply + Fuse.OUT_HEADER_SIZE, parent, child);
        return ok(Fuse.ENTRY_OUT_SIZE);
    }

    /** fuse_attr.flags: the entry is the root of another mount; the guest mounts it separately. */
    static final int FUSE_ATTR_SUBMOUNT = 1;

    /**
     * With --announce-submounts (and FUSE_SUBMOUNTS agreed): a directory on another mount than
     * its parent's is flagged, so the guest gives it its own superblock (its own st_dev) as the
     * host does, instead of one inode-number space spanning both file systems.
     */
    private void markSubmount(long entryOut, Passthrough.Inode parent, Passthrough.Inode inode) {
        if (session.submounts() && parent != null && inode.mount != parent.mount
                && (Native.getInt(entryOut + Fuse.ENTRY_ATTR + Fuse.ATTR_MODE) & 0xf000) == 0x4000) {
            Native.putInt(entryOut + Fuse.ENTRY_ATTR + Fuse.ATTR_FLAGS, FUSE_ATTR_SUBMOUNT);
        }
    }

    private int getattr() throws ChainException, NativeException {
        Passthrough.Inode inode = node();
        if (inode == null) {
            return error(Errno.EBADF);
        }
        FsIo.fstatat(fd(inode), Passthrough.emptyName(), stat, FsIo.AT_EMPTY_PATH | FsIo.AT_SYMLINK_NOFOLLOW);
        long out = reply + Fuse.OUT_HEADER_SIZE;
        Native.zero(out, Fuse.ATTR_OUT_SIZE);
        Native.putLong(out + Fuse.ATTR_OUT_VALID, fs.cache().timeoutSeconds);
        fillAttr(out + Fuse.ATTR_OUT_ATTR, stat);
        return ok(Fuse.ATTR_OUT_SIZE);
    }

    private int statfs() throws ChainException, NativeException {
        Passthrough.Inode inode = node();
        if (inode == null) {
            return error(Errno.EBADF);
        }
        long buf = stat + FsIo.STAT_SIZE;
        FsIo.fstatfs(fd(inode), buf);
        long out = reply + Fuse.OUT_HEADER_SIZE;
        Native.zero(out, Fuse.STATFS_OUT_SIZE);
        Native.putLong(out + Fuse.STATFS_BLOCKS, Native.getLong(buf + FsIo.F_BLOCKS));
        Native.putLong(out + Fuse.STATFS_BFREE, Native.getLong(buf + FsIo.F_BFREE));
        Native.putLong(out + Fuse.STATFS_BAVAIL, Native.getLong(buf + FsIo.F_BAVAIL));
        Native.putLong(out + Fuse.STATFS_FILES, Native.getLong(buf + FsIo.F_FILES));
        Native.putLong(out + Fuse.STATFS_FFREE, Native.getLong(buf + FsIo.F_FFREE));
        Native.putInt(out + Fuse.STATFS_BSIZE, (int) Native.getLong(buf + FsIo.F_BSIZE));
        Native.putInt(out + Fuse.STATFS_NAMELEN, (int) Native.getLong(buf + FsIo.F_NAMELEN));
        Native.putInt(out + Fuse.STATFS_FRSIZE, (int) Native.getLong(buf + FsIo.F_FRSIZE));
        return ok(Fuse.STATFS_OUT_SIZE);
    }

    private static final int O_DIRECT = 0x4000;
    private static final int O_ACCMODE = 3;
    private static final int O_WRONLY = 1;
    private static final int O_RDWR = 2;
    private static final int O_TRUNC = 0x200;
    private static final int O_APPEND = 0x400;

    /**
     * The guest's open flags as the host file gets them: O_DIRECT only with --allow-direct-io.
     * With the writeback cache agreed, write-only is read-write (the guest reads the pages a
     * partial write lands in, through any of the file's handles) and O_APPEND goes (the guest
     * puts appends at its own idea of the end and writes them back at that offset; a host
     * O_APPEND would move them again). As virtiofsd does.
     */
    private int hostFlags(int guestFlags) {
        int flags = fs.allowDirectIo() ? guestFlags : guestFlags & ~O_DIRECT;
        if (session.writeback()) {
            if ((flags & O_ACCMODE) == O_WRONLY) {
                flags = (flags & ~O_ACCMODE) | O_RDWR;
            }
            flags &= ~O_APPEND;
        }
        return flags;
    }

    /**
     * Whether an open with {@code hostFlags} failed only for the read access the writeback cache
     * added (a file the caller may write but not read): then it is retried write-only, as asked.
     */
    /** openat with O_CREAT for CREATE; a write-only open refused read access (writeback) is retried write-only. */
    private int createOpen(Passthrough.Inode parent, int flags, int guestFlags, int mode) throws NativeException {
        try {
            return FsIo.openat(fd(parent), name, (flags | Passthrough.O_CREAT | FsIo.O_NOFOLLOW)
                    & ~Passthrough.O_NOCTTY, mode);
        } catch (NativeException e) {
            if (!readAccessRefused(e, guestFlags, flags)) {
                throw e;
            }
            return FsIo.openat(fd(parent), name, (flags & ~O_ACCMODE | O_WRONLY | Passthrough.O_CREAT
                    | FsIo.O_NOFOLLOW) & ~Passthrough.O_NOCTTY, mode);
        }
    }

    private boolean readAccessRefused(NativeException e, int guestFlags, int hostFlags) {
        return e.errno() == Errno.EACCES && (guestFlags & O_ACCMODE) == O_WRONLY && (hostFlags & O_ACCMODE) == O_RDWR;
    }

    // ---- setuid/setgid clearing (FUSE_HANDLE_KILLPRIV_V2, and the direct-I/O write flag) ------
    // What the guest flags as done by an unprivileged caller runs with CAP_FSETID dropped on this
    // thread (FsIo.dropFsetid), so the kernel clears the bits by its own rules, in the same call.

    private static final int S_IFMT = 0xf000;
    private static final int S_ISGID = 02000;
    /** fuse_write_in.write_flags: a write by a caller without CAP_FSETID. */
    static final int FUSE_WRITE_KILL_SUIDGID = 1 << 2;
    /** fuse_open_in/fuse_create_in.open_flags: an O_TRUNC open by a caller without CAP_FSETID. */
    static final int FUSE_OPEN_KILL_SUIDGID = 1;
    /** fuse_setattr_in.valid: a truncation or chown by a caller without CAP_FSETID. */
    static final int FATTR_KILL_SUIDGID = 1 << 11;
    /** fuse_setxattr_in.setxattr_flags: the caller setting an access ACL is not in the file's group. */
    static final int FUSE_SETXATTR_ACL_KILL_SGID = 1;

    /** OPEN / OPENDIR: a real descriptor with the guest's access mode, as a handle. */
    private int open(int extraFlags) throws ChainException, NativeException {
        Passthrough.Inode inode = node();
        if (inode == null) {
            return error(Errno.EBADF);
        }
        int guestFlags = request.argInt(Fuse.OPEN_IN_FLAGS);
        int flags = hostFlags(guestFlags) | extraFlags;
        if ((flags & 3) != 0 && fs.readOnly()) {
            return error(Errno.EROFS);
        }
        int fd;
        // an O_TRUNC open by an unprivileged caller (killpriv_v2): truncated without CAP_FSETID,
        // the file loses setuid/setgid in the kernel, as the caller's own open would
        boolean dropped = (flags & O_TRUNC) != 0
                && (request.argInt(Fuse.OPEN_IN_OPEN_FLAGS) & FUSE_OPEN_KILL_SUIDGID) != 0 && FsIo.dropFsetid();
        try {
            try {
                fd = fs.reopen(fd(inode), flags, name);
            } catch (NativeException e) {
                if (!readAccessRefused(e, guestFlags, flags)) {
                    throw e;
                }
                fd = fs.reopen(fd(inode), flags & ~O_ACCMODE | O_WRONLY, name);
            }
        } finally {
            if (dropped) {
                FsIo.restoreFsetid();
            }
        }
        long out = reply + Fuse.OUT_HEADER_SIZE;
        Native.zero(out, Fuse.OPEN_OUT_SIZE);
        Native.putLong(out + Fuse.OPEN_OUT_FH, fs.addHandle(fd));
        if (extraFlags == 0) {
            Native.putInt(out + Fuse.OPEN_OUT_OPEN_FLAGS, fs.cache().openFlags);
        }
        return ok(Fuse.OPEN_OUT_SIZE);
    }

    /** READ: preadv from the file straight into the guest's buffers after the out-header. */
    private int read() throws ChainException, NativeException {
        int fd = fs.handle(request.argLong(Fuse.READ_IN_FH));
        if (fd < 0) {
            return error(Errno.EBADF);
        }
        DescriptorChain chain = request.chain();
        long size = Math.min(request.argInt(Fuse.READ_IN_SIZE_BYTES) & 0xffff_ffffL,
                chain.writableBytes() - Fuse.OUT_HEADER_SIZE);
        long offset = request.argLong(Fuse.READ_IN_OFFSET);
        long got = 0;
        if (size > 0) {
            int n = chain.toIovecs(true, Fuse.OUT_HEADER_SIZE, size, iov, FileIo.IOV_MAX);
            got = transfer(true, fd, iov, n, offset);
        }
        return send(0, (int) got, false);
    }

    /**
     * preadv/pwritev between {@code fd} and the {@code count} iovecs at {@code iov}; one buffer
     * (the Linux driver's 4k page) goes through pread/pwrite, which spare the kernel importing
     * an iovec array (about 5% of a cached 4k READ's CPU, perf).
     */
    private static long transfer(boolean read, int fd, long iov, int count, long offset) throws NativeException {
        while (true) {
            long n;
            if (count == 1) {
                long base = Native.getLong(iov);
                long length = Native.getLong(iov + 8);
                n = read ? Native.LIBC.pread(fd, base, length, offset) : Native.LIBC.pwrite(fd, base, length, offset);
            } else {
                n = read ? Native.LIBC.preadv(fd, iov, count, offset) : Native.LIBC.pwritev(fd, iov, count, offset);
            }
            if (n >= 0) {
                return n;
            }
            int errno = Native.errno();
            if (errno != Errno.EINTR) {
                throw new NativeException(read ? "preadv" : "pwritev", errno);
            }
        }
    }

    /**
     * READDIR: getdents64 from the handle's offset, as fuse_dirent records up to the size asked.
     * READDIRPLUS: each record preceded by the entry's fuse_entry_out, which counts as a lookup
     * (zeroed, no lookup, for "." and ".."); an entry is looked up only once it is known to fit.
     */
    private int readdir(boolean plus) throws ChainException, NativeException {
        int fd = fs.handle(request.argLong(Fuse.READ_IN_FH));
        if (fd < 0) {
            return error(Errno.EBADF);
        }
        long room = Math.min(Math.min(request.argInt(Fuse.READ_IN_SIZE_BYTES) & 0xffff_ffffL, MAX_DIR_REPLY),
                request.chain().writableBytes() - Fuse.OUT_HEADER_SIZE);
        FsIo.seek(fd, request.argLong(Fuse.READ_IN_OFFSET));
        int got = FsIo.getdents64(fd, dents, (int) Math.min(room, MAX_DIR_REPLY));
        long out = reply + Fuse.OUT_HEADER_SIZE;
        int used = 0;
        int head = plus ? Fuse.ENTRY_OUT_SIZE : 0;
        for (int at = 0; at < got; ) {
            long d = dents + at;
            int reclen = Native.getShort(d + FsIo.D_RECLEN) & 0xffff;
            int namelen = 0;
            while (Native.getByte(d + FsIo.D_NAME + namelen) != 0) {
                namelen++;
            }
            int size = head + ((Fuse.DIRENT_NAME + namelen + 7) & ~7);
            if (used + size > room) {
                break;
            }
            long e = out + used;
            Native.zero(e, size);
            if (plus && !Passthrough.isDotOrDotDot(d + FsIo.D_NAME, namelen) && !lookupInto(node(), fd, d + FsIo.D_NAME, e)) {
                at += reclen; // vanished since getdents: leave it out
                continue;
            }
            long de = e + head;
            Native.putLong(de + Fuse.DIRENT_INO, Native.getLong(d + FsIo.D_INO));
            Native.putLong(de + Fuse.DIRENT_OFF, Native.getLong(d + FsIo.D_OFF));
            Native.putInt(de + Fuse.DIRENT_NAMELEN, namelen);
            Native.putInt(de + Fuse.DIRENT_TYPE, Native.getByte(d + FsIo.D_TYPE) & 0xff);
            Native.copy(d + FsIo.D_NAME, de + Fuse.DIRENT_NAME, namelen);
            used += size;
            at += reclen;
        }
        return ok(used);
    }

    // ---- locks -------------------------------------------------------------------------------

    private static final int FUSE_LK_FLOCK = 1;
    private final long flock = Native.allocate(FsIo.FLOCK_SIZE);
    private final java.util.concurrent.ConcurrentLinkedQueue<long[]> lockDone = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final java.util.concurrent.atomic.AtomicInteger lockWaits = new java.util.concurrent.atomic.AtomicInteger();
    private volatile boolean cancelWaits;
    private io.vhostj.vhostuser.sys.EventFd lockSignal;

    private int getlk() throws ChainException, NativeException {
        Passthrough.Inode inode = node();
        if (inode == null) {
            return error(Errno.EBADF);
        }
        int fd = fs.locks.ownerFd(fs, inode, fd(inode), request.argLong(Fuse.LK_IN_OWNER), proc);
        int lk = Fuse.LK_IN_LOCK;
        Locks.toFlock(flock, request.argLong(lk + Fuse.LOCK_START), request.argLong(lk + Fuse.LOCK_END),
                request.argInt(lk + Fuse.LOCK_TYPE));
        int rc = FsIo.ofdLock(fd, FsIo.F_OFD_GETLK, flock);
        if (rc < 0) {
            return error(-rc);
        }
        long out = reply + Fuse.OUT_HEADER_SIZE;
        Native.zero(out, Fuse.LK_OUT_SIZE);
        short type = Native.getShort(flock + FsIo.FL_TYPE);
        long start = Native.getLong(flock + FsIo.FL_START);
        long len = Native.getLong(flock + FsIo.FL_LEN);
        Native.putInt(out + Fuse.LOCK_TYPE, type);
        if (type != FsIo.F_UNLCK) {
            Native.putLong(out + Fuse.LOCK_START, start);
            Native.putLong(out + Fuse.LOCK_END, len == 0 ? Long.MAX_VALUE : start + len - 1);
            Native.putInt(out + Fuse.LOCK_PID, Native.getInt(flock + FsIo.FL_PID));
        }
        return ok(Fuse.LK_OUT_SIZE);
    }

    /**
     * SETLK/SETLKW, POSIX (OFD locks per owner) or flock (on the open handle). A SETLKW that
     * conflicts waits on a lock-wait thread, never on the queue's worker: the request completes
     * later through {@link #reap}.
     */
    private int setlk(boolean wait) throws ChainException, NativeException {
        Passthrough.Inode inode = node();
        if (inode == null) {
            return error(Errno.EBADF);
        }
        int lk = Fuse.LK_IN_LOCK;
        int type = request.argInt(lk + Fuse.LOCK_TYPE);
        if (type != FsIo.F_RDLCK && type != FsIo.F_WRLCK && type != FsIo.F_UNLCK) {
            return error(Errno.EINVAL);
        }
        java.util.function.IntSupplier attempt;
        if ((request.argInt(Fuse.LK_IN_LK_FLAGS) & FUSE_LK_FLOCK) != 0) {
            int fd = fs.handle(request.argLong(Fuse.LK_IN_FH));
            if (fd < 0) {
                return error(Errno.EBADF);
            }
            int op = (type == FsIo.F_UNLCK ? FsIo.LOCK_UN : type == FsIo.F_RDLCK ? FsIo.LOCK_SH : FsIo.LOCK_EX)
                    | FsIo.LOCK_NB;
            attempt = () -> FsIo.flock(fd, op);
        } else {
            int fd = fs.locks.ownerFd(fs, inode, fd(inode), request.argLong(Fuse.LK_IN_OWNER), proc);
            long start = request.argLong(lk + Fuse.LOCK_START);
            long end = request.argLong(lk + Fuse.LOCK_END);
            long buf = Native.allocate(FsIo.FLOCK_SIZE); // the waiter thread may need it after we return
            Locks.toFlock(buf, start, end, type);
            attempt = () -> FsIo.ofdLock(fd, FsIo.F_OFD_SETLK, buf);
            int rc = attempt.getAsInt();
            if (rc == 0 || !wait || !conflict(rc) || request.chain().writableLength(0) < Fuse.OUT_HEADER_SIZE) {
                Native.free(buf);
                return rc == 0 ? ok(0) : error(conflict(rc) ? Errno.EAGAIN : -rc);
            }
            return waitFor(attempt, () -> Native.free(buf));
        }
        int rc = attempt.getAsInt();
        if (rc == 0 || !wait || !conflict(rc) || request.chain().writableLength(0) < Fuse.OUT_HEADER_SIZE) {
            return rc == 0 ? ok(0) : error(conflict(rc) ? Errno.EAGAIN : -rc);
        }
        return waitFor(attempt, () -> { });
    }

    private static boolean conflict(int rc) {
        return rc == -Errno.EAGAIN || rc == -Errno.EACCES;
    }

    /** Retries {@code attempt} on a lock-wait thread until it takes or the queue stops. */
    private int waitFor(java.util.function.IntSupplier attempt, Runnable cleanup) throws NativeException {
        if (lockSignal == null) {
            lockSignal = io.vhostj.vhostuser.sys.EventFd.create();
        }
        int head = request.chain().head();
        long unique = request.unique();
        long out = request.chain().writableAddress(0);
        lockWaits.incrementAndGet();
        io.vhostj.vhostuser.sys.EventFd signal = lockSignal;
        fs.lockWaiters.execute(() -> {
            int error = 0;
            long sleepMicros = 500;
            try {
                while (true) {
                    int rc = attempt.getAsInt();
                    if (rc == 0) {
                        break;
                    }
                    if (!conflict(rc)) {
                        error = rc;
                        break;
                    }
                    if (cancelWaits) {
                        error = -Errno.EINTR;
                        break;
                    }
                    java.util.concurrent.locks.LockSupport.parkNanos(sleepMicros * 1000);
                    sleepMicros = Math.min(sleepMicros * 2, 20_000);
                }
            } finally {
                cleanup.run();
            }
            Native.putInt(out + Fuse.OUT_LEN, Fuse.OUT_HEADER_SIZE);
            Native.putInt(out + Fuse.OUT_ERROR, error);
            Native.putLong(out + Fuse.OUT_UNIQUE, unique);
            lockDone.add(new long[] {head, Fuse.OUT_HEADER_SIZE});
            try {
                signal.signal();
            } catch (NativeException e) {
                LOG.warn("lock wait: cannot wake the queue: {}", e.getMessage());
            }
        });
        return PENDING;
    }

    @Override
    public int reap(Completion completion) {
        if (lockWaits.get() == 0 && lockDone.isEmpty()) {
            return 0;
        }
        if (lockSignal != null) {
            try {
                lockSignal.drain(); // before the queue: a completion added after this signals again
            } catch (NativeException e) {
                LOG.debug("lock signal: {}", e.getMessage());
            }
        }
        int n = 0;
        long[] d;
        while ((d = lockDone.poll()) != null) {
            lockWaits.decrementAndGet();
            completion.complete((int) d[0], (int) d[1]);
            n++;
        }
        return n;
    }

    @Override
    public int pending() {
        return lockWaits.get();
    }

    @Override
    public int completionFd() {
        return lockSignal == null ? -1 : lockSignal.fd();
    }

    /** The queue is stopping: lock waits give up (EINTR) so that it can. */
    @Override
    public void awaitCompletions() {
        cancelWaits = true;
        if (lockSignal != null && lockDone.isEmpty()) {
            try {
                lockSignal.await(100);
            } catch (NativeException e) {
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
            }
        }
    }

    /** Looks {@code entryName} up in the directory open as {@code dirFd}, filling an entry_out at {@code e}. */
    private boolean lookupInto(Passthrough.Inode dir, int dirFd, long entryName, long e) throws NativeException {
        Passthrough.Inode inode;
        try {
            inode = lookUpAt(dirFd, entryName, FsIo.O_PATH | FsIo.O_NOFOLLOW);
        } catch (NativeException ex) {
            if (ex.errno() == Errno.ENOENT) {
                return false;
            }
            throw ex;
        }
        putEntry(e, inode);
        markSubmount(e, dir, inode);
        return true;
    }

    /**
     * Copies the NUL-terminated name that follows the argument ({@code skip} bytes of it) into
     * {@link #name}; returns its length or a negated errno.
     */
    private int readName(int skip) throws ChainException {
        return readString(skip, name, true);
    }

    /**
     * Copies the NUL-terminated string {@code skip} bytes after the argument into {@code dst};
     * returns its length or a negated errno. {@code component}: it must be one path component.
     */
    private int readString(int skip, long dst, boolean component) throws ChainException {
        long from = Fuse.IN_HEADER_SIZE + Fuse.argumentSize(request.opcode()) + (long) skip;
        long available = request.argumentsEnd() - from;
        if (available <= 0) {
            return -Errno.EINVAL;
        }
        int copy = (int) Math.min(available, NAME_MAX + 1);
        request.chain().readFromChain(from, dst, copy);
        int length = 0;
        while (length < copy && Native.getByte(dst + length) != 0) {
            length++;
        }
        if (length == copy) {
            return length > NAME_MAX ? -Errno.ENAMETOOLONG : -Errno.EINVAL; // no terminator
        }
        if (!component) {
            return length;
        }
        int bad = Passthrough.checkName(dst, length);
        return bad != 0 ? -bad : length;
    }

    /** Descriptor {@code fd}'s name under {@link FsIo#procSelfFd()}, NUL-terminated, in {@link #proc}. */
    private long procPath(int fd) {
        return FsIo.procFdName(fd, proc);
    }

    private int readlink() throws ChainException, NativeException {
        Passthrough.Inode inode = node();
        if (inode == null) {
            return error(Errno.EBADF);
        }
        int n = FsIo.readlinkat(fd(inode), Passthrough.emptyName(), reply + Fuse.OUT_HEADER_SIZE, NAME_MAX);
        return ok(n);
    }

    /**
     * Our own uid and gid; as root (uid 0) we may act as the guest's caller. Root in a user
     * namespace (bin/vhostj's for a non-root user maps one id only) acts as the ids it maps: a
     * switch to any other changes nothing, and the new inode is ours.
     */
    private static final int OWN_UID = Native.LIBC.geteuid();
    private static final int OWN_GID = Native.LIBC.getegid();
    private static final boolean SWITCH_IDS = OWN_UID == 0;

    /**
     * The operations that change the file system. Those that make a new inode run with the
     * guest caller's uid and gid as this thread's filesystem ids, so that the guest's files
     * belong to whom the guest says and its permission checks on the parent hold.
     */
    private int write(int opcode) throws ChainException, NativeException {
        boolean creates = opcode == Fuse.CREATE || opcode == Fuse.MKDIR || opcode == Fuse.MKNOD
                || opcode == Fuse.SYMLINK || opcode == Fuse.TMPFILE;
        if (!creates || !SWITCH_IDS) {
            return change(opcode);
        }
        Passthrough.Inode parent = node();
        if (parent != null) {
            fd(parent); // opening by file handle needs CAP_DAC_READ_SEARCH, which the guest's ids do not have
        }
        long group = request.suppGroup();
        long uid = fs.uidMap().toHost(request.uid());
        long gid = fs.gidMap().toHost(request.gid());
        if (group >= 0) {
            group = fs.gidMap().toHost((int) group);
        }
        if (uid == IdMap.FORBIDDEN || gid == IdMap.FORBIDDEN || uid == 0xffff_ffffL || gid == 0xffff_ffffL) {
            // forbid-guest ids may own nothing; and setfsuid(-1) would leave this thread root
            return error(Errno.EPERM);
        }
        FsIo.switchFsIds((int) uid, (int) gid);
        if (group >= 0) {
            FsIo.setThreadGroups((int) group, proc); // the parent's group the caller is in (FUSE_CREATE_SUPP_GROUP)
        }
        try {
            return change(opcode);
        } finally {
            if (group >= 0) {
                FsIo.restoreThreadGroups();
            }
            FsIo.switchFsIds(OWN_UID, OWN_GID);
        }
    }

    private int change(int opcode) throws ChainException, NativeException {
        Passthrough.Inode inode = node();
        if (inode == null && opcode != Fuse.WRITE && opcode != Fuse.FSYNC && opcode != Fuse.FSYNCDIR
                && opcode != Fuse.FALLOCATE) {
            return error(Errno.EBADF);
        }
        switch (opcode) {
            case Fuse.CREATE -> {
                int n = readName(0);
                if (n < 0) {
                    return error(-n);
                }
                int guestFlags = request.argInt(Fuse.CREATE_IN_FLAGS);
                int flags = hostFlags(guestFlags);
                int mode = request.argInt(Fuse.CREATE_IN_MODE);
                creationUmask(Fuse.CREATE_IN_UMASK);
                boolean kill = (flags & O_TRUNC) != 0
                        && (request.argInt(Fuse.CREATE_IN_OPEN_FLAGS) & FUSE_OPEN_KILL_SUIDGID) != 0;
                boolean created = (flags & Passthrough.O_EXCL) != 0;
                int fd;
                if (kill && !created) {
                    // only a file that was there is truncated and loses setuid/setgid; one this
                    // CREATE makes keeps the mode the guest gave it (as on a local file system)
                    try {
                        fd = createOpen(inode, flags | Passthrough.O_EXCL, guestFlags, mode);
                        created = true;
                    } catch (NativeException e) {
                        if (e.errno() != Errno.EEXIST) {
                            throw e;
                        }
                        // an existing file, truncated: as an O_TRUNC OPEN, without CAP_FSETID
                        boolean dropped = FsIo.dropFsetid();
                        try {
                            fd = createOpen(inode, flags, guestFlags, mode);
                        } finally {
                            if (dropped) {
                                FsIo.restoreFsetid();
                            }
                        }
                    }
                } else {
                    fd = createOpen(inode, flags, guestFlags, mode);
                }
                int entry;
                try {
                    entry = entry(fd(inode), name);
                } catch (NativeException e) {
                    Native.LIBC.close(fd);
                    throw e;
                }
                long open = reply + Fuse.OUT_HEADER_SIZE + Fuse.ENTRY_OUT_SIZE;
                Native.zero(open, Fuse.OPEN_OUT_SIZE);
                Native.putLong(open + Fuse.OPEN_OUT_FH, fs.addHandle(fd));
                Native.putInt(open + Fuse.OPEN_OUT_OPEN_FLAGS, fs.cache().openFlags);
                return ok(entry + Fuse.OPEN_OUT_SIZE);
            }
            case Fuse.MKDIR, Fuse.MKNOD -> {
                int n = readName(0);
                if (n < 0) {
                    return error(-n);
                }
                creationUmask(opcode == Fuse.MKDIR ? Fuse.MKDIR_IN_UMASK : Fuse.MKNOD_IN_UMASK);
                if (opcode == Fuse.MKDIR) {
                    FsIo.mkdirat(fd(inode), name, request.argInt(Fuse.MKDIR_IN_MODE));
                } else {
                    FsIo.mknodat(fd(inode), name, request.argInt(Fuse.MKNOD_IN_MODE),
                            request.argInt(Fuse.MKNOD_IN_RDEV) & 0xffff_ffffL);
                }
                return ok(entry(fd(inode), name));
            }
            case Fuse.SYMLINK -> {
                int n = readName(0);
                if (n < 0) {
                    return error(-n);
                }
                int t = readString(n + 1, name2, false);
                if (t < 0) {
                    return error(-t);
                }
                FsIo.symlinkat(name2, fd(inode), name);
                return ok(entry(fd(inode), name));
            }
            case Fuse.LINK -> {
                Passthrough.Inode old = fs.inode(request.argLong(Fuse.LINK_IN_OLDNODEID));
                if (old == null) {
                    return error(Errno.EBADF);
                }
                int n = readName(0);
                if (n < 0) {
                    return error(-n);
                }
                FsIo.linkat(FsIo.procSelfFd(), procPath(fd(old)), fd(inode), name, FsIo.AT_SYMLINK_FOLLOW);
                return ok(entry(fd(inode), name));
            }
            case Fuse.UNLINK, Fuse.RMDIR -> {
                int n = readName(0);
                if (n < 0) {
                    return error(-n);
                }
                FsIo.unlinkat(fd(inode), name, opcode == Fuse.RMDIR ? FsIo.AT_REMOVEDIR : 0);
                return ok(0);
            }
            case Fuse.RENAME, Fuse.RENAME2 -> {
                Passthrough.Inode newDir = fs.inode(request.argLong(Fuse.RENAME_IN_NEWDIR));
                if (newDir == null) {
                    return error(Errno.EBADF);
                }
                int n = readName(0);
                if (n < 0) {
                    return error(-n);
                }
                int m = readString(n + 1, name2, true);
                if (m < 0) {
                    return error(-m);
                }
                int flags = opcode == Fuse.RENAME2 ? request.argInt(Fuse.RENAME2_IN_FLAGS) : 0;
                FsIo.renameat2(fd(inode), name, fd(newDir), name2, flags);
                return ok(0);
            }
            case Fuse.SETATTR -> {
                return setattr(inode);
            }
            case Fuse.WRITE -> {
                return writeData();
            }
            case Fuse.FSYNC, Fuse.FSYNCDIR -> {
                int fd = fs.handle(request.argLong(Fuse.FSYNC_IN_FH));
                if (fd < 0) {
                    return error(Errno.EBADF);
                }
                boolean dataOnly = (request.argInt(Fuse.FSYNC_IN_FLAGS) & 1) != 0;
                Native.check(dataOnly ? "fdatasync" : "fsync",
                        dataOnly ? Native.LIBC.fdatasync(fd) : Native.LIBC.fsync(fd));
                return ok(0);
            }
            case Fuse.SETXATTR -> {
                // with FUSE_SETXATTR_EXT agreed (--posix-acl) the argument is 16 bytes, not 8
                int extra = session.posixAcl() ? Fuse.SETXATTR_IN_SIZE - Fuse.SETXATTR_IN_COMPAT_SIZE : 0;
                int size = request.argInt(Fuse.SETXATTR_IN_SIZE_BYTES);
                int len = readString(extra, name, false);
                if (len < 0) {
                    return error(-len);
                }
                long valueAt = Fuse.IN_HEADER_SIZE + Fuse.SETXATTR_IN_COMPAT_SIZE + extra + len + 1L;
                if (size < 0 || size > 65536 || valueAt + size > request.argumentsEnd()) {
                    return error(Errno.EINVAL);
                }
                request.chain().readFromChain(valueAt, dents, size);
                boolean killSgid = extra != 0 && isAccessAcl(len)
                        && (request.argInt(Fuse.SETXATTR_IN_SETXATTR_FLAGS) & FUSE_SETXATTR_ACL_KILL_SGID) != 0;
                int refused = toHostName(len);
                if (refused != 0) {
                    return error(refused);
                }
                size = toHostValue(size); // by the host's name: after --xattrmap
                if (size < 0) {
                    return error(-size);
                }
                int flags = request.argInt(Fuse.SETXATTR_IN_FLAGS);
                if (xattrInPlace(inode)) {
                    try {
                        FsIo.setxattrAt(FsIo.procSelfFd(), procPath(fd(inode)), name, dents, size, flags);
                    } catch (NativeException e) {
                        return inPlaceFailed(e);
                    }
                } else {
                    int fd = xattrFd(inode);
                    if (fd < 0) {
                        return error(-fd);
                    }
                    try {
                        FsIo.fsetxattr(fd, name, dents, size, flags);
                    } finally {
                        Native.LIBC.close(fd);
                    }
                }
                if (killSgid) {
                    dropSetgid(inode);
                }
                return ok(0);
            }
            case Fuse.REMOVEXATTR -> {
                int len = readString(0, name, false);
                if (len < 0) {
                    return error(-len);
                }
                int refused = toHostName(len);
                if (refused != 0) {
                    return error(refused);
                }
                if (xattrInPlace(inode)) {
                    try {
                        FsIo.removexattrAt(FsIo.procSelfFd(), procPath(fd(inode)), name);
                    } catch (NativeException e) {
                        return inPlaceFailed(e);
                    }
                    return ok(0);
                }
                int fd = xattrFd(inode);
                if (fd < 0) {
                    return error(-fd);
                }
                try {
                    FsIo.fremovexattr(fd, name);
                } finally {
                    Native.LIBC.close(fd);
                }
                return ok(0);
            }
            case Fuse.COPY_FILE_RANGE -> {
                int in = fs.handle(request.argLong(Fuse.COPY_IN_FH_IN));
                int out = fs.handle(request.argLong(Fuse.COPY_IN_FH_OUT));
                if (in < 0 || out < 0) {
                    return error(Errno.EBADF);
                }
                Native.putLong(times, request.argLong(Fuse.COPY_IN_OFF_IN));
                Native.putLong(times + 8, request.argLong(Fuse.COPY_IN_OFF_OUT));
                long copied = FsIo.copyFileRange(in, times, out, times + 8, request.argLong(Fuse.COPY_IN_LEN));
                long o = reply + Fuse.OUT_HEADER_SIZE;
                Native.zero(o, Fuse.WRITE_OUT_SIZE);
                Native.putInt(o + Fuse.WRITE_OUT_SIZE_BYTES, (int) Math.min(copied, Integer.MAX_VALUE));
                return ok(Fuse.WRITE_OUT_SIZE);
            }
            case Fuse.TMPFILE -> {
                int flags = hostFlags(request.argInt(Fuse.CREATE_IN_FLAGS));
                Native.putShort(name, (short) '.'); // ".\0"
                creationUmask(Fuse.CREATE_IN_UMASK);
                int fd = FsIo.openat(fd(inode), name, (flags | O_TMPFILE) & ~(Passthrough.O_CREAT | Passthrough.O_NOCTTY),
                        request.argInt(Fuse.CREATE_IN_MODE));
                try {
                    putEntry(reply + Fuse.OUT_HEADER_SIZE, lookUpAt(FsIo.procSelfFd(), procPath(fd), FsIo.O_PATH));
                } catch (NativeException e) {
                    Native.LIBC.close(fd);
                    throw e;
                }
                long open = reply + Fuse.OUT_HEADER_SIZE + Fuse.ENTRY_OUT_SIZE;
                Native.zero(open, Fuse.OPEN_OUT_SIZE);
                Native.putLong(open + Fuse.OPEN_OUT_FH, fs.addHandle(fd));
                return ok(Fuse.ENTRY_OUT_SIZE + Fuse.OPEN_OUT_SIZE);
            }
            case Fuse.FALLOCATE -> {
                int fd = fs.handle(request.argLong(Fuse.FALLOCATE_IN_FH));
                if (fd < 0) {
                    return error(Errno.EBADF);
                }
                Native.check("fallocate", Native.LIBC.fallocate(fd, request.argInt(Fuse.FALLOCATE_IN_MODE),
                        request.argLong(Fuse.FALLOCATE_IN_OFFSET), request.argLong(Fuse.FALLOCATE_IN_LENGTH)));
                return ok(0);
            }
            default -> {
                return error(Errno.ENOSYS);
            }
        }
    }

    private static final int O_TMPFILE = 0x410000;
    private static volatile boolean umaskWarned;

    /**
     * Sets this thread's umask for the creation about to happen. With --posix-acl agreed the
     * guest sends the mode unmasked and its umask apart (FUSE_DONT_MASK): the umask is then the
     * guest's, and the host kernel applies it unless the parent has a default ACL, whose
     * inheritance decides instead (posix_acl_create), in the same syscall. Otherwise the guest
     * masked the mode already, and no umask of ours may mask it again (the process's, typically
     * 022, did before: a guest's umask 0 came out 0644). Read at {@code umaskOffset} of the argument.
     */
    private void creationUmask(int umaskOffset) {
        int mask = session.posixAcl() ? request.argInt(umaskOffset) : 0;
        if (!FsIo.setThreadUmask(mask) && !umaskWarned) {
            umaskWarned = true;
            LOG.warn("fs: this worker thread cannot have a umask of its own (unshare(CLONE_FS) refused): new "
                    + "files keep the process's umask, and the guest's umask is not applied");
        }
    }

    /** The entry_out of {@code inode} (whose stat is in {@link #stat}) at {@code out}. */
    private void putEntry(long out, Passthrough.Inode inode) {
        Native.zero(out, Fuse.ENTRY_OUT_SIZE);
        Native.putLong(out + Fuse.ENTRY_NODEID, inode.id);
        Native.putLong(out + Fuse.ENTRY_VALID, fs.cache().timeoutSeconds);
        Native.putLong(out + Fuse.ENTRY_ATTR_VALID, fs.cache().timeoutSeconds);
        fillAttr(out + Fuse.ENTRY_ATTR, stat);
    }

    /**
     * Opens {@code path} relative to {@code dirFd} with {@code openFlags} (O_PATH, never following
     * a symlink unless the caller names a /proc magic link), stats it into {@link #stat} and takes
     * it as a lookup of the inode; the descriptor is the table's or closed.
     */
    private Passthrough.Inode lookUpAt(int dirFd, long path, int openFlags) throws NativeException {
        int fd = FsIo.openat(dirFd, path, openFlags);
        long mount;
        try {
            mount = FsIo.fstatWithMountId(fd, stat, statx);
        } catch (NativeException e) {
            Native.LIBC.close(fd);
            throw e;
        }
        return fs.lookedUp(fd, stat, mount);
    }

    /**
     * A real descriptor on {@code inode} for the xattr calls (they refuse O_PATH descriptors):
     * regular files and directories only, so that no device or FIFO is opened for it. Returns
     * the fd or a negated errno; the caller closes it.
     */
    private int xattrFd(Passthrough.Inode inode) throws NativeException {
        if (!isFileOrDirectory(inode)) {
            return -Errno.ENOTSUP; // a symlink, device, FIFO or socket, on a kernel without getxattrat
        }
        return fs.reopen(fd(inode), 0 /* O_RDONLY */ | 0x800 /* O_NONBLOCK */, proc);
    }

    private boolean isFileOrDirectory(Passthrough.Inode inode) throws NativeException {
        FsIo.fstatat(fd(inode), Passthrough.emptyName(), stat, FsIo.AT_EMPTY_PATH | FsIo.AT_SYMLINK_NOFOLLOW);
        int type = Native.getInt(stat + FsIo.ST_MODE) & 0xf000;
        return type == 0x8000 || type == 0x4000;
    }

    /**
     * An *xattrat call's failure as the guest should see it: a kernel without the calls is
     * ENOTSUP for this inode (ENOSYS would make the guest give up xattrs on the whole mount).
     */
    private int inPlaceFailed(NativeException e) throws NativeException, ChainException {
        if (e.errno() == Errno.ENOSYS) {
            return error(Errno.ENOTSUP);
        }
        throw e;
    }

    /**
     * Whether the xattr calls go to the inode through its O_PATH descriptor's /proc/self/fd link
     * (getxattrat and friends, Linux 6.13+): for what must not be opened (symlinks, devices,
     * FIFOs, sockets).
     */
    private boolean xattrInPlace(Passthrough.Inode inode) throws NativeException {
        return FsIo.hasXattrAt() && !isFileOrDirectory(inode);
    }

    /**
     * GETXATTR / LISTXATTR: size 0 asks for the length; otherwise the bytes, or ERANGE. With
     * --xattrmap the host's whole list is read and rewritten first, since the guest's length
     * is only known after names are hidden and stripped.
     */
    private int getxattr(int opcode) throws ChainException, NativeException {
        Passthrough.Inode inode = node();
        if (inode == null) {
            return error(Errno.EBADF);
        }
        int size = request.argInt(Fuse.GETXATTR_SIZE_BYTES);
        if (opcode == Fuse.GETXATTR) {
            int len = readString(0, name, false);
            if (len < 0) {
                return error(-len);
            }
            int refused = toHostName(len);
            if (refused != 0) {
                // as both virtiofsds: a name the map forbids reads as absent
                return error(refused == Errno.EPERM ? ENODATA : refused);
            }
        }
        boolean mapList = opcode == Fuse.LISTXATTR && fs.xattrMap() != null;
        int room = (int) Math.min(Math.max(size, 0), Math.min(MAX_DIR_REPLY, request.chain().writableBytes() - Fuse.OUT_HEADER_SIZE));
        long dst = mapList ? dents : size == 0 ? 0 : reply + Fuse.OUT_HEADER_SIZE;
        int want = mapList ? MAX_DIR_REPLY : size == 0 ? 0 : room; // dents holds XATTR_LIST_MAX (64 KiB)
        int n;
        if (xattrInPlace(inode)) {
            try {
                long path = procPath(fd(inode));
                n = opcode == Fuse.GETXATTR ? FsIo.getxattrAt(FsIo.procSelfFd(), path, name, dst, want)
                        : FsIo.listxattrAt(FsIo.procSelfFd(), path, dst, want);
            } catch (NativeException e) {
                return inPlaceFailed(e);
            }
        } else {
            int fd = xattrFd(inode);
            if (fd < 0) {
                return error(-fd);
            }
            try {
                n = opcode == Fuse.GETXATTR ? FsIo.fgetxattr(fd, name, dst, want) : FsIo.flistxattr(fd, dst, want);
            } finally {
                Native.LIBC.close(fd);
            }
        }
        if (mapList) {
            n = toGuestList(n);
            if (size != 0) {
                if (n > room) {
                    return error(Errno.ERANGE);
                }
                Native.copy(dents, reply + Fuse.OUT_HEADER_SIZE, n);
            }
        }
        if (opcode == Fuse.GETXATTR && size != 0) {
            toGuestValue(reply + Fuse.OUT_HEADER_SIZE, n); // the length is the same either way
        }
        if (size == 0) {
            long out = reply + Fuse.OUT_HEADER_SIZE;
            Native.zero(out, Fuse.GETXATTR_OUT_SIZE);
            Native.putInt(out + Fuse.GETXATTR_SIZE_BYTES, n);
            return ok(Fuse.GETXATTR_OUT_SIZE);
        }
        return ok(n);
    }

    private static final byte[] ACCESS_ACL = "system.posix_acl_access".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    /** Whether the guest's xattr name in {@link #name} ({@code length} bytes) is the access ACL's. */
    private boolean isAccessAcl(int length) {
        if (length != ACCESS_ACL.length) {
            return false;
        }
        for (int i = 0; i < length; i++) {
            if (Native.getByte(name + i) != ACCESS_ACL[i]) {
                return false;
            }
        }
        return true;
    }

    /**
     * After the guest set an access ACL for a caller outside the file's group
     * (FUSE_SETXATTR_ACL_KILL_SGID): the setgid bit goes, as posix_acl_update_mode takes it
     * from such a caller. The host kernel kept it (we set the ACL as root, with CAP_FSETID);
     * the rest of the mode it already made match the ACL.
     */
    private void dropSetgid(Passthrough.Inode inode) throws NativeException {
        FsIo.fstatat(fd(inode), Passthrough.emptyName(), stat, FsIo.AT_EMPTY_PATH | FsIo.AT_SYMLINK_NOFOLLOW);
        int mode = Native.getInt(stat + FsIo.ST_MODE);
        if ((mode & S_ISGID) != 0 && (mode & S_IFMT) != 0xa000) {
            FsIo.fchmodat(FsIo.procSelfFd(), procPath(fd(inode)), mode & 07777 & ~S_ISGID, 0);
        }
    }

    /** Not in {@link Errno}: "no such attribute", what getxattr(2) answers for an absent name. */
    private static final int ENODATA = 61;

    /**
     * Replaces the guest's xattr name in {@link #name} ({@code length} bytes) by the host's, as
     * --xattrmap says; returns 0, or the errno refusing the name.
     */
    private int toHostName(int length) {
        XattrMap map = fs.xattrMap();
        if (map == null) {
            return 0;
        }
        if (length == 0) {
            return Errno.ERANGE; // as the kernel answers an empty name; no map may give it a host name
        }
        byte[] guest = new byte[length];
        Native.copyToArray(name, guest, 0, length);
        XattrMap.HostName host = map.toHost(guest);
        if (host.errno() != 0) {
            return host.errno();
        }
        if (host.name().length > NAME_MAX) {
            return Errno.ERANGE; // what the kernel answers for a name over XATTR_NAME_MAX
        }
        Native.copyFromArray(host.name(), 0, name, host.name().length);
        Native.putByte(name + host.name().length, (byte) 0);
        return 0;
    }

    /**
     * With --translate-uid/--translate-gid: the ids inside the guest's value of {@code size} bytes
     * in {@link #dents} made the host's, for the host name in {@link #name}; the value's size
     * then (a capability without rootid grows into one with), or -errno refusing the value (see
     * {@link XattrIds#toHost}).
     */
    private int toHostValue(int size) {
        if (fs.uidMap().isIdentity() && fs.gidMap().isIdentity()) {
            return size;
        }
        XattrIds.Kind kind = XattrIds.kindOf(name);
        if (kind == XattrIds.Kind.CAPABILITY) {
            size = XattrIds.widenCapability(dents, size, fs.uidMap());
            if (size < 0) {
                return size;
            }
        }
        int refused = kind == null ? 0 : XattrIds.toHost(kind, dents, size, fs.uidMap(), fs.gidMap());
        return refused != 0 ? -refused : size;
    }

    /**
     * With --translate-uid/--translate-gid: the ids inside the host's value of {@code size} bytes
     * at {@code value} made the guest's, for the host name in {@link #name}.
     */
    private void toGuestValue(long value, int size) {
        if (fs.uidMap().isIdentity() && fs.gidMap().isIdentity()) {
            return;
        }
        XattrIds.Kind kind = XattrIds.kindOf(name);
        if (kind != null) {
            XattrIds.toGuest(kind, value, size, fs.uidMap(), fs.gidMap());
        }
    }

    /** Rewrites the host's list of {@code length} bytes in {@link #dents} as the guest sees it; its new length. */
    private int toGuestList(int length) {
        byte[] list = new byte[length];
        Native.copyToArray(dents, list, 0, length);
        int n = fs.xattrMap().toGuestList(list, length);
        Native.copyFromArray(list, 0, dents, n);
        return n;
    }

    private int access() throws ChainException, NativeException {
        Passthrough.Inode inode = node();
        if (inode == null) {
            return error(Errno.EBADF);
        }
        FsIo.faccessat(FsIo.procSelfFd(), procPath(fd(inode)), request.argInt(Fuse.ACCESS_IN_MASK), 0);
        return ok(0);
    }

    private int lseek() throws ChainException, NativeException {
        int fd = fs.handle(request.argLong(Fuse.LSEEK_IN_FH));
        if (fd < 0) {
            return error(Errno.EBADF);
        }
        long at = FsIo.lseek(fd, request.argLong(Fuse.LSEEK_IN_OFFSET), request.argInt(Fuse.LSEEK_IN_WHENCE));
        Native.putLong(reply + Fuse.OUT_HEADER_SIZE, at);
        return ok(Fuse.LSEEK_OUT_SIZE);
    }

    private int syncfs() throws ChainException, NativeException {
        Passthrough.Inode inode = node();
        if (inode == null) {
            return error(Errno.EBADF);
        }
        int fd = fs.reopen(fd(inode), 0x800 /* O_RDONLY|O_NONBLOCK */, proc);
        try {
            FsIo.syncfs(fd);
        } finally {
            Native.LIBC.close(fd);
        }
        return ok(0);
    }

    /** Looks {@code entryName} up in {@code parent} into the reply's entry_out; returns its size. */
    private int entry(int parent, long entryName) throws NativeException {
        putEntry(reply + Fuse.OUT_HEADER_SIZE, lookUpAt(parent, entryName, FsIo.O_PATH | FsIo.O_NOFOLLOW));
        return Fuse.ENTRY_OUT_SIZE;
    }

    private static final int FATTR_MODE = 1;
    private static final int FATTR_UID = 2;
    private static final int FATTR_GID = 4;
    private static final int FATTR_SIZE = 8;
    private static final int FATTR_ATIME = 16;
    private static final int FATTR_MTIME = 32;
    private static final int FATTR_FH = 64;
    private static final int FATTR_ATIME_NOW = 128;
    private static final int FATTR_MTIME_NOW = 256;
    private static final long UTIME_NOW = (1L << 30) - 1;
    private static final long UTIME_OMIT = (1L << 30) - 2;

    private int setattr(Passthrough.Inode inode) throws ChainException, NativeException {
        int valid = request.argInt(Fuse.SETATTR_IN_VALID);
        // the owner first: a forbidden id refuses the whole request before anything changed
        long uid = (valid & FATTR_UID) != 0 ? fs.uidMap().toHost(request.argInt(Fuse.SETATTR_IN_UID)) : 0xffff_ffffL;
        long gid = (valid & FATTR_GID) != 0 ? fs.gidMap().toHost(request.argInt(Fuse.SETATTR_IN_GID)) : 0xffff_ffffL;
        if (uid == IdMap.FORBIDDEN || gid == IdMap.FORBIDDEN) {
            return error(Errno.EPERM);
        }
        int handle = (valid & FATTR_FH) != 0 ? fs.handle(request.argLong(Fuse.SETATTR_IN_FH)) : -1;
        if ((valid & FATTR_MODE) != 0) {
            FsIo.fchmodat(FsIo.procSelfFd(), procPath(fd(inode)), request.argInt(Fuse.SETATTR_IN_MODE), 0);
        }
        // a chown or truncation by an unprivileged guest caller (killpriv_v2): done without
        // CAP_FSETID, so that the kernel clears setuid/setgid as for that caller, in the same call
        boolean dropped = (valid & FATTR_KILL_SUIDGID) != 0 && (valid & (FATTR_SIZE | FATTR_UID | FATTR_GID)) != 0
                && FsIo.dropFsetid();
        try {
            chownAndTruncate(inode, valid, uid, gid, handle);
        } finally {
            if (dropped) {
                FsIo.restoreFsetid();
            }
        }
        if ((valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) != 0) {
            putTime(times, valid, FATTR_ATIME, FATTR_ATIME_NOW, Fuse.SETATTR_IN_ATIME, Fuse.SETATTR_IN_ATIMENSEC);
            putTime(times + 16, valid, FATTR_MTIME, FATTR_MTIME_NOW, Fuse.SETATTR_IN_MTIME, Fuse.SETATTR_IN_MTIMENSEC);
            FsIo.utimensat(FsIo.procSelfFd(), procPath(fd(inode)), times, 0);
        }
        return getattr();
    }

    private void chownAndTruncate(Passthrough.Inode inode, int valid, long uid, long gid, int handle)
            throws NativeException {
        if ((valid & (FATTR_UID | FATTR_GID)) != 0) {
            FsIo.fchownat(fd(inode), Passthrough.emptyName(), (int) uid, (int) gid,
                    FsIo.AT_EMPTY_PATH | FsIo.AT_SYMLINK_NOFOLLOW);
        }
        if ((valid & FATTR_SIZE) != 0) {
            long size = request.argLong(Fuse.SETATTR_IN_SIZE_BYTES);
            if (handle >= 0) {
                Native.check("ftruncate", Native.LIBC.ftruncate(handle, size));
            } else {
                int tmp = fs.reopen(fd(inode), 1 /* O_WRONLY */, proc);
                try {
                    Native.check("ftruncate", Native.LIBC.ftruncate(tmp, size));
                } finally {
                    Native.LIBC.close(tmp);
                }
            }
        }
    }

    private void putTime(long ts, int valid, int set, int now, int secOffset, int nsecOffset) {
        if ((valid & now) != 0) {
            Native.putLong(ts, 0);
            Native.putLong(ts + 8, UTIME_NOW);
        } else if ((valid & set) != 0) {
            Native.putLong(ts, request.argLong(secOffset));
            Native.putLong(ts + 8, request.argInt(nsecOffset) & 0xffff_ffffL);
        } else {
            Native.putLong(ts, 0);
            Native.putLong(ts + 8, UTIME_OMIT);
        }
    }

    /** WRITE: pwritev straight from the guest's buffers after the write_in argument. */
    private int writeData() throws ChainException, NativeException {
        int fd = fs.handle(request.argLong(Fuse.WRITE_IN_FH));
        if (fd < 0) {
            return error(Errno.EBADF);
        }
        long from = Fuse.IN_HEADER_SIZE + Fuse.WRITE_IN_SIZE;
        long size = request.argInt(Fuse.WRITE_IN_SIZE_BYTES) & 0xffff_ffffL;
        if (from + size > request.argumentsEnd()) {
            return error(Errno.EINVAL);
        }
        long done = 0;
        if (size > 0) {
            int n = request.chain().toIovecs(false, from, size, iov, FileIo.IOV_MAX);
            // the Linux driver sets the flag with killpriv_v2, and on every direct-I/O write,
            // agreed or not: written without CAP_FSETID, the kernel clears setuid/setgid itself
            boolean dropped = (request.argInt(Fuse.WRITE_IN_WRITE_FLAGS) & FUSE_WRITE_KILL_SUIDGID) != 0
                    && FsIo.dropFsetid();
            try {
                done = transfer(false, fd, iov, n, request.argLong(Fuse.WRITE_IN_OFFSET));
            } finally {
                if (dropped) {
                    FsIo.restoreFsetid();
                }
            }
        }
        long out = reply + Fuse.OUT_HEADER_SIZE;
        Native.zero(out, Fuse.WRITE_OUT_SIZE);
        Native.putInt(out + Fuse.WRITE_OUT_SIZE_BYTES, (int) done);
        return ok(Fuse.WRITE_OUT_SIZE);
    }

    private void fillAttr(long attr, long st) {
        Native.putLong(attr + Fuse.ATTR_INO, Native.getLong(st + FsIo.ST_INO));
        Native.putLong(attr + Fuse.ATTR_SIZE_BYTES, Native.getLong(st + FsIo.ST_SIZE));
        Native.putLong(attr + Fuse.ATTR_BLOCKS, Native.getLong(st + FsIo.ST_BLOCKS));
        Native.putLong(attr + Fuse.ATTR_ATIME, Native.getLong(st + FsIo.ST_ATIME));
        Native.putLong(attr + Fuse.ATTR_MTIME, Native.getLong(st + FsIo.ST_MTIME));
        Native.putLong(attr + Fuse.ATTR_CTIME, Native.getLong(st + FsIo.ST_CTIME));
        Native.putInt(attr + Fuse.ATTR_ATIMENSEC, (int) Native.getLong(st + FsIo.ST_ATIME_NSEC));
        Native.putInt(attr + Fuse.ATTR_MTIMENSEC, (int) Native.getLong(st + FsIo.ST_MTIME_NSEC));
        Native.putInt(attr + Fuse.ATTR_CTIMENSEC, (int) Native.getLong(st + FsIo.ST_CTIME_NSEC));
        Native.putInt(attr + Fuse.ATTR_MODE, Native.getInt(st + FsIo.ST_MODE));
        Native.putInt(attr + Fuse.ATTR_NLINK, (int) Native.getLong(st + FsIo.ST_NLINK));
        Native.putInt(attr + Fuse.ATTR_UID, fs.uidMap().toGuest(Native.getInt(st + FsIo.ST_UID)));
        Native.putInt(attr + Fuse.ATTR_GID, fs.gidMap().toGuest(Native.getInt(st + FsIo.ST_GID)));
        Native.putInt(attr + Fuse.ATTR_RDEV, (int) Native.getLong(st + FsIo.ST_RDEV));
        Native.putInt(attr + Fuse.ATTR_BLKSIZE, (int) Native.getLong(st + FsIo.ST_BLKSIZE));
    }

    /**
     * FUSE_INIT: a major above ours gets our version only, so that the driver retries with 7
     * (as libfuse does); a minor below {@link Fuse#MIN_MINOR} is refused; otherwise the lower
     * minor wins and the flags are those both sides have.
     */
    private int init() throws ChainException {
        int major = request.argInt(Fuse.INIT_IN_MAJOR);
        int minor = request.argInt(Fuse.INIT_IN_MINOR);
        long out = reply + Fuse.OUT_HEADER_SIZE;
        Native.zero(out, Fuse.INIT_OUT_SIZE);
        Native.putInt(out + Fuse.INIT_OUT_MAJOR, Fuse.KERNEL_VERSION);
        Native.putInt(out + Fuse.INIT_OUT_MINOR, Fuse.KERNEL_MINOR_VERSION);
        if (major > Fuse.KERNEL_VERSION) {
            return ok(8); // FUSE_COMPAT_INIT_OUT_SIZE: major and minor only
        }
        if (major < Fuse.KERNEL_VERSION || minor < Fuse.MIN_MINOR) {
            LOG.error("FUSE {}.{} from the guest: vhostj speaks 7.{} down to 7.{}", major, minor,
                    Fuse.KERNEL_MINOR_VERSION, Fuse.MIN_MINOR);
            return error(Errno.EPROTO);
        }
        int agreed = Math.min(minor, Fuse.KERNEL_MINOR_VERSION);
        int guestFlags = request.argInt(Fuse.INIT_IN_FLAGS);
        // flags2 only means something with FUSE_INIT_EXT (a 7.36+ driver)
        int guestFlags2 = (guestFlags & FUSE_INIT_EXT) != 0 ? request.argInt(Fuse.INIT_IN_FLAGS2) : 0;
        int offered = fs != null && fs.readdirplus() ? OFFERED_FLAGS
                : OFFERED_FLAGS & ~(FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO);
        // the supplementary group only means something when we act as the caller (as root)
        int offered2 = SWITCH_IDS ? FUSE_CREATE_SUPP_GROUP2 : 0;
        FsOptions.Features asked = fs == null ? FsOptions.Features.NONE : fs.features();
        if (fs != null && fs.announceSubmounts()) {
            offered |= FUSE_SUBMOUNTS;
        }
        if (asked.writeback()) {
            offered |= FUSE_WRITEBACK_CACHE;
        }
        if (asked.killprivV2()) {
            offered |= FUSE_HANDLE_KILLPRIV_V2;
        }
        // ACLs the guest enforces need all three: its creations unmasked (we apply the umask it
        // sends), and the 16-byte SETXATTR that carries "drop the setgid bit" (as virtiofsd)
        boolean acl = asked.posixAcl() && (guestFlags & POSIX_ACL_FLAGS) == POSIX_ACL_FLAGS;
        if (acl) {
            offered |= POSIX_ACL_FLAGS;
        }
        if (asked.allowMmap()) {
            offered2 |= FUSE_DIRECT_IO_ALLOW_MMAP2;
        }
        int flags = guestFlags & offered;
        int flags2 = guestFlags2 & offered2;
        if ((guestFlags & FUSE_INIT_EXT) != 0) {
            flags |= FUSE_INIT_EXT;
        }
        session.submounts((flags & FUSE_SUBMOUNTS) != 0);
        session.agreed((flags & FUSE_WRITEBACK_CACHE) != 0, acl);
        String missing = (asked.writeback() && (flags & FUSE_WRITEBACK_CACHE) == 0 ? " writeback" : "")
                + (asked.posixAcl() && !acl ? " posix-acl" : "")
                + (asked.killprivV2() && (flags & FUSE_HANDLE_KILLPRIV_V2) == 0 ? " killpriv-v2" : "")
                + (asked.allowMmap() && (flags2 & FUSE_DIRECT_IO_ALLOW_MMAP2) == 0 ? " allow-mmap" : "");
        if (!missing.isEmpty()) {
            LOG.warn("FUSE INIT: asked for{}, but the guest's driver does not offer it; going on without", missing);
        }
        Native.putInt(out + Fuse.INIT_OUT_FLAGS2, flags2);
        Native.putInt(out + Fuse.INIT_OUT_MINOR, agreed);
        Native.putInt(out + Fuse.INIT_OUT_MAX_READAHEAD, request.argInt(Fuse.INIT_IN_MAX_READAHEAD));
        Native.putInt(out + Fuse.INIT_OUT_FLAGS, flags);
        Native.putShort(out + Fuse.INIT_OUT_MAX_BACKGROUND, (short) 64);
        Native.putShort(out + Fuse.INIT_OUT_CONGESTION_THRESHOLD, (short) 48);
        Native.putInt(out + Fuse.INIT_OUT_MAX_WRITE, MAX_WRITE);
        Native.putInt(out + Fuse.INIT_OUT_TIME_GRAN, 1);
        Native.putShort(out + Fuse.INIT_OUT_MAX_PAGES, (short) MAX_PAGES);
        session.initialized(agreed);
        LOG.info("FUSE session 7.{} (guest 7.{}), flags 0x{}{}", agreed, minor,
                Long.toHexString((flags & 0xffff_ffffL) | (long) flags2 << 32), agreedFeatures(flags, flags2));
        return ok(Fuse.INIT_OUT_SIZE);
    }

    /** The optional features INIT agreed, for its log line: "" or ", with writeback, ...". */
    private static String agreedFeatures(int flags, int flags2) {
        String names = ((flags & FUSE_WRITEBACK_CACHE) != 0 ? ", writeback" : "")
                + ((flags & FUSE_POSIX_ACL) != 0 ? ", posix-acl" : "")
                + ((flags & FUSE_HANDLE_KILLPRIV_V2) != 0 ? ", killpriv-v2" : "")
                + ((flags2 & FUSE_DIRECT_IO_ALLOW_MMAP2) != 0 ? ", allow-mmap" : "")
                + ((flags & FUSE_SUBMOUNTS) != 0 ? ", submounts" : "");
        return names.isEmpty() ? "" : " (with " + names.substring(2) + ")";
    }

    private void forget(int opcode) throws ChainException {
        if (opcode == Fuse.FORGET) {
            fs.forget(request.nodeId(), request.argLong(Fuse.FORGET_IN_NLOOKUP));
            return;
        }
        long count = request.argInt(Fuse.BATCH_FORGET_IN_COUNT) & 0xffff_ffffL;
        long from = Fuse.IN_HEADER_SIZE + Fuse.BATCH_FORGET_IN_SIZE;
        long fits = (request.chain().readableBytes() - from) / Fuse.FORGET_ONE_SIZE;
        for (long i = 0; i < Math.min(count, fits); i++) {
            request.chain().readFromChain(from + i * Fuse.FORGET_ONE_SIZE, stat, Fuse.FORGET_ONE_SIZE);
            fs.forget(Native.getLong(stat + Fuse.FORGET_ONE_NODEID), Native.getLong(stat + Fuse.FORGET_ONE_NLOOKUP));
        }
    }

    /** Sends the out-header and {@code payload} bytes prepared after it in {@link #reply}. */
    private int ok(int payload) throws ChainException {
        return send(0, payload, true);
    }

    private int error(int errno) throws ChainException {
        return send(-errno, 0, true);
    }

    /** {@code copy}: the payload is in {@link #reply}; otherwise it is already in the chain (READ). */
    private int send(int error, int payload, boolean copy) throws ChainException {
        DescriptorChain chain = request.chain();
        int length = (int) Math.min(Fuse.OUT_HEADER_SIZE + (long) payload, chain.writableBytes());
        Native.putInt(reply + Fuse.OUT_LEN, length);
        Native.putInt(reply + Fuse.OUT_ERROR, error);
        Native.putLong(reply + Fuse.OUT_UNIQUE, request.unique());
        chain.writeToChain(0, reply, copy ? length : Fuse.OUT_HEADER_SIZE);
        return length;
    }

    @Override
    public void close() {
        request.close();
        Native.free(reply);
        Native.free(name);
        Native.free(name2);
        Native.free(proc);
        Native.free(times);
        Native.free(stat);
        Native.free(statx);
        Native.free(dents);
        Native.free(iov);
        Native.free(flock);
        if (lockSignal != null) {
            lockSignal.close();
        }
    }
}
