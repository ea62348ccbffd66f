package io.vhostj.devmapper;

import java.nio.file.Path;

/**
 * What a process that holds a pool and serves its devices (a {@code vhostj blk --pool}) does
 * for {@code vhostj devmapper export} / {@code unexport}: start or stop serving one thin
 * device on a vhost-user socket while everything else goes on.
 */
public interface Exporter {
    /** Serves thin device {@code id} on {@code socket}; a line saying what now runs. */
    String export(int id, Path socket, boolean readOnly) throws Exception;

    /** Stops serving {@code socket} (its VM loses the disk); false if nothing was served there. */
    boolean unexport(Path socket) throws Exception;
}
