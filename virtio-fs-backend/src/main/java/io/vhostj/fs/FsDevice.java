package io.vhostj.fs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.device.VirtioDevice;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/**
 * A vhost-user-fs device (virtio 1.2, 5.11): one high-priority queue and {@code requestQueues}
 * request queues, each served by a {@link FuseQueueHandler}. The tag goes in the config space
 * only when one was given (then the CONFIG protocol feature is offered, as virtiofsd does).
 */
public final class FsDevice implements VirtioDevice {
    private final String tag;
    private final int requestQueues;
    private final int maxQueueSize;
    private final FsSession session = new FsSession();
    private final Passthrough fs;

    /** A device with no file system behind it: INIT only (for protocol tests). */
    public FsDevice(String tag, int requestQueues, int maxQueueSize) {
        this(null, FsOptions.defaults(), tag, requestQueues, maxQueueSize);
    }

    /** Exports {@code sharedDir} ({@link #open()} opens it); {@code null}: INIT only. */
    public FsDevice(Path sharedDir, FsOptions options, String tag, int requestQueues, int maxQueueSize) {
        if (tag != null && tag.getBytes(StandardCharsets.UTF_8).length > VirtioFs.TAG_BYTES) {
            throw new IllegalArgumentException("the tag is longer than " + VirtioFs.TAG_BYTES + " bytes");
        }
        if (requestQueues < 1) {
            throw new IllegalArgumentException("at least one request queue");
        }
        this.tag = tag;
        this.requestQueues = requestQueues;
        this.maxQueueSize = maxQueueSize;
        this.fs = sharedDir == null ? null : new Passthrough(sharedDir, options);
    }

    /** Opens the shared directory; call once before serving. */
    public void open() throws NativeException {
        if (fs != null) {
            fs.open();
        }
    }

    /** Opens the shared directory, which this process now sees at {@code path} (inside a sandbox). */
    public void open(Path path) throws NativeException {
        if (fs != null) {
            fs.open(path);
        }
    }

    /** Whether inodes are kept as file handles (after {@link #open()}). */
    public boolean usesFileHandles() {
        return fs != null && fs.usesFileHandles();
    }

    /** Descriptors open for inodes (with file handles: the root's only), for tests. */
    public int inodeDescriptors() {
        return fs == null ? 0 : fs.inodeDescriptors();
    }

    /** Descriptors held for the guest (inodes and handles; the root counts one), for tests. */
    public int heldDescriptors() {
        return fs == null ? 0 : fs.descriptors();
    }

    @Override
    public String name() {
        return "fs";
    }

    @Override
    public int queueCount() {
        return 1 + requestQueues;
    }

    @Override
    public int maxQueueSize() {
        return maxQueueSize;
    }

    @Override
    public long features() {
        return VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC)
                | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX);
    }

    @Override
    public long protocolFeatures() {
        long p = ProtocolFeature.bit(ProtocolFeature.MQ) | ProtocolFeature.bit(ProtocolFeature.REPLY_ACK)
                | ProtocolFeature.bit(ProtocolFeature.CONFIGURE_MEM_SLOTS)
                | ProtocolFeature.bit(ProtocolFeature.RESET_DEVICE);
        return tag == null ? p : p | ProtocolFeature.bit(ProtocolFeature.CONFIG);
    }

    @Override
    public int configSize() {
        return tag == null ? 0 : VirtioFs.CONFIG_SIZE;
    }

    @Override
    public void readConfig(int offset, byte[] dst) {
        System.arraycopy(config(), offset, dst, 0, dst.length);
    }

    byte[] config() {
        ByteBuffer b = ByteBuffer.allocate(VirtioFs.CONFIG_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        if (tag != null) {
            b.put(VirtioFs.CFG_TAG, tag.getBytes(StandardCharsets.UTF_8)); // NUL-padded, not terminated if 36
        }
        b.putInt(VirtioFs.CFG_NUM_REQUEST_QUEUES, requestQueues);
        return b.array();
    }

    @Override
    public QueueHandler queueHandler(int index, GuestMemory memory) {
        return new FuseQueueHandler(session, fs);
    }

    @Override
    public void reset() {
        session.reset();
        if (fs != null) {
            fs.reset();
        }
    }
}
