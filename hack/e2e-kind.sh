#!/usr/bin/env bash
# `make e2e-kind`: the chart in a real cluster (kind), with the image built by `make image`.
# Not run in CI here (no Docker, no kind on these machines); needs kind and docker or podman.
#   KIND_CLUSTER=aigis-e2e  IMAGE=localhost/aigis:dev  KEEP=1 (leave the cluster up)
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=${KIND_CLUSTER:-aigis-e2e}
image=${IMAGE:-localhost/aigis:dev}
ns=aigis-system
step() { printf '\n== %s\n' "$*"; }
for tool in kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done

step "kind cluster $cluster"
kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --wait 120s
kubectl config use-context "kind-$cluster" >/dev/null
cleanup() { [ -n "${KEEP:-}" ] || kind delete cluster --name "$cluster"; }
trap cleanup EXIT

step "image $image"
podman image exists "$image" 2>/dev/null || docker image inspect "$image" >/dev/null 2>&1 ||
  IMAGE=$image hack/build-image.sh
archive=$(mktemp --suffix=.tar)
if command -v podman >/dev/null; then podman save -o "$archive" "$image"; else docker save -o "$archive" "$image"; fi
kind load image-archive --name "$cluster" "$archive"
rm -f "$archive"

step "helm install"
helm upgrade --install aigis charts/aigis --namespace "$ns" --create-namespace \
  --set "image.repository=${image%:*},image.tag=${image##*:},image.pullPolicy=Never" \
  --wait --timeout 5m
kubectl wait --for=create --timeout=120s validatingwebhookconfiguration/aigis mutatingwebhookconfiguration/aigis

step "scenario: a policy, the samples, shadow AI refused"
kubectl apply -f - <<'YAML'
apiVersion: aigis.dev/v1alpha1
kind: AIClusterPolicy
metadata: {name: e2e}
spec:
  namespaceSelector: {matchLabels: {aigis-e2e: "true"}}
  enforcement: Enforce
  shadowAI: Enforce
YAML
kubectl create namespace aigis-demo --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace aigis-demo aigis-e2e=true --overwrite
kubectl apply -n aigis-demo -f examples/support-bot.yaml
if kubectl run llm -n aigis-demo --image=vllm/vllm-openai:v0.6.0 --dry-run=server 2>&1 | tee /dev/stderr | grep -q shadow-ai; then
  echo "shadow AI refused"
else
  echo "shadow AI was not refused" >&2; exit 1
fi
kubectl get aiw -n aigis-demo -o wide

step "uninstall: the webhook configurations first"
kubectl delete validatingwebhookconfiguration,mutatingwebhookconfiguration aigis
kubectl delete aiclusterpolicy e2e
helm uninstall aigis --namespace "$ns"
