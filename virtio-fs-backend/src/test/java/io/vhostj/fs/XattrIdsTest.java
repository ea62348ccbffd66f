package io.vhostj.fs;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.Native;

class XattrIdsTest {
    private static final short USER_OBJ = 0x01;
    private static final short GROUP_OBJ = 0x04;
    private static final short MASK = 0x10;
    private static final short OTHER = 0x20;
    private static final int UNDEFINED = -1;

    private static final IdMap UIDS = IdMap.parse(List.of("map:1000:5000:10", "forbid-guest:2000:5",
            "squash-host:6000:9:10"), "--translate-uid");
    private static final IdMap GIDS = IdMap.parse(List.of("map:100:7100:10", "forbid-guest:300:1"), "--translate-gid");

    private final long buffer = Native.allocate(256);

    @AfterEach
    void free() {
        Native.free(buffer);
    }

    @Test
    void shouldLayOutTheValuesAsTheKernelHeadersDo() {
        assertEquals(4, XattrIds.ACL_HEADER_SIZE, "posix_acl_xattr_header");
        assertEquals(8, XattrIds.ACL_ENTRY_SIZE, "posix_acl_xattr_entry");
        assertEquals(2, XattrIds.ACL_ENTRY_PERM, "posix_acl_xattr_entry.e_perm");
        assertEquals(4, XattrIds.ACL_ENTRY_ID, "posix_acl_xattr_entry.e_id");
        assertEquals(24, XattrIds.CAP_V3_SIZE, "vfs_ns_cap_data (XATTR_CAPS_SZ_3)");
        assertEquals(20, XattrIds.CAP_ROOTID, "vfs_ns_cap_data.rootid; XATTR_CAPS_SZ_2 is the size before it");
        assertEquals(8, XattrIds.CAP_DATA_SIZE, "vfs_ns_cap_data.data[0]");
    }

    @Test
    void shouldKnowTheNamesThatCarryIdsAndNoOthers() {
        assertEquals(XattrIds.Kind.ACL, kindOf("system.posix_acl_access"));
        assertEquals(XattrIds.Kind.ACL, kindOf("system.posix_acl_default"));
        assertEquals(XattrIds.Kind.CAPABILITY, kindOf("security.capability"));
        for (String other : new String[] {"system.posix_acl_accessx", "system.posix_acl", "user.posix_acl_access",
                "security.capabilit", "", "trusted.overlay.opaque"}) {
            assertNull(kindOf(other), other);
        }
    }

    @Test
    void shouldTranslateUserAndGroupEntriesGuestToHostAndBack() {
        byte[] guest = acl(2, USER_OBJ, 6, UNDEFINED, XattrIds.ACL_USER, 4, 1003, XattrIds.ACL_USER, 6, 42,
                GROUP_OBJ, 4, UNDEFINED, XattrIds.ACL_GROUP, 6, 105, MASK, 6, UNDEFINED, OTHER, 4, UNDEFINED);
        put(guest);
        assertEquals(0, XattrIds.toHost(XattrIds.Kind.ACL, buffer, guest.length, UIDS, GIDS));
        byte[] host = acl(2, USER_OBJ, 6, UNDEFINED, XattrIds.ACL_USER, 6, 42, XattrIds.ACL_USER, 4, 5003,
                GROUP_OBJ, 4, UNDEFINED, XattrIds.ACL_GROUP, 6, 7105, MASK, 6, UNDEFINED, OTHER, 4, UNDEFINED);
        assertArrayEquals(host, get(host.length),
                "uid 1003 is 5003, gid 105 is 7105, 42 unmapped stays; the user entries sorted by id again; "
                        + "the entries without an id untouched");

        XattrIds.toGuest(XattrIds.Kind.ACL, buffer, host.length, UIDS, GIDS);
        assertArrayEquals(acl(2, USER_OBJ, 6, UNDEFINED, XattrIds.ACL_USER, 6, 42, XattrIds.ACL_USER, 4, 1003,
                GROUP_OBJ, 4, UNDEFINED, XattrIds.ACL_GROUP, 6, 105, MASK, 6, UNDEFINED, OTHER, 4, UNDEFINED),
                get(host.length));
    }

