package io.vhostj.blk;

/** How a queue worker issues its reads, writes and flushes (qemu's {@code aio=} names). */
public enum Aio {
    /** Asynchronously through one io_uring per queue: many requests in flight per worker. */
    IO_URING("io_uring"),
    /** Inline on the worker thread with preadv/pwritev: one request at a time per queue. */
    SYNC("sync");

    private final String label;

    Aio(String label) {
        this.label = label;
    }

    public static Aio parse(String text) {
        for (Aio a : values()) {
            if (a.label.equals(text)) {
                return a;
            }
        }
        throw new IllegalArgumentException("--aio must be io_uring or sync, not " + text);
    }

    @Override
    public String toString() {
        return label;
    }
}
