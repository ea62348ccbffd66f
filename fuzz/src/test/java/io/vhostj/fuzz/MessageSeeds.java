package io.vhostj.fuzz;

import static io.vhostj.vhostuser.protocol.FrontendRequest.*;

import java.util.LinkedHashMap;
import java.util.Map;

import io.vhostj.fuzz.MessageScript.Builder;
import io.vhostj.fuzz.MessageScript.Payload;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.protocol.VhostUserMessage;

/**
 * The committed seed corpus of {@link VhostUserMessageFuzzTest}: connections as QEMU opens them,
 * so that the fuzzer starts from messages the backend accepts and from a running queue rather
 * than from random headers. {@link SeedCorpus} writes them out.
 */
final class MessageSeeds {
    static final long GPA = 0x1_0000_0000L;
    static final long UVA = 0x7f00_0000_0000L;
    static final long RAM = VhostUserMessageFuzzTest.RAM_SIZE;
    static final int QUEUE_SIZE = 64;
    static final long DESC = UVA;
    static final long AVAIL = UVA + 0x1000;
    static final long USED = UVA + 0x2000;
    private static final int NEED_REPLY = VhostUserMessage.FLAG_NEED_REPLY;

    private MessageSeeds() {
    }

    static Map<String, byte[]> seeds() {
        Map<String, byte[]> seeds = new LinkedHashMap<>();
        seeds.put("negotiate", negotiate(new Builder(), ProtocolFeature.IMPLEMENTED).build());
        seeds.put("start-queue", startQueue(negotiate(new Builder(), ProtocolFeature.IMPLEMENTED))
                .message(GET_VRING_BASE, 0, state(0, 0))
                .build());
        seeds.put("start-queue-legacy", startQueueLegacy().build());
        seeds.put("memory-slots", negotiate(new Builder(), ProtocolFeature.IMPLEMENTED)
                .message(GET_MAX_MEM_SLOTS, 0, new byte[0])
                .message(ADD_MEM_REG, NEED_REPLY, singleRegion(GPA, RAM / 2, UVA, 0), 1, 1)
                .message(ADD_MEM_REG, NEED_REPLY, singleRegion(GPA + RAM / 2, RAM / 2, UVA + RAM / 2, RAM / 2), 1, 1)
                .message(REM_MEM_REG, NEED_REPLY, singleRegion(GPA, RAM / 2, UVA, 0))
                .build());
        seeds.put("config", negotiate(new Builder(), ProtocolFeature.IMPLEMENTED)
                .message(GET_CONFIG, 0, config(0, new byte[FuzzDevice.CONFIG_SIZE]))
                .message(SET_CONFIG, NEED_REPLY, config(4, new byte[] {1, 2, 3, 4}))
                .message(GET_CONFIG, 0, config(4, new byte[4]))
                .build());
        seeds.put("status-inflight-reset", negotiate(new Builder(), ProtocolFeature.IMPLEMENTED)
                .message(SET_STATUS, NEED_REPLY, u64(0xf))
                .message(GET_STATUS, 0, new byte[0])
                .message(GET_INFLIGHT_FD, 0, inflight(0, 0, 2, QUEUE_SIZE))
                .message(SET_INFLIGHT_FD, NEED_REPLY, inflight(RAM, 0, 2, QUEUE_SIZE), 1, 1)
                .message(RESET_DEVICE, NEED_REPLY, new byte[0])
                .build());
        // The inflight region replaced while a queue that records into it runs (a KnownBugs
        // reproducer as well: it kills the JVM while that bug is checked).
        seeds.put("known-bug-inflight-under-running-queue", idle(idle(startQueue(negotiate(new Builder(),
                ProtocolFeature.IMPLEMENTED).message(GET_INFLIGHT_FD, 0, inflight(0, 0, 2, QUEUE_SIZE))), 20)
                .message(GET_INFLIGHT_FD, 0, inflight(0, 0, 2, QUEUE_SIZE)), 20)
                .message(GET_VRING_BASE, 0, state(0, 0))
                .build());
        // The memory table replaced, grown and shrunk under a running queue.
        seeds.put("remap-under-running-queue", startQueue(negotiate(new Builder(), ProtocolFeature.IMPLEMENTED))
                .message(SET_MEM_TABLE, NEED_REPLY, memTable(GPA, RAM, UVA, 0), 1, 1)
                .message(ADD_MEM_REG, NEED_REPLY, singleRegion(GPA + RAM, RAM, UVA + RAM, RAM), 1, 1)
                .message(REM_MEM_REG, NEED_REPLY, singleRegion(GPA + RAM, RAM, UVA + RAM, RAM))
                .message(REM_MEM_REG, NEED_REPLY, singleRegion(GPA, RAM, UVA, 0))
                .build());
        // Reproducers of KnownBugs: they pass while a bug is tolerated and fail with
        // -Dvhostj.fuzz.knownBugs=<name> until it is fixed.
        seeds.put("known-bug-fd-leak-bad-version", negotiate(new Builder(), ProtocolFeature.IMPLEMENTED)
                .rawMessage(SET_VRING_CALL, 0, u64(0), 1, 0)
                .build());
        seeds.put("known-bug-fd-leak-validate", negotiate(new Builder(), ProtocolFeature.IMPLEMENTED)
                .message(SET_VRING_CALL, 0, u64(0), 2, 1)
                .build());
        seeds.put("known-bug-region-past-end-of-file", startQueue(negotiate(new Builder(), ProtocolFeature.IMPLEMENTED),
                memTable(GPA, RAM, UVA, 2 * RAM))
                .build());
        seeds.put("refused", negotiate(new Builder(), ProtocolFeature.IMPLEMENTED)
                .message(SET_LOG_BASE, NEED_REPLY, new Payload(16).u64(RAM).u64(0).array(), 1, 1)
                .message(SEND_RARP, NEED_REPLY, new byte[6])
                .message(VRING_KICK, NEED_REPLY, state(0, 0))
                .message(RESET_OWNER, 0, new byte[0])
                .build());
        return seeds;
    }

