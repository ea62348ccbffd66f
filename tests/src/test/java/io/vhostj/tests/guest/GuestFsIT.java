package io.vhostj.tests.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.tests.BackendProcess;

/**
 * One battery of file system checks, run by a QEMU guest on a virtiofs mount served first by
 * {@code vhostj fs}, then by the C virtiofsd ({@code /usr/lib/qemu/virtiofsd}, Debian's
 * qemu-system-common), in the same test run. vhostj must pass every check; the report lists
 * where the two differ. (flock and fcntl locks between two guest processes pass on both: the C
 * virtiofsd leaves locks to the guest kernel, vhostj takes them on the host, so only vhostj's
 * guest sees a lock a host process holds.) fcntl locks come from sqlite3, which takes them
 * with F_SETLK on byte ranges of its database file.
 */
@Tag("e2e")
class GuestFsIT {
    private static final Path C_VIRTIOFSD = Path.of("/usr/lib/qemu/virtiofsd");

    @TempDir
    Path dir;
    private final List<Path> mounts = new ArrayList<>();

    @org.junit.jupiter.api.AfterEach
    void unmount() throws Exception {
        for (Path m : mounts) {
            new ProcessBuilder("umount", "-l", m.toString()).inheritIO().start().waitFor();
        }
    }

    /** name -> shell condition, run in /mnt/fs; each prints "CHECK name ok|fail". */
    private static final String[][] CHECKS = {
        {"create-read", "echo alpha > f && grep -q alpha f"},
        {"append", "echo beta >> f && [ $(wc -l < f) = 2 ]"},
        {"rename", "mv f g && [ ! -e f ] && [ -e g ]"},
        {"hard-link", "ln g h && [ $(stat -c %h g) = 2 ] && rm h && [ $(stat -c %h g) = 1 ]"},
        {"symlink", "ln -s g s && [ \"$(readlink s)\" = g ] && [ \"$(cat s | head -1)\" = alpha ]"},
        {"chmod", "chmod 640 g && [ $(stat -c %a g) = 640 ]"},
        {"chown", "chown 1000:1000 g && [ \"$(stat -c %u:%g g)\" = 1000:1000 ]"},
        {"utimens", "touch -d '2020-01-02 03:04:05' g && [ $(stat -c %Y g) = 1577934245 ]"},
        {"truncate", "truncate -s 3 g && [ $(stat -c %s g) = 3 ]"},
        {"fallocate", "fallocate -l 1048576 fa && [ $(stat -c %s fa) = 1048576 ]"},
        {"mkfifo", "mkfifo p && [ -p p ]"},
        {"mkdir-rmdir", "mkdir -p d1/d2 && ! rmdir d1 2>/dev/null && rmdir d1/d2 d1 && [ ! -e d1 ]"},
        {"unlink", "echo x > u && rm u && [ ! -e u ]"},
        {"unlink-while-open", "echo kept > o && exec 3< o && rm o && [ \"$(cat <&3)\" = kept ]; exec 3<&-"},
        {"readdir-1000", "[ $(ls many | wc -l) = 1000 ] && [ $(cat many/f999) = 999 ]"},
        {"readdir-long", "[ $(ls -l many | grep -c '^-') = 1000 ]"},
        {"big-file-read", "sha256sum big.bin | grep -q $BIGSUM"},
        {"big-file-write", "dd if=/dev/urandom of=w.bin bs=1M count=8 2>/dev/null && sha256sum w.bin > /tmp/w.sum"
                + " && echo 3 > /proc/sys/vm/drop_caches && sha256sum -c /tmp/w.sum"},
        {"big-file-after-drop", "echo 3 > /proc/sys/vm/drop_caches && sha256sum big.bin | grep -q $BIGSUM"},
        {"statfs", "df /mnt/fs | tail -1 | grep -q /mnt/fs && stat -f -c %b . | grep -q '^[1-9]'"},
        {"fcntl-lock-two-processes", "sqlite3 db 'create table t(x);'"
                + " && ( sqlite3 db 'BEGIN EXCLUSIVE;' '.shell sleep 4' 'COMMIT;' & ) && sleep 1.5"
                + " && ! sqlite3 db 'BEGIN EXCLUSIVE;' && sqlite3 -cmd '.timeout 20000' db 'BEGIN EXCLUSIVE;' 'COMMIT;'"},
        {"fcntl-lock-held-by-host", "[ -e host-locked.db ] && ! sqlite3 host-locked.db 'BEGIN EXCLUSIVE;'"},
        // a tmpfs mounted under the export on the host; both backends announce submounts
        {"submount-own-device", "[ \"$(cat sub/inner.txt)\" = inner ] && [ \"$(stat -c %d sub)\" != \"$(stat -c %d .)\" ]"},
        {"flock-two-processes", "touch lk && ( /usr/bin/flock -x lk sleep 2 & ) && sleep 0.5"
                + " && ! /usr/bin/flock -n lk true && /usr/bin/flock -w 10 lk true"},
        {"no-dotdot-escape", "! cat ../outside.txt 2>/dev/null"},
        {"absolute-symlink-stays-in-guest", "[ \"$(cat escape 2>/dev/null)\" != host-secret ]"},
        // a directory swapped for a symlink to the host directory that holds outside.txt, while
        // another loop reads through it: the backend must never follow it on the host
        {"symlink-swap-race", "mkdir -p race && ( for i in $(seq 200); do rm -rf race/x; mkdir race/x;"
                + " echo inside > race/x/outside.txt; rm -rf race/x; ln -s $HOSTDIR race/x; done ) &"
                + " for j in $(seq 400); do cat race/x/outside.txt 2>/dev/null; done > /tmp/race.out; wait;"
                + " ! grep -q host-secret /tmp/race.out"},
    };

