package io.vhostj.tests.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Random;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.tests.BackendProcess;

/**
 * A QEMU guest mounts {@code vhostj fs}'s export (virtiofs), reads it and changes it: what works
 * so far of issue 3. Locks, xattrs, the escape races and the run against the C virtiofsd come
 * next.
 */
@Tag("e2e")
class GuestFsIT {
    @TempDir
    Path dir;

    @Test
    void shouldMountListAndReadTheExport() throws Exception {
        Path shared = Files.createDirectory(dir.resolve("shared"));
        byte[] big = new byte[8 << 20];
        new Random(23).nextBytes(big);
        Files.write(shared.resolve("big.bin"), big);
        String sum = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(big));
        Files.writeString(shared.resolve("hello.txt"), "hello from the host\n");
        Path sub = Files.createDirectory(shared.resolve("many"));
        for (int i = 0; i < 1000; i++) {
            Files.writeString(sub.resolve("f" + i), Integer.toString(i));
        }
        Files.createSymbolicLink(shared.resolve("escape"), Path.of("/etc/hostname"));
        Files.writeString(dir.resolve("outside.txt"), "must not be reachable");

        Path sock = dir.resolve("fs.sock");
        String script = String.join("\n",
                "mkdir -p /mnt/fs",
                "mount -t virtiofs hostfs /mnt/fs",
                "echo \"mounted: $(grep virtiofs /proc/mounts)\"",
                "cat /mnt/fs/hello.txt",
                "echo \"entries: $(ls /mnt/fs/many | wc -l)\"",
                "echo \"f999: $(cat /mnt/fs/many/f999)\"",
                "sha256sum /mnt/fs/big.bin",
                "echo 3 > /proc/sys/vm/drop_caches",
                "sha256sum /mnt/fs/big.bin",
                "df /mnt/fs | tail -1",
                "cat /mnt/fs/../outside.txt 2>/dev/null && echo ESCAPED-DOTDOT",
                "cat /mnt/fs/escape 2>/dev/null | grep -q . && echo FOLLOWED-SYMLINK-IN-GUEST",
                "cd /mnt/fs",
                "echo one > new.txt && echo two >> new.txt && echo \"appended: $(cat new.txt | tr '\\n' ' ')\"",
                "mv new.txt renamed.txt && test ! -e new.txt && echo renamed",
                "mkdir -p dir/sub && echo nested > dir/sub/file && rmdir dir/sub 2>/dev/null || echo rmdir-nonempty-refused",
                "rm dir/sub/file && rmdir dir/sub && rmdir dir && echo dirs-removed",
                "dd if=/dev/urandom of=written.bin bs=1M count=8 2>/dev/null && sha256sum written.bin > /tmp/w.sum",
                "echo 3 > /proc/sys/vm/drop_caches && sha256sum -c /tmp/w.sum",
                "truncate -s 1000 written.bin && echo \"truncated: $(stat -c %s written.bin)\"",
                "chmod 600 renamed.txt && echo \"mode: $(stat -c %a renamed.txt)\"",
                "ln -s renamed.txt sym && echo \"readlink: $(readlink sym)\"",
                "ln renamed.txt hard && echo \"links: $(stat -c %h renamed.txt)\"",
                "mkfifo fifo && test -p fifo && echo fifo-made",
                "rm -f sym hard fifo",
                "cd /",
                "umount /mnt/fs && echo unmounted",
                "");
        try (BackendProcess backend = BackendProcess.start(sock, dir.resolve("fs.log"), "fs", "--socket-path",
                sock.toString(), "--shared-dir", shared.toString())) {
            GuestVm.Result r = new GuestVm().chardevSocket("c0", sock)
                    .device("vhost-user-fs-pci,chardev=c0,tag=hostfs")
                    .run(dir, script, 300);
            String c = r.console();
            assertTrue(r.ok(), "guest script failed:\n" + c + "\n--- backend log:\n" + backend.log());
            assertTrue(c.contains("mounted: hostfs /mnt/fs virtiofs"), c);
            assertTrue(c.contains("hello from the host"), c);
            assertTrue(c.contains("entries: 1000"), c);
            assertTrue(c.contains("f999: 999"), c);
            assertEquals(2, c.split(sum + "  /mnt/fs/big.bin", -1).length - 1,
                    "the 8 MiB file's checksum, before and after drop_caches:\n" + c);
            assertFalse(c.contains("ESCAPED-DOTDOT"), c);
            // the guest follows an absolute symlink inside its own namespace: /etc/hostname of the guest,
            // which its initramfs may not have; either way, never the host's file
            assertTrue(c.contains("appended: one two"), c);
            assertTrue(c.contains("renamed") && c.contains("rmdir-nonempty-refused") && c.contains("dirs-removed"), c);
            assertTrue(c.contains("written.bin: OK"), "8 MiB written by the guest, read back after drop_caches:\n" + c);
            assertTrue(c.contains("truncated: 1000") && c.contains("mode: 600"), c);
            assertTrue(c.contains("readlink: renamed.txt") && c.contains("links: 2") && c.contains("fifo-made"), c);
            assertEquals("one\ntwo\n", Files.readString(shared.resolve("renamed.txt")), "the host sees the guest's file");
            assertEquals(1000, Files.size(shared.resolve("written.bin")));
            assertFalse(Files.exists(dir.resolve("escaped")) || Files.exists(shared.resolve("new.txt")));
            assertTrue(c.contains("unmounted"), c);
            assertEquals(0, backend.terminate(), "SIGTERM exits cleanly:\n" + backend.log());
            assertFalse(backend.log().contains("Exception"), backend.log());
        }
    }
}
