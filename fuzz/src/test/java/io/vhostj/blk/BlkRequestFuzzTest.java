package io.vhostj.blk;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.vhostj.fuzz.OneChainRing;
import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.MemoryRegion;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.IoUring;
import io.vhostj.vhostuser.sys.Memfd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;
import io.vhostj.vhostuser.virtq.QueueBrokenException;
import io.vhostj.vhostuser.virtq.SplitQueue;

/**
 * A guest that sends one virtio-blk request of its own making: the chain's shape (how many
 * descriptors, their lengths and directions) and every byte in it (header, data, discard and
 * write-zeroes segments) come from the fuzzer. The request is served by {@link BlkQueueHandler}
 * over a 64 KiB disk file, with the inline engine or with io_uring, read-only or not,
 * writeback or writethrough.
 *
 * <pre>
 * u8  flags     bit 0 io_uring, bit 1 read-only disk, bit 2 writethrough, bit 3 volatile cache
 * u8  count     descriptors in the chain: 1 + count % 8
 * u8[4] each    u16 length (% 8193), u8 bit 0 device-writable, u8 unused
 * u8  bytes[]   the chain's buffers, laid end to end in guest memory
 * </pre>
 *
 * What must hold: the disk file keeps its size; a read-only disk keeps its bytes; a request
 * with room for a status byte gets 0, 1 or 2 there; the used length never exceeds the
 * writable bytes; a request is answered (now or through the ring) exactly once; nothing but
 * {@link ChainException} comes out of the handler.
 */
public class BlkRequestFuzzTest {
    private static final long GPA = 0x10_0000;
    private static final long REGION = 128 << 10;
    private static final long DATA = 4096; // buffers start here in the region; rings before
    private static final int QUEUE = 16;
    private static final int DISK = 64 << 10;
    private static final int HEADER = 2;
    private static final int DESC_BYTES = 4;
    private static final byte[] SERIAL = "fuzz-serial".getBytes();

    private static Fd ram;
    private static MemoryRegion region;
    private static GuestMemory memory;
    private static Path dir;
    private static Path disk;
    private static byte[] diskImage;
    private static final DescriptorChain CHAIN = new DescriptorChain();

    @BeforeAll
    static void setUp() throws Exception {
        ram = Memfd.create("vhostj-fuzz-blk", REGION);
        region = MemoryRegion.map(GPA, REGION, 0x7000_0000L, 0, ram.fd());
        memory = GuestMemory.of(List.of(region));
        dir = Files.createTempDirectory("vhostj-fuzz-blk");
        disk = dir.resolve("disk.img");
        diskImage = new byte[DISK];
        for (int i = 0; i < DISK; i++) {
            diskImage[i] = (byte) (i * 31 + 7);
        }
    }

    @AfterAll
    static void tearDown() throws IOException {
        region.close();
        ram.close();
        Files.deleteIfExists(disk);
        Files.deleteIfExists(dir);
    }

    @FuzzTest(maxDuration = "5s")
    void serveRequest(byte[] input) throws Exception {
        if (input.length < HEADER) {
            return;
        }
        int flags = input[0];
        boolean uring = (flags & 1) != 0;
        boolean readOnly = (flags & 2) != 0;
        boolean writeThrough = (flags & 4) != 0;
        boolean volatileCache = (flags & 8) != 0;
        int count = 1 + (input[1] & 0xff) % 8;
        int payload = HEADER + count * DESC_BYTES;
        if (input.length < payload) {
            return;
        }

        OneChainRing ring = new OneChainRing(region.hostAddr(), GPA, REGION, DATA, QUEUE);
        for (int i = 0; i < count; i++) {
            int o = HEADER + i * DESC_BYTES;
            int length = ((input[o] & 0xff) | (input[o + 1] & 0xff) << 8) % 8193;
            ring.add(length, (input[o + 2] & 1) != 0);
        }
        Native.copyFromArray(input, payload, ring.host() + DATA,
                (int) Math.min(input.length - payload, REGION - DATA));

        Files.write(disk, diskImage);
        try (FileBackingStore store = FileBackingStore.open(disk, readOnly, false)) {
            IoUring io = uring ? IoUring.create(8) : null;
            BlkQueueHandler handler = new BlkQueueHandler(store, SERIAL, volatileCache, io, () -> writeThrough);
            try {
                serve(ring.offer(memory), handler, ring.writableBytes());
            } finally {
                handler.close();
            }
        }
        long size = Files.size(disk);
        if (size != DISK) {
            throw new AssertionError("the disk file grew or shrank to " + size + " bytes");
        }
        if (readOnly && !Arrays.equals(Files.readAllBytes(disk), diskImage)) {
            throw new AssertionError("a read-only disk changed");
        }
    }

