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
 * @param features      the FUSE features offered at INIT on request ({@code --writeback},
 *                      {@code --posix-acl}, {@code --killpriv-v2}, {@code --allow-mmap})
 */
public record FsOptions(boolean readOnly, CachePolicy cache, boolean readdirplus, boolean xattr,
        FileHandles fileHandles, boolean allowDirectIo, boolean announceSubmounts, IdMap uidMap, IdMap gidMap,
        XattrMap xattrMap, Features features) {
    public FsOptions {
        xattr |= xattrMap != null;
    }

    /**
     * What INIT offers on request, each only when the guest offers it too; all off by default,
     * as in virtiofsd.
     *
     * @param writeback  FUSE_WRITEBACK_CACHE ({@code --writeback}): the guest keeps dirty pages and
     *                   writes them back; a write-only open is opened read-write on the host (the
     *                   guest reads pages around partial writes) and O_APPEND is dropped there (the
     *                   guest computes where an append goes)
     * @param posixAcl   FUSE_POSIX_ACL with FUSE_DONT_MASK and FUSE_SETXATTR_EXT ({@code --posix-acl}):
     *                   the guest enforces ACLs, sends creations unmasked with its umask, and asks
     *                   for the setgid bit to go when a non-member sets an access ACL
     * @param killprivV2 FUSE_HANDLE_KILLPRIV_V2 ({@code --killpriv-v2}): we clear setuid/setgid on
     *                   writes, truncations and chowns when the guest says so
     * @param allowMmap  FUSE_DIRECT_IO_ALLOW_MMAP ({@code --allow-mmap}): shared mmap of a file
     *                   opened with FOPEN_DIRECT_IO ({@code --cache never|metadata})
     */
    public record Features(boolean writeback, boolean posixAcl, boolean killprivV2, boolean allowMmap) {
        public static final Features NONE = new Features(false, false, false, false);

        @Override
        public String toString() {
            StringBuilder b = new StringBuilder();
            for (String f : new String[] {writeback ? "writeback" : null, posixAcl ? "posix-acl" : null,
                    killprivV2 ? "killpriv-v2" : null, allowMmap ? "allow-mmap" : null}) {
                if (f != null) {
                    b.append(b.length() == 0 ? "" : ", ").append(f);
                }
            }
            return b.length() == 0 ? "none" : b.toString();
        }
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
                IdMap.identity(), null, Features.NONE);
    }

    public FsOptions withReadOnly(boolean value) {
        return new FsOptions(value, cache, readdirplus, xattr, fileHandles, allowDirectIo, announceSubmounts, uidMap,
                gidMap, xattrMap, features);
    }

    public FsOptions withCache(CachePolicy value) {
        return new FsOptions(readOnly, value, readdirplus, xattr, fileHandles, allowDirectIo, announceSubmounts, uidMap,
                gidMap, xattrMap, features);
    }

    public FsOptions withXattr(boolean value) {
        return new FsOptions(readOnly, cache, readdirplus, value, fileHandles, allowDirectIo, announceSubmounts,
                uidMap, gidMap, xattrMap, features);
    }

    public FsOptions withFileHandles(FileHandles value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, value, allowDirectIo, announceSubmounts, uidMap,
                gidMap, xattrMap, features);
    }

    public FsOptions withAllowDirectIo(boolean value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, fileHandles, value, announceSubmounts, uidMap,
                gidMap, xattrMap, features);
    }

    public FsOptions withIdMaps(IdMap uids, IdMap gids) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, fileHandles, allowDirectIo, announceSubmounts,
                uids, gids, xattrMap, features);
    }

    public FsOptions withXattrMap(XattrMap value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, fileHandles, allowDirectIo, announceSubmounts,
                uidMap, gidMap, value, features);
    }

    public FsOptions withAnnounceSubmounts(boolean value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, fileHandles, allowDirectIo, value, uidMap, gidMap,
                xattrMap, features);
    }

    public FsOptions withFeatures(Features value) {
        return new FsOptions(readOnly, cache, readdirplus, xattr, fileHandles, allowDirectIo, announceSubmounts, uidMap,
                gidMap, xattrMap, value);
    }
}
