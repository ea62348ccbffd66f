package io.vhostj.blk;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import io.vhostj.devmapper.PoolControl;
import io.vhostj.devmapper.PoolException;
import io.vhostj.devmapper.ThinPool;
import io.vhostj.devmapper.ThinVolume;
import io.vhostj.vhostuser.backend.BackendLauncher;
import io.vhostj.vhostuser.backend.BackendOptions;
import io.vhostj.vhostuser.backend.KeyValues;
import io.vhostj.vhostuser.backend.ServerGroup;
import io.vhostj.vhostuser.sys.NativeException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code vhostj blk}: a vhost-user-blk backend over a file or a block device. */
@Command(name = "vhostj blk", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"vhost-user-blk backend: serves a regular (sparse) file, a block device or a thin device to a VM.",
            "QEMU side: -chardev socket,id=c0,path=SOCK -device vhost-user-blk-pci,chardev=c0"})
public final class BlkMain implements Callable<Integer> {
    @Mixin
    BackendOptions backend;

    @Option(names = {"--path", "--blk-file"}, paramLabel = "FILE",
            description = "The disk: a regular file or a block device.")
    Path path;

    @Option(names = "--thin", paramLabel = "POOL_DIR:ID",
            description = "The disk: thin device ID of the userspace pool in POOL_DIR ('vhostj devmapper'). "
                    + "The pool is held by this process while it serves; 'vhostj devmapper' commands for it are "
                    + "sent here (POOL_DIR/control.sock) and run against the open pool.")
    String thin;

    @Option(names = "--export", paramLabel = "SPEC",
            description = {"socket=PATH,path=FILE|thin=POOL_DIR:ID[,read-only][,serial=TEXT]: one disk on its own "
                    + "vhost-user socket; repeat it to serve several VMs from this process (instead of --socket-path, "
                    + "--path and --thin). Thin devices of one pool share it (a pool is held by one process), and "
                    + "'vhostj devmapper' commands for the pool come here. The other options apply to every export."})
    List<String> exports = new ArrayList<>();

    @Option(names = "--pool", paramLabel = "POOL_DIR",
            description = "Hold this thin pool and serve its devices as 'vhostj devmapper export POOL_DIR ID SOCKET' "
                    + "asks (and stop with 'unexport'), besides any --export; repeatable.")
    List<Path> heldPools = new ArrayList<>();

    /** One disk this process serves, from --export. */
    record Export(Path socket, Path path, Path pool, int thinId, boolean readOnly, String serial) {
        String what() {
            return pool != null ? "thin device " + pool + ":" + thinId : path.toString();
        }
    }

    @Option(names = "--read-only", description = "Export read-only (VIRTIO_BLK_F_RO); writes fail.")
    boolean readOnly;

    @Option(names = "--serial", defaultValue = "vhostj", paramLabel = "TEXT",
            description = "Serial number the guest reads with GET_ID (up to 20 bytes). Default: ${DEFAULT-VALUE}.")
    String serial;

    @Option(names = "--num-queues", defaultValue = "1", paramLabel = "N",
            description = "Request queues offered (VIRTIO_BLK_F_MQ). Default: ${DEFAULT-VALUE}.")
    int numQueues;

    @Option(names = "--queue-size", defaultValue = "1024", paramLabel = "N",
            description = "Largest ring the guest may use, a power of two <= 32768. Default: ${DEFAULT-VALUE}.")
    int queueSize;

    @Option(names = "--block-size", defaultValue = "512", paramLabel = "BYTES",
            description = "Logical block size the guest sees: 512 or 4096. Default: ${DEFAULT-VALUE}.")
    int blockSize;

    @Option(names = "--direct",
            description = "Open the disk with O_DIRECT (guest buffers that are not aligned go through the page cache).")
    boolean direct;

    @Option(names = "--aio", defaultValue = "io_uring", paramLabel = "MODE",
            description = "I/O engine: io_uring (up to " + BlkDevice.RING_ENTRIES + " requests in flight per queue) or "
                    + "sync (one at a time, inline on the queue's thread). Default: ${DEFAULT-VALUE}; "
                    + "falls back to sync where io_uring is not permitted.")
    String aio;

