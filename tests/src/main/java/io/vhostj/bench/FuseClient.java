package io.vhostj.bench;

import java.nio.file.Path;

import io.vhostj.fs.Fuse;
import io.vhostj.vhostuser.frontend.DriverQueue;
import io.vhostj.vhostuser.frontend.GuestRam;
import io.vhostj.vhostuser.frontend.VhostUserFrontend;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/**
 * The guest's side of a vhost-user-fs device through vhostj's frontend: FUSE requests as the
 * Linux driver sends them (in-header + argument readable, out-header + result writable), one
 * at a time on the first request queue. For tests now, and the frame of {@code bench fs}.
 */
public final class FuseClient implements AutoCloseable {
    private static final long RAM_GPA = 0x4000_0000L;
    /** Request and reply buffers: enough for a 1 MiB READ or WRITE. */
    public static final int BUFFER = (1 << 20) + 4096;

    private final VhostUserFrontend frontend;
    private final GuestRam ram;
    private final DriverQueue queue;
    private final EventFd kick;
    private final EventFd call;
    private final long inGpa;
    private final long outGpa;
    private long unique = 1;
    private int uid;
    private int gid;
    private int extlen;
    private int lastLength;
    private final long[] addrs1 = new long[1];
    private final long[] addrs2 = new long[2];
    private final int[] lens1 = new int[1];
    private final int[] lens2 = new int[2];
    private int usedLength;
    private final DriverQueue.UsedConsumer reaper = (head, length) -> usedLength = length;

