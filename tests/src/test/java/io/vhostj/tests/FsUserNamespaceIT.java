package io.vhostj.tests;

import static io.vhostj.tests.FsSandboxIT.awaitSocket;
import static io.vhostj.tests.FsSandboxIT.jvmPid;
import static io.vhostj.tests.FsSandboxIT.lookup;
import static io.vhostj.tests.FsSandboxIT.read;
import static io.vhostj.tests.FsSandboxIT.stop;
import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.bench.FuseClient;
import io.vhostj.fs.Fuse;
import io.vhostj.vhostuser.sys.Native;

/**
 * {@code vhostj fs} started by a user other than root (uid 65534 here, through setpriv): the
 * default {@code --sandbox namespace} puts the backend in a user namespace in which that user is
 * root, with the same confinement as root's, and everything the guest creates belongs to that
 * user. {@code chroot} is refused, {@code none} runs as it always did, and where user namespaces
 * are refused the backend says why it cannot confine itself.
 */
class FsUserNamespaceIT {
    private static final long TIMEOUT = 5_000_000_000L;
    private static final int USER = 65534;
    private static final List<String> AS_USER =
            List.of("setpriv", "--reuid", "" + USER, "--regid", "" + USER, "--clear-groups");

    @TempDir
    Path dir;
    Path shared;
    /** Where the user's backend may make its socket. */
    Path run;

    @BeforeEach
    void rootAndUserNamespaces() throws Exception {
        boolean root = Native.LIBC.geteuid() == 0;
        if (!root) {
            System.err.println("\n!! SKIPPED FsUserNamespaceIT: it starts the backend as uid " + USER
                    + " through setpriv, which needs root; this test runs as uid " + Native.LIBC.geteuid() + "\n");
        }
        Assumptions.assumeTrue(root, "needs root");
        List<String> probe = new ArrayList<>(AS_USER);
        probe.addAll(List.of("unshare", "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork", "true"));
        Process p = new ProcessBuilder(probe).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        if (p.exitValue() != 0) {
            System.err.println("\n!! SKIPPED FsUserNamespaceIT: uid " + USER + " cannot create user namespaces here ("
                    + String.join(" ", probe) + ": " + out + ")\n");
        }
        Assumptions.assumeTrue(p.exitValue() == 0, "user namespaces unavailable: " + out);

        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // @TempDir is 0700
        shared = Files.createDirectory(dir.resolve("shared"));
        run = Files.createDirectory(dir.resolve("run"));
        for (Path d : List.of(shared, run)) {
            Files.setAttribute(d, "unix:uid", USER);
            Files.setAttribute(d, "unix:gid", USER);
        }
        Files.writeString(shared.resolve("hello.txt"), "hello from the host"); // root's, 0644
        Files.writeString(dir.resolve("outside.txt"), "host secret");
    }

