package io.vhostj.vhostuser.sys;

import static org.junit.jupiter.api.Assertions.*;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SyslogTest {
    @TempDir
    Path dir;

    @Test
    void shouldSendEachLineAsOneDatagramWithTheSeverityOfItsLevel() throws Exception {
        Path path = dir.resolve("log");
        long pid = ProcessHandle.current().pid();
        try (UnixSocket syslog = UnixSocket.bindDatagram(path)) {
            PrintStream out = Syslog.open(path, "vhostj-fs");
            out.println("[main] INFO io.vhostj.fs.FsMain - fs: exporting /srv");
            out.println("[vhostj-fs-q1] ERROR io.vhostj.fs.FuseQueueHandler - it broke");
            out.println("\tat io.vhostj.fs.FuseQueueHandler.serve(FuseQueueHandler.java:1)");
            out.print("[main] WARN x - no newline yet");
            out.println();
            out.println("plain text from elsewhere");
            out.println("[main] DEBUG x - quiet");
            out.println("Exception in thread \"q1\" java.lang.IllegalStateException: boom");
            out.println("\tat x.y(Z.java:1)");
            assertEquals("<30>vhostj-fs[" + pid + "]: [main] INFO io.vhostj.fs.FsMain - fs: exporting /srv", receive(syslog));
            assertEquals("<27>vhostj-fs[" + pid + "]: [vhostj-fs-q1] ERROR io.vhostj.fs.FuseQueueHandler - it broke",
                    receive(syslog));
            assertEquals("<27>vhostj-fs[" + pid + "]: \tat io.vhostj.fs.FuseQueueHandler.serve(FuseQueueHandler.java:1)",
                    receive(syslog), "a stack trace's line keeps its message's severity");
            assertEquals("<28>vhostj-fs[" + pid + "]: [main] WARN x - no newline yet", receive(syslog));
            assertEquals("<27>vhostj-fs[" + pid + "]: plain text from elsewhere", receive(syslog),
                    "a line that is no log line (an uncaught exception) is an error");
            assertEquals("<31>vhostj-fs[" + pid + "]: [main] DEBUG x - quiet", receive(syslog));
            assertEquals("<27>vhostj-fs[" + pid + "]: Exception in thread \"q1\" java.lang.IllegalStateException: boom",
                    receive(syslog), "not at the debug level of the line before it");
            assertEquals("<27>vhostj-fs[" + pid + "]: \tat x.y(Z.java:1)", receive(syslog));
        }
    }

    @Test
    void shouldDropLinesSyslogCannotTakeWithoutFailing() throws Exception {
        Path path = dir.resolve("gone");
        Syslog log;
        try (UnixSocket syslog = UnixSocket.bindDatagram(path)) {
            log = Syslog.connect(path, "t");
        }
        PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8);
        out.println("[main] INFO x - nobody listens"); // ECONNREFUSED: dropped, not thrown
        out.println("[main] INFO x - still nobody");
        assertFalse(out.checkError());
        assertEquals(2, log.dropped());
    }

    @Test
    void shouldReadTheLevelWordOfAnSlf4jSimpleLine() {
        assertEquals(7, Syslog.severityOf("[t] DEBUG a - b"));
        assertEquals(6, Syslog.severityOf("INFO a - b"));
        assertEquals(-1, Syslog.severityOf("[t INFO a - b"));
        assertEquals(-1, Syslog.severityOf("[t] INFORMATION a - b"));
    }

    private static String receive(UnixSocket s) throws Exception {
        long buf = Native.allocate(16384);
        try {
            int n = s.receive(buf, 16384, new int[UnixSocket.MAX_FDS]);
            byte[] b = new byte[n];
            Native.copyToArray(buf, b, 0, n);
            return new String(b, StandardCharsets.UTF_8);
        } finally {
            Native.free(buf);
        }
    }
}
