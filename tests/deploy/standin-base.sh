#!/usr/bin/env bash
# Make a local stand-in for the Dockerfile's base image, for machines that reach no
# container registry: Debian bookworm (debootstrap, minbase) with Python 3.11 and venv,
# imported under the exact name in the Dockerfile's FROM, so a build with --pull=never
# finds it. The root file system is cached as a tarball, so only the first run on a
# machine pays for debootstrap (2-3 minutes); later runs import it in seconds.
#
#   standin-base.sh IMAGE [ENGINE]     ENGINE: podman (default) or docker
#
# The cache is $PYZK_CACHE_DIR (default ~/.cache/pyzk); its file name carries a hash of
# the recipe below, so changing the recipe makes a new one. Needs root and debootstrap.
set -euo pipefail

image=${1:?usage: standin-base.sh IMAGE [ENGINE]}
engine=${2:-podman}
# What goes into the stand-in: what the Dockerfile needs from python:*-slim-bookworm.
packages=python3,python3-venv
recipe="bookworm minbase $packages v1"

if "$engine" image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi

cache=${PYZK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pyzk}
key=$(printf '%s' "$recipe" | sha256sum | cut -c1-12)
tarball=$cache/standin-bookworm-python-$key.tar

if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || {
    echo "standin-base.sh: debootstrap is not installed" >&2
    exit 1
  }
  # The Debian mirror this machine's apt already uses.
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/root.XXXXXX")
  trap 'rm -rf "$root" "$tarball.part"' EXIT
  echo "standin-base.sh: debootstrap bookworm from $mirror (once per machine)" >&2
  debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar --numeric-owner -C "$root" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi

quiet=()
[ "$engine" = podman ] && quiet=(--quiet)
"$engine" import "${quiet[@]}" --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
  "$tarball" "$image" >/dev/null
echo "standin-base.sh: $image imported from $tarball" >&2
