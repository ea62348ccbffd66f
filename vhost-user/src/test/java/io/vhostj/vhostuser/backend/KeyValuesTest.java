package io.vhostj.vhostuser.backend;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;

class KeyValuesTest {
    private static final Set<String> KEYS = Set.of("socket", "path");

    @Test
    void shouldSplitKeysValuesAndStandAloneFlagsInOrder() {
        Map<String, String> kv = KeyValues.parse("--export", "socket=/s,path=/a=b,read-only", KEYS, Set.of("read-only"));
        assertEquals(List.of("socket", "path", "read-only"), List.copyOf(kv.keySet()));
        assertEquals("/a=b", kv.get("path"), "only the first '=' splits");
        assertEquals("", kv.get("read-only"));
        assertEquals("", KeyValues.parse("--vm", "socket=", KEYS).get("socket"), "an empty value is the caller's to judge");
    }

    @Test
    void shouldRefuseWhatTheOptionDoesNotKnowWithAMessageNamingIt() {
        assertEquals("--vm socket=/s,colour=red: unknown key 'colour'", assertThrows(IllegalArgumentException.class,
                () -> KeyValues.parse("--vm", "socket=/s,colour=red", KEYS)).getMessage());
        assertEquals("--vm socket=/s,read-only: 'read-only' is not key=value", assertThrows(IllegalArgumentException.class,
                () -> KeyValues.parse("--vm", "socket=/s,read-only", KEYS)).getMessage());
        assertEquals("--vm socket=/s,,path=/p: '' is not key=value", assertThrows(IllegalArgumentException.class,
                () -> KeyValues.parse("--vm", "socket=/s,,path=/p", KEYS)).getMessage());
        assertEquals(Map.of("socket", "/s"), KeyValues.parse("--vm", "socket=/s,", KEYS), "a trailing comma, as before");
        assertEquals("--vm socket=/a,socket=/b: socket is given twice", assertThrows(IllegalArgumentException.class,
                () -> KeyValues.parse("--vm", "socket=/a,socket=/b", KEYS)).getMessage());
        assertEquals("--vm path=/p: socket= is required", assertThrows(IllegalArgumentException.class,
                () -> KeyValues.require("--vm", "path=/p", KeyValues.parse("--vm", "path=/p", KEYS), "socket")).getMessage());
    }
}
