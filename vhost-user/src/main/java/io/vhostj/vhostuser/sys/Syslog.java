package io.vhostj.vhostuser.sys;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Log lines to the local syslog socket, for virtiofsd's {@code --syslog}: each line is one
 * datagram, {@code <PRI>TAG[PID]: text}, facility daemon, its severity read from the
 * slf4j-simple level word at the line's start (the lines of a stack trace keep the severity of
 * the message they follow; any other line, an uncaught exception say, is an error). The socket is connected when opened, so it keeps working inside a
 * sandbox where /dev/log is out of reach; it does not block: a line syslog cannot take now is
 * dropped and counted (a stalled syslog must not stall the device's threads).
 */
public final class Syslog extends OutputStream {
    /** Where syslog listens, unless the system property {@code vhostj.syslog.socket} says otherwise (tests). */
    public static Path socketPath() {
        return Path.of(System.getProperty("vhostj.syslog.socket", "/dev/log"));
    }

    private static final int FACILITY_DAEMON = 3;
    private static final int MAX_LINE = 8192;
    private static final String[] LEVELS = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    private static final int[] SEVERITIES = {3, 4, 6, 7, 7};

    private final UnixSocket socket;
    private final String prefix;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream(256);
    private final long buffer;
    private int severity = 6;
    private long dropped;

    private Syslog(UnixSocket socket, String tag) {
        this.socket = socket;
        this.prefix = tag + "[" + ProcessHandle.current().pid() + "]: ";
        this.buffer = Native.allocate(MAX_LINE + 256);
    }

    /** A print stream whose lines go to syslog at {@code socket} as {@code tag}. */
    public static PrintStream open(Path socket, String tag) throws NativeException {
        return new PrintStream(connect(socket, tag), true, StandardCharsets.UTF_8);
    }

    static Syslog connect(Path socket, String tag) throws NativeException {
        UnixSocket s = UnixSocket.connectDatagram(socket);
        try {
            Fd.setNonBlocking(s.fd());
        } catch (NativeException e) {
            s.close();
            throw e;
        }
        return new Syslog(s, tag);
    }

    @Override
    public synchronized void write(int b) {
        if (b == '\n') {
            sendLine();
        } else {
            line.write(b);
            if (line.size() >= MAX_LINE) {
                sendLine();
            }
        }
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) {
        for (int i = off; i < off + len; i++) {
            write(b[i]);
        }
    }

    /** Lines syslog did not take (its queue full, or gone). */
    public synchronized long dropped() {
        return dropped;
    }

    private void sendLine() {
        String text = line.toString(StandardCharsets.UTF_8);
        line.reset();
        if (text.isBlank()) {
            return;
        }
        int s = severityOf(text);
        if (s >= 0) {
            severity = s;
        } else if (!isContinuation(text)) {
            severity = 3; // not a log line: an uncaught exception, an error printed before logging began
        }
        byte[] message = ("<" + (FACILITY_DAEMON * 8 + severity) + ">" + prefix + text).getBytes(StandardCharsets.UTF_8);
        int length = Math.min(message.length, MAX_LINE + 256);
        Native.copyFromArray(message, 0, buffer, length);
        try {
            socket.send(buffer, length, null, 0);
        } catch (NativeException e) {
            dropped++;
        }
    }

    /** A stack trace's later lines: indented, or its causes and suppressed exceptions. */
    static boolean isContinuation(String text) {
        return Character.isWhitespace(text.charAt(0)) || text.startsWith("Caused by:") || text.startsWith("Suppressed:");
    }

    /** The severity of an slf4j-simple line ({@code [thread] LEVEL logger - text}), or -1 (a continuation). */
    static int severityOf(String text) {
        int at = text.startsWith("[") ? text.indexOf("] ") + 2 : 0;
        if (at == 1) {
            return -1;
        }
        for (int i = 0; i < LEVELS.length; i++) {
            if (text.startsWith(LEVELS[i] + " ", at)) {
                return SEVERITIES[i];
            }
        }
        return -1;
    }
}
