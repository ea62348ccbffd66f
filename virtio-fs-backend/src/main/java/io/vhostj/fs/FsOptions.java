package io.vhostj.fs;

/**
 * What the export allows, as the command line chose it.
 *
 * @param readOnly    every change refused with EROFS ({@code --readonly})
 * @param cache       name, attribute and data caching ({@code --cache})
 * @param readdirplus READDIRPLUS offered (off with {@code --no-readdirplus})
 * @param xattr       extended attributes served (virtiofsd's default is off; {@code --xattr})
 */
public record FsOptions(boolean readOnly, CachePolicy cache, boolean readdirplus, boolean xattr) {
    /** virtiofsd's defaults: writable, cache=auto, READDIRPLUS, no xattrs. */
    public static FsOptions defaults() {
        return new FsOptions(false, CachePolicy.AUTO, true, false);
    }

    public FsOptions withReadOnly(boolean value) {
        return new FsOptions(value, cache, readdirplus, xattr);
    }

    public FsOptions withXattr(boolean value) {
        return new FsOptions(readOnly, cache, readdirplus, value);
    }
}
