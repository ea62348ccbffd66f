package io.vhostj.tests.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.file.Path;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.tests.BackendProcess;

/**
 * The backend is SIGKILLed five times under a guest write workload and started again on the
 * same socket; QEMU reconnects ({@code reconnect=1}), the backend resubmits what the inflight
 * region says was in flight, and fio's verify pass finds every block intact with no I/O error.
 */
@Tag("e2e")
class GuestBlkReconnectIT {
    @TempDir
    Path dir;

    @Test
    void shouldLoseNoWriteWhenTheBackendIsKilledAndRestarted() throws Exception {
        Path disk = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "rw")) {
            f.setLength(128 << 20);
        }
        Path sock = dir.resolve("blk.sock");
        // O_DIRECT + io_uring: a write stays in flight for the disk's latency, so kills catch some
        String[] args = {"blk", "--socket-path", sock.toString(), "--path", disk.toString(), "--direct"};
        String script = String.join("\n",
                "echo FIO-START",
                "fio --name=w --filename=/dev/vda --rw=randwrite --bs=4k --iodepth=16 --ioengine=libaio --direct=1"
                        + " --size=64M --verify=crc32c --do_verify=1 --minimal > /tmp/fio.out 2>&1"
                        + " || { cat /tmp/fio.out; exit 1; }",
                "echo fio-write-and-verify-ok",
                "fio --name=again --filename=/dev/vda --rw=read --bs=4k --iodepth=16 --ioengine=libaio --direct=1"
                        + " --size=64M --verify=crc32c --verify_only --minimal > /tmp/fio2.out 2>&1"
                        + " || { cat /tmp/fio2.out; exit 1; }",
                "echo fio-second-verify-ok",
                "dmesg | grep -iE 'I/O error|blk_update_request' && exit 1",
                "echo no-io-errors",
                "");
        BackendProcess backend = BackendProcess.start(sock, dir.resolve("backend-0.log"), args);
        GuestVm.Running guest = null;
        try {
            // reconnect=1: QEMU redials the socket every second while the backend is away
            guest = new GuestVm().chardevSocket("c0", sock, 1)
                    .device("vhost-user-blk-pci,chardev=c0,num-queues=1")
                    .start(dir, script);
            assertTrue(guest.awaitConsole("FIO-START", 120), "guest did not start fio:\n" + guest.console());
            for (int kill = 1; kill <= 5; kill++) {
                Thread.sleep(1500);
                assertFalse(guest.console().contains("VHOSTJ-GUEST-EXIT"), "fio finished before kill " + kill
                        + ": make the workload longer\n" + guest.console());
                backend.kill();
                backend = BackendProcess.start(sock, dir.resolve("backend-" + kill + ".log"), args);
            }
            GuestVm.Result r = guest.await(600);
            int resubmitted = 0;
            for (int i = 1; i <= 5; i++) {
                String log = java.nio.file.Files.readString(dir.resolve("backend-" + i + ".log"));
                assertTrue(log.contains("frontend connected"), "QEMU reconnected to backend " + i + ":\n" + log);
                assertTrue(log.contains("inflight region set"), "QEMU handed the inflight region back:\n" + log);
                resubmitted += log.split("resubmits", -1).length - 1;
            }
            System.out.println("GuestBlkReconnectIT: " + resubmitted + " of 5 restarts found requests in flight");
            assertTrue(r.ok(), "guest saw a failure after 5 backend kills:\n" + r.console() + "\n--- last backend:\n"
                    + backend.log());
            assertTrue(r.console().contains("fio-write-and-verify-ok"), r.console());
            assertTrue(r.console().contains("fio-second-verify-ok"), r.console());
            assertTrue(r.console().contains("no-io-errors"), r.console());
        } finally {
            if (guest != null) {
                guest.kill();
            }
            backend.close();
        }
    }
}
