package io.vhostj.devmapper;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.Native;

/**
 * Random sequences of create/snapshot/write/discard/write-zeroes/resize/delete/commit/reopen
 * against a model that knows each device's bytes and which "block versions" each device maps.
 * After every step the pool's own check passes, and its used, free and shared block counts and
 * every device's contents agree with the model.
 */
class ThinPoolModelTest {
    private static final int BS = 4096;
    private static final int DEVICE_BLOCKS = 48;
    private static final long POOL_BLOCKS = 2048;

    @TempDir
    Path dir;

    /** What the pool should hold: contents, and per virtual block a token naming the block's version. */
    private static final class Model {
        final TreeMap<Integer, byte[]> bytes = new TreeMap<>();
        final Map<Integer, Map<Long, Long>> maps = new HashMap<>();
        long nextToken = 1;

        /** A write to one block of one device: in place if no other device holds its version. */
        void touch(int dev, long vb) {
            Long t = maps.get(dev).get(vb);
            if (t == null || holders(t) > 1) {
                maps.get(dev).put(vb, nextToken++);
            }
        }

        int holders(long token) {
            int n = 0;
            for (Map<Long, Long> m : maps.values()) {
                n += m.containsValue(token) ? 1 : 0;
            }
            return n;
        }

        Set<Long> tokens() {
            Set<Long> all = new HashSet<>();
            maps.values().forEach(m -> all.addAll(m.values()));
            return all;
        }
    }

    @Test
    void shouldAgreeWithTheModelOverRandomOperations() throws Exception {
        for (int seed = 1; seed <= 12; seed++) {
            runSeed(seed, 250);
        }
    }

    private void runSeed(long seed, int steps) throws Exception {
        Path poolDir = dir.resolve("pool" + seed);
        Random rnd = new Random(seed);
        Model model = new Model();
        ThinPool pool = ThinPool.create(poolDir, POOL_BLOCKS * BS, BS, null);
        long buf = Native.allocate(DEVICE_BLOCKS * BS);
        long iov = Native.allocate(4 * FileIo.IOVEC_SIZE);
        try {
            for (int step = 0; step < steps; step++) {
                String what = step(pool, model, rnd, buf, iov);
                if (what.equals("reopen")) {
                    pool.close();
                    pool = ThinPool.open(poolDir);
                }
                String at = "seed " + seed + " step " + step + " (" + what + ")";
                assertEquals(List.of(), pool.check(), at);
                compare(pool, model, buf, iov, at);
            }
        } finally {
            pool.close();
            Native.free(buf);
            Native.free(iov);
        }
    }

