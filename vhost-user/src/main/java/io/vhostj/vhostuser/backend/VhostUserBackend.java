package io.vhostj.vhostuser.backend;

import static io.vhostj.vhostuser.protocol.FrontendRequest.*;

import java.util.ArrayList;
import java.util.List;

import org.agrona.concurrent.AgentRunner;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.device.VirtioDevice;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.GuestMemoryException;
import io.vhostj.vhostuser.memory.MemoryRegion;
import io.vhostj.vhostuser.protocol.FrontendRequest;
import io.vhostj.vhostuser.protocol.Payloads;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.protocol.VhostUserConnection;
import io.vhostj.vhostuser.protocol.VhostUserMessage;
import io.vhostj.vhostuser.protocol.VhostUserProtocolException;
import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.MappedRegion;
import io.vhostj.vhostuser.sys.Memfd;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.virtq.InflightRegion;
import io.vhostj.vhostuser.virtq.SplitQueue;
import io.vhostj.vhostuser.virtq.SplitRingLayout;
import io.vhostj.vhostuser.worker.KickIdleStrategy;
import io.vhostj.vhostuser.worker.QueueCounters;
import io.vhostj.vhostuser.worker.QueueWorker;

/**
 * The backend side of vhost-user for one device: decodes each front-end message, checks it,
 * turns it into device state, and starts and stops the queue workers. One connection at a time;
 * when it ends (or breaks the protocol) every piece of state goes and the next connection starts
 * clean.
 *
 * <p>Every dispatch arm has one shape: the message was validated by
 * {@link FrontendRequest#validate}, the arm decodes and applies it, and REPLY_ACK is answered in
 * one place ({@link #handle}).
 */
public final class VhostUserBackend {
    private static final Logger LOG = LoggerFactory.getLogger(VhostUserBackend.class);
    /** As libvhost-user: enough for memory hotplug, small enough for a linear lookup. */
    static final int MAX_MEM_SLOTS = 32;

    private final VirtioDevice device;
    private final long pollNanos;
    private int[] cpus = new int[0];
    private final long offeredFeatures;
    private final long offeredProtocolFeatures;
    private final Vring[] vrings;

    private long ackedFeatures;
    private long ackedProtocolFeatures;
    private boolean owned;
    private int status;
    private final List<MemoryRegion> regions = new ArrayList<>();
    private GuestMemory memory = GuestMemory.EMPTY;
    private MappedRegion inflight;
    private long inflightOffset;
    private int inflightQueues;
    private int inflightQueueSize;

    /**
     * Pins the worker of queue i to {@code cpus[i % cpus.length]} (empty: leave them to the
     * scheduler). Applies to queues started from now on.
     */
    public void pinQueues(int[] cpus) {
        this.cpus = cpus.clone();
    }

    public VhostUserBackend(VirtioDevice device, long pollNanos) {
        this.device = device;
        this.pollNanos = pollNanos;
        this.offeredFeatures = device.features() | ProtocolFeature.bit(ProtocolFeature.VHOST_USER_F_PROTOCOL_FEATURES);
        this.offeredProtocolFeatures = device.protocolFeatures() & ProtocolFeature.IMPLEMENTED;
        this.vrings = new Vring[device.queueCount()];
        for (int i = 0; i < vrings.length; i++) {
            vrings[i] = new Vring(i);
        }
    }

    public VirtioDevice device() {
        return device;
    }

    /** Counters of queue {@code index} (live object, updated by its worker). */
    public QueueCounters counters(int index) {
        return vrings[index].counters;
    }

    /**
     * Serves one connection until the peer hangs up or breaks the protocol; then resets all
     * state. Never throws for anything the peer does.
     */
    public void serve(VhostUserConnection connection) {
        try (VhostUserMessage m = new VhostUserMessage()) {
            while (connection.read(m)) {
                try {
                    handle(connection, m);
                } finally {
                    // A message refused before dispatch still brought its descriptors.
                    m.closeFds();
                }
            }
            LOG.info("{}: frontend disconnected", device.name());
        } catch (VhostUserProtocolException e) {
            LOG.error("{}: protocol error, closing the connection: {}", device.name(), e.getMessage());
        } catch (NativeException e) {
            LOG.error("{}: connection failed: {}", device.name(), e.getMessage());
        } catch (RuntimeException e) {
            LOG.error("{}: internal error, closing the connection", device.name(), e);
        } catch (InternalError e) {
            // HotSpot's answer to SIGBUS on a mapped file that shrank under us: the peer's doing.
            LOG.error("{}: memory fault in shared memory, closing the connection: {}", device.name(), e.getMessage());
        } finally {
            resetAll();
        }
    }

