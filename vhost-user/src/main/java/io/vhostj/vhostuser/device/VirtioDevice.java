package io.vhostj.vhostuser.device;

import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.protocol.ProtocolFeature;

/**
 * The one interface a device backend implements (virtio-blk, virtio-fs, vsock, test devices).
 * The vhost-user machinery negotiates, maps memory, runs queue workers and calls back here.
 */
public interface VirtioDevice {
    /** Short name for logs and thread names ("blk", "fs"). */
    String name();

    /** Number of virtqueues the device can run (GET_QUEUE_NUM). */
    int queueCount();

    /** Largest ring the device accepts. */
    default int maxQueueSize() {
        return 32768;
    }

    /** Virtio feature bits offered (device-specific and transport bits such as VERSION_1). */
    long features();

    /** vhost-user protocol features the device wants; the backend masks them with what it implements. */
    default long protocolFeatures() {
        return ProtocolFeature.IMPLEMENTED;
    }

    /** Size of the device configuration space, 0 if it has none. */
    default int configSize() {
        return 0;
    }

    /** Copies config bytes {@code [offset, offset + dst.length)} into {@code dst}; bounds are pre-checked. */
    default void readConfig(int offset, byte[] dst) {
    }

    /** Applies a driver write to config space; false refuses it. Bounds are pre-checked. */
    default boolean writeConfig(int offset, byte[] data) {
        return false;
    }

    /** The features the driver accepted (subset of {@link #features()}). */
    default void featuresAcked(long features) {
    }

    /**
     * Creates the request handler for queue {@code index}, used only on that queue's worker thread,
     * valid until the queue stops (memory changes and reconnects stop queues first).
     */
    QueueHandler queueHandler(int index, GuestMemory memory);

    /** Back to the state of a fresh connection (frontend gone, RESET_DEVICE). */
    default void reset() {
    }
}
