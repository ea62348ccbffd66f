package io.vhostj.vsock;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import org.slf4j.LoggerFactory;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.vhostj.vhostuser.backend.BackendLauncher;
import io.vhostj.vhostuser.backend.BackendOptions;
import io.vhostj.vhostuser.backend.KeyValues;
import io.vhostj.vhostuser.sys.NativeException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code vhostj vsock}: vhost-user-vsock with hybrid vsock on the host (CONNECT, passfd, stream and SEQPACKET). */
@Command(name = "vhostj vsock", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"vhost-user-vsock backend with hybrid vsock (Firecracker's and Cloud Hypervisor's convention):",
            "a host program connects to --uds-path and writes 'CONNECT <port>\\n' to reach the guest's port",
            "(answered 'OK <host port>\\n'); a guest connection to CID 2 port P reaches the Unix socket",
            "listening at <uds-path>_P. Kata's fd passthrough: 'passfd\\n', then '<port>[ keep]' with a FIFO,",
            "socket or tty in SCM_RIGHTS, answered 'OK <host port>\\n'; the backend then reads and writes that",
            "descriptor itself (keep: the Unix connection stays open until the stream ends). Stream and SEQPACKET",
            "sockets: a guest's SEQPACKET connection reaches a SOCK_SEQPACKET listener at <uds-path>_P, and a",
            "passfd of a SOCK_SEQPACKET socket reaches a guest's SEQPACKET port. One VM, or several with --vm.",
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

    @Option(names = "--vm", paramLabel = "SPEC",
            description = {"guest-cid=N,socket=PATH,uds-path=PATH[,tx-buffer-size=BYTES][,queue-size=N][,groups=A+B]: "
                    + "one VM; repeat it to serve several VMs in this process (instead of --guest-cid, --socket-path and "
                    + "--uds-path). Each CID once. VMs that share a group reach each other by CID (a guest connects "
                    + "to the sibling's CID with VMADDR_FLAG_TO_HOST); every VM is in group 'default' unless groups= "
                    + "says otherwise."})
    List<String> vms = new ArrayList<>();

    @Option(names = "--groups", paramLabel = "A+B", defaultValue = "default",
            description = "With one VM: the groups it is in (only matters with --vm). Default: ${DEFAULT-VALUE}.")
    String groups;

    /** One VM this process serves. */
    record Vm(long cid, Path socket, Path uds, int txBufferSize, int queueSize, java.util.Set<String> groups) {
    }

    @Override
    public Integer call() {
        if (backend.printCapabilities) {
            System.out.println("{\"type\": \"vsock\"}");
            return 0;
        }
        List<Vm> all;
        try {
            backend.applyLogLevel();
            all = vms();
            for (Vm vm : all) {
                prepareUds(vm.uds());
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
        List<VsockMux> muxes = new ArrayList<>();
        VsockSiblings siblings = new VsockSiblings();
        try {
            List<VsockDevice> devices = new ArrayList<>();
            for (Vm vm : all) {
                VsockMux mux;
                try {
                    mux = new VsockMux(vm.cid(), vm.uds(), vm.txBufferSize(), group, vm.groups(), siblings);
                    muxes.add(mux);
                    siblings.add(mux);
                    mux.listen();
                } catch (NativeException | RuntimeException | InterruptedException e) {
                    System.err.println("vhostj vsock: cannot listen on " + vm.uds() + ": " + e.getMessage());
                    return 1;
                }
                devices.add(new VsockDevice(mux, vm.queueSize()));
            }
            if (vms.isEmpty()) {
                return BackendLauncher.run(backend, devices.get(0));
            }
            return BackendLauncher.runAll(backend, all.stream().map(Vm::socket).toList(), devices);
        } finally {
            muxes.forEach(VsockMux::close);
            for (Vm vm : all) {
                try {
                    Files.deleteIfExists(vm.uds());
                } catch (java.io.IOException e) {
                    LoggerFactory.getLogger(VsockMain.class).debug("cannot remove {}: {}", vm.uds(), e.getMessage());
                }
            }
            group.shutdownGracefully().syncUninterruptibly();
        }
    }

    /** The VMs the command line asks for: one from the single-VM options, or each --vm. */
    private List<Vm> vms() {
        List<Vm> all = new ArrayList<>();
        if (vms.isEmpty()) {
            backend.validate();
            if (guestCid == null) {
                throw new IllegalArgumentException("--guest-cid CID is required (or --vm)");
            }
            if (udsPath == null) {
                throw new IllegalArgumentException("--uds-path PATH is required");
            }
            all.add(check(new Vm(guestCid, backend.socketPath, udsPath, txBufferSize, queueSize,
                    groups(groups, "--groups")), "--"));
            return all;
        }
        if (guestCid != null || udsPath != null || backend.socketPath != null || backend.fd != null) {
            throw new IllegalArgumentException("--vm replaces --guest-cid, --socket-path, --fd and --uds-path");
        }
        if (backend.pollMicros < 0) {
            throw new IllegalArgumentException("--poll-us must be 0 or more");
        }
        java.util.Set<Long> cids = new java.util.HashSet<>();
        java.util.Set<Path> paths = new java.util.HashSet<>();
        for (String spec : vms) {
            java.util.Map<String, String> kv = KeyValues.parse("--vm", spec,
                    java.util.Set.of("guest-cid", "socket", "uds-path", "tx-buffer-size", "queue-size", "groups"));
            KeyValues.require("--vm", spec, kv, "guest-cid", "socket", "uds-path");
            Vm vm;
            try {
                vm = new Vm(Long.parseLong(kv.get("guest-cid")), Path.of(kv.get("socket")), Path.of(kv.get("uds-path")),
                        Integer.parseInt(kv.getOrDefault("tx-buffer-size", Integer.toString(txBufferSize))),
                        Integer.parseInt(kv.getOrDefault("queue-size", Integer.toString(queueSize))),
                        groups(kv.getOrDefault("groups", groups), "--vm " + spec + ": groups"));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--vm " + spec + ": not a number: " + e.getMessage());
            }
            check(vm, "--vm " + spec + ": ");
            if (!cids.add(vm.cid())) {
                throw new IllegalArgumentException("--vm: guest CID " + vm.cid() + " is given twice");
            }
            if (!paths.add(vm.socket().toAbsolutePath()) || !paths.add(vm.uds().toAbsolutePath())) {
                throw new IllegalArgumentException("--vm " + spec + ": a socket path is used twice");
            }
            all.add(vm);
        }
        return all;
    }

    /** {@code a+b+c}: group names, none empty. */
    private static java.util.Set<String> groups(String text, String where) {
        java.util.Set<String> out = new java.util.LinkedHashSet<>();
        for (String g : text.split("\\+", -1)) {
            if (!g.matches("[A-Za-z0-9_.-]+")) {
                throw new IllegalArgumentException(where + ": '" + text + "' is not a list of group names joined by '+'");
            }
            out.add(g);
        }
        return out;
    }

    private static Vm check(Vm vm, String where) {
        if (vm.cid() < 3 || vm.cid() > 0xffff_fffeL) {
            throw new IllegalArgumentException(where + "guest-cid must be 3 or more (0-2 are reserved)");
        }
        if (vm.txBufferSize() < 4096 || vm.txBufferSize() > (64 << 20)) {
            throw new IllegalArgumentException(where + "tx-buffer-size must be 4096..67108864");
        }
        if (vm.queueSize() < 2 || vm.queueSize() > 32768 || Integer.bitCount(vm.queueSize()) != 1) {
            throw new IllegalArgumentException(where + "queue-size must be a power of two, 2..32768");
        }
        return vm;
    }

    /** The hybrid socket's directory must exist; a stale socket from an earlier run goes. */
    private static void prepareUds(Path uds) throws java.io.IOException {
        Path parent = uds.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new IllegalArgumentException("uds path " + uds + ": no such directory: " + parent);
        }
        if (Files.exists(uds, LinkOption.NOFOLLOW_LINKS)) {
            if (!Files.readAttributes(uds, java.nio.file.attribute.PosixFileAttributes.class,
                    LinkOption.NOFOLLOW_LINKS).isOther()) {
                throw new IllegalArgumentException("uds path " + uds + " exists and is not a socket");
            }
            Files.delete(uds);
        }
    }

    public static void main(String[] args) {
        io.vhostj.vhostuser.backend.CommandMain.run("vhostj vsock", new VsockMain(), args);
    }
}
