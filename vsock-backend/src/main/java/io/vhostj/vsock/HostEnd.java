package io.vhostj.vsock;

import java.nio.charset.StandardCharsets;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.epoll.EpollDomainSocketChannel;

/**
 * The host side of one connection: a Unix socket netty serves ({@link ChannelEnd}), or a
 * descriptor a host program passed with {@code passfd} ({@link FdEnd}). Every method may be
 * called from any thread; the end reports its data and its end to the mux
 * ({@link VsockMux#fromHost}, {@link VsockMux#hostDone}).
 */
interface HostEnd {
    /** Writes the guest's bytes; {@code done} runs once they are written, or dropped because the end failed. */
    void write(ByteBuf data, Runnable done);

    /** Starts or pauses reading host bytes for the guest (idempotent). */
    void reading(boolean on);

    /** The guest sends no more: the end's output is shut once what was written went out. */
    void shutdownOutput();

    /** The guest accepted the host's connection: {@code OK <hostPort>\n} to whoever asked. */
    void accepted(int hostPort);

    /** Closes once what was written went out. */
    void closeAfterWrites();

    /** Closes now, dropping what waits. */
    void abort();

    /** A netty channel: the hybrid socket after CONNECT, or a connection to {@code <uds-path>_<port>}. */
    final class ChannelEnd implements HostEnd {
        private final Channel channel;

        ChannelEnd(Channel channel) {
            this.channel = channel;
        }

        @Override
        public void write(ByteBuf data, Runnable done) {
            channel.writeAndFlush(data).addListener(f -> done.run());
        }

        @Override
        public void reading(boolean on) {
            if (channel.config().isAutoRead() != on) {
                channel.config().setAutoRead(on);
            }
        }

        @Override
        public void shutdownOutput() {
            if (channel instanceof EpollDomainSocketChannel ch) {
                ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> ch.shutdownOutput());
            }
        }

        @Override
        public void accepted(int hostPort) {
            channel.writeAndFlush(Unpooled.copiedBuffer("OK " + hostPort + "\n", StandardCharsets.US_ASCII));
        }

        @Override
        public void closeAfterWrites() {
            channel.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        }

        @Override
        public void abort() {
            channel.close();
        }
    }
}
