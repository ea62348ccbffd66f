package io.vhostj.tests.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.file.Path;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.vhostj.tests.BackendProcess;

/**
 * A real QEMU guest on {@code bin/vhostj blk}: ext4 made, written, checked and trimmed in the
 * guest; fio verifies random writes at QD 16; a read-only export refuses writes; two queues work.
 * One boot for all of it (TCG boots are the expensive part).
 */
@Tag("e2e")
class GuestBlkIT {
    @TempDir
    Path dir;

    private Path disk(String name, long size) throws Exception {
        Path p = dir.resolve(name);
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
        }
        return p;
    }

    @Test
    void shouldServeAGuestFilesystemFioAndAReadOnlyDisk() throws Exception {
        Path rw = disk("rw.img", 256 << 20);
        Path ro = disk("ro.img", 16 << 20);
        Path rwSock = dir.resolve("rw.sock");
        Path roSock = dir.resolve("ro.sock");
        String script = String.join("\n",
                "echo \"queues: $(ls /sys/block/vda/mq | wc -l)\"",
                "mkfs.ext4 -q -F /dev/vda",
                "mount -t ext4 /dev/vda /mnt",
                "dd if=/dev/urandom of=/mnt/data bs=1M count=8 2>/dev/null",
                "for i in $(seq 1 200); do echo file $i > /mnt/small.$i; done",
                "sha256sum /mnt/data /mnt/small.17 > /tmp/sums",
                "umount /mnt",
                "e2fsck -fn /dev/vda",
                "echo 3 > /proc/sys/vm/drop_caches",
                "mount -t ext4 /dev/vda /mnt",
                "sha256sum -c /tmp/sums",
                "rm /mnt/data",
                "fstrim -v /mnt",
                "umount /mnt",
                "fio --name=verify --filename=/dev/vda --rw=randwrite --bs=4k --iodepth=16 --ioengine=libaio"
                        + " --direct=1 --size=16M --offset=64M --verify=crc32c --do_verify=1 --output-format=terse"
                        + " --minimal > /tmp/fio.out || { cat /tmp/fio.out; exit 1; }",
                "echo fio-verify-ok",
                // the driver turns the device's cache off (CONFIG_WCE): writes must be durable on completion
                // (virtio_blk's cache_type writes the config byte; queue/write_cache would not tell the device)
                "echo 'write through' > /sys/block/vda/cache_type",
                "echo \"cache: $(cat /sys/block/vda/cache_type) / $(cat /sys/block/vda/queue/write_cache)\"",
                "fio --name=wt --filename=/dev/vda --rw=randwrite --bs=4k --iodepth=16 --ioengine=libaio"
                        + " --direct=1 --size=4M --offset=96M --verify=crc32c --do_verify=1 --output-format=terse"
                        + " --minimal > /tmp/fio.out || { cat /tmp/fio.out; exit 1; }",
                "echo fio-writethrough-ok",
                "if dd if=/dev/zero of=/dev/vdb bs=4k count=1 oflag=direct 2>/dev/null; then echo ro-write-accepted; exit 1; fi",
                "echo ro-write-refused",
                "dd if=/dev/vdb of=/dev/null bs=4k count=16 iflag=direct 2>/dev/null && echo ro-read-ok",
                "");
        try (BackendProcess rwBackend = BackendProcess.start(rwSock, dir.resolve("rw.log"), "blk", "--socket-path",
                rwSock.toString(), "--path", rw.toString(), "--num-queues", "2", "--cpu-affinity", "0-1");
                BackendProcess roBackend = BackendProcess.start(roSock, dir.resolve("ro.log"), "blk", "--socket-path",
                        roSock.toString(), "--path", ro.toString(), "--read-only")) {
            long allocatedBefore = allocated(rw);
            GuestVm.Result r = new GuestVm()
                    .chardevSocket("c0", rwSock).device("vhost-user-blk-pci,chardev=c0,num-queues=2")
                    .chardevSocket("c1", roSock).device("vhost-user-blk-pci,chardev=c1,num-queues=1")
                    .run(dir, script, 300);
            assertTrue(r.ok(), "guest script failed:\n" + r.console() + "\n--- backend log:\n" + rwBackend.log());
            String c = r.console();
            assertTrue(c.contains("queues: 2"), "two queues in the guest:\n" + c);
            assertTrue(c.contains("/mnt/data: OK") && c.contains("/mnt/small.17: OK"), c);
            assertTrue(c.contains("bytes trimmed"), c);
            assertTrue(c.contains("fio-verify-ok"), c);
            assertTrue(c.contains("cache: write through / write through") && c.contains("fio-writethrough-ok"), c);
            assertTrue(rwBackend.log().contains("switched the cache to writethrough"), rwBackend.log());
            assertTrue(rwBackend.log().contains("on CPU 0") && rwBackend.log().contains("on CPU 1"),
                    "--cpu-affinity pinned the two queues:\n" + rwBackend.log());
            assertTrue(c.contains("ro-write-refused") && c.contains("ro-read-ok"), c);
            assertFalse(c.contains("I/O error") && !c.contains("vdb"), "no I/O error on the rw disk:\n" + c);
            assertTrue(allocated(rw) < 64L << 20, "fstrim punched the deleted file's blocks out of the image: "
                    + allocated(rw) + " bytes allocated (before boot " + allocatedBefore + ")");
            assertEquals(0, rwBackend.terminate(), "SIGTERM exits cleanly:\n" + rwBackend.log());
            assertFalse(rwBackend.log().contains("Exception"), rwBackend.log());
        }
    }

    private static long allocated(Path file) throws Exception {
        Process p = new ProcessBuilder("stat", "-c", "%b %B", file.toString()).start();
        String[] f = new String(p.getInputStream().readAllBytes()).trim().split(" ");
        p.waitFor();
        return Long.parseLong(f[0]) * Long.parseLong(f[1]);
    }
}
