package io.vhostj.tests.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.tests.BackendProcess;

/**
 * Two real QEMU guests on one {@code vhostj vsock --vm ... --vm ...} process, in the same
 * (default) group: guest CID 3 connects to guest CID 4's socat echo server by CID and gets 4 MiB
 * back intact, with no host program in between.
 */
@Tag("e2e")
class GuestVsockSiblingIT {
    @TempDir
    Path dir;

    @Test
    void shouldConnectTwoGuestsByCid() throws Exception {
        Path a = dir.resolve("a.sock");
        Path b = dir.resolve("b.sock");
        String server = String.join("\n",
                "socat VSOCK-LISTEN:5000,fork EXEC:cat &",
                "sleep 1",
                "echo SIBLING-READY",
                "sleep 600", "");
        String client = String.join("\n",
                "dd if=/dev/urandom of=/tmp/data bs=1M count=4 2>/dev/null",
                "for i in $(seq 1 60); do",
                "  reply=$(echo hello-sibling | socat -t 5 - VSOCK-CONNECT:4:5000) && [ -n \"$reply\" ] && break",
                "  sleep 2",
                "done",
                "echo \"A-GOT: $reply\"",
                "want=$(sha256sum < /tmp/data)",
                "got=$(socat -t 30 - VSOCK-CONNECT:4:5000 < /tmp/data | sha256sum)",
                "[ \"$want\" = \"$got\" ] && echo SIBLING-ECHO-OK || echo \"SIBLING-ECHO-BAD $want / $got\"",
                "");
        try (BackendProcess vsock = BackendProcess.start(b, dir.resolve("vsock.log"), "vsock",
                "--vm", "guest-cid=3,socket=" + a + ",uds-path=" + dir.resolve("a.vsock"),
                "--vm", "guest-cid=4,socket=" + b + ",uds-path=" + dir.resolve("b.vsock"))) {
            GuestVm.Running guestB = new GuestVm().cpus(1).chardevSocket("c0", b)
                    .device("vhost-user-vsock-pci,chardev=c0").start(dir.resolve("b"), server);
            try {
                GuestVm.Result r = new GuestVm().cpus(1).chardevSocket("c0", a).device("vhost-user-vsock-pci,chardev=c0")
                        .run(dir.resolve("a"), client, 400);
                String c = r.console();
                assertTrue(r.ok(), "guest A failed:\n" + c + "\n--- guest B:\n" + guestB.console() + "\n--- backend:\n"
                        + vsock.log());
                assertTrue(guestB.console().contains("SIBLING-READY"), guestB.console());
                assertTrue(c.contains("A-GOT: hello-sibling"), "guest 3 reached guest 4's echo server:\n" + c
                        + "\n--- backend:\n" + vsock.log());
                assertTrue(c.contains("SIBLING-ECHO-OK"), "4 MiB echoed intact between the guests:\n" + c);
            } finally {
                guestB.kill();
            }
            assertTrue(vsock.isAlive(), vsock.log());
            assertFalse(vsock.log().contains("Exception"), vsock.log());
        }
    }
}
