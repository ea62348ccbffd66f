package io.vhostj.tests;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bin/vhostj as a user runs it (after the jars are packaged: failsafe, VHOSTJ_NO_BUILD=1). */
class LauncherIT {
    @TempDir
    Path dir;

    record Result(int exit, String stdout, String stderr) {
    }

    private static Result run(String... args) throws Exception {
        return run(java.util.Map.of(), args);
    }

    private static Result run(java.util.Map<String, String> env, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>();
        cmd.add(HostTools.ROOT.resolve("bin/vhostj").toString());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("VHOSTJ_NO_BUILD", "1");
        pb.environment().putAll(env);
        Process p = pb.start();
        var out = p.getInputStream();
        var err = p.getErrorStream();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "bin/vhostj " + String.join(" ", args) + " timed out");
        return new Result(p.exitValue(), new String(out.readAllBytes()), new String(err.readAllBytes()));
    }

    /**
     * Start-up: the JVM a backend runs in maps the launcher's class-data archive (made once,
     * newer than the jars) and loads jffi's library from the build, not from a temporary copy;
     * the JVM's CDS logging stays off stdout, which carries the capabilities JSON.
     */
    @Test
    void shouldStartBackendsFromTheClassArchiveAndTheUnpackedJffiLibrary() throws Exception {
        Result caps = run("blk", "--print-capabilities");
        assertEquals(0, caps.exit(), caps.stderr());
        assertTrue(caps.stdout().matches("\\{\"type\": \"block\"[^\n]*\\}\n"), "nothing but the JSON on stdout: " + caps.stdout());
        Path cds = HostTools.ROOT.resolve("tests/target/cds");
        Path jar = HostTools.ROOT.resolve("tests/target/tests-0.1.0-SNAPSHOT.jar");
        Path archive;
        try (var files = java.nio.file.Files.list(cds)) {
            archive = files.filter(f -> f.toString().endsWith(".jsa")).findFirst().orElseThrow();
        }
        assertTrue(java.nio.file.Files.getLastModifiedTime(archive).compareTo(
                java.nio.file.Files.getLastModifiedTime(jar)) > 0, "the archive is newer than the jars");

        Path sock = dir.resolve("blk.sock");
        Path disk = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        try (BackendProcess b = BackendProcess.start(sock, dir.resolve("blk.log"), "blk", "--socket-path", sock.toString(),
                "--path", disk.toString())) {
            String maps = java.nio.file.Files.readString(Path.of("/proc", Long.toString(b.pid()), "maps"));
            assertTrue(maps.contains(archive.toString()), "the archive is mapped:\n" + maps);
            assertTrue(maps.contains(HostTools.ROOT.resolve("tests/target/jffi").toString()), "jffi from the build:\n" + maps);
        }
    }

    @Test
    void shouldPrintItsVersionForEveryCommand() throws Exception {
        for (String[] cmd : new String[][] {{"fs", "--version"}, {"blk", "-V"}, {"vsock", "--version"},
                {"devmapper", "--version"}, {"devmapper", "status", "--version"}, {"bench", "fs", "-V"}}) {
            Result r = run(cmd);
            assertEquals(0, r.exit(), String.join(" ", cmd) + ": " + r.stderr());
            assertEquals("vhostj 0.1.0-SNAPSHOT", r.stdout().strip(), String.join(" ", cmd));
        }
    }

    @Test
    void shouldListSubcommandsInHelp() throws Exception {
        Result r = run("--help");
        assertEquals(0, r.exit());
        for (String sub : new String[] {"demo", "bench", "blk", "fs", "vsock", "devmapper", "sandbox"}) {
            assertTrue(r.stdout().contains("  " + sub), "help lists " + sub + ":\n" + r.stdout());
        }
    }

    @Test
    void shouldIgnoreAPrefixVariableFromTheEnvironment() throws Exception {
        // conda, Termux and build tools export PREFIX; the launcher once ran it as a command
        Result r = run(java.util.Map.of("PREFIX", "/usr"), "devmapper", "--help");
        assertEquals(0, r.exit(), r.stderr());
        assertTrue(r.stdout().contains("create_snap"), r.stdout());
    }

    @Test
    void shouldRejectAnUnknownCommandInOneLine() throws Exception {
        Result r = run("frobnicate");
        assertEquals(2, r.exit());
        assertEquals(1, r.stderr().strip().lines().count(), r.stderr());
        assertTrue(r.stderr().contains("unknown command"), r.stderr());
    }

    @Test
    void shouldRejectBadBenchOptionsWithoutAStackTrace() throws Exception {
        Result r = run("bench", "blk", "--socket", dir.resolve("none.sock").toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.stderr().contains("no socket at"), r.stderr());
        assertFalse(r.stderr().contains("\tat "), "no stack trace: " + r.stderr());
        Result bs = run("bench", "blk", "--socket", "/", "--bs", "12q");
        assertNotEquals(0, bs.exit());
        assertFalse(bs.stderr().contains("\tat "), "no stack trace: " + bs.stderr());
    }

    @Test
    void shouldBenchQemuStorageDaemonAndPrintJson() throws Exception {
        Path image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(64 << 20);
        }
        try (QemuStorageDaemon qsd = QemuStorageDaemon.start(image, dir.resolve("blk.sock"), true)) {
            Result r = run("bench", "blk", "--socket", qsd.socket().toString(), "--rw", "randwrite", "--bs", "4k",
                    "--iodepth", "8", "--runtime", "1", "--ramp_time", "0", "--json");
            assertEquals(0, r.exit(), r.stderr());
            String json = r.stdout().strip();
            assertTrue(json.startsWith("{") && json.endsWith("}"), json);
            double iops = number(json, "iops");
            assertTrue(iops > 0, json);
            assertTrue(number(json, "mib_s") > 0, json);
            assertTrue(number(json, "p50_us") > 0, json);
            assertTrue(number(json, "p99_us") >= number(json, "p50_us"), json);
            assertEquals(0, number(json, "errors"), json);
        }
    }

    private static double number(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\":([0-9.]+)").matcher(json);
        assertTrue(m.find(), field + " in " + json);
        return Double.parseDouble(m.group(1));
    }
}
