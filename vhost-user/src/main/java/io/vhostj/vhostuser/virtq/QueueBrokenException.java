package io.vhostj.vhostuser.virtq;

/**
 * The ring itself is inconsistent (an avail index running more than a queue ahead, a head
 * index outside the ring): no further request on this queue can be trusted.
 */
public final class QueueBrokenException extends Exception {
    public QueueBrokenException(String message) {
        super(message, null, false, false);
    }
}
