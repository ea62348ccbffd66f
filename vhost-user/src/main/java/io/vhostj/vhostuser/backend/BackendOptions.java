package io.vhostj.vhostuser.backend;

import java.nio.file.Path;

import picocli.CommandLine.Option;

/** Command-line options every vhostj backend shares (vhost-user.json's conventions first). */
public final class BackendOptions {
    @Option(names = "--socket-path", paramLabel = "PATH",
            description = "Listen for the frontend (QEMU) on this Unix socket.")
    public Path socketPath;

    @Option(names = "--fd", paramLabel = "FD",
            description = "Serve an inherited socket: a listening one (accept connections) or a connected one "
                    + "(serve it, then exit).")
    public Integer fd;

    @Option(names = "--poll-us", paramLabel = "US", defaultValue = "50",
            description = "Longest busy-poll of a queue after its last request before it sleeps on the kick "
                    + "eventfd. The poll time adapts below this: it grows while requests come within it and "
                    + "drops to 0 when they don't (an idle or slow guest costs no CPU). 0 = interrupt mode. "
                    + "Default: ${DEFAULT-VALUE}.")
    public long pollMicros;

    @Option(names = "--socket-group", paramLabel = "GROUP",
            description = "Give the --socket-path socket to this group, read-write for it (so that a hypervisor "
                    + "running as that group can connect).")
    public String socketGroup;

    @Option(names = "--cpu-affinity", paramLabel = "CPUS",
            description = "Pin queue workers to these CPUs (a list like 0-3,6): queue i runs on the i-th CPU "
                    + "of the list, wrapping around. Default: not pinned.")
    public String cpuAffinity;

    @Option(names = "--print-capabilities",
            description = "Print the vhost-user.json capabilities of this backend and exit.")
    public boolean printCapabilities;

    @Option(names = "--log-level", paramLabel = "LEVEL", defaultValue = "info",
            description = "error, warn, info, debug or trace. Default: ${DEFAULT-VALUE}.")
    public String logLevel;

    /** The CPUs of --cpu-affinity, or an empty array (validated by {@link #validate()}). */
    public int[] cpus() {
        return cpuAffinity == null ? new int[0] : io.vhostj.vhostuser.sys.Affinity.parseList(cpuAffinity);
    }

    /** Must run before any logger exists: slf4j-simple reads its level once. */
    public void applyLogLevel() {
        String level = logLevel.toLowerCase(java.util.Locale.ROOT);
        if (!level.matches("error|warn|info|debug|trace|off")) {
            throw new IllegalArgumentException("--log-level: unknown level '" + logLevel + "'");
        }
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", level);
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
        System.setProperty("org.slf4j.simpleLogger.dateTimeFormat", "HH:mm:ss.SSS");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
    }

    /** Checks that exactly one way of reaching the frontend was given. */
    public void validate() {
        if ((socketPath == null) == (fd == null)) {
            throw new IllegalArgumentException("give exactly one of --socket-path PATH or --fd FD");
        }
        if (pollMicros < 0) {
            throw new IllegalArgumentException("--poll-us must be 0 or more");
        }
        if (socketGroup != null) {
            if (socketPath == null) {
                throw new IllegalArgumentException("--socket-group needs --socket-path");
            }
            try {
                java.nio.file.FileSystems.getDefault().getUserPrincipalLookupService()
                        .lookupPrincipalByGroupName(socketGroup);
            } catch (java.io.IOException e) {
                throw new IllegalArgumentException("--socket-group: no such group '" + socketGroup + "'");
            }
        }
        if (cpuAffinity != null) {
            int[] cpus = io.vhostj.vhostuser.sys.Affinity.parseList(cpuAffinity);
            int online = Runtime.getRuntime().availableProcessors();
            for (int cpu : cpus) {
                if (cpu >= online) {
                    throw new IllegalArgumentException("--cpu-affinity: CPU " + cpu + " but this machine has "
                            + online + " (0-" + (online - 1) + ")");
                }
            }
        }
        if (fd != null && fd < 0) {
            throw new IllegalArgumentException("--fd must be a descriptor number");
        }
    }
}
