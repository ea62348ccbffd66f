package io.vhostj.devmapper;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32C;

/**
 * A checkpoint of the pool's metadata, one file, written whole beside the old one and renamed
 * over it:
 * <pre>
 *   magic u64 "VHJTHIN1", version u32, block size u32, data blocks u64, generation u64, data name (UTF)
 *   devices u32, each: id u32, size u64, origin i32, created u64, mapped u64, root node i32 (-1: none)
 *   nodes u32, children before parents, each: level u8, slots u16, then per slot: index u16, value u32
 *      (leaf: data block; interior: index of a node written earlier)
 *   referenced blocks u32, each: block u32, reference count u32
 *   free-space map: data blocks bits, a set bit = free
 *   crc32c u32 of all of the above
 * </pre>
 * Shared nodes are written once, so snapshots stay shared after a reopen. Reading verifies the
 * whole image ({@link #verify}): a pool whose counts disagree with its maps is not opened.
 */
final class MetadataImage {
    private static final long MAGIC = 0x56484a5448494e31L; // "VHJTHIN1"
    private static final int VERSION = 1;

    final int blockSize;
    final long dataBlocks;
    final String dataName;
    final long generation;
    final Map<Integer, ThinPool.Device> devices;
    final int[] dataRefs;

    MetadataImage(int blockSize, long dataBlocks, String dataName, long generation, Map<Integer, ThinPool.Device> devices,
            int[] dataRefs) {
        this.blockSize = blockSize;
        this.dataBlocks = dataBlocks;
        this.dataName = dataName;
        this.generation = generation;
        this.devices = devices;
        this.dataRefs = dataRefs;
    }

