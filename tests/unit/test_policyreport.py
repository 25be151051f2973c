"""The audit's PolicyReport: valid against the upstream schema, capped, and stable across passes.

The upstream schema is the PolicyReport CRD Kyverno ships (`config/crds/policyreport/` of the Go
module github.com/kyverno/kyverno), read at test time through `go mod download` (Go's module
cache; nothing is copied into this repository).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from aigis.admission.engine import Decision
from aigis.admission.reasons import Reason
from aigis.oversight.audit import AuditFinding, WorkloadAudit
from aigis.oversight.policyreport import (
    OMITTED_ANNOTATION,
    finding_key,
    render_policy_report,
    reported_keys,
    same_report,
)

REPO = Path(__file__).resolve().parents[2]
OUR_CRD = REPO / "charts" / "aigis" / "files" / "policyreports.wgpolicyk8s.io.yaml"
KYVERNO = "github.com/kyverno/kyverno@v1.13.4"
KYVERNO_CRD = "config/crds/policyreport/wgpolicyk8s.io_policyreports.yaml"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@cache
def upstream_crd() -> dict[str, Any]:
    go = shutil.which("go")
    assert go is not None, "the upstream PolicyReport schema is read with `go mod download`"
    result = subprocess.run(
        [go, "mod", "download", "-json", KYVERNO],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd="/",
        env={**__import__("os").environ, "GOFLAGS": ""},
    )
    info = json.loads(result.stdout or "{}")
    assert "Dir" in info, f"go mod download {KYVERNO} failed: {result.stdout} {result.stderr}"
    crd: dict[str, Any] = yaml.safe_load((Path(info["Dir"]) / KYVERNO_CRD).read_text())
    return crd


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha2"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def strict(node: Any) -> Any:
    """The OpenAPI schema as a JSON schema that refuses unknown fields (which the API server
    would silently prune), without descriptions."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items() if k != "description"}
    if node.get("type") == "object" and "properties" in node and node["properties"]:
        out["additionalProperties"] = False
    return out


def structure(node: Any) -> Any:
    """The schema without prose or list/map-type hints: what decides which objects are valid."""
    if isinstance(node, list):
        return [structure(n) for n in node]
    if not isinstance(node, dict):
        return node
    ignored = {"description", "x-kubernetes-list-type", "x-kubernetes-map-type"}
    return {k: structure(v) for k, v in node.items() if k not in ignored}


def audit(name: str, *, denied: int = 0, warned: int = 0, uid: str | None = None) -> WorkloadAudit:
    deny = tuple(
        Reason(f"pod-security/rule-{i}", f"spec.template.spec.containers[{i}]", "bad", "fix it")
        for i in range(denied)
    )
    warn = tuple(
        Reason("shadow-ai", f"spec.w{i}", "looks like AI", "declare it") for i in range(warned)
    )
    return WorkloadAudit(
        kind="Deployment",
        api_version="apps/v1",
        namespace="team-a",
        name=name,
        uid=uid or f"uid-{name}",
        decision=Decision(
            allowed=not deny, reasons=deny + warn, denied=deny, warnings=(), workload=None
        ),
        covered_by=(),
    )


def test_our_crd_has_the_upstream_structure() -> None:
    ours = yaml.safe_load(OUR_CRD.read_text())
    upstream = upstream_crd()
    assert structure(schema_of(ours)) == structure(schema_of(upstream))
    assert ours["metadata"]["name"] == upstream["metadata"]["name"]
    assert ours["spec"]["names"]["kind"] == upstream["spec"]["names"]["kind"]
    assert ours["spec"]["scope"] == "Namespaced"


def test_report_validates_against_the_upstream_schema() -> None:
    audits = [
        audit("a", denied=2, warned=1),
        audit("b"),
        WorkloadAudit(
            kind="Pod",
            api_version="v1",
            namespace="team-a",
            name="p",
            uid=None,
            decision=Decision(True, (), (), (), None),
            covered_by=("bot",),
            findings=(
                AuditFinding(Reason("audit/gateway-missing", "metadata.labels", "m", "f"), True),
            ),
        ),
    ]
    report = render_policy_report("team-a", audits, now=NOW, max_results=2)
    jsonschema.validate(report, strict(schema_of(upstream_crd())))
    jsonschema.validate(report, strict(schema_of(yaml.safe_load(OUR_CRD.read_text()))))
    assert report["summary"] == {"pass": 1, "fail": 3, "warn": 1, "error": 0, "skip": 0}
    # Capped, refusals first, and the cut is said.
    assert [r["result"] for r in report["results"]] == ["fail", "fail"]
    assert report["metadata"]["annotations"] == {OMITTED_ANNOTATION: "2"}
    first = report["results"][0]
    assert first["policy"] == "pod-security"
    assert first["rule"] == "pod-security/rule-0"
    assert first["resources"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "a",
            "namespace": "team-a",
            "uid": "uid-a",
        }
    ]
    assert first["properties"] == {"path": "spec.template.spec.containers[0]", "fix": "fix it"}
    assert first["timestamp"] == {"seconds": int(NOW.timestamp()), "nanos": 0}


def test_an_unchanged_pass_renders_the_same_report() -> None:
    audits = [audit("a", denied=1), audit("b", warned=1)]
    first = render_policy_report("team-a", audits, now=NOW)
    later = render_policy_report(
        "team-a", audits, now=NOW + timedelta(hours=1), previous=json.loads(json.dumps(first))
    )
    assert later == first
    assert same_report(first, later)
    # A new finding gets its own time; the others keep when they were first seen.
    grown = render_policy_report(
        "team-a", [*audits, audit("c", denied=1)], now=NOW + timedelta(hours=2), previous=first
    )
    assert not same_report(first, grown)
    stamps = {r["resources"][0]["name"]: r["timestamp"]["seconds"] for r in grown["results"]}
    assert stamps["a"] == stamps["b"] == int(NOW.timestamp())
    assert stamps["c"] == int((NOW + timedelta(hours=2)).timestamp())
    assert not same_report(None, first)


def test_reported_keys_are_the_finding_keys() -> None:
    audits = [audit("a", denied=1, warned=1)]
    report = render_policy_report("team-a", audits, now=NOW)
    expected = {finding_key(audits[0], r) for r in audits[0].decision.reasons}
    assert reported_keys(report) == expected
    assert reported_keys(None) == set()


@pytest.mark.parametrize("max_results", [0, 1, 100])
def test_summary_counts_everything_whatever_the_cap(max_results: int) -> None:
    report = render_policy_report(
        "team-a", [audit(f"x{i}", denied=2) for i in range(30)], now=NOW, max_results=max_results
    )
    assert report["summary"]["fail"] == 60
    assert len(report["results"]) == min(60, max_results)
