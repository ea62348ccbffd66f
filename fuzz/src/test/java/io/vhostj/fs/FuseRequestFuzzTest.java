package io.vhostj.fs;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.vhostj.fuzz.OneChainRing;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.MemoryRegion;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.Memfd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;
import io.vhostj.vhostuser.virtq.QueueBrokenException;
import io.vhostj.vhostuser.virtq.SplitQueue;

/**
 * A guest that sends FUSE requests of its own making to a virtio-fs queue: the chain's shape and
 * every byte (in-header, argument, names) come from the fuzzer; a session carries over from one
 * request to the next within an input, so INIT can open the way for the rest.
 *
 * <pre>
 * u8  count       requests in this input: 1 + count % 4
 * per request:
 *   u8  shape     descriptors 1 + shape % 4; bit 4: no writable descriptor
 *   u16 length[]  per descriptor (% 4097); the last one is writable unless bit 4
 *   u16 bytes     how many of the following input bytes are the request's readable bytes
 *   u8  data[]    those bytes
 * </pre>
 *
 * The requests reach a real passthrough file system over a scratch directory ({@code shared/},
 * with a file, a subdirectory and an absolute symlink out; recreated when it fills up). Beside
 * it lies {@code outside.txt}: no request may change it or create anything next to it.
 *
 * <p>What must hold: a reply is a whole out-header whose len is the used length and whose unique
 * is the request's, whose error is 0 or a negated errno; no reply is longer than the writable
 * part; one-way opcodes get none; nothing but ChainException comes out of the handler.
 */
public class FuseRequestFuzzTest {
    private static final long GPA = 0x20_0000;
    private static final long REGION = 128 << 10;
    private static final long DATA = 4096;
    private static final int QUEUE = 16;

    private static java.nio.file.Path root;
    private static java.nio.file.Path shared;
    private static Passthrough fs;
    private static Fd ram;
    private static MemoryRegion region;
    private static GuestMemory memory;
    private static final DescriptorChain CHAIN = new DescriptorChain();

    @BeforeAll
    static void setUp() throws Exception {
        ram = Memfd.create("vhostj-fuzz-fuse", REGION);
        region = MemoryRegion.map(GPA, REGION, 0x6000_0000L, 0, ram.fd());
        memory = GuestMemory.of(List.of(region));
        root = java.nio.file.Files.createTempDirectory("vhostj-fuzz-fuse");
        java.nio.file.Files.writeString(root.resolve("outside.txt"), "outside");
        freshShare();
    }

    private static void freshShare() throws Exception {
        if (fs != null) {
            fs.close();
            deleteTree(shared);
        }
        shared = java.nio.file.Files.createDirectory(root.resolve("shared"));
        java.nio.file.Files.writeString(shared.resolve("file"), "content");
        java.nio.file.Files.createDirectory(shared.resolve("dir"));
        java.nio.file.Files.createSymbolicLink(shared.resolve("out"), root.resolve("outside.txt"));
        fs = new Passthrough(shared, FsOptions.defaults().withXattr(true));
        fs.open();
    }

    private static void deleteTree(java.nio.file.Path p) throws java.io.IOException {
        if (java.nio.file.Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            try (var s = java.nio.file.Files.list(p)) {
                for (java.nio.file.Path c : (Iterable<java.nio.file.Path>) s::iterator) {
                    deleteTree(c);
                }
            }
        }
        java.nio.file.Files.deleteIfExists(p);
    }

    @AfterAll
    static void tearDown() throws Exception {
        fs.close();
        deleteTree(root);
        region.close();
        ram.close();
    }

    @FuzzTest(maxDuration = "5s")
    void serveRequests(byte[] input) throws Exception {
        if (input.length < 1) {
            return;
        }
        int requests = 1 + (input[0] & 0xff) % 4;
        int at = 1;
        FsSession session = new FsSession();
        FuseQueueHandler handler = new FuseQueueHandler(session, fs);
        try {
            for (int r = 0; r < requests && at < input.length; r++) {
                at = serveOne(handler, input, at);
                if (at < 0) {
                    break;
                }
            }
        } finally {
            handler.close();
        }
        if (!"outside".equals(java.nio.file.Files.readString(root.resolve("outside.txt")))) {
            throw new AssertionError("a request changed a file outside the shared directory");
        }
        try (var s = java.nio.file.Files.list(root)) {
            if (s.count() != 2) {
                throw new AssertionError("a request created something outside the shared directory");
            }
        }
        try (var s = java.nio.file.Files.list(shared)) {
            if (s.count() > 64) {
                freshShare();
            }
        }
    }

