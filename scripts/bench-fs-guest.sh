#!/usr/bin/env bash
# fio inside a QEMU guest on a virtio-fs mount, side by side: the share served by vhostj fs,
# then by the C virtiofsd (/usr/lib/qemu/virtiofsd) with its default thread pool and with
# --thread-pool-size=0, one run, same files.
#   scripts/bench-fs-guest.sh [--runtime S] [--files N] [--vhostj-args "ARGS"] [--vhostj-only] [--out FILE.md]
# Per backend, cache never on both sides: fio psync --direct=1 4k randread/randwrite and 128k
# read/write on a 64 MiB file, then metadata from the guest's shell (N creates, N stats, N
# unlinks of empty files). The guest is software-emulated (TCG, no KVM here): its CPU bounds
# every number, so the ratios say more than the absolute values.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
runtime=5; out=; files=2000; vhostj_args=; peers=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runtime) runtime=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --vhostj-args) vhostj_args=$2; shift 2 ;;
    --vhostj-only) peers=; shift ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-fs-guest: unknown option $1" >&2; exit 2 ;;
  esac
done
"$ROOT/scripts/install-test-deps.sh" qemu-system-common
guest=$("$ROOT/scripts/guest/prepare.sh")
C=/usr/lib/qemu/virtiofsd
[[ -x $C ]] || { echo "bench-fs-guest: $C is not installed" >&2; exit 1; }
"$ROOT/bin/vhostj" --help >/dev/null   # build once, before any timing
export VHOSTJ_NO_BUILD=1

work=$(mktemp -d "${TMPDIR:-/tmp}/vhostj-bench-fs-guest.XXXXXX")
pid=
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/rd"
cat >"$work/rd/test.sh" <<GUEST
mkdir -p /mnt/fs
mount -t virtiofs benchfs /mnt/fs
for job in "randread 4k" "randwrite 4k" "read 128k" "write 128k"; do
  set -- \$job
  r=\$(fio --name=g --filename=/mnt/fs/bench.dat --rw=\$1 --bs=\$2 --ioengine=psync --direct=1 \
      --runtime=$runtime --ramp_time=1 --time_based --size=64M --minimal 2>&1)
  echo "FIO \$1 \$2 1 \$r"
done
now() { cut -d' ' -f1 /proc/uptime; }
mkdir /mnt/fs/meta && cd /mnt/fs/meta
t0=\$(now); i=0; while [ \$i -lt $files ]; do : > f\$i; i=\$((i + 1)); done
t1=\$(now); i=0; while [ \$i -lt $files ]; do [ -f f\$i ]; i=\$((i + 1)); done
t2=\$(now); rm -f /mnt/fs/meta/*
t3=\$(now)
echo "META create \$t0 \$t1"
echo "META stat \$t1 \$t2"
echo "META unlink \$t2 \$t3"
cd /
umount /mnt/fs
GUEST
(cd "$work/rd" && echo test.sh | cpio -o -H newc --quiet | gzip -1) >"$work/test.cpio.gz"
cat "$guest/base.cpio.gz" "$work/test.cpio.gz" >"$work/initrd"

wait_socket() {
  for _ in $(seq 400); do [[ -S "$1" ]] && return 0; sleep 0.05; done
  echo "bench-fs-guest: no socket at $1: $(cat "$2")" >&2; exit 1
}
fresh_share() { # name: a share with the same 64 MiB file for every backend
  rm -rf "$work/shared"
  mkdir "$work/shared"
  head -c 64M "$work/seed" >"$work/shared/bench.dat"
  sync
}
run_guest() { # name socket
  local console="$work/$1.console"
  timeout 900 qemu-system-x86_64 -accel tcg -m 1G -smp 1 \
    -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \
    -kernel "$guest/vmlinuz" -initrd "$work/initrd" -append "console=ttyS0 quiet panic=-1" \
    -nographic -no-reboot -monitor none \
    -chardev socket,id=c0,path="$2" -device vhost-user-fs-pci,chardev=c0,tag=benchfs \
    >"$console" 2>&1 || true
  grep '^FIO ' "$console" | tr -d '\r' | sed "s/^FIO /FIO $1 /" >>"$work/results"
  grep '^META ' "$console" | tr -d '\r' | while read -r _ what t0 t1; do
    echo "META $1 $what $(python3 -c "print(f'{$files / max($t1 - $t0, 0.01):.0f}')")" >>"$work/results"
  done
  grep -q VHOSTJ-GUEST-EXIT "$console" || { echo "bench-fs-guest: the $1 guest did not finish:" >&2; tail -20 "$console" >&2; }
}

head -c 64M /dev/urandom >"$work/seed"
fresh_share
sock="$work/vhostj.sock"
# shellcheck disable=SC2086
"$ROOT/bin/vhostj" fs --socket-path "$sock" --shared-dir "$work/shared" --cache never $vhostj_args \
  >"$work/vhostj.log" 2>&1 &
pid=$!
wait_socket "$sock" "$work/vhostj.log"
run_guest vhostj "$sock"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

for cfg in ${peers:+"c-virtiofsd|" "c-virtiofsd-pool0|--thread-pool-size=0"}; do
  IFS='|' read -r name extra <<<"$cfg"
  fresh_share
  sock="$work/$name.sock"
  # shellcheck disable=SC2086
  "$C" --socket-path="$sock" -o source="$work/shared" -o cache=none $extra >"$work/$name.log" 2>&1 &
  pid=$!
  wait_socket "$sock" "$work/$name.log"
  run_guest "$name" "$sock"
  kill "$pid" 2>/dev/null || true   # it exits by itself when its one guest has gone
  wait "$pid" 2>/dev/null || true; pid=
done

table=$(python3 "$ROOT/scripts/lib/fio-table.py" "$work/results" "C virtiofsd")
echo "$table"
[[ -n "$out" ]] && echo "$table" >"$out"
exit 0
