#!/usr/bin/env bash
# Builds a tiny image for tests without any registry: busybox-static from Debian's apt, unpacked into a
# rootfs tar and loaded with `docker import`. Takes about a second once busybox-static is installed.
#
#   packages/docker/scripts/build-test-image.sh [image]     (default: statebox/busybox:test)
#
# Needs: a reachable Docker daemon (DOCKER_HOST or /var/run/docker.sock), and busybox-static
# (installed with apt-get when missing and running as root).
set -euo pipefail

image="${1:-statebox/busybox:test}"

if ! command -v docker >/dev/null 2>&1; then
  echo "build-test-image: the docker CLI is missing; install docker.io (apt-get install -y docker.io)." >&2
  exit 1
fi

busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
  # The dynamic `busybox` package would need libc inside the image; only the static one works alone.
  if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then busybox="$candidate"; break; fi
done
if [ -z "$busybox" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
    busybox=/bin/busybox
  else
    echo "build-test-image: needs a static busybox: apt-get install busybox-static (as root)." >&2
    exit 1
  fi
fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,workspace,var/tmp}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
cp "$busybox" "$rootfs/bin/busybox"
# One symlink per applet, the way busybox --install would lay them out.
for applet in $("$rootfs/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf /bin/busybox "$rootfs/bin/$applet"
done
# busybox's ls prints '?' for most non-ASCII names (its Unicode support stops at U+02FF), and its sh runs
# its own applets before PATH. Tests list unicode file names, so the image gets GNU ls and dash as /bin/sh
# from the host, with the shared libraries they need; every other command stays busybox.
if command -v ldd >/dev/null 2>&1 && [ -x /bin/ls ] && [ -x /bin/dash ]; then
  rm -f "$rootfs/bin/ls" "$rootfs/bin/sh"
  cp /bin/ls "$rootfs/bin/ls"
  cp /bin/dash "$rootfs/bin/sh"
  for library in $( (ldd /bin/ls; ldd /bin/dash) | grep -o '/[^ ]*' | sort -u); do
    mkdir -p "$rootfs$(dirname "$library")"
    cp -L "$library" "$rootfs$library"
  done
fi
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"

tar -C "$rootfs" --numeric-owner -c . | docker import \
  -c 'CMD ["/bin/sh"]' \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'WORKDIR /workspace' \
  -m 'statebox test image: busybox-static' - "$image" >/dev/null
echo "built $image"
