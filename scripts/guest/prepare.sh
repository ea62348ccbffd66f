#!/usr/bin/env bash
# Prepares what a test guest boots: a Debian kernel and a busybox initramfs with the virtio
# modules and a few host tools (mkfs.ext4, e2fsck, fio, socat, sqlite3, setfacl/getfacl) with their libraries.
#   scripts/guest/prepare.sh [DIR]     (default: $VHOSTJ_GUEST_DIR or ~/.cache/vhostj/guest)
# Prints DIR. Idempotent: reuses DIR/vmlinuz and DIR/base.cpio.gz if this script did not change.
# A test appends its own cpio (holding /test.sh) to base.cpio.gz; the kernel unpacks both.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
DIR=${1:-${VHOSTJ_GUEST_DIR:-$HOME/.cache/vhostj/guest}}
mkdir -p "$DIR"
stamp="$DIR/.prepared-$(sha256sum "$0" "$(dirname "$0")/init" | sha256sum | cut -c1-16)"
if [[ -f "$stamp" && -f "$DIR/vmlinuz" && -f "$DIR/base.cpio.gz" ]]; then
  echo "$DIR"; exit 0
fi

"$ROOT/scripts/install-test-deps.sh" qemu-system-x86 busybox-static cpio e2fsprogs fio socat kmod sqlite3 acl >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/vhostj-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- kernel: the newest Debian 6.1 image the archive offers ---------------------------------------
pkg=$(apt-cache search '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
[[ -n "$pkg" ]] || { apt-get update -qq >&2; pkg=$(apt-cache search '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1); }
[[ -n "$pkg" ]] || { echo "prepare: no linux-image-6.1.0-*-amd64 package found" >&2; exit 1; }
(cd "$work" && apt-get download "$pkg" >&2 2>/dev/null) || (cd "$work" && apt-get download "$pkg" >&2)
dpkg -x "$work"/linux-image-*.deb "$work/k"
kver=$(ls "$work/k/lib/modules")
depmod -b "$work/k" "$kver"
cp "$work/k/boot/vmlinuz-$kver" "$DIR/vmlinuz"

# --- initramfs ---------------------------------------------------------------------------------
rd="$work/rd"
mkdir -p "$rd"/{bin,sbin,etc,proc,sys,dev,tmp,mnt,lib/modules,usr/bin,usr/sbin,run}
cp /bin/busybox "$rd/bin/busybox"
for applet in $("$rd/bin/busybox" --list); do
  [[ "$applet" == busybox ]] && continue   # never link over the binary itself
  ln -sf busybox "$rd/bin/$applet"
done

# modules in dependency order (modules.dep lists a module's dependencies after it)
want=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk fuse virtiofs
      vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport ext4 crc32c_generic)
dep="$work/k/lib/modules/$kver/modules.dep"
declare -A seen=()
order=()
add() { # module path relative to lib/modules/KVER
  local rel=$1
  [[ -n "${seen[$rel]:-}" ]] && return
  seen[$rel]=1
  local deps
  deps=$(grep -E "^${rel}:" "$dep" | cut -d: -f2-)
  for d in $deps; do add "$d"; done
  order+=("$rel")
}
for m in "${want[@]}"; do
  rel=$(grep -E "/${m}\.ko(\.xz|\.zst)?:" "$dep" | cut -d: -f1 | head -1)
  if [[ -z "$rel" ]]; then echo "prepare: module $m not found (built in?)" >&2; continue; fi
  add "$rel"
done
: >"$rd/lib/modules/order"
for rel in "${order[@]}"; do
  cp "$work/k/lib/modules/$kver/$rel" "$rd/lib/modules/"
  basename "$rel" >>"$rd/lib/modules/order"
done

# host tools with the libraries they load
copy_with_libs() {
  local bin=$1
  local dest="$rd$bin"
  mkdir -p "$(dirname "$dest")"
  cp -L "$bin" "$dest"
  for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+'); do
    [[ -e "$rd$lib" ]] && continue
    mkdir -p "$rd$(dirname "$lib")"
    cp -L "$lib" "$rd$lib"
  done
}
for t in /sbin/mke2fs /sbin/e2fsck /usr/bin/fio /usr/bin/socat /sbin/fstrim /usr/bin/sha256sum /usr/bin/flock \
    /usr/bin/sqlite3 /usr/bin/setfacl /usr/bin/getfacl; do
  [[ -x "$t" ]] && copy_with_libs "$t"
done
ln -sf mke2fs "$rd/sbin/mkfs.ext4"
ln -sf e2fsck "$rd/sbin/fsck.ext4"
echo "root:x:0:0:root:/:/bin/sh" >"$rd/etc/passwd"
cp "$(dirname "$0")/init" "$rd/init"
chmod +x "$rd/init"
(cd "$rd" && find . | cpio -o -H newc --quiet | gzip -1) >"$DIR/base.cpio.gz"
rm -f "$DIR"/.prepared-*
touch "$stamp"
echo "prepare: kernel $kver, $(du -h "$DIR/base.cpio.gz" | cut -f1) initramfs in $DIR" >&2
echo "$DIR"
