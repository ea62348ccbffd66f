package io.vhostj.vhostuser.sys;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * Confines this process to one directory, as virtiofsd's {@code --sandbox} does, so that a
 * backend taken over by a guest can reach nothing but the directory it exports.
 *
 * <p>{@link #intoNewRoot}: the mount namespace way. The process must already be alone in its
 * mount namespace (a JVM is multi-threaded from its first instruction, and unshare(2) of a mount
 * namespace only moves the calling thread, so {@code bin/vhostj} starts the JVM under
 * {@code unshare --mount --net --propagation slave}, for a non-root user with
 * {@code --user --map-root-user} too). Its root becomes a small read-only tmpfs
 * holding the exported directory at {@link #SHARED} and, bound read-only at their own paths, the
 * JDK and the jars (classes and JDK libraries load lazily); the old root is detached, /proc is
 * gone (descriptors are reopened through {@link FsIo#procSelfFd()}, opened before). Mounts the
 * host makes under the directory later still appear (slave propagation), as Kata needs. In a user
 * namespace the mounts it inherits are locked: a read-only remount keeps each one's noexec and
 * atime flags, or the kernel refuses it.
 *
 * <p>{@link #chroot}: chroot(2) into the directory itself; the jars are opened beforehand, since
 * their paths vanish.
 */
public final class Sandbox {
    /** Where the exported directory is inside the namespace sandbox. */
    public static final Path SHARED = Path.of("/shared");

    private static final long MS_RDONLY = 1;
    private static final long MS_NOSUID = 2;
    private static final long MS_NODEV = 4;
    private static final long MS_NOEXEC = 8;
    private static final long MS_REMOUNT = 32;
    private static final long MS_NOSYMFOLLOW = 256;
    private static final long MS_NOATIME = 1024;
    private static final long MS_NODIRATIME = 2048;
    private static final long MS_BIND = 4096;
    private static final long MS_REC = 16384;
    private static final long MS_SLAVE = 1 << 19;
    private static final long MS_RELATIME = 1 << 21;
    private static final long MS_STRICTATIME = 1 << 24;
    // statfs(2) f_flags (a read-only remount adds nosuid and nodev whatever they were)
    private static final long ST_NOEXEC = 8;
    private static final long ST_NOATIME = 1024;
    private static final long ST_NODIRATIME = 2048;
    private static final long ST_RELATIME = 4096;
    private static final long ST_NOSYMFOLLOW = 8192;
    private static final int MNT_DETACH = 2;
    private static final long SYS_PIVOT_ROOT = 155; // x86_64
    /** Where the new root is built: a tmpfs over /tmp, in this process's namespace only. */
    private static final String BUILD = "/tmp";

    private Sandbox() {
    }

    /** The sandbox's refusal: a precondition the caller can fix (a message for a person). */
    public static final class SandboxException extends Exception {
        SandboxException(String message) {
            super(message);
        }
    }

    /**
     * Makes a new root holding {@code dir} (at {@link #SHARED}, read-only if {@code readOnly})
     * and this JVM's own files (read-only), and pivots into it. Returns the path of {@code dir}
     * inside.
     */
    public static Path intoNewRoot(Path dir, boolean readOnly) throws SandboxException, NativeException {
        userNamespace(); // read while /proc is there
        requireRoot("namespace");
        requireOwnMountNamespace();
        List<Path> runtime = runtimePaths();
        FsIo.procSelfFd(); // before /proc goes away
        check("mount(/, MS_SLAVE|MS_REC)", Native.LIBC.mount(null, "/", null, MS_REC | MS_SLAVE, null));
        // descriptors first: the tmpfs about to cover /tmp may hide some of these paths
        int dirFd = openPath(dir);
        int[] runtimeFds = new int[runtime.size()];
        for (int i = 0; i < runtimeFds.length; i++) {
            runtimeFds[i] = openPath(runtime.get(i));
        }
        check("mount(tmpfs, " + BUILD + ")", Native.LIBC.mount("vhostj-sandbox", BUILD, "tmpfs",
                MS_NOSUID | MS_NODEV, "mode=0755,size=64k"));
        try {
            bind(dirFd, BUILD + SHARED, readOnly);
            for (int i = 0; i < runtimeFds.length; i++) {
                bind(runtimeFds[i], BUILD + runtime.get(i), true);
            }
        } finally {
            Native.LIBC.close(dirFd);
            for (int fd : runtimeFds) {
                Native.LIBC.close(fd);
            }
        }
        check("chdir(" + BUILD + ")", Native.LIBC.chdir(BUILD));
        long dot = Native.allocate(2);
        try {
            Native.putByte(dot, (byte) '.');
            Native.putByte(dot + 1, (byte) 0);
            // pivot_root(".", "."): the old root ends up stacked on the new one; detach it
            check("pivot_root", (int) Native.LIBC.syscall(SYS_PIVOT_ROOT, dot, dot, 0, 0, 0, 0));
        } finally {
            Native.free(dot);
        }
        check("umount2(old root, MNT_DETACH)", Native.LIBC.umount2(".", MNT_DETACH));
        check("chdir(/)", Native.LIBC.chdir("/"));
        int rootFd = openPath(Path.of("/"));
        try {
            remountReadOnly(rootFd, "/");
        } finally {
            Native.LIBC.close(rootFd);
        }
        return SHARED;
    }

    /** chroot(2) into {@code dir}; returns "/", the directory's path inside. */
    public static Path chroot(Path dir) throws SandboxException, NativeException {
        userNamespace();
        requireRoot("chroot");
        FsIo.procSelfFd();
        // a lookup that fails opens every jar on the class path, while their paths still resolve
        ClassLoader.getSystemClassLoader().getResource("io/vhostj/sandbox/no-such-resource");
        check("chroot(" + dir + ")", Native.LIBC.chroot(dir.toString()));
        check("chdir(/)", Native.LIBC.chdir("/"));
        return Path.of("/");
    }

    /** The JDK and the class path's directories, outermost only. */
    static List<Path> runtimePaths() throws SandboxException {
        TreeSet<Path> all = new TreeSet<>();
        all.add(Path.of(System.getProperty("java.home")).toAbsolutePath().normalize());
        for (String entry : System.getProperty("java.class.path", "").split(File.pathSeparator)) {
            if (!entry.isEmpty()) {
                Path p = Path.of(entry).toAbsolutePath().normalize();
                all.add(Files.isDirectory(p) ? p : p.getParent());
            }
        }
        List<Path> outermost = new ArrayList<>();
        for (Path p : all) { // sorted: a parent comes before what is under it
            try {
                p = p.toRealPath();
            } catch (IOException e) {
                continue; // a class path entry that does not exist holds nothing to load
            }
            if (p.getNameCount() == 0) {
                throw new SandboxException("the JVM's files are under / itself: nothing to bind read-only");
            }
            Path q = p;
            if (outermost.stream().noneMatch(q::startsWith)) {
                outermost.add(p);
            }
        }
        return outermost;
    }

    /**
     * A user namespace this process runs in (not the initial one): {@code uid} and {@code gid} are
     * what its own uid and gid are outside (-1 if unmapped); {@code oneId} when they are the only
     * ids it maps, as {@code unshare --map-root-user} makes it.
     */
    public record UserNamespace(long uid, long gid, boolean oneId) {
    }

    private static final class UserNamespaceHolder {
        static final List<long[]> UIDS = idMap("uid_map");
        static final List<long[]> GIDS = idMap("gid_map");
        static final UserNamespace CURRENT = readUserNamespace(UIDS, GIDS);
    }

    /**
     * The user namespace this process runs in, or null in the initial one (or where /proc cannot
     * tell). Read on the first call, which must come before a sandbox hides /proc.
     */
    public static UserNamespace userNamespace() {
        return UserNamespaceHolder.CURRENT;
    }

    /**
     * Group {@code gid} (as the host's group database and ls outside name it) as this process
     * sees it, which chown(2) takes: itself outside a user namespace, -1 if the namespace does
     * not map it.
     */
    public static long insideGid(long gid) {
        UserNamespace ns = userNamespace();
        if (ns == null) {
            return gid;
        }
        for (long[] r : UserNamespaceHolder.GIDS) {
            if (gid >= r[1] && gid - r[1] < r[2]) {
                return r[0] + gid - r[1];
            }
        }
        return -1;
    }

    /** The id of the group named {@code name} (or a number no group is named), -1 if neither. */
    public static long groupId(String name) {
        long group = Native.LIBC.getgrnam(name);
        if (group != 0) {
            return Native.getInt(group + 16) & 0xffff_ffffL;
        }
        try {
            return Integer.parseUnsignedInt(name) & 0xffff_ffffL;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static UserNamespace readUserNamespace(List<long[]> uids, List<long[]> gids) {
        if (uids == null || gids == null || isIdentity(uids) && isIdentity(gids)) {
            return null;
        }
        return new UserNamespace(outside(uids, Native.LIBC.geteuid()), outside(gids, Native.LIBC.getegid()),
                uids.size() == 1 && uids.get(0)[2] == 1 && gids.size() == 1 && gids.get(0)[2] == 1);
    }

    /** /proc/self/{@code file}'s lines: inside, outside, count. */
    private static List<long[]> idMap(String file) {
        try {
            List<long[]> map = new ArrayList<>();
            for (String line : Files.readAllLines(Path.of("/proc/self", file))) {
                String[] f = line.trim().split("\\s+");
                if (f.length == 3) {
                    map.add(new long[] {Long.parseLong(f[0]), Long.parseLong(f[1]), Long.parseLong(f[2])});
                }
            }
            return map;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static boolean isIdentity(List<long[]> map) {
        return map.size() == 1 && map.get(0)[0] == 0 && map.get(0)[1] == 0 && map.get(0)[2] == 0xffff_ffffL;
    }

    private static long outside(List<long[]> map, int id) {
        long inside = id & 0xffff_ffffL;
        for (long[] r : map) {
            if (inside >= r[0] && inside - r[0] < r[2]) {
                return r[1] + inside - r[0];
            }
        }
        return -1;
    }

    private static void requireRoot(String mode) throws SandboxException {
        if (Native.LIBC.geteuid() == 0) {
            return;
        }
        throw new SandboxException(mode.equals("namespace")
                ? "--sandbox namespace needs root, or a user namespace to be root in, which bin/vhostj makes for "
                        + "a non-root user where the kernel allows it (not here, or not started through bin/vhostj); "
                        + "run as root or choose --sandbox none"
                : "--sandbox " + mode + " needs root; as another user choose --sandbox namespace or none");
    }

    /** This process must not share its mount namespace with its parent (nor with init, where that is readable). */
    private static void requireOwnMountNamespace() throws SandboxException {
        Path self = mountNamespace("self");
        if (self == null) {
            throw new SandboxException("--sandbox namespace: cannot read /proc/self/ns/mnt");
        }
        long parent = ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(0L);
        for (String other : new String[] {Long.toString(parent), "1"}) {
            if (!other.equals("0") && self.equals(mountNamespace(other)) && Native.LIBC.getpid() != 1) {
                throw new SandboxException("--sandbox namespace: this process shares its mount namespace with "
                        + (other.equals("1") ? "init" : "its parent") + " (start it through bin/vhostj or "
                        + "bin/virtiofsd, which run it under unshare(1)), or choose --sandbox chroot|none");
            }
        }
    }

    private static Path mountNamespace(String pid) {
        try {
            return Files.readSymbolicLink(Path.of("/proc", pid, "ns", "mnt"));
        } catch (IOException | UnsupportedOperationException e) {
            return null;
        }
    }

    private static int openPath(Path p) throws NativeException {
        return check("open(" + p + ")", Native.LIBC.open(p.toString(), FsIo.O_PATH | FsIo.O_CLOEXEC, 0));
    }

    /** Binds what {@code fd} names at {@code target} (created), read-only if asked. */
    private static void bind(int fd, String target, boolean readOnly) throws NativeException {
        try {
            Files.createDirectories(Path.of(target));
        } catch (IOException e) {
            throw new NativeException("mkdir(" + target + ")", e.getMessage());
        }
        check("bind " + target, Native.LIBC.mount("/proc/self/fd/" + fd, target, null, MS_BIND | MS_REC, null));
        if (readOnly) {
            remountReadOnly(fd, target);
        }
    }

    /**
     * Remounts the bind mount at {@code target} read-only, nosuid and nodev, keeping the noexec,
     * nosymfollow and atime flags of the mount {@code fd} is on: in a user namespace an inherited
     * mount's flags are locked, and a remount that would clear one fails (EPERM).
     */
    private static void remountReadOnly(int fd, String target) throws NativeException {
        long statfs = Native.allocate(FsIo.STATFS_SIZE);
        long st;
        try {
            FsIo.fstatfs(fd, statfs);
            st = Native.getLong(statfs + FsIo.F_FLAGS);
        } finally {
            Native.free(statfs);
        }
        long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
        flags |= (st & ST_NOEXEC) != 0 ? MS_NOEXEC : 0;
        flags |= (st & ST_NOSYMFOLLOW) != 0 ? MS_NOSYMFOLLOW : 0;
        flags |= (st & ST_NODIRATIME) != 0 ? MS_NODIRATIME : 0;
        // a remount is relatime unless told otherwise: say which of the three the mount is
        flags |= (st & ST_NOATIME) != 0 ? MS_NOATIME : (st & ST_RELATIME) != 0 ? MS_RELATIME : MS_STRICTATIME;
        check("remount " + target + " read-only", Native.LIBC.mount(null, target, null, flags, null));
    }

    private static int check(String what, int rc) throws NativeException {
        return Native.check(what, rc);
    }
}
