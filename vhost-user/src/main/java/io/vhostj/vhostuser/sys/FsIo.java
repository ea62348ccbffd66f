package io.vhostj.vhostuser.sys;

/**
 * The calls a passthrough file system makes, with names as NUL-terminated bytes in native
 * memory (a guest's names need not be valid UTF-8) and results in caller-owned native buffers.
 */
public final class FsIo {
    public static final int AT_FDCWD = -100;
    public static final int AT_SYMLINK_NOFOLLOW = 0x100;
    public static final int AT_EMPTY_PATH = 0x1000;
    public static final int O_PATH = 0x200000;
    public static final int O_NOFOLLOW = 0x20000;
    public static final int O_DIRECTORY = 0x10000;
    public static final int O_CLOEXEC = 0x80000;

    // x86_64 struct stat (144 bytes)
    public static final int STAT_SIZE = 144;
    public static final int ST_DEV = 0;
    public static final int ST_INO = 8;
    public static final int ST_NLINK = 16;
    public static final int ST_MODE = 24;
    public static final int ST_UID = 28;
    public static final int ST_GID = 32;
    public static final int ST_RDEV = 40;
    public static final int ST_SIZE = 48;
    public static final int ST_BLKSIZE = 56;
    public static final int ST_BLOCKS = 64;
    public static final int ST_ATIME = 72;
    public static final int ST_ATIME_NSEC = 80;
    public static final int ST_MTIME = 88;
    public static final int ST_MTIME_NSEC = 96;
    public static final int ST_CTIME = 104;
    public static final int ST_CTIME_NSEC = 112;

    // x86_64 struct statfs (120 bytes)
    public static final int STATFS_SIZE = 120;
    public static final int F_BSIZE = 8;
    public static final int F_BLOCKS = 16;
    public static final int F_BFREE = 24;
    public static final int F_BAVAIL = 32;
    public static final int F_FILES = 40;
    public static final int F_FFREE = 48;
    public static final int F_NAMELEN = 64;
    public static final int F_FRSIZE = 72;
    /** The mount's flags, ST_* (statfs(2): what statvfs's f_flag reports). */
    public static final int F_FLAGS = 80;

    // struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[]
    public static final int D_INO = 0;
    public static final int D_OFF = 8;
    public static final int D_RECLEN = 16;
    public static final int D_TYPE = 18;
    public static final int D_NAME = 19;

    private static final long SYS_GETDENTS64 = 217;

    private FsIo() {
    }

    /**
     * A descriptor of {@code /proc/self/fd}, opened on first use. An O_PATH descriptor is reopened
     * for reading or writing with {@code openat(procSelfFd(), "N")}; opening it before a sandbox
     * hides /proc keeps that working inside one (virtiofsd does the same).
     */
    public static int procSelfFd() {
        return ProcSelfFd.FD;
    }

    private static final class ProcSelfFd {
        static final int FD = Native.LIBC.open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    }

    /** Writes descriptor {@code fd}'s name in {@link #procSelfFd()} ("N", NUL-terminated) at {@code buf}. */
    public static long procFdName(int fd, long buf) {
        byte[] digits = Integer.toString(fd).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        Native.copyFromArray(digits, 0, buf, digits.length);
        Native.putByte(buf + digits.length, (byte) 0);
        return buf;
    }

    /** openat(2); {@code name} is the address of a NUL-terminated name. Returns the new fd. */
    public static int openat(int dirfd, long name, int flags) throws NativeException {
        while (true) {
            int fd = Native.LIBC.openat(dirfd, name, flags | O_CLOEXEC, 0);
            if (fd >= 0) {
                return fd;
            }
            int errno = Native.errno();
            if (errno != Errno.EINTR) {
                throw new NativeException("openat", errno);
            }
        }
    }

    /** openat(2) with a creation mode (O_CREAT). */
    public static int openat(int dirfd, long name, int flags, int mode) throws NativeException {
        while (true) {
            int fd = Native.LIBC.openat(dirfd, name, flags | O_CLOEXEC, mode);
            if (fd >= 0) {
                return fd;
            }
            int errno = Native.errno();
            if (errno != Errno.EINTR) {
                throw new NativeException("openat", errno);
            }
        }
    }

    public static final int AT_REMOVEDIR = 0x200;
    public static final int AT_SYMLINK_FOLLOW = 0x400;

