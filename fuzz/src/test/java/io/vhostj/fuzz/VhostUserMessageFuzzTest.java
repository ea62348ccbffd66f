package io.vhostj.fuzz;

import static io.vhostj.vhostuser.protocol.FrontendRequest.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.vhostj.fuzz.MessageScript.Record;
import io.vhostj.vhostuser.backend.VhostUserBackend;
import io.vhostj.vhostuser.protocol.FrontendRequest;
import io.vhostj.vhostuser.protocol.Payloads;
import io.vhostj.vhostuser.protocol.VhostUserConnection;
import io.vhostj.vhostuser.protocol.VhostUserMessage;
import io.vhostj.vhostuser.protocol.VhostUserProtocolException;
import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.Memfd;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.UnixSocket;
import io.vhostj.vhostuser.virtq.SplitRingLayout;

/**
 * A frontend that sends whatever the fuzzer wrote, to the real backend dispatcher over a real
 * Unix socket, descriptors included (see {@link MessageScript} for the input format).
 *
 * <p>Each input is one connection, served on the fuzzer's thread by
 * {@link VhostUserBackend#serve} until the stream ends: the whole input is written first and the
 * write side shut down, so the backend reads exactly these bytes and then EOF. One backend
 * serves every input, as one process serves every reconnect. What must hold after each:
 * <ul>
 *   <li>nothing escapes {@code serve()} (it promises never to throw for what the peer does);</li>
 *   <li>no internal error was logged: {@code serve()} turns a RuntimeException of a handler
 *       into a log line, {@link RecordingLoggerProvider} turns it back into a finding;</li>
 *   <li>the connection left no memfd, eventfd or memfd mapping behind;</li>
 *   <li>per message, {@link FrontendRequest#validate} throws nothing but
 *       VhostUserProtocolException, accepts exactly the shapes the vhost-user spec gives each
 *       type, and every payload field of an accepted message can be read.</li>
 * </ul>
 */
class VhostUserMessageFuzzTest {
    /** Bounds what one input may queue in the socket in each direction (no reader runs meanwhile). */
    private static final int MAX_MESSAGES = 64;
    private static final int MAX_INPUT = 16 << 10;
    /** Guest RAM as the seeds map it. */
    static final long RAM_SIZE = 64 << 10;
    private static final int SHUT_WR = 1;

    @TempDir
    static Path dir;
    private static UnixSocket listener;
    private static Path socketPath;
    private static VhostUserBackend backend;
    private static long sendBuffer;
    private static NativeCensus baseline;

    @BeforeAll
    static void startBackend() throws IOException {
        socketPath = dir.resolve("backend.sock");
        listener = UnixSocket.listen(socketPath, 4);
        backend = new VhostUserBackend(new FuzzDevice(), 0);
        sendBuffer = Native.allocate(VhostUserMessage.HEADER_SIZE + VhostUserMessage.MAX_PAYLOAD);
        baseline = NativeCensus.take();
    }

    @AfterAll
    static void stopBackend() {
        listener.close();
        Native.free(sendBuffer);
    }

    @FuzzTest(maxDuration = "5s")
    void serveConnection(byte[] input) throws Exception {
        byte[] bounded = input.length > MAX_INPUT ? Arrays.copyOf(input, MAX_INPUT) : input;
        List<Record> records = MessageScript.parse(bounded, MAX_MESSAGES);
        for (Record r : records) {
            checkDecoder(r);
        }

        // Fresh guest RAM and doorbell per connection: nothing carries over from the last input.
        try (Fd ram = Memfd.create("vhostj-fuzz-ram", RAM_SIZE);
                EventFd doorbell = EventFd.create();
                UnixSocket client = UnixSocket.connect(socketPath);
                UnixSocket server = listener.accept()) {
            writeDriverImage(ram);
            int[] fds = new int[UnixSocket.MAX_FDS];
            for (Record r : records) {
                byte[] bytes = r.bytes();
                Native.copyFromArray(bytes, 0, sendBuffer, bytes.length);
                for (int i = 0; i < r.fdCount(); i++) {
                    fds[i] = r.isMemfd(i) ? ram.fd() : doorbell.fd();
                }
                client.send(sendBuffer, bytes.length, fds, r.fdCount());
            }
            Native.check("shutdown(SHUT_WR)", Native.LIBC.shutdown(client.fd(), SHUT_WR));
            backend.serve(new VhostUserConnection(server));
        }

        List<RecordingLoggerProvider.Failure> failures = RecordingLoggerProvider.takeFailures();
        if (!failures.isEmpty()) {
            RecordingLoggerProvider.Failure f = failures.get(0);
            throw new AssertionError("backend logged " + f.logger() + ": " + f.message(), f.cause());
        }
        checkNothingLeft(records);
    }

