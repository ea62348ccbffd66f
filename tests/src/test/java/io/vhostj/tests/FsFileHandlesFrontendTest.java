package io.vhostj.tests;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;

import org.junit.jupiter.api.Test;

import io.vhostj.bench.FuseClient;
import io.vhostj.fs.FsOptions;
import io.vhostj.fs.Fuse;

/**
 * {@link FsPassthroughFrontendTest}'s operations with inodes kept as file handles
 * ({@code --inode-file-handles=prefer}), and the point of it: looked-up inodes hold no descriptor.
 */
class FsFileHandlesFrontendTest extends FsPassthroughFrontendTest {
    @Override
    FsOptions baseOptions() {
        return FsOptions.defaults().withFileHandles(true);
    }

    @Test
    void shouldHoldNoDescriptorPerInode() throws Exception {
        try (FuseClient c = start()) {
            if (!device().usesFileHandles()) {
                System.err.println("\n!! SKIPPED: no file handles here (file system or CAP_DAC_READ_SEARCH)\n");
                org.junit.jupiter.api.Assumptions.abort("no file handles");
            }
            java.nio.file.Path many = Files.createDirectory(dir.resolve("shared").resolve("many"));
            for (int i = 0; i < 200; i++) {
                Files.writeString(many.resolve("f" + i), "x");
            }
            assertEquals(0, lookupForTest(c, Fuse.ROOT_ID, "many"));
            long node = io.vhostj.vhostuser.sys.Native.getLong(c.out() + 16 + Fuse.ENTRY_NODEID);
            for (int i = 0; i < 200; i++) {
                assertEquals(0, lookupForTest(c, node, "f" + i));
            }
            assertEquals(1, device().inodeDescriptors(), "only the root keeps a descriptor");
            assertEquals(202, device().heldDescriptors(), "yet every inode is held (root + many + 200)");
        }
    }
}
