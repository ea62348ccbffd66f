package io.vhostj.tests;

import java.util.ArrayList;
import java.util.List;

import io.vhostj.bench.VsockClient;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vsock.VirtioVsock;

/** What the vsock tests that play the guest with vhostj's frontend read off its rx queue. */
final class VsockPackets {
    static final long TIMEOUT = 10_000_000_000L;

    /** A received packet, decoded. */
    record Packet(long srcCid, long dstCid, int srcPort, int dstPort, int op, int flags, byte[] payload, int type) {
    }

    private VsockPackets() {
    }

    static List<Packet> receive(VsockClient guest, int atLeast) throws Exception {
        return receive(guest, atLeast, TIMEOUT);
    }

    /** At least {@code atLeast} packets, or what came within {@code timeoutNanos}. */
    static List<Packet> receive(VsockClient guest, int atLeast, long timeoutNanos) throws Exception {
        List<Packet> got = new ArrayList<>();
        long deadline = System.nanoTime() + timeoutNanos;
        while (got.size() < atLeast && System.nanoTime() < deadline) {
            guest.pollRx((hdr, payload, len) -> {
                byte[] bytes = new byte[len];
                Native.copyToArray(payload, bytes, 0, len);
                got.add(new Packet(Native.getLong(hdr + VirtioVsock.SRC_CID), Native.getLong(hdr + VirtioVsock.DST_CID),
                        Native.getInt(hdr + VirtioVsock.SRC_PORT), Native.getInt(hdr + VirtioVsock.DST_PORT),
                        Native.getShort(hdr + VirtioVsock.OP) & 0xffff, Native.getInt(hdr + VirtioVsock.FLAGS), bytes,
                        Native.getShort(hdr + VirtioVsock.TYPE) & 0xffff));
            });
        }
        return got;
    }

    /** The op of the next packet, 0 if none came in time. */
    static int awaitOp(VsockClient guest) throws Exception {
        List<Packet> got = receive(guest, 1);
        return got.isEmpty() ? 0 : got.get(0).op();
    }
}
