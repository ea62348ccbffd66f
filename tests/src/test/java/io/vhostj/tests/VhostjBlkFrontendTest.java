package io.vhostj.tests;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.bench.BlkClient;
import io.vhostj.blk.Aio;
import io.vhostj.blk.BlkDevice;
import io.vhostj.blk.FileBackingStore;
import io.vhostj.blk.VirtioBlk;
import io.vhostj.vhostuser.sys.Native;

/**
 * vhostj's blk backend driven by vhostj's frontend over a real socket and a real file, with the
 * inline engine; {@link VhostjBlkUringFrontendTest} runs the same with io_uring.
 */
class VhostjBlkFrontendTest {
    private static final int MIB = 1 << 20;
    private static final long TIMEOUT = 5_000_000_000L;

    @TempDir
    Path dir;
    private ServedDevice server;
    private FileBackingStore store;

    /** The engine under test. */
    Aio aio() {
        return Aio.SYNC;
    }

    /** Whether the disk is opened with O_DIRECT. */
    boolean direct() {
        return false;
    }

    private Path start(Path image, boolean readOnly) throws Exception {
        store = FileBackingStore.open(image, readOnly, direct());
        BlkDevice device = new BlkDevice(store, 2, 256, 512, "serial-1234", false, aio());
        Path socket = dir.resolve("blk.sock");
        server = new ServedDevice(device, socket);
        return socket;
    }

    @AfterEach
    void stop() throws InterruptedException {
        if (server != null) {
            server.close();
            store.close();
        }
    }

