package io.vhostj.vhostuser.backend;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The value of a repeatable option that describes one thing as {@code key=value,key=value}
 * ({@code vhostj blk --export}, {@code vhostj vsock --vm}), checked against the keys the option
 * knows. Errors are IllegalArgumentException with a message that names the option and the value.
 */
public final class KeyValues {
    private KeyValues() {
    }

    /**
     * Splits {@code spec} (the value given to {@code option}) on commas into keys and values;
     * {@code flags} are keys that stand alone (stored with an empty value). An unknown key, a part
     * without '=' or a key given twice is refused.
     */
    public static Map<String, String> parse(String option, String spec, Set<String> keys, Set<String> flags) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (String part : spec.split(",")) { // a trailing comma is nothing, an empty part between two is refused
            int eq = part.indexOf('=');
            String key = eq < 0 ? part : part.substring(0, eq);
            if (eq < 0 && !flags.contains(part)) {
                throw new IllegalArgumentException(option + " " + spec + ": '" + part + "' is not key=value");
            }
            if (eq >= 0 && !keys.contains(key)) {
                throw new IllegalArgumentException(option + " " + spec + ": unknown key '" + key + "'");
            }
            if (kv.put(key, eq < 0 ? "" : part.substring(eq + 1)) != null) {
                throw new IllegalArgumentException(option + " " + spec + ": " + key + " is given twice");
            }
        }
        return kv;
    }

    /** {@link #parse(String, String, Set, Set)} without stand-alone keys. */
    public static Map<String, String> parse(String option, String spec, Set<String> keys) {
        return parse(option, spec, keys, Collections.emptySet());
    }

    /** Refuses {@code kv} unless it has every key in {@code required}. */
    public static void require(String option, String spec, Map<String, String> kv, String... required) {
        for (String key : required) {
            if (!kv.containsKey(key)) {
                throw new IllegalArgumentException(option + " " + spec + ": " + key + "= is required");
            }
        }
    }
}
