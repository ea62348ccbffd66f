package io.vhostj.fs;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.backend.BackendLauncher;
import io.vhostj.vhostuser.backend.BackendOptions;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.Sandbox;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code vhostj fs}: a vhost-user-fs backend exporting a host directory, a drop-in for virtiofsd. */
@Command(name = "vhostj fs", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"vhost-user-fs backend (virtiofsd's role): exports a host directory to a VM.",
            "Serves the FUSE operations a Linux guest uses, POSIX and flock locks,",
            "and xattrs (with --xattr or --xattrmap), confined to the shared directory (--sandbox).",
            "A drop-in for virtiofsd: its Rust-style options and the C one's -o list are accepted.",
            "QEMU side: -chardev socket,id=c0,path=SOCK -device vhost-user-fs-pci,chardev=c0,tag=TAG",
            "(guest RAM must be shared: -object memory-backend-memfd,share=on)"})
public final class FsMain implements Callable<Integer> {
    @Mixin
    BackendOptions backend;

    @Option(names = "--shared-dir", paramLabel = "DIR", description = "The directory to export.")
    Path sharedDir;

    @Option(names = "--tag", paramLabel = "TAG",
            description = "Put the mount tag in the device's config space (otherwise QEMU's tag= is used).")
    String tag;

    @Option(names = "--thread-pool-size", paramLabel = "N",
            description = "Accepted for virtiofsd compatibility; each queue has its own worker thread.")
    Integer threadPoolSize;

    @Option(names = "--num-request-queues", defaultValue = "1", paramLabel = "N",
            description = "Request queues besides the high-priority one. Default: ${DEFAULT-VALUE}.")
    int requestQueues;

    @Option(names = "--queue-size", defaultValue = "1024", paramLabel = "N",
            description = "Largest ring the guest may use, a power of two <= 32768. Default: ${DEFAULT-VALUE}.")
    int queueSize;

    @Option(names = "--readonly", description = "Refuse every change (EROFS).")
    boolean readOnly;

    @Option(names = "--cache", paramLabel = "MODE", defaultValue = "auto",
            description = "auto (names and attributes trusted 1 s), always (a day; data kept across opens), "
                    + "never (nothing cached, direct I/O), metadata (a day; data never cached). Default: ${DEFAULT-VALUE}.")
    String cache;

    @Option(names = "--sandbox", paramLabel = "MODE", defaultValue = "namespace",
            description = "namespace (default): the process's root becomes a read-only tmpfs holding "
                    + "only the shared directory and, read-only, the JDK and vhostj's jars; no /proc, no network, "
                    + "pid 1 of its own pid namespace (bin/vhostj stays as the started process, passes TERM/INT/HUP "
                    + "on and exits with the backend's status; killed, it takes the backend with it). "
                    + "Run by root, or by another user where the kernel allows user namespaces: that user is then "
                    + "root in a user namespace mapping only their own uid and gid, so every file the guest creates "
                    + "belongs to them; the guest sees their files as root's and other owners' as the overflow id "
                    + "(65534), and cannot chown to another id (EINVAL). "
                    + "chroot (needs root, no user namespace): chroot(2) into the shared directory. none: no "
                    + "confinement (names are still resolved one component at a time, never following symlinks out).")
    String sandbox;

    @Option(names = "--translate-uid", paramLabel = "SPEC",
            description = "UID translation, repeatable: map|guest|host|squash-guest|squash-host:FROM:TO:COUNT or "
                    + "forbid-guest:FROM:COUNT (as virtiofsd). Guest to host for the owners of new files and chown, "
                    + "host to guest for the attributes the guest sees; both ways for the ids inside POSIX ACLs and "
                    + "security.capability (v3 rootid); a forbidden guest id cannot create, chown or be named in them.")
    java.util.List<String> translateUid = new java.util.ArrayList<>();

    @Option(names = "--translate-gid", paramLabel = "SPEC", description = "GID translation, as --translate-uid.")
    java.util.List<String> translateGid = new java.util.ArrayList<>();

    @Option(names = "--xattr", description = "Serve extended attributes (off by default, as in virtiofsd: ENOSYS).")
    boolean xattr;

    @Option(names = "--no-xattr", description = "No extended attributes (the default).")
    boolean noXattr;

    @Option(names = "--xattrmap", paramLabel = "RULES",
            description = "Translate xattr names between guest and host, as virtiofsd's doc/xattr-mapping.md says "
                    + "(turns xattrs on, even with --no-xattr, as in virtiofsd): rules :type:scope:key:prepend: (the "
                    + "first character is the separator), type prefix|ok|bad|unsupported, scope client|server|all; "
                    + "the first match wins; a name no rule matches, or whose host name the guest would not see "
                    + "listed, is refused; a last rule may be :map:key:prepend:. E.g. ':map::user.virtiofs.:' keeps "
                    + "every guest xattr under user.virtiofs. on the host and hides the host's others.")
    String xattrmap;

