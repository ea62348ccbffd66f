package io.vhostj.bench;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.Poll;
import io.vhostj.vhostuser.sys.UnixSocket;

/** A host program's side of the hybrid vsock socket, where a test needs more than CONNECT: Kata's passfd. */
public final class HybridVsockClient {
    private HybridVsockClient() {
    }

    /**
     * Kata's handshake: {@code passfd\n}, then {@code args} ({@code <port>[ keep]}, no newline, as
     * the Kata shim sends it) with {@code fd} in SCM_RIGHTS. The caller reads the answer.
     */
    public static UnixSocket passfd(Path uds, int fd, String args) throws NativeException {
        UnixSocket s = UnixSocket.connect(uds);
        try {
            sendText(s, "passfd\n");
            byte[] a = args.getBytes(StandardCharsets.US_ASCII);
            long buf = Native.allocate(a.length);
            try {
                Native.copyFromArray(a, 0, buf, a.length);
                s.send(buf, a.length, new int[] {fd}, 1);
            } finally {
                Native.free(buf);
            }
            return s;
        } catch (NativeException | RuntimeException e) {
            s.close();
            throw e;
        }
    }

    public static void sendText(UnixSocket s, String text) throws NativeException {
        byte[] b = text.getBytes(StandardCharsets.US_ASCII);
        long buf = Native.allocate(b.length);
        try {
            Native.copyFromArray(b, 0, buf, b.length);
            s.send(buf, b.length, null, 0);
        } finally {
            Native.free(buf);
        }
    }

    /**
     * A line with its newline, or what came before EOF ("" for EOF at once); null if nothing
     * more came within {@code timeoutMs}.
     */
    public static String readLine(UnixSocket s, int timeoutMs) throws NativeException {
        StringBuilder b = new StringBuilder();
        long one = Native.allocate(1);
        try {
            while (true) {
                if (!Poll.readable(s.fd(), timeoutMs)) {
                    return null;
                }
                if (!s.receiveFully(one, 1)) {
                    return b.toString();
                }
                char c = (char) Native.getByte(one);
                b.append(c);
                if (c == '\n') {
                    return b.toString();
                }
            }
        } finally {
            Native.free(one);
        }
    }

    /** One message off a SOCK_SEQPACKET socket (at most 64 KiB), waiting up to {@code timeoutMs} for it. */
    public static String receiveMessage(UnixSocket s, int timeoutMs) throws NativeException {
        if (!Poll.readable(s.fd(), timeoutMs)) {
            throw new NativeException("recvmsg", "no message within " + timeoutMs + " ms");
        }
        long buf = Native.allocate(65536);
        try {
            int n = s.receive(buf, 65536, new int[1]);
            byte[] b = new byte[n];
            Native.copyToArray(buf, b, 0, n);
            return new String(b, StandardCharsets.ISO_8859_1);
        } finally {
            Native.free(buf);
        }
    }
}
