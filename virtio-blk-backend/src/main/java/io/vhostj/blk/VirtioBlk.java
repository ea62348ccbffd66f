package io.vhostj.blk;

/**
 * virtio-blk wire layouts and constants (virtio 1.2, 5.2 "Block Device"), little-endian.
 *
 * <pre>
 * struct virtio_blk_req { le32 type; le32 reserved; le64 sector; u8 data[]; u8 status; };
 * struct virtio_blk_discard_write_zeroes { le64 sector; le32 num_sectors; le32 flags; };
 * </pre>
 * Sectors are always 512 bytes, whatever the block size.
 */
public final class VirtioBlk {
    public static final int SECTOR_SIZE = 512;
    public static final int SECTOR_SHIFT = 9;

    // ---- request header -------------------------------------------------------------------------
    public static final int REQ_HEADER_SIZE = 16;
    public static final int REQ_TYPE = 0;
    public static final int REQ_RESERVED = 4;
    public static final int REQ_SECTOR = 8;
    public static final int STATUS_SIZE = 1;

    public static final int T_IN = 0;
    public static final int T_OUT = 1;
    public static final int T_FLUSH = 4;
    public static final int T_GET_ID = 8;
    public static final int T_GET_LIFETIME = 10;
    public static final int T_DISCARD = 11;
    public static final int T_WRITE_ZEROES = 13;
    public static final int T_SECURE_ERASE = 14;

    public static final int S_OK = 0;
    public static final int S_IOERR = 1;
    public static final int S_UNSUPP = 2;

    /** GET_ID answers with a 20-byte serial, not NUL-terminated when it fills all 20. */
    public static final int ID_BYTES = 20;

    // ---- discard / write-zeroes segment -----------------------------------------------------------
    public static final int DWZ_SEGMENT_SIZE = 16;
    public static final int DWZ_SECTOR = 0;
    public static final int DWZ_NUM_SECTORS = 8;
    public static final int DWZ_FLAGS = 12;
    public static final int DWZ_F_UNMAP = 1;

    // ---- feature bits (5.2.3) ----------------------------------------------------------------------
    public static final int F_SIZE_MAX = 1;
    public static final int F_SEG_MAX = 2;
    public static final int F_GEOMETRY = 4;
    public static final int F_RO = 5;
    public static final int F_BLK_SIZE = 6;
    public static final int F_FLUSH = 9;
    public static final int F_TOPOLOGY = 10;
    public static final int F_CONFIG_WCE = 11;
    public static final int F_MQ = 12;
    public static final int F_DISCARD = 13;
    public static final int F_WRITE_ZEROES = 14;

    // ---- config space (5.2.4) ------------------------------------------------------------------
    public static final int CFG_CAPACITY = 0;                  // le64, in 512-byte sectors
    public static final int CFG_SIZE_MAX = 8;                  // le32
    public static final int CFG_SEG_MAX = 12;                  // le32
    public static final int CFG_GEOMETRY = 16;                 // le16 cylinders, u8 heads, u8 sectors
    public static final int CFG_BLK_SIZE = 20;                 // le32
    public static final int CFG_PHYSICAL_BLOCK_EXP = 24;       // u8
    public static final int CFG_ALIGNMENT_OFFSET = 25;         // u8
    public static final int CFG_MIN_IO_SIZE = 26;              // le16
    public static final int CFG_OPT_IO_SIZE = 28;              // le32
    public static final int CFG_WRITEBACK = 32;                // u8
    public static final int CFG_NUM_QUEUES = 34;               // le16
    public static final int CFG_MAX_DISCARD_SECTORS = 36;      // le32
    public static final int CFG_MAX_DISCARD_SEG = 40;          // le32
    public static final int CFG_DISCARD_SECTOR_ALIGNMENT = 44; // le32
    public static final int CFG_MAX_WRITE_ZEROES_SECTORS = 48; // le32
    public static final int CFG_MAX_WRITE_ZEROES_SEG = 52;     // le32
    public static final int CFG_WRITE_ZEROES_MAY_UNMAP = 56;   // u8, then 3 bytes padding
    /** Config space up to and including the write-zeroes fields (before secure erase, 1.2). */
    public static final int CONFIG_SIZE = 60;

    private VirtioBlk() {
    }
}
