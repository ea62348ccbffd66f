package io.vhostj.tests;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.bench.FuseClient;
import io.vhostj.fs.Fuse;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.UnixSocket;

/**
 * {@code bin/virtiofsd} started exactly as Kata Containers starts virtiofsd, both ways it does,
 * then used through vhostj's frontend: INIT, LOOKUP, OPEN, READ.
 */
class VirtiofsdDropInIT {
    private static final long TIMEOUT = 5_000_000_000L;

    @TempDir
    Path dir;

    @Test
    void shouldServeKatasFdInvocation() throws Exception {
        Path shared = shared();
        Path sock = dir.resolve("kata.sock");
        // Kata: the runtime binds and listens, then passes the socket as fd 3
        String py = "import socket,os,sys\n"
                + "s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)\n"
                + "os.dup2(s.fileno(), 3); os.set_inheritable(3, True)\n"
                + "os.execv(sys.argv[2], [sys.argv[2]] + sys.argv[3:])\n";
        List<String> cmd = new ArrayList<>(List.of("python3", "-c", py, sock.toString(),
                HostTools.ROOT.resolve("bin/virtiofsd").toString(),
                "--syslog", "--cache=auto", "--shared-dir=" + shared, "--fd=3", "--thread-pool-size=1",
                "--announce-submounts", "--xattr"));
        // --syslog: a stand-in for /dev/log receives the backend's log, sandboxed as it is
        Path devLog = dir.resolve("dev-log");
        try (UnixSocket syslog = UnixSocket.bindDatagram(devLog)) {
            check(cmd, sock, Map.of("VHOSTJ_JAVA_OPTS", "-Dvhostj.syslog.socket=" + devLog));
            List<String> lines = datagrams(syslog);
            assertTrue(lines.stream().anyMatch(l -> l.matches("<30>vhostj-fs\\[\\d+\\]: \\[main\\] INFO .*fs: exporting .*")),
                    String.join("\n", lines));
        }
    }

    @Test
    void shouldLogToStderrWhenNoSyslogListens() throws Exception {
        Path sock = dir.resolve("nosyslog.sock");
        Path log = dir.resolve("nosyslog.log");
        Process p = BackendProcess.launch(log, List.of(HostTools.ROOT.resolve("bin/virtiofsd").toString(), "--syslog",
                "--socket-path", sock.toString(), "--shared-dir", shared().toString()),
                Map.of("VHOSTJ_JAVA_OPTS", "-Dvhostj.syslog.socket=" + dir.resolve("no-such-socket")));
        try {
            for (int i = 0; i < 200 && !Files.readString(log).contains("fs: exporting"); i++) {
                Thread.sleep(50);
            }
            String out = Files.readString(log);
            assertTrue(Files.exists(sock), out);
            assertTrue(out.contains("vhostj fs: --syslog: cannot reach " + dir.resolve("no-such-socket")), out);
            assertTrue(out.contains("fs: exporting"), out);
        } finally {
            p.destroy();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
        }
    }

    /** The datagrams waiting on {@code s}, as text. */
    private static List<String> datagrams(UnixSocket s) throws Exception {
        List<String> lines = new ArrayList<>();
        long buf = Native.allocate(16384);
        try {
            while ((io.vhostj.vhostuser.sys.Poll.ready(s.fd(), -1, 0) & 1) != 0) {
                int n = s.receive(buf, 16384, new int[UnixSocket.MAX_FDS]);
                byte[] b = new byte[n];
                Native.copyToArray(buf, b, 0, n);
                lines.add(new String(b, StandardCharsets.UTF_8));
            }
        } finally {
            Native.free(buf);
        }
        return lines;
    }

    @Test
    void shouldServeKatasSocketPathInvocation() throws Exception {
        Path shared = shared();
        Path sock = dir.resolve("kata2.sock");
        check(List.of(HostTools.ROOT.resolve("bin/virtiofsd").toString(), "--socket-path", sock.toString(),
                "--shared-dir", shared.toString(), "--cache", "auto", "--thread-pool-size=1", "-o",
                "announce_submounts"), sock);
    }