    public static void mkdirat(int dirfd, long name, int mode) throws NativeException {
        Native.check("mkdirat", Native.LIBC.mkdirat(dirfd, name, mode));
    }

    public static void mknodat(int dirfd, long name, int mode, long dev) throws NativeException {
        Native.check("mknodat", Native.LIBC.mknodat(dirfd, name, mode, dev));
    }

    public static void unlinkat(int dirfd, long name, int flags) throws NativeException {
        Native.check("unlinkat", Native.LIBC.unlinkat(dirfd, name, flags));
    }

    public static void renameat2(int olddir, long oldname, int newdir, long newname, int flags) throws NativeException {
        Native.check("renameat2", Native.LIBC.renameat2(olddir, oldname, newdir, newname, flags));
    }

    public static void symlinkat(long target, int dirfd, long name) throws NativeException {
        Native.check("symlinkat", Native.LIBC.symlinkat(target, dirfd, name));
    }

    /** readlinkat(2): returns the target's length (not NUL-terminated in {@code buf}). */
    public static int readlinkat(int dirfd, long name, long buf, int size) throws NativeException {
        return (int) Native.check("readlinkat", Native.LIBC.readlinkat(dirfd, name, buf, size));
    }

    public static void linkat(int olddir, long oldname, int newdir, long newname, int flags) throws NativeException {
        Native.check("linkat", Native.LIBC.linkat(olddir, oldname, newdir, newname, flags));
    }

    public static void fchmodat(int dirfd, long name, int mode, int flags) throws NativeException {
        Native.check("fchmodat", Native.LIBC.fchmodat(dirfd, name, mode, flags));
    }

    public static void fchownat(int dirfd, long name, int uid, int gid, int flags) throws NativeException {
        Native.check("fchownat", Native.LIBC.fchownat(dirfd, name, uid, gid, flags));
    }

    /** utimensat(2); {@code times} is two struct timespec (16 bytes each) or 0 for now. */
    public static void utimensat(int dirfd, long name, long times, int flags) throws NativeException {
        Native.check("utimensat", Native.LIBC.utimensat(dirfd, name, times, flags));
    }

    /** fstatat(2) into {@code stat} (a {@link #STAT_SIZE}-byte buffer). */
    public static void fstatat(int dirfd, long name, long stat, int flags) throws NativeException {
        Native.check("fstatat", Native.LIBC.fstatat(dirfd, name, stat, flags));
    }

    /** fstatfs(2) into {@code buf} (a {@link #STATFS_SIZE}-byte buffer). */
    // struct statx (256 bytes), the fields we read
    public static final int STATX_SIZE = 256;
    private static final int STX_BLKSIZE = 4;
    private static final int STX_NLINK = 16;
    private static final int STX_UID = 20;
    private static final int STX_GID = 24;
    private static final int STX_MODE = 28;
    private static final int STX_INO = 32;
    private static final int STX_SIZE = 40;
    private static final int STX_BLOCKS = 48;
    private static final int STX_ATIME = 64; // struct statx_timestamp: s64 tv_sec, u32 tv_nsec, s32 pad
    private static final int STX_CTIME = 96;
    private static final int STX_MTIME = 112;
    private static final int STX_RDEV_MAJOR = 128;
    private static final int STX_DEV_MAJOR = 136;
    private static final int STX_MNT_ID = 144;
    private static final int STATX_BASIC_STATS = 0x7ff;
    private static final int STATX_MNT_ID = 0x1000;