    /**
     * Puts one request in guest RAM where the seeds place queue rings (file offset 0 is
     * {@link MessageSeeds#GPA}): descriptor 0 (64 device-readable bytes, then descriptor 1 with
     * 64 device-writable bytes), and an avail index of 1. Every avail slot is zero, so each one
     * names that chain; {@link FuzzDevice}'s handler keeps making the next one available.
     */
    static void writeDriverImage(Fd ram) throws NativeException {
        long gpa = MessageSeeds.GPA;
        long desc = MessageSeeds.DESC - MessageSeeds.UVA;
        long avail = MessageSeeds.AVAIL - MessageSeeds.UVA;
        long buf = sendBuffer;
        Native.zero(buf, 2 * SplitRingLayout.DESC_SIZE);
        Native.putLong(buf + SplitRingLayout.DESC_ADDR, gpa + 0x4000);
        Native.putInt(buf + SplitRingLayout.DESC_LEN, 64);
        Native.putShort(buf + SplitRingLayout.DESC_FLAGS, SplitRingLayout.DESC_F_NEXT);
        Native.putShort(buf + SplitRingLayout.DESC_NEXT, (short) 1);
        long second = buf + SplitRingLayout.DESC_SIZE;
        Native.putLong(second + SplitRingLayout.DESC_ADDR, gpa + 0x5000);
        Native.putInt(second + SplitRingLayout.DESC_LEN, 64);
        Native.putShort(second + SplitRingLayout.DESC_FLAGS, SplitRingLayout.DESC_F_WRITE);
        pwriteFully(ram, buf, 2 * SplitRingLayout.DESC_SIZE, desc);
        Native.putShort(buf, (short) 1);
        pwriteFully(ram, buf, 2, avail + SplitRingLayout.AVAIL_IDX);
    }

    private static void pwriteFully(Fd fd, long buf, long length, long offset) throws NativeException {
        long rc = Native.check("pwrite", Native.LIBC.pwrite(fd.fd(), buf, length, offset));
        if (rc != length) {
            throw new NativeException("pwrite", "short write of " + rc + " bytes");
        }
    }

    /**
     * Every descriptor the backend received is closed or owned by state that {@code serve()}
     * resets at the end of the connection; every region it mapped is unmapped.
     */
    private static void checkNothingLeft(List<Record> records) {
        NativeCensus after = NativeCensus.take();
        if (after.equals(baseline)) {
            return;
        }
        List<Integer> leaked = after.newDescriptors(baseline);
        // Close what leaked so that the next input is judged on its own.
        for (int fd : leaked) {
            Native.LIBC.close(fd);
        }
        throw new AssertionError("the connection left native resources behind: before " + baseline + "; after "
                + after + "; messages: " + describe(records));
    }

    // ---- the decoder on its own ------------------------------------------------------------------

    /**
     * Checks the decoder on one message and says whether the backend gets past its header: false
     * if reading it ({@code VhostUserConnection.read}) or checking it before dispatch (reply flag,
     * {@code validate}) refuses it.
     */
    private static boolean checkDecoder(Record r) {
        if (r.truncated()) {
            return false;
        }
        try (VhostUserMessage m = VhostUserMessage.fromBytes(r.bytes(), r.fdCount())) {
            boolean accepted;
            try {
                FrontendRequest.validate(m);
                accepted = true;
            } catch (VhostUserProtocolException e) {
                accepted = false;
            }
            Boolean expected = specAccepts(m);
            if (expected != null && expected != accepted) {
                throw new AssertionError("validate " + (accepted ? "accepted " : "refused ") + m
                        + " but the vhost-user spec " + (expected ? "allows" : "forbids") + " that shape");
            }
            if (accepted) {
                readEveryField(m);
            }
            return accepted && (m.flags() & VhostUserMessage.VERSION_MASK) == VhostUserMessage.VERSION
                    && Integer.compareUnsigned(m.size(), VhostUserMessage.MAX_PAYLOAD) <= 0 && !m.isReply();
        }
    }

