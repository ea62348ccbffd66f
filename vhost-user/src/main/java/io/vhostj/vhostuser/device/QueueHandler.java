package io.vhostj.vhostuser.device;

import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;

/** Serves the requests of one virtqueue, on that queue's worker thread. */
public interface QueueHandler {
    /**
     * Serves one request and returns how many bytes it wrote into the chain's device-writable
     * part (the used length). A request that cannot be served because its chain is malformed
     * throws {@link ChainException}; the worker then returns it with length 0 and goes on.
     * Operation failures are the device's own status inside the reply, not exceptions.
     */
    int handle(DescriptorChain chain) throws ChainException;

    /** Called once after a batch of requests, before the used ring is published. */
    default void batchEnd() {
    }

    /** The queue stopped; release what the handler holds. */
    default void close() {
    }
}