    /**
     * statx(2) of {@code fd} itself, written into {@code stat} in struct stat's layout (what the
     * rest reads), with {@code statx} as 256 bytes of scratch; returns the id of the mount the
     * inode was reached through (0 where the kernel predates STATX_MNT_ID, 5.8).
     */
    public static long fstatWithMountId(int fd, long stat, long statx) throws NativeException {
        Native.check("statx", Native.LIBC.statx(fd, EMPTY, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
                STATX_BASIC_STATS | STATX_MNT_ID, statx));
        Native.putLong(stat + ST_DEV, makedev(Native.getInt(statx + STX_DEV_MAJOR),
                Native.getInt(statx + STX_DEV_MAJOR + 4)));
        Native.putLong(stat + ST_INO, Native.getLong(statx + STX_INO));
        Native.putLong(stat + ST_NLINK, Native.getInt(statx + STX_NLINK) & 0xffff_ffffL);
        Native.putInt(stat + ST_MODE, Native.getShort(statx + STX_MODE) & 0xffff);
        Native.putInt(stat + ST_UID, Native.getInt(statx + STX_UID));
        Native.putInt(stat + ST_GID, Native.getInt(statx + STX_GID));
        Native.putLong(stat + ST_RDEV, makedev(Native.getInt(statx + STX_RDEV_MAJOR),
                Native.getInt(statx + STX_RDEV_MAJOR + 4)));
        Native.putLong(stat + ST_SIZE, Native.getLong(statx + STX_SIZE));
        Native.putLong(stat + ST_BLKSIZE, Native.getInt(statx + STX_BLKSIZE) & 0xffff_ffffL);
        Native.putLong(stat + ST_BLOCKS, Native.getLong(statx + STX_BLOCKS));
        copyTime(statx + STX_ATIME, stat + ST_ATIME);
        copyTime(statx + STX_MTIME, stat + ST_MTIME);
        copyTime(statx + STX_CTIME, stat + ST_CTIME);
        return (Native.getInt(statx) & STATX_MNT_ID) != 0 ? Native.getLong(statx + STX_MNT_ID) : 0;
    }

    private static void copyTime(long from, long to) {
        Native.putLong(to, Native.getLong(from));
        Native.putLong(to + 8, Native.getInt(from + 8) & 0xffff_ffffL);
    }

    /** glibc's makedev: the dev_t that stat(2) reports for a major and minor. */
    static long makedev(int major, int minor) {
        long ma = major & 0xffff_ffffL;
        long mi = minor & 0xffff_ffffL;
        return ((ma & 0xffff_f000L) << 32) | ((ma & 0xfffL) << 8) | ((mi & 0xffff_ff00L) << 12) | (mi & 0xffL);
    }

    public static void fstatfs(int fd, long buf) throws NativeException {
        Native.check("fstatfs", Native.LIBC.fstatfs(fd, buf));
    }

    /** getdents64(2): fills {@code buf} with linux_dirent64 records; returns the bytes used, 0 at the end. */
    public static int getdents64(int fd, long buf, int size) throws NativeException {
        long n = Native.LIBC.syscall(SYS_GETDENTS64, fd, buf, size, 0, 0, 0);
        if (n < 0) {
            throw new NativeException("getdents64", Native.errno());
        }
        return (int) n;
    }

    /** lseek(2) to an absolute position (a directory offset from getdents64's d_off). */
    public static void seek(int fd, long offset) throws NativeException {
        Native.check("lseek", Native.LIBC.lseek(fd, offset, 0));
    }

    private static final int RLIMIT_NOFILE = 7;

    /** setrlimit(RLIMIT_NOFILE) with soft = hard = {@code n}. */
    public static void setOpenFileLimit(long n) throws NativeException {
        long rlim = Native.scratch() + 2048;
        Native.putLong(rlim, n);
        Native.putLong(rlim + 8, n);
        Native.check("setrlimit(RLIMIT_NOFILE)", Native.LIBC.setrlimit(RLIMIT_NOFILE, rlim));
    }

    /** fgetxattr(2): the value's length (0 {@code size}: the length it needs). */
    public static int fgetxattr(int fd, long name, long value, int size) throws NativeException {
        return (int) Native.check("fgetxattr", Native.LIBC.fgetxattr(fd, name, value, size));
    }

    public static void fsetxattr(int fd, long name, long value, int size, int flags) throws NativeException {
        Native.check("fsetxattr", Native.LIBC.fsetxattr(fd, name, value, size, flags));
    }

    /** flistxattr(2): the list's length (0 {@code size}: the length it needs). */
    public static int flistxattr(int fd, long list, int size) throws NativeException {
        return (int) Native.check("flistxattr", Native.LIBC.flistxattr(fd, list, size));
    }

    public static void fremovexattr(int fd, long name) throws NativeException {
        Native.check("fremovexattr", Native.LIBC.fremovexattr(fd, name));
    }

