package io.vhostj.fuzz;

import java.util.Arrays;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Bugs in main code that the targets have found and that are not fixed yet. Each one's check
 * stays in the target but is off, so that the fuzzers keep looking for new bugs instead of
 * finding the same one on every input. {@code -Dvhostj.fuzz.knownBugs=all} (or a comma-separated
 * list of names) turns checks back on, to see whether a fix holds; once it does, delete the
 * constant and the condition around its check.
 */
final class KnownBugs {
    // None open. Fixed so far: chain copy bounds overflowing long arithmetic; descriptors of a
    // message refused before dispatch left open; memory and inflight regions mapped past the end
    // of their file (SIGBUS); the inflight region unmapped under a running queue (SIGSEGV).
    // Their reproducers stay in the seed inputs as known-bug-*.

    private static final Set<String> CHECKED = Arrays.stream(System.getProperty("vhostj.fuzz.knownBugs", "")
            .split(",")).map(String::trim).filter(s -> !s.isEmpty()).collect(Collectors.toSet());

    private KnownBugs() {
    }

    /** Whether the check for a known bug runs (it would fail until the bug is fixed). */
    static boolean check(String bug) {
        return CHECKED.contains("all") || CHECKED.contains(bug);
    }
}
