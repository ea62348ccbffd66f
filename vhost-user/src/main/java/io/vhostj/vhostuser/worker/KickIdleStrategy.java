package io.vhostj.vhostuser.worker;

import java.util.concurrent.TimeUnit;

import org.agrona.concurrent.IdleStrategy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.Poll;
import io.vhostj.vhostuser.virtq.QueueBrokenException;
import io.vhostj.vhostuser.virtq.Virtqueue;

/**
 * Adaptive polling: while work keeps coming the worker spins on the avail index with driver
 * notifications off (no kicks, no syscalls); after {@code pollNanos} without work it turns
 * notifications back on, re-checks the ring (the driver may have added work just before), and
 * parks in poll(2) on the kick eventfd. {@code pollNanos = 0} is pure interrupt mode.
 * No agrona strategy blocks on a file descriptor, hence this one.
 */
public final class KickIdleStrategy implements IdleStrategy {
    private static final Logger LOG = LoggerFactory.getLogger(KickIdleStrategy.class);
    private static final int PARK_TIMEOUT_MS = 1000;
    private static final long INITIAL_POLL_NANOS = 4_000;

    private final Virtqueue queue;
    private final QueueWorker worker; // null in tests that drive the strategy alone
    private final EventFd kick; // null: the frontend never kicks (SET_VRING_KICK with no fd)
    private final long pollNanos;
    private final QueueCounters counters;
    private volatile boolean stopping;
    private long idleSince;
    /** Poll time now, adapted between 0 and {@code pollNanos} by {@link #adapt}. */
    private long pollNs;
    private boolean notificationsOn = true;

    public KickIdleStrategy(Virtqueue queue, EventFd kick, long pollNanos, QueueCounters counters) {
        this(queue, null, kick, pollNanos, counters);
    }

    /**
     * With a worker whose handler completes requests later: while any is pending, a park also
     * wakes when its completion descriptor becomes readable.
     */
    public KickIdleStrategy(Virtqueue queue, QueueWorker worker, EventFd kick, long pollNanos,
            QueueCounters counters) {
        this.queue = queue;
        this.worker = worker;
        this.kick = kick;
        this.pollNanos = pollNanos;
        this.counters = counters;
        if (pollNanos > 0 && kick != null) {
            queue.disableNotifications();
            notificationsOn = false;
        }
    }

    /** Makes a parked worker return promptly; call before closing the agent runner. */
    public void stop() {
        stopping = true;
        if (kick != null && kick.isOpen()) {
            try {
                kick.signal();
            } catch (NativeException e) {
                LOG.debug("wake on stop: {}", e.getMessage());
            }
        }
    }

    @Override
    public void idle(int workCount) {
        if (workCount > 0) {
            if (idleSince != 0) {
                adapt(System.nanoTime() - idleSince);
                idleSince = 0;
            }
            return;
        }
        idle();
    }

    /**
     * Adaptive polling, as QEMU's event loop does it: {@code waitedNanos} is how long the queue
     * was idle before work came (spinning and parked). A wait longer than the budget means
     * polling would have been wasted: stop polling. A wait inside the budget that polling did
     * not cover means polling longer would have caught it: double the poll time (from 4 µs).
     * A driver that sends in bursts gets polled; one that trickles, or an idle guest, costs
     * no CPU.
     */
    private void adapt(long waitedNanos) {
        if (pollNanos == 0 || waitedNanos <= pollNs) {
            return;
        }
        if (waitedNanos > pollNanos) {
            pollNs = 0;
        } else {
            pollNs = Math.min(pollNanos, pollNs == 0 ? INITIAL_POLL_NANOS : pollNs * 2);
        }
    }

    /** The current poll time (0 = parks at once), for tests and counters. */
    public long pollNanosNow() {
        return pollNs;
    }

    @Override
    public void idle() {
        if (stopping) {
            return;
        }
        if (kick == null) {
            Thread.onSpinWait(); // no doorbell: polling is all there is
            return;
        }
        long now = System.nanoTime();
        if (idleSince == 0) {
            idleSince = now;
        }
        if (pollNs > 0 && now - idleSince < pollNs) {
            Thread.onSpinWait();
            return;
        }
        park(); // idleSince stays: the wait counts until work comes
    }

    private void park() {
        try {
            // Every time, not once: with EVENT_IDX "on" means avail_event = where we stand now,
            // and that moves with every request popped since the last park.
            queue.enableNotifications();
            notificationsOn = true;
            // Re-check after the fence in enableNotifications: a request added before the driver
            // saw notifications on would otherwise wait for the next kick.
            // ... unless the handler takes nothing now (vsock's rx queue holds the guest's empty
            // buffers until the host has something for them): then they are no reason to spin
            if (queue.hasAvailable() && (worker == null || worker.canAccept())) {
                afterWake();
                return;
            }
            counters.parks++;
            int completions = worker == null || !worker.watchesCompletions() ? -1 : worker.completionFd();
            if (completions >= 0) {
                // one wake-up for either: a kick or a finished request, whichever comes first;
                // the frontend's kick fd may be blocking: read it only if poll saw it readable
                if ((Poll.ready(kick.fd(), completions, PARK_TIMEOUT_MS) & 1) == 0) {
                    afterWake();
                    return;
                }
            } else {
                while (!stopping && !kick.await(PARK_TIMEOUT_MS)) {
                    // timeout: look at the stop flag again
                }
            }
            if (kick.drain() != 0) {
                counters.kicksReceived++;
            }
            afterWake();
        } catch (QueueBrokenException e) {
            // doWork reports it
        } catch (NativeException e) {
            LOG.warn("kick eventfd: {}", e.getMessage());
            parkNanos();
        }
    }

    private void afterWake() {
        if (pollNanos > 0) {
            queue.disableNotifications();
            notificationsOn = false;
        }
    }

    private static void parkNanos() {
        java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
    }

    @Override
    public void reset() {
        idleSince = 0;
    }

    @Override
    public String alias() {
        return "kick";
    }
}
