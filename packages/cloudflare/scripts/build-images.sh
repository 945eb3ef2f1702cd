#!/usr/bin/env bash
# Builds, without any registry, the two images the local Cloudflare setup needs (called by .ci/docker.sh):
#   statebox/cloudflare-sandbox:0.12.10  FROM statebox/debian:bookworm, plus squashfs-tools (backups) and
#                                        statebox's control server on port 3000 (the protocol
#                                        @cloudflare/sandbox 0.12.10 speaks to its container), run by Node 22;
#   statebox/cloudflare-egress:local     the egress/ingress sidecar workerd starts beside each container.
# squashfs-tools comes from Debian's mirror as .deb files (`apt-get download` on the host), Node from the
# repository's own `node` devDependency. Uses the classic builder (Debian's docker.io has no buildx).
#
#   packages/cloudflare/scripts/build-images.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
sandbox_image="${STATEBOX_CLOUDFLARE_IMAGE:-statebox/cloudflare-sandbox:0.12.10}"
egress_image="${STATEBOX_CLOUDFLARE_EGRESS_IMAGE:-statebox/cloudflare-egress:local}"
force="${1:-}"

if ! docker image inspect statebox/debian:bookworm >/dev/null 2>&1; then
  echo "build-images: statebox/debian:bookworm is missing; run bash .ci/docker.sh first." >&2
  exit 1
fi
node_bin="$(cd ../.. && readlink -f node_modules/.pnpm/node@*/node_modules/node/bin/node | head -n 1)"
if [ ! -x "$node_bin" ]; then
  echo "build-images: the repository's Node 22 binary is missing; run npx -y pnpm@10 install first." >&2
  exit 1
fi

# Rebuild when the control server, the sidecar or this script changed since the image was built.
source_hash="$(cat container/*.mjs container/egress/*.mjs scripts/build-images.sh | sha256sum | cut -c1-16)"
stale() {
  [ "$force" = --force ] && return 0
  [ "$(docker image inspect --format '{{index .Config.Labels "statebox.source-hash"}}' "$1" 2>/dev/null)" != "$source_hash" ]
}

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$node_bin" "$context/node"

if stale "$sandbox_image"; then
  mkdir -p "$context/debs" "$context/control"
  (cd "$context/debs" && apt-get download squashfs-tools liblzo2-2 >/dev/null 2>&1) || {
    echo "build-images: apt-get download squashfs-tools failed (is Debian's mirror reachable?)." >&2
    exit 1
  }
  cp container/control-*.mjs "$context/control/"
  cat >"$context/Dockerfile" <<'DOCKERFILE'
FROM statebox/debian:bookworm
COPY debs/ /tmp/debs/
RUN dpkg -i /tmp/debs/*.deb >/dev/null && rm -rf /tmp/debs && mkdir -p /workspace /var/backups /var/log/statebox /home \
 && mv /root /home/root && ln -s /home/root /root
COPY node /usr/local/bin/node
COPY control/ /opt/statebox/control/
WORKDIR /workspace
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/node", "/opt/statebox/control/control-server.mjs"]
DOCKERFILE
  docker build -q --platform linux/amd64 --label "statebox.source-hash=$source_hash" -t "$sandbox_image" "$context" >/dev/null
  echo "built $sandbox_image"
fi

if stale "$egress_image"; then
  cp container/egress/sidecar.mjs "$context/sidecar.mjs"
  cat >"$context/Dockerfile" <<'DOCKERFILE'
FROM statebox/debian:bookworm
COPY node /usr/local/bin/node
COPY sidecar.mjs /opt/statebox/egress/sidecar.mjs
EXPOSE 39001
ENTRYPOINT ["/usr/local/bin/node", "/opt/statebox/egress/sidecar.mjs"]
DOCKERFILE
  docker build -q --platform linux/amd64 --label "statebox.source-hash=$source_hash" -t "$egress_image" "$context" >/dev/null
  echo "built $egress_image"
fi
