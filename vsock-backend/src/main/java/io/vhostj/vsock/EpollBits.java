package io.vhostj.vsock;

/**
 * epoll event bits (sys/epoll.h) for the handles this package registers on netty's event loop
 * ({@link FdEnd}, {@link HybridListener}); netty's EpollIoOps takes them as a plain mask.
 */
final class EpollBits {
    static final int EPOLLIN = 0x1;
    static final int EPOLLOUT = 0x4;
    static final int EPOLLERR = 0x8;
    static final int EPOLLHUP = 0x10;
    static final int EPOLLRDHUP = 0x2000;
    static final int EPOLLET = 1 << 31;

    private EpollBits() {
    }
}
