package io.vhostj.tests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A vhostj backend started as a user starts it: {@code bin/vhostj <device> ...}. */
public final class BackendProcess implements AutoCloseable {
    private final Process process;
    private final Path log;

    private BackendProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /** Starts {@code bin/vhostj args...} and waits for {@code socket} to appear. */
    public static BackendProcess start(Path socket, Path log, String... args) throws IOException, InterruptedException {
        return startProgram(socket, log, HostTools.ROOT.resolve("bin/vhostj").toString(), args);
    }

    /** Starts another backend program (a peer such as the C virtiofsd) the same way. */
    public static BackendProcess startProgram(Path socket, Path log, String program, String... args)
            throws IOException, InterruptedException {
        Files.deleteIfExists(socket); // a killed backend leaves its socket file behind
        List<String> cmd = new ArrayList<>();
        cmd.add(program);
        cmd.addAll(List.of(args));
        Process p = launch(log, cmd);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(socket)) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                p.destroyForcibly();
                throw new IOException(program + " " + String.join(" ", args) + " did not start:\n" + Files.readString(log));
            }
            Thread.sleep(20);
        }
        return new BackendProcess(p, log);
    }

    /**
     * Starts {@code command} with its output (stdout and stderr) in {@code log}, the jars as they
     * are, and waits for nothing: for tests of start-up errors and of several sockets.
     */
    public static Process launch(Path log, List<String> command) throws IOException {
        return launch(log, command, java.util.Map.of());
    }

    /** {@link #launch(Path, List)} with {@code env} added to the environment. */
    public static Process launch(Path log, List<String> command, java.util.Map<String, String> env) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("VHOSTJ_NO_BUILD", "1");
        pb.environment().putAll(env);
        return pb.start();
    }

    /** {@link #launch} of {@code bin/vhostj args...}. */
    /**
     * The share of one CPU that {@code p} and its descendants used over the next {@code ms}
     * (from /proc's utime + stime, 10 ms ticks). For "is it spinning" checks only: a busy loop is
     * near 1.0, an idle backend near 0, far apart on any machine.
     */
    public static double cpuShare(Process p, long ms) throws InterruptedException {
        long before = cpuTicks(p);
        Thread.sleep(ms);
        return (cpuTicks(p) - before) / (ms / 10.0);
    }

    private static long cpuTicks(Process p) {
        long ticks = 0;
        for (ProcessHandle h : java.util.stream.Stream.concat(java.util.stream.Stream.of(p.toHandle()),
                p.toHandle().descendants()).toList()) {
            try {
                String stat = java.nio.file.Files.readString(Path.of("/proc/" + h.pid() + "/stat"));
                String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime, stime
            } catch (IOException | RuntimeException e) {
                // gone meanwhile
            }
        }
        return ticks;
    }

    public static Process launchVhostj(Path log, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(HostTools.ROOT.resolve("bin/vhostj").toString());
        cmd.addAll(List.of(args));
        return launch(log, cmd);
    }

    public String log() throws IOException {
        return Files.readString(log);
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** The started process (for commands without a sandbox, the backend's JVM itself). */
    public long pid() {
        return process.pid();
    }

    /** SIGKILL: the backend dies mid-request, as in a crash. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor();
    }

    /** SIGTERM, then the exit code (or -1 if it had to be killed). */
    public int terminate() throws InterruptedException {
        process.destroy();
        if (process.waitFor(10, TimeUnit.SECONDS)) {
            return process.exitValue();
        }
        process.destroyForcibly().waitFor();
        return -1;
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            terminate();
        }
    }
}
