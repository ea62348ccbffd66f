package io.vhostj.fs;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.util.List;

import org.junit.jupiter.api.Test;

import io.vhostj.vhostuser.sys.Errno;

class XattrMapTest {
    /** virtiofsd's doc/xattr-mapping.md, example 1: everything under user.virtiofs. */
    static final String PREFIX_ALL = ":prefix:all::user.virtiofs.::bad:all:::";
    /** Example 2: trusted. under user.virtiofs., the rest as it is. */
    static final String PREFIX_TRUSTED = "/prefix/all/trusted./user.virtiofs./\n"
            + "            /bad/server//trusted./\n"
            + "            /bad/client/user.virtiofs.//\n"
            + "            /ok/all///";

    private static XattrMap map(String spec) {
        return XattrMap.parse(spec, "--xattrmap");
    }

    /** The host's name for {@code name}, or "EPERM" / "ENOTSUP". */
    private static String toHost(XattrMap m, String name) {
        XattrMap.HostName h = m.toHost(name.getBytes(StandardCharsets.UTF_8));
        return switch (h.errno()) {
            case 0 -> new String(h.name(), StandardCharsets.UTF_8);
            case Errno.EPERM -> "EPERM";
            case Errno.ENOTSUP -> "ENOTSUP";
            default -> "errno " + h.errno();
        };
    }

    /** What the guest's listxattr shows of the host's {@code names}. */
    private static List<String> toGuest(XattrMap m, String... names) {
        byte[] list = (String.join("\0", names) + "\0").getBytes(StandardCharsets.UTF_8);
        int n = m.toGuestList(list, list.length);
        String guest = new String(list, 0, n, StandardCharsets.UTF_8);
        assertTrue(n == 0 || guest.endsWith("\0"), "every name NUL-terminated");
        return n == 0 ? List.of() : List.of(guest.substring(0, n - 1).split("\0", -1));
    }

    @Test
    void shouldPrefixEveryNameAndHideTheRestAsExampleOneSays() {
        XattrMap m = map(PREFIX_ALL);
        assertEquals("user.virtiofs.trusted.foo", toHost(m, "trusted.foo"));
        assertEquals("user.virtiofs.user.x", toHost(m, "user.x"));
        assertEquals(List.of("trusted.foo", "security.selinux"),
                toGuest(m, "user.virtiofs.trusted.foo", "user.plain", "trusted.host", "user.virtiofs.security.selinux"));
        assertEquals(List.of(), toGuest(m, "user.plain", "security.selinux"), "nothing prefixed: an empty list");
    }

    @Test
    void shouldPrefixTrustedAndPassTheRestAsExampleTwoSays() {
        XattrMap m = map(PREFIX_TRUSTED);
        assertEquals("user.virtiofs.trusted.overlay.x", toHost(m, "trusted.overlay.x"));
        assertEquals("user.mine", toHost(m, "user.mine"));
        assertEquals("security.selinux", toHost(m, "security.selinux"));
        assertEquals("EPERM", toHost(m, "user.virtiofs.trusted.x"), "the guest may not reach the mapped names around the map");
        assertEquals(List.of("trusted.overlay.x", "user.mine", "security.selinux"),
                toGuest(m, "user.virtiofs.trusted.overlay.x", "trusted.host", "user.mine", "security.selinux"));
    }

    @Test
    void shouldExpandTheMapShorthandAsVirtiofsdDoes() {
        assertEquals(":prefix:all::user.virtiofs.: :bad:all:::", map(":map::user.virtiofs.:").toString());
        assertEquals(map(PREFIX_ALL).toString(), map(":map::user.virtiofs.:").toString(), "the doc: the same as example 1");
        assertEquals(":prefix:all:trusted.:user.virtiofs.: :bad:all:user.virtiofs.:trusted.: :ok:all:::",
                map("/map/trusted./user.virtiofs./").toString());
        // the doc: the same as example 2, name for name
        XattrMap shorthand = map("  /map/trusted./user.virtiofs./\n");
        XattrMap longhand = map(PREFIX_TRUSTED);
        for (String name : List.of("trusted.a", "user.virtiofs.trusted.a", "user.virtiofs.x", "user.a", "security.x",
                "trusted.", "", "user.virtiofs.")) {
            assertEquals(toHost(longhand, name), toHost(shorthand, name), name);
            assertEquals(toGuest(longhand, name), toGuest(shorthand, name), name);
        }
    }

