#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok, helm) from their Go modules at the versions pinned in hack/versions.env, and caches
# the binaries in $AIGIS_CACHE/bin (default ~/.cache/aigis/bin). A binary that is already cached at
# its pinned version is not rebuilt, so a warm run takes well under a second. The vegeta load
# generator (for bench/gateway.py) is built the same way, only when named: `$0 vegeta`.
#
# Why wrapper modules: k8s.io/kubernetes and etcd's server module carry replace directives, so
# `go install pkg@version` refuses them. A throwaway module that requires them (and, for Kubernetes,
# points every k8s.io staging module at its published v0.Y.Z tag) builds them with plain `go build`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${AIGIS_CACHE:-$HOME/.cache/aigis}
bin=$cache/bin
work=$cache/build
mkdir -p "$bin" "$work"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
started=$(date +%s)

say() { printf '[build-control-plane %4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

# Runs a command while printing a heartbeat every 30 s, so a cold build never looks hung.
with_heartbeat() {
  local what=$1; shift
  local t0; t0=$(date +%s)
  ( while sleep 30; do say "still building $what ($(( $(date +%s) - t0 ))s so far)"; done ) &
  local ticker=$!
  local rc=0
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  return "$rc"
}

have() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]; }
mark() { echo "$2" > "$bin/.$1.version"; }

# go_install NAME VERSION PACKAGE@VERSION LDFLAGS [NOTE]: `go install` a module without replace
# directives into the cache, unless that version is there already.
go_install() {
  local name=$1 v=$2 package=$3 ldflags=$4 note=${5:-}
  if have "$name" "$v"; then say "$name v$v: cached"; return; fi
  say "$name v$v: building${note:+ ($note)}"
  GOBIN=$bin with_heartbeat "$name" go install -trimpath -ldflags "$ldflags" "$package"
  mark "$name" "$v"
  say "$name v$v: done"
}