    @Test
    void shouldConfineAndServeAsAnUnprivilegedUserInAUserNamespace() throws Exception {
        Path sock = run.resolve("fs.sock");
        Path log = dir.resolve("userns.log");
        Process p = startAsUser(log, "--socket-path", sock.toString(), "--shared-dir", shared.toString());
        try {
            awaitSocket(sock, log, p);
            long jvm = jvmPid(p);
            Path proc = Path.of("/proc", Long.toString(jvm));
            assertTrue(Files.readAllLines(proc.resolve("status")).contains("Uid:\t65534\t65534\t65534\t65534"),
                    "the JVM runs as uid " + USER + " on the host");
            for (String ns : List.of("user", "mnt", "net", "pid")) {
                assertNotEquals(Files.readSymbolicLink(Path.of("/proc/self/ns", ns)),
                        Files.readSymbolicLink(proc.resolve("ns").resolve(ns)), ns + " namespace");
            }
            assertEquals("0 65534 1", Files.readString(proc.resolve("uid_map")).strip().replaceAll("\\s+", " "));
            assertEquals("0 65534 1", Files.readString(proc.resolve("gid_map")).strip().replaceAll("\\s+", " "));
            assertEquals("deny", Files.readString(proc.resolve("setgroups")).strip());
            String nspid = Files.readAllLines(proc.resolve("status")).stream()
                    .filter(l -> l.startsWith("NSpid:")).findFirst().orElseThrow();
            assertTrue(nspid.matches("NSpid:\\s+" + jvm + "\\s+1"), nspid);

            // its root: the export and the first directories of the JDK's and the jars' paths
            Path root = proc.resolve("root");
            Set<String> top = new TreeSet<>();
            try (var s = Files.list(root)) {
                s.forEach(e -> top.add(e.getFileName().toString()));
            }
            Path javaHome = proc.resolve("exe").toRealPath().getParent().getParent();
            Set<String> expected = new TreeSet<>(List.of("shared", javaHome.getName(0).toString(),
                    HostTools.ROOT.resolve("tests/target").toRealPath().getName(0).toString()));
            assertEquals(expected, top);
            assertFalse(Files.exists(root.resolve("etc/passwd")), "the host's /etc is out of reach");
            assertFalse(Files.exists(root.resolve(Path.of("/").relativize(dir)).resolve("outside.txt")),
                    "the directory around the export is out of reach");
            assertThrows(java.io.IOException.class, () -> Files.writeString(root.resolve("new.txt"), "x"),
                    "the sandbox's root is read-only");

            assertEquals(USER, Files.getAttribute(sock, "unix:uid"), "the socket is the user's");
            String started = Files.readString(log);
            String line = "running unprivileged in a user namespace that maps only uid 65534, gid 65534 (root inside): "
                    + "new files belong to uid 65534, gid 65534 whoever creates them in the guest";
            assertEquals(1, started.split(java.util.regex.Pattern.quote(line), -1).length - 1, started);

            // (a sysctl read in pieces answers its first byte only: readString would see "6")
            int overflowUid = Integer.parseInt(Files.readAllLines(Path.of("/proc/sys/kernel/overflowuid")).get(0).strip());
            try (FuseClient c = FuseClient.connect(sock, 64)) {
                int initExt = 1 << 30;
                int createSuppGroup2 = 1 << 2; // FUSE_CREATE_SUPP_GROUP, bit 34
                assertEquals(0, c.init(38, 0, initExt, createSuppGroup2, TIMEOUT), Files.readString(log));
                long hello = lookup(c, Fuse.ROOT_ID, "hello.txt");
                assertEquals(overflowUid, attrUid(c), "a host root's file shows as the overflow id");
                assertEquals("hello from the host", read(c, hello));

                // a guest user creates and writes a file: it is the user's on the host
                c.caller(1000, 1000);
                long a = c.in() + Fuse.IN_HEADER_SIZE;
                Native.zero(a, Fuse.CREATE_IN_SIZE);
                Native.putInt(a + Fuse.CREATE_IN_FLAGS, 2); // O_RDWR
                Native.putInt(a + Fuse.CREATE_IN_MODE, 0100644);
                byte[] n = "by-guest.txt\0".getBytes(StandardCharsets.UTF_8);
                Native.copyFromArray(n, 0, a + Fuse.CREATE_IN_SIZE, n.length);
                assertEquals(0, c.request(Fuse.CREATE, Fuse.ROOT_ID, Fuse.CREATE_IN_SIZE + n.length,
                        16 + Fuse.ENTRY_OUT_SIZE + Fuse.OPEN_OUT_SIZE, TIMEOUT), "CREATE as guest uid 1000");
                long node = Native.getLong(c.out() + 16 + Fuse.ENTRY_NODEID);
                assertEquals(0, attrUid(c), "the user's own file is root's inside, so to the guest");
                long fh = Native.getLong(c.out() + 16 + Fuse.ENTRY_OUT_SIZE + Fuse.OPEN_OUT_FH);
                byte[] data = "written by the guest".getBytes(StandardCharsets.UTF_8);
                assertEquals(0, c.write(node, fh, 0, data, 0, TIMEOUT), "WRITE");
                assertEquals(data.length, Native.getInt(c.out() + 16 + Fuse.WRITE_OUT_SIZE_BYTES));
                assertEquals("written by the guest", read(c, node));

                // with a supplementary group (setgroups is denied in the namespace: it must not matter)
                byte[] name = "by-member\0".getBytes(StandardCharsets.UTF_8);
                Native.zero(a, 64);
                Native.putInt(a + Fuse.MKDIR_IN_MODE, 0755);
                Native.copyFromArray(name, 0, a + Fuse.MKDIR_IN_SIZE, name.length);
                int args = Fuse.MKDIR_IN_SIZE + name.length;
                long ext = a + args;
                Native.putInt(ext + Fuse.EXT_SIZE, 16);
                Native.putInt(ext + Fuse.EXT_TYPE, Fuse.EXT_GROUPS);
                Native.putInt(ext + Fuse.EXT_HEADER_SIZE + Fuse.SUPP_GROUPS_NR, 1);
                Native.putInt(ext + Fuse.EXT_HEADER_SIZE + Fuse.SUPP_GROUPS_FIRST, 4242);
                assertEquals(0, c.requestWithExtensions(Fuse.MKDIR, Fuse.ROOT_ID, args, 16, 16 + Fuse.ENTRY_OUT_SIZE,
                        TIMEOUT), "MKDIR with a supplementary group");
            }
            Path made = shared.resolve("by-guest.txt");
            assertEquals("written by the guest", Files.readString(made));
            for (Path p2 : List.of(made, shared.resolve("by-member"))) {
                assertEquals(USER, Files.getAttribute(p2, "unix:uid"), p2 + "'s owner");
                assertEquals(USER, Files.getAttribute(p2, "unix:gid"), p2 + "'s group");
            }
        } finally {
            stop(p, log);
        }
        assertFalse(Files.exists(sock), "the socket is removed on SIGTERM");
    }