    // Linux 6.13's xattr calls on a path relative to a descriptor. Given the /proc/self/fd
    // directory and an O_PATH descriptor's number, they reach that inode through the magic link
    // (not followed further), so symlinks, devices, FIFOs and sockets get xattrs without being
    // opened and without a chdir (AT_EMPTY_PATH would refuse an O_PATH descriptor).
    private static final long SYS_SETXATTRAT = 463;
    private static final long SYS_GETXATTRAT = 464;
    private static final long SYS_LISTXATTRAT = 465;
    private static final long SYS_REMOVEXATTRAT = 466;
    /** struct xattr_args: u64 value, u32 size, u32 flags. */
    private static final int XATTR_ARGS_SIZE = 16;
    private static final ThreadLocal<Long> XATTR_ARGS = ThreadLocal.withInitial(() -> Native.allocate(XATTR_ARGS_SIZE));
    private static volatile boolean xattrAtMissing;

    /** Whether the kernel has getxattrat and friends (6.13 and later); false once one said ENOSYS. */
    public static boolean hasXattrAt() {
        return !xattrAtMissing;
    }

    private static long xattrAt(String call, long rc) throws NativeException {
        if (rc < 0 && Native.errno() == Errno.ENOSYS) {
            xattrAtMissing = true;
        }
        return Native.check(call, rc);
    }

    /** getxattrat(dirfd, path, 0): the value's length (0 {@code size}: the length it needs). */
    public static int getxattrAt(int dirfd, long path, long name, long value, int size) throws NativeException {
        long args = XATTR_ARGS.get();
        Native.putLong(args, value);
        Native.putInt(args + 8, size);
        Native.putInt(args + 12, 0);
        return (int) xattrAt("getxattrat", Native.LIBC.syscall(SYS_GETXATTRAT, dirfd, path, 0, name, args,
                XATTR_ARGS_SIZE));
    }

    public static void setxattrAt(int dirfd, long path, long name, long value, int size, int flags)
            throws NativeException {
        long args = XATTR_ARGS.get();
        Native.putLong(args, value);
        Native.putInt(args + 8, size);
        Native.putInt(args + 12, flags);
        xattrAt("setxattrat", Native.LIBC.syscall(SYS_SETXATTRAT, dirfd, path, 0, name, args, XATTR_ARGS_SIZE));
    }

    /** listxattrat(dirfd, path, 0): the list's length (0 {@code size}: the length it needs). */
    public static int listxattrAt(int dirfd, long path, long list, int size) throws NativeException {
        return (int) xattrAt("listxattrat", Native.LIBC.syscall(SYS_LISTXATTRAT, dirfd, path, 0, list, size, 0));
    }

    public static void removexattrAt(int dirfd, long path, long name) throws NativeException {
        xattrAt("removexattrat", Native.LIBC.syscall(SYS_REMOVEXATTRAT, dirfd, path, 0, name, 0, 0));
    }

    public static void faccessat(int dirfd, long name, int mode, int flags) throws NativeException {
        Native.check("faccessat", Native.LIBC.faccessat(dirfd, name, mode, flags));
    }

    public static void syncfs(int fd) throws NativeException {
        Native.check("syncfs", Native.LIBC.syncfs(fd));
    }

    /** copy_file_range(2) with offsets in native memory ({@code offIn}, {@code offOut}: addresses of s64). */
    public static long copyFileRange(int fdIn, long offIn, int fdOut, long offOut, long length) throws NativeException {
        return Native.check("copy_file_range", Native.LIBC.copy_file_range(fdIn, offIn, fdOut, offOut, length, 0));
    }

    public static long lseek(int fd, long offset, int whence) throws NativeException {
        return Native.check("lseek", Native.LIBC.lseek(fd, offset, whence));
    }

    private static final long SYS_CAPGET = 125;
    private static final long SYS_CAPSET = 126;
    private static final int CAPABILITY_VERSION_3 = 0x20080522;
    private static final int CAP_FSETID = 4;

    /** This thread's capabilities as capget first gave them, and the same without CAP_FSETID. */
    private static final class ThreadCaps {
        final long header = Native.allocate(8);
        final long full = Native.allocate(24);
        final long reduced = Native.allocate(24);
        final boolean fsetid;

