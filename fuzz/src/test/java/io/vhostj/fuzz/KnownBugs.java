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
    /**
     * DescriptorChain.readFromChain, writeToChain and toIovecs test {@code offset + length > bytes}
     * in long arithmetic: an offset and length whose sum overflows (1 and Long.MAX_VALUE) pass the
     * check and copy or export the rest of the chain instead of throwing ChainException.
     */
    static final String CHAIN_COPY_BOUNDS_OVERFLOW = "chain-copy-bounds-overflow";

    /**
     * The descriptors that arrive with a message the backend refuses before dispatch stay open:
     * VhostUserConnection.read throws after recvmsg (bad version, payload size over the limit,
     * stream ended inside the message), and VhostUserBackend.handle throws before its
     * try/finally (reply flag, FrontendRequest.validate); serve() then closes the message's
     * memory but not its descriptors.
     */
    static final String FDS_OF_REJECTED_MESSAGE_LEAK = "fds-of-rejected-message-leak";

    /**
     * MemoryRegion.map maps {@code mmap_offset + size} bytes of the frontend's fd without
     * checking the file is that long. Rings or buffers past the end of the file raise SIGBUS on
     * first touch, which HotSpot turns into an InternalError: on the connection's thread it
     * escapes serve() (which catches RuntimeException only) and ends VhostUserServer.run(); on a
     * queue worker it goes to the AgentRunner's error handler.
     */
    static final String MEMORY_REGION_PAST_END_OF_FILE = "memory-region-past-end-of-file";

    /**
     * GET_INFLIGHT_FD and SET_INFLIGHT_FD unmap the previous inflight region while a queue that
     * records into it (SplitQueue.attachInflight) keeps running: the worker's next
     * InflightRegion.popped/used/published touches unmapped memory and the JVM dies of SIGSEGV.
     * Checking this one ends the fork (hs_err_pid*.log in target/jazzer/).
     */
    static final String INFLIGHT_UNMAPPED_UNDER_RUNNING_QUEUE = "inflight-unmapped-under-running-queue";

    private static final Set<String> CHECKED = Arrays.stream(System.getProperty("vhostj.fuzz.knownBugs", "")
            .split(",")).map(String::trim).filter(s -> !s.isEmpty()).collect(Collectors.toSet());

    private KnownBugs() {
    }

    /** Whether the check for a known bug runs (it would fail until the bug is fixed). */
    static boolean check(String bug) {
        return CHECKED.contains("all") || CHECKED.contains(bug);
    }
}
