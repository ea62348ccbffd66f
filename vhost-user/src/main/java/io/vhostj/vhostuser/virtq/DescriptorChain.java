package io.vhostj.vhostuser.virtq;

import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_ADDR;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_FLAGS;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_F_INDIRECT;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_F_NEXT;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_F_WRITE;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_LEN;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_NEXT;
import static io.vhostj.vhostuser.virtq.SplitRingLayout.DESC_SIZE;

import java.util.Arrays;

import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.memory.GuestMemoryException;
import io.vhostj.vhostuser.sys.Native;

/**
 * One request: the descriptor chain starting at a head index, already walked and translated into
 * host addresses. Device-readable segments come first, then device-writable ones (2.7.4.2).
 *
 * <p>Reused from request to request by its queue (no allocation per request). Walking is
 * bounded: at most queue-size descriptors in the ring (2.7.5.3.1), at most as many as an
 * indirect table holds inside it (Linux fills tables beyond the ring size, and QEMU accepts
 * that), which also catches loops; one level of indirection, no INDIRECT together with NEXT,
 * indirect tables a non-zero multiple of 16 bytes and at most 32768 entries, at most
 * 2^32 - 1 bytes per direction.
 */
public final class DescriptorChain {
    private static final long MAX_TOTAL_LENGTH = 0xffff_ffffL;
    /** Largest indirect table walked: the largest split ring (2.7). */
    public static final int MAX_INDIRECT_DESCRIPTORS = 32768;

    private int head = -1;
    private int readableCount;
    private int writableCount;
    private long readableBytes;
    private long writableBytes;
    private long[] readableAddr = new long[16];
    private int[] readableLen = new int[16];
    private long[] writableAddr = new long[16];
    private int[] writableLen = new int[16];

