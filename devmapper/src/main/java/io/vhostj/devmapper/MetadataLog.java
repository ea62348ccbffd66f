package io.vhostj.devmapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * The metadata log: a header naming the image generation it extends, then batches, each
 * {@code magic u32, sequence u64, length u32, crc32c u32} and {@code length} bytes of records.
 * A batch is durable once {@link #append} returns (fdatasync). Reading stops at the first batch
 * that is torn or fails its checksum and cuts the file there, so later batches follow the last
 * good one. A log whose header names another generation was folded into the image already and
 * is ignored.
 */
final class MetadataLog implements AutoCloseable {
    private static final long HEADER_MAGIC = 0x56484a544c4f4731L; // "VHJTLOG1"
    private static final int HEADER_SIZE = 16;
    private static final int BATCH_MAGIC = 0x54424154; // "TBAT"
    private static final int BATCH_HEADER = 4 + 8 + 4 + 4;

    interface Replayer {
        void replay(LogRecords.Record r) throws PoolException;
    }

    private final FileChannel channel;
    private long size;
    private long sequence;

    private MetadataLog(FileChannel channel, long size, long sequence) {
        this.channel = channel;
        this.size = size;
        this.sequence = sequence;
    }

    static MetadataLog create(Path path, long generation) throws IOException {
        FileChannel c = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        MetadataLog log = new MetadataLog(c, 0, 0);
        log.reset(generation);
        return log;
    }

    /** Opens the log and replays the batches that extend image {@code generation}. */
    static MetadataLog open(Path path, long generation, Replayer replayer) throws IOException, PoolException {
        FileChannel c = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        try {
            long fileSize = c.size();
            ByteBuffer header = ByteBuffer.allocate(HEADER_SIZE);
            if (fileSize < HEADER_SIZE || c.read(header, 0) != HEADER_SIZE || header.getLong(0) != HEADER_MAGIC
                    || header.getLong(8) != generation) {
                // torn header, or the log of an older image: nothing in it applies
                MetadataLog log = new MetadataLog(c, 0, 0);
                log.reset(generation);
                return log;
            }
            if (fileSize > Integer.MAX_VALUE) {
                throw new PoolException("metadata log is " + fileSize + " bytes, more than any pool writes");
            }
            ByteBuffer all = ByteBuffer.allocate((int) fileSize);
            while (all.hasRemaining() && c.read(all, all.position()) > 0) {
                // read it all
            }
            all.flip();
            long pos = HEADER_SIZE;
            long seq = 0;
            CRC32C crc = new CRC32C();
            while (pos + BATCH_HEADER <= fileSize) {
                all.position((int) pos);
                int magic = all.getInt();
                long s = all.getLong();
                int len = all.getInt();
                int sum = all.getInt();
                if (magic != BATCH_MAGIC || s != seq + 1 || len < 0 || len % LogRecords.RECORD_SIZE != 0
                        || pos + BATCH_HEADER + len > fileSize) {
                    break;
                }
                crc.reset();
                crc.update(all.array(), (int) pos + BATCH_HEADER, len);
                if ((int) crc.getValue() != sum) {
                    break;
                }
                ByteBuffer records = ByteBuffer.wrap(all.array(), (int) pos + BATCH_HEADER, len);
                while (records.hasRemaining()) {
                    replayer.replay(LogRecords.decode(records));
                }
                seq = s;
                pos += BATCH_HEADER + len;
            }
            if (pos < fileSize) {
                c.truncate(pos);
                c.force(true);
            }
            return new MetadataLog(c, pos, seq);
        } catch (IOException | PoolException | RuntimeException e) {
            c.close();
            throw e;
        }
    }

    void append(LogRecords records) throws IOException {
        int len = records.length();
        CRC32C crc = new CRC32C();
        crc.update(records.bytes(), 0, len);
        ByteBuffer b = ByteBuffer.allocate(BATCH_HEADER + len);
        b.putInt(BATCH_MAGIC).putLong(sequence + 1).putInt(len).putInt((int) crc.getValue()).put(records.bytes(), 0, len);
        b.flip();
        long at = size;
        while (b.hasRemaining()) {
            at += channel.write(b, at);
        }
        channel.force(false);
        size = at;
        sequence++;
    }

    /** Starts an empty log for image {@code generation}. */
    void reset(long generation) throws IOException {
        channel.truncate(0);
        ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE).putLong(HEADER_MAGIC).putLong(generation);
        h.flip();
        channel.write(h, 0);
        channel.force(true);
        size = HEADER_SIZE;
        sequence = 0;
    }

    long size() {
        return size;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