    @Test
    void shouldShowHostIdsWithoutAWayBackAsGetattrShowsOwners() {
        byte[] host = acl(2, XattrIds.ACL_USER, 4, 6003, XattrIds.ACL_USER, 4, 8000, XattrIds.ACL_GROUP, 4, 8000,
                XattrIds.ACL_GROUP, 4, UNDEFINED);
        put(host);
        XattrIds.toGuest(XattrIds.Kind.ACL, buffer, host.length, UIDS, GIDS);
        assertArrayEquals(acl(2, XattrIds.ACL_USER, 4, 9, XattrIds.ACL_USER, 4, 8000, XattrIds.ACL_GROUP, 4, 8000,
                XattrIds.ACL_GROUP, 4, UNDEFINED), get(host.length), "squashed to 9; 8000 as IdMap.toGuest gives it");
        assertEquals(8000, UIDS.toGuest(8000), "what an attribute reply shows for an owner 8000");
    }

    @Test
    void shouldRefuseForbiddenGuestIdsWithEperm() {
        byte[] user = acl(2, XattrIds.ACL_USER, 4, 1001, XattrIds.ACL_USER, 4, 2003);
        put(user);
        assertEquals(Errno.EPERM, XattrIds.toHost(XattrIds.Kind.ACL, buffer, user.length, UIDS, GIDS));
        byte[] group = acl(2, XattrIds.ACL_USER, 4, 300, XattrIds.ACL_GROUP, 4, 300);
        put(group);
        assertEquals(Errno.EPERM, XattrIds.toHost(XattrIds.Kind.ACL, buffer, group.length, UIDS, GIDS),
                "gid 300 is forbidden; uid 300 is not");
        byte[] cap = capV3(2003);
        put(cap);
        assertEquals(Errno.EPERM, XattrIds.toHost(XattrIds.Kind.CAPABILITY, buffer, cap.length, UIDS, GIDS));
    }

    @Test
    void shouldRefuseMalformedValuesWithEinval() {
        byte[] v1 = acl(1, XattrIds.ACL_USER, 4, 1001);
        put(v1);
        assertEquals(Errno.EINVAL, XattrIds.toHost(XattrIds.Kind.ACL, buffer, v1.length, UIDS, GIDS), "version 1");
        byte[] ok = acl(2, XattrIds.ACL_USER, 4, 1001);
        for (int size : new int[] {0, 3, 5, 11, 13}) {
            put(ok);
            assertEquals(Errno.EINVAL, XattrIds.toHost(XattrIds.Kind.ACL, buffer, size, UIDS, GIDS), size + " bytes");
        }
        put(capV3(1001));
        assertEquals(Errno.EINVAL, XattrIds.toHost(XattrIds.Kind.CAPABILITY, buffer, 20, UIDS, GIDS),
                "revision 3 without its rootid");
        assertEquals(Errno.EINVAL, XattrIds.toHost(XattrIds.Kind.CAPABILITY, buffer, 28, UIDS, GIDS),
                "revision 3 with more");

        byte[] header = acl(2);
        put(header);
        assertEquals(0, XattrIds.toHost(XattrIds.Kind.ACL, buffer, header.length, UIDS, GIDS),
                "no entries is well formed (the kernel takes it as removing the ACL)");

        put(v1);
        XattrIds.toGuest(XattrIds.Kind.ACL, buffer, v1.length, UIDS, GIDS);
        assertArrayEquals(v1, get(v1.length), "a host value this cannot read is passed on as it is");
    }

    @Test
    void shouldMapTheRootidOfRevision3AndLeaveRevision2Alone() {
        byte[] v3 = capV3(1004);
        put(v3);
        assertEquals(0, XattrIds.toHost(XattrIds.Kind.CAPABILITY, buffer, v3.length, UIDS, GIDS));
        assertArrayEquals(capV3(5004), get(v3.length));
        XattrIds.toGuest(XattrIds.Kind.CAPABILITY, buffer, v3.length, UIDS, GIDS);
        assertArrayEquals(v3, get(v3.length));

        byte[] v2 = java.util.Arrays.copyOf(capV3(1004), 20);
        v2[3] = 0x02; // VFS_CAP_REVISION_2, effective bit kept
        put(v2);
        assertEquals(0, XattrIds.toHost(XattrIds.Kind.CAPABILITY, buffer, v2.length, UIDS, GIDS));
        assertArrayEquals(v2, get(v2.length));
        XattrIds.toGuest(XattrIds.Kind.CAPABILITY, buffer, v2.length, UIDS, GIDS);
        assertArrayEquals(v2, get(v2.length));
        byte[] odd = {1, 2};
        put(odd);
        assertEquals(0, XattrIds.toHost(XattrIds.Kind.CAPABILITY, buffer, odd.length, UIDS, GIDS),
                "too short for a revision: the host kernel's to judge");
    }

