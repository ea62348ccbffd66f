package io.vhostj.tests;

import org.junit.jupiter.api.BeforeAll;

import io.vhostj.blk.Aio;
import io.vhostj.vhostuser.sys.IoUring;

/** {@link VhostjBlkFrontendTest}'s requests through the io_uring engine. */
class VhostjBlkUringFrontendTest extends VhostjBlkFrontendTest {
    /** The device falls back to inline I/O without io_uring; here that must fail, not pass quietly. */
    @BeforeAll
    static void ioUringIsPermitted() throws Exception {
        IoUring.create(2).close();
    }

    @Override
    Aio aio() {
        return Aio.IO_URING;
    }
}
