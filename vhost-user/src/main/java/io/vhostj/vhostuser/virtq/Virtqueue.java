package io.vhostj.vhostuser.virtq;

/**
 * The device side of one virtqueue, as a queue worker uses it. Split rings implement it now;
 * packed rings (2.8) will implement the same contract.
 *
 * <p>Single-threaded: only the queue's worker calls these methods.
 */
public interface Virtqueue {
    int size();

    /** True if the driver has made requests available that were not yet popped. */
    boolean hasAvailable() throws QueueBrokenException;

    /**
     * Pops the next available request into {@code chain}; returns false if there is none. If the
     * chain breaks the rules, throws {@link ChainException} with {@code chain.head()} set: the
     * caller must still return that head through {@link #addUsed}.
     */
    boolean pop(DescriptorChain chain) throws QueueBrokenException, ChainException;

    /** Queues a used entry; it becomes visible to the driver at {@link #publishUsed()}. */
    void addUsed(int head, int writtenLength);

    /**
     * Makes all queued used entries visible (one index store per batch) and says whether the
     * driver asked to be interrupted for them (EVENT_IDX / NO_INTERRUPT).
     */
    boolean publishUsed();

    /** Ask the driver to kick us again (before parking the worker). */
    void enableNotifications();

    /** Tell the driver not to kick (while the worker is busy-polling). */
    void disableNotifications();

    /** Index of the next avail entry to pop: what GET_VRING_BASE reports. */
    int lastAvailIndex();
}
