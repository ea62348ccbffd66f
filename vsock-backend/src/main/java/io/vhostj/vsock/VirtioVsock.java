package io.vhostj.vsock;

import io.vhostj.vhostuser.sys.Native;

/**
 * The virtio-vsock layouts (virtio 1.2, 5.10 "Socket Device"), little-endian: the packet header
 * every packet on the rx and tx queues starts with, its ops and flags, and the config space.
 * {@code VirtioVsockLayoutTest} holds the sizes to the spec.
 */
public final class VirtioVsock {
    // struct virtio_vsock_hdr (44 bytes, packed)
    public static final int SRC_CID = 0;    // le64
    public static final int DST_CID = 8;    // le64
    public static final int SRC_PORT = 16;  // le32
    public static final int DST_PORT = 20;  // le32
    public static final int LEN = 24;       // le32: payload bytes after the header
    public static final int TYPE = 28;      // le16
    public static final int OP = 30;        // le16
    public static final int FLAGS = 32;     // le32
    public static final int BUF_ALLOC = 36; // le32: the sender's receive buffer
    public static final int FWD_CNT = 40;   // le32: bytes the sender has consumed (wraps)
    public static final int HDR_SIZE = FWD_CNT + 4;

    public static final int TYPE_STREAM = 1;
    public static final int TYPE_SEQPACKET = 2;

    public static final int OP_INVALID = 0;
    public static final int OP_REQUEST = 1;
    public static final int OP_RESPONSE = 2;
    public static final int OP_RST = 3;
    public static final int OP_SHUTDOWN = 4;
    public static final int OP_RW = 5;
    public static final int OP_CREDIT_UPDATE = 6;
    public static final int OP_CREDIT_REQUEST = 7;

    /** RW flags of a SEQPACKET stream: the packet ends a message / ends a record (MSG_EOR). */
    public static final int SEQ_EOM = 1;
    public static final int SEQ_EOR = 2;

    /** SHUTDOWN flags: the sender will receive no more / send no more. */
    public static final int SHUTDOWN_RCV = 1;
    public static final int SHUTDOWN_SEND = 2;

    /** The host's CID, as the guest addresses it (VMADDR_CID_HOST). */
    public static final long HOST_CID = 2;

    // struct virtio_vsock_config { le64 guest_cid; }
    public static final int CFG_GUEST_CID = 0;
    public static final int CONFIG_SIZE = 8;

    /** Feature bits: VIRTIO_VSOCK_F_STREAM (0, implied), VIRTIO_VSOCK_F_SEQPACKET (1). */
    public static final int F_SEQPACKET = 1;

    /** Queue indexes. */
    public static final int RX = 0;
    public static final int TX = 1;
    public static final int EVENT = 2;

    private VirtioVsock() {
    }

    /** Writes a stream packet's header at {@code hdr} (native memory). */
    public static void putHeader(long hdr, long srcCid, long dstCid, int srcPort, int dstPort, int len, int op,
            int flags, int bufAlloc, int fwdCnt) {
        putHeader(hdr, TYPE_STREAM, srcCid, dstCid, srcPort, dstPort, len, op, flags, bufAlloc, fwdCnt);
    }

    /** Writes a packet's header at {@code hdr} (native memory); {@code type} is TYPE_STREAM or TYPE_SEQPACKET. */
    public static void putHeader(long hdr, int type, long srcCid, long dstCid, int srcPort, int dstPort, int len,
            int op, int flags, int bufAlloc, int fwdCnt) {
        Native.putLong(hdr + SRC_CID, srcCid);
        Native.putLong(hdr + DST_CID, dstCid);
        Native.putInt(hdr + SRC_PORT, srcPort);
        Native.putInt(hdr + DST_PORT, dstPort);
        Native.putInt(hdr + LEN, len);
        Native.putShort(hdr + TYPE, (short) type);
        Native.putShort(hdr + OP, (short) op);
        Native.putInt(hdr + FLAGS, flags);
        Native.putInt(hdr + BUF_ALLOC, bufAlloc);
        Native.putInt(hdr + FWD_CNT, fwdCnt);
    }

    public static String opName(int op) {
        return switch (op) {
            case OP_REQUEST -> "REQUEST";
            case OP_RESPONSE -> "RESPONSE";
            case OP_RST -> "RST";
            case OP_SHUTDOWN -> "SHUTDOWN";
            case OP_RW -> "RW";
            case OP_CREDIT_UPDATE -> "CREDIT_UPDATE";
            case OP_CREDIT_REQUEST -> "CREDIT_REQUEST";
            default -> "op " + op;
        };
    }
}
