package io.vhostj.tests;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.bench.FuseClient;
import io.vhostj.fs.Fuse;
import io.vhostj.vhostuser.sys.Native;

/**
 * {@code vhostj fs --sandbox}: started as a user starts it, the backend sees nothing of the host
 * but the shared directory (and, read-only, its own JDK and jars), still serves the export, sees
 * mounts the host makes under the directory after it started (as Kata does with container
 * rootfs), and removes its socket on SIGTERM.
 */
class FsSandboxIT {
    private static final long TIMEOUT = 5_000_000_000L;

    @TempDir
    Path dir;
    Path shared;

    @BeforeEach
    void root() throws Exception {
        boolean root = Native.LIBC.geteuid() == 0;
        if (!root) {
            System.err.println("\n!! SKIPPED FsSandboxIT: the sandbox needs root and this test runs as uid "
                    + Native.LIBC.geteuid() + "\n");
        }
        Assumptions.assumeTrue(root, "needs root");
        shared = Files.createDirectory(dir.resolve("shared"));
        Files.writeString(shared.resolve("hello.txt"), "hello from the host");
        Files.writeString(dir.resolve("outside.txt"), "host secret");
    }

    @Test
    void shouldConfineTheDefaultNamespaceSandboxAndStillServe() throws Exception {
        // a shared mount, so that what the host mounts under it later propagates (Kata's layout)
        sh("mount --bind " + shared + " " + shared + " && mount --make-shared " + shared);
        Path late = shared.resolve("late");
        try {
            Path sock = dir.resolve("ns.sock");
            Path log = dir.resolve("ns.log");
            Process p = start(log, "--socket-path", sock.toString(), "--shared-dir", shared.toString());
            try {
                awaitSocket(sock, log, p);
                long jvm = jvmPid(p);
                Path root = Path.of("/proc", Long.toString(jvm), "root");
                List<String> top = new ArrayList<>();
                try (var s = Files.list(root)) {
                    s.forEach(e -> top.add(e.getFileName().toString()));
                }
                assertTrue(top.contains("shared"), top.toString());
                assertFalse(Files.exists(root.resolve("etc/passwd")), "the host's /etc is out of reach: " + top);
                assertFalse(Files.exists(root.resolve("proc/self")), "no /proc inside: " + top);
                assertFalse(Files.exists(root.resolve(Path.of("/").relativize(dir)).resolve("outside.txt")),
                        "the directory around the export is out of reach");
                for (String ns : List.of("mnt", "net", "pid")) {
                    assertNotEquals(Files.readSymbolicLink(Path.of("/proc/self/ns", ns)),
                            Files.readSymbolicLink(Path.of("/proc", Long.toString(jvm), "ns", ns)), ns + " namespace");
                }
                // pid 1 of its own pid namespace: no host process is there to see or signal
                String nspid = Files.readAllLines(Path.of("/proc", Long.toString(jvm), "status")).stream()
                        .filter(l -> l.startsWith("NSpid:")).findFirst().orElseThrow();
                assertTrue(nspid.matches("NSpid:\\s+" + jvm + "\\s+1"), nspid);
                assertThrows(java.io.IOException.class, () -> Files.writeString(root.resolve("new.txt"), "x"),
                        "the sandbox's root is read-only");

                // the host mounts something under the export after the backend started
                Files.createDirectory(late);
                sh("mount -t tmpfs late " + late);
                Files.writeString(late.resolve("inside-late-mount.txt"), "propagated");

                try (FuseClient c = FuseClient.connect(sock, 64)) {
                    assertEquals(0, c.init(38, 0, 0, TIMEOUT), Files.readString(log));
                    assertEquals("hello from the host", read(c, lookup(c, Fuse.ROOT_ID, "hello.txt")));
                    assertEquals("propagated", read(c, lookup(c, lookup(c, Fuse.ROOT_ID, "late"),
                            "inside-late-mount.txt")));
                    mkdir(c, "made-by-guest");
                }
                assertTrue(Files.isDirectory(shared.resolve("made-by-guest")), "the guest's mkdir reached the host");
            } finally {
                stop(p, log);
            }
            assertFalse(Files.exists(sock), "the socket is removed on SIGTERM");
        } finally {
            sh("umount " + late + " 2>/dev/null; umount " + shared);
        }
    }

