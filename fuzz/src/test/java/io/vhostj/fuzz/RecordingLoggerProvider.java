package io.vhostj.fuzz;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentLinkedQueue;

import org.slf4j.ILoggerFactory;
import org.slf4j.IMarkerFactory;
import org.slf4j.Marker;
import org.slf4j.event.Level;
import org.slf4j.helpers.BasicMarkerFactory;
import org.slf4j.helpers.LegacyAbstractLogger;
import org.slf4j.helpers.MessageFormatter;
import org.slf4j.helpers.NOPMDCAdapter;
import org.slf4j.spi.MDCAdapter;
import org.slf4j.spi.SLF4JServiceProvider;

/**
 * The SLF4J binding of the fuzz module. The backend logs every connection at INFO and every
 * protocol violation at ERROR; at thousands of connections a second that would drown the build
 * log and cost most of the time, so nothing is printed unless {@code -Dvhostj.fuzz.log=LEVEL}
 * asks for it.
 *
 * <p>What it does keep is every ERROR that carries an exception: {@code VhostUserBackend.serve()}
 * catches a {@link RuntimeException} from a handler and logs it as an internal error, and a queue
 * worker's failure is logged by its runner. Neither reaches the caller, so the targets ask
 * {@link #takeFailures()} after each input and turn what they find into a finding.
 */
public final class RecordingLoggerProvider implements SLF4JServiceProvider {
    /** An ERROR logged with an exception attached. */
    public record Failure(String logger, String message, Throwable cause) {
    }

    private static final ConcurrentLinkedQueue<Failure> FAILURES = new ConcurrentLinkedQueue<>();
    private static final Level PRINT_LEVEL = printLevel();

    private final IMarkerFactory markers = new BasicMarkerFactory();
    private final MDCAdapter mdc = new NOPMDCAdapter();
    private final ILoggerFactory loggers = RecordingLogger::new;

    /** Drains the failures logged since the last call. */
    public static List<Failure> takeFailures() {
        List<Failure> out = new ArrayList<>();
        for (Failure f; (f = FAILURES.poll()) != null;) {
            out.add(f);
        }
        return out;
    }

    @Override
    public ILoggerFactory getLoggerFactory() {
        return loggers;
    }

    @Override
    public IMarkerFactory getMarkerFactory() {
        return markers;
    }

    @Override
    public MDCAdapter getMDCAdapter() {
        return mdc;
    }

    @Override
    public String getRequestedApiVersion() {
        return "2.0.99";
    }

    @Override
    public void initialize() {
    }

    private static Level printLevel() {
        String p = System.getProperty("vhostj.fuzz.log");
        return p == null || p.isEmpty() ? null : Level.valueOf(p.toUpperCase(Locale.ROOT));
    }

    private static boolean prints(Level level) {
        return PRINT_LEVEL != null && level.toInt() >= PRINT_LEVEL.toInt();
    }

    private static final class RecordingLogger extends LegacyAbstractLogger {
        private static final long serialVersionUID = 1L;

        RecordingLogger(String name) {
            this.name = name;
        }

        @Override
        public boolean isTraceEnabled() {
            return prints(Level.TRACE);
        }

        @Override
        public boolean isDebugEnabled() {
            return prints(Level.DEBUG);
        }

        @Override
        public boolean isInfoEnabled() {
            return prints(Level.INFO);
        }

        @Override
        public boolean isWarnEnabled() {
            return prints(Level.WARN);
        }

        @Override
        public boolean isErrorEnabled() {
            return true; // an ERROR may carry a failure the fuzzer must see
        }

        @Override
        protected String getFullyQualifiedCallerName() {
            return null;
        }

        @Override
        protected void handleNormalizedLoggingCall(Level level, Marker marker, String pattern, Object[] args,
                Throwable thrown) {
            String message = MessageFormatter.basicArrayFormat(pattern, args);
            if (level == Level.ERROR && thrown != null) {
                FAILURES.add(new Failure(name, message, thrown));
            }
            if (prints(level)) {
                System.err.println("[" + Thread.currentThread().getName() + "] " + level + " " + name + " - "
                        + message);
                if (thrown != null) {
                    thrown.printStackTrace();
                }
            }
        }
    }
}
