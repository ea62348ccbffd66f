#!/usr/bin/env bash
# Side-by-side vhost-user-blk benchmark through vhostj's frontend ('vhostj bench blk'):
# the same file, the same load, one run, each backend configuration in turn.
#   scripts/bench-blk.sh [--runtime S] [--size 1G] [--direct] [--vhostj-args "ARGS"] [--out FILE.md]
# Backends: vhostj blk, and qemu-storage-daemon default, with aio=io_uring, and with an
# iothread polling (poll-max-ns=50000). Buffered (page cache) unless --direct (O_DIRECT on
# both sides: vhostj --direct, qsd cache.direct=on), on one file of random data.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
runtime=5; size=1G; out=; direct=; vhostj_args=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runtime) runtime=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --direct) direct=1; shift ;;
    --vhostj-args) vhostj_args=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-blk: unknown option $1" >&2; exit 2 ;;
  esac
done
"$ROOT/scripts/install-test-deps.sh" qemu-system-common
# shellcheck source=lib/bench.sh
. "$ROOT/scripts/lib/bench.sh"
bench_init bench-blk
img="$work/disk.img"
# a fully allocated file, so reads hit data and not holes
fallocate -l "$size" "$img" 2>/dev/null || truncate -s "$size" "$img"
dd if=/dev/urandom of="$img" bs=1M count=$(( $(stat -c %s "$img") / 1048576 )) conv=notrunc status=none
sync   # no writeback of the fill may run under the first backend measured

start_qsd() { # name, extra blockdev opts, extra export opts, extra args
  sock="$work/$1.sock"   # sets the globals sock and pid (no subshell: pid must survive)
  rm -f "$sock"
  qemu-storage-daemon $4 \
    --blockdev "driver=file,node-name=file0,filename=$img$2${direct:+,cache.direct=on}" \
    --export "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=$sock,writable=on$3" \
    >"$work/$1.log" 2>&1 &
  pid=$!
  wait_socket "$sock" "$work/$1.log"
}
start_vhostj() {
  sock="$work/vhostj.sock"
  rm -f "$sock"
  # shellcheck disable=SC2086
  "$ROOT/bin/vhostj" blk --socket-path "$sock" --path "$img" ${direct:+--direct} $vhostj_args >"$work/vhostj.log" 2>&1 &
  pid=$!
  wait_socket "$sock" "$work/vhostj.log"
}

jobs=("randread 4k 1" "randwrite 4k 1" "randread 4k 32" "randwrite 4k 32" "read 128k 8" "write 128k 8")
results="$work/results.jsonl"
"$ROOT/bin/vhostj" --help >/dev/null   # build once, before any timing
export VHOSTJ_NO_BUILD=1               # and never again mid-run, whatever changes in the tree
start_vhostj
run_blk_jobs vhostj "$sock"
stop
for cfg in "qsd-default||" "qsd-io_uring|,aio=io_uring|" "qsd-iothread-poll|,aio=io_uring|,iothread=io0|--object iothread,id=io0,poll-max-ns=50000"; do
  IFS='|' read -r name bdev exp args <<<"$cfg"
  start_qsd "$name" "$bdev" "$exp" "$args"
  run_blk_jobs "$name" "$sock"
  stop
done

table=$(python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def key(r): return (r['rw'], r['bs'], r['iodepth'])
best = {}
for r in rows:
    if r['backend'].startswith('qsd') and r['iops'] > best.get(key(r), (0, None))[0]:
        best[key(r)] = (r['iops'], r['backend'])
print("| backend | rw | bs | iodepth | IOPS | MiB/s | p50 µs | p99 µs | backend CPU µs/IO | vs best qsd |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    # CPU was sampled over ramp + run; scale the run's I/O count to that span
    ios = r['iops'] * r['wall_s']
    cpu = r['backend_cpu_s'] * 1e6 / ios if ios else 0
    ratio = ""
    if r['backend'] == 'vhostj' and key(r) in best:
        ratio = f"{r['iops'] / best[key(r)][0]:.2f}× ({best[key(r)][1]})"
    print(f"| {r['backend']} | {r['rw']} | {r['bs']} | {r['iodepth']} | {r['iops']:.0f} | {r['mib_s']:.1f} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {cpu:.2f} | {ratio} |")
PY
)
echo "$table"
[[ -n "$out" ]] && echo "$table" >"$out"
exit 0
