package io.vhostj.fs;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.backend.BackendLauncher;
import io.vhostj.vhostuser.backend.BackendOptions;
import io.vhostj.vhostuser.sys.NativeException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code vhostj fs}: a vhost-user-fs backend exporting a host directory (work in progress, issue 3). */
@Command(name = "vhostj fs", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"vhost-user-fs backend (virtiofsd's role): exports a host directory to a VM.",
            "Work in progress (issue 3): files and directories can be read, created, written, renamed and",
            "removed; no locks, xattrs or sandbox yet, files are created with this process's uid/gid, and",
            "most virtiofsd options are not there yet.",
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

    @Option(names = "--sandbox", paramLabel = "MODE",
            description = "Only 'none' so far (namespace and chroot are not implemented yet: refused, not faked).")
    String sandbox;

    @Override
    public Integer call() {
        if (backend.printCapabilities) {
            System.out.println("{\"type\": \"fs\"}");
            return 0;
        }
        try {
            backend.applyLogLevel();
            backend.validate();
            if (sharedDir == null) {
                throw new IllegalArgumentException("--shared-dir DIR is required");
            }
            if (!Files.isDirectory(sharedDir)) {
                throw new IllegalArgumentException("--shared-dir: no such directory: " + sharedDir);
            }
            if (sandbox != null && !sandbox.equals("none")) {
                throw new IllegalArgumentException("--sandbox " + sandbox + " is not implemented yet (only 'none')");
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
        FsDevice device;
        try {
            device = new FsDevice(sharedDir.toAbsolutePath(), readOnly, tag, requestQueues, queueSize);
            device.open();
        } catch (IllegalArgumentException e) {
            System.err.println("vhostj fs: " + e.getMessage());
            return 2;
        } catch (NativeException e) {
            System.err.println("vhostj fs: cannot open " + sharedDir + ": " + e.getMessage());
            return 1;
        }
        LoggerFactory.getLogger(FsMain.class).warn("fs: exporting {}{}, unsandboxed (work in progress); "
                + "names are resolved one component at a time with O_NOFOLLOW", sharedDir.toAbsolutePath(),
                readOnly ? " read-only" : "");
        return BackendLauncher.run(backend, device);
    }

    public static void main(String[] args) {
        CommandLine cl = new CommandLine(new FsMain());
        cl.setParameterExceptionHandler((e, a) -> {
            System.err.println("vhostj fs: " + e.getMessage() + " (try --help)");
            return 2;
        });
        System.exit(cl.execute(args));
    }
}
