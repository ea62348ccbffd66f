#!/usr/bin/env bash
# bin/vhostj demo: what vhostj does end to end today.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  cat <<'USAGE'
Usage: vhostj demo

Today (foundation): starts qemu-storage-daemon's vhost-user-blk export over a
256 MiB temporary file and drives it with vhostj's own vhost-user frontend
(memfd guest memory, feature negotiation, split virtqueue, EVENT_IDX), showing
4k random read/write IOPS and latency. Installs qemu-storage-daemon (Debian
package qemu-system-common) if it is missing and you are root.

Coming with the device issues: a QEMU guest booted on vhostj's own virtio-fs,
virtio-blk and vsock backends.
USAGE
  exit 0
fi
[[ $# -eq 0 ]] || { echo "vhostj demo: takes no arguments (try --help)" >&2; exit 2; }

"$ROOT/scripts/install-test-deps.sh" qemu-system-common
work=$(mktemp -d "${TMPDIR:-/tmp}/vhostj-demo.XXXXXX")
qsd_pid=
cleanup() { [[ -n "$qsd_pid" ]] && kill "$qsd_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
truncate -s 256M "$work/disk.img"
qemu-storage-daemon \
  --blockdev driver=file,node-name=file0,filename="$work/disk.img" \
  --export type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path="$work/blk.sock",writable=on \
  >"$work/qsd.log" 2>&1 &
qsd_pid=$!
for _ in $(seq 100); do [[ -S "$work/blk.sock" ]] && break; sleep 0.05; done
[[ -S "$work/blk.sock" ]] || { echo "vhostj demo: qemu-storage-daemon did not start:" >&2; cat "$work/qsd.log" >&2; exit 1; }

echo "== vhostj frontend -> qemu-storage-daemon vhost-user-blk ($work/blk.sock)"
for rw in randwrite randread; do
  "$ROOT/bin/vhostj" bench blk --socket "$work/blk.sock" --rw "$rw" --bs 4k --iodepth 32 --runtime 3
done
echo "== done: the vhost-user frontend negotiated, mapped guest memory and ran a split ring against a third-party backend"
