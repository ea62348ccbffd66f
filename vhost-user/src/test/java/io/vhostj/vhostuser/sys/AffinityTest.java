package io.vhostj.vhostuser.sys;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class AffinityTest {
    @Test
    void shouldParseCpuListsAsTasksetWritesThem() {
        assertArrayEquals(new int[] {0}, Affinity.parseList("0"));
        assertArrayEquals(new int[] {0, 1, 2, 3, 6, 8, 9}, Affinity.parseList("0-3,6,8-9"));
        assertArrayEquals(new int[] {1, 2}, Affinity.parseList("2,1,2"));
    }

    @Test
    void shouldRefuseWhatIsNotACpuList() {
        for (String bad : new String[] {"", "a", "1-", "-1", "3-1", "1,,2", "0-1024", "99999"}) {
            assertThrows(IllegalArgumentException.class, () -> Affinity.parseList(bad), bad);
        }
    }

    @Test
    void shouldPinTheCallingThread() throws Exception {
        Thread t = new Thread(() -> {
            try {
                Affinity.pinCurrentThread(0);
            } catch (NativeException e) {
                throw new AssertionError(e);
            }
        });
        t.start();
        t.join();
        assertThrows(NativeException.class, () -> Affinity.pinCurrentThread(5000));
    }
}