    @Test
    void shouldExportReadOnlyAMountWithLockedFlags() throws Exception {
        // in the user namespace this mount's flags are locked: a read-only remount must keep them
        Path locked = Files.createDirectory(dir.resolve("locked"));
        sh("mount -t tmpfs -o noexec,nosuid,nodev,noatime,mode=0755,uid=" + USER + ",gid=" + USER + " locked " + locked);
        try {
            Files.writeString(locked.resolve("note.txt"), "on a noexec noatime mount");
            Path sock = run.resolve("ro.sock");
            Path log = dir.resolve("ro.log");
            Process p = startAsUser(log, "--socket-path", sock.toString(), "--shared-dir", locked.toString(),
                    "--readonly");
            try {
                awaitSocket(sock, log, p);
                String shared = Files.readAllLines(Path.of("/proc", Long.toString(jvmPid(p)), "mountinfo")).stream()
                        .filter(l -> l.split(" ")[4].equals("/shared")).findFirst().orElseThrow();
                Set<String> options = Set.of(shared.split(" ")[5].split(","));
                assertTrue(options.containsAll(Set.of("ro", "nosuid", "nodev", "noexec", "noatime")), shared);
                try (FuseClient c = FuseClient.connect(sock, 64)) {
                    assertEquals(0, c.init(38, 0, 0, TIMEOUT), Files.readString(log));
                    assertEquals("on a noexec noatime mount", read(c, lookup(c, Fuse.ROOT_ID, "note.txt")));
                }
            } finally {
                stop(p, log);
            }
        } finally {
            sh("umount " + locked);
        }
    }

