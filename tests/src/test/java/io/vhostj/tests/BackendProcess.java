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
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("VHOSTJ_NO_BUILD", "1");
        Process p = pb.start();
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

    public String log() throws IOException {
        return Files.readString(log);
    }

    public boolean isAlive() {
        return process.isAlive();
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