    /**
     * Walks the chain at {@code head} in a descriptor table at host address {@code table} with
     * {@code queueSize} entries.
     */
    public void load(int head, long table, int queueSize, GuestMemory memory, boolean indirectAllowed)
            throws ChainException {
        this.head = head;
        readableCount = 0;
        writableCount = 0;
        readableBytes = 0;
        writableBytes = 0;

        long tableAddr = table;
        int tableSize = queueSize;
        int budget = queueSize;
        boolean indirect = false;
        int index = head;
        while (true) {
            if (index >= tableSize) {
                throw new ChainException("descriptor index " + index + " outside a table of " + tableSize);
            }
            if (--budget < 0) {
                throw new ChainException("chain longer than the queue size " + queueSize + " (or a loop)");
            }
            long desc = tableAddr + (long) index * DESC_SIZE;
            long addr = Native.getLong(desc + DESC_ADDR);
            long len = Native.getInt(desc + DESC_LEN) & 0xffff_ffffL;
            int flags = Native.getShort(desc + DESC_FLAGS);
            int next = Native.getShort(desc + DESC_NEXT) & 0xffff;

            if ((flags & DESC_F_INDIRECT) != 0) {
                if (!indirectAllowed) {
                    throw new ChainException("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
                }
                if (indirect) {
                    throw new ChainException("indirect descriptor inside an indirect table");
                }
                if ((flags & DESC_F_NEXT) != 0) {
                    throw new ChainException("indirect descriptor with NEXT set");
                }
                if (len == 0 || len % DESC_SIZE != 0) {
                    throw new ChainException("indirect table of " + len + " bytes is not a multiple of 16");
                }
                try {
                    tableAddr = memory.translate(addr, len);
                } catch (GuestMemoryException e) {
                    throw new ChainException("indirect table: " + e.getMessage());
                }
                if (len / DESC_SIZE > MAX_INDIRECT_DESCRIPTORS) {
                    throw new ChainException("indirect table of " + len / DESC_SIZE + " descriptors exceeds "
                            + MAX_INDIRECT_DESCRIPTORS);
                }
                tableSize = (int) (len / DESC_SIZE);
                // Linux builds indirect tables up to seg_max + 2 entries, beyond the ring size;
                // like QEMU's virtqueue_pop, an indirect table gets a budget of its own length.
                budget = tableSize;
                indirect = true;
                index = 0;
                continue;
            }

            if (len != 0) {
                long host;
                try {
                    host = memory.translate(addr, len);
                } catch (GuestMemoryException e) {
                    throw new ChainException("descriptor " + index + ": " + e.getMessage());
                }
                if ((flags & DESC_F_WRITE) != 0) {
                    addWritable(host, len);
                } else {
                    if (writableCount > 0) {
                        throw new ChainException("device-readable descriptor after a device-writable one");
                    }
                    addReadable(host, len);
                }
            }
            if ((flags & DESC_F_NEXT) == 0) {
                return;
            }
            index = next;
        }
    }

    private void addReadable(long host, long len) throws ChainException {
        readableBytes += len;
        if (readableBytes > MAX_TOTAL_LENGTH) {
            throw new ChainException("device-readable part longer than 2^32 - 1 bytes");
        }
        if (readableCount == readableAddr.length) {
            readableAddr = Arrays.copyOf(readableAddr, readableCount * 2);
            readableLen = Arrays.copyOf(readableLen, readableCount * 2);
        }
        readableAddr[readableCount] = host;
        readableLen[readableCount++] = (int) len;
    }

    private void addWritable(long host, long len) throws ChainException {
        writableBytes += len;
        if (writableBytes > MAX_TOTAL_LENGTH) {
            throw new ChainException("device-writable part longer than 2^32 - 1 bytes");
        }
        if (writableCount == writableAddr.length) {
            writableAddr = Arrays.copyOf(writableAddr, writableCount * 2);
            writableLen = Arrays.copyOf(writableLen, writableCount * 2);
        }
        writableAddr[writableCount] = host;
        writableLen[writableCount++] = (int) len;
    }

    /** Head descriptor index: the id that goes into the used ring. */
    public int head() {
        return head;
    }

    public int readableCount() {
        return readableCount;
    }

    public int writableCount() {
        return writableCount;
    }

    /** Host address of device-readable segment {@code i}. */
    public long readableAddress(int i) {
        return readableAddr[i];
    }

    /** Length of device-readable segment {@code i}; read as unsigned. */
    public int readableLength(int i) {
        return readableLen[i];
    }

    public long writableAddress(int i) {
        return writableAddr[i];
    }

    public int writableLength(int i) {
        return writableLen[i];
    }

    public long readableBytes() {
        return readableBytes;
    }

    public long writableBytes() {
        return writableBytes;
    }

    /**
     * Copies {@code length} bytes starting {@code offset} bytes into the readable part to host
     * address {@code dst}, across segment boundaries.
     */
    public void readFromChain(long offset, long dst, long length) throws ChainException {
        if (offset < 0 || length < 0 || offset > readableBytes || length > readableBytes - offset) {
            throw new ChainException("read of " + length + " bytes at " + offset + " past the readable "
                    + readableBytes + " bytes");
        }
        copyAcross(readableAddr, readableLen, readableCount, offset, dst, length, false);
    }

    /** Copies {@code length} bytes from host {@code src} into the writable part at {@code offset}. */
    public void writeToChain(long offset, long src, long length) throws ChainException {
        if (offset < 0 || length < 0 || offset > writableBytes || length > writableBytes - offset) {
            throw new ChainException("write of " + length + " bytes at " + offset + " past the writable "
                    + writableBytes + " bytes");
        }
        copyAcross(writableAddr, writableLen, writableCount, offset, src, length, true);
    }

    /**
     * Describes bytes {@code [offset, offset + length)} of the readable ({@code writable = false})
     * or writable part as {@code struct iovec}s at {@code iov} (at most {@code maxIov}), for
     * preadv/pwritev straight into guest memory. Returns the number of entries.
     */
    public int toIovecs(boolean writable, long offset, long length, long iov, int maxIov) throws ChainException {
        long total = writable ? writableBytes : readableBytes;
        if (offset < 0 || length < 0 || offset > total || length > total - offset) {
            throw new ChainException("range " + offset + "+" + length + " outside the " + total + " "
                    + (writable ? "writable" : "readable") + " bytes");
        }
        long[] addrs = writable ? writableAddr : readableAddr;
        int[] lens = writable ? writableLen : readableLen;
        int count = writable ? writableCount : readableCount;
        long skip = offset;
        long left = length;
        int n = 0;
        for (int i = 0; i < count && left > 0; i++) {
            long segLen = lens[i] & 0xffff_ffffL;
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            if (n == maxIov) {
                throw new ChainException("more than " + maxIov + " segments");
            }
            long take = Math.min(segLen - skip, left);
            long entry = iov + 16L * n;
            Native.putLong(entry, addrs[i] + skip);
            Native.putLong(entry + 8, take);
            n++;
            left -= take;
            skip = 0;
        }
        return n;
    }

    /** Host address of byte {@code offset} of the writable part (e.g. a trailing status byte). */
    public long writableAddressAt(long offset) throws ChainException {
        if (offset < 0 || offset >= writableBytes) {
            throw new ChainException("writable offset " + offset + " outside " + writableBytes + " bytes");
        }
        long skip = offset;
        for (int i = 0; i < writableCount; i++) {
            long segLen = writableLen[i] & 0xffff_ffffL;
            if (skip < segLen) {
                return writableAddr[i] + skip;
            }
            skip -= segLen;
        }
        throw new ChainException("writable offset " + offset + " not found");
    }

    private static void copyAcross(long[] addrs, int[] lens, int count, long offset, long other, long length,
            boolean intoChain) {
        long skip = offset;
        long done = 0;
        for (int i = 0; i < count && done < length; i++) {
            long segLen = lens[i] & 0xffff_ffffL;
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            long n = Math.min(segLen - skip, length - done);
            if (intoChain) {
                Native.copy(other + done, addrs[i] + skip, n);
            } else {
                Native.copy(addrs[i] + skip, other + done, n);
            }
            done += n;
            skip = 0;
        }
    }
}
