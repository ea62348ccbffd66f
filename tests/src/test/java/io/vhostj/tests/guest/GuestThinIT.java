package io.vhostj.tests.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.devmapper.PoolStatus;
import io.vhostj.devmapper.ThinDevice;
import io.vhostj.devmapper.ThinPool;
import io.vhostj.devmapper.ThinVolume;
import io.vhostj.tests.BackendProcess;
import io.vhostj.tests.HostTools;
import io.vhostj.vhostuser.sys.FileIo;
import io.vhostj.vhostuser.sys.Native;

/**
 * A container rootfs the way Kata gets one from containerd's devmapper snapshotter, on the
 * userspace pool: a guest makes ext4 on thin device 1 and writes files; {@code create_snap 2 1};
 * a guest boots on device 2, finds the files, changes some and trims. Device 1 is bit-for-bit what
 * it was, device 2 has the changes (read on the host with debugfs), {@code status} shows the
 * shared blocks, and the trimmed blocks went back to the pool. Everything through
 * {@code bin/vhostj devmapper} and {@code bin/vhostj blk --thin}, as a user runs it.
 */
@Tag("e2e")
class GuestThinIT {
    private static final long DEVICE = 256L << 20;
    private static final Pattern SUMS = Pattern.compile("([0-9a-f]{64})  /mnt/base\\s+([0-9a-f]{64})  /mnt/keep");

    @TempDir
    Path dir;

    @Test
    void shouldSnapshotAGuestFilesystemAndKeepTheOriginIntact() throws Exception {
        HostTools.require("debugfs", "e2fsprogs");
        Path pool = dir.resolve("pool");
        vhostj("devmapper", "create-pool", pool.toString(), "--size", "1G");
        vhostj("devmapper", "create_thin", pool.toString(), "1", "256M");

        String first = boot(pool, 1, String.join("\n",
                "mkfs.ext4 -q -F /dev/vda",
                "mount -t ext4 /dev/vda /mnt",
                "dd if=/dev/urandom of=/mnt/base bs=1M count=8 2>/dev/null",
                "dd if=/dev/urandom of=/mnt/keep bs=1M count=4 2>/dev/null",
                "for i in $(seq 1 100); do echo layer $i > /mnt/f.$i; done",
                "sync",
                "sha256sum /mnt/base /mnt/keep",
                "umount /mnt",
                "echo thin1-done", ""));
        assertTrue(first.contains("thin1-done"), first);
        Matcher m = SUMS.matcher(first);
        assertTrue(m.find(), first);
        String sums = m.group();
        String origin = deviceHash(pool, 1);

        String snap = vhostj("devmapper", "create_snap", pool.toString(), "2", "1");
        assertTrue(snap.contains("created device 2") && snap.contains("snapshot of 1"), snap);

        String second = boot(pool, 2, String.join("\n",
                "mount -t ext4 /dev/vda /mnt",
                "sha256sum /mnt/base /mnt/keep",
                "echo changed > /mnt/f.42",
                "rm /mnt/base",
                "echo new file > /mnt/new",
                "dd if=/dev/urandom of=/mnt/scratch bs=1M count=16 2>/dev/null",
                "sync",
                "rm /mnt/scratch",
                "sync",
                "fstrim -v /mnt",
                "umount /mnt",
                "e2fsck -fn /dev/vda >/dev/null && echo fsck-ok",
                "echo thin2-done", ""));
        assertTrue(second.contains("thin2-done") && second.contains("fsck-ok"), second);
        Matcher m2 = SUMS.matcher(second);
        assertTrue(m2.find() && m2.group().equals(sums), "the snapshot holds the origin's files:\n" + second);
        assertTrue(second.contains("bytes trimmed"), second);

        assertEquals(origin, deviceHash(pool, 1), "device 1 changed while a guest wrote to its snapshot");
        Path image1 = export(pool, 1);
        Path image2 = export(pool, 2);
        assertEquals(0, run("e2fsck", "-fn", image1.toString()).exitCode, "device 1's ext4 is clean");
        assertEquals("layer 42\n", debugfsCat(image1, "/f.42"));
        assertEquals("changed\n", debugfsCat(image2, "/f.42"));
        assertEquals("new file\n", debugfsCat(image2, "/new"));
        String root1 = run("debugfs", "-R", "ls /", image1.toString()).output;
        String root2 = run("debugfs", "-R", "ls /", image2.toString()).output;
        assertTrue(root1.matches("(?s).*\\) base\\s.*") && !root1.contains(") new"), "device 1 as it was: " + root1);
        assertTrue(!root2.matches("(?s).*\\) base\\s.*") && root2.contains(") new"), "device 2 changed: " + root2);

        String status = vhostj("devmapper", "status", pool.toString());
        assertTrue(status.contains("shared"), status);
        ThinDevice one;
        ThinDevice two;
        PoolStatus st;
        try (ThinPool p = ThinPool.open(pool)) {
            st = p.status();
            one = st.devices().get(0);
            two = st.devices().get(1);
        }
        long fileBlocks = (16L << 20) / st.blockSize();
        assertTrue(st.sharedBlocks() >= (4L << 20) / st.blockSize(),
                "device 2 still shares the 4 MiB file it did not touch with device 1: " + status);
        assertTrue(two.mappedBlocks() < one.mappedBlocks(),
                "removing the 8 MiB file and trimming unmapped its blocks from device 2: " + status);
        assertTrue(st.usedBlocks() < one.mappedBlocks() + fileBlocks / 2,
                "the trimmed 16 MiB scratch file went back to the pool: " + status);
        assertEquals(0, run(HostTools.ROOT.resolve("bin/vhostj").toString(), "devmapper", "check", pool.toString())
                .exitCode);
    }

