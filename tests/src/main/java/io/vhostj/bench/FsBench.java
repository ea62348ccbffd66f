package io.vhostj.bench;

import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.concurrent.Callable;

import org.HdrHistogram.Histogram;

import io.vhostj.fs.Fuse;
import io.vhostj.vhostuser.sys.Native;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code vhostj bench fs}: FUSE requests on a vhost-user-fs socket through vhostj's frontend, one
 * at a time (the guest's QD1 path): sequential READs of a file, GETATTRs, or LOOKUP+FORGET pairs.
 */
@Command(name = "fs", mixinStandardHelpOptions = true,
        description = "Drive a vhost-user-fs socket (vhostj fs, virtiofsd) with FUSE requests, one at a time, "
                + "and print requests/s, MiB/s and p50/p99 latency.")
public final class FsBench implements Callable<Integer> {
    @Option(names = "--socket", required = true, paramLabel = "PATH", description = "vhost-user-fs socket.")
    String socket;

    @Option(names = "--op", defaultValue = "read", paramLabel = "OP",
            description = "read (sequential READs of --file), getattr (of the root), lookup (LOOKUP --file, then FORGET). "
                    + "Default: ${DEFAULT-VALUE}.")
    String op;

    @Option(names = "--file", defaultValue = "bench.dat", paramLabel = "NAME",
            description = "A file in the export's root (read, lookup). Default: ${DEFAULT-VALUE}.")
    String file;

    @Option(names = "--bs", defaultValue = "128k", paramLabel = "SIZE", description = "READ size, up to 1m. Default: ${DEFAULT-VALUE}.")
    String bs;

    @Option(names = "--runtime", defaultValue = "5", paramLabel = "SECONDS", description = "Default: ${DEFAULT-VALUE}.")
    double runtime;

    @Option(names = "--ramp_time", defaultValue = "1", paramLabel = "SECONDS", description = "Default: ${DEFAULT-VALUE}.")
    double rampTime;

    @Option(names = "--json", description = "Print one JSON object instead of text.")
    boolean json;

    private static final long TIMEOUT = 5_000_000_000L;

    @Override
    public Integer call() {
        int blockSize;
        try {
            blockSize = (int) BlkBench.parseSize(bs, "--bs");
            if (blockSize > 1 << 20) {
                throw new IllegalArgumentException("--bs: at most 1m");
            }
            if (!op.matches("read|getattr|lookup")) {
                throw new IllegalArgumentException("--op must be read, getattr or lookup");
            }
        } catch (IllegalArgumentException e) {
            return fail(e.getMessage());
        }
        if (!java.nio.file.Files.exists(java.nio.file.Path.of(socket))) {
            return fail("no socket at " + socket);
        }
        try (FuseClient c = FuseClient.connect(java.nio.file.Path.of(socket), 256)) {
            long a = c.in() + Fuse.IN_HEADER_SIZE;
            check(c.init(31, 1 << 20, (1 << 5) | (1 << 22), TIMEOUT), "INIT"); // BIG_WRITES | MAX_PAGES
            byte[] name = (file + "\0").getBytes(StandardCharsets.UTF_8);
            long node = 0;
            long fh = 0;
            long size = 0;
            if (!op.equals("getattr")) {
                Native.copyFromArray(name, 0, a, name.length);
                check(c.request(Fuse.LOOKUP, Fuse.ROOT_ID, name.length, 16 + Fuse.ENTRY_OUT_SIZE, TIMEOUT), "LOOKUP " + file);
                node = Native.getLong(c.out() + 16 + Fuse.ENTRY_NODEID);
                size = Native.getLong(c.out() + 16 + Fuse.ENTRY_ATTR + Fuse.ATTR_SIZE_BYTES);
            }
            if (op.equals("read")) {
                if (size < blockSize) {
                    return fail(file + " has " + size + " bytes, less than one block of " + blockSize);
                }
                Native.zero(a, Fuse.OPEN_IN_SIZE);
                check(c.request(Fuse.OPEN, node, Fuse.OPEN_IN_SIZE, 16 + Fuse.OPEN_OUT_SIZE, TIMEOUT), "OPEN");
                fh = Native.getLong(c.out() + 16 + Fuse.OPEN_OUT_FH);
            }
            Histogram h = new Histogram(3_600_000_000_000L, 3);
            long[] count = new long[1];
            long offset = 0;
            long end = System.nanoTime() + (long) ((rampTime + runtime) * 1e9);
            long measureFrom = System.nanoTime() + (long) (rampTime * 1e9);
            long t0 = 0;
            while (true) {
                long start = System.nanoTime();
                if (start >= end) {
                    break;
                }
                switch (op) {
                    case "read" -> {
                        Native.zero(a, Fuse.READ_IN_SIZE);
                        Native.putLong(a + Fuse.READ_IN_FH, fh);
                        Native.putLong(a + Fuse.READ_IN_OFFSET, offset);
                        Native.putInt(a + Fuse.READ_IN_SIZE_BYTES, blockSize);
                        check(c.request(Fuse.READ, node, Fuse.READ_IN_SIZE, 16 + blockSize, TIMEOUT), "READ");
                        offset += blockSize;
                        if (offset + blockSize > size) {
                            offset = 0;
                        }
                    }
                    case "getattr" -> {
                        Native.zero(a, Fuse.GETATTR_IN_SIZE);
                        check(c.request(Fuse.GETATTR, Fuse.ROOT_ID, Fuse.GETATTR_IN_SIZE, 16 + Fuse.ATTR_OUT_SIZE, TIMEOUT),
                                "GETATTR");
                    }
                    default -> {
                        Native.copyFromArray(name, 0, a, name.length);
                        check(c.request(Fuse.LOOKUP, Fuse.ROOT_ID, name.length, 16 + Fuse.ENTRY_OUT_SIZE, TIMEOUT),
                                "LOOKUP");
                        long n = Native.getLong(c.out() + 16 + Fuse.ENTRY_NODEID);
                        Native.putLong(a + Fuse.FORGET_IN_NLOOKUP, 1);
                        c.request(Fuse.FORGET, n, Fuse.FORGET_IN_SIZE, 0, TIMEOUT);
                    }
                }
                long now = System.nanoTime();
                if (start >= measureFrom) {
                    if (t0 == 0) {
                        t0 = start;
                    }
                    h.recordValue(Math.max(1, now - start));
                    count[0]++;
                }
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            double rate = count[0] / seconds;
            double mib = op.equals("read") ? rate * blockSize / (1024.0 * 1024.0) : 0;
            double p50 = h.getValueAtPercentile(50) / 1000.0;
            double p99 = h.getValueAtPercentile(99) / 1000.0;
            if (json) {
                System.out.printf(Locale.ROOT, "{\"op\":\"%s\",\"bs\":%d,\"requests\":%d,\"iops\":%.1f,\"mib_s\":%.2f,"
                        + "\"p50_us\":%.2f,\"p99_us\":%.2f}%n", op, op.equals("read") ? blockSize : 0, count[0], rate, mib, p50, p99);
            } else {
                System.out.printf(Locale.ROOT, "%s: %.0f requests/s%s, p50=%.1fus p99=%.1fus (%d requests)%n", op, rate,
                        op.equals("read") ? String.format(Locale.ROOT, ", %.1f MiB/s", mib) : "", p50, p99, count[0]);
            }
            return 0;
        } catch (IllegalStateException e) {
            return fail(e.getMessage());
        } catch (Exception e) {
            return fail("cannot drive " + socket + ": " + e.getMessage());
        }
    }

    private static void check(int error, String what) {
        if (error != 0) {
            throw new IllegalStateException(what + " failed: errno " + -error);
        }
    }

    private static int fail(String message) {
        System.err.println("vhostj bench fs: " + message);
        return 2;
    }
}
