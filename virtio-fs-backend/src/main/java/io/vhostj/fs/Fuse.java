package io.vhostj.fs;

/**
 * The FUSE wire protocol as the Linux driver speaks it over virtio-fs ({@code
 * include/uapi/linux/fuse.h}, protocol 7.38; older guests negotiate down to {@link #MIN_MINOR}).
 * Little-endian, every struct padded to 8 bytes. Each struct is given as field offsets and a
 * size that is its last field's end, so {@code FuseLayoutTest} can hold both against the header.
 *
 * <p>A request is a {@code fuse_in_header} followed by the opcode's argument struct and, for
 * some opcodes, NUL-terminated names or data, all in the chain's device-readable part. The reply
 * is a {@code fuse_out_header} and the opcode's result in the device-writable part.
 */
public final class Fuse {
    public static final int KERNEL_VERSION = 7;
    /**
     * The minor version we speak. 7.39 adds FUSE_DIRECT_IO_ALLOW_MMAP, which the driver reads
     * from INIT's flags2 whatever minor was agreed (offered with --allow-mmap), and FUSE_STATX
     * (opcode 52), which the driver sends whatever minor was agreed and, answered ENOSYS, stops
     * sending for GETATTR: neither needs us to say 39.
     */
    public static final int KERNEL_MINOR_VERSION = 38;
    /** The oldest minor version we accept from a guest (Linux 5.4's virtio-fs spoke 7.31). */
    public static final int MIN_MINOR = 31;
    public static final long ROOT_ID = 1;

    // ---- opcodes ------------------------------------------------------------------------------
    public static final int LOOKUP = 1;
    public static final int FORGET = 2; // no reply
    public static final int GETATTR = 3;
    public static final int SETATTR = 4;
    public static final int READLINK = 5;
    public static final int SYMLINK = 6;
    public static final int MKNOD = 8;
    public static final int MKDIR = 9;
    public static final int UNLINK = 10;
    public static final int RMDIR = 11;
    public static final int RENAME = 12;
    public static final int LINK = 13;
    public static final int OPEN = 14;
    public static final int READ = 15;
    public static final int WRITE = 16;
    public static final int STATFS = 17;
    public static final int RELEASE = 18;
    public static final int FSYNC = 20;
    public static final int SETXATTR = 21;
    public static final int GETXATTR = 22;
    public static final int LISTXATTR = 23;
    public static final int REMOVEXATTR = 24;
    public static final int FLUSH = 25;
    public static final int INIT = 26;
    public static final int OPENDIR = 27;
    public static final int READDIR = 28;
    public static final int RELEASEDIR = 29;
    public static final int FSYNCDIR = 30;
    public static final int GETLK = 31;
    public static final int SETLK = 32;
    public static final int SETLKW = 33;
    public static final int ACCESS = 34;
    public static final int CREATE = 35;
    public static final int INTERRUPT = 36;
    public static final int BMAP = 37;
    public static final int DESTROY = 38;
    public static final int IOCTL = 39;
    public static final int POLL = 40;
    public static final int NOTIFY_REPLY = 41;
    public static final int BATCH_FORGET = 42; // no reply
    public static final int FALLOCATE = 43;
    public static final int READDIRPLUS = 44;
    public static final int RENAME2 = 45;
    public static final int LSEEK = 46;
    public static final int COPY_FILE_RANGE = 47;
    public static final int SETUPMAPPING = 48;
    public static final int REMOVEMAPPING = 49;
    public static final int SYNCFS = 50;
    public static final int TMPFILE = 51;

    // ---- struct fuse_in_header (40) -------------------------------------------------------------
    public static final int IN_LEN = 0;          // u32: the whole request, header included
    public static final int IN_OPCODE = 4;       // u32
    public static final int IN_UNIQUE = 8;       // u64
    public static final int IN_NODEID = 16;      // u64
    public static final int IN_UID = 24;         // u32
    public static final int IN_GID = 28;         // u32
    public static final int IN_PID = 32;         // u32
    public static final int IN_TOTAL_EXTLEN = 36; // u16, in 8-byte units
    public static final int IN_PADDING = 38;     // u16
    public static final int IN_HEADER_SIZE = IN_PADDING + 2;