    @Test
    void shouldHandTheSocketToTheSocketGroup() throws Exception {
        Path sock = dir.resolve("grp.sock");
        Path log = dir.resolve("grp.log");
        Process p = start(List.of(HostTools.ROOT.resolve("bin/virtiofsd").toString(), "--socket-path", sock.toString(),
                "--shared-dir", shared().toString(), "--socket-group", "daemon"), log);
        try {
            for (int i = 0; i < 200 && !Files.exists(sock); i++) {
                Thread.sleep(50);
            }
            // the group is set just after the socket appears
            for (int i = 0; i < 100 && !"daemon".equals(Files.getAttribute(sock, "posix:group").toString()); i++) {
                Thread.sleep(50);
            }
            assertEquals("daemon", Files.getAttribute(sock, "posix:group").toString(), Files.readString(log));
            assertEquals("rw-rw----", java.nio.file.attribute.PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(sock)));
        } finally {
            p.destroy();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
        }
    }

    private Path shared() throws Exception {
        Path shared = Files.createDirectory(dir.resolve("shared-" + System.nanoTime()));
        Files.writeString(shared.resolve("config.json"), "{\"kata\": true}");
        return shared;
    }

    private void check(List<String> cmd, Path sock) throws Exception {
        check(cmd, sock, Map.of());
    }

    private void check(List<String> cmd, Path sock, Map<String, String> env) throws Exception {
        Path log = dir.resolve("virtiofsd-" + sock.getFileName() + ".log");
        Process p = BackendProcess.launch(log, cmd, env);
        try {
            for (int i = 0; i < 200 && !Files.exists(sock); i++) {
                Thread.sleep(50);
            }
            assertTrue(Files.exists(sock), "no socket:\n" + Files.readString(log));
            try (FuseClient c = FuseClient.connect(sock, 64)) {
                long a = c.in() + Fuse.IN_HEADER_SIZE;
                assertEquals(0, c.init(38, 0, 0, TIMEOUT), Files.readString(log));
                byte[] name = "config.json\0".getBytes(StandardCharsets.UTF_8);
                Native.copyFromArray(name, 0, a, name.length);
                assertEquals(0, c.request(Fuse.LOOKUP, Fuse.ROOT_ID, name.length, 16 + Fuse.ENTRY_OUT_SIZE, TIMEOUT));
                long node = Native.getLong(c.out() + 16 + Fuse.ENTRY_NODEID);
                Native.zero(a, Fuse.OPEN_IN_SIZE);
                assertEquals(0, c.request(Fuse.OPEN, node, Fuse.OPEN_IN_SIZE, 16 + Fuse.OPEN_OUT_SIZE, TIMEOUT));
                long fh = Native.getLong(c.out() + 16 + Fuse.OPEN_OUT_FH);
                Native.zero(a, Fuse.READ_IN_SIZE);
                Native.putLong(a + Fuse.READ_IN_FH, fh);
                Native.putInt(a + Fuse.READ_IN_SIZE_BYTES, 4096);
                assertEquals(0, c.request(Fuse.READ, node, Fuse.READ_IN_SIZE, 16 + 4096, TIMEOUT));
                byte[] got = new byte[c.replyLength() - 16];
                Native.copyToArray(c.out() + 16, got, 0, got.length);
                assertEquals("{\"kata\": true}", new String(got, StandardCharsets.UTF_8));
            }
            assertTrue(p.isAlive(), "still serving after the frontend left:\n" + Files.readString(log));
        } finally {
            p.destroy();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
        }
        assertEquals(0, p.exitValue(), "SIGTERM exits cleanly:\n" + Files.readString(log));
        assertFalse(Files.readString(log).contains("Exception"), Files.readString(log));
    }

    private static Process start(List<String> cmd, Path log) throws Exception {
        return BackendProcess.launch(log, cmd);
    }
}
