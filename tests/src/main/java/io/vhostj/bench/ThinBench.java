package io.vhostj.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

import org.HdrHistogram.Histogram;

import io.vhostj.devmapper.ThinPool;
import io.vhostj.devmapper.ThinVolume;
import io.vhostj.vhostuser.backend.ByteSize;
import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.Native;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The thin pool's own costs, measured in process (no VM, no virtio): snapshot creation for a small
 * and a huge volume, and a 4 KiB write that provisions a fresh block, one that copies a shared
 * block, and one that overwrites a block in place.
 */
@Command(name = "thin", mixinStandardHelpOptions = true,
        description = "Thin-pool costs in process: create_snap time for a 1 GiB and a 100 GiB volume; 4 KiB writes "
                + "that provision, copy-on-write, or overwrite in place (p50/p99).")
public final class ThinBench implements Callable<Integer> {
    @Option(names = "--dir", paramLabel = "DIR", description = "Where to make the scratch pool. Default: a temporary directory.")
    Path dir;

    @Option(names = "--block-size", defaultValue = "64k", paramLabel = "SIZE", description = "Pool block size. Default: ${DEFAULT-VALUE}.")
    String blockSize;

    @Option(names = "--writes", defaultValue = "4000", paramLabel = "N", description = "Writes timed per kind. Default: ${DEFAULT-VALUE}.")
    int writes;

    @Option(names = "--snapshots", defaultValue = "20", paramLabel = "N", description = "Snapshots timed per volume. Default: ${DEFAULT-VALUE}.")
    int snapshots;

    @Override
    public Integer call() throws Exception {
        int bs = (int) ByteSize.parse(blockSize, "--block-size");
        Path work = dir != null ? dir : Files.createTempDirectory("vhostj-thin-bench");
        Path poolDir = Files.createTempDirectory(work, "thin-bench");
        long buf = Native.allocate(4096);
        long iov = Native.allocate(FileIo.IOVEC_SIZE);
        FileIo.putIovec(iov, 0, buf, 4096);
        Native.zero(buf, 4096);
        Native.putLong(buf, 0x5a5a5a5a5a5a5a5aL);
        try (ThinPool pool = ThinPool.create(poolDir, 110L << 30, bs, null)) {
            // 1 GiB, every block mapped; 100 GiB with one block in 64 mapped (1.6 GiB of blocks, same map depth)
            pool.createThin(1, 1L << 30);
            pool.createThin(2, 100L << 30);
            long small = fill(pool, 1, 1L << 30, bs, 1, iov);
            long huge = fill(pool, 2, 100L << 30, bs, 64, iov);
            double snapSmall = timeSnapshots(pool, 1, 1000);
            double snapHuge = timeSnapshots(pool, 2, 2000);
            System.out.printf(Locale.ROOT, "create_snap, 1 GiB volume (%d blocks mapped):   median %.3f ms over %d%n", small,
                    snapSmall, snapshots);
            System.out.printf(Locale.ROOT, "create_snap, 100 GiB volume (%d blocks mapped): median %.3f ms over %d%n", huge,
                    snapHuge, snapshots);

            // 4 KiB writes, each to a different block of a fresh device
            pool.createThin(3, 1L << 30);
            Random rnd = new Random(1);
            long blocks = (1L << 30) / bs;
            int n = (int) Math.min(writes, blocks);
            long[] order = rnd.longs(0, blocks).distinct().limit(n).toArray();
            Histogram provision = new Histogram(3);
            Histogram inPlace = new Histogram(3);
            Histogram cow = new Histogram(3);
            try (ThinVolume v = pool.volume(3, false)) {
                timeWrites(v, order, bs, iov, provision);
                v.flush();
                timeWrites(v, order, bs, iov, inPlace);
                v.flush();
            }
            pool.createSnap(4, 3);
            try (ThinVolume v = pool.volume(3, false)) {
                timeWrites(v, order, bs, iov, cow);
                v.flush();
            }
            // 128 KiB sequential writes over a fresh device: every block provisioned whole, no zero-fill
            pool.createThin(5, 1L << 30);
            long big = Native.allocate(128 << 10);
            long bigIov = Native.allocate(FileIo.IOVEC_SIZE);
            FileIo.putIovec(bigIov, 0, big, 128 << 10);
            Native.zero(big, 128 << 10);
            Histogram seq = new Histogram(3);
            long t0 = System.nanoTime();
            try (ThinVolume v = pool.volume(5, false)) {
                for (long at = 0; at < (1L << 30); at += 128 << 10) {
                    long w0 = System.nanoTime();
                    if (!v.write(bigIov, 1, at, 128 << 10)) {
                        throw new IllegalStateException("write failed");
                    }
                    seq.recordValue(Math.max(1, (System.nanoTime() - w0) / 10));
                }
                v.flush();
            } finally {
                Native.free(big);
                Native.free(bigIov);
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            print("128k sequential first write", seq);
            System.out.printf(Locale.ROOT, "%-48s %.0f MiB/s (1 GiB, flush included)%n", "128k sequential first write", 1024 / seconds);
            print("4k write provisioning a block (zero-filled)", provision);
            print("4k write copying a shared block (CoW " + bs / 1024 + " KiB)", cow);
            print("4k write in place (block owned alone)", inPlace);
        } finally {
            Native.free(buf);
            Native.free(iov);
            try (Stream<Path> s = Files.walk(dir == null ? work : poolDir)) {
                s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        return 0;
    }

    private static long fill(ThinPool pool, int id, long size, int bs, int every, long iov) throws Exception {
        long mapped = 0;
        try (ThinVolume v = pool.volume(id, false)) {
            for (long at = 0; at < size; at += (long) bs * every) {
                if (!v.write(iov, 1, at, 4096)) {
                    throw new IllegalStateException("fill failed at " + at);
                }
                mapped++;
            }
            v.flush();
        }
        return mapped;
    }

    private double timeSnapshots(ThinPool pool, int origin, int firstId) throws Exception {
        long[] ns = new long[snapshots];
        for (int i = 0; i < snapshots; i++) {
            long t0 = System.nanoTime();
            pool.createSnap(firstId + i, origin);
            ns[i] = System.nanoTime() - t0;
        }
        for (int i = 0; i < snapshots; i++) {
            pool.delete(firstId + i);
        }
        java.util.Arrays.sort(ns);
        return ns[snapshots / 2] / 1e6;
    }

    private static void timeWrites(ThinVolume v, long[] order, int bs, long iov, Histogram h) throws Exception {
        for (long b : order) {
            long t0 = System.nanoTime();
            if (!v.write(iov, 1, b * bs + 4096, 4096)) {
                throw new IllegalStateException("write failed");
            }
            h.recordValue(Math.max(1, (System.nanoTime() - t0) / 10));
        }
    }

    private static void print(String what, Histogram h) {
        System.out.printf(Locale.ROOT, "%-48s p50 %7.1f us  p99 %7.1f us  (%d writes)%n", what,
                h.getValueAtPercentile(50) / 100.0, h.getValueAtPercentile(99) / 100.0, h.getTotalCount());
    }
}
