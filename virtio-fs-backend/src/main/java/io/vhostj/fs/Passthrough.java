package io.vhostj.fs;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.FsIo;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * The passthrough file system's state, shared by every queue: inodes (an O_PATH descriptor per
 * host inode the guest has looked up, keyed by device, inode number and mount id, with the guest's
 * lookup count; or, with --inode-file-handles, a file handle to reopen it by) and open file and
 * directory handles. Every name is resolved relative to a held descriptor with O_NOFOLLOW, one
 * component at a time, so nothing outside the shared directory is reachable by name.
 */
final class Passthrough implements AutoCloseable {
    /**
     * An inode the guest holds: its node id, how many lookups it owes us, and either our O_PATH
     * descriptor or (with file handles) a file handle to reopen it by ({@code fd} is then -1).
     */
    static final class Inode {
        final long id;
        final int fd;
        final long handle; // native struct file_handle, or 0
        final long dev;
        final long ino;
        final long mount;
        long lookups; // guarded by the table

        Inode(long id, int fd, long handle, long dev, long ino, long mount, long lookups) {
            this.id = id;
            this.fd = fd;
            this.handle = handle;
            this.dev = dev;
            this.ino = ino;
            this.mount = mount;
            this.lookups = lookups;
        }

        Key key() {
            return new Key(dev, ino, mount);
        }

        void close() {
            if (fd >= 0) {
                Native.LIBC.close(fd);
            }
            if (handle != 0) {
                Native.free(handle);
            }
        }
    }

    /**
     * What makes an inode the same inode: device, inode number, and the mount it was reached
     * through (one file system bound twice under the export is two sets of inodes, as in virtiofsd).
     */
    private record Key(long dev, long ino, long mount) {
    }

