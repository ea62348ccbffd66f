package io.vhostj.devmapper;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

import io.vhostj.vhostuser.backend.ByteSize;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code vhostj devmapper}: a userspace thin pool operated the way containerd's devmapper
 * snapshotter drives dm-thin ({@code create_thin}, {@code create_snap}, {@code delete}), plus
 * the pool's own create, resize, list, status and check.
 */
@Command(name = "vhostj devmapper", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Userspace thin pool for container root filesystems: thin devices and O(1) snapshots",
            "in a data file, served to a VM with 'vhostj blk --thin POOL_DIR:ID'.",
            "Containerd's names work too: create_thin, create_snap."},
        subcommands = {DevmapperMain.CreatePool.class, DevmapperMain.CreateThin.class, DevmapperMain.CreateSnap.class,
            DevmapperMain.Delete.class, DevmapperMain.Resize.class, DevmapperMain.Import.class,
            DevmapperMain.Export.class, DevmapperMain.Unexport.class, DevmapperMain.ListDevices.class,
            DevmapperMain.Status.class, DevmapperMain.Check.class})
public final class DevmapperMain implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return 2;
    }

    /** A pool for one command: closed afterwards only if the command opened it. */
    record PoolRef(ThinPool pool, boolean owned) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            if (owned) {
                pool.close();
            }
        }
    }

    /** The pool is held by a process that takes commands on its control socket. */
    static final class Served extends RuntimeException {
        Served(String message) {
            super(message, null, false, false);
        }
    }

    /** What every subcommand shares: the pool's directory and --json. */
    abstract static class PoolCommand implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "POOL_DIR", description = "The pool's directory.")
        Path pool;

        @Option(names = "--json", description = "Print JSON for programs instead of text for people.")
        boolean json;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public final Integer call() {
            try {
                return run();
            } catch (Served e) {
                // a 'vhostj blk' holds the pool: it runs the command for us
                try {
                    return PoolControl.forward(pool, forwardedArgs(spec.root().commandLine().getParseResult()
                            .originalArgs()), out(), err());
                } catch (IOException io) {
                    err().println("vhostj devmapper: " + e.getMessage() + "; its control socket did not answer: "
                            + io.getMessage());
                    return 1;
                }
            } catch (IllegalArgumentException e) {
                err().println("vhostj devmapper: " + e.getMessage());
                return 2;
            } catch (PoolException e) {
                err().println("vhostj devmapper: " + e.getMessage());
                return 1;
            } catch (IOException e) {
                err().println("vhostj devmapper: I/O error on " + pool + ": " + e.getMessage());
                return 1;
            } finally {
                out().flush();
                err().flush();
            }
        }

        abstract int run() throws PoolException, IOException;

        /** The command line as the pool's holder must see it: paths made absolute (it has another cwd). */
        java.util.List<String> forwardedArgs(java.util.List<String> args) {
            return args.stream().map(a -> absolute(a, pool)).toList();
        }

        static String absolute(String arg, Path path) {
            try {
                return Path.of(arg).normalize().equals(path.normalize()) ? path.toAbsolutePath().normalize().toString() : arg;
            } catch (java.nio.file.InvalidPathException e) {
                return arg;
            }
        }

        java.io.PrintWriter out() {
            return spec.commandLine().getOut();
        }

        java.io.PrintWriter err() {
            return spec.commandLine().getErr();
        }

        /**
         * The pool: the one this process serves (a command that came through the control
         * socket), else opened here. If another process holds it and listens on its control
         * socket, {@link Served} sends the command there.
         */
        PoolRef open() throws PoolException, IOException {
            ThinPool served = PoolControl.served(pool);
            if (served != null) {
                return new PoolRef(served, false);
            }
            if (PoolControl.inControlThread()) {
                throw new PoolException("this control socket serves only its own pool, not " + pool);
            }
            try {
                return new PoolRef(ThinPool.open(pool), true);
            } catch (PoolException e) {
                if (e.getMessage().contains(" is in use") && PoolControl.listening(pool)) {
                    throw new Served(e.getMessage());
                }
                throw e;
            }
        }

        void printDevice(String verb, ThinDevice d) {
            if (json) {
                out().println(deviceJson(d));
            } else {
                out().printf(Locale.ROOT, "%s device %d: %s%s%n", verb, d.id(), human(d.size()),
                        d.origin() >= 0 ? ", snapshot of " + d.origin() : "");
            }
        }
    }

    @Command(name = "create-pool", mixinStandardHelpOptions = true,
            description = "Create a pool: POOL_DIR/metadata, POOL_DIR/metadata.log and the data (a sparse POOL_DIR/data "
                    + "unless --data names a file or block device).")
    static final class CreatePool extends PoolCommand {
        @Option(names = "--size", paramLabel = "SIZE",
                description = "Data space, e.g. 20G (default with --data: the whole file or device).")
        String size;

        @Option(names = "--block-size", defaultValue = "64k", paramLabel = "SIZE",
                description = "Data block size, a power of two from 4k to 1G. Default: ${DEFAULT-VALUE} (as dm-thin).")
        String blockSize;

        @Option(names = "--data", paramLabel = "PATH", description = "An existing file or block device to hold the data.")
        Path data;

        @Override
        int run() throws PoolException, IOException {
            long bytes = size == null ? 0 : ByteSize.parse(size, "--size");
            if (bytes == 0 && data == null) {
                throw new IllegalArgumentException("--size SIZE is required without --data");
            }
            long bs = ByteSize.parse(blockSize, "--block-size");
            if (bs > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("--block-size is at most 1G");
            }
            try (ThinPool p = ThinPool.create(pool, bytes, (int) bs, data)) {
                PoolStatus st = p.status();
                if (json) {
                    out().println(statusJson(st));
                } else {
                    out().printf(Locale.ROOT, "created pool %s: %d blocks of %s (%s)%n", pool, st.dataBlocks(),
                            human(st.blockSize()), human(st.dataBlocks() * st.blockSize()));
                }
            }
            return 0;
        }
    }

    @Command(name = "create-thin", aliases = "create_thin", mixinStandardHelpOptions = true,
            description = "Create thin device ID of SIZE bytes; it takes data blocks only as they are written.")
    static final class CreateThin extends PoolCommand {
        @Parameters(index = "1", paramLabel = "ID", description = "Device id, 0..16777215.")
        int id;

        @Parameters(index = "2", paramLabel = "SIZE", description = "Virtual size, e.g. 10G.")
        String size;

        @Override
        int run() throws PoolException, IOException {
            long bytes = ByteSize.parse(size, "SIZE");
            try (PoolRef ref = open()) {
                ThinPool p = ref.pool();
                printDevice("created", p.createThin(id, bytes));
            }
            return 0;
        }
    }

    @Command(name = "create-snap", aliases = "create_snap", mixinStandardHelpOptions = true,
            description = "Create device ID as a snapshot of ORIGIN (which must not be in use): constant time, "
                    + "the two share every block until either writes it.")
    static final class CreateSnap extends PoolCommand {
        @Parameters(index = "1", paramLabel = "ID")
        int id;

        @Parameters(index = "2", paramLabel = "ORIGIN")
        int origin;

        @Override
        int run() throws PoolException, IOException {
            try (PoolRef ref = open()) {
                ThinPool p = ref.pool();
                printDevice("created", p.createSnap(id, origin));
            }
            return 0;
        }
    }

    @Command(name = "delete", mixinStandardHelpOptions = true,
            description = "Delete device ID; blocks no other device shares go back to the pool.")
    static final class Delete extends PoolCommand {
        @Parameters(index = "1", paramLabel = "ID")
        int id;

        @Override
        int run() throws PoolException, IOException {
            try (PoolRef ref = open()) {
                ThinPool p = ref.pool();
                p.delete(id);
                if (json) {
                    out().println("{\"deleted\": " + id + "}");
                } else {
                    out().println("deleted device " + id);
                }
            }
            return 0;
        }
    }

    @Command(name = "resize", mixinStandardHelpOptions = true,
            description = "Set device ID's size; shrinking unmaps the blocks past the new end.")
    static final class Resize extends PoolCommand {
        @Parameters(index = "1", paramLabel = "ID")
        int id;

        @Parameters(index = "2", paramLabel = "SIZE")
        String size;

        @Override
        int run() throws PoolException, IOException {
            long bytes = ByteSize.parse(size, "SIZE");
            try (PoolRef ref = open()) {
                ThinPool p = ref.pool();
                p.resize(id, bytes);
                for (ThinDevice d : p.list()) {
                    if (d.id() == id) {
                        printDevice("resized", d);
                    }
                }
            }
            return 0;
        }
    }

    @Command(name = "import", mixinStandardHelpOptions = true,
            description = "Copy a raw image (e.g. a root filesystem) onto device ID from its start; blocks of zeros "
                    + "are left unmapped, so the device stays thin.")
    static final class Import extends PoolCommand {
        @Parameters(index = "1", paramLabel = "ID")
        int id;

        @Parameters(index = "2", paramLabel = "IMAGE", description = "A raw image, no larger than the device.")
        Path image;

        @Override
        java.util.List<String> forwardedArgs(java.util.List<String> args) {
            return super.forwardedArgs(args).stream().map(a -> absolute(a, image)).toList();
        }

        @Override
        int run() throws PoolException, IOException {
            if (!java.nio.file.Files.isReadable(image)) {
                throw new IllegalArgumentException("cannot read the image " + image);
            }
            try (PoolRef ref = open(); ThinVolume v = ref.pool().volume(id, false);
                 io.vhostj.vhostuser.sys.Fd in = io.vhostj.vhostuser.sys.FileIo.open(image,
                         io.vhostj.vhostuser.sys.FileIo.O_RDONLY)) {
                long size = io.vhostj.vhostuser.sys.FileIo.size(in);
                if (size > v.size()) {
                    throw new PoolException(image + " (" + human(size) + ") is larger than device " + id + " ("
                            + human(v.size()) + ")");
                }
                long copied = v.importFrom(in, size);
                v.flush();
                if (json) {
                    out().printf(Locale.ROOT, "{\"device\": %d, \"bytes\": %d, \"written_bytes\": %d}%n", id, size,
                            copied);
                } else {
                    out().printf(Locale.ROOT, "imported %s into device %d (%s written, the rest zeros left unmapped)%n",
                            human(size), id, human(copied));
                }
            }
            return 0;
        }
    }

    @Command(name = "export", mixinStandardHelpOptions = true,
            description = "Serve device ID on the vhost-user socket SOCKET from the 'vhostj blk --pool POOL_DIR' that "
                    + "holds the pool, while its other disks go on (then: QEMU -chardev socket,path=SOCKET ... "
                    + "-device vhost-user-blk-pci).")
    static final class Export extends PoolCommand {
        @Parameters(index = "1", paramLabel = "ID")
        int id;

        @Parameters(index = "2", paramLabel = "SOCKET")
        Path socket;

        @Option(names = "--read-only", description = "The VM may not write.")
        boolean readOnly;

        @Override
        java.util.List<String> forwardedArgs(java.util.List<String> args) {
            return super.forwardedArgs(args).stream().map(a -> absolute(a, socket)).toList();
        }

        @Override
        int run() throws PoolException, IOException {
            try (PoolRef ref = open()) {
                Exporter exporter = PoolControl.exporterOf(pool);
                if (exporter == null) {
                    throw new PoolException("no server holds the pool in " + pool + ": start 'vhostj blk --pool " + pool
                            + "' first");
                }
                String what;
                try {
                    what = exporter.export(id, socket, readOnly);
                } catch (PoolException | IOException | IllegalArgumentException | IllegalStateException e) {
                    throw e instanceof PoolException p ? p : new PoolException(e.getMessage());
                } catch (Exception e) {
                    throw new IOException(e.getMessage(), e);
                }
                out().println(json ? "{\"exported\": " + id + ", \"socket\": " + quote(socket.toString()) + "}" : what);
            }
            return 0;
        }
    }

    @Command(name = "unexport", mixinStandardHelpOptions = true,
            description = "Stop serving SOCKET (its VM loses the disk; the device and its data stay in the pool).")
    static final class Unexport extends PoolCommand {
        @Parameters(index = "1", paramLabel = "SOCKET")
        Path socket;

        @Override
        java.util.List<String> forwardedArgs(java.util.List<String> args) {
            return super.forwardedArgs(args).stream().map(a -> absolute(a, socket)).toList();
        }

        @Override
        int run() throws PoolException, IOException {
            try (PoolRef ref = open()) {
                Exporter exporter = PoolControl.exporterOf(pool);
                if (exporter == null) {
                    throw new PoolException("no server holds the pool in " + pool);
                }
                boolean was;
                try {
                    was = exporter.unexport(socket);
                } catch (Exception e) {
                    throw new IOException(e.getMessage(), e);
                }
                if (!was) {
                    throw new PoolException("nothing is served on " + socket);
                }
                out().println(json ? "{\"unexported\": " + quote(socket.toString()) + "}" : "stopped serving " + socket);
            }
            return 0;
        }
    }

    @Command(name = "list", mixinStandardHelpOptions = true, description = "List the pool's devices.")
    static final class ListDevices extends PoolCommand {
        @Override
        int run() throws PoolException, IOException {
            try (PoolRef ref = open()) {
                ThinPool p = ref.pool();
                List<ThinDevice> all = p.list();
                if (json) {
                    StringBuilder b = new StringBuilder("[");
                    for (int i = 0; i < all.size(); i++) {
                        b.append(i == 0 ? "" : ", ").append(deviceJson(all.get(i)));
                    }
                    out().println(b.append(']'));
                } else {
                    out().printf(Locale.ROOT, "%8s  %10s  %10s  %6s  %s%n", "ID", "SIZE", "MAPPED", "ORIGIN", "CREATED");
                    for (ThinDevice d : all) {
                        out().printf(Locale.ROOT, "%8d  %10s  %10s  %6s  %s%n", d.id(), human(d.size()),
                                human(d.mappedBlocks() * p.blockSize()), d.origin() < 0 ? "-" : Integer.toString(d.origin()),
                                Instant.ofEpochMilli(d.created()));
                    }
                }
            }
            return 0;
        }
    }

    @Command(name = "status", mixinStandardHelpOptions = true,
            description = "Used and free data blocks, blocks shared by snapshots, and per device mapped and exclusive blocks.")
    static final class Status extends PoolCommand {
        @Override
        int run() throws PoolException, IOException {
            try (PoolRef ref = open()) {
                ThinPool p = ref.pool();
                PoolStatus st = p.status();
                if (json) {
                    out().println(statusJson(st));
                    return 0;
                }
                long bs = st.blockSize();
                out().printf(Locale.ROOT, "pool %s: block size %s, %d blocks (%s)%n", pool, human(bs), st.dataBlocks(),
                        human(st.dataBlocks() * bs));
                out().printf(Locale.ROOT, "  used   %10d blocks (%s, %.1f%%)%n", st.usedBlocks(),
                        human(st.usedBlocks() * bs), 100.0 * st.usedBlocks() / st.dataBlocks());
                out().printf(Locale.ROOT, "  free   %10d blocks (%s)%n", st.freeBlocks(), human(st.freeBlocks() * bs));
                out().printf(Locale.ROOT, "  shared %10d blocks (mapped by more than one device)%n", st.sharedBlocks());
                out().printf(Locale.ROOT, "  metadata %s%n", human(st.metadataBytes()));
                out().printf(Locale.ROOT, "%8s  %10s  %10s  %10s  %10s  %6s%n", "ID", "SIZE", "MAPPED", "EXCLUSIVE",
                        "SHARED", "ORIGIN");
                for (ThinDevice d : st.devices()) {
                    out().printf(Locale.ROOT, "%8d  %10s  %10d  %10d  %10d  %6s%n", d.id(), human(d.size()),
                            d.mappedBlocks(), d.exclusiveBlocks(), d.mappedBlocks() - d.exclusiveBlocks(),
                            d.origin() < 0 ? "-" : Integer.toString(d.origin()));
                }
            }
            return 0;
        }
    }

    @Command(name = "check", mixinStandardHelpOptions = true,
            description = "Verify all metadata: the image's checksum and free-space map, the log, every reference count "
                    + "against the maps. Exit 0 if sound, 1 if not.")
    static final class Check extends PoolCommand {
        @Override
        int run() throws PoolException, IOException {
            List<String> problems;
            try (PoolRef ref = open()) {
                ThinPool p = ref.pool();
                problems = p.check();
            } catch (PoolException e) {
                // opening verifies the image and the log; a pool that does not open is what check reports
                problems = List.of(e.getMessage());
            }
            if (json) {
                StringBuilder b = new StringBuilder("{\"ok\": ").append(problems.isEmpty()).append(", \"problems\": [");
                for (int i = 0; i < problems.size(); i++) {
                    b.append(i == 0 ? "" : ", ").append(quote(problems.get(i)));
                }
                out().println(b.append("]}"));
            } else if (problems.isEmpty()) {
                out().println("pool " + pool + ": metadata consistent");
            } else {
                out().println("pool " + pool + ": " + problems.size() + " problem(s)");
                problems.forEach(pr -> out().println("  " + pr));
            }
            return problems.isEmpty() ? 0 : 1;
        }
    }

    static String deviceJson(ThinDevice d) {
        return String.format(Locale.ROOT,
                "{\"id\": %d, \"size\": %d, \"origin\": %s, \"created\": %s, \"mapped_blocks\": %d%s}", d.id(), d.size(),
                d.origin() < 0 ? "null" : Integer.toString(d.origin()), quote(Instant.ofEpochMilli(d.created()).toString()),
                d.mappedBlocks(), d.exclusiveBlocks() < 0 ? "" : ", \"exclusive_blocks\": " + d.exclusiveBlocks());
    }

    static String statusJson(PoolStatus st) {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT,
                "{\"block_size\": %d, \"data_blocks\": %d, \"used_blocks\": %d, \"free_blocks\": %d, \"shared_blocks\": %d, "
                        + "\"metadata_bytes\": %d, \"devices\": [",
                st.blockSize(), st.dataBlocks(), st.usedBlocks(), st.freeBlocks(), st.sharedBlocks(), st.metadataBytes()));
        for (int i = 0; i < st.devices().size(); i++) {
            b.append(i == 0 ? "" : ", ").append(deviceJson(st.devices().get(i)));
        }
        return b.append("]}").toString();
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }

    static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format(Locale.ROOT, v == Math.floor(v) ? "%.0f %s" : "%.1f %s", v, units[u]);
    }

    /** The command line, ready to execute (also what the control socket runs commands with). */
    static CommandLine commandLine() {
        CommandLine cl = io.vhostj.vhostuser.backend.CommandMain.commandLine("vhostj devmapper", new DevmapperMain());
        cl.setExpandAtFiles(false); // '@file' is a file of arguments to picocli; here it is a name
        return cl;
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }
}