    @Test
    void shouldApplyEachTypeOnItsSidesOnly() {
        XattrMap m = map("|bad|client|user.bad.||  #unsupported#client#user.unsup.##\t"
                + ":prefix:client:user.c.:user.host.c.: :prefix:server::user.host.s.: "
                + ":ok:server::user.host.c.: :bad:server::user.hidden.: :unsupported:server::user.gone.: :ok:all:::");
        assertEquals("EPERM", toHost(m, "user.bad.x"));
        assertEquals("ENOTSUP", toHost(m, "user.unsup.x"));
        assertEquals("user.host.c.user.c.x", toHost(m, "user.c.x"), "client-only prefix; its host name is listed");
        assertEquals("EPERM", toHost(m, "user.hidden.x"), "not listed, so not reachable either");
        assertEquals("EPERM", toHost(m, "user.gone.x"), "unsupported on the server side hides as bad does");
        assertEquals("user.host.s.x", toHost(m, "user.host.s.x"), "a server-only prefix does not touch guest names");
        assertEquals(List.of("x", "user.host.c.user.c.x", "user.bad.x", "user.other"),
                toGuest(m, "user.host.s.x", "user.host.c.user.c.x", "user.hidden.x", "user.gone.x", "user.bad.x",
                        "user.other"));
    }

    @Test
    void shouldRefuseWhatNoRuleMatches() {
        XattrMap m = map(":ok:client:user.:: :ok:server::user.:");
        assertEquals("user.a", toHost(m, "user.a"));
        assertEquals("EPERM", toHost(m, "trusted.a"), "virtiofsd's implicit last rule is bad");
        assertEquals(List.of("user.a"), toGuest(m, "trusted.a", "user.a", "security.b"));
        assertEquals("EPERM", toHost(map(":ok:client:::"), "user.a"), "passed, but no server rule lists it");
    }

    @Test
    void shouldTakeEmptyFieldsAsMatchingEverything() {
        XattrMap m = map(":prefix:all::p.:");
        assertEquals("p.", toHost(m, ""));
        assertEquals("p.anything", toHost(m, "anything"));
        assertEquals(List.of("q"), toGuest(m, "p.", "p.q", "other"), "an empty name is no name: not listed");
    }

    @Test
    void shouldRefuseMalformedMapsWithTheRuleAndWhy() {
        record Bad(String spec, String why) {
        }
        for (Bad bad : List.of(
                new Bad("", "no rules"),
                new Bad(" \n\t ", "no rules"),
                new Bad(":prefix:all:trusted.:user.vm.", "rule 1 (':prefix:all:trusted.:user.vm.'): no closing ':'"),
                new Bad(":ok:all::: /ok/all//", "rule 2 ('/ok/all//'): no closing '/'"),
                new Bad(":tomato:all:::", "rule 1 (':tomato:'): type must be prefix, ok, bad, unsupported or map, not 'tomato'"),
                new Bad("/prefix/helloworld///", "rule 1 ('/prefix/helloworld///'): scope must be client, server or all"),
                new Bad(":map:a:b: :ok:all:::", "rule 1 (':map:a:b:'): map must be the last rule"),
                new Bad(":map:a:b::map:a:b:", "rule 1 (':map:a:b:'): map must be the last rule"),
                new Bad(":ok:all:::\n:ok:all::\n", "rule 2 (':ok:all::'): no closing ':'"),
                new Bad(":ok:all::::", "rule 2 (':'): no closing ':'"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> XattrMap.parse(bad.spec(), "-o xattrmap"), bad.spec());
            assertTrue(e.getMessage().startsWith("-o xattrmap: " + bad.why()), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        }
    }
}
