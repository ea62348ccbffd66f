package io.vhostj.tests;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.bench.BlkClient;
import io.vhostj.blk.Aio;
import io.vhostj.blk.BlkDevice;
import io.vhostj.blk.FileBackingStore;
import io.vhostj.blk.VirtioBlk;
import io.vhostj.vhostuser.sys.Native;

/**
 * A block device as the backing store (a loop device over a temp file): capacity from the
 * device, data through both engines, buffered and O_DIRECT, discard reaching the device.
 */
class VhostjBlkBlockDeviceTest {
    private static final int MIB = 1 << 20;
    private static final long TIMEOUT = 5_000_000_000L;

    @TempDir
    Path dir;
    private String loop;
    private ServedDevice server;
    private FileBackingStore store;

    @AfterEach
    void tearDown() throws Exception {
        if (server != null) {
            server.close();
            store.close();
        }
        if (loop != null) {
            run("losetup", "-d", loop);
        }
    }

    @ParameterizedTest(name = "aio={0}, direct={1}")
    @CsvSource({"SYNC,false", "IO_URING,false", "IO_URING,true"})
    void shouldServeALoopDevice(Aio aio, boolean direct) throws Exception {
        Path file = dir.resolve("backing.img");
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(32 * MIB);
        }
        loop = attachLoop(file);
        store = FileBackingStore.open(Path.of(loop), false, direct);
        assertEquals(32 * MIB, store.size(), "capacity comes from the device");
        BlkDevice device = new BlkDevice(store, 1, 256, 512, "loop", false, aio);
        Path socket = dir.resolve("blk.sock");
        server = new ServedDevice(device, socket);

        byte[] data = new byte[256 * 1024];
        new Random(17).nextBytes(data);
        try (BlkClient blk = BlkClient.connect(socket, 64, 2, data.length)) {
            assertEquals(32 * MIB, blk.capacityBytes());
            Native.copyFromArray(data, 0, blk.data(0), data.length);
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_OUT, 5 * MIB, data.length, TIMEOUT));
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_FLUSH, 0, 0, TIMEOUT));
            Native.zero(blk.data(0), data.length);
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_IN, 5 * MIB, data.length, TIMEOUT));
            byte[] back = new byte[data.length];
            Native.copyToArray(blk.data(0), back, 0, back.length);
            assertArrayEquals(data, back, "read back through the device");
            assertArrayEquals(data, fileBytes(file, 5 * MIB, data.length), "the loop's backing file holds it");

            // discard on a block device: BLKDISCARD semantics via fallocate(PUNCH_HOLE); reads zeros after
            ByteBuffer seg = ByteBuffer.allocate(16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            seg.putLong(5 * MIB / 512).putInt(data.length / 512).putInt(0);
            Native.copyFromArray(seg.array(), 0, blk.data(0), 16);
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_DISCARD, 0, 16, TIMEOUT));
            assertEquals(VirtioBlk.S_OK, blk.syncRequest(VirtioBlk.T_IN, 5 * MIB, data.length, TIMEOUT));
            Native.copyToArray(blk.data(0), back, 0, back.length);
            assertArrayEquals(new byte[data.length], back, "discarded range reads as zeros");
            assertEquals(VirtioBlk.S_IOERR, blk.syncRequest(VirtioBlk.T_IN, 32 * MIB, 512, TIMEOUT), "past the end");
        }
    }

    private static byte[] fileBytes(Path file, long offset, int length) throws Exception {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(length);
            ch.read(b, offset);
            return b.array();
        }
    }

    /** Attaches a loop device, or aborts the test with a banner that says why. */
    private static String attachLoop(Path file) throws Exception {
        String why;
        try {
            Process p = new ProcessBuilder("losetup", "--find", "--show", file.toString()).redirectErrorStream(true)
                    .start();
            String out = new String(p.getInputStream().readAllBytes()).trim();
            if (p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0 && out.startsWith("/dev/loop")) {
                return out;
            }
            why = "losetup: " + out;
        } catch (java.io.IOException e) {
            why = e.getMessage();
        }
        System.err.println("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                + "!! SKIPPED: the block-device backing store test needs a loop device\n"
                + "!! (root and /dev/loop-control): " + why + "\n"
                + "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
        Assumptions.abort("no loop device: " + why);
        return null;
    }

    private static void run(String... command) throws Exception {
        new ProcessBuilder(command).inheritIO().start().waitFor(10, TimeUnit.SECONDS);
    }
}
