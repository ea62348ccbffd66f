package io.vhostj.tests;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.bench.BlkClient;
import io.vhostj.blk.VirtioBlk;
import io.vhostj.vhostuser.sys.Native;

/**
 * vhostj's frontend driving a real third-party backend: qemu-storage-daemon's vhost-user-blk
 * export over a temporary file. Sectors written through the virtqueue must be on disk, and
 * read back through the virtqueue equal.
 */
class QemuStorageDaemonFrontendTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    @Test
    void shouldWriteSectorsAndReadThemBackThroughQemuStorageDaemon() throws Exception {
        Path image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(16 * MIB);
        }
        try (QemuStorageDaemon qsd = QemuStorageDaemon.start(image, dir.resolve("blk.sock"), true);
                BlkClient blk = BlkClient.connect(qsd.socket(), 64, 4, 64 * 1024)) {
            assertEquals(16 * MIB, blk.capacityBytes(), "capacity from GET_CONFIG");
            Random rnd = new Random(1);
            long[] offsets = {0, 8192, 65536, 7 * MIB + 1536, 16 * MIB - 4096};
            int[] lengths = {512, 4096, 65536, 1024, 4096};
            byte[][] written = new byte[offsets.length][];
            for (int i = 0; i < offsets.length; i++) {
                written[i] = new byte[lengths[i]];
                rnd.nextBytes(written[i]);
                Native.copyFromArray(written[i], 0, blk.data(0), lengths[i]);
                assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_OUT, offsets[i], lengths[i], 5_000_000_000L));
            }
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_FLUSH, 0, 0, 5_000_000_000L));

            // on disk, byte for byte
            try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
                for (int i = 0; i < offsets.length; i++) {
                    ByteBuffer b = ByteBuffer.allocate(lengths[i]);
                    ch.read(b, offsets[i]);
                    assertArrayEquals(written[i], b.array(), "file contents at " + offsets[i]);
                }
            }
            // and back through the ring
            for (int i = 0; i < offsets.length; i++) {
                assertEquals(VirtioBlk.S_OK, syncRead(blk, offsets[i], lengths[i]));
                byte[] back = new byte[lengths[i]];
                Native.copyToArray(blk.data(0), back, 0, lengths[i]);
                assertArrayEquals(written[i], back, "read back at " + offsets[i]);
            }
            // a read past the end of the disk is an I/O error, not a crash
            assertEquals(VirtioBlk.S_IOERR, syncRead(blk, 16 * MIB, 4096));
            assertTrue(qsd.isAlive(), "qemu-storage-daemon must survive: " + qsd.log());
        }
    }

    private static int syncRead(BlkClient blk, long offset, int length) throws Exception {
        Native.zero(blk.data(0), length);
        return blk.syncRequest(VirtioBlk.T_IN, offset, length, 5_000_000_000L);
    }

    @Test
    void shouldKeepThirtyTwoRequestsInFlightAgainstQemuStorageDaemon() throws Exception {
        Path image = dir.resolve("qd.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(8 * MIB);
        }
        try (QemuStorageDaemon qsd = QemuStorageDaemon.start(image, dir.resolve("qd.sock"), true);
                BlkClient blk = BlkClient.connect(qsd.socket(), 128, 32, 4096)) {
            // every slot writes its own block with its own pattern, all 32 in flight at once
            for (int slot = 0; slot < 32; slot++) {
                for (int i = 0; i < 4096; i += 8) {
                    Native.putLong(blk.data(slot) + i, ((long) slot << 32) | i);
                }
                assertTrue(blk.submit(slot, VirtioBlk.T_OUT, slot * 4096L, 4096));
            }
            blk.flush();
            int[] done = {0};
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (done[0] < 32 && System.nanoTime() < deadline) {
                blk.poll((slot, status, len) -> {
                    assertEquals(VirtioBlk.S_OK, status);
                    done[0]++;
                });
            }
            assertEquals(32, done[0]);
            try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
                ByteBuffer b = ByteBuffer.allocate(32 * 4096).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                ch.read(b, 0);
                for (int slot = 0; slot < 32; slot++) {
                    assertEquals(((long) slot << 32) | 8, b.getLong(slot * 4096 + 8));
                }
            }
        }
    }
}