    @Test
    void shouldSortAReorderedRunStablyWithTheIdsAsUnsigned() {
        // host 6000..6009 squash to guest 9; 0x80000000 sorts after them as unsigned
        byte[] host = acl(2, XattrIds.ACL_USER, 1, 0x8000_0000, XattrIds.ACL_USER, 2, 6001, XattrIds.ACL_USER, 4, 10,
                XattrIds.ACL_USER, 7, 6000);
        put(host);
        XattrIds.toGuest(XattrIds.Kind.ACL, buffer, host.length, UIDS, GIDS);
        assertArrayEquals(acl(2, XattrIds.ACL_USER, 2, 9, XattrIds.ACL_USER, 7, 9, XattrIds.ACL_USER, 4, 10,
                XattrIds.ACL_USER, 1, 0x8000_0000), get(host.length), "equal ids keep their order");
    }

    /** A POSIX ACL xattr: the version, then (tag, perm, id) triples. */
    private static byte[] acl(int version, int... entries) {
        ByteBuffer b = ByteBuffer.allocate(XattrIds.ACL_HEADER_SIZE + entries.length / 3 * XattrIds.ACL_ENTRY_SIZE)
                .order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(version);
        for (int i = 0; i < entries.length; i += 3) {
            b.putShort((short) entries[i]).putShort((short) entries[i + 1]).putInt(entries[i + 2]);
        }
        return b.array();
    }

    /** A revision 3 capability with the effective bit, CAP_NET_BIND_SERVICE permitted, and {@code rootid}. */
    @Test
    void shouldWidenARootlessCapabilityToRevision3WithGuestRootsHostId() {
        IdMap rootMapped = IdMap.parse(List.of("map:0:100000:65536"), "--translate-uid");
        byte[] v2 = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(XattrIds.CAP_REVISION_2 | 1).putInt(1 << 7).putInt(0).putInt(1 << 1).putInt(0).array();
        put(v2);
        assertEquals(24, XattrIds.widenCapability(buffer, v2.length, rootMapped));
        assertEquals(0, XattrIds.toHost(XattrIds.Kind.CAPABILITY, buffer, 24, rootMapped, GIDS));
        byte[] want = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putInt(XattrIds.CAP_REVISION_3 | 1)
                .putInt(1 << 7).putInt(0).putInt(1 << 1).putInt(0).putInt(100000).array();
        assertArrayEquals(want, get(24), "a v2 capability set by guest root gets effect only under host uid 100000");

        byte[] v1 = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(XattrIds.CAP_REVISION_1).putInt(1 << 7).putInt(0).array();
        Native.copyFromArray(new byte[24], 0, buffer, 24);
        put(v1);
        Native.putInt(buffer + 12, 0xdead); // what follows a v1 value must not leak into the second pair
        assertEquals(24, XattrIds.widenCapability(buffer, v1.length, rootMapped));
        assertEquals(XattrIds.CAP_REVISION_3, Native.getInt(buffer) & XattrIds.CAP_REVISION_MASK);
        assertEquals(0, Native.getInt(buffer + 12));

        put(v2);
        assertEquals(20, XattrIds.widenCapability(buffer, 20, UIDS), "guest root is host root: nothing to do");
        IdMap rootForbidden = IdMap.parse(List.of("forbid-guest:0:1", "map:1:1:65535"), "--translate-uid");
        assertEquals(-io.vhostj.vhostuser.sys.Errno.EPERM, XattrIds.widenCapability(buffer, 20, rootForbidden));
    }

    private static byte[] capV3(int rootid) {
        return ByteBuffer.allocate(XattrIds.CAP_V3_SIZE).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(XattrIds.CAP_REVISION_3 | 1).putInt(1 << 10).putInt(0).putInt(0).putInt(0).putInt(rootid)
                .array();
    }

    private XattrIds.Kind kindOf(String name) {
        byte[] b = (name + "\0").getBytes(StandardCharsets.US_ASCII);
        Native.copyFromArray(b, 0, buffer, b.length);
        return XattrIds.kindOf(buffer);
    }

    private void put(byte[] value) {
        Native.copyFromArray(value, 0, buffer, value.length);
    }

    private byte[] get(int length) {
        byte[] b = new byte[length];
        Native.copyToArray(buffer, b, 0, length);
        return b;
    }
}
