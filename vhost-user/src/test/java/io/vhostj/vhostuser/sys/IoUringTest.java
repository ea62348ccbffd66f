package io.vhostj.vhostuser.sys;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IoUringTest {
    @TempDir
    Path dir;

    @Test
    void shouldDefineTheKernelStructsWithTheirUapiSizes() {
        // include/uapi/linux/io_uring.h: io_uring_params, io_uring_sqe, io_uring_cqe (no CQE32)
        assertEquals(120, IoUring.PARAMS_SIZE);
        assertEquals(64, IoUring.SQE_SIZE);
        assertEquals(16, IoUring.CQE_SIZE);
    }

    @Test
    void shouldWriteSyncAndReadBackThroughTheRing() throws Exception {
        Path file = dir.resolve("data");
        Files.write(file, new byte[64 * 1024]);
        byte[] data = new byte[8192];
        new Random(5).nextBytes(data);
        long buf = Native.allocate(2 * 8192 + 2 * FileIo.IOVEC_SIZE);
        long iov = buf + 2 * 8192;
        try (Fd fd = FileIo.open(file, FileIo.O_RDWR); IoUring ring = IoUring.create(8)) {
            assertTrue(ring.entries() >= 8);
            Native.copyFromArray(data, 0, buf, data.length);
            // two iovecs of 4 KiB each, written at 16 KiB
            FileIo.putIovec(iov, 0, buf, 4096);
            FileIo.putIovec(iov, 1, buf + 4096, 4096);
            ring.prepareRw(IoUring.OP_WRITEV, fd.fd(), iov, 2, 16384, 7);
            ring.prepareFdatasync(fd.fd(), 8);
            assertEquals(2, ring.submit());
            List<long[]> done = reapAll(ring, 2);
            assertTrue(done.stream().anyMatch(c -> c[0] == 7 && c[1] == 8192), "writev completed in full: " + show(done));
            assertTrue(done.stream().anyMatch(c -> c[0] == 8 && c[1] == 0), "fdatasync completed: " + show(done));

            FileIo.putIovec(iov, 0, buf + 8192, 8192);
            ring.prepareRw(IoUring.OP_READV, fd.fd(), iov, 1, 16384, 9);
            ring.submit();
            done = reapAll(ring, 1);
            assertArrayEquals(new long[] {9, 8192}, done.get(0));
            byte[] back = new byte[8192];
            Native.copyToArray(buf + 8192, back, 0, back.length);
            assertArrayEquals(data, back);
        } finally {
            Native.free(buf);
        }
    }

    @Test
    void shouldReportErrorsAsNegatedErrnoAndWakePollers() throws Exception {
        long buf = Native.allocate(4096 + FileIo.IOVEC_SIZE);
        try (IoUring ring = IoUring.create(4)) {
            FileIo.putIovec(buf + 4096, 0, buf, 4096);
            ring.prepareRw(IoUring.OP_READV, 1_000_000, buf + 4096, 1, 0, 42); // no such descriptor
            ring.submit();
            assertTrue(Poll.readable(ring.fd(), 5000), "the ring fd is readable once a completion waits");
            List<long[]> done = reapAll(ring, 1);
            assertArrayEquals(new long[] {42, -Errno.EBADF}, done.get(0));
            assertFalse(Poll.readable(ring.fd(), 0), "nothing left to reap");
        } finally {
            Native.free(buf);
        }
    }

    @Test
    void shouldRefuseMoreEntriesThanTheRingHas() throws Exception {
        try (IoUring ring = IoUring.create(2)) {
            for (int i = 0; i < ring.entries(); i++) {
                ring.prepareFdatasync(0, i);
            }
            assertEquals(0, ring.freeSlots());
            assertThrows(IllegalStateException.class, () -> ring.prepareFdatasync(0, 99));
        }
    }

    private static List<long[]> reapAll(IoUring ring, int n) throws NativeException {
        List<long[]> done = new ArrayList<>();
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (done.size() < n) {
            if (ring.reap((userData, res) -> done.add(new long[] {userData, res})) == 0) {
                ring.submitAndWait(1);
            }
            assertTrue(System.nanoTime() < deadline, "completions: " + show(done));
        }
        return done;
    }

    private static String show(List<long[]> done) {
        StringBuilder b = new StringBuilder();
        for (long[] c : done) {
            b.append('(').append(c[0]).append(", ").append(c[1]).append(')');
        }
        return b.toString();
    }
}
