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
        return FsOptions.defaults().withFileHandles(FsOptions.FileHandles.PREFER);
    }

    @Test
    void shouldRefuseToStartWithoutFileHandlesOnlyWhenMandatory() throws Exception {
        java.nio.file.Path proc = java.nio.file.Path.of("/proc/sys"); // procfs has no file handles
        io.vhostj.fs.FsDevice mandatory = new io.vhostj.fs.FsDevice(proc,
                FsOptions.defaults().withFileHandles(FsOptions.FileHandles.MANDATORY), "t", 1, 64);
        io.vhostj.vhostuser.sys.NativeException e = assertThrows(io.vhostj.vhostuser.sys.NativeException.class,
                mandatory::open);
        assertTrue(e.getMessage().contains("--inode-file-handles=mandatory"), e.getMessage());
        io.vhostj.fs.FsDevice prefer = new io.vhostj.fs.FsDevice(proc,
                FsOptions.defaults().withFileHandles(FsOptions.FileHandles.PREFER), "t", 1, 64);
        prefer.open();
        assertFalse(prefer.usesFileHandles(), "prefer falls back to descriptors");
        prefer.reset();
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