    /** Handles one received message, replying as the protocol asks. */
    void handle(VhostUserConnection connection, VhostUserMessage m)
            throws VhostUserProtocolException, NativeException {
        if (m.isReply()) {
            throw new VhostUserProtocolException("reply flag set on a request " + m);
        }
        FrontendRequest.validate(m);
        int request = m.request();
        LOG.debug("{}: {}", device.name(), m);
        boolean replied;
        boolean failed = false;
        try {
            replied = dispatch(connection, m);
        } catch (RequestRefusedException e) {
            LOG.warn("{}: refused {}: {}", device.name(), FrontendRequest.name(request), e.getMessage());
            failed = true;
            replied = false;
            if (FrontendRequest.hasReply(request)) {
                // The frontend waits for a reply; a zero-sized one is what it can recognise as failure.
                m.closeFds();
                m.beginReply(0);
                connection.write(m);
                replied = true;
            }
        } finally {
            m.closeFds();
        }
        if (!replied && m.needsReply() && ProtocolFeature.has(ackedProtocolFeatures, ProtocolFeature.REPLY_ACK)) {
            m.beginReply(Payloads.U64_SIZE).putPayloadLong(0, failed ? 1 : 0);
            connection.write(m);
        }
    }

    /** Returns true if it sent the reply itself (requests with a reply payload). */
    private boolean dispatch(VhostUserConnection c, VhostUserMessage m)
            throws VhostUserProtocolException, RequestRefusedException, NativeException {
        switch (m.request()) {
            case GET_FEATURES -> {
                return replyU64(c, m, offeredFeatures);
            }
            case SET_FEATURES -> setFeatures(m.payloadLong(0));
            case SET_OWNER -> owned = true;
            case RESET_OWNER -> resetDevice("RESET_OWNER");
            case GET_PROTOCOL_FEATURES -> {
                return replyU64(c, m, offeredProtocolFeatures);
            }
            case SET_PROTOCOL_FEATURES -> setProtocolFeatures(m.payloadLong(0));
            case GET_QUEUE_NUM -> {
                return replyU64(c, m, vrings.length);
            }
            case GET_MAX_MEM_SLOTS -> {
                return replyU64(c, m, MAX_MEM_SLOTS);
            }
            case SET_MEM_TABLE -> setMemTable(m);
            case ADD_MEM_REG -> addMemRegion(m);
            case REM_MEM_REG -> removeMemRegion(m);
            case SET_VRING_NUM -> setVringNum(m);
            case SET_VRING_ADDR -> setVringAddr(m);
            case SET_VRING_BASE -> setVringBase(m);
            case GET_VRING_BASE -> {
                return getVringBase(c, m);
            }
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> setVringFd(m);
            case SET_VRING_ENABLE -> setVringEnable(m);
            case GET_CONFIG -> {
                return getConfig(c, m);
            }
            case SET_CONFIG -> setConfig(m);
            case GET_INFLIGHT_FD -> {
                return getInflightFd(c, m);
            }
            case SET_INFLIGHT_FD -> setInflightFd(m);
            case SET_STATUS -> {
                requireProtocol(ProtocolFeature.STATUS);
                status = (int) (m.payloadLong(0) & 0xff);
                LOG.info("{}: device status 0x{}", device.name(), Integer.toHexString(status));
            }
            case GET_STATUS -> {
                requireProtocol(ProtocolFeature.STATUS);
                return replyU64(c, m, status);
            }
            case RESET_DEVICE -> {
                requireProtocol(ProtocolFeature.RESET_DEVICE);
                resetDevice("RESET_DEVICE");
            }
            case SET_LOG_BASE, SET_LOG_FD ->
                throw new RequestRefusedException("dirty-page logging (migration) is not offered: VHOST_F_LOG_ALL "
                        + "and LOG_SHMFD are not in the feature set");
            default -> throw new RequestRefusedException("message type not supported by this backend");
        }
        return false;
    }

    private boolean replyU64(VhostUserConnection c, VhostUserMessage m, long value) throws NativeException {
        m.closeFds();
        m.beginReply(Payloads.U64_SIZE).putPayloadLong(0, value);
        c.write(m);
        return true;
    }

