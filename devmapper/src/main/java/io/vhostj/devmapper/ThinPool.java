package io.vhostj.devmapper;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.Fd;
import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.sys.NativeException;

/**
 * A userspace thin pool with dm-thin's model: a data file cut into fixed-size blocks, thin
 * devices that map their virtual blocks onto data blocks on first write, snapshots that share the
 * origin's blocks until either side writes them, and reference counts that free a block when the
 * last device lets go of it.
 *
 * <p>A pool is a directory: {@code metadata} (a checkpoint image: device table, block maps,
 * reference counts, free-space map; replaced atomically by rename), {@code metadata.log} (the
 * operations since that image, appended in checksummed batches and made durable on
 * {@link #commit}), {@code data} (or the data file or block device named at creation) and
 * {@code lock} (one process at a time). Opening replays the log onto the image; a torn last batch
 * is dropped, so after a crash at any instant the pool is what the last commit made it.
 *
 * <p>Blocks freed by a transaction become allocatable only after the next commit (the committed
 * state still maps them, and I/O already issued may still target them); a block that stopped
 * being shared is copied on write until a commit makes that durable. All methods are
 * thread-safe; data I/O to blocks a device owns alone runs outside the pool's lock.
 */
public final class ThinPool implements AutoCloseable {
    public static final int DEFAULT_BLOCK_SIZE = 64 << 10;
    public static final int MIN_BLOCK_SIZE = 4 << 10;
    public static final int MAX_BLOCK_SIZE = 1 << 30;
    /** Device ids as dm-thin takes them: 24 bits. */
    public static final int MAX_DEVICE_ID = (1 << 24) - 1;
    static final String IMAGE = "metadata";
    static final String LOG = "metadata.log";
    static final String DATA = "data";
    static final String LOCK = "lock";
    /** The log is folded into a new image once it grows past this. */
    static final long CHECKPOINT_BYTES = Long.getLong("vhostj.thin.checkpointBytes", 32L << 20);
    /**
     * Hand out the lowest allocatable block rather than the next after the last one: makes the
     * crash test reuse freed blocks as soon as the rules allow (a test setting).
     */
    private static final boolean LOWEST_FIRST = Boolean.getBoolean("vhostj.thin.lowestFirst");

    /** Device table entry and block-map root. */
    static final class Device {
        final int id;
        long size;
        final int origin;
        final long created;
        Node root;
        long mapped;
        boolean open;

        Device(int id, long size, int origin, long created) {
            this.id = id;
            this.size = size;
            this.origin = origin;
            this.created = created;
        }
    }

    private final Path dir;
    private final FileChannel lockChannel;
    private final FileLock lock;
    final int blockSize;
    final int blockShift;
    final long dataBlocks;
    /** The data store as the image names it: empty for {@code DIR/data}. */
    final String dataName;
    private final Fd data;
    long generation;
    final TreeMap<Integer, Device> devices = new TreeMap<>();
    final int[] dataRefs;
    long freeBlocks;
    /** Blocks that may not be handed out: in use, being written, or freed too recently. */
    private final BitSet unavailable = new BitSet();
    private BitSet freedNow = new BitSet();
    private BitSet freedPrev = new BitSet();
    private final BitSet exclusiveSinceCommit = new BitSet();
    private int cursor;
    private boolean replaying;
    private boolean holesUnsupported;
    private volatile boolean dataDirty;
    /** Lock-free I/O in flight per epoch parity ({@link #enterIo}). */
    private volatile int epoch;
    private final java.util.concurrent.atomic.AtomicInteger[] active = {
        new java.util.concurrent.atomic.AtomicInteger(), new java.util.concurrent.atomic.AtomicInteger()};
    /** Freed blocks waiting for the I/O of epoch {@link #graceEpoch} to finish, or null. */
    private BitSet grace;
    private int graceEpoch;
    /** Why the pool stopped taking changes (a metadata write failed: memory and disk may differ), or null. */
    private volatile String failed;
    private MetadataLog log;
    private final LogRecords pending = new LogRecords();
    /** One block of scratch for copy-on-write and zero-fill, used under the lock. */
    private final long scratch;
    private boolean closed;