    // ---- request extensions (7.38): the last total_extlen * 8 bytes of a request --------------
    // struct fuse_ext_header: u32 size (with this header, a multiple of 8), u32 type
    public static final int EXT_SIZE = 0;
    public static final int EXT_TYPE = 4;
    public static final int EXT_HEADER_SIZE = 8;
    /** FUSE_EXT_GROUPS: struct fuse_supp_groups { u32 nr_groups; u32 groups[]; } follows. */
    public static final int EXT_GROUPS = 2;
    public static final int SUPP_GROUPS_NR = 0;
    public static final int SUPP_GROUPS_FIRST = 4;

    // ---- struct fuse_out_header (16) ------------------------------------------------------------
    public static final int OUT_LEN = 0;         // u32: the whole reply, header included
    public static final int OUT_ERROR = 4;       // i32: 0 or a negated errno
    public static final int OUT_UNIQUE = 8;      // u64
    public static final int OUT_HEADER_SIZE = OUT_UNIQUE + 8;

    // ---- struct fuse_attr (88) ----------------------------------------------------------------
    public static final int ATTR_INO = 0;
    public static final int ATTR_SIZE_BYTES = 8;
    public static final int ATTR_BLOCKS = 16;
    public static final int ATTR_ATIME = 24;
    public static final int ATTR_MTIME = 32;
    public static final int ATTR_CTIME = 40;
    public static final int ATTR_ATIMENSEC = 48;
    public static final int ATTR_MTIMENSEC = 52;
    public static final int ATTR_CTIMENSEC = 56;
    public static final int ATTR_MODE = 60;
    public static final int ATTR_NLINK = 64;
    public static final int ATTR_UID = 68;
    public static final int ATTR_GID = 72;
    public static final int ATTR_RDEV = 76;
    public static final int ATTR_BLKSIZE = 80;
    public static final int ATTR_FLAGS = 84;
    public static final int ATTR_SIZE = ATTR_FLAGS + 4;

    // ---- struct fuse_entry_out (128) ------------------------------------------------------------
    public static final int ENTRY_NODEID = 0;
    public static final int ENTRY_GENERATION = 8;
    public static final int ENTRY_VALID = 16;
    public static final int ENTRY_ATTR_VALID = 24;
    public static final int ENTRY_VALID_NSEC = 32;
    public static final int ENTRY_ATTR_VALID_NSEC = 36;
    public static final int ENTRY_ATTR = 40;
    public static final int ENTRY_OUT_SIZE = ENTRY_ATTR + ATTR_SIZE;

    // ---- struct fuse_attr_out (104) -------------------------------------------------------------
    public static final int ATTR_OUT_VALID = 0;
    public static final int ATTR_OUT_VALID_NSEC = 8;
    public static final int ATTR_OUT_ATTR = 16;
    public static final int ATTR_OUT_SIZE = ATTR_OUT_ATTR + ATTR_SIZE;

    // ---- struct fuse_init_in (64; 16 before 7.36) / fuse_init_out (64) --------------------------
    public static final int INIT_IN_MAJOR = 0;
    public static final int INIT_IN_MINOR = 4;
    public static final int INIT_IN_MAX_READAHEAD = 8;
    public static final int INIT_IN_FLAGS = 12;
    public static final int INIT_IN_FLAGS2 = 16;  // 7.36+
    public static final int INIT_IN_COMPAT_SIZE = INIT_IN_FLAGS + 4;
    public static final int INIT_IN_SIZE = INIT_IN_FLAGS2 + 4 + 11 * 4;
    public static final int INIT_OUT_MAJOR = 0;
    public static final int INIT_OUT_MINOR = 4;
    public static final int INIT_OUT_MAX_READAHEAD = 8;
    public static final int INIT_OUT_FLAGS = 12;
    public static final int INIT_OUT_MAX_BACKGROUND = 16;      // u16
    public static final int INIT_OUT_CONGESTION_THRESHOLD = 18; // u16
    public static final int INIT_OUT_MAX_WRITE = 20;
    public static final int INIT_OUT_TIME_GRAN = 24;
    public static final int INIT_OUT_MAX_PAGES = 28;           // u16
    public static final int INIT_OUT_MAP_ALIGNMENT = 30;       // u16
    public static final int INIT_OUT_FLAGS2 = 32;
    public static final int INIT_OUT_SIZE = INIT_OUT_FLAGS2 + 4 + 7 * 4;

