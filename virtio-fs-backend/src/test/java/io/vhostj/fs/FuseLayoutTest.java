package io.vhostj.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/**
 * The FUSE layouts against {@code include/uapi/linux/fuse.h} (7.38): sizeof and offsetof of the
 * structs as a C compiler lays them out on x86_64, written down here as facts.
 */
class FuseLayoutTest {
    @Test
    void shouldSizeEveryStructAsTheKernelHeaderDoes() {
        assertEquals(40, Fuse.IN_HEADER_SIZE, "fuse_in_header");
        assertEquals(16, Fuse.OUT_HEADER_SIZE, "fuse_out_header");
        assertEquals(88, Fuse.ATTR_SIZE, "fuse_attr");
        assertEquals(128, Fuse.ENTRY_OUT_SIZE, "fuse_entry_out");
        assertEquals(104, Fuse.ATTR_OUT_SIZE, "fuse_attr_out");
        assertEquals(64, Fuse.INIT_IN_SIZE, "fuse_init_in");
        assertEquals(16, Fuse.INIT_IN_COMPAT_SIZE, "fuse_init_in before 7.36");
        assertEquals(64, Fuse.INIT_OUT_SIZE, "fuse_init_out");
        assertEquals(16, Fuse.GETATTR_IN_SIZE, "fuse_getattr_in");
        assertEquals(8, Fuse.OPEN_IN_SIZE, "fuse_open_in");
        assertEquals(16, Fuse.OPEN_OUT_SIZE, "fuse_open_out");
        assertEquals(40, Fuse.READ_IN_SIZE, "fuse_read_in");
        assertEquals(40, Fuse.WRITE_IN_SIZE, "fuse_write_in");
        assertEquals(8, Fuse.WRITE_OUT_SIZE, "fuse_write_out");
        assertEquals(24, Fuse.RELEASE_IN_SIZE, "fuse_release_in");
        assertEquals(24, Fuse.FLUSH_IN_SIZE, "fuse_flush_in");
        assertEquals(8, Fuse.FORGET_IN_SIZE, "fuse_forget_in");
        assertEquals(16, Fuse.FORGET_ONE_SIZE, "fuse_forget_one");
        assertEquals(8, Fuse.BATCH_FORGET_IN_SIZE, "fuse_batch_forget_in");
        assertEquals(80, Fuse.STATFS_OUT_SIZE, "fuse_kstatfs / fuse_statfs_out");
        assertEquals(24, Fuse.DIRENT_NAME, "fuse_dirent without its name");
        assertEquals(152, Fuse.DIRENTPLUS_NAME, "fuse_direntplus without its name");
        assertEquals(88, Fuse.SETATTR_IN_SIZE, "fuse_setattr_in");
        assertEquals(16, Fuse.MKNOD_IN_SIZE, "fuse_mknod_in");
        assertEquals(8, Fuse.MKDIR_IN_SIZE, "fuse_mkdir_in");
        assertEquals(8, Fuse.RENAME_IN_SIZE, "fuse_rename_in");
        assertEquals(16, Fuse.RENAME2_IN_SIZE, "fuse_rename2_in");
        assertEquals(8, Fuse.LINK_IN_SIZE, "fuse_link_in");
        assertEquals(16, Fuse.FSYNC_IN_SIZE, "fuse_fsync_in");
        assertEquals(16, Fuse.SETXATTR_IN_SIZE, "fuse_setxattr_in");
        assertEquals(8, Fuse.SETXATTR_IN_COMPAT_SIZE, "FUSE_COMPAT_SETXATTR_IN_SIZE");
        assertEquals(8, Fuse.GETXATTR_IN_SIZE, "fuse_getxattr_in");
        assertEquals(8, Fuse.GETXATTR_OUT_SIZE, "fuse_getxattr_out");
        assertEquals(24, Fuse.FILE_LOCK_SIZE, "fuse_file_lock");
        assertEquals(48, Fuse.LK_IN_SIZE, "fuse_lk_in");
        assertEquals(24, Fuse.LK_OUT_SIZE, "fuse_lk_out");
        assertEquals(8, Fuse.ACCESS_IN_SIZE, "fuse_access_in");
        assertEquals(16, Fuse.CREATE_IN_SIZE, "fuse_create_in");
        assertEquals(8, Fuse.INTERRUPT_IN_SIZE, "fuse_interrupt_in");
        assertEquals(32, Fuse.FALLOCATE_IN_SIZE, "fuse_fallocate_in");
        assertEquals(24, Fuse.LSEEK_IN_SIZE, "fuse_lseek_in");
        assertEquals(8, Fuse.LSEEK_OUT_SIZE, "fuse_lseek_out");
        assertEquals(56, Fuse.COPY_FILE_RANGE_IN_SIZE, "fuse_copy_file_range_in");
        assertEquals(8, Fuse.SYNCFS_IN_SIZE, "fuse_syncfs_in");
    }

