package io.vhostj.vhostuser.backend;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.device.VirtioDevice;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/**
 * A test device: copies each request's readable bytes into its writable buffers, byte for byte
 * and across segment boundaries, and returns how many it copied. Config space: 8 bytes, writable.
 */
final class EchoDevice implements VirtioDevice {
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC) | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX);

    final byte[] config = {1, 2, 3, 4, 5, 6, 7, 8};
    volatile int resets;
    private final int queues;

    EchoDevice(int queues) {
        this.queues = queues;
    }

    @Override
    public String name() {
        return "echo";
    }

    @Override
    public int queueCount() {
        return queues;
    }

    @Override
    public long features() {
        return FEATURES;
    }

    @Override
    public int configSize() {
        return config.length;
    }

    @Override
    public void readConfig(int offset, byte[] dst) {
        System.arraycopy(config, offset, dst, 0, dst.length);
    }

    @Override
    public boolean writeConfig(int offset, byte[] data) {
        System.arraycopy(data, 0, config, offset, data.length);
        return true;
    }

    @Override
    public void reset() {
        resets++;
    }

    @Override
    public QueueHandler queueHandler(int index, GuestMemory memory) {
        long scratch = Native.allocate(64 * 1024);
        return new QueueHandler() {
            @Override
            public int handle(DescriptorChain chain) throws ChainException {
                long n = Math.min(chain.readableBytes(), chain.writableBytes());
                long done = 0;
                while (done < n) {
                    long step = Math.min(64 * 1024, n - done);
                    chain.readFromChain(done, scratch, step);
                    chain.writeToChain(done, scratch, step);
                    done += step;
                }
                return (int) n;
            }

            @Override
            public void close() {
                Native.free(scratch);
            }
        };
    }
}
