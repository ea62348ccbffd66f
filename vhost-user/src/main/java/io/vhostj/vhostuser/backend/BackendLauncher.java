package io.vhostj.vhostuser.backend;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.device.VirtioDevice;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.Sandbox;

/** Runs a device on the socket the options name until SIGTERM/SIGINT; returns an exit code. */
public final class BackendLauncher {
    private BackendLauncher() {
    }

    /** What a backend does once its socket is ready and before it serves (confine itself, open its files). */
    @FunctionalInterface
    public interface BeforeServing {
        /** Throws with a message for a person when the backend cannot go on. */
        void run() throws Exception;
    }

    public static int run(BackendOptions options, VirtioDevice device) {
        return run(options, device, () -> { });
    }

    /**
     * Serves {@code device}: binds (or adopts) the socket, runs {@code before} (the socket path is
     * not reachable from inside a sandbox, so it exists by then), then serves until a signal.
     */
    public static int run(BackendOptions options, VirtioDevice device, BeforeServing before) {
        Logger log = LoggerFactory.getLogger(BackendLauncher.class);
        VhostUserBackend backend = new VhostUserBackend(device, TimeUnit.MICROSECONDS.toNanos(options.pollMicros));
        backend.pinQueues(options.cpus());
        VhostUserServer server;
        try {
            server = options.socketPath != null
                    ? VhostUserServer.listen(backend, options.socketPath)
                    : VhostUserServer.adopt(backend, options.fd);
        } catch (NativeException e) {
            log.error("cannot serve {}: {}", options.socketPath != null ? options.socketPath : "fd " + options.fd,
                    e.getMessage());
            return 1;
        }
        if (options.socketGroup != null) {
            try {
                giveSocketToGroup(options.socketPath, options.socketGroup);
            } catch (java.io.IOException e) {
                log.error("--socket-group {}: {}", options.socketGroup, e.getMessage());
                server.close();
                server.release();
                return 1;
            }
        }
        try {
            before.run();
        } catch (Exception e) {
            log.error("{}: {}", device.name(), e.getMessage());
            server.close();
            server.release();
            return 1;
        }
        // SIGTERM/SIGINT stop serving; run() returns and we exit 0, as a service manager expects.
        sun.misc.SignalHandler stop = sig -> {
            log.info("{}: SIG{} received, shutting down", device.name(), sig.getName());
            server.close();
        };
        sun.misc.Signal.handle(new sun.misc.Signal("TERM"), stop);
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), stop);
        server.run();
        server.release();
        log.info("{}: stopped", device.name());
        return 0;
    }

    /** Set by bin/vhostj when it started this JVM in a user namespace of its own making. */
    public static final String LAUNCHER_USER_NAMESPACE = "vhostj.launcher.userns";

    /** {@code --socket-group}: the socket to {@code name}, read-write for it. */
    private static void giveSocketToGroup(Path socket, String name) throws java.io.IOException {
        // only in the user namespace bin/vhostj made does the group database name ids outside
        // it; a container's own namespace comes with its own /etc/group
        Sandbox.UserNamespace ns = Boolean.getBoolean(LAUNCHER_USER_NAMESPACE) ? Sandbox.userNamespace() : null;
        if (ns == null) {
            java.nio.file.attribute.GroupPrincipal group = socket.getFileSystem()
                    .getUserPrincipalLookupService().lookupPrincipalByGroupName(name);
            java.nio.file.Files.getFileAttributeView(socket,
                    java.nio.file.attribute.PosixFileAttributeView.class).setGroup(group);
        } else {
            // the group database names ids outside the namespace, chown(2) takes its own: by name
            // alone, "root" would be the namespace's root group, this user's own
            long gid = Sandbox.groupId(name);
            long inside = Sandbox.insideGid(gid);
            if (inside < 0) {
                throw new java.io.IOException("gid " + gid + " is not mapped in this user namespace"
                        + (ns.oneId() ? " (only gid " + ns.gid() + ", this user's, is)" : ""));
            }
            java.nio.file.Files.setAttribute(socket, "unix:gid", (int) inside);
        }
        java.nio.file.Files.setPosixFilePermissions(socket,
                java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw----"));
    }

    /**
     * Serves several devices in one process, device i on the socket path {@code sockets.get(i)},
     * each on a thread of its own, until SIGTERM/SIGINT stops them all.
     */
    public static int runAll(BackendOptions options, List<Path> sockets, List<? extends VirtioDevice> devices) {
        Logger log = LoggerFactory.getLogger(BackendLauncher.class);
        List<VhostUserServer> servers = new ArrayList<>();
        for (int i = 0; i < devices.size(); i++) {
            VhostUserBackend backend = new VhostUserBackend(devices.get(i),
                    TimeUnit.MICROSECONDS.toNanos(options.pollMicros));
            backend.pinQueues(options.cpus());
            try {
                servers.add(VhostUserServer.listen(backend, sockets.get(i)));
            } catch (NativeException e) {
                log.error("cannot serve {}: {}", sockets.get(i), e.getMessage());
                for (VhostUserServer s : servers) {
                    s.close();
                    s.release();
                }
                return 1;
            }
        }
        sun.misc.SignalHandler stop = sig -> {
            log.info("SIG{} received, shutting down {} backend(s)", sig.getName(), servers.size());
            servers.forEach(VhostUserServer::close);
        };
        sun.misc.Signal.handle(new sun.misc.Signal("TERM"), stop);
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), stop);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < servers.size(); i++) {
            VhostUserServer server = servers.get(i);
            Thread t = new Thread(server::run, "vhostj-serve-" + sockets.get(i).getFileName());
            t.start();
            threads.add(t);
        }
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                servers.forEach(VhostUserServer::close);
            }
        }
        servers.forEach(VhostUserServer::release);
        log.info("stopped {} backend(s)", servers.size());
        return 0;
    }
}
