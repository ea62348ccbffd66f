package io.vhostj.devmapper;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;

/**
 * What the crash test's writer does, derived from a seed and the devices present, so that the
 * test can replay it in a model: a list of transactions, each either writes and discards ended by
 * a FLUSH, or one administrative operation (which commits by itself). Data is 4 KiB chunks, each
 * filled with one 64-bit tag naming the operation that wrote it (0: zeros).
 */
final class CrashScript {
    static final int BLOCK = 16 << 10;
    static final int CHUNK = 4096;
    static final int DEVICE_CHUNKS = 512;
    static final long DEVICE_SIZE = (long) DEVICE_CHUNKS * CHUNK;
    static final long POOL_SIZE = 64L << 20;

    enum Kind { WRITE, DISCARD, THIN, SNAP, DELETE }

    record Op(Kind kind, int device, int other, int chunk, int count, long tag) {
    }

    /** Device contents as chunk tags. */
    static final class Model {
        final Map<Integer, long[]> devices = new HashMap<>();

        Model copy() {
            Model m = new Model();
            devices.forEach((id, c) -> m.devices.put(id, c.clone()));
            return m;
        }

        void apply(Op op) {
            switch (op.kind()) {
                case WRITE -> {
                    long[] c = devices.get(op.device());
                    for (int i = 0; i < op.count(); i++) {
                        c[op.chunk() + i] = op.tag() + i;
                    }
                }
                case DISCARD -> {
                    long[] c = devices.get(op.device());
                    for (int i : discardedChunks(op)) {
                        c[i] = 0;
                    }
                }
                case THIN -> devices.put(op.device(), new long[DEVICE_CHUNKS]);
                case SNAP -> devices.put(op.device(), devices.get(op.other()).clone());
                case DELETE -> devices.remove(op.device());
            }
        }
    }

    /** The chunks a discard zeroes: those in pool blocks it covers whole. */
    static List<Integer> discardedChunks(Op op) {
        int per = BLOCK / CHUNK;
        List<Integer> out = new ArrayList<>();
        int firstBlock = (op.chunk() + per - 1) / per;
        int endBlock = (op.chunk() + op.count()) / per;
        for (int b = firstBlock; b < endBlock; b++) {
            for (int i = 0; i < per; i++) {
                out.add(b * per + i);
            }
        }
        return out;
    }

    static List<List<Op>> plan(long seed, TreeSet<Integer> present) {
        Random r = new Random(seed);
        TreeSet<Integer> ids = new TreeSet<>(present);
        List<List<Op>> txns = new ArrayList<>();
        int length = r.nextInt(4) == 0 ? 3 + r.nextInt(10) : 400;
        for (int t = 0; t < length; t++) {
            int k = r.nextInt(12);
            if (k == 0 && ids.size() < 6) {
                int id = freeId(ids);
                int origin = pick(ids, r);
                txns.add(List.of(new Op(Kind.SNAP, id, origin, 0, 0, 0)));
                ids.add(id);
            } else if (k == 1 && ids.size() > 2) {
                int id = pick(ids, r);
                txns.add(List.of(new Op(Kind.DELETE, id, 0, 0, 0, 0)));
                ids.remove(id);
            } else if ((k == 2 && ids.size() < 6) || ids.isEmpty()) {
                int id = freeId(ids);
                txns.add(List.of(new Op(Kind.THIN, id, 0, 0, 0, 0)));
                ids.add(id);
            } else {
                List<Op> ops = new ArrayList<>();
                int n = 1 + r.nextInt(12);
                for (int j = 0; j < n; j++) {
                    int dev = pick(ids, r);
                    int count = 1 + r.nextInt(r.nextBoolean() ? 2 : 12);
                    int chunk = r.nextInt(DEVICE_CHUNKS - count + 1);
                    long tag = 1 + seed * 1_000_000_000L + t * 100_000L + j * 1_000L;
                    ops.add(new Op(r.nextInt(5) == 0 ? Kind.DISCARD : Kind.WRITE, dev, 0, chunk, count, tag));
                }
                txns.add(ops);
            }
        }
        return txns;
    }

    private static int freeId(TreeSet<Integer> ids) {
        int id = 1;
        while (ids.contains(id)) {
            id++;
        }
        return id;
    }

    private static int pick(TreeSet<Integer> ids, Random r) {
        return new ArrayList<>(ids).get(r.nextInt(ids.size()));
    }
}
