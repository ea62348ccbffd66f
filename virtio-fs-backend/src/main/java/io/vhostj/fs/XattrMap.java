package io.vhostj.fs;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import io.vhostj.vhostuser.sys.Errno;

/**
 * Extended attribute names as the guest sees them versus as the host stores them, stated as
 * virtiofsd's {@code --xattrmap} states it (its doc/xattr-mapping.md): a series of rules
 * <pre>
 *   :type:scope:key:prepend:     the separator is the rule's first non-blank character
 *   :map:key:prepend:            shorthand, only as the last rule
 * </pre>
 * with blanks (newlines too) allowed between rules. A name from the guest (SETXATTR, GETXATTR,
 * REMOVEXATTR) is matched against {@code key} by the {@code client} and {@code all} rules, a
 * name from the host (LISTXATTR) against {@code prepend} by the {@code server} and {@code all}
 * rules; an empty field matches every name; the first matching rule decides:
 * <pre>
 *   prefix       guest to host: prepend + name; host to guest: the name without prepend
 *   ok           the name as it is
 *   bad          the guest's call fails with EPERM; the host's name is not listed
 *   unsupported  the guest's call fails with ENOTSUP; the host's name is not listed
 * </pre>
 * A name no rule matches is treated as {@code bad}: the C virtiofsd ends every map with an
 * implicit {@code bad} rule (the Rust one panics its worker instead, which a guest must not be
 * able to cause here).
 *
 * <p>One rule virtiofsd does not have: a guest's name whose host name would not be listed is
 * refused as {@code bad} would refuse it, so that no rule order lets the guest read or change
 * an attribute it cannot see (with {@code :bad:server::security.: :ok:all:::} virtiofsd would
 * still serve a GETXATTR of {@code security.selinux}).
 */
public final class XattrMap {
    /** What a matching rule does with the name. */
    private enum Type { PREFIX, OK, BAD, UNSUPPORTED }

    /** One rule; {@code key} is matched on guest names, {@code prepend} on host names. */
    private record Rule(Type type, boolean client, boolean server, byte[] key, byte[] prepend) {
        String scope() {
            return client && server ? "all" : client ? "client" : "server";
        }
    }

    /**
     * A guest's name as the host has it: {@code name}, or {@code errno} (EPERM or ENOTSUP)
     * when the map refuses it.
     */
    public record HostName(byte[] name, int errno) {
        static HostName refused(int errno) {
            return new HostName(null, errno);
        }
    }

    private static final byte[] EMPTY = new byte[0];
    private final List<Rule> rules;

    private XattrMap(List<Rule> rules) {
        this.rules = rules;
    }

    /** The map {@code spec} states; {@code option} names it in the one-line errors. */
    public static XattrMap parse(String spec, String option) {
        List<Rule> rules = new ArrayList<>();
        int at = skipBlanks(spec, 0);
        while (at < spec.length()) {
            int start = at;
            int number = rules.size() + 1;
            char separator = spec.charAt(at++);
            List<String> fields = new ArrayList<>();
            do {
                int end = spec.indexOf(separator, at);
                if (end < 0) {
                    throw refuse(option, number, spec.substring(start), "no closing '" + separator + "' (a rule is "
                            + String.join(String.valueOf(separator), "", "type", "scope", "key", "prepend", "") + ")");
                }
                fields.add(spec.substring(at, end));
                at = end + 1;
                if (fields.size() == 1 && !fields.get(0).matches("prefix|ok|bad|unsupported|map")) {
                    throw refuse(option, number, spec.substring(start, at),
                            "type must be prefix, ok, bad, unsupported or map, not '" + fields.get(0) + "'");
                }
            } while (fields.size() < (fields.get(0).equals("map") ? 3 : 4));
            String text = spec.substring(start, at);
            at = skipBlanks(spec, at);
            if (fields.get(0).equals("map")) {
                if (at < spec.length()) {
                    throw refuse(option, number, text, "map must be the last rule");
                }
                expandMap(rules, bytes(fields.get(1)), bytes(fields.get(2)));
            } else {
                rules.add(rule(option, number, text, fields));
            }
        }
        if (rules.isEmpty()) {
            throw new IllegalArgumentException(option + ": no rules (expected :type:scope:key:prepend: ...)");
        }
        return new XattrMap(List.copyOf(rules));
    }

