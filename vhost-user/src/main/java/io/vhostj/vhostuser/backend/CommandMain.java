package io.vhostj.vhostuser.backend;

import io.vhostj.vhostuser.sys.Native;
import picocli.CommandLine;

/**
 * The {@code main} of every vhostj command: a bad option is one line on stderr and exit 2, never
 * a stack trace. While picocli reads the command line, another thread binds the native calls
 * (jnr-ffi's set-up, about 0.15 s, that every command needs next): on a multi-core host the two
 * overlap, and a backend has its socket that much sooner. No logger here: slf4j-simple takes its
 * level from the first logger made, which must come after the options are read.
 */
public final class CommandMain {
    private CommandMain() {
    }

    /** Runs {@code command} (a picocli command object) on {@code args} as {@code name}; exits the JVM. */
    public static void run(String name, Object command, String[] args) {
        System.exit(commandLine(name, command).execute(args));
    }

    /** {@code command}'s command line with vhostj's handling of bad options, and the native bindings loading meanwhile. */
    public static CommandLine commandLine(String name, Object command) {
        Thread bind = new Thread(CommandMain::bindNativeCalls, "vhostj-native-init");
        bind.setDaemon(true);
        bind.start();
        CommandLine cl = new CommandLine(command);
        setVersion(cl, "vhostj " + version());
        cl.setParameterExceptionHandler((e, a) -> {
            e.getCommandLine().getErr().println(name + ": " + e.getMessage() + " (try --help)");
            e.getCommandLine().getErr().flush();
            return 2;
        });
        return cl;
    }

    /** What --version prints, for the command and every subcommand. */
    private static void setVersion(CommandLine cl, String version) {
        cl.getCommandSpec().version(version);
        for (CommandLine sub : cl.getSubcommands().values()) {
            setVersion(sub, version);
        }
    }

    /** vhostj's version, as the build wrote it into the jar (Maven's pom.properties). */
    static String version() {
        try (java.io.InputStream in = CommandMain.class.getResourceAsStream(
                "/META-INF/maven/io.vhostj/vhost-user/pom.properties")) {
            if (in != null) {
                java.util.Properties p = new java.util.Properties();
                p.load(in);
                return p.getProperty("version", "(unknown version)");
            }
        } catch (java.io.IOException e) {
            // fall through
        }
        return "(unknown version: not run from the built jars)";
    }

    private static void bindNativeCalls() {
        try {
            Native.LIBC.getpid(); // initializes Native: loads libc's bindings
        } catch (Throwable e) {
            // the command's own first native call fails too, but on Java 17 without this cause
            System.err.println("vhostj: the native calls cannot be bound: " + (e.getCause() != null ? e.getCause() : e));
        }
    }
}
