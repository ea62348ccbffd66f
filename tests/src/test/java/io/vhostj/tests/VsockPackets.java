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

    /** {@code vhostj vsock} for guest CID 3 on {@code sock} and {@code uds}, once its socket is there. */
    static Process startVsock(java.nio.file.Path log, java.nio.file.Path sock, java.nio.file.Path uds) throws Exception {
        Process backend = BackendProcess.launchVhostj(log, "vsock", "--guest-cid", "3", "--socket-path",
                sock.toString(), "--uds-path", uds.toString());
        for (int i = 0; i < 400 && !java.nio.file.Files.exists(sock); i++) {
            Thread.sleep(50);
        }
        org.junit.jupiter.api.Assertions.assertTrue(backend.isAlive(), java.nio.file.Files.readString(log));
        return backend;
    }

    /** SIGTERM: a clean exit, and no exception in the log. */
    static void stopVsock(Process backend, java.nio.file.Path log) throws Exception {
        backend.destroy();
        org.junit.jupiter.api.Assertions.assertTrue(backend.waitFor(10, java.util.concurrent.TimeUnit.SECONDS));
        String text = java.nio.file.Files.readString(log);
        org.junit.jupiter.api.Assertions.assertEquals(0, backend.exitValue(), text);
        org.junit.jupiter.api.Assertions.assertFalse(text.contains("Exception"), text);
    }
}
