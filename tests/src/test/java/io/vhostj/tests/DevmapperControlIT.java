package io.vhostj.tests;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vhostj devmapper} while a {@code vhostj blk --thin} serves a device of the same pool:
 * the commands go to the serving process through the pool's control socket, as containerd's
 * snapshotter would issue them while a VM runs; what touches the served device is refused, and
 * what was done is in the pool after the server stops.
 */
class DevmapperControlIT {
    @TempDir
    Path dir;

    private record Ran(int rc, String out) {
    }

    private Ran vhostj(String... args) throws Exception {
        Path log = Files.createTempFile(dir, "cli", ".log");
        Process p = BackendProcess.launchVhostj(log, args);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        return new Ran(p.exitValue(), Files.readString(log));
    }

    @Test
    void shouldTakeCommandsForAPoolAnotherProcessServes() throws Exception {
        String pool = dir.resolve("pool").toString();
        assertEquals(0, vhostj("devmapper", "create-pool", pool, "--size", "256M").rc());
        assertEquals(0, vhostj("devmapper", "create_thin", pool, "1", "64M").rc());
        Path sock = dir.resolve("blk.sock");
        try (BackendProcess blk = BackendProcess.start(sock, dir.resolve("blk.log"), "blk", "--socket-path",
                sock.toString(), "--thin", pool + ":1")) {
            Ran thin = vhostj("devmapper", "create_thin", pool, "7", "32M");
            assertEquals(0, thin.rc(), thin.out());
            assertTrue(thin.out().contains("created device 7"), thin.out());
            Ran snap = vhostj("devmapper", "create_snap", pool, "8", "7");
            assertEquals(0, snap.rc(), snap.out());
            Ran busy = vhostj("devmapper", "create_snap", pool, "9", "1");
            assertEquals(1, busy.rc(), busy.out());
            assertEquals("vhostj devmapper: device 1 is open for I/O; snapshot it when it is not being written",
                    busy.out().strip());
            Ran status = vhostj("devmapper", "status", pool, "--json");
            assertEquals(0, status.rc(), status.out());
            assertTrue(status.out().contains("\"id\": 8, \"size\": 33554432, \"origin\": 7"), status.out());
            assertTrue(blk.log().contains("'create_snap " + pool + " 8 7' from the control socket: exit 0"), blk.log());
            assertEquals(0, blk.terminate(), blk.log());
        }
        assertFalse(Files.exists(dir.resolve("pool").resolve("control.sock")), "the control socket goes with the server");
        Ran list = vhostj("devmapper", "list", pool, "--json");
        assertEquals(0, list.rc(), list.out());
        for (String id : List.of("\"id\": 1,", "\"id\": 7,", "\"id\": 8,")) {
            assertTrue(list.out().contains(id), list.out());
        }
        assertFalse(list.out().contains("\"id\": 9,"), list.out());
        assertEquals(0, vhostj("devmapper", "check", pool).rc());
    }

    @Test
    void shouldServeTwoThinDevicesOfOnePoolFromOneProcess() throws Exception {
        String pool = dir.resolve("pool").toString();
        assertEquals(0, vhostj("devmapper", "create-pool", pool, "--size", "256M").rc());
        assertEquals(0, vhostj("devmapper", "create_thin", pool, "1", "64M").rc());
        assertEquals(0, vhostj("devmapper", "create_snap", pool, "2", "1").rc());
        Path a = dir.resolve("a.sock");
        Path b = dir.resolve("b.sock");
        try (BackendProcess blk = BackendProcess.start(b, dir.resolve("blk.log"), "blk",
                "--export", "socket=" + a + ",thin=" + pool + ":1",
                "--export", "socket=" + b + ",thin=" + pool + ":2,serial=vm-b")) {
            for (int i = 0; i < 100 && !Files.exists(a); i++) {
                Thread.sleep(50);
            }
            long timeout = 5_000_000_000L;
            try (io.vhostj.bench.BlkClient one = io.vhostj.bench.BlkClient.connect(a, 64, 1, 65536);
                    io.vhostj.bench.BlkClient two = io.vhostj.bench.BlkClient.connect(b, 64, 1, 65536)) {
                io.vhostj.vhostuser.sys.Native.putLong(one.data(0), 0x1111_1111_1111_1111L);
                assertEquals(io.vhostj.blk.VirtioBlk.S_OK, one.syncRequest(io.vhostj.blk.VirtioBlk.T_OUT, 0, 4096, timeout));
                io.vhostj.vhostuser.sys.Native.putLong(two.data(0), 0x2222_2222_2222_2222L);
                assertEquals(io.vhostj.blk.VirtioBlk.S_OK, two.syncRequest(io.vhostj.blk.VirtioBlk.T_OUT, 0, 4096, timeout));
                assertEquals(io.vhostj.blk.VirtioBlk.S_OK, one.syncRequest(io.vhostj.blk.VirtioBlk.T_IN, 0, 4096, timeout));
                assertEquals(0x1111_1111_1111_1111L, io.vhostj.vhostuser.sys.Native.getLong(one.data(0)),
                        "each VM its own device");
                assertEquals(io.vhostj.blk.VirtioBlk.S_OK, two.syncRequest(io.vhostj.blk.VirtioBlk.T_FLUSH, 0, 0, timeout));
                assertEquals(io.vhostj.blk.VirtioBlk.S_OK, one.syncRequest(io.vhostj.blk.VirtioBlk.T_FLUSH, 0, 0, timeout));
            }
            Ran status = vhostj("devmapper", "status", pool, "--json");
            assertEquals(0, status.rc(), status.out());
            assertTrue(status.out().contains("\"used_blocks\": 2,"), "one block each: " + status.out());
            assertEquals(0, blk.terminate(), blk.log());
        }
        assertEquals(0, vhostj("devmapper", "check", pool).rc());
    }

