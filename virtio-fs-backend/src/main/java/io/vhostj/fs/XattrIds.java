package io.vhostj.fs;

import java.nio.charset.StandardCharsets;

import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.Native;

/**
 * The xattrs whose values carry uids and gids, and their translation under {@code --translate-uid}
 * and {@code --translate-gid}: the POSIX ACLs ({@code include/uapi/linux/posix_acl_xattr.h}) and
 * version 3 file capabilities ({@code include/uapi/linux/capability.h}). Values are translated in
 * place, in native memory; both layouts are little-endian, as {@link Native} is.
 *
 * <p>virtiofsd has no counterpart: it refuses {@code --translate-uid} together with
 * {@code --posix-acl} ("translating UIDs would break posix ACLs") and passes capabilities as they
 * are. Here the ids in the values get what the owner gets: guest to host when the guest sets a
 * value, host to guest when it reads one.
 */
public final class XattrIds {
    /** posix_acl_xattr_header: le32 a_version. */
    public static final int ACL_HEADER_VERSION = 0;
    public static final int ACL_HEADER_SIZE = ACL_HEADER_VERSION + 4;
    /** posix_acl_xattr_entry: le16 e_tag, le16 e_perm, le32 e_id; the header's entries follow it. */
    public static final int ACL_ENTRY_TAG = 0;
    public static final int ACL_ENTRY_PERM = 2;
    public static final int ACL_ENTRY_ID = 4;
    public static final int ACL_ENTRY_SIZE = ACL_ENTRY_ID + 4;
    /** POSIX_ACL_XATTR_VERSION. */
    public static final int ACL_VERSION = 2;
    /** e_tag values whose e_id is meaningful; every other tag carries {@link #ACL_UNDEFINED_ID}. */
    public static final short ACL_USER = 0x02;
    public static final short ACL_GROUP = 0x08;
    public static final int ACL_UNDEFINED_ID = -1;

    /**
     * vfs_ns_cap_data: le32 magic_etc, {le32 permitted, le32 inheritable}[VFS_CAP_U32 = 2],
     * le32 rootid. Revision 2 (vfs_cap_data) is the same without rootid.
     */
    public static final int CAP_MAGIC_ETC = 0;
    public static final int CAP_DATA = 4;
    public static final int CAP_DATA_PERMITTED = 0;
    public static final int CAP_DATA_INHERITABLE = 4;
    public static final int CAP_DATA_SIZE = CAP_DATA_INHERITABLE + 4;
    public static final int CAP_U32 = 2;
    public static final int CAP_ROOTID = CAP_DATA + CAP_U32 * CAP_DATA_SIZE;
    public static final int CAP_V3_SIZE = CAP_ROOTID + 4;
    public static final int CAP_REVISION_MASK = 0xff00_0000;
    public static final int CAP_REVISION_1 = 0x0100_0000;
    public static final int CAP_REVISION_2 = 0x0200_0000;
    public static final int CAP_REVISION_3 = 0x0300_0000;
    /** VFS_CAP_FLAGS_EFFECTIVE. */
    public static final int CAP_FLAGS_EFFECTIVE = 0x1;

    /** Which values carry ids. */
    public enum Kind {
        /** system.posix_acl_access and system.posix_acl_default. */
        ACL,
        /** security.capability. */
        CAPABILITY
    }