# module_dir MODULE@VERSION: where the module's files are in Go's module cache (downloaded if
# needed). Run outside any module, so the download never edits a go.mod.
module_dir() {
  (cd "$work" && GOFLAGS= go mod download -json "$1") \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

# kubernetes_commands LABEL CMD...: build k8s.io/kubernetes/cmd/CMD (each) at KUBE_VERSION into
# the cache, through a throwaway wrapper module: k8s.io/kubernetes replaces every staging module
# with ./staging/src, so each is pinned here to its published tag instead.
kubernetes_commands() {
  local label=$1; shift
  local v=$KUBE_VERSION minor
  minor=$(echo "$v" | cut -d. -f2)
  local dir=$work/$label-$v
  rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
  go mod init "local.invalid/aigis-$label" >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local m
  for m in $(awk '/=> \.\/staging\/src\//{print $1}' "$gomod"); do
    go mod edit -replace="$m=$m@v0.$minor.${v##*.}"
  done
  go mod edit -require="k8s.io/kubernetes@v$v"
  # Keep Kubernetes' own GODEBUG defaults and Go language version.
  go mod edit -go="$(awk '$1=="go"{print $2; exit}' "$gomod")"
  say "$label v$v: resolving modules"
  with_heartbeat "$label modules" go get "k8s.io/kubernetes/cmd/$1@v$v" >/dev/null
  local ldf="-s -w" p c
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=v$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ldf="$ldf -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  local packages=()
  for c in "$@"; do packages+=("k8s.io/kubernetes/cmd/$c"); done
  mkdir -p out
  with_heartbeat "$label binaries" go build -trimpath -ldflags "$ldf" -o out/ "${packages[@]}"
  for c in "$@"; do
    mv "out/$c" "$bin/$c"; mark "$c" "$v"
  done
  say "$label v$v: done"
}

build_kubernetes() {
  local v=$KUBE_VERSION b all_present=1
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    have "$b" "$v" || all_present=0
  done
  if [ "$all_present" = 1 ]; then say "kubernetes v$v: cached"; return; fi
  say "kubernetes v$v: building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (cold: about 4 min on 2 cores)"
  kubernetes_commands kubernetes kube-apiserver kube-controller-manager kube-scheduler kubectl
}

# The kubelet of the optional real node (operator/aigis/devcluster/realnode.py), from the same
# k8s.io/kubernetes module and with the same flags as the control plane, so it reuses the Go build
# cache of the binaries above (warm: mostly linking). Built only when asked (`$0 kubelet`) or with
# REAL_NODE=1. CGO_ENABLED=0 as above: the kubelet needs no cgo for the cgroupfs driver.
build_kubelet() {
  local v=$KUBE_VERSION
  if have kubelet "$v"; then say "kubelet v$v: cached"; return; fi
  say "kubelet v$v: building (warm Go cache: 2-4 min on 2 cores; cold: about 8 min)"
  kubernetes_commands kubelet kubelet
}

# kube-router, for its NetworkPolicy controller only (the real node runs it with routing and the
# service proxy off). Its go.mod has no replace directives, so `go install` works. Only with
# REAL_NODE=1 or when named.
build_kube_router() {
  local v=$KUBE_ROUTER_VERSION
  go_install kube-router "$v" "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@v$v" \
    "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v$v" \
    "cold: a few minutes on 2 cores"
}

build_etcd() {
  local v=$ETCD_VERSION
  if have etcd "$v"; then say "etcd v$v: cached"; return; fi
  say "etcd v$v: building"
  local dir=$work/etcd-$v
  rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
  go mod init local.invalid/aigis-etcd >/dev/null 2>&1
  with_heartbeat "etcd modules" go get "go.etcd.io/etcd/server/v3@v$v" >/dev/null
  with_heartbeat etcd go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$v" \
    -o "$bin/etcd" go.etcd.io/etcd/server/v3
  mark etcd "$v"
  say "etcd v$v: done"
}

# kwok and helm have no replace directives, so `go install` works; GOBIN puts them in the cache.
build_kwok() {
  local v=$KWOK_VERSION
  go_install kwok "$v" "sigs.k8s.io/kwok/cmd/kwok@v$v" "-s -w"
  copy_kwok_stages "$v"
}

# The kwok controller refuses to start without Stage definitions. kwok ships its standard ones
# (what kwokctl installs) in its module; copy them next to the binaries for the launcher
# (operator/aigis/devcluster) instead of committing another project's files.
copy_kwok_stages() {
  local v=$1 dest=$cache/kwok/stages
  if [ "$(cat "$dest/.version" 2>/dev/null)" = "$v" ]; then return; fi
  local src
  src=$(module_dir "sigs.k8s.io/kwok@v$v")/kustomize/stage
  rm -rf "$dest"; mkdir -p "$dest"
  cp "$src/node/fast/node-initialize.yaml" \
     "$src/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "$src/pod/fast/pod-ready.yaml" "$src/pod/fast/pod-complete.yaml" "$src/pod/fast/pod-delete.yaml" \
     "$dest/"
  chmod u+w "$dest"/*.yaml  # the module cache is read-only; keep the copies removable
  echo "$v" > "$dest/.version"
  say "kwok v$v: stages copied to $dest"
}

build_helm() {
  local v=$HELM_VERSION minor
  minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  # Without these, `helm version` says v3.x and the default KubeVersion for `helm template` is 1.20.
  local ldf="-s -w -X helm.sh/helm/v3/internal/version.version=v$v"
  ldf="$ldf -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  ldf="$ldf -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  go_install helm "$v" "helm.sh/helm/v3/cmd/helm@v$v" "$ldf"
}

# vegeta: the open-loop load generator of bench/gateway.py (not part of the control plane, but
# built the same way and cached next to it). Built only when asked: `build-control-plane.sh vegeta`.
build_vegeta() {
  local v=$VEGETA_VERSION
  go_install vegeta "$v" "github.com/tsenart/vegeta/v12@v$v" "-s -w -X main.Version=v$v"
}

# versitygw: an S3 server with Object Lock over a local directory, for the forensics S3
# backend's tests (tests/integration/test_forensics_s3.py); built with the control plane, so
# `make test` shows its (cold: two-minute) build before pytest starts.
build_versitygw() {
  local v=$VERSITYGW_VERSION
  go_install versitygw "$v" "github.com/versity/versitygw/cmd/versitygw@v$v" "-s -w" \
    "cold: a few minutes on 2 cores"
}

# Pod Security Admission's own pass/fail fixtures, which tests/conformance runs aigis's checks
# against; copied out of the module cache next to the binaries, like kwok's stages.
copy_pod_security_fixtures() {
  local v=$POD_SECURITY_VERSION dest=$cache/pod-security-fixtures
  if [ "$(cat "$dest/.version" 2>/dev/null)" = "$v" ]; then say "pod-security fixtures v$v: cached"; return; fi
  local module
  module=$(module_dir "k8s.io/pod-security-admission@v$v")
  rm -rf "$dest"; mkdir -p "$dest"
  cp -r "$module/test/testdata/." "$dest/"
  chmod -R u+w "$dest"  # the module cache is read-only; keep the copies removable
  echo "$v" > "$dest/.version"
  say "pod-security fixtures v$v: copied to $dest"
}

# The OASIS SARIF 2.1.0 JSON schema, which tests/conformance checks `aigis scan --output sarif`
# against; the Go module github.com/owenrumney/go-sarif embeds it in a Go string, from which it is
# extracted here (into the cache, never committed), so no test downloads anything.
copy_sarif_schema() {
  local v=$GO_SARIF_VERSION dest=$cache/schemas/sarif-schema-2.1.0.json
  if [ "$(cat "$dest.version" 2>/dev/null)" = "$v" ]; then say "sarif schema ($v): cached"; return; fi
  local module
  module=$(module_dir "github.com/owenrumney/go-sarif/v3@v$v")
  mkdir -p "$(dirname "$dest")"
  python3 - "$module/pkg/report/v210/sarif/schema.go" "$dest" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read().split("`", 2)[1]
json.loads(text)  # refuse to cache anything that is not the JSON schema
open(sys.argv[2], "w", encoding="utf-8").write(text)
PY
  echo "$v" > "$dest.version"
  say "sarif schema ($v): copied to $dest"
}

targets=${*:-etcd kwok kubernetes helm pod-security-fixtures versitygw sarif-schema}
# REAL_NODE=1 adds the real node's components (docs/real-node.md) to a default build.
if [ $# -eq 0 ] && [ "${REAL_NODE:-}" = 1 ]; then targets="$targets kubelet kube-router"; fi
for t in $targets; do
  case $t in
    etcd) build_etcd ;;
    kwok) build_kwok ;;
    kubernetes) build_kubernetes ;;
    helm) build_helm ;;
    pod-security-fixtures) copy_pod_security_fixtures ;;
    vegeta) build_vegeta ;;
    versitygw) build_versitygw ;;
    sarif-schema) copy_sarif_schema ;;
    kubelet) build_kubelet ;;
    kube-router) build_kube_router ;;
    *) echo "unknown component '$t' (choose from: etcd kwok kubernetes helm pod-security-fixtures vegeta versitygw sarif-schema kubelet kube-router)" >&2; exit 2 ;;
  esac
done
say "binaries are in $bin ($(du -sh "$bin" | cut -f1)); Go caches: $(go env GOMODCACHE), $(go env GOCACHE)"
