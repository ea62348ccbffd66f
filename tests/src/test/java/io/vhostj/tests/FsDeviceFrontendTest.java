package io.vhostj.tests;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.bench.FuseClient;
import io.vhostj.fs.FsDevice;
import io.vhostj.fs.Fuse;
import io.vhostj.fs.VirtioFs;
import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.Native;

/** The virtio-fs device's FUSE session: INIT (versions, flags) and its errors. */
class FsDeviceFrontendTest {
    private static final long TIMEOUT = 5_000_000_000L;

    @TempDir
    Path dir;
    private ServedDevice server;

    private Path start(String tag) throws Exception {
        Path socket = dir.resolve("fs.sock");
        server = new ServedDevice(new FsDevice(tag, 1, 1024), socket);
        return socket;
    }

    @AfterEach
    void stop() throws InterruptedException {
        if (server != null) {
            server.close();
        }
    }

    private static void initArgs(FuseClient c, int major, int minor) {
        long a = c.in() + Fuse.IN_HEADER_SIZE;
        Native.zero(a, Fuse.INIT_IN_SIZE);
        Native.putInt(a + Fuse.INIT_IN_MAJOR, major);
        Native.putInt(a + Fuse.INIT_IN_MINOR, minor);
        Native.putInt(a + Fuse.INIT_IN_MAX_READAHEAD, 128 * 1024);
        Native.putInt(a + Fuse.INIT_IN_FLAGS, -1);
    }

    @Test
    void shouldServeTheTagAndQueueCountInTheConfigSpace() throws Exception {
        try (FuseClient c = FuseClient.connect(start("myfs"), 64)) {
            byte[] config = c.frontend().getConfig(0, VirtioFs.CONFIG_SIZE);
            assertEquals("myfs", new String(config, 0, 4, StandardCharsets.UTF_8));
            assertEquals(0, config[4], "NUL-padded");
            assertEquals(1, config[VirtioFs.CFG_NUM_REQUEST_QUEUES]);
            assertEquals(2, c.frontend().getQueueNum(), "hiprio + 1 request queue");
        }
    }

    @Test
    void shouldNegotiateInitAndAnswerEveryOtherRequestWithAnError() throws Exception {
        try (FuseClient c = FuseClient.connect(start(null), 64)) {
            assertEquals(-Errno.EIO, c.request(Fuse.GETATTR, Fuse.ROOT_ID, Fuse.GETATTR_IN_SIZE, 256, TIMEOUT),
                    "nothing before INIT");

            initArgs(c, 7, 31);
            assertEquals(0, c.request(Fuse.INIT, 0, Fuse.INIT_IN_COMPAT_SIZE, 256, TIMEOUT), "a 7.31 guest");
            assertEquals(Fuse.OUT_HEADER_SIZE + Fuse.INIT_OUT_SIZE, c.replyLength());
            long out = c.out();
            assertEquals(c.replyLength(), Native.getInt(out + Fuse.OUT_LEN));
            assertEquals(c.lastUnique(), Native.getLong(out + Fuse.OUT_UNIQUE));
            long init = out + Fuse.OUT_HEADER_SIZE;
            assertEquals(7, Native.getInt(init + Fuse.INIT_OUT_MAJOR));
            assertEquals(31, Native.getInt(init + Fuse.INIT_OUT_MINOR), "the lower minor wins");
            assertEquals(1 << 20, Native.getInt(init + Fuse.INIT_OUT_MAX_WRITE));

            initArgs(c, 7, 40);
            assertEquals(0, c.request(Fuse.INIT, 0, Fuse.INIT_IN_SIZE, 256, TIMEOUT), "a newer guest");
            assertEquals(Fuse.KERNEL_MINOR_VERSION, Native.getInt(c.out() + Fuse.OUT_HEADER_SIZE + Fuse.INIT_OUT_MINOR));

            assertEquals(-Errno.ENOSYS, c.request(Fuse.GETATTR, Fuse.ROOT_ID, Fuse.GETATTR_IN_SIZE, 256, TIMEOUT));
            assertEquals(Fuse.OUT_HEADER_SIZE, c.replyLength());
            assertEquals(-Errno.ENOSYS, c.request(9999, Fuse.ROOT_ID, 0, 256, TIMEOUT), "unknown opcode");
        }
    }

    @Test
    void shouldRefuseOldOrMalformedRequestsWithTheRightErrno() throws Exception {
        try (FuseClient c = FuseClient.connect(start(null), 64)) {
            initArgs(c, 7, 30);
            assertEquals(-Errno.EPROTO, c.request(Fuse.INIT, 0, Fuse.INIT_IN_COMPAT_SIZE, 256, TIMEOUT), "7.30 is too old");
            initArgs(c, 8, 0);
            assertEquals(0, c.request(Fuse.INIT, 0, Fuse.INIT_IN_COMPAT_SIZE, 256, TIMEOUT), "8.x: our version only");
            assertEquals(Fuse.OUT_HEADER_SIZE + 8, c.replyLength());
            assertEquals(7, Native.getInt(c.out() + Fuse.OUT_HEADER_SIZE + Fuse.INIT_OUT_MAJOR));

            assertEquals(-Errno.EINVAL, c.requestRaw(Fuse.INIT, 0, 100, 56, 256, TIMEOUT), "len is not the readable length");
            assertEquals(-Errno.EINVAL, c.request(Fuse.INIT, 0, 8, 256, TIMEOUT), "INIT shorter than fuse_init_in");
            assertEquals(0, c.request(Fuse.FORGET, 5, Fuse.FORGET_IN_SIZE, 0, TIMEOUT), "FORGET: no reply");
            assertEquals(0, c.replyLength());
            // and the queue still works
            initArgs(c, 7, 38);
            assertEquals(0, c.request(Fuse.INIT, 0, Fuse.INIT_IN_SIZE, 256, TIMEOUT));
        }
    }
}
