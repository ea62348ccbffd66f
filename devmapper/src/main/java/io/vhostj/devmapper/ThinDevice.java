package io.vhostj.devmapper;

/**
 * One row of the pool's device table, as {@code list} and {@code status} show it.
 *
 * @param origin the device this one was snapshotted from, or -1
 * @param created creation time, milliseconds since the epoch
 * @param mappedBlocks virtual blocks that have a data block
 * @param exclusiveBlocks of those, blocks no other device shares (-1 when not computed)
 */
public record ThinDevice(int id, long size, int origin, long created, long mappedBlocks, long exclusiveBlocks) {
}