    @Test
    void shouldPlaceFieldsAtTheKernelHeadersOffsets() {
        assertEquals(36, Fuse.IN_TOTAL_EXTLEN, "fuse_in_header.total_extlen");
        assertEquals(84, Fuse.ATTR_FLAGS, "fuse_attr.flags");
        assertEquals(40, Fuse.ENTRY_ATTR, "fuse_entry_out.attr");
        assertEquals(16, Fuse.ATTR_OUT_ATTR, "fuse_attr_out.attr");
        assertEquals(20, Fuse.INIT_OUT_MAX_WRITE, "fuse_init_out.max_write");
        assertEquals(28, Fuse.INIT_OUT_MAX_PAGES, "fuse_init_out.max_pages");
        assertEquals(32, Fuse.INIT_OUT_FLAGS2, "fuse_init_out.flags2");
        assertEquals(24, Fuse.READ_IN_LOCK_OWNER, "fuse_read_in.lock_owner");
        assertEquals(32, Fuse.READ_IN_FLAGS, "fuse_read_in.flags");
        assertEquals(16, Fuse.FLUSH_IN_LOCK_OWNER, "fuse_flush_in.lock_owner");
        assertEquals(16, Fuse.RELEASE_IN_LOCK_OWNER, "fuse_release_in.lock_owner");
        assertEquals(16, Fuse.LK_IN_LOCK, "fuse_lk_in.lk");
        assertEquals(40, Fuse.LK_IN_LK_FLAGS, "fuse_lk_in.lk_flags");
        assertEquals(40, Fuse.STATFS_BSIZE, "fuse_kstatfs.bsize");
        assertEquals(48, Fuse.STATFS_FRSIZE, "fuse_kstatfs.frsize");
        assertEquals(64, Fuse.SETATTR_IN_CTIMENSEC, "fuse_setattr_in.ctimensec");
        assertEquals(68, Fuse.SETATTR_IN_MODE, "fuse_setattr_in.mode");
        assertEquals(76, Fuse.SETATTR_IN_UID, "fuse_setattr_in.uid");
        assertEquals(80, Fuse.SETATTR_IN_GID, "fuse_setattr_in.gid");
        assertEquals(48, Fuse.COPY_IN_FLAGS, "fuse_copy_file_range_in.flags");
        assertEquals(128, Fuse.DIRENTPLUS_DIRENT, "fuse_direntplus.dirent");
        assertEquals(16, Fuse.LSEEK_IN_WHENCE, "fuse_lseek_in.whence");
        assertEquals(24, Fuse.FALLOCATE_IN_MODE, "fuse_fallocate_in.mode");
        assertEquals(12, Fuse.CREATE_IN_OPEN_FLAGS, "fuse_create_in.open_flags");
    }

    @Test
    void shouldCopyTheLargestFixedArgumentWhole() {
        for (int opcode = 0; opcode <= Fuse.TMPFILE; opcode++) {
            assertEquals(true, Fuse.argumentSize(opcode) <= FuseRequest.MAX_ARGUMENT, "opcode " + opcode);
        }
        assertEquals(true, Fuse.INIT_IN_SIZE <= FuseRequest.MAX_ARGUMENT, "the full fuse_init_in");
    }

    @Test
    void shouldKnowEachOpcodesFixedArgument() {
        assertEquals(Fuse.READ_IN_SIZE, Fuse.argumentSize(Fuse.READDIRPLUS));
        assertEquals(Fuse.INIT_IN_COMPAT_SIZE, Fuse.argumentSize(Fuse.INIT), "what every 7.31+ guest sends at least");
        assertEquals(0, Fuse.argumentSize(Fuse.LOOKUP), "a name only");
        assertEquals(true, Fuse.isOneWay(Fuse.BATCH_FORGET));
        assertEquals(false, Fuse.isOneWay(Fuse.INIT));
    }
}
