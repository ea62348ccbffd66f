package io.vhostj.vhostuser.sys;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** statx's answer, rewritten in struct stat's layout, is what fstatat says, field by field. */
class FsIoStatxTest {
    private final long stat = Native.allocate(FsIo.STAT_SIZE);
    private final long viaStatx = Native.allocate(FsIo.STAT_SIZE);
    private final long scratch = Native.allocate(FsIo.STATX_SIZE);

    @TempDir
    Path dir;

    @AfterEach
    void free() {
        Native.free(stat);
        Native.free(viaStatx);
        Native.free(scratch);
    }

    @Test
    void shouldMatchFstatatForAFileADirectoryASymlinkAndADevice() throws Exception {
        Path file = Files.writeString(dir.resolve("f"), "twelve bytes");
        Path link = Files.createSymbolicLink(dir.resolve("l"), Path.of("f"));
        long fileMount = 0;
        for (Path p : new Path[] {file, dir, link, Path.of("/dev/null")}) {
            int fd = Native.check("open", Native.LIBC.open(p.toString(), FsIo.O_PATH | FsIo.O_NOFOLLOW, 0));
            try {
                Native.zero(stat, FsIo.STAT_SIZE);
                Native.zero(viaStatx, FsIo.STAT_SIZE);
                FsIo.fstatat(fd, empty(), stat, FsIo.AT_EMPTY_PATH | FsIo.AT_SYMLINK_NOFOLLOW);
                long mount = FsIo.fstatWithMountId(fd, viaStatx, scratch);
                for (int off : new int[] {FsIo.ST_DEV, FsIo.ST_INO, FsIo.ST_NLINK, FsIo.ST_RDEV, FsIo.ST_SIZE,
                        FsIo.ST_BLKSIZE, FsIo.ST_BLOCKS, FsIo.ST_ATIME, FsIo.ST_ATIME_NSEC, FsIo.ST_MTIME,
                        FsIo.ST_MTIME_NSEC, FsIo.ST_CTIME, FsIo.ST_CTIME_NSEC}) {
                    assertEquals(Native.getLong(stat + off), Native.getLong(viaStatx + off), p + " at offset " + off);
                }
                for (int off : new int[] {FsIo.ST_MODE, FsIo.ST_UID, FsIo.ST_GID}) {
                    assertEquals(Native.getInt(stat + off), Native.getInt(viaStatx + off), p + " at offset " + off);
                }
                assertNotEquals(0, mount, "a mount id (kernel 5.8+)");
                if (p == file) {
                    fileMount = mount;
                } else if (p == dir) {
                    assertEquals(fileMount, mount, "a file and its directory are on one mount");
                }
            } finally {
                Native.LIBC.close(fd);
            }
        }
        assertEquals("twelve bytes".getBytes(StandardCharsets.UTF_8).length, Files.size(file));
    }

    @Test
    void shouldEncodeDevicesAsGlibcDoes() {
        assertEquals(0x0103L, FsIo.makedev(1, 3)); // /dev/null
        assertEquals((0x123L << 8) | 0x45 | ((0x6700L) << 12) | ((0x89000L & 0xffff_f000L) << 32),
                FsIo.makedev(0x89123, 0x6745));
    }

    private static final long EMPTY = Native.allocate(8);

    private static long empty() {
        Native.putLong(EMPTY, 0);
        return EMPTY;
    }
}