    @Option(names = "--volatile-cache",
            description = "Treat FLUSH as a no-op: only for scratch disks whose contents may be lost.")
    boolean volatileCache;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (backend.printCapabilities) {
            System.out.println("{\"type\": \"block\", \"features\": [\"read-only\", \"blk-file\"]}");
            return 0;
        }
        Aio engine;
        List<Export> all;
        try {
            backend.applyLogLevel();
            all = exports();
            if (!all.isEmpty() || !heldPools.isEmpty()) {
                checkShared();
                return serveExports(all, Aio.parse(aio));
            }
            backend.validate();
            if ((path == null) == (thin == null)) {
                throw new IllegalArgumentException("give the disk as one of --path FILE (or --blk-file) or --thin POOL_DIR:ID");
            }
            if (thin != null) {
                int colon = thin.lastIndexOf(':');
                if (colon <= 0 || !thin.substring(colon + 1).matches("[0-9]{1,8}")) {
                    throw new IllegalArgumentException("--thin takes POOL_DIR:ID, e.g. /var/lib/pool:1, not " + thin);
                }
            } else if (!Files.exists(path)) {
                throw new IllegalArgumentException("no such file: " + path);
            }
            checkShared();
            engine = Aio.parse(aio);
        } catch (IllegalArgumentException e) {
            System.err.println("vhostj blk: " + e.getMessage());
            return 2;
        }
        BackingStore store;
        String what = thin != null ? "thin device " + thin : path.toString();
        try {
            store = thin != null ? openThin() : FileBackingStore.open(path, readOnly, direct);
        } catch (IOException e) {
            System.err.println("vhostj blk: cannot open " + what + ": " + e.getMessage());
            return 1;
        } catch (PoolException e) {
            System.err.println("vhostj blk: " + e.getMessage());
            return 1;
        }
        try (store) {
            BlkDevice device;
            try {
                device = new BlkDevice(store, numQueues, queueSize, blockSize, serial, volatileCache, engine);
            } catch (IllegalArgumentException e) {
                System.err.println("vhostj blk: " + e.getMessage());
                return 2;
            }
            org.slf4j.LoggerFactory.getLogger(BlkMain.class).info("blk: {} ({} bytes{}{}), {} queue(s) of up to {}, aio={}",
                    what, store.size(), readOnly ? ", read-only" : "", direct ? ", O_DIRECT" : "", numQueues, queueSize,
                    engine);
            return BackendLauncher.run(backend, device);
        }
    }

    /** The disks of --export, checked; empty without it. */
    private List<Export> exports() {
        List<Export> all = new ArrayList<>();
        if (exports.isEmpty() && heldPools.isEmpty()) {
            return all;
        }
        if (exports.isEmpty()) {
            if (backend.socketPath != null || backend.fd != null || path != null || thin != null) {
                throw new IllegalArgumentException("--pool replaces --socket-path, --fd, --path and --thin");
            }
            return all;
        }
        if (backend.socketPath != null || backend.fd != null || path != null || thin != null) {
            throw new IllegalArgumentException("--export and --pool replace --socket-path, --fd, --path and --thin");
        }
        if (backend.pollMicros < 0) {
            throw new IllegalArgumentException("--poll-us must be 0 or more");
        }
        java.util.Set<Path> sockets = new java.util.HashSet<>();
        java.util.Set<String> disks = new java.util.HashSet<>();
        for (String spec : exports) {
            java.util.Map<String, String> kv = KeyValues.parse("--export", spec,
                    java.util.Set.of("socket", "path", "thin", "serial"), java.util.Set.of("read-only"));
            if (!kv.containsKey("socket") || kv.containsKey("path") == kv.containsKey("thin")) {
                throw new IllegalArgumentException("--export " + spec + ": needs socket= and one of path= or thin=");
            }
            Path poolDir = null;
            int id = -1;
            Path file = null;
            if (kv.containsKey("thin")) {
                String t = kv.get("thin");
                int colon = t.lastIndexOf(':');
                if (colon <= 0 || !t.substring(colon + 1).matches("[0-9]{1,8}")) {
                    throw new IllegalArgumentException("--export " + spec + ": thin= takes POOL_DIR:ID");
                }
                poolDir = Path.of(t.substring(0, colon)).toAbsolutePath().normalize();
                id = Integer.parseInt(t.substring(colon + 1));
            } else {
                file = Path.of(kv.get("path"));
                if (!Files.exists(file)) {
                    throw new IllegalArgumentException("--export " + spec + ": no such file: " + file);
                }
            }
            Export e = new Export(Path.of(kv.get("socket")), file, poolDir, id, readOnly || kv.containsKey("read-only"),
                    kv.getOrDefault("serial", serial));
            if (!sockets.add(e.socket().toAbsolutePath().normalize())) {
                throw new IllegalArgumentException("--export: socket " + e.socket() + " is given twice");
            }
            String disk;
            try {
                // one disk under two names would be two writers who do not know of each other
                disk = e.pool() != null ? e.pool().toRealPath() + ":" + e.thinId() : e.path().toRealPath().toString();
            } catch (IOException x) {
                throw new IllegalArgumentException("--export " + spec + ": " + x.getMessage());
            }
            if (!disks.add(disk)) {
                throw new IllegalArgumentException("--export: " + e.what() + " is given twice");
            }
            if (e.pool() != null && direct) {
                throw new IllegalArgumentException("--direct does not apply to thin= exports (the pool's data goes "
                        + "through the page cache)");
            }
            all.add(e);
        }
        return all;
    }

    /** Checks the options every disk shares. */
    private void checkShared() {
        if (numQueues < 1 || numQueues > 256) {
            throw new IllegalArgumentException("--num-queues must be 1..256");
        }
        if (queueSize < 2 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
            throw new IllegalArgumentException("--queue-size must be a power of two, 2..32768");
        }
        if (blockSize != 512 && blockSize != 4096) {
            throw new IllegalArgumentException("--block-size must be 512 or 4096");
        }
    }

    /**
     * Opens every export's disk (each pool once) and every --pool, serves them, takes export and
     * unexport commands for the pools on their control sockets, closes everything at the end.
     */
    private int serveExports(List<Export> all, Aio engine) {
        java.util.Map<Path, ThinPool> pools = new java.util.LinkedHashMap<>();
        List<PoolControl> controls = new ArrayList<>();
        ServerGroup group = new ServerGroup(backend);
        try {
            java.util.Set<Path> dirs = new java.util.LinkedHashSet<>();
            heldPools.forEach(d -> dirs.add(d.toAbsolutePath().normalize()));
            all.stream().filter(e -> e.pool() != null).forEach(e -> dirs.add(e.pool()));
            for (Path dir : dirs) {
                try {
                    pools.put(dir, ThinPool.open(dir));
                } catch (IOException | PoolException ex) {
                    System.err.println("vhostj blk: cannot open the pool " + dir + ": " + ex.getMessage());
                    return 1;
                }
            }
            for (Export e : all) {
                try {
                    BackingStore store = e.pool() != null
                            ? new ThinBackingStore(pools.get(e.pool()).volume(e.thinId(), e.readOnly()))
                            : FileBackingStore.open(e.path(), e.readOnly(), direct);
                    serve(group, e.socket(), store, e.serial(), engine);
                    org.slf4j.LoggerFactory.getLogger(BlkMain.class).info("blk: {} ({} bytes{}) on {}", e.what(),
                            store.size(), e.readOnly() ? ", read-only" : "", e.socket());
                } catch (IOException | PoolException ex) {
                    System.err.println("vhostj blk: cannot serve " + e.what() + ": " + ex.getMessage());
                    return 1;
                }
            }
            for (ThinPool pool : pools.values()) {
                PoolControl control = PoolControl.serve(pool);
                controls.add(control);
                control.exporter(new io.vhostj.devmapper.Exporter() {
                    @Override
                    public String export(int id, Path socket, boolean ro) throws Exception {
                        BackingStore store = new ThinBackingStore(pool.volume(id, ro || readOnly));
                        try {
                            serve(group, socket, store, serial, engine);
                        } catch (NativeException | RuntimeException e) {
                            store.close();
                            throw e;
                        }
                        org.slf4j.LoggerFactory.getLogger(BlkMain.class).info("blk: thin device {}:{} ({} bytes{}) on {}",
                                pool.directory(), id, store.size(), ro ? ", read-only" : "", socket);
                        return "serving thin device " + id + " on " + socket;
                    }

                    @Override
                    public boolean unexport(Path socket) throws Exception {
                        return group.remove(socket);
                    }
                });
            }
            return group.awaitStop();
        } catch (IllegalArgumentException e) {
            System.err.println("vhostj blk: " + e.getMessage());
            return 2;
        } catch (IOException e) {
            System.err.println("vhostj blk: " + e.getMessage());
            return 1;
        } finally {
            group.stopAll();
            controls.forEach(PoolControl::close);
            for (ThinPool pool : pools.values()) {
                try {
                    pool.close();
                } catch (IOException e) {
                    System.err.println("vhostj blk: closing the pool " + pool.directory() + ": " + e.getMessage());
                }
            }
        }
    }

    /** Serves {@code store} on {@code socket} in {@code group}; the store is closed when it stops. */
    private void serve(ServerGroup group, Path socket, BackingStore store, String serialText, Aio engine)
            throws NativeException {
        BlkDevice device;
        try {
            device = new BlkDevice(store, numQueues, queueSize, blockSize, serialText, volatileCache, engine);
            group.add(socket, device, store::close);
        } catch (NativeException | RuntimeException e) {
            store.close();
            throw e;
        }
    }

    private BackingStore openThin() throws PoolException, IOException {
        int colon = thin.lastIndexOf(':');
        if (direct) {
            throw new PoolException("--direct does not apply to --thin (the pool's data goes through the page cache)");
        }
        ThinVolume volume = ThinVolume.open(Path.of(thin.substring(0, colon)), Integer.parseInt(thin.substring(colon + 1)),
                readOnly);
        try {
            // while this process holds the pool, 'vhostj devmapper' commands for it come here
            return new ThinBackingStore(volume, PoolControl.serve(volume.pool()));
        } catch (IOException | RuntimeException e) {
            volume.close();
            throw e;
        }
    }

    public static void main(String[] args) {
        io.vhostj.vhostuser.backend.CommandMain.run("vhostj blk", new BlkMain(), args);
    }
}