    /**
     * The payload sizes and descriptor counts of vhost-user.rst ("Front-end message types"),
     * written down apart from {@link FrontendRequest#validate}; null for types it leaves open.
     */
    private static Boolean specAccepts(VhostUserMessage m) {
        int size = m.size();
        int fds = m.fdCount();
        return switch (m.request()) {
            case GET_FEATURES, SET_OWNER, RESET_OWNER, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, RESET_DEVICE,
                    GET_MAX_MEM_SLOTS, GET_STATUS -> size == 0 && fds == 0;
            case SET_FEATURES, SET_PROTOCOL_FEATURES, SET_STATUS, SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE,
                    SET_VRING_ENABLE -> size == 8 && fds == 0;
            case SET_VRING_ADDR -> size == 40 && fds == 0;
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR ->
                    size == 8 && fds == ((m.payloadLong(0) & 0x100) != 0 ? 0 : 1);
            case SET_MEM_TABLE -> {
                if (size < 8) {
                    yield false;
                }
                long n = m.payloadInt(0) & 0xffff_ffffL;
                yield n <= 8 && size == 8 + 32 * n && fds == n;
            }
            case ADD_MEM_REG -> size == 40 && fds == 1;
            case REM_MEM_REG -> size == 40 && fds <= 1;
            case SET_LOG_BASE -> size == 16 && fds == 1;
            case GET_CONFIG, SET_CONFIG -> {
                if (size < 12) {
                    yield false;
                }
                long len = m.payloadInt(4) & 0xffff_ffffL;
                yield len <= 256 && size == 12 + len && fds == 0;
            }
            case GET_INFLIGHT_FD -> size == 24 && fds == 0;
            case SET_INFLIGHT_FD -> size == 24 && fds == 1;
            default -> null;
        };
    }

    /** Reads every field the accepted type has: none may lie outside the payload. */
    private static void readEveryField(VhostUserMessage m) {
        switch (m.request()) {
            case SET_FEATURES, SET_PROTOCOL_FEATURES, SET_STATUS, SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR ->
                    m.payloadLong(0);
            case SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_ENABLE -> {
                m.payloadInt(Payloads.VRING_STATE_INDEX);
                m.payloadInt(Payloads.VRING_STATE_NUM);
            }
            case SET_VRING_ADDR -> {
                m.payloadInt(Payloads.VRING_ADDR_INDEX);
                m.payloadInt(Payloads.VRING_ADDR_FLAGS);
                m.payloadLong(Payloads.VRING_ADDR_DESC);
                m.payloadLong(Payloads.VRING_ADDR_USED);
                m.payloadLong(Payloads.VRING_ADDR_AVAIL);
                m.payloadLong(Payloads.VRING_ADDR_LOG);
            }
            case SET_MEM_TABLE -> {
                int n = m.payloadInt(Payloads.MEM_TABLE_NREGIONS);
                for (int i = 0; i < n; i++) {
                    readRegion(m, Payloads.MEM_TABLE_REGIONS + i * Payloads.REGION_SIZE);
                }
            }
            case ADD_MEM_REG, REM_MEM_REG -> readRegion(m, Payloads.SINGLE_REGION);
            case SET_LOG_BASE -> {
                m.payloadLong(0);
                m.payloadLong(8);
            }
            case GET_CONFIG, SET_CONFIG -> {
                m.payloadInt(Payloads.CONFIG_OFFSET);
                int len = m.payloadInt(Payloads.CONFIG_SIZE);
                m.payloadInt(Payloads.CONFIG_FLAGS);
                m.payloadBytes(Payloads.CONFIG_PAYLOAD, len);
            }
            case GET_INFLIGHT_FD, SET_INFLIGHT_FD -> {
                m.payloadLong(Payloads.INFLIGHT_MMAP_SIZE);
                m.payloadLong(Payloads.INFLIGHT_MMAP_OFFSET);
                m.payloadShort(Payloads.INFLIGHT_NUM_QUEUES);
                m.payloadShort(Payloads.INFLIGHT_QUEUE_SIZE);
            }
            default -> {
            }
        }
    }

    private static void readRegion(VhostUserMessage m, int base) {
        m.payloadLong(base + Payloads.REGION_GPA);
        m.payloadLong(base + Payloads.REGION_MEMORY_SIZE);
        m.payloadLong(base + Payloads.REGION_UVA);
        m.payloadLong(base + Payloads.REGION_MMAP_OFFSET);
    }

    private static String describe(List<Record> records) {
        StringBuilder sb = new StringBuilder();
        for (Record r : records) {
            if (sb.length() > 0) {
                sb.append(", ");
            }
            sb.append(FrontendRequest.name(r.headerInt(VhostUserMessage.REQUEST_OFFSET)))
                    .append(" flags=0x").append(Integer.toHexString(r.headerInt(VhostUserMessage.FLAGS_OFFSET)))
                    .append(" size=").append(Integer.toUnsignedString(r.headerInt(VhostUserMessage.SIZE_OFFSET)))
                    .append(" fds=").append(r.fdCount());
            if (r.truncated()) {
                sb.append(" (truncated)");
            }
        }
        return sb.toString();
    }
}
