"""`aigis report`'s core: the report model built from a fixed set of objects, its three renderings,
escaping, and the consistency of the controls mapping."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from aigis.cli import main
from aigis.oversight.report import (
    FACTS,
    REPORT_API_VERSION,
    Control,
    ControlTable,
    Report,
    build_report,
    controls_problems,
    load_controls,
    md,
    render_html,
    render_json,
    render_markdown,
    report_dict,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
FORBIDDEN = 'pods in namespace "finance": forbidden'
DIGEST = "@sha256:" + "a" * 64
APP = [
    {
        "name": "app",
        "image": "registry.example.com/bot" + DIGEST,
        "env": [{"name": "OPENAI_BASE_URL", "value": "http://127.0.0.1:8080/v1"}],
    }
]
GATEWAY = {
    "name": "aigis-gateway",
    "image": "registry.example.com/aigis@sha256:" + "b" * 64,
    "restartPolicy": "Always",
}
LEGACY = [
    {"name": "app", "image": "python:3.12", "env": [{"name": "LLM_MODEL", "value": "gpt-4o"}]}
]
VLLM = [
    {
        "name": "server",
        "image": "vllm/vllm-openai:v0.6.0",
        "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct"],
    }
]


def condition(kind: str, status: str) -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "reason": "Test",
        "message": "",
        "lastTransitionTime": "2026-12-06T00:00:00Z",
    }


def aiworkload(
    name: str,
    namespace: str,
    labels: dict[str, str],
    *,
    owner: str = "team-a",
    enforcement: str = "Enforce",
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {
            "selector": {"matchLabels": labels},
            "owner": owner,
            "purpose": f"{name} answers questions",
            "enforcement": enforcement,
            "models": [{"provider": "openai", "name": "gpt-4o"}],
            "egress": [{"host": "api.openai.com"}],
        },
    }
    if status is not None:
        obj["status"] = status
    return obj


def deployment(
    name: str, namespace: str, labels: dict[str, str], containers: list[Any], uid: str
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"automountServiceAccountToken": False, "containers": containers},
            },
        },
    }


def replicaset(
    name: str, namespace: str, labels: dict[str, str], containers: list[Any], uid: str, owner: str
) -> dict[str, Any]:
    obj = deployment(name, namespace, labels, containers, uid)
    obj["kind"] = "ReplicaSet"
    obj["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
            "uid": owner,
            "controller": True,
        }
    ]
    return obj


def pod(
    name: str,
    namespace: str,
    labels: dict[str, str],
    containers: list[Any],
    owner: str,
    init: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "uid": f"uid-{name}",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "rs",
                    "uid": owner,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "automountServiceAccountToken": False,
            "containers": containers,
            "initContainers": list(init),
        },
        "status": {"phase": "Running"},
    }


def cluster_objects() -> list[dict[str, Any]]:
    """team-a: `bot` (covered, injected, compliant) and `legacy` (covered, Audit, its pod runs
    without the gateway, status non-compliant, owner unassigned); team-b: `llm` (a vLLM server
    no AIWorkload covers: shadow) and `web` (nginx: not AI, not in the report)."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}},
        aiworkload(
            "bot",
            "team-a",
            {"app": "bot"},
            status={
                "conditions": [
                    condition("Ready", "True"),
                    condition("Compliant", "True"),
                    condition("NetworkPolicyApplied", "True"),
                ],
                "networkPolicies": ["aigis-bot"],
                "lastSnapshot": "bot-snap",
            },
        ),
        aiworkload(
            "legacy",
            "team-a",
            {"app": "legacy"},
            owner="unassigned",
            enforcement="Audit",
            status={
                "conditions": [condition("Compliant", "False")],
                "violations": [
                    {"rule": "policy/regions", "path": "spec.dataRegions", "message": "us is out"}
                ],
            },
        ),
        deployment("bot", "team-a", {"app": "bot"}, APP, "d-bot"),
        replicaset("bot-1", "team-a", {"app": "bot"}, APP, "r-bot", "d-bot"),
        pod(
            "bot-1-a",
            "team-a",
            {"app": "bot", "aigis.dev/workload": "bot"},
            APP,
            "r-bot",
            init=(GATEWAY,),
        ),
        deployment("legacy", "team-a", {"app": "legacy"}, LEGACY, "d-legacy"),
        replicaset("legacy-1", "team-a", {"app": "legacy"}, LEGACY, "r-legacy", "d-legacy"),
        pod("legacy-1-a", "team-a", {"app": "legacy"}, LEGACY, "r-legacy"),
        deployment("llm", "team-b", {"app": "llm"}, VLLM, "d-llm"),
        deployment(
            "web", "team-b", {"app": "web"}, [{"name": "nginx", "image": "nginx:1.27"}], "d-web"
        ),
        {
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "ForensicSnapshot",
            "metadata": {"name": "bot-snap", "namespace": "team-a"},
            "spec": {"pod": {"name": "bot-0-x"}, "trigger": "Termination"},
            "status": {
                "phase": "Stored",
                "complete": True,
                "auditChain": "intact: 3 audit line(s) verified",
                "storage": {"backend": "Secrets", "objects": ["bot-snap-0"]},
            },
        },
    ]


