package io.vhostj.vhostuser.protocol;

/**
 * Front-end message types (QEMU docs/interop/vhost-user.rst, "Front-end message types"), with the
 * payload sizes and descriptor counts each one may carry. {@link #validate} is the single place
 * where an incoming message's shape is checked before any handler reads it.
 */
public final class FrontendRequest {
    public static final int GET_FEATURES = 1;
    public static final int SET_FEATURES = 2;
    public static final int SET_OWNER = 3;
    public static final int RESET_OWNER = 4;
    public static final int SET_MEM_TABLE = 5;
    public static final int SET_LOG_BASE = 6;
    public static final int SET_LOG_FD = 7;
    public static final int SET_VRING_NUM = 8;
    public static final int SET_VRING_ADDR = 9;
    public static final int SET_VRING_BASE = 10;
    public static final int GET_VRING_BASE = 11;
    public static final int SET_VRING_KICK = 12;
    public static final int SET_VRING_CALL = 13;
    public static final int SET_VRING_ERR = 14;
    public static final int GET_PROTOCOL_FEATURES = 15;
    public static final int SET_PROTOCOL_FEATURES = 16;
    public static final int GET_QUEUE_NUM = 17;
    public static final int SET_VRING_ENABLE = 18;
    public static final int SEND_RARP = 19;
    public static final int NET_SET_MTU = 20;
    public static final int SET_BACKEND_REQ_FD = 21;
    public static final int IOTLB_MSG = 22;
    public static final int SET_VRING_ENDIAN = 23;
    public static final int GET_CONFIG = 24;
    public static final int SET_CONFIG = 25;
    public static final int CREATE_CRYPTO_SESSION = 26;
    public static final int CLOSE_CRYPTO_SESSION = 27;
    public static final int POSTCOPY_ADVISE = 28;
    public static final int POSTCOPY_LISTEN = 29;
    public static final int POSTCOPY_END = 30;
    public static final int GET_INFLIGHT_FD = 31;
    public static final int SET_INFLIGHT_FD = 32;
    public static final int GPU_SET_SOCKET = 33;
    public static final int RESET_DEVICE = 34;
    public static final int VRING_KICK = 35;
    public static final int GET_MAX_MEM_SLOTS = 36;
    public static final int ADD_MEM_REG = 37;
    public static final int REM_MEM_REG = 38;
    public static final int SET_STATUS = 39;
    public static final int GET_STATUS = 40;
    public static final int GET_SHARED_OBJECT = 41;
    public static final int SET_DEVICE_STATE_FD = 42;
    public static final int CHECK_DEVICE_STATE = 43;

    private static final String[] NAMES = {
        "NONE", "GET_FEATURES", "SET_FEATURES", "SET_OWNER", "RESET_OWNER", "SET_MEM_TABLE", "SET_LOG_BASE",
        "SET_LOG_FD", "SET_VRING_NUM", "SET_VRING_ADDR", "SET_VRING_BASE", "GET_VRING_BASE", "SET_VRING_KICK",
        "SET_VRING_CALL", "SET_VRING_ERR", "GET_PROTOCOL_FEATURES", "SET_PROTOCOL_FEATURES", "GET_QUEUE_NUM",
        "SET_VRING_ENABLE", "SEND_RARP", "NET_SET_MTU", "SET_BACKEND_REQ_FD", "IOTLB_MSG", "SET_VRING_ENDIAN",
        "GET_CONFIG", "SET_CONFIG", "CREATE_CRYPTO_SESSION", "CLOSE_CRYPTO_SESSION", "POSTCOPY_ADVISE",
        "POSTCOPY_LISTEN", "POSTCOPY_END", "GET_INFLIGHT_FD", "SET_INFLIGHT_FD", "GPU_SET_SOCKET",
        "RESET_DEVICE", "VRING_KICK", "GET_MAX_MEM_SLOTS", "ADD_MEM_REG", "REM_MEM_REG", "SET_STATUS",
        "GET_STATUS", "GET_SHARED_OBJECT", "SET_DEVICE_STATE_FD", "CHECK_DEVICE_STATE",
    };

    private FrontendRequest() {
    }

    public static String name(int request) {
        return request > 0 && request < NAMES.length ? NAMES[request] : "UNKNOWN(" + request + ")";
    }

