package io.vhostj.devmapper;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * Operations on the pool as the metadata log holds them: a type byte, the device id, then the
 * operation's fields, fixed size each ({@value #RECORD_SIZE} bytes), big-endian. Replaying them
 * in order onto the last image gives the pool's state; the data block of each MAP is in the
 * record, so replay does not depend on how blocks were chosen.
 */
final class LogRecords {
    static final byte CREATE_THIN = 1;
    static final byte CREATE_SNAP = 2;
    static final byte DELETE = 3;
    static final byte RESIZE = 4;
    static final byte MAP = 5;
    static final byte UNMAP = 6;
    /** type u8, device u32, value u64 (size, origin or virtual block), block u32, time u64. */
    static final int RECORD_SIZE = 1 + 4 + 8 + 4 + 8;

    /** One decoded record; {@code value} is the size, the origin or the virtual block. */
    record Record(byte type, int device, long value, int block, long time) {
    }

    private byte[] buf = new byte[64 * RECORD_SIZE];
    private int length;

    void createThin(int id, long size, long time) {
        put(CREATE_THIN, id, size, -1, time);
    }

    void createSnap(int id, int origin, long time) {
        put(CREATE_SNAP, id, origin, -1, time);
    }

    void delete(int id) {
        put(DELETE, id, 0, -1, 0);
    }

    void resize(int id, long size) {
        put(RESIZE, id, size, -1, 0);
    }

    void map(int id, long vblock, int block) {
        put(MAP, id, vblock, block, 0);
    }

    void unmap(int id, long vblock) {
        put(UNMAP, id, vblock, -1, 0);
    }

    private void put(byte type, int device, long value, int block, long time) {
        if (length + RECORD_SIZE > buf.length) {
            buf = Arrays.copyOf(buf, buf.length * 2);
        }
        ByteBuffer.wrap(buf, length, RECORD_SIZE).put(type).putInt(device).putLong(value).putInt(block).putLong(time);
        length += RECORD_SIZE;
    }

    boolean isEmpty() {
        return length == 0;
    }

    int length() {
        return length;
    }

    byte[] bytes() {
        return buf;
    }

    void clear() {
        length = 0;
        if (buf.length > (1 << 20)) {
            buf = new byte[64 * RECORD_SIZE];
        }
    }

    static Record decode(ByteBuffer b) {
        return new Record(b.get(), b.getInt(), b.getLong(), b.getInt(), b.getLong());
    }
}
