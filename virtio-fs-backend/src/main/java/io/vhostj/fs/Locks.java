package io.vhostj.fs;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import io.vhostj.vhostuser.sys.FsIo;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * POSIX locks for the guest, as open file description (OFD) locks on one host descriptor per
 * (inode, guest lock owner): two guest owners conflict as two processes would, one owner's
 * locks merge, and host processes' fcntl locks conflict with the guest's.
 */
final class Locks {
    private record Key(long inode, long owner) {
    }

    private final Map<Key, Integer> fds = new ConcurrentHashMap<>();

    /** The owner's descriptor on {@code inode}, opened on first use (read-write where permitted). */
    synchronized int ownerFd(Passthrough fs, Passthrough.Inode inode, int pathFd, long owner, long scratch)
            throws NativeException {
        Key key = new Key(inode.id, owner);
        Integer fd = fds.get(key);
        if (fd != null) {
            return fd;
        }
        int opened;
        try {
            opened = fs.reopen(pathFd, 2 /* O_RDWR */, scratch);
        } catch (NativeException e) {
            opened = fs.reopen(pathFd, 0 /* O_RDONLY */, scratch);
        }
        fds.put(key, opened);
        return opened;
    }

    /** The owner closed the file (FLUSH): its locks on the inode go, with the descriptor. */
    synchronized void release(long inode, long owner) {
        Integer fd = fds.remove(new Key(inode, owner));
        if (fd != null) {
            Native.LIBC.close(fd); // closing an OFD lock's only descriptor releases its locks
        }
    }

    /** The inode is forgotten: every owner's descriptor on it goes. */
    synchronized void forgetInode(long inode) {
        fds.entrySet().removeIf(e -> {
            if (e.getKey().inode() == inode) {
                Native.LIBC.close(e.getValue());
                return true;
            }
            return false;
        });
    }

    synchronized void clear() {
        fds.values().forEach(Native.LIBC::close);
        fds.clear();
    }

    /** Fills a struct flock from a fuse_file_lock (start, inclusive end, type). */
    static void toFlock(long flock, long start, long end, int type) {
        Native.zero(flock, FsIo.FLOCK_SIZE);
        Native.putShort(flock + FsIo.FL_TYPE, (short) type);
        Native.putLong(flock + FsIo.FL_START, start);
        Native.putLong(flock + FsIo.FL_LEN, end == Long.MAX_VALUE || end < start ? 0 : end - start + 1);
    }
}