    private ThinPool(Path dir, FileChannel lockChannel, FileLock lock, MetadataImage image, Fd data) {
        this.dir = dir;
        this.lockChannel = lockChannel;
        this.lock = lock;
        this.blockSize = image.blockSize;
        this.blockShift = Integer.numberOfTrailingZeros(image.blockSize);
        this.dataBlocks = image.dataBlocks;
        this.dataName = image.dataName;
        this.data = data;
        this.generation = image.generation;
        this.dataRefs = image.dataRefs;
        this.devices.putAll(image.devices);
        for (int d = 0; d < dataBlocks; d++) {
            if (dataRefs[d] != 0) {
                unavailable.set(d);
            } else {
                freeBlocks++;
            }
        }
        this.scratch = Native.allocate(blockSize);
    }

    /**
     * Creates a pool in {@code dir} (made if missing; must not hold a pool already) with
     * {@code dataSize} bytes of data blocks: a sparse file {@code dir/data}, or {@code dataPath}
     * (an existing file or block device, whose size is used when {@code dataSize} is 0).
     */
    public static ThinPool create(Path dir, long dataSize, int blockSize, Path dataPath) throws PoolException, IOException {
        if (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE || Integer.bitCount(blockSize) != 1) {
            throw new PoolException("block size must be a power of two from " + MIN_BLOCK_SIZE + " to " + MAX_BLOCK_SIZE
                    + " bytes, not " + blockSize);
        }
        Files.createDirectories(dir);
        if (Files.exists(dir.resolve(IMAGE))) {
            throw new PoolException(dir + " already holds a pool");
        }
        Path dataFile = dataPath == null ? dir.resolve(DATA) : dataPath.toAbsolutePath();
        if (dataPath == null) {
            if (dataSize <= 0) {
                throw new PoolException("the pool needs a data size");
            }
            // no image, so any data file here is what a create that did not finish left
            try (FileChannel c = FileChannel.open(dataFile, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                    StandardOpenOption.WRITE)) {
                c.write(java.nio.ByteBuffer.allocate(1), dataSize - 1);
                c.force(true);
            }
        } else {
            if (!Files.exists(dataFile)) {
                throw new PoolException("no such data file or device: " + dataFile);
            }
            long have;
            try (Fd fd = FileIo.open(dataFile, FileIo.O_RDONLY)) {
                have = FileIo.size(fd);
            } catch (NativeException e) {
                throw new PoolException("cannot open " + dataFile + ": " + e.getMessage());
            }
            if (dataSize == 0) {
                dataSize = have;
            } else if (dataSize > have) {
                throw new PoolException(dataFile + " holds " + have + " bytes, less than the " + dataSize + " asked for");
            }
        }
        long blocks = dataSize / blockSize;
        if (blocks < 1 || blocks > Integer.MAX_VALUE - 1) {
            throw new PoolException("the data size must hold 1 to " + (Integer.MAX_VALUE - 1) + " blocks of " + blockSize
                    + " bytes");
        }
        MetadataImage image = new MetadataImage(blockSize, blocks, dataPath == null ? "" : dataFile.toString(), 1,
                new TreeMap<>(), new int[(int) blocks]);
        Files.deleteIfExists(dir.resolve(LOG)); // a leftover log must not be read as this pool's
        image.write(dir);
        MetadataLog.create(dir.resolve(LOG), 1).close();
        return open(dir);
    }

