package io.vhostj.fuzz;

import java.util.Arrays;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.device.VirtioDevice;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.GuestMemoryException;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.virtq.SplitRingLayout;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/**
 * A small device for the backend fuzzer: two queues of at most 256 entries and a 16-byte config
 * space that takes writes.
 *
 * <p>Its handler also plays the driver: when the queue's avail ring lies where the seeds put it
 * ({@link MessageSeeds#AVAIL}), every request it serves makes the next one available (each avail
 * slot of the {@link VhostUserMessageFuzzTest#writeDriverImage driver image} names the same
 * chain). A running queue then keeps its worker busy in guest memory and in the inflight region
 * while the fuzzer's messages change the memory table, the inflight region and the rings
 * underneath it: what the backend unmaps too early, a worker touches.
 */
final class FuzzDevice implements VirtioDevice {
    static final int QUEUES = 2;
    static final int MAX_QUEUE_SIZE = 256;
    static final int CONFIG_SIZE = 16;
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC)
            | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX);

    private final byte[] config = new byte[CONFIG_SIZE];

    @Override
    public String name() {
        return "fuzz";
    }

    @Override
    public int queueCount() {
        return QUEUES;
    }

    @Override
    public int maxQueueSize() {
        return MAX_QUEUE_SIZE;
    }

    @Override
    public long features() {
        return FEATURES;
    }

    @Override
    public int configSize() {
        return CONFIG_SIZE;
    }

    @Override
    public synchronized void readConfig(int offset, byte[] dst) {
        System.arraycopy(config, offset, dst, 0, dst.length);
    }

    @Override
    public synchronized boolean writeConfig(int offset, byte[] data) {
        System.arraycopy(data, 0, config, offset, data.length);
        return true;
    }

    @Override
    public QueueHandler queueHandler(int index, GuestMemory memory) {
        long feed = seedAvailIndex(memory);
        return chain -> {
            int written = 0;
            if (chain.readableCount() > 0) {
                Native.getByte(chain.readableAddress(0));
            }
            if (chain.writableCount() > 0) {
                Native.putByte(chain.writableAddress(0), (byte) 1);
                written = 1;
            }
            if (feed != 0) {
                Native.putShortRelease(feed, (short) (Native.getShortAcquire(feed) + 1));
            }
            return written;
        };
    }

    /** Host address of avail->idx of a ring where the seeds put it, or 0 if that is not memory. */
    private static long seedAvailIndex(GuestMemory memory) {
        try {
            return memory.translateUser(MessageSeeds.AVAIL + SplitRingLayout.AVAIL_IDX, 2);
        } catch (GuestMemoryException e) {
            return 0;
        }
    }

    @Override
    public synchronized void reset() {
        Arrays.fill(config, (byte) 0);
    }
}
