package io.vhostj.vhostuser.worker;

import org.agrona.concurrent.Agent;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.sys.Affinity;
import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;
import io.vhostj.vhostuser.virtq.QueueBrokenException;
import io.vhostj.vhostuser.virtq.Virtqueue;

/**
 * The duty cycle of one virtqueue: pop a batch of requests, serve them, publish the used ring
 * once, and signal the call eventfd only if the driver asked for it. Waiting for work is the
 * {@link KickIdleStrategy}'s job. A malformed request costs that request (used length 0); a
 * broken ring stops this queue and signals the error eventfd; neither stops the process.
 */
public final class QueueWorker implements Agent {
    private static final Logger LOG = LoggerFactory.getLogger(QueueWorker.class);
    private static final int MAX_BATCH = 256;
    private static final long LOG_EVERY = 1000;

    private final String role;
    private final Virtqueue queue;
    private final QueueHandler handler;
    private final EventFd call;
    private final EventFd err;
    private final QueueCounters counters;
    private final DescriptorChain chain = new DescriptorChain();
    private final QueueHandler.Completion completion = this::complete;
    private boolean broken;
    private final int cpu;

    public QueueWorker(String role, Virtqueue queue, QueueHandler handler, EventFd call, EventFd err,
            QueueCounters counters) {
        this(role, queue, handler, call, err, counters, -1);
    }

    /** {@code cpu} >= 0 pins the worker's thread to that CPU when it starts. */
    public QueueWorker(String role, Virtqueue queue, QueueHandler handler, EventFd call, EventFd err,
            QueueCounters counters, int cpu) {
        this.cpu = cpu;
        this.role = role;
        this.queue = queue;
        this.handler = handler;
        this.call = call;
        this.err = err;
        this.counters = counters;
    }

    @Override
    public int doWork() {
        if (broken) {
            return reapOnly();
        }
        int popped = 0;
        int used = handler.reap(completion);
        try {
            while (popped < MAX_BATCH && handler.canAccept()) {
                int written;
                try {
                    if (!queue.pop(chain)) {
                        break;
                    }
                    written = handler.handle(chain);
                    counters.bytesRead += chain.readableBytes();
                } catch (ChainException e) {
                    written = 0;
                    badRequest(e);
                } catch (RuntimeException e) {
                    // a device bug must cost this request, not the queue: return it, keep serving
                    written = 0;
                    counters.badRequests++;
                    LOG.error("{}: device failed on the request at head {}", role, chain.head(), e);
                }
                popped++;
                if (written != QueueHandler.PENDING) {
                    counters.bytesWritten += written;
                    queue.addUsed(chain.head(), written);
                    used++;
                }
            }
        } catch (QueueBrokenException e) {
            broken = true;
            LOG.error("{}: ring is broken, queue stopped until the frontend resets it: {}", role, e.getMessage());
            signal(err);
        }
        if (popped > 0) {
            handler.batchEnd();
            // what the batch's submission finished at once (cached reads) goes out with this publish
            used += handler.reap(completion);
        }
        if (popped == 0 && used == 0) {
            counters.pollsWithoutWork++;
            return 0;
        }
        counters.pollsWithWork++;
        counters.requests += popped;
        if (used > 0) {
            publish();
        }
        return popped + used;
    }

    /** A broken ring takes no new requests, but what is in flight still completes. */
    private int reapOnly() {
        int used = handler.reap(completion);
        if (used > 0) {
            publish();
        }
        return used;
    }

    private void complete(int head, int written) {
        counters.bytesWritten += written;
        queue.addUsed(head, written);
    }

    private void publish() {
        if (queue.publishUsed()) {
            counters.callsSent++;
            signal(call);
        } else {
            counters.callsSuppressed++;
        }
    }

    /** Handler requests still in flight: they complete into the used ring before the queue stops. */
    public int pending() {
        return handler.pending();
    }

    /** Whether the handler would take a request now (false: available buffers are no reason to stay awake). */
    public boolean canAccept() {
        return handler.canAccept();
    }

    /** Whether a park should watch {@link #completionFd()}: requests pending, or work coming from outside. */
    public boolean watchesCompletions() {
        return handler.pending() > 0 || handler.wakesFromOutside();
    }

    /** Fd readable when a pending request completes (for the idle strategy), or -1. */
    public int completionFd() {
        return handler.completionFd();
    }

    private void badRequest(ChainException e) {
        long n = ++counters.badRequests;
        if (n <= 10 || n % LOG_EVERY == 0) {
            LOG.warn("{}: bad request at head {} ({} so far): {}", role, chain.head(), n, e.getMessage());
        }
    }

    private void signal(EventFd fd) {
        if (fd == null) {
            return; // the frontend polls the used ring (SET_VRING_CALL with no fd)
        }
        try {
            fd.signal();
        } catch (NativeException e) {
            LOG.warn("{}: cannot signal {}: {}", role, fd, e.getMessage());
        }
    }

    public Virtqueue queue() {
        return queue;
    }

    public QueueCounters counters() {
        return counters;
    }

    /**
     * The queue is stopping: the device may still be writing into guest memory for requests in
     * flight, and that memory may be unmapped next. Wait for every one, put it in the used ring
     * and tell the driver, then let the handler go.
     */
    @Override
    public void onClose() {
        int used = 0;
        while (handler.pending() > 0) {
            handler.awaitCompletions();
            used += handler.reap(completion);
        }
        if (used > 0) {
            publish();
        }
        handler.close();
    }

    @Override
    public void onStart() {
        if (cpu >= 0) {
            try {
                Affinity.pinCurrentThread(cpu);
            } catch (NativeException e) {
                LOG.warn("{}: cannot pin to CPU {}: {}", role, cpu, e.getMessage());
            }
        }
    }

    @Override
    public String roleName() {
        return role;
    }
}
