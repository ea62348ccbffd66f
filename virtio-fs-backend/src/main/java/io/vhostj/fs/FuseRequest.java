package io.vhostj.fs;

import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;

/**
 * The request a chain carries, checked before anything reads it: a whole {@code fuse_in_header}
 * in the device-readable part, whose {@code len} is exactly that part's length, the opcode's
 * fixed argument inside it, and (unless the opcode is one-way) room for a
 * {@code fuse_out_header} in the device-writable part. Reused from request to request; the
 * header and argument are copied out of guest memory once, so a guest that rewrites them
 * while we work cannot change what was checked.
 */
public final class FuseRequest implements AutoCloseable {
    /** The largest fixed argument of any opcode (fuse_setattr_in); FuseLayoutTest holds it to that. */
    static final int MAX_ARGUMENT = Fuse.SETATTR_IN_SIZE;

    private final long buffer = Native.allocate(Fuse.IN_HEADER_SIZE + MAX_ARGUMENT);
    private final long scratch = Native.allocate(Fuse.EXT_HEADER_SIZE + 8);
    private DescriptorChain chain;
    private int argumentCopied;

    /**
     * Reads and checks the request in {@code chain}. Throws ChainException when the chain cannot
     * be a FUSE request at all; returns false when it is one but malformed (the caller answers
     * EINVAL if {@link #canReply()}).
     */
    public boolean parse(DescriptorChain chain) throws ChainException {
        this.chain = chain;
        argumentCopied = 0;
        if (chain.readableBytes() < Fuse.IN_HEADER_SIZE) {
            throw new ChainException("FUSE request of " + chain.readableBytes() + " readable bytes has no header");
        }
        chain.readFromChain(0, buffer, Fuse.IN_HEADER_SIZE);
        if ((length() & 0xffff_ffffL) != chain.readableBytes()) {
            return false;
        }
        int arg = Fuse.argumentSize(opcode());
        if (Fuse.IN_HEADER_SIZE + (long) arg + extensionBytes() > chain.readableBytes()) {
            return false;
        }
        argumentCopied = (int) Math.min(MAX_ARGUMENT, chain.readableBytes() - Fuse.IN_HEADER_SIZE);
        chain.readFromChain(Fuse.IN_HEADER_SIZE, buffer + Fuse.IN_HEADER_SIZE, argumentCopied);
        return Fuse.isOneWay(opcode()) || canReply();
    }

    /** Whether the chain has room for at least a reply header. */
    public boolean canReply() {
        return chain.writableBytes() >= Fuse.OUT_HEADER_SIZE;
    }

    public int length() {
        return Native.getInt(buffer + Fuse.IN_LEN);
    }

    public int opcode() {
        return Native.getInt(buffer + Fuse.IN_OPCODE);
    }

    public long unique() {
        return Native.getLong(buffer + Fuse.IN_UNIQUE);
    }

    public long nodeId() {
        return Native.getLong(buffer + Fuse.IN_NODEID);
    }

    public int uid() {
        return Native.getInt(buffer + Fuse.IN_UID);
    }

    public int gid() {
        return Native.getInt(buffer + Fuse.IN_GID);
    }

    public int pid() {
        return Native.getInt(buffer + Fuse.IN_PID);
    }

    /** The length of the extensions at the end of the request (total_extlen, in bytes). */
    private int extensionBytes() {
        return (Native.getShort(buffer + Fuse.IN_TOTAL_EXTLEN) & 0xffff) * 8;
    }

    /** Where the request's arguments (names, data) end: the extensions, if any, follow. */
    public long argumentsEnd() {
        return chain.readableBytes() - extensionBytes();
    }

    /**
     * The supplementary group the guest sent with a request that creates an inode (a
     * FUSE_EXT_GROUPS extension: the parent directory's group, which the caller is in but is not
     * its fsgid), or -1. A malformed extension list counts as none.
     */
    public long suppGroup() throws ChainException {
        long at = argumentsEnd();
        long end = chain.readableBytes();
        while (at + Fuse.EXT_HEADER_SIZE <= end) {
            chain.readFromChain(at, scratch, Fuse.EXT_HEADER_SIZE);
            long size = Native.getInt(scratch + Fuse.EXT_SIZE) & 0xffff_ffffL;
            if (size < Fuse.EXT_HEADER_SIZE || size % 8 != 0 || at + size > end) {
                return -1;
            }
            if (Native.getInt(scratch + Fuse.EXT_TYPE) == Fuse.EXT_GROUPS && size >= Fuse.EXT_HEADER_SIZE + 8) {
                chain.readFromChain(at + Fuse.EXT_HEADER_SIZE, scratch, 8);
                if (Native.getInt(scratch + Fuse.SUPP_GROUPS_NR) >= 1) {
                    return Native.getInt(scratch + Fuse.SUPP_GROUPS_FIRST) & 0xffff_ffffL;
                }
            }
            at += size;
        }
        return -1;
    }

    /** Bytes after the in-header (argument, names, data). */
    public long payloadBytes() {
        return chain.readableBytes() - Fuse.IN_HEADER_SIZE;
    }

    /** A u32 of the argument at {@code offset}; 0 past what the guest sent. */
    public int argInt(int offset) {
        return offset + 4 <= argumentCopied ? Native.getInt(buffer + Fuse.IN_HEADER_SIZE + offset) : 0;
    }

    /** A u64 of the argument at {@code offset}; 0 past what the guest sent. */
    public long argLong(int offset) {
        return offset + 8 <= argumentCopied ? Native.getLong(buffer + Fuse.IN_HEADER_SIZE + offset) : 0;
    }

    public DescriptorChain chain() {
        return chain;
    }

    @Override
    public void close() {
        Native.free(buffer);
        Native.free(scratch);
    }
}
