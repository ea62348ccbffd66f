package io.vhostj.vhostuser.protocol;

import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.UnixSocket;

/**
 * A vhost-user message in native memory, reused for every message on a connection: the 12-byte
 * header ({@code u32 request; u32 flags; u32 size}), the payload and up to 8 descriptors.
 * A flyweight: accessors read and write the buffer directly.
 */
public final class VhostUserMessage implements AutoCloseable {
    public static final int HEADER_SIZE = 12;
    public static final int REQUEST_OFFSET = 0;
    public static final int FLAGS_OFFSET = 4;
    public static final int SIZE_OFFSET = 8;

    public static final int VERSION = 0x1;
    public static final int VERSION_MASK = 0x3;
    public static final int FLAG_REPLY = 0x4;
    public static final int FLAG_NEED_REPLY = 0x8;

    /** No message type of vhost-user comes near this; a larger size is a protocol violation. */
    public static final int MAX_PAYLOAD = 4096;

    private final long address;
    private final int[] fds = new int[UnixSocket.MAX_FDS];
    private int fdCount;

    public VhostUserMessage() {
        address = Native.allocate(HEADER_SIZE + MAX_PAYLOAD);
    }

    public long address() {
        return address;
    }

    public long payloadAddress() {
        return address + HEADER_SIZE;
    }

    public int request() {
        return Native.getInt(address + REQUEST_OFFSET);
    }

    public int flags() {
        return Native.getInt(address + FLAGS_OFFSET);
    }

    /** Payload size as the header states it (validated against {@link #MAX_PAYLOAD} on receive). */
    public int size() {
        return Native.getInt(address + SIZE_OFFSET);
    }

    public boolean needsReply() {
        return (flags() & FLAG_NEED_REPLY) != 0;
    }

    public boolean isReply() {
        return (flags() & FLAG_REPLY) != 0;
    }

    /** Starts a new message: header set, payload empty, descriptors forgotten (not closed). */
    public VhostUserMessage begin(int request, int flags, int size) {
        if (size < 0 || size > MAX_PAYLOAD) {
            throw new IllegalArgumentException("payload size " + size);
        }
        Native.putInt(address + REQUEST_OFFSET, request);
        Native.putInt(address + FLAGS_OFFSET, flags | VERSION);
        Native.putInt(address + SIZE_OFFSET, size);
        Native.zero(address + HEADER_SIZE, size);
        fdCount = 0;
        return this;
    }

    /** Turns the message just received into its reply, keeping the request type. */
    public VhostUserMessage beginReply(int size) {
        return begin(request(), FLAG_REPLY, size);
    }

    public void addFlags(int flags) {
        Native.putInt(address + FLAGS_OFFSET, flags() | flags);
    }

    public void setSize(int size) {
        Native.putInt(address + SIZE_OFFSET, size);
    }

    public int payloadInt(int offset) {
        checkRead(offset, 4);
        return Native.getInt(payloadAddress() + offset);
    }

    public long payloadLong(int offset) {
        checkRead(offset, 8);
        return Native.getLong(payloadAddress() + offset);
    }

    public int payloadShort(int offset) {
        checkRead(offset, 2);
        return Native.getShort(payloadAddress() + offset) & 0xffff;
    }

    public void putPayloadInt(int offset, int value) {
        checkWrite(offset, 4);
        Native.putInt(payloadAddress() + offset, value);
    }

    public void putPayloadLong(int offset, long value) {
        checkWrite(offset, 8);
        Native.putLong(payloadAddress() + offset, value);
    }

    public void putPayloadShort(int offset, int value) {
        checkWrite(offset, 2);
        Native.putShort(payloadAddress() + offset, (short) value);
    }

    public void putPayloadBytes(int offset, byte[] bytes) {
        checkWrite(offset, bytes.length);
        Native.copyFromArray(bytes, 0, payloadAddress() + offset, bytes.length);
    }

    public byte[] payloadBytes(int offset, int length) {
        checkRead(offset, length);
        byte[] out = new byte[length];
        Native.copyToArray(payloadAddress() + offset, out, 0, length);
        return out;
    }

    private void checkRead(int offset, int length) {
        long limit = Math.min(Integer.toUnsignedLong(size()), MAX_PAYLOAD);
        if (offset < 0 || length < 0 || (long) offset + length > limit) {
            throw new IndexOutOfBoundsException("payload read of " + length + " at " + offset + " in " + size());
        }
    }

    private void checkWrite(int offset, int length) {
        if (offset < 0 || length < 0 || (long) offset + length > MAX_PAYLOAD) {
            throw new IndexOutOfBoundsException("payload write of " + length + " at " + offset);
        }
    }

    // ---- descriptors ---------------------------------------------------------------------------

    public int fdCount() {
        return fdCount;
    }

    /** Descriptor {@code i}, still owned by the message until {@link #takeFd}. */
    public int fd(int i) {
        if (i >= fdCount) {
            throw new IndexOutOfBoundsException("fd " + i + " of " + fdCount);
        }
        return fds[i];
    }

    /** Takes ownership of descriptor {@code i}; the message will not close it. */
    public int takeFd(int i) {
        int fd = fd(i);
        fds[i] = -1;
        return fd;
    }

    int[] fdArray() {
        return fds;
    }

    void setFdCount(int count) {
        fdCount = count;
    }

    /** Attaches a descriptor to send; the caller keeps ownership. */
    public void addFd(int fd) {
        if (fdCount == fds.length) {
            throw new IllegalStateException("at most " + fds.length + " fds per message");
        }
        fds[fdCount++] = fd;
    }

    /** Closes received descriptors nobody took. */
    public void closeFds() {
        Fd.closeAll(fds, fdCount);
        fdCount = 0;
    }

    /** Forgets descriptors attached for sending (they belong to the sender). */
    void forgetFds() {
        fdCount = 0;
    }

    @Override
    public void close() {
        Native.free(address);
    }

    @Override
    public String toString() {
        return FrontendRequest.name(request()) + " flags=0x" + Integer.toHexString(flags()) + " size=" + size()
                + " fds=" + fdCount;
    }

    /** Builds a message from raw bytes (header + payload), as fuzzers and tests do. */
    public static VhostUserMessage fromBytes(byte[] bytes, int fdCount) {
        VhostUserMessage m = new VhostUserMessage();
        int n = Math.min(bytes.length, HEADER_SIZE + MAX_PAYLOAD);
        Native.copyFromArray(bytes, 0, m.address, n);
        m.fdCount = 0;
        for (int i = 0; i < Math.min(fdCount, m.fds.length); i++) {
            m.fds[m.fdCount++] = -1;
        }
        return m;
    }
}