    private static Rule rule(String option, int number, String text, List<String> fields) {
        Type type = Type.valueOf(fields.get(0).toUpperCase(Locale.ROOT));
        String scope = fields.get(1);
        if (!scope.matches("client|server|all")) {
            throw refuse(option, number, text, "scope must be client, server or all, not '" + scope + "'");
        }
        return new Rule(type, !scope.equals("server"), !scope.equals("client"), bytes(fields.get(2)),
                bytes(fields.get(3)));
    }

    /**
     * {@code :map:key:prepend:} as virtiofsd expands it: prefix {@code key} (every name when
     * empty) with {@code prepend}; then, with a key, refuse guest names already starting with
     * {@code prepend} and hide host names starting with {@code key} (so a guest cannot reach the
     * mapped attributes around the map), and pass everything else; without a key, nothing else
     * is reachable.
     */
    private static void expandMap(List<Rule> rules, byte[] key, byte[] prepend) {
        rules.add(new Rule(Type.PREFIX, true, true, key, prepend));
        if (key.length == 0) {
            rules.add(new Rule(Type.BAD, true, true, EMPTY, EMPTY));
        } else {
            rules.add(new Rule(Type.BAD, true, true, prepend, key));
            rules.add(new Rule(Type.OK, true, true, EMPTY, EMPTY));
        }
    }

    private static IllegalArgumentException refuse(String option, int number, String text, String why) {
        return new IllegalArgumentException(option + ": rule " + number + " ('" + text.replaceAll("\\s+", " ").strip()
                + "'): " + why);
    }

    private static int skipBlanks(String s, int at) {
        while (at < s.length() && Character.isWhitespace(s.charAt(at))) {
            at++;
        }
        return at;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** The host's name for the guest's {@code name}, or the errno refusing it. */
    public HostName toHost(byte[] name) {
        Rule rule = find(true, name, 0, name.length);
        if (rule == null || rule.type == Type.BAD) {
            return HostName.refused(Errno.EPERM);
        }
        if (rule.type == Type.UNSUPPORTED) {
            return HostName.refused(Errno.ENOTSUP);
        }
        byte[] host = name;
        if (rule.type == Type.PREFIX) {
            host = Arrays.copyOf(rule.prepend, rule.prepend.length + name.length);
            System.arraycopy(name, 0, host, rule.prepend.length, name.length);
        }
        return listed(find(false, host, 0, host.length)) ? new HostName(host, 0) : HostName.refused(Errno.EPERM);
    }

    /**
     * Rewrites the host's LISTXATTR answer, {@code length} bytes of NUL-terminated names in
     * {@code list}, in place as the guest sees it: hidden names dropped, prefixes stripped (a
     * name that would be left empty dropped too: no guest call can name it). Returns the
     * guest's length, never more than {@code length}.
     */
    public int toGuestList(byte[] list, int length) {
        int out = 0;
        int from = 0;
        while (from < length) {
            int end = from;
            while (end < length && list[end] != 0) {
                end++;
            }
            Rule rule = find(false, list, from, end - from);
            int strip = rule != null && rule.type == Type.PREFIX ? rule.prepend.length : 0;
            if (end - from > strip && listed(rule)) { // a name that is all prefix would reach the guest empty
                System.arraycopy(list, from + strip, list, out, end - from - strip);
                out += end - from - strip;
                list[out++] = 0;
            }
            from = end + 1;
        }
        return out;
    }

    private static boolean listed(Rule rule) {
        return rule != null && (rule.type == Type.OK || rule.type == Type.PREFIX);
    }

    /** The first rule of that side whose field is a prefix of {@code name[from, from + length)}. */
    private Rule find(boolean client, byte[] name, int from, int length) {
        for (Rule r : rules) {
            byte[] field = client ? r.key : r.prepend;
            if ((client ? r.client : r.server) && field.length <= length
                    && Arrays.equals(field, 0, field.length, name, from, from + field.length)) {
                return r;
            }
        }
        return null;
    }

    /** The rules as virtiofsd would write them, the map shorthand expanded (for the startup log). */
    @Override
    public String toString() {
        StringBuilder s = new StringBuilder();
        for (Rule r : rules) {
            String key = new String(r.key, StandardCharsets.UTF_8);
            String prepend = new String(r.prepend, StandardCharsets.UTF_8);
            char sep = ':';
            for (char c : ":/|,;#".toCharArray()) {
                sep = c;
                if (key.indexOf(c) < 0 && prepend.indexOf(c) < 0) {
                    break;
                }
            }
            s.append(s.isEmpty() ? "" : " ").append(sep).append(r.type.name().toLowerCase(Locale.ROOT)).append(sep)
                    .append(r.scope()).append(sep).append(key).append(sep).append(prepend).append(sep);
        }
        return s.toString();
    }
}
