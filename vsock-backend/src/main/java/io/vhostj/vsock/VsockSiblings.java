package io.vhostj.vsock;

import java.util.Collections;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The VMs one process serves, by CID, for sibling traffic: a guest's packet to another guest's
 * CID goes straight to that guest's rx queue when the two VMs share a group (vhost-device-vsock's
 * {@code groups=}; every VM is in group {@code default} unless told otherwise).
 */
final class VsockSiblings {
    private final Map<Long, VsockMux> byCid = new ConcurrentHashMap<>();

    void add(VsockMux mux) {
        if (byCid.putIfAbsent(mux.guestCid(), mux) != null) {
            throw new IllegalArgumentException("guest CID " + mux.guestCid() + " is served twice");
        }
    }

    /** The VM with {@code cid} if {@code from} may reach it, else null. */
    VsockMux reachable(VsockMux from, long cid) {
        VsockMux to = byCid.get(cid);
        if (to == null || to == from || Collections.disjoint(from.groups(), to.groups())) {
            return null;
        }
        return to;
    }
}
