package io.vhostj.vhostuser.protocol;

import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.UnixSocket;

/**
 * One vhost-user connection: reads and writes {@link VhostUserMessage}s on a Unix socket. The
 * descriptors of a message ride on its header bytes (vhost-user.rst, "Communication").
 */
public final class VhostUserConnection implements AutoCloseable {
    private final UnixSocket socket;

    public VhostUserConnection(UnixSocket socket) {
        this.socket = socket;
    }

    public UnixSocket socket() {
        return socket;
    }

    /**
     * Reads the next message into {@code m}. Returns false when the peer closed the connection
     * between messages. Throws if the header is malformed or the stream ends inside a message.
     */
    public boolean read(VhostUserMessage m) throws NativeException, VhostUserProtocolException {
        m.closeFds();
        long addr = m.address();
        int got = socket.receive(addr, VhostUserMessage.HEADER_SIZE, m.fdArray());
        m.setFdCount(socket.receivedFds());
        if (got == 0) {
            m.closeFds();
            return false;
        }
        try {
            readRest(m, got);
        } catch (VhostUserProtocolException | NativeException | RuntimeException e) {
            m.closeFds();
            throw e;
        }
        return true;
    }

    private void readRest(VhostUserMessage m, int got) throws NativeException, VhostUserProtocolException {
        long addr = m.address();
        if (got < VhostUserMessage.HEADER_SIZE
                && !socket.receiveFully(addr + got, VhostUserMessage.HEADER_SIZE - got)) {
            throw new VhostUserProtocolException("connection closed inside a message header");
        }
        int version = m.flags() & VhostUserMessage.VERSION_MASK;
        if (version != VhostUserMessage.VERSION) {
            throw new VhostUserProtocolException(FrontendRequest.name(m.request()) + ": protocol version "
                    + version + ", only version 1 is spoken");
        }
        int size = m.size();
        if (size < 0 || size > VhostUserMessage.MAX_PAYLOAD) {
            throw new VhostUserProtocolException(FrontendRequest.name(m.request()) + ": payload size "
                    + Integer.toUnsignedString(size) + " exceeds " + VhostUserMessage.MAX_PAYLOAD);
        }
        if (size > 0 && !socket.receiveFully(m.payloadAddress(), size)) {
            throw new VhostUserProtocolException(FrontendRequest.name(m.request())
                    + ": connection closed inside a payload");
        }
    }

    /** Sends {@code m} with the descriptors attached to it; they stay owned by the caller. */
    public void write(VhostUserMessage m) throws NativeException {
        socket.send(m.address(), VhostUserMessage.HEADER_SIZE + m.size(), m.fdArray(), m.fdCount());
        m.forgetFds();
    }

    /** Wakes a thread blocked reading this connection. */
    public void shutdown() {
        socket.shutdown();
    }

    @Override
    public void close() {
        socket.close();
    }
}