    private static String step(ThinPool pool, Model model, Random rnd, long buf, long iov) throws Exception {
        List<Integer> ids = new ArrayList<>(model.bytes.keySet());
        int op = rnd.nextInt(100);
        if (ids.isEmpty() || (op < 8 && ids.size() < 6)) {
            int id = freeId(model, rnd);
            pool.createThin(id, (long) DEVICE_BLOCKS * BS);
            model.bytes.put(id, new byte[DEVICE_BLOCKS * BS]);
            model.maps.put(id, new HashMap<>());
            return "create_thin " + id;
        }
        int dev = ids.get(rnd.nextInt(ids.size()));
        if (op < 16 && ids.size() < 6) {
            int id = freeId(model, rnd);
            pool.createSnap(id, dev);
            model.bytes.put(id, model.bytes.get(dev).clone());
            model.maps.put(id, new HashMap<>(model.maps.get(dev)));
            return "create_snap " + id + " " + dev;
        }
        if (op < 20) {
            pool.delete(dev);
            model.bytes.remove(dev);
            model.maps.remove(dev);
            return "delete " + dev;
        }
        if (op < 23) {
            // shrink to any sector, then grow back: what was cut off must read as zeros
            long bytes = 512L * (1 + rnd.nextInt(DEVICE_BLOCKS * BS / 512));
            pool.resize(dev, bytes);
            byte[] old = model.bytes.get(dev);
            byte[] now = new byte[DEVICE_BLOCKS * BS];
            System.arraycopy(old, 0, now, 0, (int) bytes);
            model.bytes.put(dev, now);
            long keep = (bytes + BS - 1) / BS;
            model.maps.get(dev).keySet().removeIf(vb -> vb >= keep);
            pool.resize(dev, (long) DEVICE_BLOCKS * BS);
            if (bytes % BS != 0 && model.maps.get(dev).containsKey(bytes / BS)) {
                model.touch(dev, bytes / BS); // the cut-off tail of the last block was zeroed
            }
            return "resize " + dev + " " + bytes;
        }
        if (op < 28) {
            pool.commit();
            return "commit";
        }
        if (op < 31) {
            return "reopen";
        }
        // I/O on one device: a range in 512-byte sectors, sometimes crossing blocks
        long start = (long) rnd.nextInt(DEVICE_BLOCKS * 8) * 512;
        long length = Math.min((1 + rnd.nextInt(rnd.nextBoolean() ? 8 : 40)) * 512L, DEVICE_BLOCKS * (long) BS - start);
        try (ThinVolume v = pool.volume(dev, false)) {
            byte[] content = model.bytes.get(dev);
            if (op < 80) {
                byte[] data = new byte[(int) length];
                rnd.nextBytes(data);
                Native.copyFromArray(data, 0, buf, data.length);
                // split over up to three iovecs to exercise slicing
                int cut1 = (int) (length / 3 / 512 * 512);
                int cut2 = (int) (length * 2 / 3 / 512 * 512);
                FileIo.putIovec(iov, 0, buf, cut1);
                FileIo.putIovec(iov, 1, buf + cut1, cut2 - cut1);
                FileIo.putIovec(iov, 2, buf + cut2, length - cut2);
                assertTrue(v.write(iov, 3, start, length));
                System.arraycopy(data, 0, content, (int) start, data.length);
                for (long vb = start / BS; vb <= (start + length - 1) / BS; vb++) {
                    model.touch(dev, vb);
                }
                return "write " + dev + " " + start + "+" + length;
            }
            if (op < 90) {
                v.discard(start, length);
                // discard frees whole blocks only; the model's bytes there read zero afterwards
                for (long vb = (start + BS - 1) / BS; vb < (start + length) / BS; vb++) {
                    java.util.Arrays.fill(content, (int) (vb * BS), (int) ((vb + 1) * BS), (byte) 0);
                    model.maps.get(dev).remove(vb);
                }
                return "discard " + dev + " " + start + "+" + length;
            }
            assertTrue(v.writeZeroes(start, length));
            java.util.Arrays.fill(content, (int) start, (int) (start + length), (byte) 0);
            // whole blocks are unmapped; the partial ends are written with zeros where mapped
            long first = (start + BS - 1) / BS;
            long last = (start + length) / BS;
            Map<Long, Long> map = model.maps.get(dev);
            if (last <= first) {
                for (long vb = start / BS; vb <= (start + length - 1) / BS; vb++) {
                    if (map.containsKey(vb)) {
                        model.touch(dev, vb);
                    }
                }
            } else {
                for (long vb = first; vb < last; vb++) {
                    map.remove(vb);
                }
                if (start < first * BS && map.containsKey(start / BS)) {
                    model.touch(dev, start / BS);
                }
                if (start + length > last * BS && map.containsKey(last)) {
                    model.touch(dev, last);
                }
            }
            return "write_zeroes " + dev + " " + start + "+" + length;
        }
    }

    private static int freeId(Model model, Random rnd) {
        int id;
        do {
            id = rnd.nextInt(20);
        } while (model.bytes.containsKey(id));
        return id;
    }

    private static void compare(ThinPool pool, Model model, long buf, long iov, String at) throws Exception {
        PoolStatus st = pool.status();
        Set<Long> tokens = model.tokens();
        assertEquals(tokens.size(), st.usedBlocks(), at + ": used blocks");
        assertEquals(POOL_BLOCKS - tokens.size(), st.freeBlocks(), at + ": free blocks");
        long shared = tokens.stream().filter(t -> model.holders(t) > 1).count();
        assertEquals(shared, st.sharedBlocks(), at + ": shared blocks");
        assertEquals(model.bytes.keySet().size(), st.devices().size(), at + ": devices");
        for (ThinDevice d : st.devices()) {
            assertEquals(model.maps.get(d.id()).size(), d.mappedBlocks(), at + ": device " + d.id() + " mapped");
        }
        for (Map.Entry<Integer, byte[]> e : model.bytes.entrySet()) {
            try (ThinVolume v = pool.volume(e.getKey(), true)) {
                long length = (long) DEVICE_BLOCKS * BS;
                Native.zero(buf, length);
                FileIo.putIovec(iov, 0, buf, length / 2);
                FileIo.putIovec(iov, 1, buf + length / 2, length / 2);
                assertTrue(v.read(iov, 2, 0, length));
                byte[] got = new byte[(int) length];
                Native.copyToArray(buf, got, 0, got.length);
                assertArrayEquals(e.getValue(), got, at + ": contents of device " + e.getKey());
            }
        }
    }

    @Test
    void shouldOpenAtTheLastCommitAfterACrashAndATornBatch(@TempDir Path d) throws Exception {
        ThinPool pool = ThinPool.create(d, 64L * BS, BS, null);
        pool.createThin(1, 8L * BS);
        pool.createSnap(2, 1);
        pool.abandon(); // as if killed: no checkpoint, the log holds both batches
        byte[] log = java.nio.file.Files.readAllBytes(d.resolve(ThinPool.LOG));
        // a third batch cut short by the crash: a header and half its records
        byte[] torn = java.util.Arrays.copyOf(log, log.length + 30);
        System.arraycopy(log, 16, torn, log.length, 30);
        java.nio.file.Files.write(d.resolve(ThinPool.LOG), torn);
        try (ThinPool again = ThinPool.open(d)) {
            assertEquals(List.of(1, 2), again.list().stream().map(ThinDevice::id).toList());
            assertEquals(List.of(), again.check());
            again.createThin(3, 8L * BS); // appended after the last good batch, not after the torn one
            again.abandon();
        }
        try (ThinPool again = ThinPool.open(d)) {
            assertEquals(List.of(1, 2, 3), again.list().stream().map(ThinDevice::id).toList());
        }
    }

