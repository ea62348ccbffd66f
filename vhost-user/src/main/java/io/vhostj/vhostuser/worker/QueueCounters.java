package io.vhostj.vhostuser.worker;

/**
 * Per-queue counters. Written only by the queue's worker thread as plain fields (no atomics on
 * the hot path); readers on other threads see recent, not exact, values.
 */
public final class QueueCounters {
    public long requests;
    public long badRequests;
    public long bytesRead;
    public long bytesWritten;
    public long kicksReceived;
    public long callsSent;
    public long callsSuppressed;
    public long pollsWithWork;
    public long pollsWithoutWork;
    public long parks;

    @Override
    public String toString() {
        return "requests=" + requests + " bad=" + badRequests + " bytesRead=" + bytesRead + " bytesWritten="
                + bytesWritten + " kicks=" + kicksReceived + " calls=" + callsSent + " callsSuppressed="
                + callsSuppressed + " polls(work)=" + pollsWithWork + " polls(idle)=" + pollsWithoutWork
                + " parks=" + parks;
    }
}