@pytest.fixture(scope="module")
def report() -> Report:
    return build_report(cluster_objects(), now=NOW, unreadable=[FORBIDDEN])


# --- the model ------------------------------------------------------------------------------------


def test_counts_name_each_workload_compliant_non_compliant_or_shadow(report: Report) -> None:
    states = {(w.namespace, w.name): w.state for w in report.workloads}
    assert states == {
        ("team-a", "bot"): "compliant",
        ("team-a", "legacy"): "non-compliant",
        ("team-b", "llm"): "shadow",
    }
    assert report_dict(report)["summary"] == {
        "workloads": 3,
        "compliant": 1,
        "nonCompliant": 1,
        "shadow": 1,
        "declarations": 2,
        "violations": 2,
        "unreadable": 1,
    }


def test_inventory_rows_carry_declaration_owner_verdict_and_evidence(report: Report) -> None:
    rows = {w.name: w for w in report.workloads}
    assert rows["bot"].declared_by == ("bot",)
    assert rows["bot"].owners == ("team-a",)
    assert rows["bot"].verdict == "allow"
    assert rows["bot"].pods == 1
    assert rows["legacy"].verdict == "warn"
    assert rows["llm"].verdict == "-"  # team-b holds no AIWorkload and no policy governs it
    assert any("vLLM" in e for e in rows["llm"].evidence)
    assert "web" not in rows


def test_declarations_join_the_audit_with_the_operator_status(report: Report) -> None:
    found = {d.name: d for d in report.declarations}
    bot, legacy = found["bot"], found["legacy"]
    assert (bot.ready, bot.compliant, bot.network_policy) == ("True", "True", "True")
    assert bot.covers == ("Deployment/bot",)
    assert (legacy.compliant, legacy.owner, legacy.status_violations) == ("False", "unassigned", 1)


def test_open_violations_name_rule_object_field_and_fix(report: Report) -> None:
    found = {(v.rule, v.object): v for v in report.violations}
    missing = found["audit/gateway-missing", "Deployment/legacy"]
    assert (missing.source, missing.effect, missing.path) == (
        "audit",
        "warn",
        "spec.template.metadata.labels",
    )
    assert "rollout restart deployment/legacy" in missing.fix
    status = found["policy/regions", "AIWorkload/legacy"]
    assert (status.source, status.path, status.message) == (
        "status",
        "spec.dataRegions",
        "us is out",
    )
    assert status.fix
    assert not any(v.object == "Deployment/bot" for v in report.violations)


def test_guardrail_coverage_counts_pods_running_the_gateway(report: Report) -> None:
    rows = {g.name: g for g in report.guardrails}
    assert (rows["bot"].pods, rows["bot"].pods_injected) == (1, 1)
    assert (rows["legacy"].pods, rows["legacy"].pods_injected) == (1, 0)
    assert rows["bot"].prompt_injection == "Block at 0.5"
    assert rows["bot"].secrets == "Block"
    assert rows["legacy"].enforcement == "Audit"


def test_forensic_readiness_per_workload_and_snapshot(report: Report) -> None:
    rows = {f.name: f for f in report.forensics}
    assert rows["bot"].capture_on_termination
    assert (rows["bot"].storage, rows["bot"].object_lock) == ("Secrets", "-")
    assert rows["bot"].last_snapshot == "bot-snap"
    (snapshot,) = report.snapshots
    assert (snapshot.name, snapshot.complete, snapshot.phase) == ("bot-snap", True, "Stored")
    assert snapshot.audit_chain.startswith("intact")