    @Test
    void shouldPassTheBatteryAndReportWhereTheCVirtiofsdDiffers() throws Exception {
        Map<String, String> vhostj = run("vhostj", sock -> BackendProcess.start(sock, dir.resolve("vhostj.log"), "fs",
                "--socket-path", sock.toString(), "--shared-dir", shared("vhostj").toString(), "--announce-submounts"));
        List<String> failed = new ArrayList<>();
        for (String[] c : CHECKS) {
            if (!"ok".equals(vhostj.get(c[0]))) {
                failed.add(c[0] + "=" + vhostj.get(c[0]));
            }
        }
        assertTrue(failed.isEmpty(), "vhostj fs failed: " + failed + "\n" + vhostj);

        if (!Files.isExecutable(C_VIRTIOFSD)) {
            System.err.println("\n!! SKIPPED the comparison: " + C_VIRTIOFSD + " is not installed\n");
            return;
        }
        Map<String, String> c = run("c-virtiofsd", sock -> BackendProcess.startProgram(sock, dir.resolve("c.log"),
                C_VIRTIOFSD.toString(), "--socket-path=" + sock, "-o", "source=" + shared("c-virtiofsd"), "-o", "cache=auto",
                "-o", "announce_submounts"));
        StringBuilder report = new StringBuilder("GuestFsIT: vhostj fs against the C virtiofsd, "
                + CHECKS.length + " checks\n");
        int differ = 0;
        for (String[] check : CHECKS) {
            String a = vhostj.get(check[0]);
            String b = c.get(check[0]);
            if (!a.equals(b)) {
                differ++;
                report.append(String.format("  differs: %-32s vhostj=%s c-virtiofsd=%s%n", check[0], a, b));
            }
        }
        report.append("  ").append(differ == 0 ? "no differences" : differ + " difference(s)").append('\n');
        System.out.print(report);
        Files.writeString(Path.of("target", "fs-battery-report.txt"), report.toString());
        assertEquals(CHECKS.length, c.size(), "the C virtiofsd ran the whole battery:\n" + c);
    }

    interface Starter {
        BackendProcess start(Path socket) throws Exception;
    }

    /** A fresh shared directory for one backend: the same content for both. */
    private Path shared(String name) throws Exception {
        Path shared = Files.createDirectory(dir.resolve("shared-" + name));
        byte[] big = new byte[8 << 20];
        new Random(23).nextBytes(big);
        Files.write(shared.resolve("big.bin"), big);
        Path many = Files.createDirectory(shared.resolve("many"));
        for (int i = 0; i < 1000; i++) {
            Files.writeString(many.resolve("f" + i), Integer.toString(i));
        }
        Files.createSymbolicLink(shared.resolve("escape"), dir.resolve("outside.txt").toAbsolutePath());
        Files.createFile(shared.resolve("host-locked.db")); // locked by this test while the guest runs
        Path sub = Files.createDirectory(shared.resolve("sub"));
        Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "sub", sub.toString()).inheritIO().start();
        assertEquals(0, mount.waitFor(), "mount a tmpfs under the export (root is needed for the battery)");
        mounts.add(sub);
        Files.writeString(sub.resolve("inner.txt"), "inner\n");
        Files.writeString(dir.resolve("outside.txt"), "host-secret");
        return shared;
    }

    private Map<String, String> run(String name, Starter starter) throws Exception {
        Path sock = dir.resolve(name + ".sock");
        byte[] big = new byte[8 << 20];
        new Random(23).nextBytes(big);
        String sum = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(big));
        StringBuilder script = new StringBuilder("mkdir -p /mnt/fs\nmount -t virtiofs hostfs /mnt/fs\ncd /mnt/fs\n"
                + "BIGSUM=" + sum + "\nHOSTDIR=" + dir.toAbsolutePath() + "\n"
                + "check() { if ( eval \"$2\" ) >/dev/null 2>&1; then echo \"CHECK $1 ok\"; else echo \"CHECK $1 fail\"; fi; }\n");
        for (String[] c : CHECKS) {
            script.append("check ").append(c[0]).append(" '").append(c[1].replace("'", "'\\''")).append("'\n");
        }
        script.append("cd /\numount /mnt/fs && echo unmounted\n");
        try (BackendProcess backend = starter.start(sock);
                java.nio.channels.FileChannel held = java.nio.channels.FileChannel.open(
                        dir.resolve("shared-" + name).resolve("host-locked.db"),
                        java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE);
                java.nio.channels.FileLock lock = held.lock()) { // a host process's fcntl lock
            GuestVm.Result r = new GuestVm().chardevSocket("c0", sock).device("vhost-user-fs-pci,chardev=c0,tag=hostfs")
                    .run(dir.resolve("guest-" + name), script.toString(), 300);
            String console = r.console();
            assertTrue(r.ok() && console.contains("unmounted"), name + ": guest failed:\n" + console
                    + "\n--- backend log:\n" + backend.log());
            Map<String, String> results = new LinkedHashMap<>();
            for (String line : console.split("\n")) {
                String[] f = line.trim().split(" ");
                if (f.length == 3 && f[0].equals("CHECK")) {
                    results.put(f[1], f[2]);
                }
            }
            if (name.equals("vhostj")) {
                assertEquals(0, backend.terminate(), "SIGTERM exits cleanly:\n" + backend.log());
                assertFalse(backend.log().contains("Exception"), backend.log());
            }
            return results;
        }
    }
}
