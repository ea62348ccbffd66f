#!/usr/bin/env bash
# vsock throughput and connection setup through vhostj's frontend acting as the guest driver
# ('vhostj bench vsock'), next to a plain Unix-socket copy on the same machine (the ceiling).
#   scripts/bench-vsock.sh [--runtime S] [--out FILE.md]
# Rows: host->guest and guest->host at 64 KiB and 4 KiB writes (the guest's rx buffers are
# 4 KiB, as Linux posts them), through CONNECT sockets and through passfd FIFOs (Kata's stdio),
# connection setup both ways (p50/p99), Unix socket at both sizes.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
runtime=5; out=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runtime) runtime=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-vsock: unknown option $1" >&2; exit 2 ;;
  esac
done
"$ROOT/bin/vhostj" --help >/dev/null   # build once, before any timing
export VHOSTJ_NO_BUILD=1
work=$(mktemp -d "${TMPDIR:-/tmp}/vhostj-bench-vsock.XXXXXX")
pid=
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$ROOT/bin/vhostj" vsock --guest-cid 3 --uds-path "$work/v.sock" --socket-path "$work/vhost.sock" >"$work/vsock.log" 2>&1 &
pid=$!
for _ in $(seq 400); do [[ -S "$work/vhost.sock" ]] && break; sleep 0.05; done
[[ -S "$work/vhost.sock" ]] || { echo "bench-vsock: the backend did not start: $(cat "$work/vsock.log")" >&2; exit 1; }
bench() { "$ROOT/bin/vhostj" bench vsock --socket "$work/vhost.sock" --uds-path "$work/v.sock" --runtime "$runtime" --json "$@"; }
{
  for bs in 64k 4k; do
    for op in h2g g2h h2g-passfd g2h-passfd unix; do bench --op "$op" --bs "$bs"; done
  done
  bench --op connect
} | tee "$work/results.jsonl" >&2
table=$(python3 - "$work/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
unix = {r['bs']: r['mib_s'] for r in rows if r['op'] == 'unix'}
name = {'h2g': 'host → guest (CONNECT socket)', 'g2h': 'guest → host (socket at `<uds>_6000`)',
        'h2g-passfd': 'host → guest (passfd: a FIFO the backend reads)',
        'g2h-passfd': 'guest → host (passfd: a FIFO the backend writes)', 'unix': 'plain Unix socket (ceiling)'}
print("| path | write size | MiB/s | of the Unix-socket ceiling |")
print("|---|---:|---:|---:|")
for r in rows:
    if 'mib_s' in r:
        share = f"{r['mib_s'] / unix[r['bs']]:.0%}" if r['op'] != 'unix' and unix.get(r['bs']) else ''
        print(f"| {name[r['op']]} | {r['bs'] // 1024} KiB | {r['mib_s']:.1f} | {share} |")
for r in rows:
    if r['op'] == 'connect':
        print()
        print("| connection setup | p50 µs | p99 µs | samples |")
        print("|---|---:|---:|---:|")
        print(f"| guest REQUEST → RESPONSE (host listener at `<uds>_6000`) | {r['g2h_p50_us']:.0f} | {r['g2h_p99_us']:.0f} | {r['g2h_n']} |")
        print(f"| host `CONNECT 5000` → `OK` | {r['h2g_p50_us']:.0f} | {r['h2g_p99_us']:.0f} | {r['h2g_n']} |")
PY
)
echo "$table"
[[ -n "$out" ]] && echo "$table" >"$out"
exit 0
