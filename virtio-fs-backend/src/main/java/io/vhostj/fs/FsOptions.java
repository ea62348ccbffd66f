package io.vhostj.fs;

/**
 * What the export allows, as the command line chose it.
 *
 * @param readOnly      every change refused with EROFS ({@code --readonly})
 * @param cache         name, attribute and data caching ({@code --cache})
 * @param readdirplus   READDIRPLUS offered (off with {@code --no-readdirplus})
 * @param xattr         extended attributes served (virtiofsd's default is off; {@code --xattr})
 * @param fileHandles   whether inodes the guest holds are kept as file handles, not open
 *                      descriptors ({@code --inode-file-handles})
 * @param allowDirectIo the guest's O_DIRECT reaches the host file ({@code --allow-direct-io});
 *                      by default it is dropped, as both virtiofsds do: the host page cache
 *                      serves the guest's direct I/O
 * @param announceSubmounts a directory on another mount than its parent is announced to the
 *                      guest as a submount ({@code --announce-submounts})
 * @param uidMap        UID translation ({@code --translate-uid})
 * @param gidMap        GID translation ({@code --translate-gid})
 * @param xattrMap      xattr names translated between guest and host ({@code --xattrmap}); null:
 *                      names pass as they are. A map turns xattrs on, as in virtiofsd, where
 *                      {@code --xattrmap} implies {@code --xattr}
 */
public record FsOptions(boolean readOnly, CachePolicy cache, boolean readdirplus, boolean xattr,
        FileHandles fileHandles, boolean allowDirectIo, boolean announceSubmounts, IdMap uidMap, IdMap gidMap,
        XattrMap xattrMap) {
    public FsOptions {
        xattr |= xattrMap != null;
    }

    /** {@code --inode-file-handles}. */
    public enum FileHandles {
        /** An O_PATH descriptor per inode. */
        NEVER,
        /** File handles where the file system and CAP_DAC_READ_SEARCH allow, descriptors elsewhere. */
        PREFER,
        /** File handles or nothing: the export refuses to start, a lookup without one fails. */
        MANDATORY;

        public static FileHandles parse(String value) {
            return switch (value == null ? "never" : value) {
                case "never" -> NEVER;
                case "prefer" -> PREFER;
                case "mandatory" -> MANDATORY;
                default -> throw new IllegalArgumentException(
                        "--inode-file-handles must be never, prefer or mandatory, not " + value);
            };
        }
    }

    /** virtiofsd's defaults: writable, cache=auto, READDIRPLUS, no xattrs, descriptors, O_DIRECT dropped. */
    public static FsOptions defaults() {
        return new FsOptions(false, CachePolicy.AUTO, true, false, FileHandles.NEVER, false, false, IdMap.identity(),
                IdMap.identity(), null);
    }

    public FsOptions withReadOnly(boolean value) {
        return new FsOptions(value, cache, readdirplus, xattr, fileHandles, allowDirectIo, announceSubmounts, uidMap,
                gidMap, xattrMap);
    }

    public FsOptions withXattr(boolean value) {
        return new FsOptions(readOnly, cache, readdirplus, value, fileHandles, allowDirectIo, announceSubmounts,
                uidMap, gidMap, xattrMap);
    }

    public FsOptions withFileHandles(FileHandles value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, value, allowDirectIo, announceSubmounts, uidMap,
                gidMap, xattrMap);
    }

    public FsOptions withAllowDirectIo(boolean value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, fileHandles, value, announceSubmounts, uidMap,
                gidMap, xattrMap);
    }

    public FsOptions withIdMaps(IdMap uids, IdMap gids) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, fileHandles, allowDirectIo, announceSubmounts,
                uids, gids, xattrMap);
    }

    public FsOptions withXattrMap(XattrMap value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, fileHandles, allowDirectIo, announceSubmounts,
                uidMap, gidMap, value);
    }

    public FsOptions withAnnounceSubmounts(boolean value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, fileHandles, allowDirectIo, value, uidMap, gidMap,
                xattrMap);
    }
}