    private Path image(long size) throws Exception {
        Path image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(size);
        }
        return image;
    }

    @Test
    void shouldWriteReadFlushAndIdentify() throws Exception {
        Path image = image(16 * MIB);
        try (BlkClient blk = BlkClient.connect(start(image, false), 64, 2, 128 * 1024)) {
            assertEquals(16 * MIB, blk.capacityBytes());
            byte[] data = new byte[128 * 1024];
            new Random(3).nextBytes(data);
            Native.copyFromArray(data, 0, blk.data(0), data.length);
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_OUT, 3 * MIB, data.length, TIMEOUT));
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_FLUSH, 0, 0, TIMEOUT));
            try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
                ByteBuffer b = ByteBuffer.allocate(data.length);
                ch.read(b, 3 * MIB);
                assertArrayEquals(data, b.array(), "the file holds what the guest wrote");
            }
            Native.zero(blk.data(0), data.length);
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_IN, 3 * MIB, data.length, TIMEOUT));
            byte[] back = new byte[data.length];
            Native.copyToArray(blk.data(0), back, 0, back.length);
            assertArrayEquals(data, back);

            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_GET_ID, 0, VirtioBlk.ID_BYTES, TIMEOUT));
            byte[] id = new byte[11];
            Native.copyToArray(blk.data(0), id, 0, id.length);
            assertEquals("serial-1234", new String(id));
        }
    }

    @Test
    void shouldRefuseRequestsOutsideTheDiskWithoutTouchingIt() throws Exception {
        Path image = image(MIB);
        try (BlkClient blk = BlkClient.connect(start(image, false), 64, 2, 8192)) {
            Native.putLong(blk.data(0), 0x5a5a5a5a5a5a5a5aL);
            assertEquals(VirtioBlk.S_IOERR, blk.syncRequest(VirtioBlk.T_OUT, MIB, 512, TIMEOUT), "one past the end");
            assertEquals(VirtioBlk.S_IOERR, blk.syncRequest(VirtioBlk.T_OUT, MIB - 512, 1024, TIMEOUT),
                    "straddling the end");
            assertEquals(VirtioBlk.S_IOERR, blk.syncRequest(VirtioBlk.T_IN, (1L << 62), 512, TIMEOUT), "absurd sector");
            assertEquals(VirtioBlk.S_UNSUPP, blk.syncRequest(99, 0, 0, TIMEOUT), "unknown type");
            assertEquals(MIB, Files.size(image), "the file did not grow");
            // and the device still works
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_OUT, MIB - 512, 512, TIMEOUT));
        }
    }

    @Test
    void shouldPunchHolesOnDiscardAndZeroOnWriteZeroes() throws Exception {
        Path image = image(8 * MIB);
        try (BlkClient blk = BlkClient.connect(start(image, false), 64, 2, 1 * MIB)) {
            for (int i = 0; i < MIB; i += 8) {
                Native.putLong(blk.data(0) + i, -1L);
            }
            for (int m = 0; m < 4; m++) {
                assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_OUT, (long) m * MIB, MIB, TIMEOUT));
            }
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_FLUSH, 0, 0, TIMEOUT));
            long allocatedBefore = allocatedBytes(image);
            assertTrue(allocatedBefore >= 4 * MIB, "written blocks allocated: " + allocatedBefore);

            // DISCARD of MiB 1 and 2: one 16-byte segment as the request's data
            putSegment(blk.data(0), MIB / 512, 2 * MIB / 512, 0);
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_DISCARD, 0, VirtioBlk.DWZ_SEGMENT_SIZE, TIMEOUT));
            long allocatedAfter = allocatedBytes(image);
            assertTrue(allocatedAfter <= allocatedBefore - 2 * MIB, "discard freed blocks: " + allocatedBefore
                    + " -> " + allocatedAfter);

            // WRITE_ZEROES without UNMAP on MiB 3
            putSegment(blk.data(0), 3 * MIB / 512, MIB / 512, 0);
            assertEquals(VirtioBlk.S_OK,
                    blk.syncRequest(VirtioBlk.T_WRITE_ZEROES, 0, VirtioBlk.DWZ_SEGMENT_SIZE, TIMEOUT));
            try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
                ByteBuffer b = ByteBuffer.allocate(4 * MIB);
                ch.read(b, 0);
                byte[] a = b.array();
                assertEquals(-1, a[0]);
                assertEquals(-1, a[MIB - 1]);
                for (int i = MIB; i < 4 * MIB; i += 4096) {
                    assertEquals(0, a[i], "zero at " + i);
                }
            }
            // a discard with a flag it may not have
            putSegment(blk.data(0), 0, 8, VirtioBlk.DWZ_F_UNMAP);
            assertEquals(VirtioBlk.S_UNSUPP, blk.syncRequest(VirtioBlk.T_DISCARD, 0, VirtioBlk.DWZ_SEGMENT_SIZE, TIMEOUT));
        }
    }

    private static void putSegment(long at, long sector, long sectors, int flags) {
        Native.putLong(at + VirtioBlk.DWZ_SECTOR, sector);
        Native.putInt(at + VirtioBlk.DWZ_NUM_SECTORS, (int) sectors);
        Native.putInt(at + VirtioBlk.DWZ_FLAGS, flags);
    }

    private static long allocatedBytes(Path file) throws Exception {
        Process p = new ProcessBuilder("stat", "-c", "%b %B", file.toString()).start();
        String[] f = new String(p.getInputStream().readAllBytes()).trim().split(" ");
        p.waitFor();
        return Long.parseLong(f[0]) * Long.parseLong(f[1]);
    }

    @Test
    void shouldRefuseWritesToAReadOnlyDisk() throws Exception {
        Path image = image(MIB);
        try (BlkClient blk = BlkClient.connect(start(image, true), 64, 2, 4096)) {
            assertEquals(VirtioBlk.S_IOERR, blk.syncRequest(VirtioBlk.T_OUT, 0, 4096, TIMEOUT));
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_IN, 0, 4096, TIMEOUT));
        }
    }

    @Test
    void shouldKeepManyRequestsInFlightAndReadBackWhatEachWrote() throws Exception {
        int depth = 32;
        int length = 4096;
        Path image = image(16 * MIB);
        try (BlkClient blk = BlkClient.connect(start(image, false), 256, depth, length)) {
            byte[][] data = new byte[depth][length];
            Random random = new Random(11);
            for (int slot = 0; slot < depth; slot++) {
                random.nextBytes(data[slot]);
                Native.copyFromArray(data[slot], 0, blk.data(slot), length);
                // spread over the disk, in an order that is not the slots' order
                assertTrue(blk.submit(slot, VirtioBlk.T_OUT, (long) ((slot * 7) % depth) * 64 * 1024, length));
            }
            blk.flush();
            int[] status = awaitAll(blk, depth, 0);
            for (int slot = 0; slot < depth; slot++) {
                assertEquals(VirtioBlk.S_OK, status[slot], "write of slot " + slot);
                Native.zero(blk.data(slot), length);
                assertTrue(blk.submit(slot, VirtioBlk.T_IN, (long) ((slot * 7) % depth) * 64 * 1024, length));
            }
            blk.flush();
            status = awaitAll(blk, depth, length + 1);
            for (int slot = 0; slot < depth; slot++) {
                assertEquals(VirtioBlk.S_OK, status[slot], "read of slot " + slot);
                byte[] back = new byte[length];
                Native.copyToArray(blk.data(slot), back, 0, length);
                assertArrayEquals(data[slot], back, "slot " + slot + " reads back what it wrote");
            }
        }
    }

    @Test
    void shouldFinishRequestsInFlightWhenTheFrontendGoesAwayAndServeTheNextOne() throws Exception {
        Path image = image(16 * MIB);
        Path socket = start(image, false);
        try (BlkClient blk = BlkClient.connect(socket, 256, 32, 64 * 1024)) {
            for (int slot = 0; slot < 32; slot++) {
                assertTrue(blk.submit(slot, slot % 2 == 0 ? VirtioBlk.T_OUT : VirtioBlk.T_IN,
                        (long) slot * 64 * 1024, 64 * 1024));
            }
            blk.flush();
            // close at once: the backend must let the I/O finish before it unmaps guest memory
        }
        try (BlkClient blk = BlkClient.connect(socket, 64, 2, 4096)) {
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_IN, 0, 4096, TIMEOUT));
        }
    }

    /** Waits for {@code n} completions; returns the status of each slot. */
    private static int[] awaitAll(BlkClient blk, int n, int expectedLength) {
        int[] status = new int[n];
        java.util.Arrays.fill(status, -1);
        int[] done = {0};
        long deadline = System.nanoTime() + TIMEOUT;
        while (done[0] < n) {
            blk.poll((slot, st, len) -> {
                status[slot] = st;
                if (expectedLength > 0) {
                    assertEquals(expectedLength, len, "used length of slot " + slot);
                }
                done[0]++;
            });
            assertTrue(System.nanoTime() < deadline, "only " + done[0] + " of " + n + " requests completed");
            Thread.onSpinWait();
        }
        return status;
    }
}