    @Option(names = "--posix-acl", description = "POSIX ACLs the guest enforces (FUSE_POSIX_ACL, with FUSE_DONT_MASK "
            + "and FUSE_SETXATTR_EXT): they are the system.posix_acl_* xattrs of the host files (ids translated "
            + "with --translate-uid/gid); the guest sends its umask with each creation, applied here unless the "
            + "parent has a default ACL, whose inheritance decides instead; setting an access ACL makes the "
            + "mode match it, without setgid for a caller outside the file's group. Implies --xattr (as the "
            + "Rust virtiofsd); refused with --no-xattr (the C virtiofsd refuses it with xattrs off).")
    boolean posixAcl;

    @Option(names = "--no-posix-acl", description = "No FUSE_POSIX_ACL (the default).")
    boolean noPosixAcl;

    @Option(names = "--announce-submounts", description = "Tell the guest which directories are other mounts "
            + "(FUSE_SUBMOUNTS), so it mounts each separately with its own device number, as on the host.")
    boolean announceSubmounts;

    @Option(names = "--no-announce-submounts", description = "Do not announce submounts (the default).")
    boolean noAnnounceSubmounts;

    @Option(names = "--syslog", description = "Log to syslog (/dev/log, facility daemon, tag vhostj-fs) instead of "
            + "stderr; where no syslog listens, stderr after one line saying so.")
    boolean syslog;

    @Option(names = "--seccomp", paramLabel = "ACTION", arity = "0..1",
            description = "Accepted (none, kill, log, trap); no seccomp filter is installed yet.")
    String seccomp;

    @Option(names = "--inode-file-handles", paramLabel = "MODE", arity = "0..1", fallbackValue = "prefer",
            description = "never (default: an O_PATH descriptor per inode the guest holds), or prefer (file handles "
                    + "where the file system and CAP_DAC_READ_SEARCH allow, so huge trees do not exhaust descriptors), "
                    + "or mandatory (file handles or nothing: refuse to start without them).")
    String inodeFileHandles;

    @Option(names = "--writeback", description = "The FUSE writeback cache (FUSE_WRITEBACK_CACHE): the guest keeps "
            + "written data in its page cache and writes it back later, setting mtime itself; a write-only open is "
            + "read-write on the host (the guest reads around partial writes) and O_APPEND is dropped there (the "
            + "guest places appends), as virtiofsd does. For an export the guest has alone: a host writer's data "
            + "can be overwritten by a late writeback. Off by default.")
    boolean writeback;

    @Option(names = "--no-writeback", description = "No writeback cache (the default).")
    boolean noWriteback;

    @Option(names = "--allow-direct-io", description = "Pass the guest's O_DIRECT to the host file (by default it is "
            + "dropped, as virtiofsd does, and the host page cache serves the guest's direct I/O).")
    boolean allowDirectIo;

    @Option(names = "--allow-mmap", description = "Let the guest map files shared although --cache never|metadata "
            + "opens them for direct I/O (FUSE_DIRECT_IO_ALLOW_MMAP, Linux 6.6+ guests; older ones refuse such "
            + "mmaps with ENODEV). Offered while speaking FUSE 7.38: the driver reads the flag whatever minor version "
            + "was agreed, and 7.39's other addition, FUSE_STATX, is sent regardless and answered ENOSYS (the driver "
            + "then uses GETATTR).")
    boolean allowMmap;

    @Option(names = "--killpriv-v2", description = "FUSE_HANDLE_KILLPRIV_V2: the guest leaves clearing setuid/setgid "
            + "to us; they are cleared on writes, truncations, O_TRUNC opens and chowns it flags (a caller without "
            + "CAP_FSETID), by the kernel's rule (setgid only with group-execute). Off by default, as in the Rust "
            + "virtiofsd. (A direct-I/O write's flag is honoured either way.)")
    boolean killprivV2;

    @Option(names = "--no-killpriv-v2", description = "No FUSE_HANDLE_KILLPRIV_V2 (the default).")
    boolean noKillprivV2;

    @Option(names = "--no-readdirplus", description = "Do not offer READDIRPLUS (directory listings then LOOKUP each entry).")
    boolean noReaddirplus;

    @Option(names = "--rlimit-nofile", paramLabel = "N",
            description = "Raise (or lower) the open-file limit to N (inodes the guest holds each keep a descriptor).")
    Long rlimitNofile;