    private void requireProtocol(int feature) throws RequestRefusedException {
        if (!ProtocolFeature.has(ackedProtocolFeatures, feature)) {
            throw new RequestRefusedException("protocol feature " + feature + " was not negotiated");
        }
    }

    // ---- features --------------------------------------------------------------------------------

    private void setFeatures(long features) throws VhostUserProtocolException {
        if ((features & ~offeredFeatures) != 0) {
            throw new VhostUserProtocolException(String.format(
                    "SET_FEATURES 0x%x acks features that were not offered (0x%x)", features, offeredFeatures));
        }
        ackedFeatures = features;
        device.featuresAcked(features & ~ProtocolFeature.bit(ProtocolFeature.VHOST_USER_F_PROTOCOL_FEATURES));
        // Without VHOST_USER_F_PROTOCOL_FEATURES rings start enabled (vhost-user.rst, "Ring states").
        if (!ProtocolFeature.has(features, ProtocolFeature.VHOST_USER_F_PROTOCOL_FEATURES)) {
            for (Vring v : vrings) {
                v.enabled = true;
            }
        }
        LOG.info("{}: features 0x{} acked", device.name(), Long.toHexString(features));
    }

    private void setProtocolFeatures(long features) throws VhostUserProtocolException {
        if ((features & ~offeredProtocolFeatures) != 0) {
            throw new VhostUserProtocolException(String.format(
                    "SET_PROTOCOL_FEATURES 0x%x acks features that were not offered (0x%x)", features,
                    offeredProtocolFeatures));
        }
        ackedProtocolFeatures = features;
        LOG.info("{}: protocol features 0x{} acked", device.name(), Long.toHexString(features));
    }

    // ---- memory ------------------------------------------------------------------------------------

    private void setMemTable(VhostUserMessage m) throws VhostUserProtocolException, NativeException {
        int n = m.payloadInt(Payloads.MEM_TABLE_NREGIONS);
        List<MemoryRegion> fresh = new ArrayList<>(n);
        try {
            for (int i = 0; i < n; i++) {
                int base = Payloads.MEM_TABLE_REGIONS + i * Payloads.REGION_SIZE;
                fresh.add(mapRegion(m, base, i));
            }
            GuestMemory view = GuestMemory.of(fresh);
            replaceMemory(() -> {
                regions.forEach(MemoryRegion::close);
                regions.clear();
                regions.addAll(fresh);
                return view;
            });
            LOG.info("{}: memory table of {} regions: {}", device.name(), n, fresh);
        } catch (GuestMemoryException e) {
            fresh.forEach(MemoryRegion::close);
            throw new VhostUserProtocolException("SET_MEM_TABLE: " + e.getMessage());
        } catch (NativeException | RuntimeException e) {
            fresh.forEach(MemoryRegion::close);
            throw e;
        }
    }

    private void addMemRegion(VhostUserMessage m) throws VhostUserProtocolException, NativeException,
            RequestRefusedException {
        requireProtocol(ProtocolFeature.CONFIGURE_MEM_SLOTS);
        if (regions.size() >= MAX_MEM_SLOTS) {
            throw new RequestRefusedException("all " + MAX_MEM_SLOTS + " memory slots are in use");
        }
        MemoryRegion region;
        try {
            region = mapRegion(m, Payloads.SINGLE_REGION, 0);
        } catch (GuestMemoryException e) {
            throw new VhostUserProtocolException("ADD_MEM_REG: " + e.getMessage());
        }
        List<MemoryRegion> next = new ArrayList<>(regions);
        next.add(region);
        GuestMemory view;
        try {
            view = GuestMemory.of(next);
        } catch (GuestMemoryException e) {
            region.close();
            throw new VhostUserProtocolException("ADD_MEM_REG: " + e.getMessage());
        }
        replaceMemory(() -> {
            regions.add(region);
            return view;
        });
        LOG.info("{}: added memory region {}", device.name(), region);
    }

