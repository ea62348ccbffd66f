package io.vhostj.tests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Assumptions;

/**
 * Makes sure a host program the tests need is installed, through the project's own
 * {@code scripts/install-test-deps.sh}. If it cannot be installed (no root, no package registry)
 * the test is aborted with a loud banner on stderr: a skip, never a silent pass.
 */
public final class HostTools {
    public static final Path ROOT = findRoot();

    private HostTools() {
    }

    private static Path findRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.exists(p.resolve("bin/vhostj"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("cannot find the vhostj checkout from " + Path.of("").toAbsolutePath());
        }
        return p;
    }

    /** Returns the path of {@code program}, installing {@code debianPackage} if needed. */
    public static Path require(String program, String debianPackage) {
        Path found = which(program);
        if (found != null) {
            return found;
        }
        List<String> cmd = new ArrayList<>(List.of(ROOT.resolve("scripts/install-test-deps.sh").toString(), debianPackage));
        String why;
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            int rc = p.waitFor();
            why = "install-test-deps.sh exited " + rc + ": " + out.strip();
        } catch (IOException e) {
            why = e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            why = "interrupted";
        }
        found = which(program);
        if (found == null) {
            String banner = "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                    + "!! SKIPPED: " + program + " (Debian package " + debianPackage + ") is not installed\n"
                    + "!! and could not be installed: " + why + "\n"
                    + "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n";
            System.err.println(banner);
            Assumptions.abort(program + " unavailable: " + why);
        }
        return found;
    }

    static Path which(String program) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            Path p = Path.of(dir, program);
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        for (String dir : new String[] {"/usr/bin", "/usr/sbin", "/usr/lib/qemu"}) {
            Path p = Path.of(dir, program);
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }
}