    private static Builder negotiate(Builder b, long protocolFeatures) {
        long features = FuzzDevice.FEATURES | ProtocolFeature.bit(ProtocolFeature.VHOST_USER_F_PROTOCOL_FEATURES);
        return b.message(GET_FEATURES, 0, new byte[0])
                .message(SET_FEATURES, 0, u64(features))
                .message(GET_PROTOCOL_FEATURES, 0, new byte[0])
                .message(SET_PROTOCOL_FEATURES, 0, u64(protocolFeatures))
                .message(SET_OWNER, NEED_REPLY, new byte[0])
                .message(GET_QUEUE_NUM, 0, new byte[0]);
    }

    private static Builder startQueue(Builder b) {
        return startQueue(b, memTable(GPA, RAM, UVA, 0));
    }

    private static Builder startQueue(Builder b, byte[] memTable) {
        return b.message(SET_MEM_TABLE, NEED_REPLY, memTable, 1, 1)
                .message(SET_VRING_NUM, NEED_REPLY, state(0, QUEUE_SIZE))
                .message(SET_VRING_BASE, NEED_REPLY, state(0, 0))
                .message(SET_VRING_ADDR, NEED_REPLY, vringAddr(0, DESC, USED, AVAIL))
                .message(SET_VRING_CALL, NEED_REPLY, u64(0), 1, 0)
                .message(SET_VRING_KICK, NEED_REPLY, u64(0), 1, 0)
                .message(SET_VRING_ENABLE, NEED_REPLY, state(0, 1));
    }

    /** Without VHOST_USER_F_PROTOCOL_FEATURES rings start enabled: the kick starts the queue. */
    private static Builder startQueueLegacy() {
        return new Builder()
                .message(GET_FEATURES, 0, new byte[0])
                .message(SET_FEATURES, 0, u64(FuzzDevice.FEATURES))
                .message(SET_OWNER, 0, new byte[0])
                .message(SET_MEM_TABLE, 0, memTable(GPA, RAM, UVA, 0), 1, 1)
                .message(SET_VRING_NUM, 0, state(1, FuzzDevice.MAX_QUEUE_SIZE))
                .message(SET_VRING_ADDR, 0, vringAddr(1, DESC, USED + 0x1000, AVAIL))
                .message(SET_VRING_KICK, 0, u64(1 | 0x100), 0, 0)
                .message(GET_VRING_BASE, 0, state(1, 0));
    }

    /** Messages that change nothing, to give a queue worker time to run. */
    private static Builder idle(Builder b, int count) {
        for (int i = 0; i < count; i++) {
            b.message(GET_QUEUE_NUM, 0, new byte[0]);
        }
        return b;
    }

    private static byte[] u64(long v) {
        return new Payload(8).u64(v).array();
    }

    private static byte[] state(int index, int num) {
        return new Payload(8).u32(index).u32(num).array();
    }

    private static byte[] vringAddr(int index, long desc, long used, long avail) {
        return new Payload(40).u32(index).u32(0).u64(desc).u64(used).u64(avail).u64(0).array();
    }

    private static byte[] memTable(long gpa, long size, long uva, long offset) {
        return new Payload(8 + 32).u32(1).u32(0).u64(gpa).u64(size).u64(uva).u64(offset).array();
    }

    private static byte[] singleRegion(long gpa, long size, long uva, long offset) {
        return new Payload(40).u64(0).u64(gpa).u64(size).u64(uva).u64(offset).array();
    }

    private static byte[] config(int offset, byte[] data) {
        return new Payload(12 + data.length).u32(offset).u32(data.length).u32(0).bytes(data).array();
    }

    private static byte[] inflight(long mmapSize, long mmapOffset, int queues, int queueSize) {
        return new Payload(24).u64(mmapSize).u64(mmapOffset).u16(queues).u16(queueSize).u32(0).array();
    }
}