    private final Map<Long, Inode> byId = new ConcurrentHashMap<>();
    private final Map<Key, Inode> byKey = new ConcurrentHashMap<>();
    private final Map<Long, Integer> handles = new ConcurrentHashMap<>();
    final Locks locks = new Locks();
    /** Where SETLKW waits happen: never on a queue's worker thread. */
    final java.util.concurrent.ExecutorService lockWaiters = java.util.concurrent.Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "vhostj-fs-lock-wait");
        t.setDaemon(true);
        return t;
    });
    private final AtomicLong nextId = new AtomicLong(Fuse.ROOT_ID + 1);
    private final AtomicLong nextHandle = new AtomicLong(1);
    /** The shared directory's path, as this process sees it (inside a sandbox: where it was bound). */
    private Path sharedDir;
    private final FsOptions options;
    private Inode root;
    /** Whether inodes are kept as file handles (asked for, and the file system and privileges allow it). */
    private volatile boolean useFileHandles;
    /** open_by_handle_at's mount_fd: a real (not O_PATH) descriptor of the shared directory. */
    private int mountFd = -1;

    Passthrough(Path sharedDir, FsOptions options) {
        this.sharedDir = sharedDir;
        this.options = options;
    }

    boolean readOnly() {
        return options.readOnly();
    }

    CachePolicy cache() {
        return options.cache();
    }

    IdMap uidMap() {
        return options.uidMap();
    }

    IdMap gidMap() {
        return options.gidMap();
    }

    boolean xattr() {
        return options.xattr();
    }

    /** How xattr names are translated ({@code --xattrmap}); null: they pass as they are. */
    XattrMap xattrMap() {
        return options.xattrMap();
    }

    /** Whether a directory on another mount is flagged as a submount ({@code --announce-submounts}). */
    boolean announceSubmounts() {
        return options.announceSubmounts();
    }

    /** Whether the guest's O_DIRECT is passed to the host ({@code --allow-direct-io}). */
    boolean allowDirectIo() {
        return options.allowDirectIo();
    }

    /** The FUSE features INIT offers on request (--writeback, --posix-acl, --killpriv-v2, --allow-mmap). */
    FsOptions.Features features() {
        return options.features();
    }

    /** Whether READDIRPLUS is offered (virtiofsd's --no-readdirplus turns it off). */
    boolean readdirplus() {
        return options.readdirplus();
    }

    /** Opens the shared directory, now seen at {@code path} (a sandbox moved it), as node 1. */
    synchronized void open(Path path) throws NativeException {
        sharedDir = path;
        open();
    }

    /** Opens the shared directory as node 1 (again after DESTROY or a reset). */
    synchronized void open() throws NativeException {
        if (root != null) {
            return;
        }
        long scratch = Native.allocate(FsIo.STAT_SIZE + Math.max(4096, FsIo.STATX_SIZE));
        try {
            byte[] path = sharedDir.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            Native.copyFromArray(path, 0, scratch + FsIo.STAT_SIZE, path.length);
            Native.putByte(scratch + FsIo.STAT_SIZE + path.length, (byte) 0);
            int fd = FsIo.openat(FsIo.AT_FDCWD, scratch + FsIo.STAT_SIZE, FsIo.O_PATH | FsIo.O_DIRECTORY);
            long mount = FsIo.fstatWithMountId(fd, scratch, scratch + FsIo.STAT_SIZE);
            root = new Inode(Fuse.ROOT_ID, fd, 0, Native.getLong(scratch + FsIo.ST_DEV),
                    Native.getLong(scratch + FsIo.ST_INO), mount, Long.MAX_VALUE / 2);
            if (options.fileHandles() != FsOptions.FileHandles.NEVER) {
                mountFd = reopen(fd, FsIo.O_DIRECTORY, scratch + FsIo.STAT_SIZE);
                long probe = Native.allocate(FsIo.FILE_HANDLE_HEADER + FsIo.MAX_HANDLE_SZ + 8);
                try {
                    int rc = FsIo.nameToHandle(fd, probe, probe + FsIo.FILE_HANDLE_HEADER + FsIo.MAX_HANDLE_SZ);
                    useFileHandles = rc > 0;
                    if (rc > 0) {
                        Native.LIBC.close(FsIo.openByHandle(mountFd, probe, FsIo.O_PATH)); // CAP_DAC_READ_SEARCH?
                    }
                } catch (NativeException e) {
                    useFileHandles = false;
                } finally {
                    Native.free(probe);
                }
            }
            if (options.fileHandles() == FsOptions.FileHandles.MANDATORY && !useFileHandles) {
                throw new NativeException("name_to_handle_at", "--inode-file-handles=mandatory, but " + sharedDir
                        + " has no file handles (or CAP_DAC_READ_SEARCH is missing)");
            }
            byId.put(root.id, root);
            byKey.put(root.key(), root);
        } finally {
            Native.free(scratch);
        }
    }

    private static final long EMPTY = Native.allocate(8);

    /** The address of an empty NUL-terminated name (for *at calls with AT_EMPTY_PATH). */
    static long emptyName() {
        return EMPTY;
    }

    Inode inode(long nodeId) {
        return byId.get(nodeId);
    }

    /**
     * Takes {@code fd} (an O_PATH descriptor just opened, whose stat is in {@code stat}, reached
     * through mount {@code mount}) as a lookup: the known inode gets one more lookup and the
     * descriptor is closed, or a new inode is made. With mandatory file handles, an inode that
     * has none is refused (the descriptor closed).
     */
    synchronized Inode lookedUp(int fd, long stat, long mount) throws NativeException {
        Key key = new Key(Native.getLong(stat + FsIo.ST_DEV), Native.getLong(stat + FsIo.ST_INO), mount);
        Inode known = byKey.get(key);
        if (known != null) {
            Native.LIBC.close(fd);
            known.lookups++;
            return known;
        }
        long handle = 0;
        // a handle reopens through the root's mount (open_by_handle_at's mount_fd): an inode on
        // another mount under the export (a bind mount, a submount) keeps its descriptor
        if (useFileHandles && mount == root.mount) {
            long buf = Native.allocate(FsIo.FILE_HANDLE_HEADER + FsIo.MAX_HANDLE_SZ + 8);
            int size = FsIo.nameToHandle(fd, buf, buf + FsIo.FILE_HANDLE_HEADER + FsIo.MAX_HANDLE_SZ);
            if (size > 0) {
                handle = Native.allocate(size);
                Native.copy(buf, handle, size);
                Native.LIBC.close(fd);
                fd = -1;
            }
            Native.free(buf);
            if (handle == 0 && options.fileHandles() == FsOptions.FileHandles.MANDATORY) {
                Native.LIBC.close(fd);
                throw new NativeException("name_to_handle_at", size < 0 ? -size : Errno.ENOTSUP);
            }
        }
        Inode inode = new Inode(nextId.getAndIncrement(), fd, handle, key.dev(), key.ino(), key.mount(), 1);
        byId.put(inode.id, inode);
        byKey.put(key, inode);
        return inode;
    }

    /** FORGET: the guest drops {@code count} lookups; at zero the descriptor goes. */
    synchronized void forget(long nodeId, long count) {
        Inode inode = byId.get(nodeId);
        if (inode == null || inode == root) {
            return;
        }
        inode.lookups -= Math.min(count, inode.lookups);
        if (inode.lookups == 0) {
            locks.forgetInode(nodeId);
            byId.remove(nodeId);
            byKey.remove(inode.key());
            inode.close();
        }
    }

    long addHandle(int fd) {
        long fh = nextHandle.getAndIncrement();
        handles.put(fh, fd);
        return fh;
    }

    /** The descriptor of handle {@code fh}, or -1. */
    int handle(long fh) {
        Integer fd = handles.get(fh);
        return fd == null ? -1 : fd;
    }

    /** Closes handle {@code fh}; false if there was none. */
    boolean release(long fh) {
        Integer fd = handles.remove(fh);
        if (fd == null) {
            return false;
        }
        Native.LIBC.close(fd);
        return true;
    }

    /**
     * Reopens inode {@code inode} with real access {@code flags} through /proc/self/fd (an O_PATH
     * descriptor cannot read), never following a symlink that replaced it.
     */
    int reopen(int pathFd, int flags, long scratch) throws NativeException {
        return FsIo.openat(FsIo.procSelfFd(), FsIo.procFdName(pathFd, scratch),
                flags & ~(FsIo.O_NOFOLLOW | O_CREAT | O_EXCL | O_NOCTTY));
    }

    static final int O_CREAT = 0x40;
    static final int O_EXCL = 0x80;
    static final int O_NOCTTY = 0x100;

    /** Everything back to a fresh mount: every inode but the root forgotten, every handle closed. */
    synchronized void reset() {
        locks.clear();
        for (Inode inode : byId.values()) {
            if (inode != root) {
                inode.close();
            }
        }
        byId.clear();
        byKey.clear();
        if (root != null) {
            byId.put(root.id, root);
            byKey.put(root.key(), root);
        }
        handles.values().forEach(Native.LIBC::close);
        handles.clear();
    }

    /**
     * An O_PATH descriptor on {@code inode} now: its own, or one opened from its file handle
     * (the caller closes that one: see {@link #isTemporary}).
     */
    int pathFd(Inode inode) throws NativeException {
        return inode.fd >= 0 ? inode.fd : FsIo.openByHandle(mountFd, inode.handle, FsIo.O_PATH);
    }

    static boolean isTemporary(Inode inode) {
        return inode.fd < 0;
    }

    /** Whether inodes are kept as file handles. */
    boolean usesFileHandles() {
        return useFileHandles;
    }

    /** Descriptors open for inodes (not handles), for tests. */
    synchronized int inodeDescriptors() {
        int n = 0;
        for (Inode i : byId.values()) {
            n += i.fd >= 0 ? 1 : 0;
        }
        return n;
    }

    /** Open descriptors held for the guest (inodes and handles), for tests. */
    int descriptors() {
        return byId.size() + handles.size();
    }

    @Override
    public synchronized void close() {
        reset();
        if (mountFd >= 0) {
            Native.LIBC.close(mountFd);
            mountFd = -1;
        }
        if (root != null) {
            Native.LIBC.close(root.fd);
            byId.clear();
            byKey.clear();
            root = null;
        }
    }

    /** Checks a name from the guest: one component, not empty, not "." or "..". Returns 0 or an errno. */
    static int checkName(long name, int length) {
        if (length == 0) {
            return Errno.EINVAL;
        }
        for (int i = 0; i < length; i++) {
            if (Native.getByte(name + i) == '/') {
                return Errno.EINVAL;
            }
        }
        if (isDotOrDotDot(name, length)) {
            return Errno.ENOENT; // the driver resolves . and .. itself; a guest that sends them gets nothing
        }
        return 0;
    }

    static boolean isDotOrDotDot(long name, int length) {
        return Native.getByte(name) == '.' && (length == 1 || (length == 2 && Native.getByte(name + 1) == '.'));
    }
}