    @Test
    void shouldRefuseASecondOpenerAndNameTheHolder(@TempDir Path d) throws Exception {
        try (ThinPool pool = ThinPool.create(d, 64L * BS, BS, null)) {
            PoolException e = org.junit.jupiter.api.Assertions.assertThrows(PoolException.class, () -> ThinPool.open(d));
            assertTrue(e.getMessage().contains("in use by pid " + ProcessHandle.current().pid()), e.getMessage());
        }
    }

    @Test
    void shouldRefuseADamagedImage(@TempDir Path d) throws Exception {
        ThinPool.create(d, 64L * BS, BS, null).close();
        byte[] image = java.nio.file.Files.readAllBytes(d.resolve(ThinPool.IMAGE));
        image[image.length / 2] ^= 1;
        java.nio.file.Files.write(d.resolve(ThinPool.IMAGE), image);
        PoolException e = org.junit.jupiter.api.Assertions.assertThrows(PoolException.class, () -> ThinPool.open(d));
        assertTrue(e.getMessage().contains("checksum"), e.getMessage());
    }

    @Test
    void shouldSnapshotInConstantTimeWhateverTheVolumeSize(@TempDir Path d) throws Exception {
        try (ThinPool pool = ThinPool.create(d, 1L << 30, 64 << 10, null)) {
            pool.createThin(1, 100L << 30);
            // map 4,096 blocks spread over the 100 GiB, then snapshot: only the root is shared
            long buf = Native.allocate(512);
            long iov = Native.allocate(FileIo.IOVEC_SIZE);
            try (ThinVolume v = pool.volume(1, false)) {
                FileIo.putIovec(iov, 0, buf, 512);
                for (long i = 0; i < 4096; i++) {
                    assertTrue(v.write(iov, 1, i * (25L << 20), 512));
                }
            } finally {
                Native.free(buf);
                Native.free(iov);
            }
            ThinDevice snap = pool.createSnap(2, 1);
            assertEquals(4096, snap.mappedBlocks());
            assertEquals(4096, pool.status().sharedBlocks());
        }
    }

    @Test
    void shouldNotHandOutAFreedBlockWhileAnEarlierLookupMayStillUseIt(@TempDir Path d) throws Exception {
        long buf = Native.allocate(BS);
        long iov = Native.allocate(FileIo.IOVEC_SIZE);
        FileIo.putIovec(iov, 0, buf, BS);
        try (ThinPool pool = ThinPool.create(d, 4L * BS, BS, null)) {
            pool.createThin(1, 4L * BS);
            try (ThinVolume v = pool.volume(1, false)) {
                assertTrue(v.write(iov, 1, 0, BS));
                int stale = pool.enterIo(); // a reader that looked block 0 up and has not read it yet
                v.discard(0, BS);
                for (int i = 0; i < 3; i++) {
                    pool.commit();
                }
                for (int vb = 1; vb < 4; vb++) {
                    assertTrue(v.write(iov, 1, (long) vb * BS, BS));
                }
                org.junit.jupiter.api.Assertions.assertFalse(v.write(iov, 1, 0, BS),
                        "the only free block is the one the reader may still read");
                pool.exitIo(stale);
                pool.commit();
                pool.commit();
                assertTrue(v.write(iov, 1, 0, BS), "once that reader is done the block is free again");
            }
            assertEquals(List.of(), pool.check());
        } finally {
            Native.free(buf);
            Native.free(iov);
        }
    }

    @Test
    void shouldRefuseToCloseUnderAnOpenVolumeAndStayUsable(@TempDir Path d) throws Exception {
        long buf = Native.allocate(BS);
        long iov = Native.allocate(FileIo.IOVEC_SIZE);
        FileIo.putIovec(iov, 0, buf, BS);
        try (ThinPool pool = ThinPool.create(d, 16L * BS, BS, null)) {
            pool.createThin(1, 4L * BS);
            try (ThinVolume v = pool.volume(1, false)) {
                org.junit.jupiter.api.Assertions.assertThrows(IOException.class, pool::close);
                assertTrue(v.write(iov, 1, 0, BS), "the volume still works: nothing was freed");
                v.flush();
            }
        } finally {
            Native.free(buf);
            Native.free(iov);
        }
        try (ThinPool pool = ThinPool.open(d)) {
            assertEquals(1, pool.list().get(0).mappedBlocks());
            pool.close();
            PoolException e = org.junit.jupiter.api.Assertions.assertThrows(PoolException.class,
                    () -> pool.createThin(2, BS));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
        }
    }
}
