package io.vhostj.vsock;

import java.util.concurrent.atomic.AtomicBoolean;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * Wakes one queue's worker from another thread: an eventfd its park watches, and a flag so that
 * the worker reads the eventfd only when it was signalled (no read syscall per poll) and a
 * burst of signals writes it once.
 */
final class Wake implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Wake.class);

    private final EventFd fd;
    private final AtomicBoolean signalled = new AtomicBoolean();

    Wake() throws NativeException {
        fd = EventFd.create();
    }

    int fd() {
        return fd.fd();
    }

    /** Wakes the worker, unless it is signalled already and has not looked yet. */
    void signal() {
        if (signalled.compareAndSet(false, true)) {
            try {
                fd.signal();
            } catch (NativeException e) {
                LOG.warn("vsock: cannot wake a queue: {}", e.getMessage());
            }
        }
    }

    /** The worker's side: clears the eventfd if it was signalled; then it looks for work. */
    void clear() {
        if (signalled.getAndSet(false)) {
            try {
                fd.drain();
            } catch (NativeException e) {
                LOG.warn("vsock: cannot read a wake eventfd: {}", e.getMessage());
            }
        }
    }

    @Override
    public void close() {
        fd.close();
    }
}
