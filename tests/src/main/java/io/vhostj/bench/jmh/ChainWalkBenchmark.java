package io.vhostj.bench.jmh;

import static io.vhostj.vhostuser.virtq.SplitRingLayout.AVAIL_IDX;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.AVAIL_RING;

import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import io.vhostj.vhostuser.frontend.DriverQueue;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;
import io.vhostj.vhostuser.virtq.QueueBrokenException;
import io.vhostj.vhostuser.virtq.SplitQueue;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/**
 * The device's per-request ring cost: {@link SplitQueue#pop} (read avail, walk and translate the
 * chain into a reused {@link DescriptorChain}), {@link SplitQueue#addUsed} and
 * {@link SplitQueue#publishUsed} (release store of used->idx, full fence, read the driver's
 * suppression state). No payload is touched and no eventfd is written.
 *
 * <ul>
 * <li>{@link #request}: one request per publish, the worst case (a lightly loaded queue);</li>
 * <li>{@link #batch32}: 32 pops, one publish, as {@code QueueWorker} does under load;</li>
 * <li>{@link #roundTrip}: the driver side included ({@link DriverQueue} add + publish, reap
 *     after the device published): minus {@link #request} it gives the simulator's own cost.</li>
 * </ul>
 *
 * <p>For {@code request} and {@code batch32} the driver's work is kept out: the chains are
 * placed once, the avail ring is filled with their heads, and each invocation only moves
 * avail->idx forward (one release store, a plain store on x86). Both sides run on one thread,
 * so ring cache lines never move between cores: this is the floor, not a cross-core figure.
 * {@code roundTrip} writes descriptors through the driver's mapping and reads them through the
 * device's (two mappings of one memfd, as between QEMU and a backend), so it also pays for
 * that aliasing on one core.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED"})
public class ChainWalkBenchmark {
    static final int QUEUE_SIZE = 256;
    static final long RAM_SIZE = 2L << 20;
    static final int BATCH = 32;
    static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX)
            | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC);

    /** Device-only: the avail ring stays full of posted chains; nothing is reaped. */
    @State(Scope.Thread)
    public static class Device {
        @Param({"1", "3", "17", "indirect3"})
        public String shape;

        /** INFLIGHT_SHMFD tracking (virtio-blk negotiates it with QEMU). */
        @Param({"false", "true"})
        public boolean inflight;

        QueueFixture fixture;
        SplitQueue queue;
        final DescriptorChain chain = new DescriptorChain();
        ChainShape chains;
        long availIdxAddr;
        int availIdx;

        @Setup(Level.Trial)
        public void setUp() throws Exception {
            fixture = new QueueFixture(RAM_SIZE, QUEUE_SIZE, true);
            chains = ChainShape.of(shape, fixture.ram);
            DriverQueue driver = fixture.driver;
            int[] heads = new int[QUEUE_SIZE];
            int posted = 0;
            while (posted < QUEUE_SIZE) {
                int head = chains.post(driver);
                if (head < 0) {
                    break;
                }
                heads[posted++] = head;
            }
            // Every avail slot names a placed chain, so avail->idx can advance forever.
            long avail = driver.availUserAddr();
            for (int i = posted; i < QUEUE_SIZE; i++) {
                Native.putShort(avail + AVAIL_RING + 2L * i, (short) heads[i % posted]);
            }
            // The index is bumped through the device's mapping: a store through the driver's
            // mapping followed at once by the device's load of the same line through another
            // virtual address is a same-thread aliasing case (store forwarding is by virtual
            // address) that a driver in another process, on another core, never causes.
            availIdxAddr = fixture.memory.translateUser(avail + AVAIL_IDX, 2);
            // One walk on a throw-away device queue to check the chain, then back to index 0.
            post(1);
            SplitQueue probe = fixture.deviceQueue(FEATURES);
            if (!probe.pop(chain)) {
                throw new IllegalStateException("probe found nothing to pop");
            }
            chains.verify(chain, fixture.memory);
            availIdx = 0;
            Native.putShortRelease(availIdxAddr, (short) 0);
            queue = fixture.deviceQueue(FEATURES);
            if (inflight) {
                fixture.attachInflight(queue);
            }
        }

        void post(int n) {
            availIdx = (availIdx + n) & 0xffff;
            Native.putShortRelease(availIdxAddr, (short) availIdx);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            fixture.close();
        }
    }

    /** Driver and device: the chain is posted and reaped through {@link DriverQueue} every time. */
    @State(Scope.Thread)
    public static class Pair {
        @Param({"1", "3", "17", "indirect3"})
        public String shape;

        QueueFixture fixture;
        SplitQueue queue;
        final DescriptorChain chain = new DescriptorChain();
        ChainShape chains;
        long reaped;
        final DriverQueue.UsedConsumer reaper = (head, len) -> reaped += len;

        @Setup(Level.Trial)
        public void setUp() throws Exception {
            fixture = new QueueFixture(RAM_SIZE, QUEUE_SIZE, true);
            chains = ChainShape.of(shape, fixture.ram);
            queue = fixture.deviceQueue(FEATURES);
            fixture.driver.interrupts(false); // the simulator polls the used ring
            DriverQueue driver = fixture.driver;
            if (chains.post(driver) < 0) {
                throw new IllegalStateException("ring full");
            }
            driver.publish();
            if (!queue.pop(chain)) {
                throw new IllegalStateException("probe found nothing to pop");
            }
            chains.verify(chain, fixture.memory);
            queue.addUsed(chain.head(), chains.writtenLength);
            queue.publishUsed();
            if (driver.reap(reaper) != 1 || reaped != chains.writtenLength) {
                throw new IllegalStateException("probe request not reaped");
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            fixture.close();
        }
    }

    @Benchmark
    public boolean request(Device s) throws QueueBrokenException, ChainException {
        s.post(1);
        SplitQueue q = s.queue;
        DescriptorChain chain = s.chain;
        if (!q.pop(chain)) {
            throw new IllegalStateException("nothing to pop");
        }
        q.addUsed(chain.head(), s.chains.writtenLength);
        return q.publishUsed();
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public boolean batch32(Device s) throws QueueBrokenException, ChainException {
        s.post(BATCH);
        SplitQueue q = s.queue;
        DescriptorChain chain = s.chain;
        int written = s.chains.writtenLength;
        for (int i = 0; i < BATCH; i++) {
            if (!q.pop(chain)) {
                throw new IllegalStateException("nothing to pop");
            }
            q.addUsed(chain.head(), written);
        }
        return q.publishUsed();
    }

    @Benchmark
    public long roundTrip(Pair s) throws QueueBrokenException, ChainException {
        DriverQueue driver = s.fixture.driver;
        if (s.chains.post(driver) < 0) {
            throw new IllegalStateException("ring full");
        }
        driver.publish();
        SplitQueue q = s.queue;
        DescriptorChain chain = s.chain;
        if (!q.pop(chain)) {
            throw new IllegalStateException("nothing to pop");
        }
        q.addUsed(chain.head(), s.chains.writtenLength);
        q.publishUsed();
        if (driver.reap(s.reaper) != 1) {
            throw new IllegalStateException("nothing reaped");
        }
        return s.reaped;
    }
}
