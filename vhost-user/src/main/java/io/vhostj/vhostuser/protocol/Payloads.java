package io.vhostj.vhostuser.protocol;

/**
 * Wire layouts of vhost-user message payloads (QEMU docs/interop/vhost-user.rst,
 * "Message types"). Little-endian, offsets from the start of the payload.
 */
public final class Payloads {
    /** u64: features, protocol features, queue number, slot count, status, ack. */
    public static final int U64_SIZE = 8;

    /** A vring state: {@code u32 index; u32 num}. */
    public static final int VRING_STATE_SIZE = 8;
    public static final int VRING_STATE_INDEX = 0;
    public static final int VRING_STATE_NUM = 4;

    /** A vring address: index, flags, then the frontend-virtual ring addresses and the log address. */
    public static final int VRING_ADDR_SIZE = 40;
    public static final int VRING_ADDR_INDEX = 0;
    public static final int VRING_ADDR_FLAGS = 4;
    public static final int VRING_ADDR_DESC = 8;
    public static final int VRING_ADDR_USED = 16;
    public static final int VRING_ADDR_AVAIL = 24;
    public static final int VRING_ADDR_LOG = 32;
    public static final int VRING_F_LOG = 1;

    /** A memory region: guest address, size, frontend virtual address, mmap offset. */
    public static final int REGION_SIZE = 32;
    public static final int REGION_GPA = 0;
    public static final int REGION_MEMORY_SIZE = 8;
    public static final int REGION_UVA = 16;
    public static final int REGION_MMAP_OFFSET = 24;

    /** SET_MEM_TABLE: {@code u32 nregions; u32 padding; region[nregions]}. */
    public static final int MEM_TABLE_NREGIONS = 0;
    public static final int MEM_TABLE_REGIONS = 8;
    public static final int MEM_TABLE_MAX_REGIONS = 8;

    /** ADD_MEM_REG / REM_MEM_REG: {@code u64 padding; region}. */
    public static final int SINGLE_REGION_SIZE = 8 + REGION_SIZE;
    public static final int SINGLE_REGION = 8;

    /** SET_LOG_BASE: {@code u64 mmap_size; u64 mmap_offset}. */
    public static final int LOG_SIZE = 16;

    /** GET/SET_CONFIG: {@code u32 offset; u32 size; u32 flags; u8 payload[size]}. */
    public static final int CONFIG_HEADER_SIZE = 12;
    public static final int CONFIG_OFFSET = 0;
    public static final int CONFIG_SIZE = 4;
    public static final int CONFIG_FLAGS = 8;
    public static final int CONFIG_PAYLOAD = 12;
    public static final int CONFIG_MAX_SIZE = 256;

    /** GET/SET_INFLIGHT_FD: {@code u64 mmap_size; u64 mmap_offset; u16 num_queues; u16 queue_size; pad[4]}. */
    public static final int INFLIGHT_SIZE = 24;
    public static final int INFLIGHT_MMAP_SIZE = 0;
    public static final int INFLIGHT_MMAP_OFFSET = 8;
    public static final int INFLIGHT_NUM_QUEUES = 16;
    public static final int INFLIGHT_QUEUE_SIZE = 18;

    /** SET_VRING_KICK/CALL/ERR: low byte is the queue index, bit 8 says "no fd" (polling). */
    public static final long VRING_INDEX_MASK = 0xff;
    public static final long VRING_NOFD_MASK = 0x100;

    private Payloads() {
    }
}
