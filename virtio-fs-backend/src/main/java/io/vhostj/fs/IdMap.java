package io.vhostj.fs;

import java.util.ArrayList;
import java.util.List;

/**
 * UID or GID translation between guest and host, as virtiofsd's {@code --translate-uid} and
 * {@code --translate-gid} state it; each option one of
 * <pre>
 *   map:GUEST:HOST:COUNT           both ways, 1:1
 *   guest:GUEST:HOST:COUNT         guest to host only, 1:1
 *   host:HOST:GUEST:COUNT          host to guest only, 1:1
 *   squash-guest:GUEST:HOST:COUNT  guest range to one host id
 *   squash-host:HOST:GUEST:COUNT   host range to one guest id
 *   forbid-guest:GUEST:COUNT       guest ids that may not own anything: creating or chown fails, EPERM
 * </pre>
 * Ranges of one direction may not overlap; an id no range covers stays as it is. Guest to host
 * applies to the ids new files get and to chown; host to guest to the attributes the guest sees;
 * both to the ids inside POSIX ACL and file capability xattrs ({@link XattrIds}).
 */
public final class IdMap {
    /** Returned by {@link #toHost} for a forbidden guest id. */
    public static final long FORBIDDEN = -1;
    private static final IdMap IDENTITY = new IdMap(List.of(), List.of());

    /** One range of one direction: ids [from, from + count) go to {@code to} (+ offset unless squashed). */
    private record Range(long from, long count, long to, boolean squash, boolean forbid) {
        boolean covers(long id) {
            return id >= from && id - from < count;
        }

        long map(long id) {
            return squash ? to : to + (id - from);
        }
    }

    private final List<Range> toHost;
    private final List<Range> toGuest;

    private IdMap(List<Range> toHost, List<Range> toGuest) {
        this.toHost = toHost;
        this.toGuest = toGuest;
    }

    public static IdMap identity() {
        return IDENTITY;
    }

    public boolean isIdentity() {
        return toHost.isEmpty() && toGuest.isEmpty();
    }

    /** The map the options ask for; {@code option} names them in errors. */
    public static IdMap parse(List<String> specs, String option) {
        if (specs == null || specs.isEmpty()) {
            return IDENTITY;
        }
        List<Range> g2h = new ArrayList<>();
        List<Range> h2g = new ArrayList<>();
        for (String spec : specs) {
            String[] f = spec.split(":", -1);
            String type = f[0];
            int numbers = type.equals("forbid-guest") ? 2 : 3;
            if (f.length != numbers + 1 || !type.matches("map|guest|host|squash-guest|squash-host|forbid-guest")) {
                throw new IllegalArgumentException(option + " " + spec + ": expected map|guest|host|squash-guest|"
                        + "squash-host:FROM:TO:COUNT or forbid-guest:FROM:COUNT");
            }
            long[] n = new long[numbers];
            for (int i = 0; i < numbers; i++) {
                try {
                    n[i] = Long.parseLong(f[i + 1]);
                } catch (NumberFormatException e) {
                    n[i] = -1;
                }
                if (n[i] < 0 || n[i] > 0xffff_ffffL) {
                    throw new IllegalArgumentException(option + " " + spec + ": '" + f[i + 1] + "' is not an id (0..4294967295)");
                }
            }
            long count = n[numbers - 1];
            if (count == 0 || n[0] + count > 0x1_0000_0000L || (numbers == 3 && !type.startsWith("squash")
                    && n[1] + count > 0x1_0000_0000L)) {
                throw new IllegalArgumentException(option + " " + spec + ": the range is empty or runs past 4294967295");
            }
            switch (type) {
                case "map" -> {
                    add(g2h, new Range(n[0], count, n[1], false, false), option, spec);
                    add(h2g, new Range(n[1], count, n[0], false, false), option, spec);
                }
                case "guest" -> add(g2h, new Range(n[0], count, n[1], false, false), option, spec);
                case "host" -> add(h2g, new Range(n[0], count, n[1], false, false), option, spec);
                case "squash-guest" -> add(g2h, new Range(n[0], count, n[1], true, false), option, spec);
                case "squash-host" -> add(h2g, new Range(n[0], count, n[1], true, false), option, spec);
                default -> add(g2h, new Range(n[0], count, 0, false, true), option, spec);
            }
        }
        return new IdMap(List.copyOf(g2h), List.copyOf(h2g));
    }

    private static void add(List<Range> ranges, Range r, String option, String spec) {
        for (Range o : ranges) {
            if (r.from < o.from + o.count && o.from < r.from + r.count) {
                throw new IllegalArgumentException(option + " " + spec + ": overlaps an earlier range of the same direction");
            }
        }
        ranges.add(r);
    }

    /** The host id for guest id {@code id} (unsigned), or {@link #FORBIDDEN}. */
    public long toHost(int id) {
        long g = id & 0xffff_ffffL;
        for (Range r : toHost) {
            if (r.covers(g)) {
                return r.forbid ? FORBIDDEN : r.map(g);
            }
        }
        return g;
    }

    /** The guest id for host id {@code id} (unsigned). */
    public int toGuest(int id) {
        long h = id & 0xffff_ffffL;
        for (Range r : toGuest) {
            if (r.covers(h)) {
                return (int) r.map(h);
            }
        }
        return id;
    }
}
