package io.vhostj.vhostuser.backend;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.device.VirtioDevice;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * Devices served from one process, each on its own socket and thread, that can be added and
 * removed while the others run (an SPDK-style target: a runtime adds a disk per VM it starts).
 * {@link #awaitStop} serves until SIGTERM/SIGINT.
 */
public final class ServerGroup {
    private static final Logger LOG = LoggerFactory.getLogger(ServerGroup.class);

    private record Served(VhostUserServer server, Thread thread, Runnable onRemoved) {
    }

    private final BackendOptions options;
    private final Map<Path, Served> served = new LinkedHashMap<>();
    private boolean stopping;

    public ServerGroup(BackendOptions options) {
        this.options = options;
    }

    /** Serves {@code device} on {@code socket} from now on; {@code onRemoved} runs after it stopped. */
    public synchronized void add(Path socket, VirtioDevice device, Runnable onRemoved) throws NativeException {
        Path key = socket.toAbsolutePath().normalize();
        if (stopping) {
            throw new IllegalStateException("the process is stopping");
        }
        if (served.containsKey(key)) {
            throw new IllegalArgumentException(socket + " is served already");
        }
        VhostUserBackend backend = new VhostUserBackend(device, TimeUnit.MICROSECONDS.toNanos(options.pollMicros));
        backend.pinQueues(options.cpus());
        VhostUserServer server = VhostUserServer.listen(backend, socket);
        Thread t = new Thread(server::run, "vhostj-serve-" + socket.getFileName());
        served.put(key, new Served(server, t, onRemoved));
        t.start();
    }

    /** Stops serving {@code socket} (its frontend is disconnected); false if it was not served. */
    public boolean remove(Path socket) throws InterruptedException {
        Served s;
        synchronized (this) {
            s = served.remove(socket.toAbsolutePath().normalize());
        }
        if (s == null) {
            return false;
        }
        stop(s);
        return true;
    }

    public synchronized boolean contains(Path socket) {
        return served.containsKey(socket.toAbsolutePath().normalize());
    }

    private static void stop(Served s) throws InterruptedException {
        s.server.close();
        s.thread.join();
        s.server.release();
        s.onRemoved.run();
    }

    /** Stops every device and takes no new ones; again is a no-op. */
    public void stopAll() {
        Map<Path, Served> all;
        synchronized (this) {
            stopping = true;
            all = new LinkedHashMap<>(served);
            served.clear();
        }
        for (Served s : all.values()) {
            try {
                stop(s);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (!all.isEmpty()) {
            LOG.info("stopped {} backend(s)", all.size());
        }
    }

    /** Serves until SIGTERM or SIGINT, then stops every device. Returns the exit code (0). */
    public int awaitStop() {
        Object done = new Object();
        boolean[] signalled = {false};
        sun.misc.SignalHandler stop = sig -> {
            LOG.info("SIG{} received, shutting down", sig.getName());
            synchronized (done) {
                signalled[0] = true;
                done.notifyAll();
            }
        };
        sun.misc.Signal.handle(new sun.misc.Signal("TERM"), stop);
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), stop);
        synchronized (done) {
            while (!signalled[0]) {
                try {
                    done.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        stopAll();
        return 0;
    }
}