    private void removeMemRegion(VhostUserMessage m) throws RequestRefusedException, VhostUserProtocolException {
        requireProtocol(ProtocolFeature.CONFIGURE_MEM_SLOTS);
        long gpa = m.payloadLong(Payloads.SINGLE_REGION + Payloads.REGION_GPA);
        long size = m.payloadLong(Payloads.SINGLE_REGION + Payloads.REGION_MEMORY_SIZE);
        long uva = m.payloadLong(Payloads.SINGLE_REGION + Payloads.REGION_UVA);
        MemoryRegion found = null;
        for (MemoryRegion r : regions) {
            if (r.guestPhysAddr() == gpa && r.size() == size && r.userAddr() == uva) {
                found = r;
            }
        }
        if (found == null) {
            throw new RequestRefusedException(String.format("no region at gpa 0x%x size 0x%x uva 0x%x", gpa, size, uva));
        }
        MemoryRegion gone = found;
        List<MemoryRegion> next = new ArrayList<>(regions);
        next.remove(gone);
        GuestMemory view;
        try {
            view = GuestMemory.of(next);
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e); // a subset of a valid table is valid
        }
        replaceMemory(() -> {
            regions.remove(gone);
            gone.close();
            return view;
        });
        LOG.info("{}: removed memory region {}", device.name(), gone);
    }

    private MemoryRegion mapRegion(VhostUserMessage m, int base, int fdIndex) throws NativeException,
            GuestMemoryException {
        long gpa = m.payloadLong(base + Payloads.REGION_GPA);
        long size = m.payloadLong(base + Payloads.REGION_MEMORY_SIZE);
        long uva = m.payloadLong(base + Payloads.REGION_UVA);
        long offset = m.payloadLong(base + Payloads.REGION_MMAP_OFFSET);
        return MemoryRegion.map(gpa, size, uva, offset, m.fd(fdIndex));
        // the message closes the fd afterwards; the mapping keeps the memory
    }

    private interface MemorySwap {
        GuestMemory apply();
    }

    /**
     * Unmapping under a running worker would crash the JVM, so: stop every running queue, swap
     * the table, restart the queues on the new view.
     */
    private void replaceMemory(MemorySwap swap) throws VhostUserProtocolException {
        whileStopped(() -> memory = swap.apply());
    }

    /** Runs {@code change} with every running queue stopped, then restarts them. */
    private void whileStopped(Runnable change) throws VhostUserProtocolException {
        List<Vring> stopped = new ArrayList<>();
        for (Vring v : vrings) {
            if (v.isRunning()) {
                v.stop();
                stopped.add(v);
            }
        }
        change.run();
        for (Vring v : stopped) {
            maybeStart(v);
        }
    }

    /**
     * Swaps the inflight region. A running worker records into the old one, so it is stopped
     * before the old mapping goes away and restarted on the new one.
     */
    private void replaceInflight(MappedRegion mapping, long offset, int numQueues, int queueSize)
            throws VhostUserProtocolException {
        whileStopped(() -> {
            if (inflight != null) {
                inflight.close();
            }
            inflight = mapping;
            inflightOffset = offset;
            inflightQueues = numQueues;
            inflightQueueSize = queueSize;
        });
    }

    // ---- vrings ------------------------------------------------------------------------------------

    private Vring vring(VhostUserMessage m, long index) throws VhostUserProtocolException {
        if (index < 0 || index >= vrings.length) {
            throw new VhostUserProtocolException(FrontendRequest.name(m.request()) + ": queue index " + index
                    + " but the device has " + vrings.length + " queues");
        }
        return vrings[(int) index];
    }

    private void setVringNum(VhostUserMessage m) throws VhostUserProtocolException {
        Vring v = vring(m, m.payloadInt(Payloads.VRING_STATE_INDEX) & 0xffff_ffffL);
        int num = m.payloadInt(Payloads.VRING_STATE_NUM);
        if (!SplitRingLayout.isValidQueueSize(num) || num > device.maxQueueSize()) {
            throw new VhostUserProtocolException("SET_VRING_NUM: queue size " + Integer.toUnsignedString(num)
                    + " is not a power of two <= " + Math.min(device.maxQueueSize(), SplitRingLayout.MAX_QUEUE_SIZE));
        }
        if (v.isRunning()) {
            throw new VhostUserProtocolException("SET_VRING_NUM on running queue " + v.index);
        }
        v.size = num;
    }

    private void setVringAddr(VhostUserMessage m) throws VhostUserProtocolException, RequestRefusedException {
        Vring v = vring(m, m.payloadInt(Payloads.VRING_ADDR_INDEX) & 0xffff_ffffL);
        if ((m.payloadInt(Payloads.VRING_ADDR_FLAGS) & Payloads.VRING_F_LOG) != 0) {
            throw new RequestRefusedException("vring logging requested, but VHOST_F_LOG_ALL is not offered");
        }
        long desc = m.payloadLong(Payloads.VRING_ADDR_DESC);
        long used = m.payloadLong(Payloads.VRING_ADDR_USED);
        long avail = m.payloadLong(Payloads.VRING_ADDR_AVAIL);
        if ((desc & (SplitRingLayout.DESC_ALIGN - 1)) != 0 || (avail & (SplitRingLayout.AVAIL_ALIGN - 1)) != 0
                || (used & (SplitRingLayout.USED_ALIGN - 1)) != 0) {
            throw new VhostUserProtocolException(String.format(
                    "SET_VRING_ADDR: misaligned rings desc=0x%x avail=0x%x used=0x%x", desc, avail, used));
        }
        if (v.size == 0) {
            throw new VhostUserProtocolException("SET_VRING_ADDR before SET_VRING_NUM on queue " + v.index);
        }
        try {
            translateRings(v.size, desc, avail, used);
        } catch (GuestMemoryException e) {
            throw new VhostUserProtocolException("SET_VRING_ADDR queue " + v.index + ": " + e.getMessage());
        }
        boolean wasRunning = v.isRunning();
        v.stop();
        v.descUserAddr = desc;
        v.availUserAddr = avail;
        v.usedUserAddr = used;
        v.addressSet = true;
        if (wasRunning) {
            maybeStart(v);
        }
    }

    private long[] translateRings(int size, long desc, long avail, long used) throws GuestMemoryException {
        return new long[] {
            memory.translateUser(desc, SplitRingLayout.descTableSize(size)),
            memory.translateUser(avail, SplitRingLayout.availRingSize(size)),
            memory.translateUser(used, SplitRingLayout.usedRingSize(size)),
        };
    }

    private void setVringBase(VhostUserMessage m) throws VhostUserProtocolException {
        Vring v = vring(m, m.payloadInt(Payloads.VRING_STATE_INDEX) & 0xffff_ffffL);
        int num = m.payloadInt(Payloads.VRING_STATE_NUM);
        if ((num & ~0xffff) != 0) {
            throw new VhostUserProtocolException("SET_VRING_BASE: split-ring index " + num + " exceeds 16 bits");
        }
        if (v.isRunning()) {
            throw new VhostUserProtocolException("SET_VRING_BASE on running queue " + v.index);
        }
        v.base = num;
    }

    private boolean getVringBase(VhostUserConnection c, VhostUserMessage m)
            throws VhostUserProtocolException, NativeException {
        Vring v = vring(m, m.payloadInt(Payloads.VRING_STATE_INDEX) & 0xffff_ffffL);
        // vhost-user.rst: GET_VRING_BASE stops the ring.
        v.stop();
        v.closeKick();
        LOG.info("{}: queue {} stopped at {} ({})", device.name(), v.index, v.base, v.counters);
        m.beginReply(Payloads.VRING_STATE_SIZE);
        m.putPayloadInt(Payloads.VRING_STATE_INDEX, v.index);
        m.putPayloadInt(Payloads.VRING_STATE_NUM, v.base);
        c.write(m);
        return true;
    }

    private void setVringFd(VhostUserMessage m) throws VhostUserProtocolException, NativeException {
        long u64 = m.payloadLong(0);
        if ((u64 & ~(Payloads.VRING_INDEX_MASK | Payloads.VRING_NOFD_MASK)) != 0) {
            throw new VhostUserProtocolException(FrontendRequest.name(m.request()) + ": reserved bits set in 0x"
                    + Long.toHexString(u64));
        }
        Vring v = vring(m, u64 & Payloads.VRING_INDEX_MASK);
        boolean noFd = (u64 & Payloads.VRING_NOFD_MASK) != 0;
        EventFd fd = noFd ? null : new EventFd(m.takeFd(0));
        // A worker holds the old descriptors: stop it before they change, restart after.
        boolean wasRunning = v.isRunning();
        v.stop();
        switch (m.request()) {
            case SET_VRING_KICK -> {
                v.closeKick();
                v.kick = fd;
                v.kickPolled = noFd;
            }
            case SET_VRING_CALL -> {
                if (v.call != null) {
                    v.call.close();
                }
                v.call = fd;
            }
            default -> {
                if (v.err != null) {
                    v.err.close();
                }
                v.err = fd;
            }
        }
        if (wasRunning || m.request() == SET_VRING_KICK) {
            maybeStart(v);
        }
    }

    private void setVringEnable(VhostUserMessage m) throws VhostUserProtocolException {
        Vring v = vring(m, m.payloadInt(Payloads.VRING_STATE_INDEX) & 0xffff_ffffL);
        int num = m.payloadInt(Payloads.VRING_STATE_NUM);
        if (num != 0 && num != 1) {
            throw new VhostUserProtocolException("SET_VRING_ENABLE: value " + num + " is neither 0 nor 1");
        }
        v.enabled = num == 1;
        if (v.enabled) {
            maybeStart(v);
        } else {
            v.stop();
        }
    }

    /** Starts the worker of {@code v} once the frontend has told us everything it needs. */
    private void maybeStart(Vring v) throws VhostUserProtocolException {
        if (v.isRunning() || !v.enabled || !v.hasKick() || !v.addressSet || v.size == 0 || memory.isEmpty()) {
            return;
        }
        long[] host;
        try {
            host = translateRings(v.size, v.descUserAddr, v.availUserAddr, v.usedUserAddr);
        } catch (GuestMemoryException e) {
            throw new VhostUserProtocolException("queue " + v.index + " rings are outside the memory table: "
                    + e.getMessage());
        }
        SplitQueue queue = SplitQueue.create(v.size, host[0], host[1], host[2], memory, ackedFeatures, v.base);
        if (inflight != null && ProtocolFeature.has(ackedProtocolFeatures, ProtocolFeature.INFLIGHT_SHMFD)) {
            if (v.index < inflightQueues && v.size == inflightQueueSize) {
                long at = inflight.address() + inflightOffset + v.index * InflightRegion.queueRegionSize(v.size);
                int resubmit = queue.attachInflight(InflightRegion.open(at, v.size));
                if (resubmit > 0) {
                    LOG.warn("{}: queue {} resubmits {} request(s) left in flight by a previous backend",
                            device.name(), v.index, resubmit);
                }
            } else {
                LOG.warn("{}: queue {} (size {}) has no slot in the inflight region ({} queues of {}): not tracked",
                        device.name(), v.index, v.size, inflightQueues, inflightQueueSize);
            }
        }
        QueueHandler handler = device.queueHandler(v.index, memory);
        String role = "vhostj-" + device.name() + "-q" + v.index;
        int cpu = cpus.length == 0 ? -1 : cpus[v.index % cpus.length];
        QueueWorker worker = new QueueWorker(role, queue, handler, v.call, v.err, v.counters, cpu);
        KickIdleStrategy idle = new KickIdleStrategy(queue, worker, v.kick, pollNanos, v.counters);
        AgentRunner runner = new AgentRunner(idle, t -> LOG.error("{}: worker failed", role, t), null, worker);
        v.start(queue, worker, idle, runner);
        LOG.info("{}: queue {} started (size {}, avail index {}{})", device.name(), v.index, v.size, v.base,
                cpu < 0 ? "" : ", on CPU " + cpu);
    }

    // ---- config ------------------------------------------------------------------------------------

    private boolean getConfig(VhostUserConnection c, VhostUserMessage m)
            throws RequestRefusedException, NativeException {
        requireProtocol(ProtocolFeature.CONFIG);
        int offset = m.payloadInt(Payloads.CONFIG_OFFSET);
        int size = m.payloadInt(Payloads.CONFIG_SIZE);
        int flags = m.payloadInt(Payloads.CONFIG_FLAGS);
        checkConfigRange(offset, size);
        byte[] data = new byte[size];
        device.readConfig(offset, data);
        m.beginReply(Payloads.CONFIG_HEADER_SIZE + size);
        m.putPayloadInt(Payloads.CONFIG_OFFSET, offset);
        m.putPayloadInt(Payloads.CONFIG_SIZE, size);
        m.putPayloadInt(Payloads.CONFIG_FLAGS, flags);
        m.putPayloadBytes(Payloads.CONFIG_PAYLOAD, data);
        c.write(m);
        return true;
    }

    private void setConfig(VhostUserMessage m) throws RequestRefusedException {
        requireProtocol(ProtocolFeature.CONFIG);
        int offset = m.payloadInt(Payloads.CONFIG_OFFSET);
        int size = m.payloadInt(Payloads.CONFIG_SIZE);
        checkConfigRange(offset, size);
        if (!device.writeConfig(offset, m.payloadBytes(Payloads.CONFIG_PAYLOAD, size))) {
            throw new RequestRefusedException("the device does not accept config writes at " + offset + "+" + size);
        }
    }

    private void checkConfigRange(int offset, int size) throws RequestRefusedException {
        long end = (offset & 0xffff_ffffL) + (size & 0xffff_ffffL);
        if (offset < 0 || size < 0 || end > device.configSize()) {
            throw new RequestRefusedException("config range " + Integer.toUnsignedString(offset) + "+"
                    + Integer.toUnsignedString(size) + " outside the " + device.configSize() + "-byte config space");
        }
    }

    // ---- inflight tracking -------------------------------------------------------------------------

    private boolean getInflightFd(VhostUserConnection c, VhostUserMessage m)
            throws RequestRefusedException, NativeException, VhostUserProtocolException {
        requireProtocol(ProtocolFeature.INFLIGHT_SHMFD);
        int numQueues = m.payloadShort(Payloads.INFLIGHT_NUM_QUEUES);
        int queueSize = m.payloadShort(Payloads.INFLIGHT_QUEUE_SIZE);
        if (numQueues == 0 || numQueues > vrings.length || !SplitRingLayout.isValidQueueSize(queueSize)) {
            throw new RequestRefusedException("inflight region for " + numQueues + " queues of " + queueSize);
        }
        long size = numQueues * InflightRegion.queueRegionSize(queueSize);
        try (Fd fd = Memfd.create("vhostj-inflight", size)) {
            MappedRegion mapping = MappedRegion.map(fd.fd(), size, 0);
            for (int i = 0; i < numQueues; i++) {
                InflightRegion.format(mapping.address() + i * InflightRegion.queueRegionSize(queueSize), queueSize);
            }
            replaceInflight(mapping, 0, numQueues, queueSize);
            m.beginReply(Payloads.INFLIGHT_SIZE);
            m.putPayloadLong(Payloads.INFLIGHT_MMAP_SIZE, size);
            m.putPayloadLong(Payloads.INFLIGHT_MMAP_OFFSET, 0);
            m.putPayloadShort(Payloads.INFLIGHT_NUM_QUEUES, numQueues);
            m.putPayloadShort(Payloads.INFLIGHT_QUEUE_SIZE, queueSize);
            m.addFd(fd.fd());
            c.write(m);
        }
        LOG.info("{}: inflight region of {} bytes for {} queues of {}", device.name(), size, numQueues, queueSize);
        return true;
    }

    private void setInflightFd(VhostUserMessage m)
            throws RequestRefusedException, NativeException, VhostUserProtocolException {
        requireProtocol(ProtocolFeature.INFLIGHT_SHMFD);
        long size = m.payloadLong(Payloads.INFLIGHT_MMAP_SIZE);
        long offset = m.payloadLong(Payloads.INFLIGHT_MMAP_OFFSET);
        if (size <= 0 || offset < 0 || size + offset < 0) {
            throw new RequestRefusedException("inflight region of size " + size + " at " + offset);
        }
        int numQueues = m.payloadShort(Payloads.INFLIGHT_NUM_QUEUES);
        int queueSize = m.payloadShort(Payloads.INFLIGHT_QUEUE_SIZE);
        if (!SplitRingLayout.isValidQueueSize(queueSize) || numQueues * InflightRegion.queueRegionSize(queueSize) > size) {
            throw new RequestRefusedException("inflight region of " + size + " bytes cannot hold " + numQueues
                    + " queues of " + queueSize);
        }
        MappedRegion mapping = MappedRegion.map(m.fd(0), size + offset, 0);
        replaceInflight(mapping, offset, numQueues, queueSize);
        LOG.info("{}: inflight region set ({} queues of {})", device.name(), numQueues, queueSize);
    }

    // ---- reset -------------------------------------------------------------------------------------

    private void resetDevice(String why) {
        for (Vring v : vrings) {
            v.reset();
        }
        ackedFeatures = 0;
        status = 0;
        device.reset();
        LOG.info("{}: device reset ({})", device.name(), why);
    }

    /** Connection gone: everything back to the state before the first message. */
    void resetAll() {
        resetDevice("connection closed");
        regions.forEach(MemoryRegion::close);
        regions.clear();
        memory = GuestMemory.EMPTY;
        if (inflight != null) {
            inflight.close();
            inflight = null;
        }
        ackedProtocolFeatures = 0;
        owned = false;
    }

    boolean isOwned() {
        return owned;
    }
}
