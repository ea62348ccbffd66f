package io.vhostj.vhostuser.device;

import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;

/**
 * Serves the requests of one virtqueue, on that queue's worker thread. A handler answers a
 * request at once (synchronous devices) or takes it and answers later: it returns
 * {@link #PENDING}, keeps what it needs of the chain (the chain object is reused for the next
 * request), and reports the completion through {@link #reap(Completion)}. The worker parks on
 * {@link #completionFd()} beside the kick eventfd while requests are pending, and before the
 * queue stops (and guest memory may go away) it waits in {@link #awaitCompletions()} until none is.
 */
public interface QueueHandler {
    /** {@link #handle} took the request and will complete it through {@link #reap}. */
    int PENDING = -1;

    /** The worker's side of a completion: the used-ring entry for {@code head}. */
    @FunctionalInterface
    interface Completion {
        void complete(int head, int writtenLength);
    }

    /**
     * Serves one request and returns how many bytes it wrote into the chain's device-writable
     * part (the used length), or {@link #PENDING}. A request that cannot be served because its
     * chain is malformed throws {@link ChainException}; the worker then returns it with length 0
     * and goes on. Operation failures are the device's own status inside the reply, not exceptions.
     */
    int handle(DescriptorChain chain) throws ChainException;

    /** Whether {@link #handle} can take another request now; false leaves it in the avail ring. */
    default boolean canAccept() {
        return true;
    }

    /** Called once after a batch of requests, before the used ring is published (submit here). */
    default void batchEnd() {
    }

    /** Reports every pending request that has finished; never blocks. Returns how many. */
    default int reap(Completion done) {
        return 0;
    }

    /** Requests taken with {@link #PENDING} and not reported yet. */
    default int pending() {
        return 0;
    }

    /** A descriptor that becomes readable when a pending request finishes, or -1. */
    default int completionFd() {
        return -1;
    }

    /**
     * Whether a parked worker watches {@link #completionFd()} even with nothing pending: a
     * handler that gets work for its queue from elsewhere (vsock's receive queue, fed by host
     * sockets) signals that descriptor to wake it, and drains it in {@link #reap}.
     */
    default boolean wakesFromOutside() {
        return false;
    }

    /** Blocks until at least one pending request has finished (or none is pending). */
    default void awaitCompletions() {
    }

    /** The queue stopped and nothing is pending; release what the handler holds. */
    default void close() {
    }
}
