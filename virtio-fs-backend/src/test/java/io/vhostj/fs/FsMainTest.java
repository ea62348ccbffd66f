package io.vhostj.fs;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import picocli.CommandLine;

/** {@code vhostj fs}'s command line, short of serving: what is refused, and how the -o forms map. */
class FsMainTest {
    @TempDir
    Path dir;

    /** Runs the command line; its exit status, and what it printed on stderr in {@code err[0]}. */
    private static int run(String[] err, String... args) {
        PrintStream saved = System.err;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        System.setErr(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        try {
            return new CommandLine(new FsMain()).execute(args);
        } finally {
            System.setErr(saved);
            err[0] = bytes.toString(StandardCharsets.UTF_8);
        }
    }

    @Test
    void shouldRefusePosixAclWithXattrsOffInOneLine() {
        String[] err = new String[1];
        assertEquals(2, run(err, "--socket-path", dir.resolve("s").toString(), "--shared-dir", dir.toString(),
                "--posix-acl", "--no-xattr"));
        assertEquals("vhostj fs: --posix-acl needs xattrs, which --no-xattr turns off", err[0].strip());
        assertEquals(2, run(err, "--socket-path", dir.resolve("s").toString(), "-o", "source=" + dir,
                "-o", "posix_acl,no_xattr"), "the C style too");
        assertTrue(err[0].contains("--posix-acl needs xattrs"), err[0]);
    }

    @Test
    void shouldMapTheCStyleOptionsOntoTheFeatures() {
        FsMain main = new FsMain();
        new CommandLine(main).parseArgs("-o", "writeback,posix_acl,killpriv_v2");
        main.applyCOptions();
        assertTrue(main.writeback && main.posixAcl && main.killprivV2);
        main = new FsMain();
        new CommandLine(main).parseArgs("--writeback", "--posix-acl", "--killpriv-v2", "-o",
                "no_writeback,no_posix_acl,no_killpriv_v2");
        main.applyCOptions();
        assertFalse(main.writeback || main.posixAcl || main.killprivV2, "the later no_ forms win");
    }
}
