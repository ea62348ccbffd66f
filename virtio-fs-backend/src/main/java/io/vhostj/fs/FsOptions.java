package io.vhostj.fs;

/**
 * What the export allows, as the command line chose it.
 *
 * @param readOnly      every change refused with EROFS ({@code --readonly})
 * @param cache         name, attribute and data caching ({@code --cache})
 * @param readdirplus   READDIRPLUS offered (off with {@code --no-readdirplus})
 * @param xattr         extended attributes served (virtiofsd's default is off; {@code --xattr})
 * @param fileHandles   inodes the guest holds are kept as file handles, not open descriptors,
 *                      where the file system has them ({@code --inode-file-handles=prefer})
 * @param allowDirectIo the guest's O_DIRECT reaches the host file ({@code --allow-direct-io});
 *                      by default it is dropped, as both virtiofsds do: the host page cache
 *                      serves the guest's direct I/O
 */
public record FsOptions(boolean readOnly, CachePolicy cache, boolean readdirplus, boolean xattr, boolean fileHandles,
        boolean allowDirectIo) {
    /** virtiofsd's defaults: writable, cache=auto, READDIRPLUS, no xattrs, descriptors, O_DIRECT dropped. */
    public static FsOptions defaults() {
        return new FsOptions(false, CachePolicy.AUTO, true, false, false, false);
    }

    public FsOptions withReadOnly(boolean value) {
        return new FsOptions(value, cache, readdirplus, xattr, fileHandles, allowDirectIo);
    }

    public FsOptions withXattr(boolean value) {
        return new FsOptions(readOnly, cache, readdirplus, value, fileHandles, allowDirectIo);
    }

    public FsOptions withFileHandles(boolean value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, value, allowDirectIo);
    }

    public FsOptions withAllowDirectIo(boolean value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, fileHandles, value);
    }
}