    /** Opens the pool in {@code dir} for this process alone, replaying its log. */
    public static ThinPool open(Path dir) throws PoolException, IOException {
        if (!Files.exists(dir.resolve(IMAGE))) {
            throw new PoolException("no pool in " + dir + " (create one with 'vhostj devmapper create-pool')");
        }
        FileChannel lockChannel = FileChannel.open(dir.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
        FileLock lock;
        try {
            lock = lockChannel.tryLock();
        } catch (OverlappingFileLockException e) {
            lock = null;
        }
        if (lock == null) {
            String holder = Files.readString(dir.resolve(LOCK), StandardCharsets.US_ASCII).trim();
            lockChannel.close();
            throw new PoolException("the pool in " + dir + " is in use" + (holder.isEmpty() ? "" : " by pid " + holder));
        }
        ThinPool pool = null;
        Fd data = null;
        try {
            lockChannel.truncate(0);
            lockChannel.write(java.nio.ByteBuffer.wrap((ProcessHandle.current().pid() + "\n")
                    .getBytes(StandardCharsets.US_ASCII)), 0);
            MetadataImage image = MetadataImage.read(dir.resolve(IMAGE));
            Path dataFile = image.dataName.isEmpty() ? dir.resolve(DATA) : Path.of(image.dataName);
            try {
                data = FileIo.open(dataFile, FileIo.O_RDWR);
                if (FileIo.size(data) < image.dataBlocks * image.blockSize) {
                    throw new PoolException(dataFile + " is smaller than the pool's " + image.dataBlocks + " blocks");
                }
            } catch (NativeException e) {
                throw new PoolException("cannot open the pool's data " + dataFile + ": " + e.getMessage());
            }
            pool = new ThinPool(dir, lockChannel, lock, image, data);
            pool.log = MetadataLog.open(dir.resolve(LOG), image.generation, pool::replay);
            return pool;
        } catch (PoolException | IOException | RuntimeException e) {
            if (pool != null) {
                Native.free(pool.scratch);
            }
            if (data != null) {
                data.close();
            }
            lock.release();
            lockChannel.close();
            throw e;
        }
    }

    public Path directory() {
        return dir;
    }

    public int blockSize() {
        return blockSize;
    }

    // ---- administration (each is committed before it returns) ----

    public synchronized ThinDevice createThin(int id, long size) throws PoolException, IOException {
        checkUsable();
        checkNew(id);
        checkSize(size);
        long now = System.currentTimeMillis();
        doCreate(id, size, -1, now);
        pending.createThin(id, size, now);
        commit();
        return info(devices.get(id));
    }

    /** A snapshot of {@code origin} as device {@code id}: O(1), the two share every block until written. */
    public synchronized ThinDevice createSnap(int id, int origin) throws PoolException, IOException {
        checkUsable();
        checkNew(id);
        Device o = device(origin);
        if (o.open) {
            throw new PoolException("device " + origin + " is open for I/O; snapshot it when it is not being written");
        }
        long now = System.currentTimeMillis();
        doCreate(id, o.size, origin, now);
        pending.createSnap(id, origin, now);
        commit();
        return info(devices.get(id));
    }

    public synchronized void delete(int id) throws PoolException, IOException {
        checkUsable();
        Device d = device(id);
        if (d.open) {
            throw new PoolException("device " + id + " is open for I/O");
        }
        doDelete(id);
        pending.delete(id);
        commit();
    }

    /** Grows or shrinks a device; shrinking unmaps the blocks past the new end. */
    public synchronized void resize(int id, long size) throws PoolException, IOException {
        checkUsable();
        Device d = device(id);
        checkSize(size);
        if (d.open) {
            throw new PoolException("device " + id + " is open for I/O");
        }
        long tail = d.size & (blockSize - 1);
        long last = d.size >>> blockShift;
        if (size > d.size && tail != 0 && lookup(d, last) >= 0) {
            // the bytes past the old end in its last block were cut off by a shrink: zeros now
            long iov = Native.allocate(FileIo.IOVEC_SIZE);
            try {
                long n = Math.min(blockSize - tail, size - d.size);
                long zeros = Native.allocate(n);
                try {
                    Native.zero(zeros, n);
                    FileIo.putIovec(iov, 0, zeros, n);
                    if (!writeProvisioning(d, last, (int) tail, (int) n, iov, 1)) {
                        throw new PoolException("cannot zero the end of device " + id + " (pool full?)");
                    }
                } finally {
                    Native.free(zeros);
                }
            } catch (NativeException e) {
                throw new IOException("zeroing the end of device " + id + ": " + e.getMessage(), e);
            } finally {
                Native.free(iov);
            }
        }
        doResize(d, size);
        pending.resize(id, size);
        commit();
    }

    public synchronized List<ThinDevice> list() {
        List<ThinDevice> out = new ArrayList<>();
        for (Device d : devices.values()) {
            out.add(info(d));
        }
        return out;
    }

    public synchronized PoolStatus status() {
        // how many devices map each data block, counted through the shared nodes
        int[] users = new int[(int) dataBlocks];
        for (Device d : devices.values()) {
            if (d.root != null) {
                countUsers(d.root, users);
            }
        }
        long shared = 0;
        for (int u : users) {
            if (u > 1) {
                shared++;
            }
        }
        List<ThinDevice> out = new ArrayList<>();
        for (Device d : devices.values()) {
            long[] exclusive = {0};
            if (d.root != null) {
                forEachMapping(d.root, 0, (vb, block) -> {
                    if (users[block] == 1) {
                        exclusive[0]++;
                    }
                });
            }
            out.add(new ThinDevice(d.id, d.size, d.origin, d.created, d.mapped, exclusive[0]));
        }
        long metadataBytes = 0;
        try {
            metadataBytes = Files.size(dir.resolve(IMAGE)) + Files.size(dir.resolve(LOG));
        } catch (IOException e) {
            metadataBytes = -1;
        }
        return new PoolStatus(blockSize, dataBlocks, dataBlocks - freeBlocks, freeBlocks, shared, metadataBytes, out);
    }

    /**
     * Verifies the metadata as held now against itself: node reference counts against the
     * parents that point at them, data reference counts against the leaves, the free count and
     * map against the counts, every mapping inside its device and the data. Empty when sound.
     */
    public synchronized List<String> check() {
        return MetadataImage.verify(blockSize, dataBlocks, devices, dataRefs, freeBlocks);
    }

    /** Opens device {@code id} for I/O; one opener at a time. */
    public ThinVolume volume(int id, boolean readOnly) throws PoolException {
        return volume(id, readOnly, false);
    }

    synchronized ThinVolume volume(int id, boolean readOnly, boolean ownsPool) throws PoolException {
        checkUsable();
        Device d = device(id);
        if (d.open) {
            throw new PoolException("device " + id + " is already open");
        }
        d.open = true;
        return new ThinVolume(this, d, data, readOnly, ownsPool);
    }

    synchronized void release(Device d) {
        d.open = false;
    }

    /**
     * Makes every change so far durable: the data first (fdatasync), then the metadata batch
     * that maps it. What a FLUSH promises the guest.
     */
    public synchronized void commit() throws IOException {
        if (closed) {
            return;
        }
        if (failed != null) {
            throw new IOException(failed);
        }
        try {
            if (dataDirty) {
                dataDirty = false;
                try {
                    FileIo.fdatasync(data);
                } catch (NativeException e) {
                    dataDirty = true;
                    throw new IOException("fdatasync on the pool's data: " + e.getMessage(), e);
                }
            }
            if (!pending.isEmpty()) {
                log.append(pending);
                pending.clear();
            }
        } catch (IOException e) {
            fail(e);
            throw e;
        }
        // blocks freed two commits ago wait for the lock-free I/O of their epoch, then go back
        if (grace != null && active[graceEpoch & 1].get() == 0) {
            releaseFreed(grace);
            grace = null;
        }
        if (grace == null) {
            grace = freedPrev;
            graceEpoch = epoch;
            epoch = graceEpoch + 1;
            freedPrev = freedNow;
        } else {
            freedPrev.or(freedNow);
        }
        freedNow = new BitSet();
        exclusiveSinceCommit.clear();
        if (log.size() > CHECKPOINT_BYTES) {
            checkpoint();
        }
    }

    private void fail(IOException e) {
        if (failed == null) {
            failed = "the pool's metadata could not be written (" + e.getMessage()
                    + "); it takes no more changes until it is opened again";
            org.slf4j.LoggerFactory.getLogger(ThinPool.class).error(failed);
        }
    }

    /** Folds the log into a new image (written beside the old one, then renamed over it). */
    synchronized void checkpoint() throws IOException {
        long next = generation + 1;
        try {
            new MetadataImage(blockSize, dataBlocks, dataName, next, devices, dataRefs).write(dir);
            generation = next;
            log.reset(next);
        } catch (IOException e) {
            // the rename may have happened: appending to the old generation's log could be lost
            fail(e);
            throw e;
        }
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        for (Device d : devices.values()) {
            if (d.open) {
                throw new IOException("device " + d.id + " is still open"); // nothing closed: I/O may be running
            }
        }
        try {
            commit();
            // no volume is open, so no I/O is in flight: every freed block can go back now
            for (BitSet freed : new BitSet[] {grace, freedPrev, freedNow}) {
                if (freed != null) {
                    releaseFreed(freed);
                }
            }
            if (failed == null) {
                checkpoint();
            }
        } finally {
            closed = true;
            log.close();
            data.close();
            Native.free(scratch);
            try {
                lockChannel.truncate(0);
                lock.release();
            } finally {
                lockChannel.close();
            }
        }
    }

    /** Lets go of the pool as a crash would: nothing committed, no checkpoint (tests). */
    synchronized void abandon() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        log.close();
        data.close();
        Native.free(scratch);
        lock.release();
        lockChannel.close();
    }

