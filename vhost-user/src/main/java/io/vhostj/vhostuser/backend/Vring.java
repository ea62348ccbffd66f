package io.vhostj.vhostuser.backend;

import org.agrona.concurrent.AgentRunner;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.virtq.SplitQueue;
import io.vhostj.vhostuser.worker.KickIdleStrategy;
import io.vhostj.vhostuser.worker.QueueCounters;
import io.vhostj.vhostuser.worker.QueueWorker;

/** What the frontend told us about one virtqueue, and its worker while it runs. */
final class Vring {
    private static final Logger LOG = LoggerFactory.getLogger(Vring.class);

    final int index;
    int size;
    boolean addressSet;
    long descUserAddr;
    long availUserAddr;
    long usedUserAddr;
    int base;
    EventFd kick;
    boolean kickPolled; // SET_VRING_KICK with the no-fd flag: never park
    EventFd call;
    EventFd err;
    boolean enabled;
    final QueueCounters counters = new QueueCounters();

    private SplitQueue queue;
    private QueueWorker worker;
    private KickIdleStrategy idle;
    private AgentRunner runner;

    Vring(int index) {
        this.index = index;
    }

    boolean hasKick() {
        return kick != null || kickPolled;
    }

    boolean isRunning() {
        return runner != null;
    }

    void start(SplitQueue queue, QueueWorker worker, KickIdleStrategy idle, AgentRunner runner) {
        this.queue = queue;
        this.worker = worker;
        this.idle = idle;
        this.runner = runner;
        AgentRunner.startOnThread(runner);
    }

    /** Stops the worker (waiting for its thread) and remembers where the ring stands. */
    void stop() {
        if (runner == null) {
            return;
        }
        idle.stop();
        runner.close();
        base = queue.lastAvailIndex();
        LOG.debug("queue {} stopped at avail index {}: {}", index, base, counters);
        runner = null;
        worker = null;
        idle = null;
        queue = null;
    }

    /** Forgets everything: the ring as after a fresh connection. */
    void reset() {
        stop();
        closeFds();
        size = 0;
        addressSet = false;
        descUserAddr = availUserAddr = usedUserAddr = 0;
        base = 0;
        kickPolled = false;
        enabled = false;
    }

    void closeKick() {
        if (kick != null) {
            kick.close();
            kick = null;
        }
        kickPolled = false;
    }

    void closeFds() {
        closeKick();
        if (call != null) {
            call.close();
            call = null;
        }
        if (err != null) {
            err.close();
            err = null;
        }
    }
}