    private FuseClient(Path socket, int queueSize) throws Exception {
        frontend = VhostUserFrontend.connect(socket, 5000);
        try {
            long features = frontend.negotiate(
                    VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX),
                    ProtocolFeature.bit(ProtocolFeature.REPLY_ACK) | ProtocolFeature.bit(ProtocolFeature.CONFIG)
                            | ProtocolFeature.bit(ProtocolFeature.MQ));
            ram = new GuestRam(RAM_GPA, 8 << 20);
            frontend.setMemTable(ram);
            queue = new DriverQueue(ram, queueSize, VirtioFeatures.has(features, VirtioFeatures.RING_EVENT_IDX));
            queue.interrupts(false);
            kick = EventFd.create();
            call = EventFd.create();
            frontend.startQueue(1, queue, kick, call); // queue 0 is the high-priority queue
            inGpa = ram.allocate(BUFFER, 4096);
            outGpa = ram.allocate(BUFFER, 4096);
        } catch (Exception e) {
            frontend.close();
            throw e;
        }
    }

    public static FuseClient connect(Path socket, int queueSize) throws Exception {
        return new FuseClient(socket, queueSize);
    }

    public VhostUserFrontend frontend() {
        return frontend;
    }

    /** Host address of the request buffer: the in-header goes at 0, the argument at 40. */
    public long in() {
        return ram.host(inGpa);
    }

    /** Host address of the reply buffer: the out-header at 0, the result at 16. */
    public long out() {
        return ram.host(outGpa);
    }

    /**
     * Sends the request whose argument (and names) the caller put at {@code in() + 40}, of
     * {@code argBytes} bytes, with room for {@code outBytes} of reply; waits for the answer and
     * returns the out-header's error (0 or a negated errno). {@link #replyLength()} is the used length.
     */
    public int request(int opcode, long nodeId, int argBytes, int outBytes, long timeoutNanos) throws NativeException {
        int len = Fuse.IN_HEADER_SIZE + argBytes;
        return requestRaw(opcode, nodeId, len, len, outBytes, timeoutNanos);
    }

    /**
     * WRITE of {@code data} at {@code offset} through handle {@code fh} of {@code nodeId}, with
     * {@code writeFlags} (FUSE_WRITE_*); returns the out-header's error. The byte count written is
     * at {@code out() + 16 + Fuse.WRITE_OUT_SIZE_BYTES}.
     */
    public int write(long nodeId, long fh, long offset, byte[] data, int writeFlags, long timeoutNanos)
            throws NativeException {
        long a = in() + Fuse.IN_HEADER_SIZE;
        Native.zero(a, Fuse.WRITE_IN_SIZE);
        Native.putLong(a + Fuse.WRITE_IN_FH, fh);
        Native.putLong(a + Fuse.WRITE_IN_OFFSET, offset);
        Native.putInt(a + Fuse.WRITE_IN_SIZE_BYTES, data.length);
        Native.putInt(a + Fuse.WRITE_IN_WRITE_FLAGS, writeFlags);
        Native.copyFromArray(data, 0, a + Fuse.WRITE_IN_SIZE, data.length);
        return request(Fuse.WRITE, nodeId, Fuse.WRITE_IN_SIZE + data.length, Fuse.OUT_HEADER_SIZE + Fuse.WRITE_OUT_SIZE,
                timeoutNanos);
    }

    /**
     * The same, with {@code extBytes} (a multiple of 8) of request extensions after the
     * {@code argBytes}, counted in the in-header's total_extlen, as a 7.38 driver sends them.
     */
    public int requestWithExtensions(int opcode, long nodeId, int argBytes, int extBytes, int outBytes,
            long timeoutNanos) throws NativeException {
        int len = Fuse.IN_HEADER_SIZE + argBytes + extBytes;
        extlen = extBytes / 8;
        try {
            return requestRaw(opcode, nodeId, len, len, outBytes, timeoutNanos);
        } finally {
            extlen = 0;
        }
    }

    /** The same with the in-header's len and the readable length chosen separately (malformed requests). */
    public int requestRaw(int opcode, long nodeId, int headerLen, int readable, int outBytes, long timeoutNanos)
            throws NativeException {
        long h = in();
        Native.putInt(h + Fuse.IN_LEN, headerLen);
        Native.putInt(h + Fuse.IN_OPCODE, opcode);
        Native.putLong(h + Fuse.IN_UNIQUE, ++unique);
        Native.putLong(h + Fuse.IN_NODEID, nodeId);
        Native.putInt(h + Fuse.IN_UID, uid);
        Native.putInt(h + Fuse.IN_GID, gid);
        Native.putInt(h + Fuse.IN_PID, 1);
        Native.putShort(h + Fuse.IN_TOTAL_EXTLEN, (short) extlen);
        Native.putShort(h + Fuse.IN_PADDING, (short) 0);
        Native.zero(out(), Fuse.OUT_HEADER_SIZE);
        int writable = outBytes > 0 ? 1 : 0;
        long[] addrs = writable == 1 ? addrs2 : addrs1;
        int[] lens = writable == 1 ? lens2 : lens1;
        addrs[0] = inGpa;
        lens[0] = readable;
        if (writable == 1) {
            addrs[1] = outGpa;
            lens[1] = outBytes;
        }
        if (queue.add(addrs, lens, 1, writable) < 0) {
            throw new IllegalStateException("ring full");
        }
        queue.publishAndKick(kick);
        long deadline = System.nanoTime() + timeoutNanos;
        usedLength = -1;
        while (queue.reap(reaper) == 0) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("no reply within " + timeoutNanos / 1_000_000 + " ms");
            }
            Thread.onSpinWait();
        }
        lastLength = usedLength;
        return lastLength >= Fuse.OUT_HEADER_SIZE ? Native.getInt(out() + Fuse.OUT_ERROR) : 0;
    }

    /**
     * FUSE_INIT as a Linux driver speaking 7.{@code minor} sends it (the whole fuse_init_in from
     * 7.36 on, its first 16 bytes before); returns the out-header's error.
     */
    public int init(int minor, int maxReadahead, int flags, long timeoutNanos) throws NativeException {
        return init(minor, maxReadahead, flags, 0, timeoutNanos);
    }

    /** The same with {@code flags2}, the upper flags a 7.36+ driver sends with FUSE_INIT_EXT (bit 30). */
    public int init(int minor, int maxReadahead, int flags, int flags2, long timeoutNanos) throws NativeException {
        long a = in() + Fuse.IN_HEADER_SIZE;
        Native.zero(a, Fuse.INIT_IN_SIZE);
        Native.putInt(a + Fuse.INIT_IN_MAJOR, Fuse.KERNEL_VERSION);
        Native.putInt(a + Fuse.INIT_IN_MINOR, minor);
        Native.putInt(a + Fuse.INIT_IN_MAX_READAHEAD, maxReadahead);
        Native.putInt(a + Fuse.INIT_IN_FLAGS, flags);
        Native.putInt(a + Fuse.INIT_IN_FLAGS2, flags2);
        int size = minor >= 36 ? Fuse.INIT_IN_SIZE : Fuse.INIT_IN_COMPAT_SIZE;
        return request(Fuse.INIT, 0, size, Fuse.OUT_HEADER_SIZE + Fuse.INIT_OUT_SIZE, timeoutNanos);
    }

    /** The caller's credentials the next requests carry (the guest process's uid and gid). */
    public void caller(int uid, int gid) {
        this.uid = uid;
        this.gid = gid;
    }

    /** The used length of the last reply. */
    public int replyLength() {
        return lastLength;
    }

    /** The unique of the last request (the reply must echo it). */
    public long lastUnique() {
        return unique;
    }

    @Override
    public void close() {
        frontend.close();
        kick.close();
        call.close();
        ram.close();
    }
}
