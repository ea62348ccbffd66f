package io.vhostj.blk;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.vhostuser.virtq.VirtioFeatures;

class BlkDeviceTest {
    @TempDir
    Path dir;

    private FileBackingStore store(boolean readOnly) throws Exception {
        Path image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        return FileBackingStore.open(image, readOnly, false);
    }

    @Test
    void shouldLetTheDriverSwitchTheCacheModeThroughTheWritebackByteOnly() throws Exception {
        try (FileBackingStore store = store(false)) {
            BlkDevice device = new BlkDevice(store, 1, 256, 512, "s", false);
            assertTrue(VirtioFeatures.has(device.features(), VirtioBlk.F_CONFIG_WCE));
            assertEquals(1, device.config()[VirtioBlk.CFG_WRITEBACK]);
            assertFalse(device.writeThrough());

            assertTrue(device.writeConfig(VirtioBlk.CFG_WRITEBACK, new byte[] {0}));
            assertTrue(device.writeThrough());
            assertEquals(0, device.config()[VirtioBlk.CFG_WRITEBACK]);
            assertTrue(device.writeConfig(VirtioBlk.CFG_WRITEBACK, new byte[] {1}));
            assertFalse(device.writeThrough());

            assertFalse(device.writeConfig(VirtioBlk.CFG_WRITEBACK, new byte[] {2}), "not a cache mode");
            assertFalse(device.writeConfig(VirtioBlk.CFG_CAPACITY, new byte[] {0}), "capacity is read-only");
            assertFalse(device.writeConfig(VirtioBlk.CFG_WRITEBACK, new byte[] {0, 0}), "one byte only");
            assertFalse(device.writeThrough());
        }
    }

    @Test
    void shouldNotOfferCacheControlWhereWritesCannotHappenOrFlushIsIgnored() throws Exception {
        try (FileBackingStore store = store(true)) {
            BlkDevice readOnly = new BlkDevice(store, 1, 256, 512, "s", false);
            assertFalse(VirtioFeatures.has(readOnly.features(), VirtioBlk.F_CONFIG_WCE));
            assertFalse(readOnly.writeConfig(VirtioBlk.CFG_WRITEBACK, new byte[] {0}));
        }
        try (FileBackingStore store = store(false)) {
            BlkDevice volatileCache = new BlkDevice(store, 1, 256, 512, "s", true);
            assertFalse(VirtioFeatures.has(volatileCache.features(), VirtioBlk.F_CONFIG_WCE));
        }
    }
}
