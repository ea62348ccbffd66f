package io.vhostj.devmapper;

/**
 * One node of a thin device's block map: a radix tree of {@value #LEVELS} levels with
 * {@value #FANOUT} slots per node, indexed by virtual block number. Level 0 nodes are leaves and
 * hold data block numbers plus one (0: unmapped); the others hold child nodes.
 *
 * <p>Nodes are shared between a device and its snapshots, as dm-thin shares btree nodes: a
 * snapshot is a new root pointer to the origin's root (O(1)), and a node is copied ("shadowed")
 * the first time a write goes through it while {@link #refs} &gt; 1. A data block's reference
 * count counts the leaves that hold it, not the devices, so shadowing a leaf increments the count
 * of every block in it.
 */
final class Node {
    static final int SHIFT = 9;
    static final int FANOUT = 1 << SHIFT;
    static final int LEVELS = 4;
    /** Virtual blocks one device can address: 2^36, 4 PiB at 64 KiB blocks. */
    static final long MAX_BLOCKS = 1L << (SHIFT * LEVELS);

    final int level;
    /** Parents (device roots or interior nodes) that point here. */
    int refs = 1;
    /** Non-empty slots. */
    int used;
    final Node[] kids;
    final int[] blocks;

    Node(int level) {
        this.level = level;
        this.kids = level == 0 ? null : new Node[FANOUT];
        this.blocks = level == 0 ? new int[FANOUT] : null;
    }

    private Node(Node from) {
        this.level = from.level;
        this.used = from.used;
        this.kids = from.kids == null ? null : from.kids.clone();
        this.blocks = from.blocks == null ? null : from.blocks.clone();
    }

    Node copy() {
        return new Node(this);
    }

    static int slot(long vblock, int level) {
        return (int) (vblock >>> (SHIFT * level)) & (FANOUT - 1);
    }
}
