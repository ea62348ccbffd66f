#!/usr/bin/env bash
# Installs the Debian packages vhostj's tests, benchmarks and demo use, if missing.
#   scripts/install-test-deps.sh            everything
#   scripts/install-test-deps.sh PKG...     just these packages
# Needs root (or passwordless sudo). Idempotent: does nothing when all are installed.
set -euo pipefail

ALL=(qemu-system-common qemu-utils qemu-system-x86 busybox-static fio socat cpio e2fsprogs sqlite3 acl)
pkgs=("$@")
[[ ${#pkgs[@]} -eq 0 ]] && pkgs=("${ALL[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

SUDO=
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; else
    echo "install-test-deps: need root to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# apt's lists may be missing or stale on a fresh machine
$SUDO apt-get update -qq >&2 || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