    private static final byte[] ACL_ACCESS = "system.posix_acl_access".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] ACL_DEFAULT = "system.posix_acl_default".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] CAPABILITY = "security.capability".getBytes(StandardCharsets.US_ASCII);

    private XattrIds() {
    }

    /**
     * What the value of the xattr named at {@code name} (the host's name, NUL-terminated) carries;
     * null: no ids. Reads no further than the first byte that differs from every known name.
     */
    public static Kind kindOf(long name) {
        if (is(name, ACL_ACCESS) || is(name, ACL_DEFAULT)) {
            return Kind.ACL;
        }
        return is(name, CAPABILITY) ? Kind.CAPABILITY : null;
    }

    private static boolean is(long name, byte[] known) {
        for (int i = 0; i < known.length; i++) {
            if (Native.getByte(name + i) != known[i]) {
                return false;
            }
        }
        return Native.getByte(name + known.length) == 0;
    }

    /**
     * The guest's value of {@code size} bytes at {@code value}, made the host's: 0, or the errno
     * refusing it (the value may then be half translated; it is not to be used).
     *
     * <p>EPERM for an id {@code forbid-guest} covers, as chown and creating answer: such an id
     * may own nothing, and an ACL entry or a capability's root is as good as owning. (EINVAL,
     * what the kernel answers for an ACL id with no mapping in the caller's user namespace,
     * is kept for values that are malformed, so the guest can tell a refused id from a broken
     * value.) EINVAL for an ACL whose version or length is wrong and for a revision 3
     * capability that is not {@link #CAP_V3_SIZE} bytes: the kernel would refuse both, and the
     * ids could not be found. Any other capability revision passes as it is: it has no rootid,
     * and the host kernel judges it.
     */
    public static int toHost(Kind kind, long value, int size, IdMap uids, IdMap gids) {
        if (kind == Kind.ACL) {
            if (!isAcl(value, size)) {
                return Errno.EINVAL;
            }
            for (long e = value + ACL_HEADER_SIZE; e < value + size; e += ACL_ENTRY_SIZE) {
                short tag = Native.getShort(e + ACL_ENTRY_TAG);
                int id = Native.getInt(e + ACL_ENTRY_ID);
                if ((tag != ACL_USER && tag != ACL_GROUP) || id == ACL_UNDEFINED_ID) {
                    continue; // no id; an entry naming -1 is the host kernel's to refuse (EINVAL)
                }
                long host = (tag == ACL_USER ? uids : gids).toHost(id);
                if (host == IdMap.FORBIDDEN) {
                    return Errno.EPERM;
                }
                Native.putInt(e + ACL_ENTRY_ID, (int) host);
            }
            sortQualifiers(value, size);
            return 0;
        }
        if (size >= CAP_MAGIC_ETC + 4 && isRevision3(value)) {
            if (size != CAP_V3_SIZE) {
                return Errno.EINVAL;
            }
            long host = uids.toHost(Native.getInt(value + CAP_ROOTID));
            if (host == IdMap.FORBIDDEN) {
                return Errno.EPERM;
            }
            Native.putInt(value + CAP_ROOTID, (int) host);
        }
        return 0;
    }

    /**
     * The host's value of {@code size} bytes at {@code value}, made the guest's: an id with no
     * way back stays as it is, as the owner in an attribute reply does. A value this cannot read
     * (which the host kernel does not produce) is left alone.
     */
    public static void toGuest(Kind kind, long value, int size, IdMap uids, IdMap gids) {
        if (kind == Kind.ACL) {
            if (!isAcl(value, size)) {
                return;
            }
            for (long e = value + ACL_HEADER_SIZE; e < value + size; e += ACL_ENTRY_SIZE) {
                short tag = Native.getShort(e + ACL_ENTRY_TAG);
                int id = Native.getInt(e + ACL_ENTRY_ID);
                if ((tag == ACL_USER || tag == ACL_GROUP) && id != ACL_UNDEFINED_ID) {
                    Native.putInt(e + ACL_ENTRY_ID, (tag == ACL_USER ? uids : gids).toGuest(id));
                }
            }
            sortQualifiers(value, size);
        } else if (size == CAP_V3_SIZE && isRevision3(value)) {
            Native.putInt(value + CAP_ROOTID, uids.toGuest(Native.getInt(value + CAP_ROOTID)));
        }
    }

    private static boolean isAcl(long value, int size) {
        return size >= ACL_HEADER_SIZE && (size - ACL_HEADER_SIZE) % ACL_ENTRY_SIZE == 0
                && Native.getInt(value + ACL_HEADER_VERSION) == ACL_VERSION;
    }

    /**
     * A revision 1 or 2 capability has no rootid: the host kernel would give it effect in every
     * namespace, as if host root had set it. When guest root is not host root it becomes a
     * revision 3 capability whose rootid is guest root's host id, as the kernel converts a
     * capability set from inside a user namespace; EPERM if guest root is forbidden. Returns the
     * value's size then (in place: {@code value} must have room for {@link #CAP_V3_SIZE} bytes), or
     * -errno. Anything else keeps its size.
     */
    public static int widenCapability(long value, int size, IdMap uids) {
        if (size < CAP_MAGIC_ETC + 4) {
            return size;
        }
        int magic = Native.getInt(value + CAP_MAGIC_ETC);
        int revision = magic & CAP_REVISION_MASK;
        int pairs = revision == CAP_REVISION_1 ? 1 : revision == CAP_REVISION_2 ? 2 : 0;
        if (pairs == 0 || size != CAP_DATA + pairs * CAP_DATA_SIZE) {
            return size; // revision 3 is translated by toHost; the kernel refuses anything malformed
        }
        long root = uids.toHost(0);
        if (root == IdMap.FORBIDDEN) {
            return -Errno.EPERM;
        }
        if (root == 0) {
            return size;
        }
        if (pairs == 1) {
            Native.zero(value + CAP_DATA + CAP_DATA_SIZE, CAP_DATA_SIZE);
        }
        Native.putInt(value + CAP_MAGIC_ETC, CAP_REVISION_3 | (magic & CAP_FLAGS_EFFECTIVE));
        Native.putInt(value + CAP_ROOTID, 0); // guest root, made the host's by toHost
        return CAP_V3_SIZE;
    }

    private static boolean isRevision3(long value) {
        return (Native.getInt(value + CAP_MAGIC_ETC) & CAP_REVISION_MASK) == CAP_REVISION_3;
    }

    /**
     * Sorts each run of ACL_USER and of ACL_GROUP entries by id again, stably: a map need not
     * keep ids in order, and libacl writes the entries of one tag in ascending order of id, the
     * form translated ACLs keep (the kernel checks only the order of the tags). A run already in
     * order, as any ACL is under a map that keeps order, is only read.
     */
    private static void sortQualifiers(long value, int size) {
        long end = value + size;
        long runStart = value + ACL_HEADER_SIZE;
        while (runStart < end) {
            short tag = Native.getShort(runStart + ACL_ENTRY_TAG);
            long runEnd = runStart + ACL_ENTRY_SIZE;
            boolean sorted = true;
            while (runEnd < end && Native.getShort(runEnd + ACL_ENTRY_TAG) == tag) {
                sorted &= Integer.compareUnsigned(Native.getInt(runEnd - ACL_ENTRY_SIZE + ACL_ENTRY_ID),
                        Native.getInt(runEnd + ACL_ENTRY_ID)) <= 0;
                runEnd += ACL_ENTRY_SIZE;
            }
            if (!sorted && (tag == ACL_USER || tag == ACL_GROUP)) {
                sortRun(runStart, (int) ((runEnd - runStart) / ACL_ENTRY_SIZE));
            }
            runStart = runEnd;
        }
    }

    /**
     * Sorts {@code n} entries at {@code run} by unsigned id, keeping equal ids in their order:
     * each key is the id above the entry's index, its sign flipped so a signed sort orders ids
     * as unsigned. O(n log n), whatever order a guest sends 8191 entries in.
     */
    private static void sortRun(long run, int n) {
        long[] entries = new long[n];
        long[] keys = new long[n];
        for (int i = 0; i < n; i++) {
            entries[i] = Native.getLong(run + (long) i * ACL_ENTRY_SIZE);
            long id = Native.getInt(run + (long) i * ACL_ENTRY_SIZE + ACL_ENTRY_ID) & 0xffff_ffffL;
            keys[i] = (id << 32 | i) ^ Long.MIN_VALUE;
        }
        java.util.Arrays.sort(keys);
        for (int i = 0; i < n; i++) {
            Native.putLong(run + (long) i * ACL_ENTRY_SIZE, entries[(int) keys[i]]);
        }
    }
}