    /** Boots a guest on thin device {@code id} served by its own {@code vhostj blk --thin}, returns the console. */
    private String boot(Path pool, int id, String script) throws Exception {
        Path sock = dir.resolve("thin" + id + ".sock");
        try (BackendProcess blk = BackendProcess.start(sock, dir.resolve("blk" + id + ".log"), "blk", "--socket-path",
                sock.toString(), "--thin", pool + ":" + id, "--num-queues", "2")) {
            GuestVm.Result r = new GuestVm().chardevSocket("c0", sock).device("vhost-user-blk-pci,chardev=c0,num-queues=2")
                    .run(dir, script, 400);
            assertTrue(r.ok(), "guest script failed:\n" + r.console() + "\n--- backend log:\n" + blk.log());
            assertEquals(0, blk.terminate(), "SIGTERM closes the pool cleanly:\n" + blk.log());
            assertFalse(blk.log().contains("Exception"), blk.log());
            return r.console();
        }
    }

    private static String deviceHash(Path pool, int id) throws Exception {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        readDevice(pool, id, chunk -> sha.update(chunk));
        return HexFormat.of().formatHex(sha.digest());
    }

    private Path export(Path pool, int id) throws Exception {
        Path out = dir.resolve("device" + id + ".img");
        try (var ch = java.nio.channels.FileChannel.open(out, java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.WRITE)) {
            readDevice(pool, id, chunk -> {
                try {
                    ch.write(java.nio.ByteBuffer.wrap(chunk));
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        }
        return out;
    }

    private static void readDevice(Path pool, int id, java.util.function.Consumer<byte[]> sink) throws Exception {
        int chunk = 1 << 20;
        long buf = Native.allocate(chunk);
        long iov = Native.allocate(FileIo.IOVEC_SIZE);
        byte[] bytes = new byte[chunk];
        try (ThinVolume v = ThinVolume.open(pool, id, true)) {
            FileIo.putIovec(iov, 0, buf, chunk);
            for (long at = 0; at < v.size(); at += chunk) {
                assertTrue(v.read(iov, 1, at, chunk));
                Native.copyToArray(buf, bytes, 0, chunk);
                sink.accept(bytes);
            }
        } finally {
            Native.free(buf);
            Native.free(iov);
        }
    }

    private static String debugfsCat(Path image, String file) throws Exception {
        return run("debugfs", "-R", "cat " + file, image.toString()).output;
    }

    private record Ran(int exitCode, String output) {
    }

    private static Ran run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        return new Ran(p.exitValue(), out);
    }

    private String vhostj(String... args) throws Exception {
        Path log = Files.createTempFile(dir, "vhostj", ".log");
        Process p = BackendProcess.launchVhostj(log, args);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        String out = Files.readString(log);
        assertEquals(0, p.exitValue(), "vhostj " + List.of(args) + ":\n" + out);
        return out;
    }
}
