#!/usr/bin/env bash
# Build the authproxy container image with buildah (no Docker engine needed). Opt-in: it takes
# minutes and is not part of `npm test`.
#
#   scripts/build-image.sh                      # base assembled from this machine (no registry needed)
#   NODE_IMAGE=node:24-slim scripts/build-image.sh   # the real base, when a registry is reachable
#
# Why a local base: the Dockerfile starts FROM a Node 24 image, and where no registry is
# reachable none can be pulled. The script then assembles `localhost/authproxy-node-base:24`
# from this machine's files: the Node 24 binary from node_modules/.bin/node, npm, the shared
# libraries they link against, CA certificates, /usr/bin/env, /bin/ln and a `node` user (uid
# 1000). That proves the Dockerfile (stages, production-only install, user, entrypoint) but is
# not an image to ship: publish the one built on node:24-slim.
#
# Environment: IMAGE (default localhost/authproxy:dev), NODE_IMAGE, BUILDAH_ROOT (storage
# directory, default buildah's own), BUILDAH_ISOLATION (default chroot).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/authproxy:dev}
ISOLATION=${BUILDAH_ISOLATION:-chroot}
if ! command -v buildah >/dev/null; then
  echo "build-image: buildah not found (Debian/Ubuntu: apt-get install buildah)" >&2
  exit 2
fi
bh=(buildah --storage-driver vfs)
[ -n "${BUILDAH_ROOT:-}" ] && bh+=(--root "$BUILDAH_ROOT/root" --runroot "$BUILDAH_ROOT/run")

build_local_base() {
  local base=localhost/authproxy-node-base:24
  local node npm_dir ctr mnt
  node=$(readlink -f node_modules/.bin/node)
  [ -x "$node" ] || { echo "build-image: node_modules/.bin/node missing: run npm ci first" >&2; exit 2; }
  "$node" -e 'process.exit(Number(process.versions.node.split(".")[0]) === 24 ? 0 : 1)' \
    || { echo "build-image: node_modules/.bin/node is not Node 24" >&2; exit 2; }
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [ -f "$npm_dir/bin/npm-cli.js" ] || { echo "build-image: cannot find npm's package directory" >&2; exit 2; }

  ctr=$("${bh[@]}" from scratch)
  mnt=$("${bh[@]}" mount "$ctr")
  trap '"${bh[@]}" umount "$ctr" >/dev/null 2>&1 || true; "${bh[@]}" rm "$ctr" >/dev/null 2>&1 || true' RETURN
  mkdir -p "$mnt"/{usr/local/bin,usr/local/lib/node_modules,usr/bin,bin,etc/ssl/certs,tmp,app}
  chmod 1777 "$mnt/tmp"
  cp "$node" "$mnt/usr/local/bin/node"
  cp -a "$npm_dir" "$mnt/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  cp "$(readlink -f /usr/bin/env)" "$mnt/usr/bin/env"
  cp "$(readlink -f "$(command -v ln)")" "$mnt/bin/ln"
  # Every shared library (and the loader) the copied binaries need, at the same paths.
  for bin in "$node" /usr/bin/env "$(command -v ln)"; do
    ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
      mkdir -p "$mnt$(dirname "$lib")"; cp -L "$lib" "$mnt$lib"
    done
  done
  cp -L /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnode:x:1000:1000::/home/node:/usr/sbin/nologin\n' >"$mnt/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\n' >"$mnt/etc/group"
  [ -f /etc/resolv.conf ] && cp -L /etc/resolv.conf "$mnt/etc/resolv.conf"
  "${bh[@]}" config --env PATH=/usr/local/bin:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "$ctr"
  "${bh[@]}" commit --quiet "$ctr" "$base" >/dev/null
  echo "$base"
}

if [ -z "${NODE_IMAGE:-}" ]; then
  echo "build-image: no NODE_IMAGE given: assembling a local Node 24 base (see the header of this script)" >&2
  NODE_IMAGE=$(build_local_base)
fi

echo "build-image: building $IMAGE on $NODE_IMAGE" >&2
"${bh[@]}" bud --isolation "$ISOLATION" --layers=false --pull=never \
  --build-arg "NODE_IMAGE=$NODE_IMAGE" -f Dockerfile -t "$IMAGE" .

# Smoke test of what the Dockerfile promises.
user=$("${bh[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$IMAGE")
entrypoint=$("${bh[@]}" inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' "$IMAGE")
echo "build-image: user $user, entrypoint $entrypoint" >&2
[ "$user" = "1000:1000" ] || { echo "build-image: image does not run as 1000:1000" >&2; exit 1; }
[ "$entrypoint" = "[authproxy]" ] || { echo "build-image: entrypoint is not authproxy" >&2; exit 1; }
ctr=$("${bh[@]}" from --pull-never "$IMAGE")
trap '"${bh[@]}" rm "$ctr" >/dev/null 2>&1 || true; rm -rf "${tmp:-}"' EXIT
inrun() { "${bh[@]}" run --isolation "$ISOLATION" "$ctr" -- "$@"; }
uid=$(inrun node -e 'process.stdout.write(String(process.getuid()))')
[ "$uid" = "1000" ] || { echo "build-image: process runs as uid $uid, not 1000" >&2; exit 1; }
inrun authproxy injector --help >/dev/null
# The sidecar's own work, end to end inside the image: inject a Deployment read from stdin.
tmp=$(mktemp -d)
printf '%s\n' 'apiVersion: apps/v1' 'kind: Deployment' 'metadata: {name: web}' 'spec:' \
  '  selector: {matchLabels: {app: web}}' '  template:' '    metadata: {labels: {app: web}}' '    spec:' \
  '      containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]' \
  >"$tmp/deployment.yaml"
injected=$(inrun authproxy inject -q -f - <"$tmp/deployment.yaml")
grep -q -- '- name: authproxy' <<<"$injected" || { echo "build-image: authproxy inject did not work inside the image" >&2; exit 1; }
# Production dependencies only: a devDependency must not resolve inside the image.
if inrun node -e 'import("typescript").then(() => process.exit(0), () => process.exit(1))' 2>/dev/null; then
  echo "build-image: devDependencies ended up in the image" >&2; exit 1
fi
echo "build-image: ok: $IMAGE (runs as uid 1000, authproxy inject works, no devDependencies)" >&2