    // ---- what volumes call ----

    /** The data block behind virtual block {@code vb}, or -1 if unmapped. */
    synchronized int lookup(Device d, long vb) {
        Node n = d.root;
        for (int level = Node.LEVELS - 1; n != null && level > 0; level--) {
            n = n.kids[Node.slot(vb, level)];
        }
        return n == null ? -1 : n.blocks[Node.slot(vb, 0)] - 1;
    }

    /** The data block behind {@code vb} if the device alone owns it (a write may go in place), else -1. */
    synchronized int lookupWritable(Device d, long vb) {
        Node n = d.root;
        for (int level = Node.LEVELS - 1; n != null && level > 0; level--) {
            if (n.refs != 1) {
                return -1;
            }
            n = n.kids[Node.slot(vb, level)];
        }
        if (n == null || n.refs != 1) {
            return -1;
        }
        int b = n.blocks[Node.slot(vb, 0)] - 1;
        if (b < 0 || dataRefs[b] != 1 || exclusiveSinceCommit.get(b)) {
            return -1;
        }
        return b;
    }

    /** An in-place write has completed: the next commit must fdatasync the data. */
    void dataWritten() {
        dataDirty = true;
    }

    /**
     * Registers lock-free I/O (a lookup and the transfer that uses it) in the current epoch; the
     * blocks a commit frees are handed out again only once every I/O of the epoch they were freed
     * in has finished ({@link #exitIo}), so a stale lookup cannot read or write a reused block.
     */
    int enterIo() {
        while (true) {
            int e = epoch;
            active[e & 1].incrementAndGet();
            if (epoch == e) {
                return e;
            }
            active[e & 1].decrementAndGet();
        }
    }

