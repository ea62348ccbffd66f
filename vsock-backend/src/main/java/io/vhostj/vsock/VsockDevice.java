package io.vhostj.vsock;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import io.vhostj.vhostuser.device.QueueHandler;
import io.vhostj.vhostuser.device.VirtioDevice;
import io.vhostj.vhostuser.virtq.VirtioFeatures;
import io.vhostj.vhostuser.memory.GuestMemory;
import io.vhostj.vhostuser.protocol.ProtocolFeature;
import io.vhostj.vhostuser.sys.Native;
import io.vhostj.vhostuser.virtq.ChainException;
import io.vhostj.vhostuser.virtq.DescriptorChain;

/**
 * vhost-user-vsock: rx (0), tx (1) and event (2) queues, the guest's CID in config space.
 * Stream and SEQPACKET sockets; the event queue's buffers are kept for a transport reset we never
 * send.
 */
public final class VsockDevice implements VirtioDevice {
    private final VsockMux mux;
    private final int maxQueueSize;

    VsockDevice(VsockMux mux, int maxQueueSize) {
        this.mux = mux;
        this.maxQueueSize = maxQueueSize;
    }

    @Override
    public String name() {
        return "vsock";
    }

    @Override
    public int queueCount() {
        return 3;
    }

    @Override
    public int maxQueueSize() {
        return maxQueueSize;
    }

    @Override
    public long features() {
        return VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_EVENT_IDX)
                | VirtioFeatures.bit(VirtioFeatures.RING_INDIRECT_DESC) | VirtioFeatures.bit(VirtioVsock.F_SEQPACKET);
    }

    @Override
    public void featuresAcked(long features) {
        mux.featuresAcked(VirtioFeatures.has(features, VirtioVsock.F_SEQPACKET));
    }

    @Override
    public long protocolFeatures() {
        return ProtocolFeature.bit(ProtocolFeature.MQ) | ProtocolFeature.bit(ProtocolFeature.REPLY_ACK)
                | ProtocolFeature.bit(ProtocolFeature.CONFIG) | ProtocolFeature.bit(ProtocolFeature.CONFIGURE_MEM_SLOTS)
                | ProtocolFeature.bit(ProtocolFeature.RESET_DEVICE);
    }

    @Override
    public int configSize() {
        return VirtioVsock.CONFIG_SIZE;
    }

    @Override
    public void readConfig(int offset, byte[] dst) {
        byte[] config = ByteBuffer.allocate(VirtioVsock.CONFIG_SIZE).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(VirtioVsock.CFG_GUEST_CID, mux.guestCid()).array();
        System.arraycopy(config, offset, dst, 0, dst.length);
    }

    @Override
    public QueueHandler queueHandler(int index, GuestMemory memory) {
        return switch (index) {
            case VirtioVsock.RX -> new Rx();
            case VirtioVsock.TX -> new Tx();
            default -> new QueueHandler() { // event queue: buffers stay with us until a reset event
                @Override
                public int handle(DescriptorChain chain) {
                    return 0;
                }

                @Override
                public boolean canAccept() {
                    return false;
                }
            };
        };
    }

    @Override
    public void reset() {
        mux.reset();
    }

    /**
     * A queue handler that another thread wakes through {@code wake} (host data for rx, drained
     * replies for tx), with a header buffer of its own.
     */
    private abstract static class Woken implements QueueHandler {
        final long hdr = Native.allocate(VirtioVsock.HDR_SIZE);
        private final Wake wake;

        Woken(Wake wake) {
            this.wake = wake;
        }

        @Override
        public boolean wakesFromOutside() {
            return true;
        }

        @Override
        public int completionFd() {
            return wake.fd();
        }

        @Override
        public int reap(Completion done) {
            wake.clear();
            return 0;
        }

        @Override
        public void close() {
            Native.free(hdr);
        }
    }

    /** Fills the guest's rx buffers when the mux has something; woken by host sockets. */
    private final class Rx extends Woken {
        Rx() {
            super(mux.rxWake());
            mux.guestStarted();
        }

        @Override
        public boolean canAccept() {
            return mux.hasRxWork();
        }

        @Override
        public int handle(DescriptorChain chain) throws ChainException {
            return mux.fillRx(chain, hdr);
        }
    }

    /**
     * Takes the guest's packets off the tx queue: every buffer goes back at once (used length 0).
     * Pauses while too many replies wait for rx buffers, woken when they drain.
     */
    private final class Tx extends Woken {
        Tx() {
            super(mux.txWake());
        }

        @Override
        public boolean canAccept() {
            return mux.txMayGo();
        }

        @Override
        public int handle(DescriptorChain chain) throws ChainException {
            if (chain.readableBytes() < VirtioVsock.HDR_SIZE) {
                throw new ChainException("vsock packet of " + chain.readableBytes() + " bytes has no header");
            }
            chain.readFromChain(0, hdr, VirtioVsock.HDR_SIZE);
            mux.fromGuest(hdr, chain);
            return 0;
        }
    }
}
