package io.vhostj.vhostuser.sys;

import java.util.BitSet;

/** CPU affinity of the calling thread (sched_setaffinity with pid 0), and CPU list parsing. */
public final class Affinity {
    /** glibc's cpu_set_t: 1024 bits. */
    private static final int CPU_SET_BYTES = 128;

    private Affinity() {
    }

    /** Pins the calling thread to {@code cpu}. */
    public static void pinCurrentThread(int cpu) throws NativeException {
        if (cpu < 0 || cpu >= CPU_SET_BYTES * 8) {
            throw new NativeException("sched_setaffinity", "cpu " + cpu + " out of range");
        }
        long mask = Native.scratch() + 1024;
        Native.zero(mask, CPU_SET_BYTES);
        Native.putByte(mask + cpu / 8, (byte) (1 << (cpu % 8)));
        Native.check("sched_setaffinity", Native.LIBC.sched_setaffinity(0, CPU_SET_BYTES, mask));
    }

    /**
     * Parses a CPU list as taskset and /sys print them: {@code 0-3,6,8-9}. Returns the CPUs in
     * ascending order; throws IllegalArgumentException on anything else.
     */
    public static int[] parseList(String text) {
        BitSet cpus = new BitSet();
        for (String part : text.split(",", -1)) {
            String p = part.trim();
            if (!p.matches("\\d{1,4}(-\\d{1,4})?")) {
                throw new IllegalArgumentException("'" + text + "' is not a CPU list like 0-3,6");
            }
            int dash = p.indexOf('-');
            int from = Integer.parseInt(dash < 0 ? p : p.substring(0, dash));
            int to = dash < 0 ? from : Integer.parseInt(p.substring(dash + 1));
            if (to < from || to >= CPU_SET_BYTES * 8) {
                throw new IllegalArgumentException("'" + p + "' is not a CPU range (0.." + (CPU_SET_BYTES * 8 - 1) + ")");
            }
            cpus.set(from, to + 1);
        }
        return cpus.stream().toArray();
    }
}
