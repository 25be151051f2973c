#!/usr/bin/env bash
# `make image`: build the aigis image (Dockerfile) with buildah, then prove it runs.
#
# No registry is reachable from these machines, so by default the bases are Debian 12 root
# filesystems made with mmdebstrap and imported once (the runtime base has python3 only; the
# build stage's adds pip). BASE=... and BUILDER_BASE=... pick other bases, e.g.
# BASE=docker.io/library/python:3.11-slim-bookworm where a registry is reachable.
# The checks run the image with runc and lowered ulimits (crun and podman's default rlimits
# fail on these hosts; see docs field notes §8).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/aigis:dev}
RUNTIME_BASE_IMAGE=localhost/aigis-base:bookworm
BUILDER_BASE_IMAGE=localhost/aigis-builder-base:bookworm
quiet=${QUIET:+--quiet}
step() { printf '== %s\n' "$*"; }

for tool in buildah podman; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y buildah podman mmdebstrap runc" >&2; exit 1; }
done
run_flags=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

debian_base() {  # IMAGE PACKAGES: import a Debian 12 rootfs with PACKAGES unless it exists
  local image=$1 packages=$2
  podman image exists "$image" && return 0
  command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing: apt-get install -y mmdebstrap" >&2; exit 1; }
  step "base $image (mmdebstrap bookworm: $packages)"
  local dir; dir=$(mktemp -d)
  mmdebstrap --quiet --variant=apt --include="$packages" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$dir/rootfs.tar"
  podman import --quiet "$dir/rootfs.tar" "$image" >/dev/null
  rm -rf "$dir"
}

if [ -z "${BASE:-}" ]; then
  debian_base "$RUNTIME_BASE_IMAGE" python3
  debian_base "$BUILDER_BASE_IMAGE" python3,python3-pip,ca-certificates
  BASE=$RUNTIME_BASE_IMAGE
  BUILDER_BASE=$BUILDER_BASE_IMAGE
fi
BUILDER_BASE=${BUILDER_BASE:-$BASE}

build_args=(--build-arg "BASE=$BASE" --build-arg "BUILDER_BASE=$BUILDER_BASE")
# AIGIS_EXTRAS=onnx adds what a gateway needs to load a workload's ONNX classifier.
build_args+=(--build-arg "AIGIS_EXTRAS=${AIGIS_EXTRAS:-}")
# Behind a TLS-intercepting proxy the build stage needs the host's CA bundle to reach PyPI.
host_ca=${SSL_CERT_FILE:-${PIP_CERT:-}}
if [ -n "$host_ca" ] && [ -f "$host_ca" ]; then
  build_args+=(--volume "$host_ca:/run/aigis-build-ca.crt:ro"
    --build-arg SSL_CERT_FILE=/run/aigis-build-ca.crt --build-arg PIP_CERT=/run/aigis-build-ca.crt)
fi

step "image $IMAGE (base $BASE)"
start=$(date +%s)
build_log=$(mktemp)
if ! buildah bud $quiet --layers --network host "${run_flags[@]}" "${build_args[@]}" \
    --tag "$IMAGE" --file Dockerfile . >"$build_log" 2>&1; then
  tail -60 "$build_log" >&2; rm -f "$build_log"; exit 1
fi
[ -n "$quiet" ] || grep -E '^(STEP|COMMIT)' "$build_log" || true
rm -f "$build_log"
echo "built in $(( $(date +%s) - start ))s"

step "checks"
run() { podman run --rm --network none --read-only --user 65532:65532 "${run_flags[@]}" "$IMAGE" "$@"; }
run --version
run gateway --help | head -1
if podman run --rm --network none "${run_flags[@]}" --entrypoint /opt/aigis/bin/python "$IMAGE" \
    -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("aigis.devcluster") is not None)'; then
  echo "aigis.devcluster: not in the image"
else
  echo "aigis.devcluster is in the runtime image" >&2; exit 1
fi
podman image inspect --format 'size: {{.Size}} bytes' "$IMAGE" |
  awk '{printf "%s %.1f MB\n", $1, $2 / 1000000}'
