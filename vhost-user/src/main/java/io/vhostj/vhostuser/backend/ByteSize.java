package io.vhostj.vhostuser.backend;

import java.util.Locale;

/** Sizes as people type them on command lines: {@code 4096}, {@code 64k}, {@code 128K}, {@code 10G}, {@code 1t}. */
public final class ByteSize {
    private ByteSize() {
    }

    /** The size in bytes; an {@link IllegalArgumentException} naming {@code option} if it is not one. */
    public static long parse(String text, String option) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.endsWith("ib")) {
            t = t.substring(0, t.length() - 2);
        } else if (t.endsWith("b") && t.length() > 1 && !Character.isDigit(t.charAt(t.length() - 2))) {
            t = t.substring(0, t.length() - 1);
        }
        int shift = switch (t.isEmpty() ? ' ' : t.charAt(t.length() - 1)) {
            case 'k' -> 10;
            case 'm' -> 20;
            case 'g' -> 30;
            case 't' -> 40;
            default -> 0;
        };
        if (shift != 0) {
            t = t.substring(0, t.length() - 1);
        }
        try {
            long v = Long.parseLong(t);
            if (v <= 0 || v > (Long.MAX_VALUE >> shift)) {
                throw new NumberFormatException();
            }
            return v << shift;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + ": '" + text + "' is not a size such as 4096, 64k or 10G");
        }
    }
}
