#!/usr/bin/env bash
# bin/vhostj demo: a QEMU guest on vhostj's backends, end to end.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  cat <<'USAGE'
Usage: vhostj demo

Boots a small Linux guest (QEMU, software emulation: no KVM needed) whose disk is
served by vhostj's vhost-user-blk backend ('vhostj blk') from a 256 MiB sparse
file, and shows, from inside the guest: the disk, an ext4 filesystem made and
checked on it, a file written and read back after dropping caches, fstrim
returning space to the host file, and a short fio run. Then the host side: the
backend's queue counters and the image's allocated size.
The same guest mounts a host directory exported by 'vhostj fs' (virtio-fs, the
virtiofsd drop-in), reads a file from it and writes one the host then shows; and talks
to the host over vsock through 'vhostj vsock' (hybrid vsock): the host connects to
an echo server in the guest, the guest connects to a listener on the host.

First run: installs qemu-system-x86, busybox-static, fio (Debian packages; needs
root) and downloads a Debian kernel into ~/.cache/vhostj/guest. Takes ~1 minute.
USAGE
  exit 0
fi
[[ $# -eq 0 ]] || { echo "vhostj demo: takes no arguments (try --help)" >&2; exit 2; }

echo "== preparing the guest kernel and initramfs (cached after the first run)"
guest=$("$ROOT/scripts/guest/prepare.sh")
"$ROOT/bin/vhostj" --help >/dev/null   # build the jars now, not under the guest's timer

work=$(mktemp -d "${TMPDIR:-/tmp}/vhostj-demo.XXXXXX")
backend=
fsd=
vsockd=
hostjobs=()
cleanup() {
  [[ -n "$backend" ]] && kill "$backend" 2>/dev/null
  [[ -n "$fsd" ]] && kill "$fsd" 2>/dev/null
  [[ -n "$vsockd" ]] && kill "$vsockd" 2>/dev/null
  for j in "${hostjobs[@]}"; do kill "$j" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

truncate -s 256M "$work/disk.img"
"$ROOT/bin/vhostj" blk --socket-path "$work/blk.sock" --path "$work/disk.img" --serial vhostj-demo --num-queues 2 \
  >"$work/blk.log" 2>&1 &
backend=$!
for _ in $(seq 200); do [[ -S "$work/blk.sock" ]] && break; sleep 0.05; done
[[ -S "$work/blk.sock" ]] || { echo "vhostj demo: the blk backend did not start:" >&2; cat "$work/blk.log" >&2; exit 1; }
echo "== vhostj blk is serving $work/disk.img on $work/blk.sock"

mkdir -p "$work/shared"
echo "hello from the host, through vhostj fs" >"$work/shared/hello.txt"
for i in $(seq 1 100); do echo "$i" >"$work/shared/file-$i"; done
"$ROOT/bin/vhostj" fs --socket-path "$work/fs.sock" --shared-dir "$work/shared" >"$work/fs.log" 2>&1 &
fsd=$!
for _ in $(seq 200); do [[ -S "$work/fs.sock" ]] && break; sleep 0.05; done
[[ -S "$work/fs.sock" ]] || { echo "vhostj demo: the fs backend did not start:" >&2; cat "$work/fs.log" >&2; exit 1; }
echo "== vhostj fs is exporting $work/shared on $work/fs.sock"

"$ROOT/bin/vhostj" vsock --guest-cid 3 --uds-path "$work/vsock.sock" --socket-path "$work/vsock-backend.sock" \
  >"$work/vsock.log" 2>&1 &
vsockd=$!
for _ in $(seq 200); do [[ -S "$work/vsock-backend.sock" ]] && break; sleep 0.05; done
[[ -S "$work/vsock-backend.sock" ]] || { echo "vhostj demo: the vsock backend did not start:" >&2; cat "$work/vsock.log" >&2; exit 1; }
echo "== vhostj vsock gives the guest CID 3; the host side is $work/vsock.sock"
# the host's two ends: a listener the guest reaches as CID 2 port 6000, and a client that
# connects to the guest's echo server on port 5000 once it is up
socat -u UNIX-LISTEN:"$work/vsock.sock_6000" CREATE:"$work/vsock-from-guest.txt" 2>/dev/null &
hostjobs+=($!)
(
  for _ in $(seq 30); do
    printf 'CONNECT 5000\nping from the host, echoed by the guest\n' \
      | socat -t 3 - UNIX-CONNECT:"$work/vsock.sock" >"$work/vsock-echo.txt" 2>/dev/null || true
    grep -q '^OK' "$work/vsock-echo.txt" && exit 0
    sleep 2
  done
) &
hostjobs+=($!)

mkdir -p "$work/rd"
cat >"$work/rd/test.sh" <<'GUEST'
socat VSOCK-LISTEN:5000,reuseaddr,fork EXEC:cat &
echo "-- guest: $(uname -r), disk /dev/vda: $(($(cat /sys/block/vda/size) / 2048)) MiB, serial $(cat /sys/block/vda/serial 2>/dev/null)"
mkfs.ext4 -q -F /dev/vda && echo "-- mkfs.ext4 done"
mount -t ext4 /dev/vda /mnt
dd if=/dev/urandom of=/mnt/hello.bin bs=1M count=16 2>/dev/null
sha256sum /mnt/hello.bin > /tmp/sum
umount /mnt
e2fsck -fn /dev/vda >/dev/null && echo "-- e2fsck: clean"
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 /dev/vda /mnt
sha256sum -c /tmp/sum
rm /mnt/hello.bin
fstrim -v /mnt
umount /mnt
echo "-- fio 4k random read, QD 16, 5 s (under TCG emulation: the guest CPU is the bottleneck)"
fio --name=demo --filename=/dev/vda --rw=randread --bs=4k --iodepth=16 --ioengine=libaio --direct=1 \
    --runtime=5 --time_based --size=128M --output-format=normal 2>/dev/null | grep -E 'IOPS|clat \(usec\).*avg' | head -2
mkdir -p /mnt/host
mount -t virtiofs hostfs /mnt/host && echo "-- virtiofs: mounted the host's directory: $(ls /mnt/host | wc -l) entries"
cat /mnt/host/hello.txt
echo "written by the guest at $(date)" > /mnt/host/from-guest.txt
umount /mnt/host
echo "hello over vsock from the guest (CID 3) to the host (CID 2, port 6000)" | socat - VSOCK-CONNECT:2:6000 \
  && echo "-- vsock: sent a line to the host's port 6000; the echo server on port 5000 served the host meanwhile"
GUEST
(cd "$work/rd" && echo test.sh | cpio -o -H newc --quiet | gzip -1) >"$work/test.cpio.gz"
cat "$guest/base.cpio.gz" "$work/test.cpio.gz" >"$work/initrd"

esc=$(printf '\033')   # the firmware's terminal escapes are noise here
echo "== booting the guest (QEMU TCG, 1 GiB shared memory, vhost-user-blk-pci + vhost-user-fs-pci + vhost-user-vsock-pci)"
timeout 300 qemu-system-x86_64 -accel tcg -m 1G -smp 2 \
  -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \
  -kernel "$guest/vmlinuz" -initrd "$work/initrd" -append "console=ttyS0 quiet panic=-1" \
  -nographic -no-reboot -monitor none \
  -chardev socket,id=c0,path="$work/blk.sock" -device vhost-user-blk-pci,chardev=c0,num-queues=2 \
  -chardev socket,id=c1,path="$work/fs.sock" -device vhost-user-fs-pci,chardev=c1,tag=hostfs \
  -chardev socket,id=c2,path="$work/vsock-backend.sock" -device vhost-user-vsock-pci,chardev=c2 \
  | tr -d '\r' | sed -e "s/${esc}c//g; s/${esc}\[[0-9;?]*[a-zA-Z]//g" | sed -n '/VHOSTJ-GUEST-UP/,/VHOSTJ-GUEST-EXIT/p'

echo "== host side"
grep -E 'queue [01] stopped' "$work/blk.log" | tail -2 | sed 's/.*INFO [^ ]* - /   backend: /'
echo "   image: $(du -h --apparent-size "$work/disk.img" | cut -f1) apparent, $(du -h "$work/disk.img" | cut -f1) allocated after fstrim"
ok=1
if [[ -f "$work/shared/from-guest.txt" ]]; then
  echo "   shared dir: from-guest.txt says: $(cat "$work/shared/from-guest.txt")"
else
  echo "   shared dir: the guest's file did not arrive"; ok=0
fi
if grep -q '^OK' "$work/vsock-echo.txt" 2>/dev/null; then
  echo "   vsock, host -> guest port 5000: $(tr '\n' ' ' <"$work/vsock-echo.txt")"
else
  echo "   vsock, host -> guest port 5000: no answer"; ok=0
fi
if [[ -s "$work/vsock-from-guest.txt" ]]; then
  echo "   vsock, guest -> host port 6000: $(cat "$work/vsock-from-guest.txt")"
else
  echo "   vsock, guest -> host port 6000: nothing arrived"; ok=0
fi
[[ $ok == 1 ]]
