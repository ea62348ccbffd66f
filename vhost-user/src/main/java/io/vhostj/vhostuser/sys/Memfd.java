package io.vhostj.vhostuser.sys;

/** Anonymous shareable memory: guest RAM on the frontend side, inflight regions on the backend. */
public final class Memfd {
    private static final int MFD_CLOEXEC = 1;

    private Memfd() {
    }

    public static Fd create(String name, long size) throws NativeException {
        Fd fd = new Fd(Native.check("memfd_create", Native.LIBC.memfd_create(name, MFD_CLOEXEC)));
        try {
            Native.check("ftruncate", Native.LIBC.ftruncate(fd.fd(), size));
            return fd;
        } catch (NativeException e) {
            fd.close();
            throw e;
        }
    }
}