        ThreadCaps() {
            Native.putInt(header, CAPABILITY_VERSION_3);
            Native.putInt(header + 4, 0);
            boolean ok = Native.LIBC.syscall(SYS_CAPGET, header, full, 0, 0, 0, 0) == 0;
            Native.copy(full, reduced, 24);
            Native.putInt(reduced, Native.getInt(reduced) & ~(1 << CAP_FSETID)); // data[0].effective
            fsetid = ok && (Native.getInt(full) & (1 << CAP_FSETID)) != 0;
        }
    }

    private static final ThreadLocal<ThreadCaps> CAPS = ThreadLocal.withInitial(ThreadCaps::new);

    /**
     * Takes CAP_FSETID out of this thread's effective set (capset on the calling thread only), so
     * that what it writes, truncates or chowns next loses setuid/setgid as for an unprivileged
     * caller, in the kernel and in the same call (no window for another change of the mode).
     * Returns whether there was anything to take; {@link #restoreFsetid()} puts it back.
     */
    public static boolean dropFsetid() throws NativeException {
        ThreadCaps c = CAPS.get();
        if (!c.fsetid) {
            return false; // unprivileged: the kernel clears the bits anyway
        }
        Native.putInt(c.header, CAPABILITY_VERSION_3);
        Native.putInt(c.header + 4, 0);
        Native.check("capset", (int) Native.LIBC.syscall(SYS_CAPSET, c.header, c.reduced, 0, 0, 0, 0));
        return true;
    }

    /** Undoes {@link #dropFsetid()}. */
    public static void restoreFsetid() throws NativeException {
        ThreadCaps c = CAPS.get();
        Native.putInt(c.header, CAPABILITY_VERSION_3);
        Native.putInt(c.header + 4, 0);
        Native.check("capset", (int) Native.LIBC.syscall(SYS_CAPSET, c.header, c.full, 0, 0, 0, 0));
    }

    private static final long SYS_SETFSUID = 122;
    private static final long SYS_SETFSGID = 123;

    /**
     * Sets this thread's filesystem uid and gid (setfsuid/setfsgid act on the calling thread
     * only, unlike setuid in glibc) so that what it creates belongs to them. It needs
     * CAP_SETUID/CAP_SETGID, and ids this user namespace maps: otherwise it silently does nothing.
     */
    public static void switchFsIds(int uid, int gid) {
        Native.LIBC.syscall(SYS_SETFSGID, gid & 0xffff_ffffL, 0, 0, 0, 0, 0);
        Native.LIBC.syscall(SYS_SETFSUID, uid & 0xffff_ffffL, 0, 0, 0, 0, 0);
    }

    private static final long SYS_FCHMOD = 91;
    private static final long SYS_UMASK = 95;
    private static final long SYS_UNSHARE = 272;
    private static final long CLONE_FS = 0x200;

    /** fchmod(2) on a real (not O_PATH) descriptor. */
    public static void fchmod(int fd, int mode) throws NativeException {
        Native.check("fchmod", Native.LIBC.syscall(SYS_FCHMOD, fd, mode & 07777, 0, 0, 0, 0));
    }

    /** This thread's umask once it has its own fs_struct (see {@link #setThreadUmask}); -1 before, -2: it cannot. */
    private static final ThreadLocal<int[]> THREAD_UMASK = ThreadLocal.withInitial(() -> new int[] {-1});

    /**
     * Sets the calling thread's umask to {@code mask}; false if this thread cannot have a umask
     * of its own (it then keeps the process's). The umask lives in the fs_struct, which threads
     * share: the first call on a thread gives it its own (unshare(CLONE_FS): no privilege
     * needed; made after any chroot or pivot_root, it keeps that root), so no other thread's
     * creations see the change. One syscall per change after that, none when it is already set.
     */
    public static boolean setThreadUmask(int mask) {
        int[] current = THREAD_UMASK.get();
        mask &= 0777;
        if (current[0] == mask) {
            return true;
        }
        if (current[0] == -2) {
            return false;
        }
        if (current[0] == -1 && Native.LIBC.syscall(SYS_UNSHARE, CLONE_FS, 0, 0, 0, 0, 0) < 0) {
            current[0] = -2;
            return false;
        }
        Native.LIBC.syscall(SYS_UMASK, mask, 0, 0, 0, 0, 0); // umask(2) cannot fail
        current[0] = mask;
        return true;
    }

    private static final long SYS_GETGROUPS = 115;
    private static final long SYS_SETGROUPS = 116;

