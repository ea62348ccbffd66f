package io.vhostj.launcher;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.vhostj.bench.BenchMain;
import io.vhostj.blk.BlkMain;
import io.vhostj.devmapper.DevmapperMain;
import io.vhostj.fs.FsMain;
import io.vhostj.vhostuser.sys.EventFd;
import io.vhostj.vhostuser.sys.IoUring;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;
import io.vhostj.vhostuser.sys.UnixSocket;
import io.vhostj.vsock.VsockMain;
import picocli.CommandLine;

/**
 * What {@code bin/vhostj} runs once after a build under {@code -XX:ArchiveClassesAtExit}: it
 * loads the classes a backend loads on its way to its socket (the command lines' models, the
 * native bindings, netty's epoll loop, a Unix socket, an eventfd, an io_uring), so that the
 * class-data archive the JVM writes at exit spares every later start their parsing and
 * verification. Serves nothing and touches nothing outside a temporary directory.
 */
public final class ClassTraining {
    private ClassTraining() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("vhostj-class-training");
        try {
            String sock = dir.resolve("s.sock").toString();
            commandLine(new FsMain(), "--socket-path", sock, "--shared-dir", dir.toString(), "-o", "cache=auto");
            commandLine(new BlkMain(), "--socket-path", sock, "--path", dir.toString());
            commandLine(new VsockMain(), "--socket-path", sock, "--guest-cid", "3", "--uds-path", sock);
            commandLine(new DevmapperMain());
            commandLine(new BenchMain());
            Native.LIBC.getpid();
            EventFd.create().close();
            UnixSocket.listen(dir.resolve("l.sock"), 1).close();
            try {
                IoUring.create(8).close();
            } catch (NativeException e) {
                // no io_uring here (old kernel, seccomp): the backends do without it too
            }
            MultiThreadIoEventLoopGroup loop = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
            loop.shutdownGracefully(0, 0, TimeUnit.SECONDS).await(5, TimeUnit.SECONDS);
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(dir);
        }
    }

    /** Builds a command's model, parses a typical command line and renders its help, into nothing. */
    private static void commandLine(Object command, String... args) {
        CommandLine cl = new CommandLine(command);
        cl.parseArgs(args);
        cl.usage(new PrintWriter(new StringWriter()));
    }
}
