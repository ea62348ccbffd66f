package io.vhostj.vsock;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import org.slf4j.LoggerFactory;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.vhostj.vhostuser.backend.BackendLauncher;
import io.vhostj.vhostuser.backend.BackendOptions;
import io.vhostj.vhostuser.sys.NativeException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code vhostj vsock}: vhost-user-vsock with hybrid vsock on the host (issue 5, in progress). */
@Command(name = "vhostj vsock", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"vhost-user-vsock backend with hybrid vsock (Firecracker's and Cloud Hypervisor's convention):",
            "a host program connects to --uds-path and writes 'CONNECT <port>\\n' to reach the guest's port",
            "(answered 'OK <host port>\\n'); a guest connection to CID 2 port P reaches the Unix socket",
            "listening at <uds-path>_P. Stream sockets; one VM per process so far.",
            "QEMU side: -chardev socket,id=c0,path=SOCK -device vhost-user-vsock-pci,chardev=c0"})
public final class VsockMain implements Callable<Integer> {
    @Mixin
    BackendOptions backend;

    @Option(names = "--guest-cid", paramLabel = "CID", description = "The guest's context id (3 or more).")
    Long guestCid;

    @Option(names = "--uds-path", paramLabel = "PATH", description = "The host side's Unix socket (hybrid vsock).")
    Path udsPath;

    @Option(names = "--tx-buffer-size", paramLabel = "BYTES", defaultValue = "262144",
            description = "Bytes of a connection's guest-to-host data the backend holds while the host reader "
                    + "catches up (the buf_alloc the guest is given). Default: ${DEFAULT-VALUE}.")
    int txBufferSize;

    @Option(names = "--queue-size", defaultValue = "256", paramLabel = "N",
            description = "Largest ring the guest may use, a power of two <= 32768. Default: ${DEFAULT-VALUE}.")
    int queueSize;

    @Override
    public Integer call() {
        if (backend.printCapabilities) {
            System.out.println("{\"type\": \"vsock\"}");
            return 0;
        }
        try {
            backend.applyLogLevel();
            backend.validate();
            if (guestCid == null || guestCid < 3 || guestCid > 0xffff_fffeL) {
                throw new IllegalArgumentException("--guest-cid CID is required: 3 or more (0-2 are reserved)");
            }
            if (udsPath == null) {
                throw new IllegalArgumentException("--uds-path PATH is required");
            }
            if (txBufferSize < 4096 || txBufferSize > (64 << 20)) {
                throw new IllegalArgumentException("--tx-buffer-size must be 4096..67108864");
            }
            if (queueSize < 2 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
                throw new IllegalArgumentException("--queue-size must be a power of two, 2..32768");
            }
            Path parent = udsPath.toAbsolutePath().getParent();
            if (parent == null || !Files.isDirectory(parent)) {
                throw new IllegalArgumentException("--uds-path: no such directory: " + parent);
            }
            if (Files.exists(udsPath, LinkOption.NOFOLLOW_LINKS)) {
                if (!Files.readAttributes(udsPath, java.nio.file.attribute.PosixFileAttributes.class,
                        LinkOption.NOFOLLOW_LINKS).isOther()) {
                    throw new IllegalArgumentException("--uds-path " + udsPath + " exists and is not a socket");
                }
                Files.delete(udsPath); // a stale socket from an earlier run
            }
        } catch (IllegalArgumentException | java.io.IOException e) {
            System.err.println("vhostj vsock: " + e.getMessage());
            return 2;
        }
        if (!Epoll.isAvailable()) {
            System.err.println("vhostj vsock: netty's epoll transport is unavailable: " + Epoll.unavailabilityCause());
            return 1;
        }
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        VsockMux mux;
        try {
            mux = new VsockMux(guestCid, udsPath, txBufferSize, group);
            mux.listen();
        } catch (NativeException | RuntimeException | InterruptedException e) {
            System.err.println("vhostj vsock: cannot listen on " + udsPath + ": " + e.getMessage());
            group.shutdownGracefully();
            return 1;
        }
        try {
            return BackendLauncher.run(backend, new VsockDevice(mux, queueSize));
        } finally {
            mux.close();
            try {
                Files.deleteIfExists(udsPath);
            } catch (java.io.IOException e) {
                LoggerFactory.getLogger(VsockMain.class).debug("cannot remove {}: {}", udsPath, e.getMessage());
            }
            group.shutdownGracefully().syncUninterruptibly();
        }
    }

    public static void main(String[] args) {
        CommandLine cl = new CommandLine(new VsockMain());
        cl.setParameterExceptionHandler((e, a) -> {
            System.err.println("vhostj vsock: " + e.getMessage() + " (try --help)");
            return 2;
        });
        System.exit(cl.execute(args));
    }
}