    @Test
    void shouldExportAndUnexportDevicesWhileRunning() throws Exception {
        String pool = dir.resolve("pool").toString();
        assertEquals(0, vhostj("devmapper", "create-pool", pool, "--size", "256M").rc());
        assertEquals(0, vhostj("devmapper", "create_thin", pool, "1", "64M").rc());
        assertEquals(0, vhostj("devmapper", "create_snap", pool, "2", "1").rc());
        Ran none = vhostj("devmapper", "export", pool, "2", dir.resolve("x.sock").toString());
        assertEquals(1, none.rc(), none.out());
        assertTrue(none.out().contains("start 'vhostj blk --pool"), none.out());
        Path control = dir.resolve("pool").resolve("control.sock");
        try (BackendProcess blk = BackendProcess.start(control, dir.resolve("blk.log"), "blk", "--pool", pool)) {
            Path vm = dir.resolve("vm2.sock");
            Ran export = vhostj("devmapper", "export", pool, "2", vm.toString());
            assertEquals(0, export.rc(), export.out() + blk.log());
            assertTrue(export.out().contains("serving thin device 2 on " + vm), export.out());
            Ran twice = vhostj("devmapper", "export", pool, "2", dir.resolve("other.sock").toString());
            assertEquals(1, twice.rc(), twice.out());
            assertTrue(twice.out().contains("device 2 is already open"), twice.out());
            long timeout = 5_000_000_000L;
            try (io.vhostj.bench.BlkClient c = io.vhostj.bench.BlkClient.connect(vm, 64, 1, 65536)) {
                assertEquals(64L << 20, c.capacityBytes());
                io.vhostj.vhostuser.sys.Native.putLong(c.data(0), 0x5a5a_5a5a_5a5a_5a5aL);
                assertEquals(io.vhostj.blk.VirtioBlk.S_OK, c.syncRequest(io.vhostj.blk.VirtioBlk.T_OUT, 4096, 4096, timeout));
                assertEquals(io.vhostj.blk.VirtioBlk.S_OK, c.syncRequest(io.vhostj.blk.VirtioBlk.T_FLUSH, 0, 0, timeout));
            }
            Ran un = vhostj("devmapper", "unexport", pool, vm.toString());
            assertEquals(0, un.rc(), un.out() + blk.log());
            assertFalse(Files.exists(vm), "the socket goes with the export");
            Ran again = vhostj("devmapper", "export", pool, "2", dir.resolve("vm2b.sock").toString());
            assertEquals(0, again.rc(), "the device is free again once unexported: " + again.out());
            Ran status = vhostj("devmapper", "status", pool, "--json");
            assertTrue(status.out().contains("\"id\": 2, \"size\": 67108864, \"origin\": 1"), status.out());
            assertTrue(status.out().contains("\"used_blocks\": 1,"), "the VM's write: " + status.out());
            assertEquals(0, blk.terminate(), blk.log());
            assertFalse(blk.log().contains("Exception"), blk.log());
        }
        assertEquals(0, vhostj("devmapper", "check", pool).rc());
    }
}
