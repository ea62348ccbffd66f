#!/usr/bin/env bash
# A thin device against a raw file through the same vhost-user-blk backend, and against the peer
# closest to a thin volume (qemu-storage-daemon on a qcow2 image), side by side in one run,
# through vhostj's frontend ('vhostj bench blk'); then first-write (provisioning) throughput on
# fresh thin devices, and the pool's own costs ('vhostj bench thin': snapshot time, CoW).
#   scripts/bench-thin.sh [--runtime S] [--size 1G] [--out FILE.md]
# All three hold the same random data; buffered (page cache) on every side.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
runtime=5; size=1G; out=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runtime) runtime=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-thin: unknown option $1" >&2; exit 2 ;;
  esac
done
"$ROOT/scripts/install-test-deps.sh" qemu-system-common qemu-utils
# shellcheck source=lib/bench.sh
. "$ROOT/scripts/lib/bench.sh"
bench_init bench-thin
vhostj() { "$ROOT/bin/vhostj" "$@"; }
vhostj --help >/dev/null               # build once, before any timing
export VHOSTJ_NO_BUILD=1

img="$work/disk.img"
truncate -s "$size" "$img"
dd if=/dev/urandom of="$img" bs=1M count=$(( $(stat -c %s "$img") / 1048576 )) conv=notrunc status=none
qemu-img convert -O qcow2 "$img" "$work/disk.qcow2"
pool="$work/pool"
vhostj devmapper create-pool "$pool" --size $(( 4 * $(stat -c %s "$img") )) >&2
vhostj devmapper create_thin "$pool" 1 "$(stat -c %s "$img")" >&2
vhostj devmapper import "$pool" 1 "$img" >&2
for id in 2 3; do vhostj devmapper create_thin "$pool" "$id" "$(stat -c %s "$img")" >&2; done
sync
# Each file was filled with different write sizes, and the page cache keeps the folio sizes
# those made (dd's 1 MiB writes: large folios, where a 4 KiB random write dirties far more than
# 4 KiB and is throttled). Start every file alike: out of the cache, then read back whole.
if [[ -w /proc/sys/vm/drop_caches ]]; then
  echo 3 > /proc/sys/vm/drop_caches
else
  echo "bench-thin: WARNING: cannot drop the page cache (not root): the files start unlike" >&2
fi
cat "$img" "$work/disk.qcow2" "$pool/data" > /dev/null

start() { # name, command...: a backend listening on $work/NAME.sock
  local name=$1; shift
  sync   # the previous backend's dirty pages are written back now, not under this one
  sock="$work/$name.sock"
  rm -f "$sock"
  "$@" >"$work/$name.log" 2>&1 &   # a program, not a shell function: $pid must be the backend itself
  pid=$!
  wait_socket "$sock" "$work/$name.log"
}
qsd() { # name, blockdev spec
  start "$1" qemu-storage-daemon --blockdev "$2" \
    --export "type=vhost-user-blk,id=exp0,node-name=top,addr.type=unix,addr.path=$work/$1.sock,writable=on"
}

results="$work/results.jsonl"
jobs=("randread 4k 32" "randwrite 4k 32" "read 128k 8" "write 128k 8" "randread 4k 1" "randwrite 4k 1")
start vhostj-thin "$ROOT/bin/vhostj" blk --socket-path "$work/vhostj-thin.sock" --thin "$pool:1"
run_blk_jobs vhostj-thin "$sock"; stop
start vhostj-raw "$ROOT/bin/vhostj" blk --socket-path "$work/vhostj-raw.sock" --path "$img"
run_blk_jobs vhostj-raw "$sock"; stop
start vhostj-raw-sync "$ROOT/bin/vhostj" blk --socket-path "$work/vhostj-raw-sync.sock" --path "$img" --aio sync
run_blk_jobs vhostj-raw-sync "$sock"; stop
qsd qsd-qcow2 "driver=qcow2,node-name=top,file.driver=file,file.filename=$work/disk.qcow2,file.aio=io_uring"
run_blk_jobs qsd-qcow2 "$sock"; stop
qsd qsd-raw "driver=file,node-name=top,filename=$img,aio=io_uring"
run_blk_jobs qsd-raw "$sock"; stop

# first writes: every block of a fresh device is provisioned (zero-filled) on its first write
ramp=0
for spec in "2 randwrite 4k 32" "3 write 128k 8"; do
  read -r id rw bs qd <<<"$spec"
  jobs=("$rw $bs $qd")
  start "vhostj-thin-fresh$id" "$ROOT/bin/vhostj" blk --socket-path "$work/vhostj-thin-fresh$id.sock" --thin "$pool:$id"
  run_blk_jobs vhostj-thin-first-write "$sock"; stop
done
vhostj devmapper status "$pool" >&2

table=$(python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {(r['backend'], r['rw'], r['bs'], r['iodepth']): r for r in rows}
print("| backend | rw | bs | iodepth | IOPS | MiB/s | p50 µs | p99 µs | thin / vhostj raw | thin / qsd qcow2 |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    k = (r['rw'], r['bs'], r['iodepth'])
    ratios = ["", ""]
    if r['backend'].startswith('vhostj-thin'):
        for i, ref in enumerate(('vhostj-raw', 'qsd-qcow2')):
            if (ref,) + k in by:
                ratios[i] = f"{r['iops'] / by[(ref,) + k]['iops']:.2f}×"
    print(f"| {r['backend']} | {r['rw']} | {r['bs']} | {r['iodepth']} | {r['iops']:.0f} | {r['mib_s']:.1f} | "
          f"{r['p50_us']:.1f} | {r['p99_us']:.1f} | {ratios[0]} | {ratios[1]} |")
PY
)
echo "$table"
echo
vhostj bench thin --dir "$work"
[[ -n "$out" ]] && echo "$table" >"$out"
exit 0