    // ---- small argument structs -----------------------------------------------------------------
    /** fuse_getattr_in: u32 getattr_flags, u32 dummy, u64 fh. */
    public static final int GETATTR_IN_FLAGS = 0;
    public static final int GETATTR_IN_FH = 8;
    public static final int GETATTR_IN_SIZE = GETATTR_IN_FH + 8;
    /** fuse_open_in: u32 flags, u32 open_flags. Also OPENDIR. */
    public static final int OPEN_IN_FLAGS = 0;
    public static final int OPEN_IN_OPEN_FLAGS = 4;
    public static final int OPEN_IN_SIZE = OPEN_IN_OPEN_FLAGS + 4;
    /** fuse_open_out: u64 fh, u32 open_flags, u32 padding. */
    public static final int OPEN_OUT_FH = 0;
    public static final int OPEN_OUT_OPEN_FLAGS = 8;
    public static final int OPEN_OUT_SIZE = OPEN_OUT_OPEN_FLAGS + 4 + 4;
    /** fuse_read_in: u64 fh, u64 offset, u32 size, u32 read_flags, u64 lock_owner, u32 flags, u32 padding. Also READDIR(PLUS). */
    public static final int READ_IN_FH = 0;
    public static final int READ_IN_OFFSET = 8;
    public static final int READ_IN_SIZE_BYTES = 16;
    public static final int READ_IN_READ_FLAGS = 20;
    public static final int READ_IN_LOCK_OWNER = 24;
    public static final int READ_IN_FLAGS = 32;
    public static final int READ_IN_SIZE = READ_IN_FLAGS + 4 + 4;
    /** fuse_write_in: like fuse_read_in with write_flags. */
    public static final int WRITE_IN_FH = 0;
    public static final int WRITE_IN_OFFSET = 8;
    public static final int WRITE_IN_SIZE_BYTES = 16;
    public static final int WRITE_IN_WRITE_FLAGS = 20;
    public static final int WRITE_IN_LOCK_OWNER = 24;
    public static final int WRITE_IN_FLAGS = 32;
    public static final int WRITE_IN_SIZE = WRITE_IN_FLAGS + 4 + 4;
    /** fuse_write_out: u32 size, u32 padding. */
    public static final int WRITE_OUT_SIZE_BYTES = 0;
    public static final int WRITE_OUT_SIZE = WRITE_OUT_SIZE_BYTES + 4 + 4;
    /** fuse_open_out.open_flags bits. */
    public static final int FOPEN_DIRECT_IO = 1;
    public static final int FOPEN_KEEP_CACHE = 2;
    /** fuse_release_in: u64 fh, u32 flags, u32 release_flags, u64 lock_owner. Also RELEASEDIR. */
    public static final int RELEASE_IN_FH = 0;
    public static final int RELEASE_IN_FLAGS = 8;
    public static final int RELEASE_IN_RELEASE_FLAGS = 12;
    public static final int RELEASE_IN_LOCK_OWNER = 16;
    public static final int RELEASE_IN_SIZE = RELEASE_IN_LOCK_OWNER + 8;
    /** fuse_flush_in: u64 fh, u32 unused, u32 padding, u64 lock_owner. */
    public static final int FLUSH_IN_FH = 0;
    public static final int FLUSH_IN_LOCK_OWNER = 16;
    public static final int FLUSH_IN_SIZE = FLUSH_IN_LOCK_OWNER + 8;
    /** fuse_forget_in: u64 nlookup. */
    public static final int FORGET_IN_NLOOKUP = 0;
    public static final int FORGET_IN_SIZE = FORGET_IN_NLOOKUP + 8;
    /** fuse_batch_forget_in: u32 count, u32 dummy; then count × fuse_forget_one (u64 nodeid, u64 nlookup). */
    public static final int BATCH_FORGET_IN_COUNT = 0;
    public static final int BATCH_FORGET_IN_SIZE = BATCH_FORGET_IN_COUNT + 4 + 4;
    public static final int FORGET_ONE_NODEID = 0;
    public static final int FORGET_ONE_NLOOKUP = 8;
    public static final int FORGET_ONE_SIZE = FORGET_ONE_NLOOKUP + 8;
    /** fuse_kstatfs (= fuse_statfs_out). */
    public static final int STATFS_BLOCKS = 0;
    public static final int STATFS_BFREE = 8;
    public static final int STATFS_BAVAIL = 16;
    public static final int STATFS_FILES = 24;
    public static final int STATFS_FFREE = 32;
    public static final int STATFS_BSIZE = 40;
    public static final int STATFS_NAMELEN = 44;
    public static final int STATFS_FRSIZE = 48;
    public static final int STATFS_OUT_SIZE = STATFS_FRSIZE + 4 + 4 + 6 * 4;
    /** fuse_dirent: u64 ino, u64 off, u32 namelen, u32 type, then the name, padded to 8. */
    public static final int DIRENT_INO = 0;
    public static final int DIRENT_OFF = 8;
    public static final int DIRENT_NAMELEN = 16;
    public static final int DIRENT_TYPE = 20;
    public static final int DIRENT_NAME = 24;
    /** fuse_direntplus: a fuse_entry_out, then a fuse_dirent. */
    public static final int DIRENTPLUS_DIRENT = ENTRY_OUT_SIZE;
    public static final int DIRENTPLUS_NAME = DIRENTPLUS_DIRENT + DIRENT_NAME;
    /** fuse_setattr_in. */
    public static final int SETATTR_IN_VALID = 0;
    public static final int SETATTR_IN_FH = 8;
    public static final int SETATTR_IN_SIZE_BYTES = 16;
    public static final int SETATTR_IN_LOCK_OWNER = 24;
    public static final int SETATTR_IN_ATIME = 32;
    public static final int SETATTR_IN_MTIME = 40;
    public static final int SETATTR_IN_CTIME = 48;
    public static final int SETATTR_IN_ATIMENSEC = 56;
    public static final int SETATTR_IN_MTIMENSEC = 60;
    public static final int SETATTR_IN_CTIMENSEC = 64;
    public static final int SETATTR_IN_MODE = 68;
    public static final int SETATTR_IN_UID = 76;
    public static final int SETATTR_IN_GID = 80;
    public static final int SETATTR_IN_SIZE = SETATTR_IN_GID + 4 + 4;
    /** fuse_mknod_in: u32 mode, u32 rdev, u32 umask, u32 padding; then the name. */
    public static final int MKNOD_IN_MODE = 0;
    public static final int MKNOD_IN_RDEV = 4;
    public static final int MKNOD_IN_UMASK = 8;
    public static final int MKNOD_IN_SIZE = MKNOD_IN_UMASK + 4 + 4;
    /** fuse_mkdir_in: u32 mode, u32 umask; then the name. */
    public static final int MKDIR_IN_MODE = 0;
    public static final int MKDIR_IN_UMASK = 4;
    public static final int MKDIR_IN_SIZE = MKDIR_IN_UMASK + 4;
    /** fuse_rename_in: u64 newdir; fuse_rename2_in: u64 newdir, u32 flags, u32 padding. Then two names. */
    public static final int RENAME_IN_NEWDIR = 0;
    public static final int RENAME_IN_SIZE = RENAME_IN_NEWDIR + 8;
    public static final int RENAME2_IN_FLAGS = 8;
    public static final int RENAME2_IN_SIZE = RENAME2_IN_FLAGS + 4 + 4;
    /** fuse_link_in: u64 oldnodeid; then the new name. */
    public static final int LINK_IN_OLDNODEID = 0;
    public static final int LINK_IN_SIZE = LINK_IN_OLDNODEID + 8;
    /** fuse_fsync_in: u64 fh, u32 fsync_flags, u32 padding. Also FSYNCDIR. */
    public static final int FSYNC_IN_FH = 0;
    public static final int FSYNC_IN_FLAGS = 8;
    public static final int FSYNC_IN_SIZE = FSYNC_IN_FLAGS + 4 + 4;
    /** fuse_setxattr_in: u32 size, u32 flags, u32 setxattr_flags, u32 padding (8 bytes without FUSE_SETXATTR_EXT). */
    public static final int SETXATTR_IN_SIZE_BYTES = 0;
    public static final int SETXATTR_IN_FLAGS = 4;
    public static final int SETXATTR_IN_SETXATTR_FLAGS = 8;
    public static final int SETXATTR_IN_COMPAT_SIZE = SETXATTR_IN_FLAGS + 4;
    public static final int SETXATTR_IN_SIZE = SETXATTR_IN_SETXATTR_FLAGS + 4 + 4;
    /** fuse_getxattr_in / fuse_getxattr_out: u32 size, u32 padding. Also LISTXATTR. */
    public static final int GETXATTR_SIZE_BYTES = 0;
    public static final int GETXATTR_IN_SIZE = GETXATTR_SIZE_BYTES + 4 + 4;
    public static final int GETXATTR_OUT_SIZE = GETXATTR_SIZE_BYTES + 4 + 4;
    /** fuse_file_lock: u64 start, u64 end, u32 type, u32 pid. */
    public static final int LOCK_START = 0;
    public static final int LOCK_END = 8;
    public static final int LOCK_TYPE = 16;
    public static final int LOCK_PID = 20;
    public static final int FILE_LOCK_SIZE = LOCK_PID + 4;
    /** fuse_lk_in: u64 fh, u64 owner, fuse_file_lock lk, u32 lk_flags, u32 padding; fuse_lk_out: fuse_file_lock. */
    public static final int LK_IN_FH = 0;
    public static final int LK_IN_OWNER = 8;
    public static final int LK_IN_LOCK = 16;
    public static final int LK_IN_LK_FLAGS = LK_IN_LOCK + FILE_LOCK_SIZE;
    public static final int LK_IN_SIZE = LK_IN_LK_FLAGS + 4 + 4;
    public static final int LK_OUT_SIZE = FILE_LOCK_SIZE;
    /** fuse_access_in: u32 mask, u32 padding. */
    public static final int ACCESS_IN_MASK = 0;
    public static final int ACCESS_IN_SIZE = ACCESS_IN_MASK + 4 + 4;
    /** fuse_create_in: u32 flags, u32 mode, u32 umask, u32 open_flags; then the name. Also TMPFILE. */
    public static final int CREATE_IN_FLAGS = 0;
    public static final int CREATE_IN_MODE = 4;
    public static final int CREATE_IN_UMASK = 8;
    public static final int CREATE_IN_OPEN_FLAGS = 12;
    public static final int CREATE_IN_SIZE = CREATE_IN_OPEN_FLAGS + 4;
    /** fuse_interrupt_in: u64 unique. */
    public static final int INTERRUPT_IN_UNIQUE = 0;
    public static final int INTERRUPT_IN_SIZE = INTERRUPT_IN_UNIQUE + 8;
    /** fuse_fallocate_in: u64 fh, u64 offset, u64 length, u32 mode, u32 padding. */
    public static final int FALLOCATE_IN_FH = 0;
    public static final int FALLOCATE_IN_OFFSET = 8;
    public static final int FALLOCATE_IN_LENGTH = 16;
    public static final int FALLOCATE_IN_MODE = 24;
    public static final int FALLOCATE_IN_SIZE = FALLOCATE_IN_MODE + 4 + 4;
    /** fuse_lseek_in: u64 fh, u64 offset, u32 whence, u32 padding; fuse_lseek_out: u64 offset. */
    public static final int LSEEK_IN_FH = 0;
    public static final int LSEEK_IN_OFFSET = 8;
    public static final int LSEEK_IN_WHENCE = 16;
    public static final int LSEEK_IN_SIZE = LSEEK_IN_WHENCE + 4 + 4;
    public static final int LSEEK_OUT_SIZE = 8;
    /** fuse_copy_file_range_in: u64 fh_in, off_in, nodeid_out, fh_out, off_out, len, flags. */
    public static final int COPY_IN_FH_IN = 0;
    public static final int COPY_IN_OFF_IN = 8;
    public static final int COPY_IN_NODEID_OUT = 16;
    public static final int COPY_IN_FH_OUT = 24;
    public static final int COPY_IN_OFF_OUT = 32;
    public static final int COPY_IN_LEN = 40;
    public static final int COPY_IN_FLAGS = 48;
    public static final int COPY_FILE_RANGE_IN_SIZE = COPY_IN_FLAGS + 8;
    /** fuse_syncfs_in: u64 padding. */
    public static final int SYNCFS_IN_SIZE = 8;