    void write(Path dir) throws IOException {
        Path tmp = dir.resolve(ThinPool.IMAGE + ".new");
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(1 << 16);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeLong(MAGIC);
            out.writeInt(VERSION);
            out.writeInt(blockSize);
            out.writeLong(dataBlocks);
            out.writeLong(generation);
            out.writeUTF(dataName);
            // nodes first in memory order, so device rows can name their roots
            Map<Node, Integer> index = new IdentityHashMap<>();
            List<Node> order = new ArrayList<>();
            for (ThinPool.Device d : devices.values()) {
                if (d.root != null) {
                    number(d.root, index, order);
                }
            }
            out.writeInt(devices.size());
            for (ThinPool.Device d : devices.values()) {
                out.writeInt(d.id);
                out.writeLong(d.size);
                out.writeInt(d.origin);
                out.writeLong(d.created);
                out.writeLong(d.mapped);
                out.writeInt(d.root == null ? -1 : index.get(d.root));
            }
            out.writeInt(order.size());
            for (Node n : order) {
                out.writeByte(n.level);
                out.writeShort(n.used);
                for (int i = 0; i < Node.FANOUT; i++) {
                    if (n.level == 0 ? n.blocks[i] != 0 : n.kids[i] != null) {
                        out.writeShort(i);
                        out.writeInt(n.level == 0 ? n.blocks[i] - 1 : index.get(n.kids[i]));
                    }
                }
            }
            int referenced = 0;
            for (int r : dataRefs) {
                if (r != 0) {
                    referenced++;
                }
            }
            out.writeInt(referenced);
            for (int b = 0; b < dataBlocks; b++) {
                if (dataRefs[b] != 0) {
                    out.writeInt(b);
                    out.writeInt(dataRefs[b]);
                }
            }
            BitSet free = new BitSet((int) dataBlocks);
            for (int b = 0; b < dataBlocks; b++) {
                if (dataRefs[b] == 0) {
                    free.set(b);
                }
            }
            byte[] bits = java.util.Arrays.copyOf(free.toByteArray(), (int) ((dataBlocks + 7) / 8));
            out.write(bits);
            CRC32C crc = new CRC32C();
            crc.update(bytes.toByteArray());
            out.writeInt((int) crc.getValue());
        }
        try (FileChannel c = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(bytes.toByteArray());
            while (b.hasRemaining()) {
                c.write(b);
            }
            c.force(true);
        }
        Files.move(tmp, dir.resolve(ThinPool.IMAGE), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        }
    }

    private static void number(Node n, Map<Node, Integer> index, List<Node> order) {
        if (index.containsKey(n)) {
            return;
        }
        if (n.level > 0) {
            for (Node k : n.kids) {
                if (k != null) {
                    number(k, index, order);
                }
            }
        }
        index.put(n, order.size());
        order.add(n);
    }

    static MetadataImage read(Path path) throws IOException, PoolException {
        byte[] all = Files.readAllBytes(path);
        if (all.length < 4) {
            throw new PoolException(path + " is not a pool image (too short)");
        }
        CRC32C crc = new CRC32C();
        crc.update(all, 0, all.length - 4);
        int stored = ByteBuffer.wrap(all, all.length - 4, 4).getInt();
        if ((int) crc.getValue() != stored) {
            throw new PoolException(path + " fails its checksum: the metadata is damaged");
        }
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(all, 0, all.length - 4))) {
            if (in.readLong() != MAGIC) {
                throw new PoolException(path + " is not a vhostj thin-pool image");
            }
            int version = in.readInt();
            if (version != VERSION) {
                throw new PoolException(path + " has image version " + version + "; this vhostj reads " + VERSION);
            }
            int blockSize = in.readInt();
            long dataBlocks = in.readLong();
            long generation = in.readLong();
            String dataName = in.readUTF();
            if (blockSize < ThinPool.MIN_BLOCK_SIZE || Integer.bitCount(blockSize) != 1 || dataBlocks < 1
                    || dataBlocks >= Integer.MAX_VALUE) {
                throw new PoolException(path + ": impossible geometry " + dataBlocks + " x " + blockSize);
            }
            int deviceCount = in.readInt();
            List<ThinPool.Device> devs = new ArrayList<>();
            List<Integer> roots = new ArrayList<>();
            for (int i = 0; i < deviceCount; i++) {
                ThinPool.Device d = new ThinPool.Device(in.readInt(), in.readLong(), in.readInt(), in.readLong());
                d.mapped = in.readLong();
                devs.add(d);
                roots.add(in.readInt());
            }
            int nodeCount = in.readInt();
            if (nodeCount < 0) {
                throw new PoolException(path + ": negative node count");
            }
            List<Node> nodes = new ArrayList<>();
            for (int i = 0; i < nodeCount; i++) {
                int level = in.readUnsignedByte();
                int slots = in.readUnsignedShort();
                if (level >= Node.LEVELS || slots > Node.FANOUT) {
                    throw new PoolException(path + ": node " + i + " is malformed");
                }
                Node n = new Node(level);
                n.refs = 0;
                n.used = slots;
                for (int s = 0; s < slots; s++) {
                    int slot = in.readUnsignedShort();
                    int value = in.readInt();
                    if (slot >= Node.FANOUT) {
                        throw new PoolException(path + ": node " + i + " has slot " + slot);
                    }
                    if (level == 0) {
                        if (value < 0 || value >= dataBlocks) {
                            throw new PoolException(path + ": node " + i + " maps data block " + value + " of " + dataBlocks);
                        }
                        n.blocks[slot] = value + 1;
                    } else {
                        if (value < 0 || value >= i || nodes.get(value).level != level - 1) {
                            throw new PoolException(path + ": node " + i + " points at node " + value);
                        }
                        Node k = nodes.get(value);
                        k.refs++;
                        n.kids[slot] = k;
                    }
                }
                nodes.add(n);
            }
            Map<Integer, ThinPool.Device> devices = new TreeMap<>();
            for (int i = 0; i < devs.size(); i++) {
                ThinPool.Device d = devs.get(i);
                int r = roots.get(i);
                if (r >= nodeCount || r < -1 || (r >= 0 && nodes.get(r).level != Node.LEVELS - 1)) {
                    throw new PoolException(path + ": device " + d.id + " has root " + r);
                }
                if (r >= 0) {
                    d.root = nodes.get(r);
                    d.root.refs++;
                }
                if (devices.put(d.id, d) != null) {
                    throw new PoolException(path + ": device " + d.id + " appears twice");
                }
            }
            int[] refs = new int[(int) dataBlocks];
            int referenced = in.readInt();
            for (int i = 0; i < referenced; i++) {
                int b = in.readInt();
                int r = in.readInt();
                if (b < 0 || b >= dataBlocks) {
                    throw new PoolException(path + ": reference count for block " + b + " of " + dataBlocks);
                }
                refs[b] = r;
            }
            byte[] bits = new byte[(int) ((dataBlocks + 7) / 8)];
            in.readFully(bits);
            BitSet free = BitSet.valueOf(bits);
            long freeCount = 0;
            List<String> problems = new ArrayList<>();
            for (int b = 0; b < dataBlocks; b++) {
                if (free.get(b) != (refs[b] == 0)) {
                    problems.add("free-space map says block " + b + (free.get(b) ? " is free" : " is used")
                            + " but its reference count is " + refs[b]);
                }
                if (refs[b] == 0) {
                    freeCount++;
                }
            }
            problems.addAll(verify(blockSize, dataBlocks, devices, refs, freeCount));
            if (!problems.isEmpty()) {
                throw new PoolException(path + " is inconsistent: " + String.join("; ",
                        problems.subList(0, Math.min(5, problems.size())))
                        + (problems.size() > 5 ? " (and " + (problems.size() - 5) + " more)" : ""));
            }
            return new MetadataImage(blockSize, dataBlocks, dataName, generation, devices, refs);
        } catch (EOFException e) {
            throw new PoolException(path + " ends early: the metadata is damaged");
        }
    }

    /**
     * Everything that must hold between the maps and the counts; empty when it all does. Node
     * counts against their parents, data counts against the leaves holding them, the free
     * count, mappings inside their device, used-slot and mapped counts.
     */
    static List<String> verify(int blockSize, long dataBlocks, Map<Integer, ThinPool.Device> devices, int[] dataRefs,
            long freeBlocks) {
        List<String> problems = new ArrayList<>();
        Map<Node, Integer> parents = ThinPool.parentsOf(devices.values());
        int[] expected = new int[(int) dataBlocks];
        for (Map.Entry<Node, Integer> e : parents.entrySet()) {
            Node n = e.getKey();
            if (n.refs != e.getValue()) {
                problems.add("a level-" + n.level + " node has reference count " + n.refs + " but " + e.getValue()
                        + " parent(s)");
            }
            int used = 0;
            for (int i = 0; i < Node.FANOUT; i++) {
                if (n.level == 0) {
                    if (n.blocks[i] != 0) {
                        used++;
                        int b = n.blocks[i] - 1;
                        if (b < 0 || b >= dataBlocks) {
                            problems.add("a leaf maps data block " + b + " outside the pool");
                        } else {
                            expected[b]++;
                        }
                    }
                } else if (n.kids[i] != null) {
                    used++;
                    if (n.kids[i].level != n.level - 1) {
                        problems.add("a level-" + n.level + " node points at a level-" + n.kids[i].level + " node");
                    }
                }
            }
            if (used != n.used) {
                problems.add("a level-" + n.level + " node counts " + n.used + " slots in use but has " + used);
            }
        }
        long free = 0;
        for (int b = 0; b < dataBlocks; b++) {
            if (expected[b] != dataRefs[b]) {
                problems.add("data block " + b + " has reference count " + dataRefs[b] + " but " + expected[b]
                        + " leaf reference(s)");
            }
            if (dataRefs[b] == 0) {
                free++;
            }
        }
        if (free != freeBlocks) {
            problems.add("the free count is " + freeBlocks + " but " + free + " blocks are unreferenced");
        }
        int shift = Integer.numberOfTrailingZeros(blockSize);
        for (ThinPool.Device d : devices.values()) {
            if (d.root != null && d.root.level != Node.LEVELS - 1) {
                problems.add("device " + d.id + " has a root of level " + d.root.level);
                continue;
            }
            long limit = (d.size + blockSize - 1) >>> shift;
            long[] mapped = {0};
            if (d.root != null) {
                ThinPool.forEachMapping(d.root, 0, (vb, block) -> {
                    mapped[0]++;
                    if (vb >= limit && mapped[0] < 1_000_000) {
                        problems.add("device " + d.id + " maps virtual block " + vb + " past its end (" + limit + ")");
                    }
                });
            }
            if (mapped[0] != d.mapped) {
                problems.add("device " + d.id + " counts " + d.mapped + " mapped blocks but maps " + mapped[0]);
            }
        }
        return problems;
    }
}
