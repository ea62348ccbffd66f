package io.vhostj.devmapper;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.Native;

/**
 * A writer process ({@link CrashWriter}: writes, discards, flushes, snapshots, deletes) is
 * SIGKILLed at a random moment, 50 times over one pool, with checkpoints made every few
 * transactions so that kills land in them too. After each kill the pool opens, {@code check}
 * passes, and every 4 KiB chunk of every device holds what the last acknowledged transaction
 * left there, or what the one in flight was writing.
 */
class ThinPoolCrashTest {
    private static final int KILLS = 50;

    @TempDir
    Path dir;

    @Test
    void shouldKeepEveryFlushedWriteAcrossFiftyKills() throws Exception {
        Path pool = dir.resolve("pool");
        try (ThinPool p = ThinPool.create(pool, CrashScript.POOL_SIZE, CrashScript.BLOCK, null)) {
            p.createThin(1, CrashScript.DEVICE_SIZE);
        }
        CrashScript.Model model = new CrashScript.Model();
        model.devices.put(1, new long[CrashScript.DEVICE_CHUNKS]);
        Random rnd = new Random(42);
        int killedMidway = 0;
        int acknowledged = 0;
        for (int round = 0; round < KILLS; round++) {
            long seed = 1000 + round;
            List<List<CrashScript.Op>> plan = CrashScript.plan(seed, new TreeSet<>(model.devices.keySet()));
            List<String> lines = runAndKill(pool, seed, 30 + rnd.nextInt(400));
            int last = -1;
            for (String l : lines) {
                if (l.startsWith("F ")) {
                    last = Integer.parseInt(l.substring(2));
                }
            }
            if (!lines.contains("DONE")) {
                killedMidway++;
            }
            acknowledged += last + 1;
            model = verify(pool, plan, model, last, "round " + round + " (seed " + seed + ", last acknowledged "
                    + last + " of " + plan.size() + ")");
        }
        assertTrue(killedMidway >= KILLS / 2, "most kills should land mid-run, only " + killedMidway + " did");
        assertTrue(acknowledged > KILLS, "the writers acknowledged only " + acknowledged + " transactions");
    }

    private static List<String> runAndKill(Path pool, long seed, long delayMs) throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        Process p = new ProcessBuilder(java, "--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED",
                "-Dvhostj.thin.checkpointBytes=4096", "-Dvhostj.thin.lowestFirst=true", "-cp", System.getProperty("java.class.path"),
                CrashWriter.class.getName(), pool.toString(), Long.toString(seed))
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        List<String> lines = new ArrayList<>();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String first = out.readLine();
        if (!"READY".equals(first)) {
            p.destroyForcibly();
            fail("writer did not start: " + first);
        }
        Thread.sleep(delayMs);
        p.toHandle().destroyForcibly(); // SIGKILL, leaving the pipe readable (Process.destroy closes it)
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        for (String l; (l = out.readLine()) != null; ) {
            lines.add(l);
        }
        return lines;
    }

    /**
     * Opens the pool after a kill, checks it, and compares every chunk with what may be there;
     * returns the model as found, for the next round.
     */
    private static CrashScript.Model verify(Path pool, List<List<CrashScript.Op>> plan, CrashScript.Model start,
            int last, String at) throws Exception {
        CrashScript.Model acked = start.copy();
        for (int t = 0; t <= last; t++) {
            plan.get(t).forEach(acked::apply);
        }
        // the transaction in flight may or may not have committed; its writes may be there in part
        CrashScript.Model next = acked.copy();
        Map<Integer, List<Set<Long>>> extra = new HashMap<>();
        if (last + 1 < plan.size()) {
            for (CrashScript.Op op : plan.get(last + 1)) {
                next.apply(op);
                if (op.kind() == CrashScript.Kind.WRITE || op.kind() == CrashScript.Kind.DISCARD) {
                    List<Set<Long>> sets = extra.computeIfAbsent(op.device(), k -> {
                        List<Set<Long>> s = new ArrayList<>();
                        for (int i = 0; i < CrashScript.DEVICE_CHUNKS; i++) {
                            s.add(new HashSet<>());
                        }
                        return s;
                    });
                    if (op.kind() == CrashScript.Kind.WRITE) {
                        for (int i = 0; i < op.count(); i++) {
                            sets.get(op.chunk() + i).add(op.tag() + i);
                        }
                    } else {
                        for (int i : CrashScript.discardedChunks(op)) {
                            sets.get(i).add(0L);
                        }
                    }
                }
            }
        }
        CrashScript.Model found = new CrashScript.Model();
        try (ThinPool p = ThinPool.open(pool)) {
            assertEquals(List.of(), p.check(), at + ": check");
            Set<Integer> ids = new TreeSet<>();
            p.list().forEach(d -> ids.add(d.id()));
            assertTrue(ids.equals(acked.devices.keySet()) || ids.equals(next.devices.keySet()),
                    at + ": devices " + ids + ", expected " + acked.devices.keySet() + " or " + next.devices.keySet());
            long buf = Native.allocate(CrashScript.DEVICE_SIZE);
            long iov = Native.allocate(FileIo.IOVEC_SIZE);
            try {
                for (int id : ids) {
                    long[] want = acked.devices.containsKey(id) ? acked.devices.get(id) : next.devices.get(id);
                    List<Set<Long>> also = extra.get(id);
                    long[] got = new long[CrashScript.DEVICE_CHUNKS];
                    try (ThinVolume v = p.volume(id, true)) {
                        FileIo.putIovec(iov, 0, buf, CrashScript.DEVICE_SIZE);
                        assertTrue(v.read(iov, 1, 0, CrashScript.DEVICE_SIZE));
                    }
                    for (int c = 0; c < CrashScript.DEVICE_CHUNKS; c++) {
                        long base = buf + (long) c * CrashScript.CHUNK;
                        long tag = Native.getLong(base);
                        for (int w = 8; w < CrashScript.CHUNK; w += 8) {
                            if (Native.getLong(base + w) != tag) {
                                fail(at + ": device " + id + " chunk " + c + " is torn (" + tag + " then "
                                        + Native.getLong(base + w) + " at byte " + w + ")");
                            }
                        }
                        boolean ok = tag == want[c] || (also != null && also.get(c).contains(tag));
                        if (!ok) {
                            fail(at + ": device " + id + " chunk " + c + " holds " + tag + ", expected " + want[c]
                                    + (also == null ? "" : " or one of " + also.get(c)));
                        }
                        got[c] = tag;
                    }
                    found.devices.put(id, got);
                }
            } finally {
                Native.free(buf);
                Native.free(iov);
            }
        }
        return found;
    }
}
