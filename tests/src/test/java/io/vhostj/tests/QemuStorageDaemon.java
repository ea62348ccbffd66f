package io.vhostj.tests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** qemu-storage-daemon exporting a file as vhost-user-blk: the third-party peer of the tests. */
public final class QemuStorageDaemon implements AutoCloseable {
    private final Process process;
    private final Path socket;
    private final Path log;

    private QemuStorageDaemon(Process process, Path socket, Path log) {
        this.process = process;
        this.socket = socket;
        this.log = log;
    }

    /** Starts the daemon and waits until its socket exists. */
    public static QemuStorageDaemon start(Path image, Path socket, boolean writable, String... extra)
            throws IOException, InterruptedException {
        Path binary = HostTools.require("qemu-storage-daemon", "qemu-system-common");
        Path log = socket.resolveSibling(socket.getFileName() + ".log");
        List<String> cmd = new ArrayList<>(List.of(binary.toString(),
                "--blockdev", "driver=file,node-name=file0,filename=" + image,
                "--export", "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=" + socket
                        + ",writable=" + (writable ? "on" : "off")));
        cmd.addAll(List.of(extra));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!Files.exists(socket)) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                p.destroyForcibly();
                throw new IOException("qemu-storage-daemon did not start: " + Files.readString(log));
            }
            Thread.sleep(20);
        }
        return new QemuStorageDaemon(p, socket, log);
    }

    public Path socket() {
        return socket;
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public String log() throws IOException {
        return Files.readString(log);
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
        }
    }
}
