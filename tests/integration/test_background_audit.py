"""The background audit on the local control plane: workloads that predate the policy and the
operator are found, reported in the namespace's PolicyReport, the AIWorkload's status, an Event
and the metrics; a declaration or a policy change re-audits at once (the periodic interval is
the default, minutes away)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import Cluster
from tests.support.aigis_processes import AigisProcess

REPO = Path(__file__).resolve().parents[2]
POLICYREPORT_CRD = REPO / "charts" / "aigis" / "files" / "policyreports.wgpolicyk8s.io.yaml"
RUN = uuid.uuid4().hex[:8]
LABEL = "aigis.dev/audit-test"
POLICY = f"it-audit-{RUN}"


def deployment(name: str, container: dict[str, Any], replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"automountServiceAccountToken": False, "containers": [container]},
            },
        },
    }


LLM = deployment(
    "llm",
    {
        "name": "server",
        "image": "vllm/vllm-openai:v0.6.3",
        "args": ["--model", "Qwen/Qwen2.5-1.5B"],
    },
)
BOT = deployment(
    "bot",
    {
        "name": "app",
        "image": "python:3.12",
        "env": [
            {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "k"}}}
        ],
    },
)


def aiworkload(name: str, *, inject: bool) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "owner": "team-audit",
            "purpose": "Exercises the background audit.",
            "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
            "gateway": {"inject": inject},
        },
    }


def policy(shadow: str) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIClusterPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "namespaceSelector": {"matchLabels": {LABEL: RUN}},
            "enforcement": "Enforce",
            "shadowAI": shadow,
        },
    }


@pytest.fixture
def governed(cluster: Cluster, crds_installed: None) -> Iterator[str]:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(POLICYREPORT_CRD))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "-f", str(POLICYREPORT_CRD)
    )
    name = cluster.create_namespace(f"it-audit-{uuid.uuid4().hex[:8]}", {LABEL: RUN})
    try:
        yield name
    finally:
        cluster.kubectl("delete", "aiclusterpolicy", POLICY, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def report(cluster: Cluster, namespace: str) -> dict[str, Any] | None:
    found = cluster.kubectl(
        "get", "policyreports.wgpolicyk8s.io", "aigis-audit", "-n", namespace, "-o", "json",
        check=False,
    )  # fmt: skip
    return json.loads(found.stdout) if found.returncode == 0 else None


def results(cluster: Cluster, namespace: str) -> set[tuple[str, str, str]]:
    """(object name, rule, result) of every result in the namespace's report."""
    found = report(cluster, namespace) or {}
    return {(r["resources"][0]["name"], r["rule"], r["result"]) for r in found.get("results") or ()}


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(r"^(\w+)(\{[^}]*\})? (\S+)$", line)
        if match is None or match.group(1) != name:
            continue
        shown = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(shown.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


def test_the_audit_finds_reports_and_clears(
    cluster: Cluster,
    governed: str,
    start_operator: Callable[..., AigisProcess],
) -> None:
    ns = governed
    # Workloads that predate the policy and the operator (no webhook judges this namespace).
    cluster.apply(LLM, ns)
    cluster.apply(BOT, ns)
    cluster.wait_for(
        "the pods of both Deployments to run",
        lambda: (
            len(
                [
                    p
                    for p in cluster.get_json("pods", "-n", ns)["items"]
                    if p.get("status", {}).get("phase") == "Running"
                ]
            )
            == 4
        ),
    )
    cluster.apply(policy("Enforce"))
    operator = start_operator("--namespace", ns, "--aigis-namespace", "aigis-system")

    # 1. The uncovered model server is shadow AI under an enforcing policy.
    cluster.wait_for(
        "shadow AI in the PolicyReport",
        lambda: ("llm", "shadow-ai", "fail") in results(cluster, ns),
    )
    stored = report(cluster, ns)
    assert stored is not None
    assert stored["summary"]["fail"] >= 1
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aigis"
    # The README's command lists it.
    listed = cluster.kubectl(
        "get", "policyreports", "-A", "-l", "app.kubernetes.io/managed-by=aigis", "-o", "json"
    )
    assert ns in {item["metadata"]["namespace"] for item in json.loads(listed.stdout)["items"]}
    events = cluster.get_json(
        "events",
        "-n",
        ns,
        "--field-selector",
        "involvedObject.name=llm,reason=AIPolicyAuditFinding",
    )["items"]
    assert events, "no Event on the Deployment"
    assert "shadow-ai" in events[0]["message"]
    assert events[0]["involvedObject"]["kind"] == "Deployment"
    text = cluster.wait_for("audit metrics", operator.metrics_or_none)
    assert metric(text, "aigis_audit_findings", rule="shadow-ai", result="fail") >= 1
    assert metric(text, "aigis_audit_objects_reviewed") >= 2
    assert metric(text, "aigis_audit_last_pass_timestamp_seconds") > 0

    # 2. Declaring bot re-audits now: its key in the env and its pods without the gateway.
    cluster.apply(aiworkload("bot", inject=True), ns)

    def bot_audit() -> dict[str, Any] | None:
        status = cluster.get_json("aiw", "bot", "-n", ns).get("status") or {}
        audit = status.get("audit")
        return audit if audit and audit.get("denied") == 1 else None

    audit = cluster.wait_for("status.audit of AIWorkload bot", bot_audit)
    assert audit["objects"] == 1
    assert audit["pods"] == 2
    rules = {r["rule"] for r in audit["rules"]}
    assert {"secrets/provider-key-in-app", "audit/gateway-missing"} <= rules
    assert audit["findings"][0]["object"] == "Deployment/bot"
    assert ("bot", "audit/gateway-missing", "fail") in results(cluster, ns)

    # 3. A policy change re-audits without waiting for the interval: shadow AI now only warns.
    cluster.apply(policy("Audit"))
    cluster.wait_for(
        "shadow AI to become a warning",
        lambda: ("llm", "shadow-ai", "warn") in results(cluster, ns),
    )

    # 4. Fixing it clears it: declaring the model server ends the shadow-AI finding.
    cluster.apply(aiworkload("llm", inject=False), ns)
    cluster.wait_for(
        "the llm findings to clear",
        lambda: not any(name == "llm" for name, _, _ in results(cluster, ns)),
    )
    assert any(name == "bot" for name, _, _ in results(cluster, ns))
    text = operator.metrics()
    assert metric(text, "aigis_audit_findings", rule="shadow-ai", result="fail") == 0
    assert metric(text, "aigis_audit_findings", rule="shadow-ai", result="warn") == 0


def operator_knows_audit_interval() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "aigis", "operator", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return "--audit-interval" in result.stdout


def test_the_periodic_pass_sees_a_fixed_deployment(
    cluster: Cluster,
    governed: str,
    start_operator: Callable[..., AigisProcess],
) -> None:
    """Workloads are not watched: a Deployment changed after the start is judged again by the
    next periodic pass (`--audit-interval`)."""
    if not operator_knows_audit_interval():
        pytest.skip("`aigis operator` has no --audit-interval flag yet")
    ns = governed
    cluster.apply(policy("Enforce"))
    start_operator("--namespace", ns, "--audit-interval", "2")
    # Created after the operator's first pass: only a periodic pass can find it.
    cluster.wait_for("the first pass", lambda: report(cluster, ns))
    cluster.apply(LLM, ns)
    cluster.wait_for(
        "shadow AI in the PolicyReport",
        lambda: ("llm", "shadow-ai", "fail") in results(cluster, ns),
    )
    # Fixed: the Deployment now serves a web page, not a model.
    fixed = json.loads(json.dumps(LLM))
    fixed["spec"]["template"]["spec"]["containers"][0] = {"name": "server", "image": "nginx:1.27"}
    cluster.apply(fixed, ns)
    cluster.wait_for(
        "the next periodic pass to clear it",
        lambda: not results(cluster, ns),
    )
    assert (report(cluster, ns) or {})["summary"] == {
        "pass": 1,
        "fail": 0,
        "warn": 0,
        "error": 0,
        "skip": 0,
    }
