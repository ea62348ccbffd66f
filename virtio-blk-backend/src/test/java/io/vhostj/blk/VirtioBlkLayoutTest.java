package io.vhostj.blk;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The wire layouts against the sizes and offsets the virtio spec gives (5.2.4, 5.2.6). */
class VirtioBlkLayoutTest {
    @Test
    void shouldMatchTheSpecSizes() {
        assertEquals(16, VirtioBlk.REQ_HEADER_SIZE, "type + reserved + sector");
        assertEquals(8, VirtioBlk.REQ_SECTOR);
        assertEquals(16, VirtioBlk.DWZ_SEGMENT_SIZE);
        assertEquals(20, VirtioBlk.ID_BYTES);
        assertEquals(512, 1 << VirtioBlk.SECTOR_SHIFT);
    }

    @Test
    void shouldPlaceConfigFieldsAtTheirSpecOffsets() {
        assertEquals(0, VirtioBlk.CFG_CAPACITY);
        assertEquals(20, VirtioBlk.CFG_BLK_SIZE);
        assertEquals(34, VirtioBlk.CFG_NUM_QUEUES);
        assertEquals(36, VirtioBlk.CFG_MAX_DISCARD_SECTORS);
        assertEquals(56, VirtioBlk.CFG_WRITE_ZEROES_MAY_UNMAP);
        assertEquals(VirtioBlk.CFG_WRITE_ZEROES_MAY_UNMAP + 4, VirtioBlk.CONFIG_SIZE, "u8 + 3 bytes padding");
    }
}
