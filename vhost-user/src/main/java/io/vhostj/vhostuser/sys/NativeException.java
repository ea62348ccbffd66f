package io.vhostj.vhostuser.sys;

import java.io.IOException;

/** A failed system call: names the call and carries errno, as netty's {@code Errors} does. */
public final class NativeException extends IOException {
    private final String syscall;
    private final int errno;

    public NativeException(String syscall, int errno) {
        super(syscall + " failed: " + Errno.describe(errno));
        this.syscall = syscall;
        this.errno = errno;
    }

    public NativeException(String syscall, String detail) {
        super(syscall + " failed: " + detail);
        this.syscall = syscall;
        this.errno = 0;
    }

    public String syscall() {
        return syscall;
    }

    public int errno() {
        return errno;
    }
}
