package io.vhostj.bench.jmh;

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

import io.vhostj.vhostuser.virtq.SplitQueue;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/**
 * Used-ring publication per request: {@code N} x {@link SplitQueue#addUsed} then one
 * {@link SplitQueue#publishUsed} (release store of used->idx, full fence, then the driver's
 * avail flags or, with EVENT_IDX, used_event and the vring_need_event test). The result is the
 * notify decision; no eventfd is written. Nothing reaps: the device overwrites used entries in
 * place, which it may, since it never checks the driver's progress.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED"})
@State(Scope.Thread)
public class UsedRingPublishBenchmark {
    static final int QUEUE_SIZE = 256;

    @Param({"false", "true"})
    public boolean eventIdx;

    QueueFixture fixture;
    SplitQueue queue;
    int head;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        fixture = new QueueFixture(1L << 20, QUEUE_SIZE, eventIdx);
        long features = VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC);
        if (eventIdx) {
            features |= VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX);
        }
        queue = fixture.deviceQueue(features);
        // The driver wants interrupts (avail flags 0; used_event 0): the decision is computed in
        // full either way, and with EVENT_IDX it is "no" except when used->idx crosses 0.
        fixture.driver.interrupts(true);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        fixture.close();
    }

    private boolean addAndPublish(int n) {
        SplitQueue q = queue;
        int h = head;
        for (int i = 0; i < n; i++) {
            q.addUsed(h, 4097);
            h = (h + 1) & (QUEUE_SIZE - 1);
        }
        head = h;
        return q.publishUsed();
    }

    @Benchmark
    public boolean batch1() {
        return addAndPublish(1);
    }

    @Benchmark
    @OperationsPerInvocation(8)
    public boolean batch8() {
        return addAndPublish(8);
    }

    @Benchmark
    @OperationsPerInvocation(32)
    public boolean batch32() {
        return addAndPublish(32);
    }
}
