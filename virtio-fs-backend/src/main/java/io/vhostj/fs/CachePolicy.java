package io.vhostj.fs;

/**
 * virtiofsd's {@code --cache}: how long the guest may trust names and attributes, and whether
 * it may keep file data cached across opens.
 */
public enum CachePolicy {
    /** Nothing cached: timeouts 0, every open with FOPEN_DIRECT_IO. */
    NEVER("never", 0, Fuse.FOPEN_DIRECT_IO),
    /** Names and attributes trusted for 1 s; data dropped when a file is reopened. */
    AUTO("auto", 1, 0),
    /** Names and attributes for a day, data kept across opens (FOPEN_KEEP_CACHE): the export is the guest's alone. */
    ALWAYS("always", 86_400, Fuse.FOPEN_KEEP_CACHE),
    /** Names and attributes for a day, data never cached. */
    METADATA("metadata", 86_400, Fuse.FOPEN_DIRECT_IO);

    final String label;
    final long timeoutSeconds;
    final int openFlags;

    CachePolicy(String label, long timeoutSeconds, int openFlags) {
        this.label = label;
        this.timeoutSeconds = timeoutSeconds;
        this.openFlags = openFlags;
    }

    public static CachePolicy parse(String text) {
        for (CachePolicy p : values()) {
            if (p.label.equals(text)) {
                return p;
            }
        }
        throw new IllegalArgumentException("--cache must be auto, always, never or metadata, not '" + text + "'");
    }

    @Override
    public String toString() {
        return label;
    }
}
