"""The background audit's core: which objects it judges, once each, and what it finds."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from aigis.admission.mutation import WORKLOAD_LABEL
from aigis.admission.rules.gateway import RULE_GATEWAY_IMPOSTOR
from aigis.api.aiworkload import AuditSummary
from aigis.oversight.audit import (
    AUDIT_RULES,
    RULE_GATEWAY_MISSING,
    WorkloadAudit,
    audit_objects,
    workload_summary,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
GOVERNED = {"aigis.dev/governed": "true"}
Obj = dict[str, Any]


def namespace(name: str, labels: Mapping[str, str] = GOVERNED) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def policy(enforcement: str = "Enforce", shadow: str = "Enforce") -> Obj:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIClusterPolicy",
        "metadata": {"name": "org"},
        "spec": {
            "namespaceSelector": {"matchLabels": GOVERNED},
            "enforcement": enforcement,
            "shadowAI": shadow,
        },
    }


def aiworkload(ns: str = "team-a", *, inject: bool = True, enforcement: str = "Enforce") -> Obj:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "bot", "namespace": ns, "uid": f"uid-aiw-{ns}"},
        "spec": {
            "selector": {"matchLabels": {"app": "bot"}},
            "owner": "team-a",
            "purpose": "Answers questions.",
            "enforcement": enforcement,
            "models": [{"provider": "openai", "name": "gpt-4o"}],
            "gateway": {
                "inject": inject,
                "providerKeys": [
                    {"provider": "openai", "secretRef": {"name": "openai", "key": "api-key"}}
                ],
            },
        },
    }


def container(image: str = "python:3.12", **extra: Any) -> Obj:
    return {"name": "app", "image": image, **extra}


# A container a policy has nothing against: Pod Security baseline and no provider key.
CLEAN = container(
    "registry.example/bot@sha256:" + "a" * 64,
    securityContext={"allowPrivilegeEscalation": False},
)
KEY_IN_ENV = container(
    env=[{"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "k"}}}]
)
VLLM = container("vllm/vllm-openai:v0.6.3", args=["--model", "meta-llama/Llama-3.1-8B-Instruct"])


def pod_spec(*containers: Obj, **extra: Any) -> Obj:
    return {"automountServiceAccountToken": False, "containers": list(containers), **extra}


def deployment(name: str, app: str, *containers: Obj, ns: str = "team-a") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}"},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}}, "spec": pod_spec(*containers)},
        },
    }


def owner_ref(owner: Obj) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }


def replica_set(owner: Obj) -> Obj:
    rs = copy.deepcopy(owner)
    rs["kind"] = "ReplicaSet"
    rs["metadata"] = {
        "name": f"{owner['metadata']['name']}-5d9c",
        "namespace": owner["metadata"]["namespace"],
        "uid": f"{owner['metadata']['uid']}-rs",
        "ownerReferences": [owner_ref(owner)],
    }
    return rs


def pod(
    owner: Obj | None,
    name: str,
    *,
    template_of: Obj,
    phase: str = "Running",
    gateway: bool = False,
    labels: Mapping[str, str] | None = None,
) -> Obj:
    template = template_of["spec"]["template"]
    spec = copy.deepcopy(template["spec"])
    if gateway:
        spec["initContainers"] = [
            {"name": "aigis-gateway", "image": "aigis:1", "restartPolicy": "Always"}
        ]
    metadata: Obj = {
        "name": name,
        "namespace": template_of["metadata"]["namespace"],
        "uid": f"uid-pod-{name}",
        "labels": dict(labels if labels is not None else template["metadata"]["labels"]),
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner_ref(owner)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": phase},
    }


def deployment_with_pods(
    name: str, app: str, *containers: Obj, pods: int = 2, **kw: Any
) -> list[Obj]:
    top = deployment(name, app, *containers)
    rs = replica_set(top)
    return [top, rs, *(pod(rs, f"{name}-{i}", template_of=top, **kw) for i in range(pods))]


BASE = [namespace("team-a"), policy()]
BOT_RUNNING = deployment_with_pods("bot", "bot", CLEAN)


@dataclass(frozen=True)
class Case:
    objects: list[Obj]
    expected: dict[str, str]
    """kind/name -> verdict, for every audited object (nothing else may be audited)."""
    rules: dict[str, set[str]] = field(default_factory=dict)
    """kind/name -> the rule ids of its findings (denied and warned), where checked."""
    aigis_namespace: str | None = None


CASES = {
    # A Deployment created before aigis holds an undeclared provider key in its env: under an
    # Enforce policy the webhook would refuse it today, so the audit says deny.
    "predating-deployment-with-provider-key-denied": Case(
        [*BASE, aiworkload(), deployment("bot", "bot", KEY_IN_ENV)],
        {"AIWorkload/bot": "allow", "Deployment/bot": "deny"},
        {"Deployment/bot": {"secrets/provider-key-in-app"}},
    ),
    "uncovered-vllm-in-governed-namespace-is-shadow-ai": Case(
        [*BASE, deployment("vllm", "vllm", VLLM)],
        {"Deployment/vllm": "deny"},
        {"Deployment/vllm": {"shadow-ai"}},
    ),
    "shadow-ai-in-audit-mode-warns": Case(
        [namespace("team-a"), policy("Audit", "Audit"), deployment("vllm", "vllm", VLLM)],
        {"Deployment/vllm": "warn"},
        {"Deployment/vllm": {"shadow-ai"}},
    ),
    "ordinary-workload-is-allowed": Case(
        [*BASE, deployment("web", "web", container("nginx:1.27"))],
        {"Deployment/web": "allow"},
    ),
    "covered-pods-without-gateway-are-found": Case(
        [*BASE, aiworkload(), *BOT_RUNNING],
        {"AIWorkload/bot": "allow", "Deployment/bot": "deny"},
        {"Deployment/bot": {RULE_GATEWAY_MISSING}},
    ),
    "covered-pods-without-gateway-warn-under-audit": Case(
        [namespace("team-a"), policy("Audit"), aiworkload(enforcement="Audit"), *BOT_RUNNING],
        {"AIWorkload/bot": "allow", "Deployment/bot": "warn"},
        {"Deployment/bot": {RULE_GATEWAY_MISSING}},
    ),
    "covered-pods-with-gateway-are-fine": Case(
        [*BASE, aiworkload(), *deployment_with_pods("bot", "bot", CLEAN, gateway=True)],
        {"AIWorkload/bot": "allow", "Deployment/bot": "allow"},
    ),
    "no-gateway-expected-when-inject-is-off": Case(
        [*BASE, aiworkload(inject=False), *BOT_RUNNING],
        {"AIWorkload/bot": "allow", "Deployment/bot": "allow"},
    ),
    "finished-pods-need-no-gateway": Case(
        [*BASE, aiworkload(), *deployment_with_pods("bot", "bot", CLEAN, phase="Succeeded")],
        {"AIWorkload/bot": "allow", "Deployment/bot": "allow"},
    ),
    "system-namespaces-are-skipped": Case(
        [namespace("kube-system"), policy(), deployment("vllm", "vllm", VLLM, ns="kube-system")],
        {},
    ),
    "aigis-own-namespace-is-skipped": Case(
        [*BASE, namespace("aigis"), deployment("vllm", "vllm", VLLM, ns="aigis")],
        {},
        aigis_namespace="aigis",
    ),
    "ungoverned-namespace-without-aiworkloads-is-skipped": Case(
        [namespace("other", {}), policy(), deployment("vllm", "vllm", VLLM, ns="other")],
        {},
    ),
    "ungoverned-namespace-with-an-aiworkload-holds-pods-to-it": Case(
        [
            namespace("other", {}),
            aiworkload("other"),
            deployment("bot", "bot", KEY_IN_ENV, ns="other"),
        ],
        {"AIWorkload/bot": "allow", "Deployment/bot": "deny"},
        {"Deployment/bot": {"secrets/provider-key-in-app"}},
    ),
    "pods-whose-controller-is-unknown-are-judged-themselves": Case(
        [
            *BASE,
            {
                **pod(None, "orphan", template_of=deployment("x", "vllm", VLLM)),
                "metadata": {
                    "name": "orphan",
                    "namespace": "team-a",
                    "labels": {"app": "vllm"},
                    "ownerReferences": [
                        {"kind": "Rollout", "uid": "elsewhere", "controller": True}
                    ],
                },
            },
        ],
        {"Pod/orphan": "deny"},
        {"Pod/orphan": {"shadow-ai"}},
    ),
}


def by_name(audits: list[WorkloadAudit]) -> dict[str, WorkloadAudit]:
    named = {f"{a.kind}/{a.name}": a for a in audits}
    assert len(named) == len(audits), "an object was audited twice"
    return named


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_audit(case: Case) -> None:
    audits = by_name(audit_objects(case.objects, now=NOW, aigis_namespace=case.aigis_namespace))
    assert {k: a.verdict for k, a in audits.items()} == case.expected
    for key, rules in case.rules.items():
        found = {r.rule for r in (*audits[key].denied, *audits[key].warned)}
        assert found == rules, key


def test_owned_pods_are_counted_once_through_their_deployment() -> None:
    objects = [*BASE, aiworkload(), *deployment_with_pods("bot", "bot", CLEAN, pods=7)]
    (_workload, bot) = audit_objects(objects, now=NOW)
    assert (bot.kind, bot.pods, bot.covered_by) == ("Deployment", 7, ("bot",))
    (finding,) = bot.findings
    assert finding.reason.message.startswith("7 of 7 running pods")
    assert "and 2 more" in finding.reason.message  # five are named
    assert "rollout restart deployment/bot" in finding.reason.fix


def test_some_pods_injected_some_not() -> None:
    top = deployment("bot", "bot", CLEAN)
    rs = replica_set(top)
    pods = [pod(rs, "new", template_of=top, gateway=True), pod(rs, "old", template_of=top)]
    audits = by_name(audit_objects([*BASE, aiworkload(), top, rs, *pods], now=NOW))
    (finding,) = audits["Deployment/bot"].findings
    assert "1 of 2 running pods" in finding.reason.message
    assert finding.reason.message.endswith(": old")


def test_injected_gateway_of_a_bare_pod_is_not_an_impostor() -> None:
    template = deployment("bot", "bot", KEY_IN_ENV)
    injected = pod(None, "bare", template_of=template, gateway=True)
    injected["metadata"]["labels"][WORKLOAD_LABEL] = "bot"
    audit = by_name(audit_objects([*BASE, aiworkload(), injected], now=NOW))["Pod/bare"]
    rules = {r.rule for r in audit.denied}
    assert RULE_GATEWAY_IMPOSTOR not in rules
    assert "secrets/provider-key-in-app" in rules  # every other rule still applies
    unmarked = pod(None, "bare", template_of=template, gateway=True)
    audit = by_name(audit_objects([*BASE, aiworkload(), unmarked], now=NOW))["Pod/bare"]
    assert RULE_GATEWAY_IMPOSTOR in {r.rule for r in audit.denied}


def test_workload_summary_counts_and_caps() -> None:
    objects = [
        *BASE,
        aiworkload(),
        *deployment_with_pods("bot", "bot", KEY_IN_ENV, pods=3),
        deployment("bot-2", "bot", CLEAN),
        deployment("vllm", "vllm", VLLM),
    ]
    audits = audit_objects(objects, now=NOW)
    summary = workload_summary("bot", audits, max_items=1)
    assert summary["objects"] == 2
    assert (summary["denied"], summary["warned"], summary["allowed"]) == (1, 0, 1)
    assert summary["pods"] == 3
    assert summary["rules"] == [
        {"rule": RULE_GATEWAY_MISSING, "count": 1},
        {"rule": "secrets/provider-key-in-app", "count": 1},
    ]
    assert len(summary["findings"]) == 1
    assert summary["findings"][0]["result"] == "deny"
    assert summary["omitted"] == 1
    AuditSummary.model_validate({**summary, "lastChangeTime": "2026-12-01T00:00:00Z"})
    assert workload_summary("nobody", audits)["objects"] == 0


def test_audit_rules_are_documented() -> None:
    assert [r.id for r in AUDIT_RULES] == [RULE_GATEWAY_MISSING]
    assert all(r.title and r.checks and r.fix for r in AUDIT_RULES)
