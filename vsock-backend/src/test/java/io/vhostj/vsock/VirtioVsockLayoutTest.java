package io.vhostj.vsock;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The packet header and config space as the virtio spec lays them out. */
class VirtioVsockLayoutTest {
    @Test
    void shouldLayTheHeaderOutAsTheSpec() {
        assertEquals(44, VirtioVsock.HDR_SIZE);
        assertEquals(24, VirtioVsock.LEN);
        assertEquals(30, VirtioVsock.OP);
        assertEquals(36, VirtioVsock.BUF_ALLOC);
        assertEquals(8, VirtioVsock.CONFIG_SIZE);
    }

    @Test
    void shouldNumberOpsAsTheSpec() {
        assertEquals(1, VirtioVsock.OP_REQUEST);
        assertEquals(3, VirtioVsock.OP_RST);
        assertEquals(5, VirtioVsock.OP_RW);
        assertEquals(7, VirtioVsock.OP_CREDIT_REQUEST);
    }
}
