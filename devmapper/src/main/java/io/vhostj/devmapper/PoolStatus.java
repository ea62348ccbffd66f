package io.vhostj.devmapper;

import java.util.List;

/**
 * Space in a pool: data blocks in use and free, and how many of the used ones more than one
 * device maps (shared by snapshots until one side writes them).
 */
public record PoolStatus(int blockSize, long dataBlocks, long usedBlocks, long freeBlocks, long sharedBlocks,
        long metadataBytes, List<ThinDevice> devices) {
}
