package io.vhostj.tests;

import org.junit.jupiter.api.BeforeAll;

import io.vhostj.blk.Aio;
import io.vhostj.vhostuser.sys.IoUring;

/** {@link VhostjBlkFrontendTest}'s requests through io_uring on a disk opened with O_DIRECT. */
class VhostjBlkUringDirectFrontendTest extends VhostjBlkFrontendTest {
    /** The device falls back to inline I/O without io_uring; here that must fail, not pass quietly. */
    @BeforeAll
    static void ioUringIsPermitted() throws Exception {
        IoUring.create(2).close();
    }

    @Override
    Aio aio() {
        return Aio.IO_URING;
    }

    @Override
    boolean direct() {
        return true;
    }
}