    private static int serveOne(FuseQueueHandler handler, byte[] input, int at) throws Exception {
        int shape = input[at++] & 0xff;
        int count = 1 + shape % 4;
        boolean noWritable = (shape & 16) != 0;
        if (at + 2 * count + 2 > input.length) {
            return -1;
        }
        OneChainRing ring = new OneChainRing(region.hostAddr(), GPA, REGION, DATA, QUEUE);
        for (int i = 0; i < count; i++) {
            int length = ((input[at] & 0xff) | (input[at + 1] & 0xff) << 8) % 4097;
            at += 2;
            ring.add(length, !noWritable && i == count - 1);
        }
        long writable = ring.writableBytes();
        int bytes = (input[at] & 0xff) | (input[at + 1] & 0xff) << 8;
        at += 2;
        int n = Math.min(bytes, input.length - at);
        Native.copyFromArray(input, at, ring.host() + DATA, (int) Math.min(n, REGION - DATA));
        at += n;
        SplitQueue queue = ring.offer(memory);
        try {
            if (!queue.pop(CHAIN)) {
                throw new AssertionError("the request was not offered");
            }
        } catch (ChainException | QueueBrokenException e) {
            return at;
        }
        int opcode = CHAIN.readableBytes() >= 8 ? Native.getInt(CHAIN.readableAddress(0) + 4) : -1;
        long unique = CHAIN.readableBytes() >= 16 && CHAIN.readableLength(0) >= 16
                ? Native.getLong(CHAIN.readableAddress(0) + 8) : 0;
        int length;
        try {
            length = handler.handle(CHAIN);
        } catch (ChainException e) {
            return at;
        }
        if (length < 0 || length > writable) {
            throw new AssertionError("used length " + length + " with " + writable + " writable bytes");
        }
        if (length == 0) {
            if (writable >= Fuse.OUT_HEADER_SIZE && !Fuse.isOneWay(opcode)) {
                throw new AssertionError("no reply to opcode " + opcode + " with room for one");
            }
            return at;
        }
        if (length < Fuse.OUT_HEADER_SIZE && length != writable) {
            throw new AssertionError("a reply of " + length + " bytes: not even a header");
        }
        long out = CHAIN.writableAddress(0);
        if (CHAIN.writableLength(0) >= Fuse.OUT_HEADER_SIZE) {
            if (Native.getInt(out + Fuse.OUT_LEN) != length) {
                throw new AssertionError("out-header len " + Native.getInt(out + Fuse.OUT_LEN) + ", used " + length);
            }
            int error = Native.getInt(out + Fuse.OUT_ERROR);
            if (error > 0 || error < -4095) {
                throw new AssertionError("error " + error + " is not a negated errno");
            }
            if (CHAIN.readableLength(0) >= 16 && Native.getLong(out + Fuse.OUT_UNIQUE) != unique) {
                throw new AssertionError("reply for unique " + Native.getLong(out + Fuse.OUT_UNIQUE) + ", asked " + unique);
            }
        }
        return at;
    }

    /** Seeds: INIT then a request, the shapes the Linux driver uses. */
    public static Map<String, byte[]> seeds() {
        Map<String, byte[]> s = new LinkedHashMap<>();
        s.put("init-then-getattr", script(init(7, 38), request(Fuse.GETATTR, 1, new byte[Fuse.GETATTR_IN_SIZE], 256)));
        s.put("init-7-31", script(init(7, 31)));
        s.put("init-too-old", script(init(7, 20)));
        s.put("forget", script(init(7, 38), request(Fuse.FORGET, 5, new byte[8], 0)));
        s.put("lookup-name", script(init(7, 38), request(Fuse.LOOKUP, 1, "file\0".getBytes(), 256)));
        s.put("destroy", script(init(7, 38), request(Fuse.DESTROY, 0, new byte[0], 64)));
        return s;
    }

    private static byte[] init(int major, int minor) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(Fuse.INIT_IN_SIZE).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putInt(major).putInt(minor).putInt(131072).putInt(-1);
        return request(Fuse.INIT, 0, b.array(), 16 + Fuse.INIT_OUT_SIZE);
    }

    private static byte[] request(int opcode, long node, byte[] arg, int outBytes) {
        int len = Fuse.IN_HEADER_SIZE + arg.length;
        java.nio.ByteBuffer h = java.nio.ByteBuffer.allocate(len).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        h.putInt(len).putInt(opcode).putLong(42).putLong(node).putInt(0).putInt(0).putInt(1).putInt(0).put(arg);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        boolean reply = outBytes > 0;
        out.write(reply ? 1 : 16); // two descriptors (readable, writable), or one readable
        out.write(len & 0xff);
        out.write(len >>> 8);
        if (reply) {
            out.write(outBytes & 0xff);
            out.write(outBytes >>> 8);
        }
        out.write(len & 0xff);
        out.write(len >>> 8);
        out.writeBytes(h.array());
        return out.toByteArray();
    }

    private static byte[] script(byte[]... requests) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        out.write(requests.length - 1);
        for (byte[] r : requests) {
            out.writeBytes(r);
        }
        return out.toByteArray();
    }
}
