package io.vhostj.bench;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code vhostj bench}: drives a vhost-user backend's socket through the project's frontend. */
@Command(name = "vhostj bench", mixinStandardHelpOptions = true,
        description = "Benchmark a vhost-user backend through vhostj's own frontend (no guest, no QEMU).",
        subcommands = {BlkBench.class, FsBench.class, VsockBench.class, ThinBench.class})
public final class BenchMain implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "name a device to benchmark: blk or fs");
    }

    public static void main(String[] args) {
        io.vhostj.vhostuser.backend.CommandMain.run("vhostj bench", new BenchMain(), args);
    }
}