    @Test
    void shouldGiveTheSocketOnlyToAGroupTheNamespaceMaps() throws Exception {
        // the user's own group (by number: its name differs between distributions)
        Path sock = run.resolve("group.sock");
        Path log = dir.resolve("group.log");
        Process p = startAsUser(log, "--socket-path", sock.toString(), "--shared-dir", shared.toString(),
                "--socket-group", "" + USER);
        try {
            awaitSocket(sock, log, p);
            assertEquals(USER, Files.getAttribute(sock, "unix:gid"));
            assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(sock)));
        } finally {
            stop(p, log);
        }
        // root's group: inside the namespace gid 0 is this user's own, which it must not be given instead
        Path rootLog = dir.resolve("group-root.log");
        Process refused = startAsUser(rootLog, "--socket-path", sock.toString(), "--shared-dir", shared.toString(),
                "--socket-group", "root");
        assertTrue(refused.waitFor(60, TimeUnit.SECONDS));
        String out = Files.readString(rootLog);
        assertEquals(1, refused.exitValue(), out);
        assertTrue(out.contains("ERROR io.vhostj.vhostuser.backend.BackendLauncher - --socket-group root: gid 0 is not "
                + "mapped in this user namespace (only gid 65534, this user's, is)"), out);
        assertFalse(Files.exists(sock));
    }

    @Test
    void shouldTellANonRootUserWhichSandboxModesWork() throws Exception {
        Path log = dir.resolve("help.log");
        Process help = startAsUser(log, "--help");
        assertTrue(help.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, help.exitValue(), Files.readString(log));
        String text = Files.readString(log).replaceAll("\\s+", " ");
        assertTrue(text.contains("namespace (default): the process's root becomes a read-only tmpfs"), text);
        assertTrue(text.contains("Run by root, or by another user where the kernel allows user namespaces: that user "
                + "is then root in a user namespace mapping only their own uid and gid, so every file the guest creates "
                + "belongs to them"), text);
        assertTrue(text.contains("chroot (needs root, no user namespace)"), text);

        // and it is so: chroot is refused, with a way out
        Path sock = run.resolve("chroot.sock");
        Path chrootLog = dir.resolve("chroot.log");
        Process chroot = startAsUser(chrootLog, "--socket-path", sock.toString(), "--shared-dir", shared.toString(),
                "--sandbox", "chroot");
        assertTrue(chroot.waitFor(60, TimeUnit.SECONDS));
        assertEquals(1, chroot.exitValue(), Files.readString(chrootLog));
        assertTrue(Files.readString(chrootLog).contains(
                "ERROR io.vhostj.vhostuser.backend.BackendLauncher - fs: --sandbox chroot needs root; "
                        + "as another user choose --sandbox namespace or none"), Files.readString(chrootLog));
        assertFalse(Files.exists(sock));
    }

    @Test
    void shouldRunSandboxNoneAsItIsForANonRootUser() throws Exception {
        Path sock = run.resolve("none.sock");
        Path log = dir.resolve("none.log");
        Process p = startAsUser(log, "--socket-path", sock.toString(), "--shared-dir", shared.toString(),
                "-o", "sandbox=none");
        try {
            awaitSocket(sock, log, p);
            Path proc = Path.of("/proc", Long.toString(jvmPid(p)));
            for (String ns : List.of("user", "mnt")) {
                assertEquals(Files.readSymbolicLink(Path.of("/proc/self/ns", ns)),
                        Files.readSymbolicLink(proc.resolve("ns").resolve(ns)), ns + " namespace: the host's");
            }
            assertFalse(Files.readString(log).contains("user namespace"), Files.readString(log));
            try (FuseClient c = FuseClient.connect(sock, 64)) {
                assertEquals(0, c.init(38, 0, 0, TIMEOUT), Files.readString(log));
                long hello = lookup(c, Fuse.ROOT_ID, "hello.txt");
                assertEquals(0, attrUid(c), "the host's ids, as they are");
                assertEquals("hello from the host", read(c, hello));
            }
        } finally {
            stop(p, log);
        }
    }

    @Test
    void shouldRefuseClearlyWhereUserNamespacesAreRefused() throws Exception {
        // an unshare(1) that refuses --user, as a kernel without unprivileged user namespaces does
        Path bin = Files.createDirectory(dir.resolve("bin"));
        Path unshare = bin.resolve("unshare");
        Files.writeString(unshare, "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = --user ]; then\n"
                + "    echo 'unshare: unshare failed: Operation not permitted' >&2; exit 1\n  fi\ndone\n"
                + "exec " + realUnshare() + " \"$@\"\n");
        Files.setPosixFilePermissions(unshare, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path sock = run.resolve("refused.sock");
        Path log = dir.resolve("refused.log");
        List<String> cmd = new ArrayList<>(AS_USER);
        cmd.addAll(List.of(HostTools.ROOT.resolve("bin/vhostj").toString(), "fs", "--socket-path", sock.toString(),
                "--shared-dir", shared.toString()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("VHOSTJ_NO_BUILD", "1");
        pb.environment().put("PATH", bin + ":" + System.getenv("PATH"));
        Process p = pb.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String out = Files.readString(log);
        assertEquals(1, p.exitValue(), out);
        assertTrue(out.contains("ERROR io.vhostj.vhostuser.backend.BackendLauncher - fs: --sandbox namespace needs root, "
                + "or a user namespace to be root in"), out);
        assertTrue(out.contains("run as root or choose --sandbox none"), out);
        assertEquals(1, out.lines().filter(l -> l.contains("ERROR")).count(), out);
        assertFalse(Files.exists(sock));
    }

    private static void sh(String command) throws Exception {
        Process p = new ProcessBuilder("sh", "-c", command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), command + ": " + out);
    }

    private static int attrUid(FuseClient c) {
        return Native.getInt(c.out() + 16 + Fuse.ENTRY_ATTR + Fuse.ATTR_UID);
    }

    private static String realUnshare() {
        for (String d : System.getenv("PATH").split(":")) {
            if (Files.isExecutable(Path.of(d, "unshare"))) {
                return Path.of(d, "unshare").toString();
            }
        }
        throw new AssertionError("no unshare on PATH");
    }

    /** {@code bin/vhostj fs args...} as uid 65534 (gid 65534, no supplementary groups). */
    private static Process startAsUser(Path log, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(AS_USER);
        cmd.add(HostTools.ROOT.resolve("bin/vhostj").toString());
        cmd.add("fs");
        cmd.addAll(List.of(args));
        return BackendProcess.launch(log, cmd);
    }
}