    void exitIo(int e) {
        active[e & 1].decrementAndGet();
    }

    /**
     * A write into a block the device does not own alone: a new block, with the rest of the old
     * block copied into it (or zeros if there was none), then the guest's bytes, then the
     * mapping. Under the lock, so two writers of one block cannot both provision it.
     */
    synchronized boolean writeProvisioning(Device d, long vb, int within, int length, long iov, int iovCount)
            throws NativeException {
        if (failed != null) {
            return false;
        }
        int block = lookupWritable(d, vb);
        if (block >= 0) {
            dataDirty = true;
            return ThinVolume.transfer(true, data, iov, iovCount, ((long) block << blockShift) + within, length);
        }
        int old = lookup(d, vb);
        int fresh = allocate();
        if (fresh < 0) {
            return false;
        }
        long at = (long) fresh << blockShift;
        boolean ok = false;
        try {
            if (length < blockSize) {
                if (old >= 0) {
                    copyBlock(old, fresh);
                } else {
                    zeroBlock(fresh);
                }
            }
            ok = ThinVolume.transfer(true, data, iov, iovCount, at + within, length);
        } finally {
            if (!ok) {
                unavailable.clear(fresh);
            }
        }
        if (!ok) {
            return false;
        }
        dataDirty = true;
        map(d, vb, fresh);
        return true;
    }