    /** Whether the front-end always waits for a reply to this request, REPLY_ACK or not. */
    public static boolean hasReply(int request) {
        return switch (request) {
            case GET_FEATURES, GET_PROTOCOL_FEATURES, GET_VRING_BASE, GET_QUEUE_NUM, GET_CONFIG,
                    GET_INFLIGHT_FD, GET_MAX_MEM_SLOTS, GET_STATUS, SET_LOG_BASE, GET_SHARED_OBJECT,
                    SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE, CREATE_CRYPTO_SESSION, POSTCOPY_ADVISE,
                    POSTCOPY_END -> true;
            default -> false;
        };
    }

    /**
     * Checks that a message of a known type has the payload size and descriptor count its type
     * allows. Unknown types pass (the backend refuses them by name); their fds are closed by the
     * caller.
     */
    public static void validate(VhostUserMessage m) throws VhostUserProtocolException {
        int request = m.request();
        int size = m.size();
        int fds = m.fdCount();
        switch (request) {
            case GET_FEATURES, SET_OWNER, RESET_OWNER, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, RESET_DEVICE,
                    GET_MAX_MEM_SLOTS, GET_STATUS -> expect(m, 0, 0);
            case SET_FEATURES, SET_PROTOCOL_FEATURES, SET_STATUS -> expect(m, Payloads.U64_SIZE, 0);
            case SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_ENABLE ->
                    expect(m, Payloads.VRING_STATE_SIZE, 0);
            case SET_VRING_ADDR -> expect(m, Payloads.VRING_ADDR_SIZE, 0);
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> {
                expectSize(m, Payloads.U64_SIZE);
                boolean noFd = (m.payloadLong(0) & Payloads.VRING_NOFD_MASK) != 0;
                expectFds(m, noFd ? 0 : 1);
            }
            case SET_MEM_TABLE -> {
                if (size < Payloads.MEM_TABLE_REGIONS) {
                    throw bad(m, "payload of " + size + " bytes is shorter than the region count");
                }
                long n = m.payloadInt(Payloads.MEM_TABLE_NREGIONS) & 0xffff_ffffL;
                if (n > Payloads.MEM_TABLE_MAX_REGIONS) {
                    throw bad(m, n + " regions, at most " + Payloads.MEM_TABLE_MAX_REGIONS + " allowed");
                }
                expect(m, Payloads.MEM_TABLE_REGIONS + (int) n * Payloads.REGION_SIZE, (int) n);
            }
            case ADD_MEM_REG -> expect(m, Payloads.SINGLE_REGION_SIZE, 1);
            case REM_MEM_REG -> {
                // vhost-user.rst: no fd SHOULD be sent, but the back-end MAY accept one and close it.
                expectSize(m, Payloads.SINGLE_REGION_SIZE);
                if (fds > 1) {
                    throw bad(m, fds + " descriptors, expected at most 1");
                }
            }
            case SET_LOG_BASE -> expect(m, Payloads.LOG_SIZE, 1);
            case SET_LOG_FD -> expectFds(m, 1);
            case GET_CONFIG, SET_CONFIG -> {
                if (size < Payloads.CONFIG_HEADER_SIZE) {
                    throw bad(m, "payload of " + size + " bytes is shorter than the config header");
                }
                long len = m.payloadInt(Payloads.CONFIG_SIZE) & 0xffff_ffffL;
                if (len > Payloads.CONFIG_MAX_SIZE) {
                    throw bad(m, "config size " + len + " exceeds " + Payloads.CONFIG_MAX_SIZE);
                }
                expect(m, Payloads.CONFIG_HEADER_SIZE + (int) len, 0);
            }
            case GET_INFLIGHT_FD -> expect(m, Payloads.INFLIGHT_SIZE, 0);
            case SET_INFLIGHT_FD -> expect(m, Payloads.INFLIGHT_SIZE, 1);
            default -> {
                // not a shape we know: refused by the handler, not a protocol violation
            }
        }
    }

    private static void expect(VhostUserMessage m, int size, int fds) throws VhostUserProtocolException {
        expectSize(m, size);
        expectFds(m, fds);
    }

    private static void expectSize(VhostUserMessage m, int size) throws VhostUserProtocolException {
        if (m.size() != size) {
            throw bad(m, "payload of " + m.size() + " bytes, expected " + size);
        }
    }

    private static void expectFds(VhostUserMessage m, int fds) throws VhostUserProtocolException {
        if (m.fdCount() != fds) {
            throw bad(m, m.fdCount() + " descriptors, expected " + fds);
        }
    }

    private static VhostUserProtocolException bad(VhostUserMessage m, String why) {
        return new VhostUserProtocolException(name(m.request()) + ": " + why);
    }
}
