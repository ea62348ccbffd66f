package io.vhostj.fuzz;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import io.vhostj.vhostuser.protocol.VhostUserMessage;
import io.vhostj.vhostuser.sys.UnixSocket;

/**
 * The input format of {@link VhostUserMessageFuzzTest}: what one frontend connection sends, as a
 * sequence of records
 *
 * <pre>
 * u8  fds;          low nibble: descriptors sent with the message (at most 8);
 *                   bit 4 + (i % 4): descriptor i is the guest-RAM memfd, else an eventfd
 * u8  header[12];   u32 request, u32 flags, u32 size: little-endian, as on the wire
 * u8  payload[];    min(size, 4096) bytes, fewer only in the last record
 * </pre>
 *
 * The payload length follows the header, so the bytes on the socket are exactly the messages
 * (plus a short tail when the input ends inside one). A header size above the protocol limit
 * sends no payload: the backend refuses it after the header.
 */
final class MessageScript {
    static final int FD_COUNT_MASK = 0x0f;
    static final int MEMFD_BITS_SHIFT = 4;

    /** One message as it goes on the socket. */
    record Record(int fdSpec, byte[] bytes) {
        int fdCount() {
            return Math.min(fdSpec & FD_COUNT_MASK, UnixSocket.MAX_FDS);
        }

        boolean isMemfd(int i) {
            return (fdSpec >> (MEMFD_BITS_SHIFT + (i & 3)) & 1) != 0;
        }

        /** The header as sent, or 0 for fields the record is too short to have. */
        int headerInt(int offset) {
            if (bytes.length < offset + 4) {
                return 0;
            }
            return ByteBuffer.wrap(bytes, offset, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
        }

        /** Whether the input ended inside this message (short header or short payload). */
        boolean truncated() {
            if (bytes.length < VhostUserMessage.HEADER_SIZE) {
                return true;
            }
            return bytes.length < VhostUserMessage.HEADER_SIZE + payloadLength(headerInt(VhostUserMessage.SIZE_OFFSET));
        }
    }

    private MessageScript() {
    }

    static int payloadLength(int headerSize) {
        return Integer.compareUnsigned(headerSize, VhostUserMessage.MAX_PAYLOAD) <= 0 ? headerSize : 0;
    }

    /** Splits an input into at most {@code maxRecords} records. */
    static List<Record> parse(byte[] input, int maxRecords) {
        List<Record> out = new ArrayList<>();
        int pos = 0;
        while (pos < input.length && out.size() < maxRecords) {
            int spec = input[pos++] & 0xff;
            int headerEnd = Math.min(pos + VhostUserMessage.HEADER_SIZE, input.length);
            int length = headerEnd - pos;
            if (length == VhostUserMessage.HEADER_SIZE) {
                int size = ByteBuffer.wrap(input, pos + VhostUserMessage.SIZE_OFFSET, 4)
                        .order(ByteOrder.LITTLE_ENDIAN).getInt();
                length += Math.min(payloadLength(size), input.length - headerEnd);
            }
            byte[] bytes = new byte[length];
            System.arraycopy(input, pos, bytes, 0, length);
            out.add(new Record(spec, bytes));
            pos += length;
        }
        return out;
    }

    /** Builds inputs for the committed seed corpus (see {@link MessageSeeds}). */
    static final class Builder {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        /** A message without descriptors. */
        Builder message(int request, int flags, byte[] payload) {
            return message(request, flags, payload, 0, 0);
        }

        /**
         * A message with {@code fdCount} descriptors; bit i of {@code memfdMask} makes
         * descriptor i the guest-RAM memfd.
         */
        Builder message(int request, int flags, byte[] payload, int fdCount, int memfdMask) {
            return rawMessage(request, flags | VhostUserMessage.VERSION, payload, fdCount, memfdMask);
        }

        /** A message whose flags are taken as given, version bits included. */
        Builder rawMessage(int request, int flags, byte[] payload, int fdCount, int memfdMask) {
            out.write((fdCount & FD_COUNT_MASK) | ((memfdMask & 0xf) << MEMFD_BITS_SHIFT));
            ByteBuffer header = ByteBuffer.allocate(VhostUserMessage.HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
            header.putInt(request).putInt(flags).putInt(payload.length);
            out.writeBytes(header.array());
            out.writeBytes(payload);
            return this;
        }

        byte[] build() {
            return out.toByteArray();
        }
    }

    /** Little-endian payload bytes. */
    static final class Payload {
        private final ByteBuffer buf;

        Payload(int size) {
            buf = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        }

        Payload u16(int v) {
            buf.putShort((short) v);
            return this;
        }

        Payload u32(int v) {
            buf.putInt(v);
            return this;
        }

        Payload u64(long v) {
            buf.putLong(v);
            return this;
        }

        Payload bytes(byte[] b) {
            buf.put(b);
            return this;
        }

        byte[] array() {
            return buf.array();
        }
    }
}