def test_facts_count_met_of_total_with_names(report: Report) -> None:
    facts = report.facts
    assert set(facts) == set(FACTS)
    assert (facts["discovery.declared"].met, facts["discovery.declared"].of) == (2, 3)
    assert facts["discovery.declared"].gaps == ("Deployment team-b/llm",)
    assert (facts["gateway.pods_injected"].met, facts["gateway.pods_injected"].of) == (1, 2)
    assert facts["gateway.pods_injected"].level == "some"
    assert facts["forensics.snapshots_complete"].level == "full"
    assert facts["forensics.object_lock"].level == "none"
    assert facts["declarations.owned"].gaps == ("team-a/legacy",)
    assert facts["admission.policies"].of is None


def test_control_status_follows_its_evidence(report: Report) -> None:
    status = {c.id: c.status for c in report.controls}
    assert status["shadow-ai-discovery"] == "partial"  # 2 of 3 declared
    assert status["audit-chain"] == "partial"  # one pod without the gateway
    assert status["forensics"] == "partial"  # no Object Lock
    empty = build_report([], now=NOW)
    assert {c.status for c in empty.controls} == {"missing"}


def test_unreadable_parts_are_listed_and_the_rest_is_reported(report: Report) -> None:
    assert report.unreadable == (FORBIDDEN,)
    for text in (render_markdown(report), render_html(report)):
        assert "finance" in text
    assert report_dict(report)["unreadable"] == [FORBIDDEN]


def test_board_view_summarises_trust_accountability_resilience(report: Report) -> None:
    assert [s.title for s in report.board] == ["Trust", "Accountability", "Resilience"]
    figures = {f.label: f for s in report.board for f in s.figures}
    assert figures["AI workloads compliant"].value == "1 of 3"
    assert figures["Shadow AI workloads"].value == "1"
    assert figures["Shadow AI workloads"].detail == "team-b/llm"
    assert figures["Accountable owners"].value == "1"
    assert figures["Forensic capture on"].value == "2 of 2"
    assert figures["Enforcement mode"].value == "1 Enforce, 1 Audit"
    assert figures["Not readable"].tone == "warn"


# --- renderings -----------------------------------------------------------------------------------


def test_json_shape_is_stable(report: Report) -> None:
    data = json.loads(render_json(report))
    assert data["apiVersion"] == REPORT_API_VERSION
    assert list(data) == [
        "apiVersion", "summary", "generatedAt", "scope", "declarations", "workloads",
        "violations", "guardrails", "forensics", "snapshots", "controls", "board", "unreadable",
        "facts",
    ]  # fmt: skip
    assert set(data["workloads"][0]) == {
        "kind", "namespace", "name", "state", "declaredBy", "owners", "verdict", "findings",
        "pods", "evidence",
    }  # fmt: skip
    assert set(data["violations"][0]) == {
        "source", "effect", "rule", "namespace", "object", "path", "message", "fix",
    }  # fmt: skip
    assert set(data["controls"][0]) == {"id", "title", "what", "nist", "iso", "evidence", "status"}
    assert set(data["controls"][0]["evidence"][0]) == {
        "key", "label", "met", "of", "level", "names", "gaps",
    }  # fmt: skip
    assert render_json(report) == render_json(build_report(cluster_objects(), now=NOW,
                                                            unreadable=[FORBIDDEN]))  # fmt: skip


def test_markdown_has_every_section_in_order_and_exact_rows(report: Report) -> None:
    text = render_markdown(report)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[:2] == ["# aigis compliance report", "## Board view"]
    order = [
        "## Inventory",
        "### AIWorkloads: compliance per declaration",
        "## Open violations",
        "## Guardrail coverage",
        "## Forensic readiness",
        "### ForensicSnapshots",
        "## Controls: NIST AI RMF and ISO/IEC 42001 Annex A",
    ]
    assert [h for h in headings if h in order] == order
    assert "| compliant | Deployment | team-a | bot | bot | team-a | allow | 1 |" in text
    assert "| shadow | Deployment | team-b | llm | - | - | - | 0 |" in text
    assert "- **AI workloads compliant: 1 of 3**" in text
    assert "| team-a | bot | injected | 1 of 1 | Enforce | Block at 0.5 |" in text
    assert "audit/gateway\\-missing" not in text  # `-` is not escaped; `_` and `|` are
    assert "| warn | audit/gateway-missing | team-a | Deployment/legacy |" in text


HOSTILE = "<script>alert(1)</script>|*x*_[a](b)&amp;"


def hostile_report() -> Report:
    objects = cluster_objects()
    shadow = deployment(HOSTILE, "team-b", {"app": "evil"}, VLLM, "d-evil")
    return build_report([*objects, shadow], now=NOW, unreadable=[f"pods in namespace {HOSTILE}"])


def test_html_escapes_names_from_the_cluster() -> None:
    page = render_html(hostile_report())
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;|*x*_[a](b)&amp;amp;" in page


