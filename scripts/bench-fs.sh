#!/usr/bin/env bash
# Side-by-side vhost-user-fs benchmark through vhostj's frontend ('vhostj bench fs'), one run:
# vhostj fs, then the C virtiofsd (/usr/lib/qemu/virtiofsd) with its default thread pool and
# with --thread-pool-size=0 (requests served on the queue thread, its fastest at QD1).
#   scripts/bench-fs.sh [--runtime S] [--out FILE.md]
# Loads: sequential READ of a 256 MiB file and sequential WRITE over another, at 4k and 128k, one
# request at a time (the guest's QD1 path) and 32 in flight; GETATTR and LOOKUP+FORGET at QD1.
# cache=auto on both sides.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
runtime=5; out=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runtime) runtime=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-fs: unknown option $1" >&2; exit 2 ;;
  esac
done
"$ROOT/scripts/install-test-deps.sh" qemu-system-common
C=/usr/lib/qemu/virtiofsd
[[ -x $C ]] || { echo "bench-fs: $C is not installed" >&2; exit 1; }
"$ROOT/bin/vhostj" --help >/dev/null   # build once, before any timing
export VHOSTJ_NO_BUILD=1
work=$(mktemp -d "${TMPDIR:-/tmp}/vhostj-bench-fs.XXXXXX")
pid=
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir "$work/shared"
dd if=/dev/urandom of="$work/shared/bench.dat" bs=1M count=256 status=none
# the WRITE target: 256 MiB already, the span 'bench fs --op write' wraps at, so that every
# backend overwrites the same pages and none pays for growing the file
cp "$work/shared/bench.dat" "$work/shared/write.dat"
cat "$work/shared/bench.dat" "$work/shared/write.dat" >/dev/null   # into the page cache for every backend alike
# op bs iodepth
jobs=("read 4k 1" "read 4k 32" "read 128k 1" "read 128k 32" "write 4k 1" "write 4k 32" "write 128k 1" "write 128k 32"
      "getattr 4k 1" "lookup 4k 1")
bench() { # socket op bs iodepth
  local file=bench.dat
  [[ $2 == write ]] && file=write.dat
  "$ROOT/bin/vhostj" bench fs --socket "$1" --op "$2" --bs "$3" --iodepth "$4" --file "$file" --runtime "$runtime" --json
}
results="$work/results.jsonl"
# user + sys ticks of a process and its descendants: bin/vhostj stays the started process and
# runs the JVM as its grandchild (under unshare)
cpu_ticks() {
  local t c
  t=$(awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0)
  for c in $(ps -o pid= --ppid "$1"); do t=$(( t + $(cpu_ticks "$c") )); done
  echo "$t"
}
run_ops() { # name socket
  for job in "${jobs[@]}"; do
    read -r op bs depth <<<"$job"
    t0=$(cpu_ticks "$pid")
    json=$(bench "$2" "$op" "$bs" "$depth")
    t1=$(cpu_ticks "$pid")
    echo "{\"backend\":\"$1\",\"backend_cpu_s\":$(( t1 - t0 ))e-2,\"wall_s\":$(python3 -c "print($runtime+1)"),${json#\{}" | tee -a "$results" >&2
  done
}
wait_socket() { for _ in $(seq 400); do [[ -S "$1" ]] && return 0; sleep 0.05; done; echo "bench-fs: no socket $1: $(cat "$2")" >&2; exit 1; }

sock="$work/vhostj.sock"
"$ROOT/bin/vhostj" fs --socket-path "$sock" --shared-dir "$work/shared" >"$work/vhostj.log" 2>&1 &
pid=$!; wait_socket "$sock" "$work/vhostj.log"
run_ops vhostj "$sock"
kill "$pid" || true; wait "$pid" 2>/dev/null || true; pid=
for cfg in "c-virtiofsd|" "c-virtiofsd-pool0|--thread-pool-size=0"; do
  IFS='|' read -r name extra <<<"$cfg"
  # the C virtiofsd serves one connection, then exits: one instance per load
  for job in "${jobs[@]}"; do
    read -r op bs depth <<<"$job"
    sock="$work/$name.sock"; rm -f "$sock"
    # shellcheck disable=SC2086
    # it serves one connection and exits; the wrapper reports the CPU it used (user + sys, seconds)
    python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[2:])
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(str(r.ru_utime + r.ru_stime))' "$work/$name.cpu" \
      "$C" --socket-path="$sock" -o source="$work/shared" -o cache=auto $extra >"$work/$name.log" 2>&1 &
    pid=$!; wait_socket "$sock" "$work/$name.log"
    json=$(bench "$sock" "$op" "$bs" "$depth")
    wait "$pid" || true; pid=
    echo "{\"backend\":\"$name\",\"backend_cpu_s\":$(cat "$work/$name.cpu"),\"wall_s\":$(python3 -c "print($runtime+1)"),${json#\{}" | tee -a "$results" >&2
  done
done

table=$(python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
key = lambda r: (r['op'], r['bs'], r['iodepth'])
best = {}
for r in rows:
    if r['backend'] != 'vhostj' and r['iops'] > best.get(key(r), (0, ''))[0]:
        best[key(r)] = (r['iops'], r['backend'])
print("| backend | op | bs | iodepth | requests/s | MiB/s | p50 µs | p99 µs | backend CPU µs/request | vs best C virtiofsd |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    n = r['iops'] * r['wall_s']
    cpu = r['backend_cpu_s'] * 1e6 / n if n else 0
    ratio = ''
    if r['backend'] == 'vhostj' and key(r) in best:
        ratio = f"{r['iops'] / best[key(r)][0]:.2f}× ({best[key(r)][1]})"
    print(f"| {r['backend']} | {r['op']} | {r['bs'] or ''} | {r['iodepth']} | {r['iops']:.0f} | {r['mib_s']:.1f} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {cpu:.2f} | {ratio} |")
PY
)
echo "$table"
[[ -n "$out" ]] && echo "$table" >"$out"
exit 0
