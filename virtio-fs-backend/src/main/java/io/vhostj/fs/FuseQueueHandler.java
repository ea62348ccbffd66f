package io.vhostj.fs;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.sys.Errno;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;

/**
 * Serves FUSE requests on one virtio-fs queue. Every request with room for a reply gets one:
 * its result, or an error (EINVAL for a malformed request, EIO before INIT, ENOSYS for what is
 * not implemented). FORGET and BATCH_FORGET get none, as the protocol says.
 *
 * <p>Work in progress (issue 3): INIT and DESTROY are implemented; the passthrough file system
 * operations come next.
 */
final class FuseQueueHandler implements QueueHandler {
    private static final Logger LOG = LoggerFactory.getLogger(FuseQueueHandler.class);
    /** Largest READ/WRITE payload we announce: 1 MiB, in 4 KiB pages. */
    static final int MAX_WRITE = 1 << 20;
    static final int MAX_PAGES = MAX_WRITE / 4096;
    /** FUSE_INIT flags we offer. */
    static final int FUSE_BIG_WRITES = 1 << 5;
    static final int FUSE_MAX_PAGES = 1 << 22;
    static final int OFFERED_FLAGS = FUSE_BIG_WRITES | FUSE_MAX_PAGES;

    private final FsSession session;
    private final FuseRequest request = new FuseRequest();
    private final long reply = Native.allocate(Fuse.OUT_HEADER_SIZE + Fuse.INIT_OUT_SIZE);
    private long malformed;

    FuseQueueHandler(FsSession session) {
        this.session = session;
    }

    @Override
    public int handle(DescriptorChain chain) throws ChainException {
        if (!request.parse(chain)) {
            if (!request.canReply()) {
                throw new ChainException("FUSE request without room for a reply header");
            }
            if (++malformed <= 10 || malformed % 1000 == 0) {
                LOG.warn("malformed FUSE request ({} so far): opcode {}, len {}, {} readable bytes", malformed,
                        request.opcode(), Integer.toUnsignedString(request.length()), chain.readableBytes());
            }
            return error(Errno.EINVAL);
        }
        int opcode = request.opcode();
        if (Fuse.isOneWay(opcode)) {
            return 0;
        }
        if (opcode == Fuse.INIT) {
            return init();
        }
        if (!session.initialized()) {
            return error(Errno.EIO);
        }
        return switch (opcode) {
            case Fuse.DESTROY -> {
                session.reset();
                yield ok(0);
            }
            default -> error(Errno.ENOSYS);
        };
    }

    /**
     * FUSE_INIT: a major above ours gets our version only, so that the driver retries with 7
     * (as libfuse does); a minor below {@link Fuse#MIN_MINOR} is refused; otherwise the lower
     * minor wins and the flags are those both sides have.
     */
    private int init() throws ChainException {
        int major = request.argInt(Fuse.INIT_IN_MAJOR);
        int minor = request.argInt(Fuse.INIT_IN_MINOR);
        long out = reply + Fuse.OUT_HEADER_SIZE;
        Native.zero(out, Fuse.INIT_OUT_SIZE);
        Native.putInt(out + Fuse.INIT_OUT_MAJOR, Fuse.KERNEL_VERSION);
        Native.putInt(out + Fuse.INIT_OUT_MINOR, Fuse.KERNEL_MINOR_VERSION);
        if (major > Fuse.KERNEL_VERSION) {
            return ok(8); // FUSE_COMPAT_INIT_OUT_SIZE: major and minor only
        }
        if (major < Fuse.KERNEL_VERSION || minor < Fuse.MIN_MINOR) {
            LOG.error("FUSE {}.{} from the guest: vhostj speaks 7.{} down to 7.{}", major, minor,
                    Fuse.KERNEL_MINOR_VERSION, Fuse.MIN_MINOR);
            return error(Errno.EPROTO);
        }
        int agreed = Math.min(minor, Fuse.KERNEL_MINOR_VERSION);
        int flags = request.argInt(Fuse.INIT_IN_FLAGS) & OFFERED_FLAGS;
        Native.putInt(out + Fuse.INIT_OUT_MINOR, agreed);
        Native.putInt(out + Fuse.INIT_OUT_MAX_READAHEAD, request.argInt(Fuse.INIT_IN_MAX_READAHEAD));
        Native.putInt(out + Fuse.INIT_OUT_FLAGS, flags);
        Native.putShort(out + Fuse.INIT_OUT_MAX_BACKGROUND, (short) 64);
        Native.putShort(out + Fuse.INIT_OUT_CONGESTION_THRESHOLD, (short) 48);
        Native.putInt(out + Fuse.INIT_OUT_MAX_WRITE, MAX_WRITE);
        Native.putInt(out + Fuse.INIT_OUT_TIME_GRAN, 1);
        Native.putShort(out + Fuse.INIT_OUT_MAX_PAGES, (short) MAX_PAGES);
        session.initialized(agreed);
        LOG.info("FUSE session 7.{} (guest 7.{}), flags 0x{}", agreed, minor, Integer.toHexString(flags));
        return ok(Fuse.INIT_OUT_SIZE);
    }

    /** Sends the out-header and {@code payload} bytes prepared after it in {@link #reply}. */
    private int ok(int payload) throws ChainException {
        return send(0, payload);
    }

    private int error(int errno) throws ChainException {
        return send(-errno, 0);
    }

    private int send(int error, int payload) throws ChainException {
        DescriptorChain chain = request.chain();
        int length = (int) Math.min(Fuse.OUT_HEADER_SIZE + payload, chain.writableBytes());
        Native.putInt(reply + Fuse.OUT_LEN, length);
        Native.putInt(reply + Fuse.OUT_ERROR, error);
        Native.putLong(reply + Fuse.OUT_UNIQUE, request.unique());
        chain.writeToChain(0, reply, length);
        return length;
    }

    @Override
    public void close() {
        request.close();
        Native.free(reply);
    }
}