    @Test
    void shouldServeFromInsideAChroot() throws Exception {
        Path sock = dir.resolve("chroot.sock");
        Path log = dir.resolve("chroot.log");
        Process p = start(log, "--socket-path", sock.toString(), "--shared-dir", shared.toString(),
                "--sandbox", "chroot");
        try {
            awaitSocket(sock, log, p);
            assertEquals(shared.toRealPath(), Files.readSymbolicLink(Path.of("/proc", Long.toString(jvmPid(p)), "root")));
            assertInCallersNamespaces(jvmPid(p));
            try (FuseClient c = FuseClient.connect(sock, 64)) {
                assertEquals(0, c.init(38, 0, 0, TIMEOUT), Files.readString(log));
                assertEquals("hello from the host", read(c, lookup(c, Fuse.ROOT_ID, "hello.txt")));
                mkdir(c, "made-in-chroot");
            }
            assertTrue(Files.isDirectory(shared.resolve("made-in-chroot")));
        } finally {
            stop(p, log);
        }
    }

    /** As virtiofsd: --sandbox none (and chroot) leave the process in its caller's namespaces. */
    @Test
    void shouldLeaveTheCallersNamespacesAloneWithSandboxNone() throws Exception {
        Path sock = dir.resolve("none.sock");
        Path log = dir.resolve("none.log");
        Process p = start(log, "--socket-path", sock.toString(), "--shared-dir", shared.toString(), "-o", "sandbox=none");
        try {
            awaitSocket(sock, log, p);
            assertEquals(p.pid(), jvmPid(p), "no launcher process in between");
            assertInCallersNamespaces(p.pid());
            assertEquals(Path.of("/"), Files.readSymbolicLink(Path.of("/proc", Long.toString(p.pid()), "root")));
            try (FuseClient c = FuseClient.connect(sock, 64)) {
                assertEquals(0, c.init(38, 0, 0, TIMEOUT), Files.readString(log));
                assertEquals("hello from the host", read(c, lookup(c, Fuse.ROOT_ID, "hello.txt")));
            }
        } finally {
            stop(p, log);
        }
    }

    private static void assertInCallersNamespaces(long pid) throws Exception {
        for (String ns : List.of("mnt", "net", "pid", "user")) {
            assertEquals(Files.readSymbolicLink(Path.of("/proc/self/ns", ns)),
                    Files.readSymbolicLink(Path.of("/proc", Long.toString(pid), "ns", ns)), ns + " namespace");
        }
    }

    @Test
    void shouldStopTheBackendWhenTheProcessItWasStartedAsIsKilled() throws Exception {
        Path sock = dir.resolve("kill.sock");
        Path log = dir.resolve("kill.log");
        Process p = start(log, "--socket-path", sock.toString(), "--shared-dir", shared.toString());
        awaitSocket(sock, log, p);
        ProcessHandle jvm = ProcessHandle.of(jvmPid(p)).orElseThrow();
        p.destroyForcibly(); // SIGKILL to what the caller started, as a runtime tearing down does
        assertTrue(jvm.onExit().get(20, TimeUnit.SECONDS) != null && !jvm.isAlive(), "the JVM outlived it");
        // killed with it, it leaves its socket; the next start on the same path replaces it
        Path log2 = dir.resolve("kill-again.log");
        Process again = start(log2, "--socket-path", sock.toString(), "--shared-dir", shared.toString());
        try {
            awaitSocket(sock, log2, again);
            try (FuseClient c = FuseClient.connect(sock, 64)) {
                assertEquals(0, c.init(38, 0, 0, TIMEOUT), Files.readString(log2));
            }
        } finally {
            stop(again, log2);
        }
    }

