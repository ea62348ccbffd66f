package io.vhostj.vhostuser.frontend;

import static io.vhostj.vhostuser.protocol.FrontendRequest.*;

import java.nio.file.Path;

import io.vhostj.vhostuser.protocol.FrontendRequest;
import io.vhostj.vhostuser.protocol.Payloads;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.protocol.VhostUserConnection;
import io.vhostj.vhostuser.protocol.VhostUserMessage;
import io.vhostj.vhostuser.protocol.VhostUserProtocolException;
import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.UnixSocket;
import io.vhostj.vhostuser.virtq.VirtioFeatures;

/**
 * The hypervisor's side of vhost-user: drives any backend's socket (ours, qemu-storage-daemon,
 * virtiofsd). Used by the tests in place of mocks and by the benchmark tool. Control path only;
 * the data path is {@link DriverQueue}.
 */
public final class VhostUserFrontend implements AutoCloseable {
    private final VhostUserConnection connection;
    private final VhostUserMessage m = new VhostUserMessage();
    private long protocolFeatures;
    private long features;

    private VhostUserFrontend(VhostUserConnection connection) {
        this.connection = connection;
    }

    public static VhostUserFrontend connect(Path socket) throws NativeException {
        return new VhostUserFrontend(new VhostUserConnection(UnixSocket.connect(socket)));
    }

