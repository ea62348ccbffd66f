package io.vhostj.bench;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

import org.HdrHistogram.Histogram;

import io.vhostj.fs.Fuse;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code vhostj bench fs}: FUSE requests on a vhost-user-fs socket through vhostj's frontend,
 * {@code --iodepth} of them in flight on the first request queue (1: the guest's QD1 path):
 * sequential READs or WRITEs of a file, GETATTRs, or LOOKUP+FORGET pairs.
 */
@Command(name = "fs", mixinStandardHelpOptions = true,
        description = "Drive a vhost-user-fs socket (vhostj fs, virtiofsd) with FUSE requests, --iodepth of them "
                + "in flight on one request queue (READ and WRITE data as the Linux driver sends page-cache pages: "
                + "a descriptor per 4 KiB page, in an indirect table), and print requests/s, MiB/s and p50/p99 latency "
                + "(per request, from its submission to its completion).")
public final class FsBench implements Callable<Integer> {
    /** Where sequential WRITEs wrap to offset 0: the file grows to this size if it is smaller. */
    static final long WRITE_SPAN = 256L << 20;

    @Option(names = "--socket", required = true, paramLabel = "PATH", description = "vhost-user-fs socket.")
    String socket;

    @Option(names = "--op", defaultValue = "read", paramLabel = "OP",
            description = "read (sequential READs of --file, wrapping at its size), write (sequential WRITEs of "
                    + "--bs random bytes to --file from offset 0, wrapping at 256 MiB: a smaller file grows as "
                    + "it is written, nothing truncates it), getattr (of the root), lookup (LOOKUP --file, then "
                    + "FORGET the node it returned: one request is the pair). Default: ${DEFAULT-VALUE}.")
    String op;

    @Option(names = "--file", defaultValue = "bench.dat", paramLabel = "NAME",
            description = "A file in the export's root (read, write, lookup). Default: ${DEFAULT-VALUE}.")
    String file;

    @Option(names = "--bs", defaultValue = "128k", paramLabel = "SIZE",
            description = "READ or WRITE size, up to 1m. Default: ${DEFAULT-VALUE}.")
    String bs;

    @Option(names = "--iodepth", defaultValue = "1", paramLabel = "N",
            description = "Requests kept in flight, 1..128, each with its own buffers. Default: ${DEFAULT-VALUE}.")
    int iodepth;

    @Option(names = "--runtime", defaultValue = "5", paramLabel = "SECONDS",
            description = "Measured run time. Default: ${DEFAULT-VALUE}.")
    double runtime;

    @Option(names = "--ramp_time", defaultValue = "1", paramLabel = "SECONDS",
            description = "Unmeasured warm-up before the run. Default: ${DEFAULT-VALUE}.")
    double rampTime;

    @Option(names = "--json", description = "Print one JSON object instead of text.")
    boolean json;

    private static final long TIMEOUT = 5_000_000_000L;
    /** Two descriptors per request (request, reply) for up to 128 requests. */
    private static final int QUEUE_SIZE = 512; // 128 requests of three descriptors
    private static final int O_RDONLY = 0;
    private static final int O_RDWR = 2;

    private enum Kind { READ, WRITE, GETATTR, LOOKUP }

    @Override
    public Integer call() {
        Kind kind;
        int blockSize;
        try {
            kind = switch (op) {
                case "read" -> Kind.READ;
                case "write" -> Kind.WRITE;
                case "getattr" -> Kind.GETATTR;
                case "lookup" -> Kind.LOOKUP;
                default -> throw new IllegalArgumentException("--op must be read, write, getattr or lookup");
            };
            long size = BlkBench.parseSize(bs, "--bs");
            if (size > 1 << 20) {
                throw new IllegalArgumentException("--bs: at most 1m");
            }
            blockSize = (int) size;
            if (iodepth < 1 || iodepth > 128) {
                throw new IllegalArgumentException("--iodepth must be 1..128");
            }
            if (!(runtime > 0) || !(rampTime >= 0)) {
                throw new IllegalArgumentException("--runtime must be positive and --ramp_time not negative");
            }
        } catch (IllegalArgumentException e) {
            return fail(e.getMessage());
        }
        if (!Files.exists(Path.of(socket))) {
            return fail("no socket at " + socket);
        }
        byte[] name = (file + "\0").getBytes(StandardCharsets.UTF_8);
        int inBytes = Fuse.IN_HEADER_SIZE + Math.max(4096, name.length);
        int outBytes = Fuse.OUT_HEADER_SIZE + 4096;
        int dataBytes = kind == Kind.READ || kind == Kind.WRITE ? blockSize : 0;
        try (FuseQueueClient c = FuseQueueClient.connect(Path.of(socket), QUEUE_SIZE, iodepth, inBytes, outBytes,
                dataBytes)) {
            long a = c.in(0) + Fuse.IN_HEADER_SIZE;
            Native.zero(a, Fuse.INIT_IN_SIZE);
            Native.putInt(a + Fuse.INIT_IN_MAJOR, Fuse.KERNEL_VERSION);
            Native.putInt(a + Fuse.INIT_IN_MINOR, 31);
            Native.putInt(a + Fuse.INIT_IN_MAX_READAHEAD, 1 << 20);
            Native.putInt(a + Fuse.INIT_IN_FLAGS, (1 << 5) | (1 << 22)); // BIG_WRITES | MAX_PAGES
            check(c.call(0, Fuse.INIT, 0, Fuse.INIT_IN_COMPAT_SIZE, Fuse.OUT_HEADER_SIZE + Fuse.INIT_OUT_SIZE, TIMEOUT),
                    "INIT");
            int maxWrite = Native.getInt(c.out(0) + Fuse.OUT_HEADER_SIZE + Fuse.INIT_OUT_MAX_WRITE);
            if (kind == Kind.WRITE && Integer.compareUnsigned(blockSize, maxWrite) > 0) {
                return fail("--bs " + blockSize + " is more than the backend's max_write of " + maxWrite);
            }
            long node = 0;
            long fh = 0;
            long fileSize = 0;
            if (kind != Kind.GETATTR) {
                Native.copyFromArray(name, 0, a, name.length);
                check(c.call(0, Fuse.LOOKUP, Fuse.ROOT_ID, name.length, Fuse.OUT_HEADER_SIZE + Fuse.ENTRY_OUT_SIZE,
                        TIMEOUT), "LOOKUP " + file);
                long entry = c.out(0) + Fuse.OUT_HEADER_SIZE;
                node = Native.getLong(entry + Fuse.ENTRY_NODEID);
                fileSize = Native.getLong(entry + Fuse.ENTRY_ATTR + Fuse.ATTR_SIZE_BYTES);
            }
            if (kind == Kind.READ && fileSize < blockSize) {
                return fail(file + " has " + fileSize + " bytes, less than one block of " + blockSize);
            }
            if (kind == Kind.READ || kind == Kind.WRITE) {
                Native.zero(a, Fuse.OPEN_IN_SIZE);
                Native.putInt(a + Fuse.OPEN_IN_FLAGS, kind == Kind.WRITE ? O_RDWR : O_RDONLY);
                check(c.call(0, Fuse.OPEN, node, Fuse.OPEN_IN_SIZE, Fuse.OUT_HEADER_SIZE + Fuse.OPEN_OUT_SIZE, TIMEOUT),
                        "OPEN " + file);
                fh = Native.getLong(c.out(0) + Fuse.OUT_HEADER_SIZE + Fuse.OPEN_OUT_FH);
            }
            if (kind == Kind.WRITE) {
                SplittableRandom fill = new SplittableRandom(7);
                for (int s = 0; s < iodepth; s++) {
                    long d = c.data(s);
                    for (int i = 0; i + 8 <= blockSize; i += 8) {
                        Native.putLong(d + i, fill.nextLong());
                    }
                }
            }
            long span = kind == Kind.WRITE ? WRITE_SPAN : fileSize;
            Run run = new Run(c, kind, blockSize, node, fh, span, name);
            Histogram h = new Histogram(3_600_000_000_000L, 3);
            if (rampTime > 0) {
                run.execute((long) (rampTime * 1e9), null);
            }
            long count = run.execute((long) (runtime * 1e9), h);
            double rate = count / (run.elapsed / 1e9);
            boolean moves = kind == Kind.READ || kind == Kind.WRITE;
            double mib = moves ? rate * blockSize / (1024.0 * 1024.0) : 0;
            double p50 = h.getValueAtPercentile(50) / 1000.0;
            double p99 = h.getValueAtPercentile(99) / 1000.0;
            if (json) {
                System.out.printf(Locale.ROOT, "{\"op\":\"%s\",\"bs\":%d,\"iodepth\":%d,\"requests\":%d,\"iops\":%.1f,"
                        + "\"mib_s\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f}%n", op, moves ? blockSize : 0, iodepth, count,
                        rate, mib, p50, p99);
            } else {
                System.out.printf(Locale.ROOT, "%s: %.0f requests/s%s, p50=%.1fus p99=%.1fus (%d requests, iodepth %d)%n",
                        op, rate, moves ? String.format(Locale.ROOT, ", %.1f MiB/s", mib) : "", p50, p99, count, iodepth);
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

    /**
     * The submit/reap loop, allocation-free while it runs. A lookup slot carries its LOOKUP, then
     * the FORGET of the node that LOOKUP returned (nlookup 1), then is free again: every LOOKUP
     * the backend answered is forgotten once, whatever the order replies come in.
     */
    private final class Run {
        final FuseQueueClient client;
        final Kind kind;
        final int blockSize;
        final long node;
        final long fh;
        final long span;
        final byte[] name;
        final long[] started;
        final boolean[] forgetting;
        final int[] freeSlots;
        final FuseQueueClient.Completion done = this::completed;
        int freeCount;
        long offset;
        long completed;
        long elapsed;
        Histogram histogram;
        long now;

        Run(FuseQueueClient client, Kind kind, int blockSize, long node, long fh, long span, byte[] name) {
            this.client = client;
            this.kind = kind;
            this.blockSize = blockSize;
            this.node = node;
            this.fh = fh;
            this.span = span;
            this.name = name;
            started = new long[iodepth];
            forgetting = new boolean[iodepth];
            freeSlots = new int[iodepth];
            for (int i = 0; i < iodepth; i++) {
                freeSlots[i] = i;
            }
            freeCount = iodepth;
        }

        /** Runs for {@code nanos}, then waits for what is in flight; returns the requests completed in time. */
        long execute(long nanos, Histogram h) throws NativeException {
            histogram = h;
            completed = 0;
            long start = System.nanoTime();
            long end = start + nanos;
            now = start;
            while (now < end) {
                now = System.nanoTime();
                while (freeCount > 0) {
                    int slot = freeSlots[--freeCount];
                    started[slot] = now;
                    submit(slot);
                }
                client.flush(); // new requests, and the FORGETs queued by completed LOOKUPs
                // the clock is read just before each look at the used ring: a completion's
                // latency is bounded by one poll of the ring, not by the batch
                while (true) {
                    now = System.nanoTime();
                    if (client.poll(done) != 0) {
                        break;
                    }
                    Thread.onSpinWait();
                    if (now - end > TIMEOUT) {
                        throw stalled();
                    }
                }
            }
            elapsed = now - start;
            long measured = completed;
            // drain without recording; LOOKUPs still in flight get their FORGETs
            histogram = null;
            long deadline = System.nanoTime() + TIMEOUT;
            while (freeCount < iodepth) {
                client.flush();
                if (client.poll(done) == 0) {
                    if (System.nanoTime() > deadline) {
                        throw stalled();
                    }
                    Thread.onSpinWait();
                }
            }
            return measured;
        }

        private IllegalStateException stalled() {
            return new IllegalStateException("the backend stopped answering (" + client.inFlight() + " requests in flight)");
        }

        private void submit(int slot) {
            long a = client.in(slot) + Fuse.IN_HEADER_SIZE;
            boolean queued = switch (kind) {
                case READ -> {
                    Native.zero(a, Fuse.READ_IN_SIZE);
                    Native.putLong(a + Fuse.READ_IN_FH, fh);
                    Native.putLong(a + Fuse.READ_IN_OFFSET, nextOffset());
                    Native.putInt(a + Fuse.READ_IN_SIZE_BYTES, blockSize);
                    yield client.submit(slot, Fuse.READ, node, Fuse.READ_IN_SIZE, Fuse.OUT_HEADER_SIZE, blockSize, true);
                }
                case WRITE -> {
                    Native.zero(a, Fuse.WRITE_IN_SIZE); // the data buffer stays as filled
                    Native.putLong(a + Fuse.WRITE_IN_FH, fh);
                    Native.putLong(a + Fuse.WRITE_IN_OFFSET, nextOffset());
                    Native.putInt(a + Fuse.WRITE_IN_SIZE_BYTES, blockSize);
                    yield client.submit(slot, Fuse.WRITE, node, Fuse.WRITE_IN_SIZE,
                            Fuse.OUT_HEADER_SIZE + Fuse.WRITE_OUT_SIZE, blockSize, false);
                }
                case GETATTR -> {
                    Native.zero(a, Fuse.GETATTR_IN_SIZE);
                    yield client.submit(slot, Fuse.GETATTR, Fuse.ROOT_ID, Fuse.GETATTR_IN_SIZE,
                            Fuse.OUT_HEADER_SIZE + Fuse.ATTR_OUT_SIZE);
                }
                case LOOKUP -> {
                    Native.copyFromArray(name, 0, a, name.length);
                    yield client.submit(slot, Fuse.LOOKUP, Fuse.ROOT_ID, name.length,
                            Fuse.OUT_HEADER_SIZE + Fuse.ENTRY_OUT_SIZE);
                }
            };
            if (!queued) {
                throw new IllegalStateException("ring full");
            }
        }

        private long nextOffset() {
            long o = offset;
            offset += blockSize;
            if (offset + blockSize > span) {
                offset = 0;
            }
            return o;
        }

        private void completed(int slot, int error, int usedLength) {
            if (error != 0) {
                String what = forgetting[slot] ? "FORGET" : kind.name();
                throw new IllegalStateException(what + " failed: errno " + -error);
            }
            if (kind == Kind.LOOKUP && !forgetting[slot]) {
                long nodeId = Native.getLong(client.out(slot) + Fuse.OUT_HEADER_SIZE + Fuse.ENTRY_NODEID);
                Native.putLong(client.in(slot) + Fuse.IN_HEADER_SIZE + Fuse.FORGET_IN_NLOOKUP, 1);
                forgetting[slot] = true;
                if (!client.submit(slot, Fuse.FORGET, nodeId, Fuse.FORGET_IN_SIZE, 0)) {
                    throw new IllegalStateException("ring full");
                }
                return; // published by the loop's next flush
            }
            if (kind == Kind.READ && usedLength != Fuse.OUT_HEADER_SIZE + blockSize) {
                throw new IllegalStateException("READ answered " + (usedLength - Fuse.OUT_HEADER_SIZE) + " bytes of "
                        + blockSize);
            }
            if (kind == Kind.WRITE) {
                int written = Native.getInt(client.out(slot) + Fuse.OUT_HEADER_SIZE + Fuse.WRITE_OUT_SIZE_BYTES);
                if (written != blockSize) {
                    throw new IllegalStateException("WRITE wrote " + written + " bytes of " + blockSize);
                }
            }
            forgetting[slot] = false;
            if (histogram != null) {
                histogram.recordValue(Math.max(1, now - started[slot]));
                completed++;
            }
            freeSlots[freeCount++] = slot;
        }
    }
}
