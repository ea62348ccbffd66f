package io.vhostj.bench;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

import org.HdrHistogram.Histogram;

import com.sun.management.OperatingSystemMXBean;

import io.vhostj.blk.VirtioBlk;
import io.vhostj.vhostuser.sys.Native;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * fio-like load on a vhost-user-blk socket: one queue, {@code --iodepth} requests in flight,
 * busy-polled completions; IOPS, bandwidth and latency percentiles (HdrHistogram).
 */
@Command(name = "blk", mixinStandardHelpOptions = true,
        description = "Drive a vhost-user-blk socket (vhostj, qemu-storage-daemon, SPDK...) and report IOPS, "
                + "MiB/s and p50/p99 latency. Option names follow fio.")
public final class BlkBench implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--socket", required = true, paramLabel = "PATH", description = "vhost-user-blk socket.")
    Path socket;

    @Option(names = "--rw", defaultValue = "randread", paramLabel = "MODE",
            description = "randread, randwrite, read or write. Default: ${DEFAULT-VALUE}.")
    String rw;

    @Option(names = "--bs", defaultValue = "4k", paramLabel = "SIZE",
            description = "Block size (512, 4k, 128k, 1m...). Default: ${DEFAULT-VALUE}.")
    String bs;

    @Option(names = "--iodepth", defaultValue = "32", paramLabel = "N",
            description = "Requests kept in flight. Default: ${DEFAULT-VALUE}.")
    int iodepth;

    @Option(names = "--runtime", defaultValue = "10", paramLabel = "SECONDS",
            description = "Measured run time. Default: ${DEFAULT-VALUE}.")
    double runtime;

    @Option(names = "--ramp_time", defaultValue = "1", paramLabel = "SECONDS",
            description = "Unmeasured warm-up before the run. Default: ${DEFAULT-VALUE}.")
    double rampTime;

    @Option(names = "--size", paramLabel = "SIZE",
            description = "Limit I/O to the first SIZE bytes of the disk. Default: the whole disk.")
    String size;

    @Option(names = "--json", description = "Print one JSON object instead of text.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        boolean random = rw.startsWith("rand");
        int type = switch (rw) {
            case "randread", "read" -> VirtioBlk.T_IN;
            case "randwrite", "write" -> VirtioBlk.T_OUT;
            default -> throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "--rw must be randread, randwrite, read or write, not '" + rw + "'");
        };
        int blockSize;
        try {
            blockSize = (int) Math.min(parseSize(bs, "--bs"), Integer.MAX_VALUE);
        } catch (IllegalArgumentException e) {
            return fail(e.getMessage());
        }
        if (blockSize < 512 || blockSize % 512 != 0 || blockSize > (64 << 20)) {
            return fail("--bs must be a multiple of 512 up to 64m");
        }
        if (iodepth < 1 || iodepth > 1024) {
            return fail("--iodepth must be 1..1024");
        }
        if (runtime <= 0) {
            return fail("--runtime must be positive");
        }
        if (!Files.exists(socket)) {
            return fail("no socket at " + socket);
        }
        int queueSize = Integer.highestOneBit(Math.max(64, 3 * iodepth) * 2 - 1);
        queueSize = Math.min(queueSize, 1024);
        try (BlkClient client = BlkClient.connect(socket, queueSize, iodepth, blockSize)) {
            long diskBytes = client.capacityBytes();
            if (size != null) {
                try {
                    diskBytes = Math.min(diskBytes, parseSize(size, "--size"));
                } catch (IllegalArgumentException e) {
                    return fail(e.getMessage());
                }
            }
            long blocks = diskBytes / blockSize;
            if (blocks < 1) {
                return fail("the disk (" + diskBytes + " bytes) is smaller than one block of " + blockSize);
            }
            if (type == VirtioBlk.T_OUT) {
                SplittableRandom fill = new SplittableRandom(7);
                for (int s = 0; s < iodepth; s++) {
                    long d = client.data(s);
                    for (int i = 0; i < blockSize; i += 8) {
                        Native.putLong(d + i, fill.nextLong());
                    }
                }
            }
            Run run = new Run(client, type, random, blockSize, blocks);
            Histogram histogram = new Histogram(3_600_000_000_000L, 3);
            OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
            long cpu0;
            long t0;
            long ios;
            try {
                if (rampTime > 0) {
                    run.execute((long) (rampTime * 1e9), null);
                }
                cpu0 = os.getProcessCpuTime();
                t0 = System.nanoTime();
                ios = run.execute((long) (runtime * 1e9), histogram);
            } catch (IllegalStateException e) {
                // the backend died or hung mid-run: say so, no stack trace
                return fail(e.getMessage() + " (" + client.inFlight() + " in flight)");
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            double cpuSeconds = (os.getProcessCpuTime() - cpu0) / 1e9;
            if (run.errors > 0) {
                System.err.println("vhostj bench: " + run.errors + " requests failed (status " + run.lastBadStatus
                        + ")");
            }
            report(ios, seconds, blockSize, histogram, run.errors, cpuSeconds);
            return run.errors > 0 ? 1 : 0;
        }
    }

    private void report(long ios, double seconds, int blockSize, Histogram h, long errors, double cpuSeconds) {
        double iops = ios / seconds;
        double mib = iops * blockSize / (1024.0 * 1024.0);
        double p50 = h.getValueAtPercentile(50) / 1000.0;
        double p99 = h.getValueAtPercentile(99) / 1000.0;
        double cpuUsPerIo = ios == 0 ? 0 : cpuSeconds * 1e6 / ios;
        if (json) {
            System.out.printf(Locale.ROOT,
                    "{\"rw\":\"%s\",\"bs\":%d,\"iodepth\":%d,\"runtime_s\":%.3f,\"ios\":%d,\"iops\":%.1f,"
                            + "\"mib_s\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"errors\":%d,\"driver_cpu_us_per_io\":%.3f}%n",
                    rw, blockSize, iodepth, seconds, ios, iops, mib, p50, p99, errors, cpuUsPerIo);
        } else {
            System.out.printf(Locale.ROOT, "%s: bs=%d iodepth=%d runtime=%.1fs ios=%d errors=%d%n", rw, blockSize,
                    iodepth, seconds, ios, errors);
            System.out.printf(Locale.ROOT, "  iops=%.0f bw=%.1f MiB/s lat p50=%.1fus p99=%.1fus (driver cpu %.2f us/io)%n",
                    iops, mib, p50, p99, cpuUsPerIo);
        }
    }

    private static int fail(String message) {
        System.err.println("vhostj bench blk: " + message);
        return 2;
    }

    static long parseSize(String text, String option) {
        return io.vhostj.vhostuser.backend.ByteSize.parse(text, option);
    }

    /** The submit/reap loop; allocation-free while it runs. */
    private final class Run {
        final BlkClient client;
        final int type;
        final boolean random;
        final int blockSize;
        final long blocks;
        final long[] started;
        final int[] freeSlots;
        final SplittableRandom rnd = new SplittableRandom(1);
        int freeCount;
        long nextBlock;
        long completed;
        long errors;
        int lastBadStatus;
        Histogram histogram;
        long now;

        Run(BlkClient client, int type, boolean random, int blockSize, long blocks) {
            this.client = client;
            this.type = type;
            this.random = random;
            this.blockSize = blockSize;
            this.blocks = blocks;
            this.started = new long[iodepth];
            this.freeSlots = new int[iodepth];
            for (int i = 0; i < iodepth; i++) {
                freeSlots[i] = i;
            }
            freeCount = iodepth;
        }

        long execute(long nanos, Histogram h) throws Exception {
            histogram = h;
            completed = 0;
            BlkClient.Completion done = (slot, status, len) -> {
                if (status != VirtioBlk.S_OK) {
                    errors++;
                    lastBadStatus = status;
                }
                if (histogram != null) {
                    histogram.recordValue(Math.max(1, now - started[slot]));
                }
                freeSlots[freeCount++] = slot;
                completed++;
            };
            long end = System.nanoTime() + nanos;
            now = System.nanoTime();
            while (now < end) {
                while (freeCount > 0) {
                    int slot = freeSlots[--freeCount];
                    long block = random ? rnd.nextLong(blocks) : nextBlock++ % blocks;
                    started[slot] = now;
                    client.submit(slot, type, block * blockSize, blockSize);
                }
                client.flush();
                // the clock is read just before each look at the used ring: a completion's
                // latency is bounded by one poll of the ring, not by the batch
                while (true) {
                    now = System.nanoTime();
                    if (client.poll(done) != 0) {
                        break;
                    }
                    Thread.onSpinWait();
                    if (now - end > 5_000_000_000L) {
                        throw new IllegalStateException("the backend stopped completing requests");
                    }
                }
            }
            // drain without recording (the run is over)
            histogram = null;
            long deadline = System.nanoTime() + 5_000_000_000L;
            long measured = completed;
            while (freeCount < iodepth && System.nanoTime() < deadline) {
                client.poll(done);
            }
            return measured;
        }
    }
}