    /**
     * Connects, retrying until {@code timeoutMs} passes (a backend just started may not be
     * listening yet).
     */
    public static VhostUserFrontend connect(Path socket, long timeoutMs) throws NativeException, InterruptedException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            try {
                return connect(socket);
            } catch (NativeException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(20);
            }
        }
    }

    // ---- negotiation -------------------------------------------------------------------------------

    /**
     * A session's start as a driver makes it: the backend's features read (VIRTIO_F_VERSION_1
     * required), the protocol features both sides have out of {@code protocolWanted} set (if
     * the backend speaks them), SET_OWNER, and the features both sides have out of
     * {@code wanted} set. Returns those features.
     */
    public long negotiate(long wanted, long protocolWanted) throws NativeException, VhostUserProtocolException {
        long offered = getFeatures();
        if (!VirtioFeatures.has(offered, VirtioFeatures.VERSION_1)) {
            throw new VhostUserProtocolException("backend does not offer VIRTIO_F_VERSION_1");
        }
        if (ProtocolFeature.has(offered, ProtocolFeature.VHOST_USER_F_PROTOCOL_FEATURES)) {
            setProtocolFeatures(getProtocolFeatures() & protocolWanted);
        }
        setOwner();
        long acked = offered & (wanted | ProtocolFeature.bit(ProtocolFeature.VHOST_USER_F_PROTOCOL_FEATURES));
        setFeatures(acked);
        return acked;
    }

    public long getFeatures() throws NativeException, VhostUserProtocolException {
        return requestU64(GET_FEATURES);
    }

    public void setFeatures(long features) throws NativeException, VhostUserProtocolException {
        sendU64(SET_FEATURES, features);
        this.features = features;
    }

    public long getProtocolFeatures() throws NativeException, VhostUserProtocolException {
        return requestU64(GET_PROTOCOL_FEATURES);
    }

    public void setProtocolFeatures(long features) throws NativeException, VhostUserProtocolException {
        sendU64(SET_PROTOCOL_FEATURES, features);
        protocolFeatures = features;
    }

    public long protocolFeatures() {
        return protocolFeatures;
    }

    public void setOwner() throws NativeException, VhostUserProtocolException {
        send(m.begin(SET_OWNER, 0, 0));
    }

    public int getQueueNum() throws NativeException, VhostUserProtocolException {
        return (int) requestU64(GET_QUEUE_NUM);
    }

    public int getMaxMemSlots() throws NativeException, VhostUserProtocolException {
        return (int) requestU64(GET_MAX_MEM_SLOTS);
    }

    public void setStatus(int status) throws NativeException, VhostUserProtocolException {
        sendU64(SET_STATUS, status);
    }

    public int getStatus() throws NativeException, VhostUserProtocolException {
        return (int) requestU64(GET_STATUS);
    }

    public void resetDevice() throws NativeException, VhostUserProtocolException {
        send(m.begin(RESET_DEVICE, 0, 0));
    }

    // ---- memory ------------------------------------------------------------------------------------

    public void setMemTable(GuestRam... rams) throws NativeException, VhostUserProtocolException {
        m.begin(SET_MEM_TABLE, 0, Payloads.MEM_TABLE_REGIONS + rams.length * Payloads.REGION_SIZE);
        m.putPayloadInt(Payloads.MEM_TABLE_NREGIONS, rams.length);
        for (int i = 0; i < rams.length; i++) {
            putRegion(Payloads.MEM_TABLE_REGIONS + i * Payloads.REGION_SIZE, rams[i]);
            m.addFd(rams[i].fd());
        }
        send(m);
    }

    public void addMemRegion(GuestRam ram) throws NativeException, VhostUserProtocolException {
        m.begin(ADD_MEM_REG, 0, Payloads.SINGLE_REGION_SIZE);
        putRegion(Payloads.SINGLE_REGION, ram);
        m.addFd(ram.fd());
        send(m);
    }

    public void removeMemRegion(GuestRam ram) throws NativeException, VhostUserProtocolException {
        m.begin(REM_MEM_REG, 0, Payloads.SINGLE_REGION_SIZE);
        putRegion(Payloads.SINGLE_REGION, ram);
        send(m);
    }

    private void putRegion(int base, GuestRam ram) {
        m.putPayloadLong(base + Payloads.REGION_GPA, ram.guestPhysBase());
        m.putPayloadLong(base + Payloads.REGION_MEMORY_SIZE, ram.size());
        m.putPayloadLong(base + Payloads.REGION_UVA, ram.userAddr());
        m.putPayloadLong(base + Payloads.REGION_MMAP_OFFSET, 0);
    }

    // ---- vrings ------------------------------------------------------------------------------------

    public void setVringNum(int index, int num) throws NativeException, VhostUserProtocolException {
        sendState(SET_VRING_NUM, index, num);
    }

    public void setVringBase(int index, int base) throws NativeException, VhostUserProtocolException {
        sendState(SET_VRING_BASE, index, base);
    }

    public void setVringEnable(int index, boolean enable) throws NativeException, VhostUserProtocolException {
        sendState(SET_VRING_ENABLE, index, enable ? 1 : 0);
    }

    public void setVringAddr(int index, long descUva, long usedUva, long availUva)
            throws NativeException, VhostUserProtocolException {
        m.begin(SET_VRING_ADDR, 0, Payloads.VRING_ADDR_SIZE);
        m.putPayloadInt(Payloads.VRING_ADDR_INDEX, index);
        m.putPayloadLong(Payloads.VRING_ADDR_DESC, descUva);
        m.putPayloadLong(Payloads.VRING_ADDR_USED, usedUva);
        m.putPayloadLong(Payloads.VRING_ADDR_AVAIL, availUva);
        send(m);
    }

    /** Stops the ring in the backend and returns its last avail index. */
    public int getVringBase(int index) throws NativeException, VhostUserProtocolException {
        m.begin(GET_VRING_BASE, 0, Payloads.VRING_STATE_SIZE);
        m.putPayloadInt(Payloads.VRING_STATE_INDEX, index);
        connection.write(m);
        readReply(GET_VRING_BASE, Payloads.VRING_STATE_SIZE);
        return m.payloadInt(Payloads.VRING_STATE_NUM);
    }

    public void setVringKick(int index, EventFd fd) throws NativeException, VhostUserProtocolException {
        sendVringFd(SET_VRING_KICK, index, fd);
    }

    /** {@code fd == null}: no interrupts, the driver polls. */
    public void setVringCall(int index, EventFd fd) throws NativeException, VhostUserProtocolException {
        sendVringFd(SET_VRING_CALL, index, fd);
    }

    public void setVringErr(int index, EventFd fd) throws NativeException, VhostUserProtocolException {
        sendVringFd(SET_VRING_ERR, index, fd);
    }

    private void sendVringFd(int request, int index, EventFd fd) throws NativeException, VhostUserProtocolException {
        m.begin(request, 0, Payloads.U64_SIZE);
        m.putPayloadLong(0, (index & Payloads.VRING_INDEX_MASK) | (fd == null ? Payloads.VRING_NOFD_MASK : 0));
        if (fd != null) {
            m.addFd(fd.fd());
        }
        send(m);
    }

    /**
     * The usual ring start sequence of a hypervisor: num, base, addresses, kick, call, enable.
     */
    public void startQueue(int index, DriverQueue q, EventFd kick, EventFd call)
            throws NativeException, VhostUserProtocolException {
        setVringNum(index, q.size());
        setVringBase(index, q.availIndex());
        setVringAddr(index, q.descUserAddr(), q.usedUserAddr(), q.availUserAddr());
        setVringKick(index, kick);
        setVringCall(index, call);
        // With VHOST_USER_F_PROTOCOL_FEATURES rings start disabled (vhost-user.rst, "Ring states").
        if (ProtocolFeature.has(features, ProtocolFeature.VHOST_USER_F_PROTOCOL_FEATURES)) {
            setVringEnable(index, true);
        }
    }

    // ---- config ------------------------------------------------------------------------------------

    public byte[] getConfig(int offset, int size) throws NativeException, VhostUserProtocolException {
        m.begin(GET_CONFIG, 0, Payloads.CONFIG_HEADER_SIZE + size);
        m.putPayloadInt(Payloads.CONFIG_OFFSET, offset);
        m.putPayloadInt(Payloads.CONFIG_SIZE, size);
        connection.write(m);
        readReply(GET_CONFIG, Payloads.CONFIG_HEADER_SIZE + size);
        return m.payloadBytes(Payloads.CONFIG_PAYLOAD, size);
    }

    // ---- plumbing ----------------------------------------------------------------------------------

    /** Sends a raw message as built by the caller in {@link #message()} and handles REPLY_ACK. */
    public void send(VhostUserMessage msg) throws NativeException, VhostUserProtocolException {
        boolean ack = ProtocolFeature.has(protocolFeatures, ProtocolFeature.REPLY_ACK)
                && !FrontendRequest.hasReply(msg.request());
        int request = msg.request();
        if (ack) {
            msg.addFlags(VhostUserMessage.FLAG_NEED_REPLY);
        }
        connection.write(msg);
        if (ack) {
            readReply(request, Payloads.U64_SIZE);
            long status = m.payloadLong(0);
            if (status != 0) {
                throw new VhostUserProtocolException(FrontendRequest.name(request) + " failed in the backend (ack "
                        + status + ")");
            }
        }
    }

    /** The message buffer of this frontend, for hand-built (including malformed) messages. */
    public VhostUserMessage message() {
        return m;
    }

    public VhostUserConnection connection() {
        return connection;
    }

    private long requestU64(int request) throws NativeException, VhostUserProtocolException {
        connection.write(m.begin(request, 0, 0));
        readReply(request, Payloads.U64_SIZE);
        return m.payloadLong(0);
    }

    private void sendU64(int request, long value) throws NativeException, VhostUserProtocolException {
        m.begin(request, 0, Payloads.U64_SIZE).putPayloadLong(0, value);
        send(m);
    }

    private void sendState(int request, int index, int num) throws NativeException, VhostUserProtocolException {
        m.begin(request, 0, Payloads.VRING_STATE_SIZE);
        m.putPayloadInt(Payloads.VRING_STATE_INDEX, index);
        m.putPayloadInt(Payloads.VRING_STATE_NUM, num);
        send(m);
    }

    private void readReply(int request, int expectedSize) throws NativeException, VhostUserProtocolException {
        if (!connection.read(m)) {
            throw new VhostUserProtocolException(FrontendRequest.name(request) + ": backend closed the connection");
        }
        m.closeFds();
        if (!m.isReply() || m.request() != request) {
            throw new VhostUserProtocolException("expected a reply to " + FrontendRequest.name(request) + ", got " + m);
        }
        if (m.size() != expectedSize) {
            throw new VhostUserProtocolException(FrontendRequest.name(request) + ": reply of " + m.size()
                    + " bytes, expected " + expectedSize + " (the backend refused it)");
        }
    }

    @Override
    public void close() {
        connection.close();
        m.close();
    }
}
