package io.vhostj.vhostuser.protocol;

/** vhost-user protocol feature bits (QEMU docs/interop/vhost-user.rst, "Protocol features"). */
public final class ProtocolFeature {
    public static final int MQ = 0;
    public static final int LOG_SHMFD = 1;
    public static final int RARP = 2;
    public static final int REPLY_ACK = 3;
    public static final int NET_MTU = 4;
    public static final int BACKEND_REQ = 5;
    public static final int CROSS_ENDIAN = 6;
    public static final int CRYPTO_SESSION = 7;
    public static final int PAGEFAULT = 8;
    public static final int CONFIG = 9;
    public static final int BACKEND_SEND_FD = 10;
    public static final int HOST_NOTIFIER = 11;
    public static final int INFLIGHT_SHMFD = 12;
    public static final int RESET_DEVICE = 13;
    public static final int INBAND_NOTIFICATIONS = 14;
    public static final int CONFIGURE_MEM_SLOTS = 15;
    public static final int STATUS = 16;
    public static final int XEN_MMAP = 17;
    public static final int SHARED_OBJECT = 18;
    public static final int DEVICE_STATE = 19;

    /** Virtio feature bit 30: the backend speaks GET/SET_PROTOCOL_FEATURES. */
    public static final int VHOST_USER_F_PROTOCOL_FEATURES = 30;
    /** Virtio feature bit 26: dirty-page logging for migration (not offered by vhostj). */
    public static final int VHOST_F_LOG_ALL = 26;

    /** What vhostj's backend side implements; a device narrows it. */
    public static final long IMPLEMENTED = bit(MQ) | bit(REPLY_ACK) | bit(CONFIG) | bit(INFLIGHT_SHMFD)
            | bit(RESET_DEVICE) | bit(CONFIGURE_MEM_SLOTS) | bit(STATUS);

    private ProtocolFeature() {
    }

    public static long bit(int feature) {
        return 1L << feature;
    }

    public static boolean has(long features, int feature) {
        return (features & bit(feature)) != 0;
    }
}