    @Option(names = "-f", description = "Foreground (always).")
    boolean foreground;

    @Option(names = "-d", description = "Debug logging (--log-level debug).")
    boolean debug;

    @Option(names = "-o", paramLabel = "OPTS", split = ",",
            description = "C virtiofsd style: source=DIR, cache=MODE, xattr, no_xattr, readdirplus, no_readdirplus, "
                    + "writeback, no_writeback, announce_submounts, no_posix_lock, no_flock, sandbox=MODE, log_level=LEVEL, "
                    + "flock, posix_lock, timeout=N (ignored), allow_direct_io, xattrmap=RULES, posix_acl, no_posix_acl, "
                    + "killpriv_v2, no_killpriv_v2.")
    java.util.List<String> cOptions = new java.util.ArrayList<>();

    /**
     * --syslog: every log line (and anything else written to stderr) goes to syslog, which
     * stamps the time itself. Before any logger exists; the socket is connected now, so the
     * sandbox hiding /dev/log later changes nothing.
     */
    private static void logToSyslog() {
        Path socket = io.vhostj.vhostuser.sys.Syslog.socketPath();
        try {
            System.setErr(io.vhostj.vhostuser.sys.Syslog.open(socket, "vhostj-fs"));
            System.setProperty("org.slf4j.simpleLogger.showDateTime", "false");
        } catch (NativeException e) {
            System.err.println("vhostj fs: --syslog: cannot reach " + socket + " (" + e.getMessage()
                    + "): logging to stderr");
        }
    }

    @Override
    public Integer call() {
        if (backend.printCapabilities) {
            System.out.println("{\"type\": \"fs\"}");
            return 0;
        }
        CachePolicy cachePolicy;
        FsOptions.FileHandles fileHandles;
        XattrMap xattrMap;
        try {
            applyCOptions();
            if (debug) {
                backend.logLevel = "debug";
            }
            backend.applyLogLevel();
            backend.validate();
            cachePolicy = CachePolicy.parse(cache);
            fileHandles = FsOptions.FileHandles.parse(inodeFileHandles);
            xattrMap = xattrmap == null ? null : XattrMap.parse(xattrmap, xattrmapOption);
            if (posixAcl && !noPosixAcl && noXattr && xattrmap == null) {
                throw new IllegalArgumentException("--posix-acl needs xattrs, which --no-xattr turns off");
            }
            if (rlimitNofile != null && rlimitNofile < 64) {
                throw new IllegalArgumentException("--rlimit-nofile must be at least 64");
            }
            if (sharedDir == null) {
                throw new IllegalArgumentException("--shared-dir DIR is required");
            }
            if (!Files.isDirectory(sharedDir)) {
                throw new IllegalArgumentException("--shared-dir: no such directory: " + sharedDir);
            }
            if (!sandbox.matches("namespace|chroot|none")) {
                throw new IllegalArgumentException("--sandbox must be namespace, chroot or none, not " + sandbox);
            }
            if (requestQueues < 1 || requestQueues > 64) {
                throw new IllegalArgumentException("--num-request-queues must be 1..64");
            }
            if (queueSize < 2 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
                throw new IllegalArgumentException("--queue-size must be a power of two, 2..32768");
            }
        } catch (IllegalArgumentException e) {
            System.err.println("vhostj fs: " + e.getMessage());
            return 2;
        }
        if (syslog) {
            logToSyslog();
        }
        if (rlimitNofile != null) {
            try {
                io.vhostj.vhostuser.sys.FsIo.setOpenFileLimit(rlimitNofile);
            } catch (NativeException e) {
                System.err.println("vhostj fs: --rlimit-nofile " + rlimitNofile + ": " + e.getMessage());
                return 1;
            }
        }
        Path shared = sharedDir.toAbsolutePath().normalize();
        FsDevice device;
        FsOptions options;
        try {
            options = new FsOptions(readOnly, cachePolicy, !noReaddirplus, (xattr || posixAcl && !noPosixAcl) && !noXattr,
                    fileHandles, allowDirectIo, announceSubmounts && !noAnnounceSubmounts,
                    IdMap.parse(translateUid, "--translate-uid"), IdMap.parse(translateGid, "--translate-gid"), xattrMap,
                    new FsOptions.Features(writeback && !noWriteback, posixAcl && !noPosixAcl,
                            killprivV2 && !noKillprivV2, allowMmap));
            device = new FsDevice(shared, options, tag, requestQueues, queueSize);
        } catch (IllegalArgumentException e) {
            System.err.println("vhostj fs: " + e.getMessage());
            return 2;
        }
        org.slf4j.Logger log = LoggerFactory.getLogger(FsMain.class);
        Sandbox.UserNamespace userNamespace = Sandbox.userNamespace(); // before the sandbox hides /proc
        if (seccomp != null && !seccomp.equals("none")) {
            log.warn("fs: --seccomp {} accepted, but no seccomp filter is installed yet", seccomp);
        }
        // the socket is bound first (its path is out of reach inside the sandbox), then confine, then open
        return BackendLauncher.run(backend, device, () -> {
            Path seenAs = switch (sandbox) {
                case "namespace" -> Sandbox.intoNewRoot(shared, readOnly);
                case "chroot" -> Sandbox.chroot(shared);
                default -> shared;
            };
            try {
                device.open(seenAs);
            } catch (NativeException e) {
                throw new IllegalStateException("cannot open " + shared + ": " + e.getMessage(), e);
            }
            log.info("fs: exporting {}{}, sandbox {}{}; cache {}, xattrs {}, inodes as {}, {} request queue(s); "
                    + "offered at INIT if the guest has them: {}", shared,
                    readOnly ? " read-only" : "", sandbox, seenAs.equals(shared) ? "" : " (seen as " + seenAs + ")",
                    cachePolicy, !options.xattr() ? "off" : xattrMap == null ? "on" : "mapped as " + xattrMap,
                    device.usesFileHandles() ? "file handles" : "descriptors", requestQueues, options.features());
            if (userNamespace != null) {
                logUserNamespace(log, userNamespace);
            }
            if (fileHandles == FsOptions.FileHandles.PREFER && !device.usesFileHandles()) {
                log.warn("fs: --inode-file-handles=prefer, but {} has no file handles (or CAP_DAC_READ_SEARCH is "
                        + "missing): using descriptors", shared);
            }
        });
    }

