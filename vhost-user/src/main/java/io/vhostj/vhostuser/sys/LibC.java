package io.vhostj.vhostuser.sys;

import jnr.ffi.annotations.SaveError;

/**
 * The libc calls vhostj makes, bound through jnr-ffi. Pointers are passed as raw {@code long}
 * addresses (x86_64 LP64: C {@code long} and pointers are 64-bit) so callers can hand over guest
 * memory or direct buffers without marshalling. Only {@link Native} touches this interface.
 */
@SaveError
public interface LibC {
    int close(int fd);

    long read(int fd, long buf, long count);

    long write(int fd, long buf, long count);

    long pread(int fd, long buf, long count, long offset);

    long pwrite(int fd, long buf, long count, long offset);

    long preadv(int fd, long iov, int iovcnt, long offset);

    long preadv2(int fd, long iov, int iovcnt, long offset, int flags);

    long pwritev(int fd, long iov, int iovcnt, long offset);

    int socket(int domain, int type, int protocol);

    int bind(int fd, long addr, int addrlen);

    int listen(int fd, int backlog);

    int accept4(int fd, long addr, long addrlen, int flags);

    int connect(int fd, long addr, int addrlen);

    int shutdown(int fd, int how);

    long sendmsg(int fd, long msghdr, int flags);

    long recvmsg(int fd, long msghdr, int flags);

    int getsockopt(int fd, int level, int optname, long optval, long optlen);

    int eventfd(int initval, int flags);

    long mmap(long addr, long length, int prot, int flags, int fd, long offset);

    int munmap(long addr, long length);

    int memfd_create(String name, int flags);

    int ftruncate(int fd, long length);

    int fallocate(int fd, int mode, long offset, long len);

    int fdatasync(int fd);

    int open(String path, int flags, int mode);

    int poll(long fds, long nfds, int timeout);

    int fcntl(int fd, int cmd, int arg);

    /** fcntl with a pointer argument (struct flock for the OFD lock commands). */
    int fcntl(int fd, int cmd, long arg);

    int flock(int fd, int operation);

    int name_to_handle_at(int dirfd, long path, long handle, long mountId, int flags);

    int open_by_handle_at(int mountFd, long handle, int flags);

    int unlink(String path);

    int dup(int fd);

    long lseek(int fd, long offset, int whence);

    int fstat(int fd, long statbuf);

    int openat(int dirfd, long path, int flags, int mode);

    int fstatat(int dirfd, long path, long statbuf, int flags);

    int statx(int dirfd, long path, int flags, int mask, long statxbuf);

    int fstatfs(int fd, long statfsbuf);

    int mkdirat(int dirfd, long path, int mode);

    int mknodat(int dirfd, long path, int mode, long dev);

    int unlinkat(int dirfd, long path, int flags);

    int renameat2(int olddirfd, long oldpath, int newdirfd, long newpath, int flags);

    int symlinkat(long target, int newdirfd, long linkpath);

    long readlinkat(int dirfd, long path, long buf, long bufsiz);

    int linkat(int olddirfd, long oldpath, int newdirfd, long newpath, int flags);

    int fchmodat(int dirfd, long path, int mode, int flags);

    int fchownat(int dirfd, long path, int owner, int group, int flags);

    int utimensat(int dirfd, long path, long times, int flags);

    int fsync(int fd);

    int ioctl(int fd, long request, long arg);

    int sched_setaffinity(int pid, long cpusetsize, long mask);

    int getpid();

    int setrlimit(int resource, long rlim);

    long fgetxattr(int fd, long name, long value, long size);

    int fsetxattr(int fd, long name, long value, long size, int flags);

    long flistxattr(int fd, long list, long size);

    int fremovexattr(int fd, long name);

    int faccessat(int dirfd, long path, int mode, int flags);

    int syncfs(int fd);

    long copy_file_range(int fdIn, long offIn, int fdOut, long offOut, long len, int flags);

    int mount(String source, String target, String fstype, long flags, String data);

    int umount2(String target, int flags);

    int chroot(String path);

    int chdir(String path);

    int mkdir(String path, int mode);

    int geteuid();

    int getegid();

    /** A struct group (gr_gid at offset 16), or 0. */
    long getgrnam(String name);

    /** syscall(2), for calls glibc has no wrapper for (io_uring). Unused arguments are 0. */
    long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);
}
