#!/usr/bin/env bash
# Builds a Debian bookworm image without any registry: debootstrap (minbase) from Debian's mirror into a
# rootfs, trimmed, then `docker import`. About 50 s and ~200 MB here.
#
#   packages/docker/scripts/build-debian-image.sh [image] [mirror]
#     image   default statebox/debian:bookworm (the docker provider's default image)
#     mirror  default http://deb.debian.org/debian
#
# Needs root (debootstrap), debootstrap (installed with apt-get when missing) and a reachable daemon.
set -euo pipefail

image="${1:-statebox/debian:bookworm}"
mirror="${2:-http://deb.debian.org/debian}"
packages="bash,git,ca-certificates,coreutils,findutils,grep,sed,tar,gzip,procps"

if [ "$(id -u)" != 0 ]; then
  echo "build-debian-image: debootstrap needs root; rerun with sudo." >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "build-debian-image: no Docker daemon at ${DOCKER_HOST:-unix:///var/run/docker.sock}; start dockerd (see .ci/docker.sh)." >&2
  exit 1
fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" >/dev/null
# Caches and docs are half the size and nothing in a sandbox needs them; `apt-get update` restores lists.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
mkdir -p "$rootfs/workspace"

tar -C "$rootfs" --numeric-owner -c . | docker import \
  -c 'CMD ["/bin/bash"]' \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'WORKDIR /workspace' \
  -m "statebox base image: debootstrap bookworm minbase + $packages" - "$image" >/dev/null
echo "built $image"
