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
 * host inode the guest has looked up, keyed by device and inode number, with the guest's lookup
 * count) and open file and directory handles. Every name is resolved relative to a held
 * descriptor with O_NOFOLLOW, one component at a time, so nothing outside the shared directory
 * is reachable by name.
 *
 * <p>Work in progress (issue 3): file handles (name_to_handle_at), the mount id in the key and
 * the credentials switch (files are created with the backend's own uid/gid for now) come later.
 */
final class Passthrough implements AutoCloseable {
    /** An inode the guest holds: its node id, our O_PATH descriptor, how many lookups it owes us. */
    static final class Inode {
        final long id;
        final int fd;
        final long dev;
        final long ino;
        long lookups; // guarded by the table

        Inode(long id, int fd, long dev, long ino, long lookups) {
            this.id = id;
            this.fd = fd;
            this.dev = dev;
            this.ino = ino;
            this.lookups = lookups;
        }
    }

    private record Key(long dev, long ino) {
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
    private final Path sharedDir;
    private final FsOptions options;
    private Inode root;

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

    boolean xattr() {
        return options.xattr();
    }

    /** Whether READDIRPLUS is offered (virtiofsd's --no-readdirplus turns it off). */
    boolean readdirplus() {
        return options.readdirplus();
    }

    /** Opens the shared directory as node 1 (again after DESTROY or a reset). */
    synchronized void open() throws NativeException {
        if (root != null) {
            return;
        }
        long scratch = Native.allocate(FsIo.STAT_SIZE + 4096);
        try {
            byte[] path = sharedDir.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            Native.copyFromArray(path, 0, scratch + FsIo.STAT_SIZE, path.length);
            Native.putByte(scratch + FsIo.STAT_SIZE + path.length, (byte) 0);
            int fd = FsIo.openat(FsIo.AT_FDCWD, scratch + FsIo.STAT_SIZE, FsIo.O_PATH | FsIo.O_DIRECTORY);
            FsIo.fstatat(fd, emptyName(), scratch, FsIo.AT_EMPTY_PATH);
            root = new Inode(Fuse.ROOT_ID, fd, Native.getLong(scratch + FsIo.ST_DEV), Native.getLong(scratch + FsIo.ST_INO),
                    Long.MAX_VALUE / 2);
            byId.put(root.id, root);
            byKey.put(new Key(root.dev, root.ino), root);
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
     * Takes {@code fd} (an O_PATH descriptor just opened, whose stat is in {@code stat}) as a
     * lookup: the known inode gets one more lookup and the descriptor is closed, or a new inode
     * is made.
     */
    synchronized Inode lookedUp(int fd, long stat) {
        Key key = new Key(Native.getLong(stat + FsIo.ST_DEV), Native.getLong(stat + FsIo.ST_INO));
        Inode known = byKey.get(key);
        if (known != null) {
            Native.LIBC.close(fd);
            known.lookups++;
            return known;
        }
        Inode inode = new Inode(nextId.getAndIncrement(), fd, key.dev(), key.ino(), 1);
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
            byKey.remove(new Key(inode.dev, inode.ino));
            Native.LIBC.close(inode.fd);
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
    int reopen(Inode inode, int flags, long scratch) throws NativeException {
        byte[] path = ("/proc/self/fd/" + inode.fd).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        Native.copyFromArray(path, 0, scratch, path.length);
        Native.putByte(scratch + path.length, (byte) 0);
        return FsIo.openat(FsIo.AT_FDCWD, scratch, flags & ~(FsIo.O_NOFOLLOW | O_CREAT | O_EXCL | O_NOCTTY));
    }

    static final int O_CREAT = 0x40;
    static final int O_EXCL = 0x80;
    static final int O_NOCTTY = 0x100;

    /** Everything back to a fresh mount: every inode but the root forgotten, every handle closed. */
    synchronized void reset() {
        locks.clear();
        for (Inode inode : byId.values()) {
            if (inode != root) {
                Native.LIBC.close(inode.fd);
            }
        }
        byId.clear();
        byKey.clear();
        if (root != null) {
            byId.put(root.id, root);
            byKey.put(new Key(root.dev, root.ino), root);
        }
        handles.values().forEach(Native.LIBC::close);
        handles.clear();
    }

    /** Open descriptors held for the guest (inodes and handles), for tests. */
    int descriptors() {
        return byId.size() + handles.size();
    }

    @Override
    public synchronized void close() {
        reset();
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
        byte b0 = Native.getByte(name);
        if (b0 == '.' && (length == 1 || (length == 2 && Native.getByte(name + 1) == '.'))) {
            return Errno.ENOENT; // the driver resolves . and .. itself; a guest that sends them gets nothing
        }
        return 0;
    }
}
