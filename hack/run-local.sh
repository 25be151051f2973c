#!/usr/bin/env bash
# `make run`: the local control plane, the CRDs, the operator and a sample AIWorkload, end to end.
# Ctrl-C stops the operator; the control plane keeps running for the next `make run` or `make test`
# (`make cluster-down` stops it).
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${AIGIS_CACHE:-$HOME/.cache/aigis}
kubeconfig=$cache/cluster/kubeconfig
kubectl() { "$cache/bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "local control plane (the first run builds it from Go modules: about 7 minutes)"
uv run --frozen python -m aigis.devcluster up

step "CRDs"
kubectl apply --server-side --force-conflicts -f crds/
kubectl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null

step "operator (logs: $cache/run/operator.log)"
mkdir -p "$cache/run"
KUBECONFIG=$kubeconfig uv run --frozen aigis operator \
  --metrics-address 127.0.0.1 --metrics-port 0 --health-address 127.0.0.1 --health-port 0 \
  --static-hosts hack/local-hosts.yaml \
  >"$cache/run/operator.log" 2>&1 &
operator_pid=$!
stop() {
  trap - INT TERM EXIT
  if kill -0 "$operator_pid" 2>/dev/null; then
    echo; echo "stopping the operator..."
    kill -INT "$operator_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$operator_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$operator_pid" 2>/dev/null || true
  fi
  echo "operator stopped. The control plane is still up: 'make cluster-down' stops it."
}
trap stop INT TERM EXIT

step "sample AIWorkloads from examples/"
kubectl create namespace aigis-demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n aigis-demo -f examples/
# Wait until the operator has reconciled the current generation of every sample.
for _ in $(seq 60); do
  behind=$(kubectl get aiw -n aigis-demo \
    -o jsonpath='{range .items[*]}{.metadata.generation} {.status.observedGeneration}{"\n"}{end}' |
    awk '$1 != $2' | wc -l)
  [ "$behind" -eq 0 ] && break
  if ! kill -0 "$operator_pid" 2>/dev/null; then
    echo "the operator exited; its log:" >&2; tail -40 "$cache/run/operator.log" >&2; exit 1
  fi
  sleep 1
done

step "status"
kubectl get aiw -n aigis-demo -o wide
echo
kubectl get aiw -n aigis-demo -o custom-columns='NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,MESSAGE:.status.conditions[?(@.type=="Ready")].message'
echo
kubectl get networkpolicy -n aigis-demo
kubectl get networkpolicy -n aigis-demo -o yaml | sed -n '/^  spec:/,/^- apiVersion/p' | head -40

echo
echo "The operator is running (Ctrl-C stops it). Try: KUBECONFIG=$kubeconfig kubectl get aiw -A -w"
wait "$operator_pid"