    /** The fixed argument struct each opcode carries after the in-header; -1: none or variable. */
    public static int argumentSize(int opcode) {
        return switch (opcode) {
            case GETATTR -> GETATTR_IN_SIZE;
            case SETATTR -> SETATTR_IN_SIZE;
            case MKNOD -> MKNOD_IN_SIZE;
            case MKDIR -> MKDIR_IN_SIZE;
            case RENAME -> RENAME_IN_SIZE;
            case RENAME2 -> RENAME2_IN_SIZE;
            case LINK -> LINK_IN_SIZE;
            case OPEN, OPENDIR -> OPEN_IN_SIZE;
            case READ, READDIR, READDIRPLUS -> READ_IN_SIZE;
            case WRITE -> WRITE_IN_SIZE;
            case RELEASE, RELEASEDIR -> RELEASE_IN_SIZE;
            case FSYNC, FSYNCDIR -> FSYNC_IN_SIZE;
            case GETXATTR, LISTXATTR -> GETXATTR_IN_SIZE;
            case FLUSH -> FLUSH_IN_SIZE;
            case INIT -> INIT_IN_COMPAT_SIZE;
            case GETLK, SETLK, SETLKW -> LK_IN_SIZE;
            case ACCESS -> ACCESS_IN_SIZE;
            case CREATE, TMPFILE -> CREATE_IN_SIZE;
            case INTERRUPT -> INTERRUPT_IN_SIZE;
            case FORGET -> FORGET_IN_SIZE;
            case BATCH_FORGET -> BATCH_FORGET_IN_SIZE;
            case FALLOCATE -> FALLOCATE_IN_SIZE;
            case LSEEK -> LSEEK_IN_SIZE;
            case COPY_FILE_RANGE -> COPY_FILE_RANGE_IN_SIZE;
            case SYNCFS -> SYNCFS_IN_SIZE;
            case SETXATTR -> SETXATTR_IN_COMPAT_SIZE;
            default -> 0; // LOOKUP, UNLINK, RMDIR, REMOVEXATTR, SYMLINK (names only), READLINK, STATFS, DESTROY
        };
    }

    /**
     * Whether no reply is sent: FORGET and BATCH_FORGET never get one, and INTERRUPT gets none
     * here (requests run to completion; libfuse does not answer INTERRUPT either).
     */
    public static boolean isOneWay(int opcode) {
        return opcode == FORGET || opcode == BATCH_FORGET || opcode == INTERRUPT;
    }

    private Fuse() {
    }
}