    /**
     * Says whose the guest's new files are: in a user namespace, setfsuid/setfsgid to an id it
     * does not map change nothing (and setgroups is denied), so those creations stay ours.
     */
    private static void logUserNamespace(org.slf4j.Logger log, Sandbox.UserNamespace ns) {
        String who = "uid " + ns.uid() + ", gid " + ns.gid();
        if (ns.oneId()) {
            log.info("fs: running {}in a user namespace that maps only {} (root inside): new files belong to {} "
                    + "whoever creates them in the guest; host files of other owners show as the overflow id",
                    ns.uid() != 0 ? "unprivileged " : "", who, who);
        } else {
            log.info("fs: running in a user namespace: new files belong to the guest's ids where it maps them, "
                    + "to {} where not", who);
        }
    }

    /** How the map was given, for its errors: {@code --xattrmap} or {@code -o xattrmap}. */
    private String xattrmapOption = "--xattrmap";

    /** The C virtiofsd's {@code -o a,b=c} options, mapped onto the Rust-style ones. */
    void applyCOptions() {
        for (String o : cOptions) {
            String key = o.contains("=") ? o.substring(0, o.indexOf('=')) : o;
            String value = o.contains("=") ? o.substring(o.indexOf('=') + 1) : null;
            switch (key) {
                case "source" -> sharedDir = Path.of(requireValue(o, value));
                case "cache" -> cache = requireValue(o, value);
                case "xattr" -> xattr = true;
                case "xattrmap" -> {
                    xattrmap = requireValue(o, value);
                    xattrmapOption = "-o xattrmap";
                }
                case "no_xattr" -> noXattr = true;
                case "readdirplus" -> noReaddirplus = false;
                case "allow_direct_io" -> allowDirectIo = true;
                case "no_allow_direct_io" -> allowDirectIo = false;
                case "announce_submounts" -> announceSubmounts = true;
                case "writeback" -> writeback = true;
                case "no_writeback" -> writeback = false;
                case "posix_acl" -> posixAcl = true;
                case "no_posix_acl" -> posixAcl = false;
                case "killpriv_v2" -> killprivV2 = true;
                case "no_killpriv_v2" -> killprivV2 = false;
                case "no_posix_lock", "no_flock", "flock", "posix_lock", "timeout", "modcaps" -> {
                    // accepted; see --help for what each does today
                }
                case "no_readdirplus" -> noReaddirplus = true;
                case "sandbox" -> sandbox = requireValue(o, value);
                case "log_level" -> backend.logLevel = requireValue(o, value);
                default -> throw new IllegalArgumentException("-o " + o + ": unknown option");
            }
        }
    }

    private static String requireValue(String option, String value) {
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("-o " + option + ": needs a value");
        }
        return value;
    }

    public static void main(String[] args) {
        io.vhostj.vhostuser.backend.CommandMain.run("vhostj fs", new FsMain(), args);
    }
}