    /**
     * The backend's JVM: the started process itself, or (in the namespace sandbox, which needs a
     * fork for its pid namespace) the java process below it.
     */
    static long jvmPid(Process p) {
        return java.util.stream.Stream.concat(java.util.stream.Stream.of(p.toHandle()), p.toHandle().descendants())
                .filter(h -> h.info().command().orElse("").endsWith("/java")).findFirst()
                .orElseThrow(() -> new AssertionError("no java process under " + p.pid())).pid();
    }

    @Test
    void shouldRefuseAnUnknownSandboxMode() throws Exception {
        Path log = dir.resolve("bad.log");
        Process p = start(log, "--socket-path", dir.resolve("bad.sock").toString(), "--shared-dir", shared.toString(),
                "--sandbox", "jail");
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(2, p.exitValue());
        assertEquals("vhostj fs: --sandbox must be namespace, chroot or none, not jail",
                Files.readString(log).strip());
    }

    static long lookup(FuseClient c, long parent, String name) throws Exception {
        byte[] b = (name + "\0").getBytes(StandardCharsets.UTF_8);
        Native.copyFromArray(b, 0, c.in() + Fuse.IN_HEADER_SIZE, b.length);
        assertEquals(0, c.request(Fuse.LOOKUP, parent, b.length, 16 + Fuse.ENTRY_OUT_SIZE, TIMEOUT), "LOOKUP " + name);
        return Native.getLong(c.out() + 16 + Fuse.ENTRY_NODEID);
    }

    static String read(FuseClient c, long node) throws Exception {
        long a = c.in() + Fuse.IN_HEADER_SIZE;
        Native.zero(a, Fuse.OPEN_IN_SIZE);
        assertEquals(0, c.request(Fuse.OPEN, node, Fuse.OPEN_IN_SIZE, 16 + Fuse.OPEN_OUT_SIZE, TIMEOUT), "OPEN");
        long fh = Native.getLong(c.out() + 16 + Fuse.OPEN_OUT_FH);
        Native.zero(a, Fuse.READ_IN_SIZE);
        Native.putLong(a + Fuse.READ_IN_FH, fh);
        Native.putInt(a + Fuse.READ_IN_SIZE_BYTES, 4096);
        assertEquals(0, c.request(Fuse.READ, node, Fuse.READ_IN_SIZE, 16 + 4096, TIMEOUT), "READ");
        byte[] got = new byte[c.replyLength() - 16];
        Native.copyToArray(c.out() + 16, got, 0, got.length);
        return new String(got, StandardCharsets.UTF_8);
    }

    private static void mkdir(FuseClient c, String name) throws Exception {
        long a = c.in() + Fuse.IN_HEADER_SIZE;
        Native.putInt(a + Fuse.MKDIR_IN_MODE, 0755);
        Native.putInt(a + Fuse.MKDIR_IN_UMASK, 0);
        byte[] b = (name + "\0").getBytes(StandardCharsets.UTF_8);
        Native.copyFromArray(b, 0, a + Fuse.MKDIR_IN_SIZE, b.length);
        assertEquals(0, c.request(Fuse.MKDIR, Fuse.ROOT_ID, Fuse.MKDIR_IN_SIZE + b.length, 16 + Fuse.ENTRY_OUT_SIZE,
                TIMEOUT), "MKDIR " + name);
    }

    private static Process start(Path log, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("fs"));
        cmd.addAll(List.of(args));
        return BackendProcess.launchVhostj(log, cmd.toArray(String[]::new));
    }

    static void awaitSocket(Path sock, Path log, Process p) throws Exception {
        // the socket appears before the sandbox is entered: wait for the log line that follows it
        for (int i = 0; i < 400 && p.isAlive() && !Files.readString(log).contains("waiting for a frontend"); i++) {
            Thread.sleep(50);
        }
        assertTrue(p.isAlive() && Files.exists(sock), "not serving:\n" + Files.readString(log));
    }

    static void stop(Process p, Path log) throws Exception {
        p.destroy();
        assertTrue(p.waitFor(10, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), "SIGTERM exits cleanly:\n" + Files.readString(log));
        assertFalse(Files.readString(log).contains("Exception"), Files.readString(log));
    }

    private static void sh(String command) throws Exception {
        Process p = new ProcessBuilder("sh", "-c", command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), command + ": " + out);
    }
}