def test_markdown_escapes_names_from_the_cluster() -> None:
    text = render_markdown(hostile_report())
    widths: list[int] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            widths.append(len(re.split(r"(?<!\\)\|", line)))
        elif widths:
            assert len(set(widths)) == 1, widths  # a `|` in a value does not add a column
            widths = []
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\|\\*x\\*\\_\\[a\\](b)&amp;amp;" in text
    assert md("a|b") == "a\\|b"


def test_html_is_one_self_contained_page(report: Report) -> None:
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "<style>" in page
    for needle in ("<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import"):
        assert needle not in page.lower(), needle
    assert "default-src 'none'" in page


# --- the controls mapping -------------------------------------------------------------------------


def test_the_controls_table_names_only_known_ids_and_facts() -> None:
    table = load_controls()
    assert controls_problems(table) == []
    assert {c.id for c in table.controls} >= {
        "egress-network-policy", "admission-rules", "gateway-guardrails", "audit-chain",
        "forensics", "shadow-ai-discovery", "ai-bom", "background-audit",
    }  # fmt: skip
    functions = {i.split()[0] for c in table.controls for i in c.nist}
    assert functions == {"GOVERN", "MAP", "MEASURE", "MANAGE"}


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        (Control("x", "X", "x", ("GOVERN 9.9",), ("A.2.2",), ("audit.clean",)), "not in the nist"),
        (Control("x", "X", "x", ("GOVERN 1.6",), ("A.11.1",), ("audit.clean",)), "not in the iso"),
        (Control("x", "X", "x", ("GOVERN 1.6",), ("A.2.2",), ("audit.everything",)), "FACTS"),
    ],
)
def test_a_control_naming_an_unknown_id_or_fact_is_a_problem(broken: Control, problem: str) -> None:
    table = load_controls()
    bad = replace(table, controls=(*table.controls, broken))
    assert any(problem in p for p in controls_problems(bad)), controls_problems(bad)
    assert controls_problems(ControlTable({"GOVERN 99": "x"}, {"B.1": "y"}, ())) == [
        "nist: 'GOVERN 99' is not a NIST AI RMF id",
        "iso: 'B.1' is not an Annex A control id",
    ]


def test_the_controls_file_names_its_sources() -> None:
    text = (Path(__file__).parents[2] / "operator/aigis/oversight/controls.yaml").read_text()
    assert "NIST AI 100-1" in text
    assert "ISO/IEC 42001:2023" in text


# --- the command ----------------------------------------------------------------------------------


def test_report_of_manifests_lists_a_bad_file_with_its_line_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump_all(cluster_objects()))
    (tmp_path / "bad.yaml").write_text("kind: Deployment\nmetadata: [\n")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["report", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["summary"]["shadow"] == 1
    (problem,) = data["unreadable"]
    assert problem.startswith(f"{tmp_path / 'bad.yaml'}:3:")


@pytest.mark.parametrize(
    ("args", "start"),
    [
        ([], "# aigis compliance report"),
        (["--output", "html"], "<!DOCTYPE html>"),
        (["--output", "json"], "{"),
    ],
)
def test_report_prints_each_format(tmp_path: Path, args: list[str], start: str) -> None:
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump_all(cluster_objects()))
    result = CliRunner().invoke(main, ["report", *args, str(tmp_path / "ok.yaml")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(start)


def test_report_namespace_filter_keeps_only_that_namespace(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump_all(cluster_objects()))
    result = CliRunner().invoke(
        main, ["report", "--output", "json", "-n", "team-b", str(tmp_path / "ok.yaml")]
    )
    assert result.exit_code == 0, result.output
    names = [w["name"] for w in json.loads(result.stdout)["workloads"]]
    assert names == ["llm"]


def test_live_bom_images_use_the_digest_the_kubelet_resolved() -> None:
    from aigis.oversight.cli import running_images

    workload = aiworkload("legacy", "team-a", {"app": "legacy"})
    running = pod("legacy-1-a", "team-a", {"app": "legacy"}, LEGACY, "r-legacy")
    running["status"]["containerStatuses"] = [
        {
            "name": "app",
            "image": "python:3.12",
            "imageID": "docker-pullable://docker.io/library/python@sha256:" + "c" * 64,
        }
    ]
    other = pod("bot-1-a", "team-a", {"app": "bot"}, APP, "r-bot")
    assert running_images(workload, [running, other]) == [
        "docker.io/library/python@sha256:" + "c" * 64
    ]
