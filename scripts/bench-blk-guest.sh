#!/usr/bin/env bash
# fio inside a QEMU guest, side by side: the guest's /dev/vda served by vhostj blk, then by
# qemu-storage-daemon (aio=io_uring, and aio=io_uring with a polling iothread), same file, one run.
#   scripts/bench-blk-guest.sh [--runtime S] [--direct] [--jobs "rw bs qd[,rw bs qd...]"]
#                              [--vhostj-args "ARGS"] [--out FILE.md]
# Per backend: 4k randread/randwrite at QD 1 and 32, 128k read/write at QD 8 (fio libaio,
# --direct=1 in the guest), then 10 s of an idle guest, over which the backend's CPU is measured.
# The guest is software-emulated (TCG, no KVM here): its CPU, not the backend, bounds IOPS.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
runtime=5; out=; direct=; vhostj_args=
jobs="randread 4k 1,randwrite 4k 1,randread 4k 32,randwrite 4k 32,read 128k 8,write 128k 8"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runtime) runtime=$2; shift 2 ;;
    --direct) direct=1; shift ;;
    --out) out=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --vhostj-args) vhostj_args=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-blk-guest: unknown option $1" >&2; exit 2 ;;
  esac
done
"$ROOT/scripts/install-test-deps.sh" qemu-system-common
guest=$("$ROOT/scripts/guest/prepare.sh")
"$ROOT/bin/vhostj" --help >/dev/null   # build once, before any timing
export VHOSTJ_NO_BUILD=1

work=$(mktemp -d "${TMPDIR:-/tmp}/vhostj-bench-guest.XXXXXX")
pid=
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
img="$work/disk.img"
fallocate -l 1G "$img" 2>/dev/null || truncate -s 1G "$img"
dd if=/dev/urandom of="$img" bs=1M count=1024 conv=notrunc status=none
sync

mkdir -p "$work/rd"
cat >"$work/rd/test.sh" <<GUEST
echo "$jobs" | tr ',' '\n' | while read -r job; do
  set -- \$job
  r=\$(fio --name=g --filename=/dev/vda --rw=\$1 --bs=\$2 --iodepth=\$3 --ioengine=libaio --direct=1 \
      --runtime=$runtime --ramp_time=1 --time_based --size=1G --minimal 2>&1)
  echo "FIO \$1 \$2 \$3 \$r"
done
echo IDLE-BEGIN
sleep 10
echo IDLE-END
sleep 2   # the host polls the console every 0.2 s: let it see IDLE-END before the guest goes
GUEST
(cd "$work/rd" && echo test.sh | cpio -o -H newc --quiet | gzip -1) >"$work/test.cpio.gz"
cat "$guest/base.cpio.gz" "$work/test.cpio.gz" >"$work/initrd"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_socket() {
  for _ in $(seq 400); do [[ -S "$1" ]] && return 0; sleep 0.05; done
  echo "bench-blk-guest: no socket at $1: $(cat "$2")" >&2; exit 1
}
run_guest() { # name socket
  local console="$work/$1.console"
  timeout 900 qemu-system-x86_64 -accel tcg -m 1G -smp 1 \
    -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \
    -kernel "$guest/vmlinuz" -initrd "$work/initrd" -append "console=ttyS0 quiet panic=-1" \
    -nographic -no-reboot -monitor none \
    -chardev socket,id=c0,path="$2" -device vhost-user-blk-pci,chardev=c0,num-queues=1 \
    >"$console" 2>&1 &
  local qemu=$! t0=
  while kill -0 "$qemu" 2>/dev/null; do
    if [[ -z "$t0" ]] && grep -q IDLE-BEGIN "$console"; then t0=$(ticks "$pid"); s0=$(date +%s.%N); fi
    if [[ -n "$t0" ]] && grep -q IDLE-END "$console"; then
      t1=$(ticks "$pid"); s1=$(date +%s.%N)
      echo "IDLE $1 $(python3 -c "print(f'{($t1 - $t0) / ($s1 - $s0):.2f}')")" >>"$work/results"
      break
    fi
    sleep 0.2
  done
  wait "$qemu" || true
  grep '^FIO ' "$console" | tr -d '\r' | sed "s/^FIO /FIO $1 /" >>"$work/results"
}

sock="$work/vhostj.sock"
# shellcheck disable=SC2086
"$ROOT/bin/vhostj" blk --socket-path "$sock" --path "$img" ${direct:+--direct} $vhostj_args >"$work/vhostj.log" 2>&1 &
pid=$!
wait_socket "$sock" "$work/vhostj.log"
run_guest vhostj "$sock"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

for cfg in "qsd-io_uring||" "qsd-iothread-poll|,iothread=io0|--object iothread,id=io0,poll-max-ns=50000"; do
  IFS='|' read -r name exp args <<<"$cfg"
  sock="$work/$name.sock"
  # shellcheck disable=SC2086
  qemu-storage-daemon $args \
    --blockdev "driver=file,node-name=file0,filename=$img,aio=io_uring${direct:+,cache.direct=on}" \
    --export "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=$sock,writable=on$exp" \
    >"$work/$name.log" 2>&1 &
  pid=$!
  wait_socket "$sock" "$work/$name.log"
  run_guest "$name" "$sock"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done

table=$(python3 "$ROOT/scripts/lib/fio-table.py" "$work/results" qsd)
echo "$table"
[[ -n "$out" ]] && echo "$table" >"$out"
exit 0
