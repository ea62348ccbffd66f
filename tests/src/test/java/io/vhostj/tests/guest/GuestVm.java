package io.vhostj.tests.guest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Assumptions;

import io.vhostj.tests.HostTools;

/**
 * Boots a real QEMU guest (TCG; see DESIGN.md) on a Debian kernel and a busybox initramfs made
 * by {@code scripts/guest/prepare.sh}, runs one shell script in it and returns what it printed.
 * The guest has 1 GiB of shared memfd RAM, as vhost-user requires.
 */
public final class GuestVm {
    private static final Pattern EXIT = Pattern.compile("VHOSTJ-GUEST-EXIT (\\d+)");
    private static Path prepared;

    /** The outcome of one boot. */
    public record Result(int exitCode, String console) {
        public boolean ok() {
            return exitCode == 0;
        }
    }

    private final List<String> deviceArgs = new ArrayList<>();
    private int cpus = 2;

    public GuestVm chardevSocket(String id, Path socket) {
        deviceArgs.addAll(List.of("-chardev", "socket,id=" + id + ",path=" + socket));
        return this;
    }

    /** A socket chardev that QEMU redials every {@code reconnectSeconds} after the backend goes away. */
    public GuestVm chardevSocket(String id, Path socket, int reconnectSeconds) {
        deviceArgs.addAll(List.of("-chardev", "socket,id=" + id + ",path=" + socket + ",reconnect=" + reconnectSeconds));
        return this;
    }

    public GuestVm device(String spec) {
        deviceArgs.addAll(List.of("-device", spec));
        return this;
    }

    public GuestVm cpus(int n) {
        cpus = n;
        return this;
    }

    /** The kernel and base initramfs, prepared once per JVM (cached across runs on disk). */
    static synchronized Path prepare() throws IOException, InterruptedException {
        if (prepared != null) {
            return prepared;
        }
        HostTools.require("qemu-system-x86_64", "qemu-system-x86");
        Process p = new ProcessBuilder(HostTools.ROOT.resolve("scripts/guest/prepare.sh").toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (p.waitFor() != 0) {
            String why = "scripts/guest/prepare.sh failed (exit " + p.exitValue() + ")";
            System.err.println("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!! SKIPPED: no test guest: "
                    + why + "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
            Assumptions.abort(why);
        }
        prepared = Path.of(out.lines().reduce((a, b) -> b).orElseThrow());
        return prepared;
    }

    /** Boots, runs {@code script} with {@code sh -e}, powers off; at most {@code timeoutSeconds}. */
    public Result run(Path workDir, String script, long timeoutSeconds) throws IOException, InterruptedException {
        return start(workDir, script).await(timeoutSeconds);
    }

    /** A guest that is running; its console is a file that grows. */
    public static final class Running {
        private final Process qemu;
        private final Path console;
        private final Path qemuLog;

        Running(Process qemu, Path console, Path qemuLog) {
            this.qemu = qemu;
            this.console = console;
            this.qemuLog = qemuLog;
        }

        public String console() throws IOException {
            return read(console);
        }

        /** Waits until the console shows {@code marker}; false on timeout or guest exit. */
        public boolean awaitConsole(String marker, long timeoutSeconds) throws IOException, InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
            while (System.nanoTime() < deadline) {
                if (console().contains(marker)) {
                    return true;
                }
                if (!qemu.isAlive()) {
                    return console().contains(marker);
                }
                Thread.sleep(100);
            }
            return false;
        }

        public Result await(long timeoutSeconds) throws IOException, InterruptedException {
            if (!qemu.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                qemu.destroyForcibly().waitFor();
                return new Result(-1, read(console) + "\n[timed out after " + timeoutSeconds + " s]\n" + read(qemuLog));
            }
            String text = read(console);
            Matcher m = EXIT.matcher(text);
            int rc = -2;
            while (m.find()) {
                rc = Integer.parseInt(m.group(1));
            }
            if (rc == -2) {
                text += "\n[no exit marker; qemu exited " + qemu.exitValue() + "]\n" + read(qemuLog);
            }
            return new Result(rc, text);
        }

        public void kill() throws InterruptedException {
            qemu.destroyForcibly().waitFor();
        }
    }

    /** Boots the guest with {@code script} and returns at once. */
    public Running start(Path workDir, String script) throws IOException, InterruptedException {
        Path guest = prepare();
        Path rd = Files.createDirectories(workDir.resolve("initrd-extra"));
        Files.writeString(rd.resolve("test.sh"), script);
        Path extra = workDir.resolve("test.cpio.gz");
        Process cpio = new ProcessBuilder("sh", "-c", "echo test.sh | cpio -o -H newc --quiet | gzip -1 > " + extra)
                .directory(rd.toFile()).inheritIO().start();
        if (cpio.waitFor() != 0) {
            throw new IOException("cpio failed");
        }
        Path initrd = workDir.resolve("initrd");
        try (var out = Files.newOutputStream(initrd)) {
            Files.copy(guest.resolve("base.cpio.gz"), out);
            Files.copy(extra, out);
        }
        Path console = workDir.resolve("console.log");
        List<String> cmd = new ArrayList<>(List.of("qemu-system-x86_64", "-accel", "tcg", "-m", "1G",
                "-smp", String.valueOf(cpus),
                "-object", "memory-backend-memfd,id=mem,size=1G,share=on", "-numa", "node,memdev=mem",
                "-kernel", guest.resolve("vmlinuz").toString(), "-initrd", initrd.toString(),
                "-append", "console=ttyS0 quiet panic=-1", "-no-reboot",
                "-serial", "file:" + console, "-monitor", "none", "-display", "none"));
        cmd.addAll(deviceArgs);
        Path qemuLog = workDir.resolve("qemu.log");
        Process qemu = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(qemuLog.toFile()).start();
        return new Running(qemu, console, qemuLog);
    }

    private static String read(Path p) throws IOException {
        return Files.exists(p) ? Files.readString(p, StandardCharsets.ISO_8859_1) : "";
    }
}
