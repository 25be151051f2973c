# The interface to aigis's development tasks. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV ?= uv
AIGIS_CACHE ?= $(HOME)/.cache/aigis
export AIGIS_CACHE
KUBECONFIG_PATH := $(AIGIS_CACHE)/cluster/kubeconfig
KUBECTL := $(AIGIS_CACHE)/bin/kubectl --kubeconfig $(KUBECONFIG_PATH)

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

.PHONY: sync
sync: ## Install aigis and its pinned dependencies into .venv (uv.lock).
	@$(UV) sync --frozen --quiet

.PHONY: run
run: sync ## The whole product on the local control plane: operator, webhook, a policy, the samples, at work.
	@hack/run-local.sh

.PHONY: test
test: sync lint control-plane ## Lint, unit tests, and integration tests against the local control plane.
	@hack/pytest.sh tests

.PHONY: unit
unit: sync ## Unit tests only (no cluster needed).
	@hack/pytest.sh tests/unit

.PHONY: integration
integration: sync control-plane ## Integration tests only (starts the local control plane if needed).
	@hack/pytest.sh tests/integration

.PHONY: lint
lint: sync ## ruff (lint and format check) and mypy.
	@$(UV) run --frozen ruff check operator tests bench
	@$(UV) run --frozen ruff format --check operator tests bench
	@$(UV) run --frozen mypy

.PHONY: fmt
fmt: sync ## Format and autofix with ruff.
	@$(UV) run --frozen ruff format operator tests bench
	@$(UV) run --frozen ruff check --fix operator tests bench

.PHONY: bench
bench: sync control-plane ## Benchmarks: they print numbers (see bench/); tests never time anything.
	@$(UV) run --frozen python bench/egress.py
	@$(UV) run --frozen python bench/admission_engine.py
	@$(UV) run --frozen python bench/admission_server.py
	@$(UV) run --frozen python bench/admission_e2e.py
	@$(UV) run --frozen python bench/guardrails.py
	@$(UV) run --frozen --group train python bench/guardrails_loso.py
	@$(UV) run --frozen python bench/guardrails_pii.py
	@hack/build-control-plane.sh vegeta
	@$(UV) run --frozen python bench/gateway_hot_paths.py
	@$(UV) run --frozen python bench/gateway.py
	@$(UV) run --frozen python bench/forensics.py
	@$(UV) run --frozen python bench/audit.py

.PHONY: crds
crds: sync ## Regenerate crds/ from the pydantic models (and the chart's copy of them).
	@$(UV) run --frozen aigis crds --output-dir crds
	@rm -f charts/aigis/crds/*.yaml && cp crds/*.yaml charts/aigis/crds/

.PHONY: image
image: ## Build the aigis image with buildah (hack/build-image.sh) and check that it runs.
	@hack/build-image.sh

.PHONY: chart-lint
chart-lint: sync control-plane ## helm lint/template the chart for several value sets; promtool on its alerts.
	@hack/pytest.sh tests/unit/test_chart.py

.PHONY: chart-dashboards
chart-dashboards: sync ## Regenerate the chart's Grafana dashboards (hack/dashboards.py).
	@$(UV) run --frozen python hack/dashboards.py

.PHONY: e2e-kind
e2e-kind: ## Install the chart into a kind cluster with the local image (needs kind; not run in CI).
	@hack/e2e-kind.sh

.PHONY: train-guardrails
train-guardrails: sync ## Retrain the prompt-injection model from ../shared/data (deterministic; CHECK=1 verifies).
	@$(UV) run --frozen --group train python hack/train_guardrails.py $(if $(CHECK),--check)

.PHONY: control-plane
control-plane: ## Build (or find cached) etcd, Kubernetes, kwok, helm, versitygw and test fixtures, showing progress.
	@hack/build-control-plane.sh

.PHONY: cluster-up
cluster-up: sync ## Start the local control plane (idempotent); prints where the kubeconfig is.
	@$(UV) run --frozen python -m aigis.devcluster up

.PHONY: cluster-down
cluster-down: sync ## Stop the local control plane and remove its state (binaries stay cached).
	@$(UV) run --frozen python -m aigis.devcluster down

.PHONY: kubeconfig
kubeconfig: ## Print the path of the local control plane's kubeconfig.
	@echo $(KUBECONFIG_PATH)

# The real node (docs/real-node.md): a second local cluster whose node runs real containers
# (containerd, runc, kubelet, kube-router). Needs root and Debian's containerd; not part of `make test`.
.PHONY: cluster-up-real
cluster-up-real: sync ## Start the real-node cluster (kubelet + containerd + kwok; root; builds kubelet, kube-router).
	@$(UV) run --frozen python -m aigis.devcluster real-node up

.PHONY: cluster-down-real
cluster-down-real: sync ## Stop the real node, its pods and its control plane; remove their state.
	@$(UV) run --frozen python -m aigis.devcluster real-node down

.PHONY: test-real-node
test-real-node: sync ## End-to-end tests on the real node: injected gateway, key isolation, NetworkPolicy, forensics.
	@AIGIS_REAL_NODE=1 hack/pytest.sh tests/realnode -rxX --durations=5
