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
 *
 * <p>The same guest mounts a second export whose backend has the options the first one lacks
 * ({@link #FEATURE_CHECKS}: the writeback cache, POSIX ACLs the guest enforces, setuid/setgid
 * cleared by the server), so they cost no boot of their own.
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
        // the guest masked the mode; nothing on the host masks it again
        {"create-umask-0", "umask 0 && touch um0 && mkdir um0d && [ $(stat -c %a um0) = 666 ]"
                + " && [ $(stat -c %a um0d) = 777 ]"},
        {"symlink-swap-race", "mkdir -p race && ( for i in $(seq 200); do rm -rf race/x; mkdir race/x;"
                + " echo inside > race/x/outside.txt; rm -rf race/x; ln -s $HOSTDIR race/x; done ) &"
                + " for j in $(seq 400); do cat race/x/outside.txt 2>/dev/null; done > /tmp/race.out; wait;"
                + " ! grep -q host-secret /tmp/race.out"},
    };

    /**
     * name -> shell condition, run in /mnt/fs2: an export served with the writeback cache, POSIX
     * ACLs and killpriv_v2 (vhostj: --writeback --posix-acl --killpriv-v2; the C virtiofsd: -o
     * writeback,posix_acl,xattr,killpriv_v2). u1000 and u1234 are guest users (busybox su).
     */
    private static final String[][] FEATURE_CHECKS = {
        // the guest places appends at its own end of file and writes them back at that offset
        {"writeback-append-two-opens", "exec 3>>wa 4>>wa && echo one >&3 && echo two >&4 && echo three >&3"
                + " && exec 3>&- 4>&- && sync && echo 3 > /proc/sys/vm/drop_caches"
                + " && [ \"$(cat wa | tr '\\n' ' ')\" = 'one two three ' ]"},
        // a one-byte write into an uncached page: the guest reads the page through its write-only handle
        {"writeback-partial-write", "printf abcdef > pw && sync && echo 3 > /proc/sys/vm/drop_caches"
                + " && printf X | dd of=pw bs=1 seek=2 conv=notrunc 2>/dev/null && sync"
                + " && echo 3 > /proc/sys/vm/drop_caches && [ \"$(cat pw)\" = abXdef ]"},
        {"writeback-read-after-drop", "dd if=/dev/urandom of=wb.bin bs=64k count=32 2>/dev/null"
                + " && sha256sum wb.bin > /tmp/wb.sum && sync && echo 3 > /proc/sys/vm/drop_caches"
                + " && sha256sum -c /tmp/wb.sum"},
        {"acl-default-inherited", "mkdir acl && setfacl -d -m u:1234:rwx acl && touch acl/f"
                + " && getfacl -cn acl/f | grep -q '^user:1234:rwx'"},
        // under a default ACL the ACL decides, not the umask: rw for the mask, r for others
        {"acl-default-not-umask", "umask 077 && touch acl/g && [ $(stat -c %a acl/g) = 664 ]"},
        {"acl-umask-elsewhere", "umask 027 && touch plain && mkdir plaind && [ $(stat -c %a plain) = 640 ]"
                + " && [ $(stat -c %a plaind) = 750 ]"},
        {"acl-enforced", "echo data > af && chmod 600 af && setfacl -m u:1234:rw af"
                + " && su -s /bin/sh u1234 -c 'cat af && echo more >> af' && ! su -s /bin/sh u1000 -c 'cat af'"},
        {"killpriv-write", "echo x > sx && chown 1000:1000 sx && chmod 6770 sx"
                + " && su -s /bin/sh u1000 -c 'echo y >> sx' && [ $(stat -c %a sx) = 770 ]"},
        {"killpriv-truncate", "echo x > st && chown 1000:1000 st && chmod 4755 st"
                + " && su -s /bin/sh u1000 -c 'truncate -s 0 st' && [ $(stat -c %a st) = 755 ]"},
    };

    @Test
    void shouldPassTheBatteryAndReportWhereTheCVirtiofsdDiffers() throws Exception {
        Map<String, String> vhostj = run("vhostj",
                sock -> BackendProcess.start(sock, dir.resolve("vhostj.log"), "fs", "--socket-path", sock.toString(),
                        "--shared-dir", shared("vhostj").toString(), "--announce-submounts"),
                sock -> BackendProcess.start(sock, dir.resolve("vhostj-features.log"), "fs", "--socket-path",
                        sock.toString(), "--shared-dir", featureShared("vhostj").toString(), "--writeback",
                        "--posix-acl", "--killpriv-v2"));
        List<String> failed = new ArrayList<>();
        for (String[] c : allChecks()) {
            if (!"ok".equals(vhostj.get(c[0]))) {
                failed.add(c[0] + "=" + vhostj.get(c[0]));
            }
        }
        assertTrue(failed.isEmpty(), "vhostj fs failed: " + failed + "\n" + vhostj);

        if (!Files.isExecutable(C_VIRTIOFSD)) {
            System.err.println("\n!! SKIPPED the comparison: " + C_VIRTIOFSD + " is not installed\n");
            return;
        }
        Map<String, String> c = run("c-virtiofsd",
                sock -> BackendProcess.startProgram(sock, dir.resolve("c.log"), C_VIRTIOFSD.toString(),
                        "--socket-path=" + sock, "-o", "source=" + shared("c-virtiofsd"), "-o", "cache=auto",
                        "-o", "announce_submounts"),
                sock -> BackendProcess.startProgram(sock, dir.resolve("c-features.log"), C_VIRTIOFSD.toString(),
                        "--socket-path=" + sock, "-o", "source=" + featureShared("c-virtiofsd"), "-o", "cache=auto",
                        "-o", "writeback,posix_acl,xattr,killpriv_v2"));
        StringBuilder report = new StringBuilder("GuestFsIT: vhostj fs against the C virtiofsd, "
                + allChecks().size() + " checks\n");
        int differ = 0;
        for (String[] check : allChecks()) {
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
        assertEquals(allChecks().size(), c.size(), "the C virtiofsd ran the whole battery:\n" + c);
    }

    private static List<String[]> allChecks() {
        List<String[]> all = new ArrayList<>(List.of(CHECKS));
        all.addAll(List.of(FEATURE_CHECKS));
        return all;
    }

    /** The second export's directory: empty, everything in it made by the guest. */
    private Path featureShared(String name) throws Exception {
        return Files.createDirectory(dir.resolve("features-" + name));
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

    private Map<String, String> run(String name, Starter starter, Starter featureStarter) throws Exception {
        Path sock = dir.resolve(name + ".sock");
        Path featureSock = dir.resolve(name + "-features.sock");
        byte[] big = new byte[8 << 20];
        new Random(23).nextBytes(big);
        String sum = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(big));
        StringBuilder script = new StringBuilder("mkdir -p /mnt/fs /mnt/fs2\nmount -t virtiofs hostfs /mnt/fs\n"
                + "mount -t virtiofs hostfs2 /mnt/fs2\nchmod 755 /\n"
                + "echo 'u1000:x:1000:1000::/:/bin/sh' >> /etc/passwd\necho 'u1234:x:1234:1234::/:/bin/sh' >> /etc/passwd\n"
                + "cd /mnt/fs\nBIGSUM=" + sum + "\nHOSTDIR=" + dir.toAbsolutePath() + "\n"
                + "check() { if ( eval \"$2\" ) >/dev/null 2>&1; then echo \"CHECK $1 ok\"; else echo \"CHECK $1 fail\"; fi; }\n");
        appendChecks(script, CHECKS);
        script.append("cd /mnt/fs2\n");
        appendChecks(script, FEATURE_CHECKS);
        script.append("cd /\numount /mnt/fs2 && umount /mnt/fs && echo unmounted\n");
        try (BackendProcess backend = starter.start(sock);
                BackendProcess featureBackend = featureStarter.start(featureSock);
                java.nio.channels.FileChannel held = java.nio.channels.FileChannel.open(
                        dir.resolve("shared-" + name).resolve("host-locked.db"),
                        java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE);
                java.nio.channels.FileLock lock = held.lock()) { // a host process's fcntl lock
            GuestVm.Result r = new GuestVm().chardevSocket("c0", sock).device("vhost-user-fs-pci,chardev=c0,tag=hostfs")
                    .chardevSocket("c1", featureSock).device("vhost-user-fs-pci,chardev=c1,tag=hostfs2")
                    .run(dir.resolve("guest-" + name), script.toString(), 300);
            String console = r.console();
            assertTrue(r.ok() && console.contains("unmounted"), name + ": guest failed:\n" + console
                    + "\n--- backend log:\n" + backend.log() + "\n--- second backend's log:\n" + featureBackend.log());
            Map<String, String> results = new LinkedHashMap<>();
            for (String line : console.split("\n")) {
                String[] f = line.trim().split(" ");
                if (f.length == 3 && f[0].equals("CHECK")) {
                    results.put(f[1], f[2]);
                }
            }
            if (name.equals("vhostj")) {
                for (BackendProcess b : List.of(backend, featureBackend)) {
                    assertEquals(0, b.terminate(), "SIGTERM exits cleanly:\n" + b.log());
                    assertFalse(b.log().contains("Exception"), b.log());
                }
                assertTrue(featureBackend.log().contains("with writeback, posix-acl, killpriv-v2"),
                        "the INIT log names what was agreed:\n" + featureBackend.log());
            }
            return results;
        }
    }

    private static void appendChecks(StringBuilder script, String[][] checks) {
        for (String[] c : checks) {
            script.append("check ").append(c[0]).append(" '").append(c[1].replace("'", "'\\''")).append("'\n");
        }
    }
}
