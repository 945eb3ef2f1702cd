#!/usr/bin/env bash
# Makes a Docker Engine available for the docker provider's tests (called by .ci/run):
#  1. installs docker.io from apt when dockerd is missing;
#  2. starts dockerd in the background when the socket does not answer (no systemd needed), waiting
#     up to DOCKERD_WAIT_SECONDS (default 60) for `docker info` to work;
#  3. builds the registry-free test image (statebox/busybox:test) when it is missing;
#  4. builds the local Cloudflare images (the sandbox container with statebox's control server, and the
#     egress sidecar) from statebox/debian:bookworm, when missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

wait_seconds="${DOCKERD_WAIT_SECONDS:-60}"
log="${DOCKERD_LOG:-/tmp/dockerd.log}"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker.sh: installing docker.io from apt"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ] && [[ "$DOCKER_HOST" != unix://* ]]; then
    echo "docker.sh: DOCKER_HOST=$DOCKER_HOST does not answer, and a remote daemon cannot be started from here." >&2
    exit 1
  fi
  echo "docker.sh: starting dockerd (log: $log)"
  $sudo sh -c "nohup dockerd >'$log' 2>&1 &"
  for _ in $(seq 1 "$wait_seconds"); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "docker.sh: dockerd did not answer within ${wait_seconds}s. Last lines of $log:" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
  fi
fi
echo "docker.sh: $(docker version --format 'Docker Engine {{.Server.Version}}') at ${DOCKER_HOST:-unix:///var/run/docker.sock}"

if ! docker image inspect statebox/busybox:test >/dev/null 2>&1; then
  bash packages/docker/scripts/build-test-image.sh statebox/busybox:test
fi

# The runner's Docker tests and `STATEBOX_PROVIDER=docker pnpm demo` need bash, git and GNU tools in the
# sandbox: a Debian image built with debootstrap (about a minute; nothing is pulled from a registry).
if ! docker image inspect statebox/debian:bookworm >/dev/null 2>&1; then
  bash packages/docker/scripts/build-debian-image.sh statebox/debian:bookworm
fi

# The Cloudflare adapter's local Worker (workerd) runs its sandboxes in these (no registry either).
bash packages/cloudflare/scripts/build-images.sh
