package io.vhostj.tests.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.tests.BackendProcess;

/**
 * A guest walks a tree of 100,000 files served by {@code vhostj fs --rlimit-nofile 4096
 * --inode-file-handles=prefer}: with a descriptor per inode it would run out at ~4,000; with file
 * handles it does not.
 */
@Tag("e2e")
class GuestFsHugeTreeIT {
    @TempDir
    Path dir;

    @Test
    void shouldWalkAHundredThousandFilesUnderFourThousandDescriptors() throws Exception {
        Path shared = Files.createDirectory(dir.resolve("shared"));
        for (int d = 0; d < 100; d++) {
            Path sub = Files.createDirectory(shared.resolve("d" + d));
            for (int f = 0; f < 1000; f++) {
                Files.write(sub.resolve("f" + f), new byte[0]);
            }
        }
        Files.writeString(shared.resolve("d99").resolve("f999"), "last");
        Path sock = dir.resolve("fs.sock");
        String script = String.join("\n",
                "mkdir -p /mnt/fs",
                "mount -t virtiofs hostfs /mnt/fs",
                "echo \"files: $(find /mnt/fs -type f | wc -l)\"",
                "echo \"stat: $(find /mnt/fs -type f -exec stat -c %s {} + | wc -l)\"",
                "echo \"last: $(cat /mnt/fs/d99/f999)\"",
                "umount /mnt/fs && echo unmounted",
                "");
        try (BackendProcess backend = BackendProcess.start(sock, dir.resolve("fs.log"), "fs", "--socket-path",
                sock.toString(), "--shared-dir", shared.toString(), "--rlimit-nofile", "4096",
                "--inode-file-handles=prefer")) {
            GuestVm.Result r = new GuestVm().chardevSocket("c0", sock).device("vhost-user-fs-pci,chardev=c0,tag=hostfs")
                    .run(dir.resolve("guest"), script, 900);
            String c = r.console();
            assertTrue(backend.log().contains("inodes as file handles"), "file handles in use:\n" + backend.log());
            assertTrue(r.ok(), "guest failed:\n" + c + "\n--- backend log:\n" + backend.log());
            assertTrue(c.contains("files: 100000"), c);
            assertTrue(c.contains("stat: 100000"), c);
            assertTrue(c.contains("last: last") && c.contains("unmounted"), c);
            assertFalse(backend.log().contains("EMFILE"), backend.log());
        }
    }
}