    /** Unmaps virtual blocks [first, first + count) of the device. */
    synchronized void unmap(Device d, long first, long count) {
        if (failed != null) {
            return;
        }
        for (long vb = first; vb < first + count; vb++) {
            if (lookup(d, vb) >= 0) {
                setMapping(d, vb, -1);
                pending.unmap(d.id, vb);
            }
        }
    }

    private void map(Device d, long vb, int block) {
        setMapping(d, vb, block);
        pending.map(d.id, vb, block);
    }

    // ---- the state changes, shared by live operations and log replay ----

    private void replay(LogRecords.Record r) throws PoolException {
        replaying = true;
        try {
            switch (r.type()) {
                case LogRecords.CREATE_THIN -> {
                    checkNew(r.device());
                    doCreate(r.device(), r.value(), -1, r.time());
                }
                case LogRecords.CREATE_SNAP -> {
                    checkNew(r.device());
                    Device o = device((int) r.value());
                    doCreate(r.device(), o.size, o.id, r.time());
                }
                case LogRecords.DELETE -> {
                    device(r.device());
                    doDelete(r.device());
                }
                case LogRecords.RESIZE -> doResize(device(r.device()), r.value());
                case LogRecords.MAP, LogRecords.UNMAP -> {
                    Device d = device(r.device());
                    long vb = r.value();
                    int block = r.type() == LogRecords.MAP ? r.block() : -1;
                    boolean badBlock = r.type() == LogRecords.MAP
                            ? block < 0 || block >= dataBlocks || dataRefs[block] != 0 : false;
                    if (vb < 0 || vb >= blocksOf(d.size) || badBlock) {
                        throw new PoolException("log record maps device " + d.id + " block " + vb + " to " + block
                                + ", which cannot be");
                    }
                    setMapping(d, vb, block);
                }
                default -> throw new PoolException("unknown log record type " + r.type());
            }
        } finally {
            replaying = false;
        }
    }

    private void doCreate(int id, long size, int origin, long created) {
        Device d = new Device(id, size, origin, created);
        if (origin >= 0) {
            Device o = devices.get(origin);
            d.root = o.root;
            d.mapped = o.mapped;
            if (d.root != null) {
                d.root.refs++;
            }
        }
        devices.put(id, d);
    }

    private void doDelete(int id) {
        Device d = devices.remove(id);
        if (d.root != null) {
            decNode(d.root);
        }
    }

    private void doResize(Device d, long size) {
        long keep = blocksOf(size);
        if (d.root != null && keep < blocksOf(d.size)) {
            List<Long> gone = new ArrayList<>();
            forEachMapping(d.root, 0, (vb, block) -> {
                if (vb >= keep) {
                    gone.add(vb);
                }
            });
            for (long vb : gone) {
                setMapping(d, vb, -1);
            }
        }
        d.size = size;
    }

