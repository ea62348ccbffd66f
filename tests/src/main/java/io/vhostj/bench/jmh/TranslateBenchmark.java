package io.vhostj.bench.jmh;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import io.vhostj.vhostuser.frontend.GuestRam;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.GuestMemoryException;
import io.vhostj.vhostuser.memory.MemoryRegion;

/**
 * {@link GuestMemory#translate} of a 4 KiB range with 1 or 8 regions (QEMU typically sends 1-2;
 * memory hotplug and virtio-mem add more). The regions are 2 MiB windows of one memfd, 1 GiB
 * apart in guest-physical space. {@link #spread} cycles through 64 addresses spread evenly over
 * all regions; {@link #lastRegion} always hits the region the lookup reaches last.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED"})
@State(Scope.Thread)
public class TranslateBenchmark {
    static final long REGION_SIZE = 2L << 20;
    static final long GPA_STRIDE = 1L << 30;
    static final int ADDRESSES = 64;

    @Param({"1", "8"})
    public int regions;

    GuestRam ram;
    final List<MemoryRegion> mapped = new ArrayList<>();
    GuestMemory memory;
    final long[] gpas = new long[ADDRESSES];
    long last;
    int next;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        ram = new GuestRam(0, REGION_SIZE * regions);
        for (int i = 0; i < regions; i++) {
            mapped.add(MemoryRegion.map(GPA_STRIDE * (i + 1), REGION_SIZE, ram.userAddr() + REGION_SIZE * i,
                    REGION_SIZE * i, ram.fd()));
        }
        memory = GuestMemory.of(mapped);
        long pages = REGION_SIZE / 4096;
        for (int i = 0; i < ADDRESSES; i++) {
            int r = i % regions;
            gpas[i] = GPA_STRIDE * (r + 1) + 4096 * ((i * 7L) % pages);
        }
        last = GPA_STRIDE * regions + 4096 * 5;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (MemoryRegion r : mapped) {
            r.close();
        }
        ram.close();
    }

    @Benchmark
    public long spread() throws GuestMemoryException {
        return memory.translate(gpas[next++ & (ADDRESSES - 1)], 4096);
    }

    @Benchmark
    public long lastRegion() throws GuestMemoryException {
        return memory.translate(last, 4096);
    }
}
