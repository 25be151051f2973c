"""Benchmark of the admission decision engine (`aigis.admission.engine.review_object`).

Run: `uv run python bench/admission_engine.py` (about ten seconds). Prints p50/p99/max latency in
microseconds per review for the pod templates the webhook sees most, under the strictest policy
(restricted Pod Security, allowed registries, digests, red-team age) with 50 AIWorkloads in the
namespace. The target is p99 < 1 ms per pod template.

- `covered-deployment`: a compliant Deployment its AIWorkload covers (the common case).
- `covered-pod-injected`: the same pod after the gateway injection, sidecar included.
- `covered-cold-spec`: a covered pod whose AIWorkload spec was never seen (no memo): the cost of
  validating the spec and its RE2 patterns on the request path, as after each AIWorkload edit.
- `shadow-deployment`: an undeclared vLLM Deployment, refused with its evidence.
- `ordinary-deployment`: an nginx Deployment, not AI: the cost aigis adds to every other app.
- `wide-pod`: a covered pod with 12 containers of 30 env entries and 10 volumes each.
- `aiworkload`: an AIWorkload object itself (validation and policy bounds).

Numbers are for reading, not asserting; tests never depend on them.
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jsonpatch

from aigis.admission.engine import AdmissionContext, review_object
from aigis.admission.mutation import InjectionSettings, render_pod_patch
from aigis.api.aiworkload import AIWorkload
from aigis.api.clusterpolicy import AIClusterPolicySpec
from aigis.egress.compliance import NamedPolicy

ROUNDS = 5000
WARMUP = 200
DIGEST = "sha256:" + "0123456789abcdef" * 4
GATEWAY_IMAGE = "ghcr.io/aigis/aigis:0.1.0"
INJECTION = InjectionSettings(gateway_image=GATEWAY_IMAGE)
NOW = datetime(2026, 3, 1, tzinfo=UTC)

POLICY = NamedPolicy(
    "org",
    AIClusterPolicySpec.model_validate(
        {
            "enforcement": "Enforce",
            "shadowAI": "Enforce",
            "podSecurity": "restricted",
            "allowedRegions": ["eu", "us"],
            "allowedRegistries": ["ghcr.io/acme", "docker.io/library"],
            "requireDigest": True,
            "redTeamMaxAgeDays": 180,
        },
        by_alias=True,
    ),
)


def workload_spec(app: str) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": {"app": app}},
        "owner": "team",
        "purpose": "answers questions",
        "dataRegions": ["eu"],
        "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
        "egress": [{"host": "eu.api.openai.com"}],
        "guardrails": {
            "denyPatterns": [
                {"name": "project-names", "pattern": r"(?i)\bproject[- ](apollo|zeus)\b"},
                {"name": "internal-hosts", "pattern": r"[a-z0-9-]+\.corp\.example\.com"},
            ]
        },
        "gateway": {
            "providerKeys": [{"provider": "openai", "secretRef": {"name": "openai", "key": "key"}}]
        },
        "assurance": {"lastRedTeam": "2026-01-15"},
    }


def workload(app: str) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": app, "namespace": "support"},
        "spec": workload_spec(app),
        "status": {"conditions": [{"type": "Compliant", "status": "True"}]},
    }


SECURE = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def app_container(name: str = "app", env: int = 3) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {"name": f"SETTING_{i}", "value": str(i)} for i in range(env - 1)
    ]
    entries.append(
        {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "openai", "key": "key"}}}
    )
    return {
        "name": name,
        "image": f"ghcr.io/acme/bot@{DIGEST}",
        "env": entries,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": SECURE,
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }


def pod_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": [app_container()],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }
    spec.update(changes)
    return spec


def deployment(app: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "namespace": "support"},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}}, "spec": spec},
        },
    }


def pod(app: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{app}-1", "namespace": "support", "labels": {"app": app}},
        "spec": spec,
    }


def context(workloads: list[dict[str, Any]]) -> AdmissionContext:
    return AdmissionContext(
        namespace="support",
        namespace_labels={"kubernetes.io/metadata.name": "support"},
        workloads=workloads,
        policies=[POLICY],
        aigis_namespace="aigis-system",
        now=NOW,
        injection=INJECTION,
    )


def injected_pod() -> dict[str, Any]:
    """The covered pod as the webhook validates it: after the real gateway injection."""
    original = pod("bot", pod_spec())
    declared = {k: v for k, v in workload("bot").items() if k != "status"}
    model = AIWorkload.model_validate(declared, by_alias=True)
    patch = render_pod_patch(
        original, model, settings=INJECTION, config_hash="bench", opt_out_allowed=False
    )
    result: dict[str, Any] = jsonpatch.apply_patch(original, patch)
    return result


def measure(review: Callable[[], object]) -> list[float]:
    for _ in range(WARMUP):
        review()
    samples = []
    gc.collect()
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        review()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    workloads = [workload("bot")] + [workload(f"other-{i}") for i in range(49)]
    ctx = context(workloads)
    injected = injected_pod()
    wide = pod_spec(
        containers=[app_container(f"c{i}", env=30) for i in range(12)],
        volumes=[{"name": "data", "emptyDir": {}}]
        + [{"name": f"cm{i}", "configMap": {"name": f"cm{i}"}} for i in range(9)],
    )
    shadow = pod_spec(
        containers=[
            {
                "name": "vllm",
                "image": "vllm/vllm-openai:v0.6.3",
                "resources": {"limits": {"nvidia.com/gpu": 1}},
            }
        ]
    )
    ordinary = pod_spec(containers=[{"name": "web", "image": "nginx:1.27"}])

    cold_counter = iter(range(10**9))

    def cold() -> object:
        # A new spec every time: a deny pattern that differs, so the memo never hits.
        fresh = workload("bot")
        fresh["spec"]["guardrails"]["denyPatterns"][0]["pattern"] = f"secret-{next(cold_counter)}"
        return review_object(pod("bot", pod_spec()), context([fresh, *workloads[1:]]))

    scenarios: dict[str, Callable[[], object]] = {
        "covered-deployment": lambda: review_object(deployment("bot", pod_spec()), ctx),
        "covered-pod-injected": lambda: review_object(injected, ctx),
        "covered-cold-spec": cold,
        "shadow-deployment": lambda: review_object(deployment("llm", shadow), ctx),
        "ordinary-deployment": lambda: review_object(deployment("web", ordinary), ctx),
        "wide-pod": lambda: review_object(pod("bot", wide), ctx),
        "aiworkload": lambda: review_object(workload("new"), ctx),
    }
    checks = {
        "covered-deployment": True,
        "covered-pod-injected": True,
        "shadow-deployment": False,
        "ordinary-deployment": True,
    }
    for name, allowed in checks.items():
        decision = scenarios[name]()
        assert getattr(decision, "allowed", None) is allowed, (name, decision)

    print(f"admission engine: {ROUNDS} reviews per scenario, 50 AIWorkloads in the namespace")
    print(f"{'scenario':<22} {'p50 µs':>8} {'p99 µs':>8} {'max µs':>8}")
    worst = 0.0
    for name, review in scenarios.items():
        samples = measure(review)
        p99 = percentile(samples, 0.99)
        if name != "aiworkload":
            worst = max(worst, p99)
        print(f"{name:<22} {statistics.median(samples):>8.1f} {p99:>8.1f} {max(samples):>8.1f}")
    verdict = "meets" if worst < 1000 else "MISSES"
    print(f"worst pod-template p99: {worst:.1f} µs ({verdict} the 1 ms target)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