    /** Points {@code vb} at {@code block} (-1: unmaps it), shadowing shared nodes on the way down. */
    private void setMapping(Device d, long vb, int block) {
        if (d.root == null) {
            if (block < 0) {
                return;
            }
            d.root = new Node(Node.LEVELS - 1);
        } else {
            d.root = shadow(d.root);
        }
        Node n = d.root;
        for (int level = Node.LEVELS - 1; level > 0; level--) {
            int s = Node.slot(vb, level);
            Node c = n.kids[s];
            if (c == null) {
                if (block < 0) {
                    return;
                }
                c = new Node(level - 1);
                n.kids[s] = c;
                n.used++;
            } else {
                c = shadow(c);
                n.kids[s] = c;
            }
            n = c;
        }
        int s = Node.slot(vb, 0);
        int old = n.blocks[s] - 1;
        if (old == block) {
            return;
        }
        n.blocks[s] = block + 1;
        if (block >= 0) {
            incData(block);
            if (old < 0) {
                n.used++;
                d.mapped++;
            }
        } else {
            n.used--;
            d.mapped--;
        }
        if (old >= 0) {
            decData(old);
        }
    }

    /** The node itself if only one parent holds it, else a private copy for the caller's parent. */
    private Node shadow(Node n) {
        if (n.refs == 1) {
            return n;
        }
        Node c = n.copy();
        n.refs--;
        if (c.level == 0) {
            for (int b : c.blocks) {
                if (b != 0) {
                    incData(b - 1);
                }
            }
        } else {
            for (Node k : c.kids) {
                if (k != null) {
                    k.refs++;
                }
            }
        }
        return c;
    }

    private void decNode(Node n) {
        if (--n.refs > 0) {
            return;
        }
        if (n.level == 0) {
            for (int b : n.blocks) {
                if (b != 0) {
                    decData(b - 1);
                }
            }
        } else {
            for (Node k : n.kids) {
                if (k != null) {
                    decNode(k);
                }
            }
        }
    }

    private void incData(int block) {
        if (dataRefs[block]++ == 0) {
            freeBlocks--;
            unavailable.set(block);
        }
    }

    private void decData(int block) {
        int r = --dataRefs[block];
        if (r == 0) {
            freeBlocks++;
            if (replaying) {
                unavailable.clear(block);
            } else {
                freedNow.set(block);
            }
        } else if (r == 1 && !replaying) {
            exclusiveSinceCommit.set(block);
        }
    }

    private int allocate() {
        int b = unavailable.nextClearBit(LOWEST_FIRST ? 0 : cursor);
        if (b >= dataBlocks) {
            b = unavailable.nextClearBit(0);
            if (b >= dataBlocks) {
                return -1;
            }
        }
        unavailable.set(b);
        cursor = b + 1;
        return b;
    }

    /** Blocks freed two commits ago may be handed out again; their space goes back to the file system. */
    private void releaseFreed(BitSet freed) {
        for (int b = freed.nextSetBit(0); b >= 0; ) {
            int end = freed.nextClearBit(b);
            int runStart = -1;
            for (int i = b; i <= end; i++) {
                boolean free = i < end && dataRefs[i] == 0;
                if (free) {
                    unavailable.clear(i);
                    if (runStart < 0) {
                        runStart = i;
                    }
                } else if (runStart >= 0) {
                    punch(runStart, i - runStart);
                    runStart = -1;
                }
            }
            b = freed.nextSetBit(end);
        }
    }

    private void punch(int first, int count) {
        if (holesUnsupported) {
            return;
        }
        try {
            FileIo.fallocate(data, FileIo.FALLOC_FL_PUNCH_HOLE | FileIo.FALLOC_FL_KEEP_SIZE, (long) first << blockShift,
                    (long) count << blockShift);
        } catch (NativeException e) {
            holesUnsupported = true;
        }
    }

    private void zeroBlock(int block) throws NativeException {
        long at = (long) block << blockShift;
        if (!holesUnsupported) {
            try {
                FileIo.fallocate(data, FileIo.FALLOC_FL_PUNCH_HOLE | FileIo.FALLOC_FL_KEEP_SIZE, at, blockSize);
                return;
            } catch (NativeException e) {
                if (e.errno() != Errno.ENOTSUP && e.errno() != Errno.EINVAL) {
                    throw e;
                }
                holesUnsupported = true;
            }
        }
        Native.zero(scratch, blockSize);
        pwriteFully(scratch, blockSize, at);
    }