    private static void serve(SplitQueue queue, BlkQueueHandler handler, long writable) throws Exception {
        try {
            if (!queue.pop(CHAIN)) {
                throw new AssertionError("the request was not offered");
            }
        } catch (ChainException | QueueBrokenException e) {
            return; // walking is DescriptorChainFuzzTest's business; the chain was refused cleanly
        }
        int head = CHAIN.head();
        long statusAddress = CHAIN.writableBytes() > 0 ? CHAIN.writableAddressAt(CHAIN.writableBytes() - 1) : 0;
        boolean wellFormed = CHAIN.readableBytes() >= VirtioBlk.REQ_HEADER_SIZE && CHAIN.writableBytes() >= 1;
        int[] answers = {0};
        int[] usedLength = {-1};
        int written;
        try {
            written = handler.handle(CHAIN);
        } catch (ChainException e) {
            return;
        }
        if (written != QueueHandler.PENDING) {
            answers[0]++;
            usedLength[0] = written;
        } else {
            QueueHandler.Completion done = (h, len) -> {
                if (h != head) {
                    throw new AssertionError("completion for head " + h + ", the request was " + head);
                }
                answers[0]++;
                usedLength[0] = len;
            };
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (handler.pending() > 0) {
                if (handler.reap(done) == 0) {
                    handler.awaitCompletions();
                }
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the request never completed");
                }
            }
        }
        if (answers[0] != 1) {
            throw new AssertionError("answered " + answers[0] + " times");
        }
        if (usedLength[0] < 0 || usedLength[0] > writable) {
            throw new AssertionError("used length " + usedLength[0] + " with " + writable + " writable bytes");
        }
        if (wellFormed) {
            int status = Native.getByte(statusAddress) & 0xff;
            if (status > VirtioBlk.S_UNSUPP) {
                throw new AssertionError("status byte " + status);
            }
        }
    }

    /** Seed inputs: one request of each kind the device knows, and some it must refuse. */
    public static Map<String, byte[]> seeds() {
        Map<String, byte[]> s = new LinkedHashMap<>();
        s.put("read", request(0, VirtioBlk.T_IN, 8, new int[] {16, 4096, 1}, new boolean[] {false, true, true}, null));
        s.put("write-uring", request(1, VirtioBlk.T_OUT, 16, new int[] {16, 4096, 1}, new boolean[] {false, false, true}, null));
        s.put("write-readonly", request(2, VirtioBlk.T_OUT, 0, new int[] {16, 512, 1}, new boolean[] {false, false, true}, null));
        s.put("write-through", request(5, VirtioBlk.T_OUT, 0, new int[] {16, 512, 1}, new boolean[] {false, false, true}, null));
        s.put("flush", request(1, VirtioBlk.T_FLUSH, 0, new int[] {16, 1}, new boolean[] {false, true}, null));
        s.put("get-id", request(0, VirtioBlk.T_GET_ID, 0, new int[] {16, 20, 1}, new boolean[] {false, true, true}, null));
        s.put("discard", request(0, VirtioBlk.T_DISCARD, 0, new int[] {16, 16, 1}, new boolean[] {false, false, true},
                segment(8, 16, 0)));
        s.put("write-zeroes-unmap", request(0, VirtioBlk.T_WRITE_ZEROES, 0, new int[] {16, 16, 1},
                new boolean[] {false, false, true}, segment(0, 128, VirtioBlk.DWZ_F_UNMAP)));
        s.put("read-past-end", request(1, VirtioBlk.T_IN, DISK / 512 - 1, new int[] {16, 1024, 1},
                new boolean[] {false, true, true}, null));
        s.put("unknown-type", request(0, 99, 0, new int[] {16, 1}, new boolean[] {false, true}, null));
        return s;
    }

    private static byte[] segment(long sector, int sectors, int flags) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        return b.putLong(sector).putInt(sectors).putInt(flags).array();
    }

    private static byte[] request(int flags, int type, long sector, int[] lengths, boolean[] writable, byte[] after) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        out.write(flags);
        out.write(lengths.length - 1);
        for (int i = 0; i < lengths.length; i++) {
            out.write(lengths[i] & 0xff);
            out.write(lengths[i] >>> 8);
            out.write(writable[i] ? 1 : 0);
            out.write(0);
        }
        java.nio.ByteBuffer h = java.nio.ByteBuffer.allocate(16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        out.writeBytes(h.putInt(type).putInt(0).putLong(sector).array());
        if (after != null) {
            out.writeBytes(after);
        }
        return out.toByteArray();
    }
}