    /** The process's supplementary groups as it started (every thread's, until one changes its own). */
    private static final class OwnGroups {
        static final long LIST;
        static final int COUNT;

        static {
            int n = (int) Native.LIBC.syscall(SYS_GETGROUPS, 0, 0, 0, 0, 0, 0);
            COUNT = Math.max(n, 0);
            LIST = Native.allocate(4L * COUNT + 4);
            if (COUNT > 0) {
                Native.LIBC.syscall(SYS_GETGROUPS, COUNT, LIST, 0, 0, 0, 0);
            }
        }

        /** Loads the class, which reads the list. */
        static void capture() {
        }
    }

    /**
     * Makes {@code gid} this thread's only supplementary group (the raw syscall acts on the
     * calling thread, unlike glibc's setgroups); {@code scratch} holds 4 bytes. Needs CAP_SETGID
     * and a user namespace that allows setgroups (unshare --map-root-user's denies it): otherwise
     * nothing changes (EPERM, ignored here and in {@link #restoreThreadGroups}).
     */
    public static void setThreadGroups(int gid, long scratch) {
        OwnGroups.capture(); // the process's list must be read before this thread's changes
        Native.putInt(scratch, gid);
        Native.LIBC.syscall(SYS_SETGROUPS, 1, scratch, 0, 0, 0, 0);
    }

    /** This thread's supplementary groups back to the process's own. */
    public static void restoreThreadGroups() {
        Native.LIBC.syscall(SYS_SETGROUPS, OwnGroups.COUNT, OwnGroups.LIST, 0, 0, 0, 0);
    }

    // open file description locks (fcntl(2)) with struct flock: s16 type, s16 whence, s64 start, s64 len, s32 pid
    public static final int F_OFD_GETLK = 36;
    public static final int F_OFD_SETLK = 37;
    public static final int FLOCK_SIZE = 32;
    public static final int FL_TYPE = 0;
    public static final int FL_WHENCE = 2;
    public static final int FL_START = 8;
    public static final int FL_LEN = 16;
    public static final int FL_PID = 24;
    public static final short F_RDLCK = 0;
    public static final short F_WRLCK = 1;
    public static final short F_UNLCK = 2;

    /** fcntl(fd, cmd, &flock); returns 0 or a negated errno (EAGAIN/EACCES: a conflicting lock). */
    public static int ofdLock(int fd, int cmd, long flock) {
        int rc = Native.LIBC.fcntl(fd, cmd, flock);
        return rc < 0 ? -Native.errno() : 0;
    }

    public static final int LOCK_SH = 1;
    public static final int LOCK_EX = 2;
    public static final int LOCK_NB = 4;
    public static final int LOCK_UN = 8;

    /** flock(2); returns 0 or a negated errno. */
    public static int flock(int fd, int operation) {
        int rc = Native.LIBC.flock(fd, operation);
        return rc < 0 ? -Native.errno() : 0;
    }

    /** struct file_handle: u32 handle_bytes, s32 handle_type, then the handle; MAX_HANDLE_SZ is 128. */
    public static final int FILE_HANDLE_HEADER = 8;
    public static final int MAX_HANDLE_SZ = 128;

    /**
     * name_to_handle_at(fd, "", AT_EMPTY_PATH) into {@code handle} (room for
     * {@link #FILE_HANDLE_HEADER} + {@link #MAX_HANDLE_SZ}); returns the handle's total size, or a
     * negated errno (EOPNOTSUPP: the file system has no handles).
     */
    public static int nameToHandle(int fd, long handle, long scratch8) {
        Native.putInt(handle, MAX_HANDLE_SZ);
        int rc = Native.LIBC.name_to_handle_at(fd, EMPTY, handle, scratch8, AT_EMPTY_PATH);
        return rc < 0 ? -Native.errno() : FILE_HANDLE_HEADER + Native.getInt(handle);
    }

    private static final long EMPTY = Native.allocate(8);

    /** open_by_handle_at(2) (needs CAP_DAC_READ_SEARCH). */
    public static int openByHandle(int mountFd, long handle, int flags) throws NativeException {
        return Native.check("open_by_handle_at", Native.LIBC.open_by_handle_at(mountFd, handle, flags | O_CLOEXEC));
    }
}