    private void copyBlock(int from, int to) throws NativeException {
        long src = (long) from << blockShift;
        long done = 0;
        while (done < blockSize) {
            long n = FileIo.pread(data, scratch + done, blockSize - done, src + done);
            if (n <= 0) {
                Native.zero(scratch + done, blockSize - done);
                break;
            }
            done += n;
        }
        pwriteFully(scratch, blockSize, (long) to << blockShift);
    }

    private void pwriteFully(long address, long length, long at) throws NativeException {
        long done = 0;
        while (done < length) {
            long n = FileIo.pwrite(data, address + done, length - done, at + done);
            if (n <= 0) {
                throw new NativeException("pwrite", Errno.EIO);
            }
            done += n;
        }
    }

    // ---- helpers ----

    long blocksOf(long size) {
        return (size + blockSize - 1) >>> blockShift;
    }

    private void checkUsable() throws PoolException {
        if (closed) {
            throw new PoolException("the pool in " + dir + " is closed");
        }
        if (failed != null) {
            throw new PoolException(failed);
        }
    }

    private void checkNew(int id) throws PoolException {
        if (id < 0 || id > MAX_DEVICE_ID) {
            throw new PoolException("device ids are 0.." + MAX_DEVICE_ID + ", not " + id);
        }
        if (devices.containsKey(id)) {
            throw new PoolException("device " + id + " already exists");
        }
    }

    private void checkSize(long size) throws PoolException {
        if (size <= 0 || size % 512 != 0) {
            throw new PoolException("a device size must be a positive multiple of 512 bytes, not " + size);
        }
        if (blocksOf(size) > Node.MAX_BLOCKS) {
            throw new PoolException("a device may have at most " + Node.MAX_BLOCKS + " blocks");
        }
    }

    private Device device(int id) throws PoolException {
        Device d = devices.get(id);
        if (d == null) {
            throw new PoolException("no device " + id + " in the pool");
        }
        return d;
    }

    private ThinDevice info(Device d) {
        return new ThinDevice(d.id, d.size, d.origin, d.created, d.mapped, -1);
    }

    interface MappingVisitor {
        void mapping(long vblock, int block);
    }

    /** Visits every mapping below {@code n}, {@code base} being the first virtual block it covers. */
    static void forEachMapping(Node n, long base, MappingVisitor v) {
        if (n.level == 0) {
            for (int i = 0; i < Node.FANOUT; i++) {
                if (n.blocks[i] != 0) {
                    v.mapping(base + i, n.blocks[i] - 1);
                }
            }
            return;
        }
        long span = 1L << (Node.SHIFT * n.level);
        for (int i = 0; i < Node.FANOUT; i++) {
            if (n.kids[i] != null) {
                forEachMapping(n.kids[i], base + i * span, v);
            }
        }
    }

    private static void countUsers(Node n, int[] users) {
        forEachMapping(n, 0, (vb, block) -> users[block]++);
    }

    /** Distinct nodes reachable from the devices, for verification and the image. */
    static Map<Node, Integer> parentsOf(Iterable<Device> devices) {
        Map<Node, Integer> parents = new IdentityHashMap<>();
        Set<Node> seen = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        for (Device d : devices) {
            if (d.root != null) {
                parents.merge(d.root, 1, Integer::sum);
                walk(d.root, parents, seen);
            }
        }
        return parents;
    }

    private static void walk(Node n, Map<Node, Integer> parents, Set<Node> seen) {
        if (!seen.add(n) || n.level == 0) {
            return;
        }
        for (Node k : n.kids) {
            if (k != null) {
                parents.merge(k, 1, Integer::sum);
                walk(k, parents, seen);
            }
        }
    }
}
