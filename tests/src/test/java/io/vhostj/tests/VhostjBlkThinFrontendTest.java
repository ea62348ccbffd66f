package io.vhostj.tests;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.Random;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.bench.BlkClient;
import io.vhostj.blk.Aio;
import io.vhostj.blk.BlkDevice;
import io.vhostj.blk.ThinBackingStore;
import io.vhostj.blk.VirtioBlk;
import io.vhostj.devmapper.ThinPool;
import io.vhostj.devmapper.ThinVolume;
import io.vhostj.vhostuser.sys.Native;

/**
 * vhostj's blk backend on a thin device ({@code --thin}), driven by vhostj's frontend over a real
 * socket: writes across pool blocks, unmapped blocks reading zeros, DISCARD and WRITE_ZEROES
 * returning blocks to the pool, and a FLUSH making writes survive a reopen of the pool.
 */
class VhostjBlkThinFrontendTest {
    private static final int MIB = 1 << 20;
    private static final long TIMEOUT = 5_000_000_000L;

    @TempDir
    Path dir;
    private ServedDevice server;
    private ThinBackingStore store;

    private Path start(Path pool, int id) throws Exception {
        store = new ThinBackingStore(ThinVolume.open(pool, id, false));
        BlkDevice device = new BlkDevice(store, 2, 256, 512, "thin", false, Aio.IO_URING);
        Path socket = dir.resolve("blk.sock");
        server = new ServedDevice(device, socket);
        return socket;
    }

    private void stopServing() throws InterruptedException {
        if (server != null) {
            server.close();
            store.close();
            server = null;
        }
    }

    @AfterEach
    void stop() throws InterruptedException {
        stopServing();
    }

    @Test
    void shouldServeAThinDeviceAndKeepWhatAFlushCovered() throws Exception {
        Path pool = dir.resolve("pool");
        try (ThinPool p = ThinPool.create(pool, 64L * MIB, 64 << 10, null)) {
            p.createThin(1, 16L * MIB);
        }
        byte[] data = new byte[192 * 1024];
        new Random(5).nextBytes(data);
        long at = 3L * MIB + 4096; // not block-aligned: three partial or whole 64 KiB blocks
        try (BlkClient blk = BlkClient.connect(start(pool, 1), 64, 2, 256 * 1024)) {
            assertEquals(16L * MIB, blk.capacityBytes());
            for (int i = 0; i < 256 * 1024; i += 8) {
                Native.putLong(blk.data(0) + i, -1L);
            }
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_IN, 0, 256 * 1024, TIMEOUT));
            for (int i = 0; i < 256 * 1024; i += 4096) {
                assertEquals(0, Native.getLong(blk.data(0) + i), "unmapped blocks read as zeros");
            }
            Native.copyFromArray(data, 0, blk.data(0), data.length);
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_OUT, at, data.length, TIMEOUT));
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_FLUSH, 0, 0, TIMEOUT));
            assertEquals(VirtioBlk.S_IOERR, blk.syncRequest(VirtioBlk.T_OUT, 16L * MIB - 512, 1024, TIMEOUT),
                    "straddling the end");
            // WRITE_ZEROES over 8..10 MiB after writing there: whole blocks unmapped again
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_OUT, 8L * MIB, 256 * 1024, TIMEOUT));
            putSegment(blk.data(0), 8L * MIB / 512, 2L * MIB / 512, VirtioBlk.DWZ_F_UNMAP);
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_WRITE_ZEROES, 0, VirtioBlk.DWZ_SEGMENT_SIZE, TIMEOUT));
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_IN, 8L * MIB, 4096, TIMEOUT));
            assertEquals(0, Native.getLong(blk.data(0)), "zeroed");
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_FLUSH, 0, 0, TIMEOUT));
        }
        stopServing();
        try (ThinPool p = ThinPool.open(pool)) {
            assertEquals(4, p.list().get(0).mappedBlocks(), "the 192 KiB write at 3 MiB + 4 KiB touches 4 blocks");
            assertEquals(java.util.List.of(), p.check());
        }
        try (BlkClient blk = BlkClient.connect(start(pool, 1), 64, 2, 256 * 1024)) {
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_IN, at, data.length, TIMEOUT));
            byte[] back = new byte[data.length];
            Native.copyToArray(blk.data(0), back, 0, back.length);
            assertArrayEquals(data, back, "what the FLUSH covered is there after a reopen");
            // DISCARD of the whole device: every block goes back
            putSegment(blk.data(0), 0, 16L * MIB / 512, 0);
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_DISCARD, 0, VirtioBlk.DWZ_SEGMENT_SIZE, TIMEOUT));
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_FLUSH, 0, 0, TIMEOUT));
        }
        stopServing();
        try (ThinPool p = ThinPool.open(pool)) {
            assertEquals(0, p.status().usedBlocks(), "discard returned every block");
        }
    }

    private static void putSegment(long at, long sector, long sectors, int flags) {
        Native.putLong(at + VirtioBlk.DWZ_SECTOR, sector);
        Native.putInt(at + VirtioBlk.DWZ_NUM_SECTORS, (int) sectors);
        Native.putInt(at + VirtioBlk.DWZ_FLAGS, flags);
    }
}
