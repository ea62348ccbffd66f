package io.vhostj.devmapper;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.Native;

/**
 * The process the crash test kills: opens the pool, runs {@link CrashScript#plan} for its seed,
 * and prints {@code F n} once transaction n is committed (FLUSH returned, or the administrative
 * operation, which commits by itself, returned). Usage: {@code CrashWriter POOL_DIR SEED}.
 */
public final class CrashWriter {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        long seed = Long.parseLong(args[1]);
        ThinPool pool = ThinPool.open(dir);
        TreeSet<Integer> ids = new TreeSet<>();
        pool.list().forEach(d -> ids.add(d.id()));
        List<List<CrashScript.Op>> plan = CrashScript.plan(seed, ids);
        Map<Integer, ThinVolume> open = new HashMap<>();
        for (int id : ids) {
            open.put(id, pool.volume(id, false));
        }
        long buf = Native.allocate(12L * CrashScript.CHUNK);
        long iov = Native.allocate(FileIo.IOVEC_SIZE);
        System.out.println("READY");
        System.out.flush();
        for (int t = 0; t < plan.size(); t++) {
            for (CrashScript.Op op : plan.get(t)) {
                switch (op.kind()) {
                    case WRITE -> {
                        for (int i = 0; i < op.count(); i++) {
                            long tag = op.tag() + i;
                            for (int w = 0; w < CrashScript.CHUNK; w += 8) {
                                Native.putLong(buf + (long) i * CrashScript.CHUNK + w, tag);
                            }
                        }
                        long len = (long) op.count() * CrashScript.CHUNK;
                        FileIo.putIovec(iov, 0, buf, len);
                        if (!open.get(op.device()).write(iov, 1, (long) op.chunk() * CrashScript.CHUNK, len)) {
                            throw new IllegalStateException("write failed: " + op);
                        }
                    }
                    case DISCARD -> open.get(op.device()).discard((long) op.chunk() * CrashScript.CHUNK,
                            (long) op.count() * CrashScript.CHUNK);
                    case THIN -> {
                        pool.createThin(op.device(), CrashScript.DEVICE_SIZE);
                        open.put(op.device(), pool.volume(op.device(), false));
                    }
                    case SNAP -> {
                        open.remove(op.other()).close();
                        pool.createSnap(op.device(), op.other());
                        open.put(op.other(), pool.volume(op.other(), false));
                        open.put(op.device(), pool.volume(op.device(), false));
                    }
                    case DELETE -> {
                        open.remove(op.device()).close();
                        pool.delete(op.device());
                    }
                }
            }
            pool.commit();
            System.out.println("F " + t);
            System.out.flush();
        }
        open.values().forEach(ThinVolume::close);
        pool.close();
        System.out.println("DONE");
    }
}
