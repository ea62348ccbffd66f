package io.vhostj.vhostuser.sys;

import java.nio.ByteOrder;

import jnr.ffi.LastError;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;
import org.agrona.UnsafeApi;

/**
 * The one door to native code. Holds the bound libc, turns failed calls into
 * {@link NativeException}s, and owns the raw-memory helpers the rest of the module uses.
 */
public final class Native {
    public static final LibC LIBC;
    private static final Runtime RUNTIME;

    static {
        // virtio is little-endian on the wire and vhostj reads rings with plain loads.
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("vhostj needs a little-endian host");
        }
        // jnr-ffi 2.2.17's x86-64 assembly stubs pass a garbage sixth argument (mmap's offset came
        // through unaligned, glibc answered EINVAL without a syscall); the bytecode invoker is right.
        if (System.getProperty("jnr.ffi.x86asm.enabled") == null) {
            System.setProperty("jnr.ffi.x86asm.enabled", "false");
        }
        LIBC = LibraryLoader.create(LibC.class).load("c");
        RUNTIME = Runtime.getRuntime(LIBC);
    }

    private Native() {
    }

    public static int errno() {
        return LastError.getLastError(RUNTIME);
    }

    /** Checks an int-returning call: returns its value or throws with errno. */
    public static int check(String syscall, int rc) throws NativeException {
        if (rc < 0) {
            throw new NativeException(syscall, errno());
        }
        return rc;
    }

    public static long check(String syscall, long rc) throws NativeException {
        if (rc < 0) {
            throw new NativeException(syscall, errno());
        }
        return rc;
    }

    // ---- raw memory, absolute addresses -------------------------------------------------------

    public static long allocate(long size) {
        long address = UnsafeApi.allocateMemory(size);
        UnsafeApi.setMemory(address, size, (byte) 0);
        return address;
    }

    public static void free(long address) {
        UnsafeApi.freeMemory(address);
    }

    public static byte getByte(long address) {
        return UnsafeApi.getByte(null, address);
    }

    public static void putByte(long address, byte value) {
        UnsafeApi.putByte(null, address, value);
    }

    public static short getShort(long address) {
        return UnsafeApi.getShort(null, address);
    }

    public static void putShort(long address, short value) {
        UnsafeApi.putShort(null, address, value);
    }

    public static int getInt(long address) {
        return UnsafeApi.getInt(null, address);
    }

    public static void putInt(long address, int value) {
        UnsafeApi.putInt(null, address, value);
    }

    public static long getLong(long address) {
        return UnsafeApi.getLong(null, address);
    }

    public static void putLong(long address, long value) {
        UnsafeApi.putLong(null, address, value);
    }

    /** Ring index reads that must observe the other side's writes (virtio spec 2.7.13). */
    public static short getShortAcquire(long address) {
        return UnsafeApi.getShortAcquire(null, address);
    }

    public static void putShortRelease(long address, short value) {
        UnsafeApi.putShortRelease(null, address, value);
    }

    public static short getShortVolatile(long address) {
        return UnsafeApi.getShortVolatile(null, address);
    }

    public static void putShortVolatile(long address, short value) {
        UnsafeApi.putShortVolatile(null, address, value);
    }

    public static int getIntAcquire(long address) {
        return UnsafeApi.getIntAcquire(null, address);
    }

    public static void putIntRelease(long address, int value) {
        UnsafeApi.putIntRelease(null, address, value);
    }

    /** Store-load barrier: publish a flag/event index, then re-read the other side's index. */
    public static void fullFence() {
        UnsafeApi.fullFence();
    }

    public static void copy(long from, long to, long length) {
        UnsafeApi.copyMemory(from, to, length);
    }

    public static void copyToArray(long from, byte[] to, int offset, int length) {
        UnsafeApi.copyMemory(null, from, to, UnsafeApi.arrayBaseOffset(byte[].class) + offset, length);
    }

    public static void copyFromArray(byte[] from, int offset, long to, int length) {
        UnsafeApi.copyMemory(from, UnsafeApi.arrayBaseOffset(byte[].class) + offset, null, to, length);
    }

    public static void zero(long address, long length) {
        UnsafeApi.setMemory(address, length, (byte) 0);
    }

    /** Per-thread native scratch memory for call arguments (sockaddr, msghdr, pollfd, iovecs). */
    static long scratch() {
        return SCRATCH.get().address;
    }

    static final int SCRATCH_SIZE = 4096;

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static final class Scratch {
        final long address = allocate(SCRATCH_SIZE);
        // Freed never: one page per thread that ever made a call, for the life of the process.
    }
}
