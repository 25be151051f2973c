"""`aigis scan`: reading inputs, exit status, output, and agreement with the webhook's view.

The agreement test reviews the manifests in `tests/data/scan/` twice: once through `aigis scan`,
once the way the webhook sees them in a cluster (objects as the API server stores them, namespace
filled in and status written; namespace labels from the Namespace objects plus the
`kubernetes.io/metadata.name` label the API server sets; only valid policies). Every object must
get the same decision and the same reasons.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from aigis.admission.engine import AdmissionContext, is_reviewed, review_object
from aigis.admission.manifests import (
    context_from_manifests,
    expand_lists,
    index_manifests,
    named_policies,
)
from aigis.cli import main
from aigis.scan import (
    EXIT_BAD_INPUT,
    EXIT_DENIED,
    chart_documents,
    find_helm,
    parse_documents,
    parse_now,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "scan"
NOW = "2026-03-01"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")

POLICY = """\
apiVersion: aigis.dev/v1alpha1
kind: AIClusterPolicy
metadata: {name: org}
spec: {enforcement: Enforce, shadowAI: Enforce}
"""
SHADOW = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: llm}
spec:
  template:
    metadata: {labels: {app: llm}}
    spec:
      containers: [{name: m, image: "ollama/ollama"}]
"""
WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
"""


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["scan", *args], input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- exit status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("documents", "expected"),
    [
        pytest.param([WEB], 0, id="nothing-to-refuse"),
        pytest.param([POLICY, WEB], 0, id="ordinary-app-under-policy"),
        pytest.param([POLICY, SHADOW], EXIT_DENIED, id="denied"),
        pytest.param([POLICY.replace("Enforce}", "Audit}"), SHADOW], 0, id="warnings-still-exit-0"),
        pytest.param([SHADOW], 0, id="ungoverned-without-policy"),
        pytest.param(
            ["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"], 0, id="nothing-reviewed"
        ),
    ],
)
def test_exit_status(tmp_path: Path, documents: list[str], expected: int) -> None:
    path = write(tmp_path, "m.yaml", "---\n".join(documents))
    code, _, _ = run(str(path), "--now", NOW)
    assert code == expected


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        pytest.param(
            "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n", "bad.yaml:3:", id="unclosed-flow-sequence"
        ),
        pytest.param("bad.yaml", "a: 1\n  b: 2\n", "bad.yaml:2:", id="bad-indentation"),
        pytest.param(
            "two.yaml", f"{WEB}---\nkey: [\n", "two.yaml:11:", id="error-in-second-document"
        ),
        pytest.param("bad.json", '{"kind": "Pod",\n "spec": }', "bad.json:2:", id="bad-json"),
        pytest.param(
            "scalar.yaml", "just a string\n", "scalar.yaml:1:", id="document-not-a-mapping"
        ),
        pytest.param("bytes.yaml", "kind: Pod\n\udcff", "bytes.yaml: not UTF-8", id="not-utf8"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, name: str, text: str, where: str) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    good = write(tmp_path, "good.yaml", f"{POLICY}---\n{SHADOW}")
    code, stdout, stderr = run(str(good), str(path))
    assert code == EXIT_BAD_INPUT
    assert str(tmp_path / where) in stderr
    assert "DENY" not in stdout  # nothing is reviewed against an incomplete context


def test_missing_path_is_bad_input(tmp_path: Path) -> None:
    code, _, stderr = run(str(tmp_path / "nope.yaml"))
    assert code == EXIT_BAD_INPUT
    assert "nope.yaml: no such file or directory" in stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--now", "yesterday"], id="bad-now"),
        pytest.param(["--namespace-labels", "novalue"], id="bad-labels"),
        pytest.param(["--output", "xml"], id="bad-output"),
        pytest.param([], id="no-path"),
    ],
)
def test_bad_flags_exit_2(tmp_path: Path, args: list[str]) -> None:
    path = write(tmp_path, "m.yaml", WEB)
    code, _, _ = run(*args, *([str(path)] if args else []))
    assert code == EXIT_BAD_INPUT


# --- inputs --------------------------------------------------------------------------------------


def test_directories_are_read_recursively_and_only_manifests(tmp_path: Path) -> None:
    write(tmp_path, "a/policy.yml", POLICY)
    write(tmp_path, "a/b/shadow.yaml", SHADOW)
    write(tmp_path, "c/web.json", json.dumps(yaml.safe_load(WEB)))
    write(tmp_path, "notes.txt", "kind: [broken")
    code, stdout, _ = run(str(tmp_path), "-o", "json", "--now", NOW)
    assert code == EXIT_DENIED
    seen = {(o["kind"], o["name"], o["decision"]) for o in json_lines(stdout)}
    assert seen == {
        ("AIClusterPolicy", "org", "allow"),
        ("Deployment", "llm", "deny"),
        ("Deployment", "web", "allow"),
    }


def test_stdin_and_files_together(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", POLICY)
    code, stdout, _ = run(str(path), "-", "-o", "json", stdin=SHADOW)
    assert code == EXIT_DENIED
    (denied,) = [o for o in json_lines(stdout) if o["decision"] == "deny"]
    assert denied["source"] == "<stdin>:1"


def test_lists_are_expanded(tmp_path: Path) -> None:
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [yaml.safe_load(POLICY), yaml.safe_load(SHADOW)],
    }
    path = write(tmp_path, "list.yaml", yaml.safe_dump(listing))
    code, stdout, _ = run(str(path), "-o", "json")
    assert code == EXIT_DENIED
    assert [o["kind"] for o in json_lines(stdout)] == ["AIClusterPolicy", "Deployment"]


def test_document_line_numbers() -> None:
    documents = parse_documents(f"# comment\n{POLICY}---\n\n{SHADOW}", "f.yaml")
    assert [d.source for d in documents] == ["f.yaml:2", "f.yaml:8"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC), id="date-is-utc-midnight"),
        pytest.param("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC), id="zulu"),
        pytest.param(
            "2026-03-01T10:00:00", datetime(2026, 3, 1, 10, tzinfo=UTC), id="naive-is-utc"
        ),
    ],
)
def test_parse_now(text: str, expected: datetime) -> None:
    assert parse_now(text) == expected


# --- context -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "extra", "expected"),
    [
        pytest.param([], "", 0, id="namespace-not-selected"),
        pytest.param(["--namespace-labels", "env=prod"], "", EXIT_DENIED, id="labels-flag-selects"),
        pytest.param(
            [],
            "---\napiVersion: v1\nkind: Namespace\n"
            "metadata: {name: default, labels: {env: prod}}\n",
            EXIT_DENIED,
            id="namespace-object-selects",
        ),
        pytest.param(["--namespace", "prod"], "", EXIT_DENIED, id="metadata-name-label-selects"),
        pytest.param(
            ["--aigis-namespace", "default", "--namespace-labels", "env=prod"],
            "",
            0,
            id="aigis-namespace-never-governed",
        ),
    ],
)
def test_namespace_selection(tmp_path: Path, args: list[str], extra: str, expected: int) -> None:
    selector = "{kubernetes.io/metadata.name: prod}" if "--namespace" in args else "{env: prod}"
    selective = POLICY.replace(
        "spec: {", f"spec: {{namespaceSelector: {{matchLabels: {selector}}}, "
    )
    path = write(tmp_path, "m.yaml", f"{selective}---\n{SHADOW}{extra}")
    code, _, _ = run(str(path), *args)
    assert code == expected


def test_now_decides_red_team_freshness(tmp_path: Path) -> None:
    policy = POLICY.replace("spec: {", "spec: {redTeamMaxAgeDays: 30, ")
    workload = """\
apiVersion: aigis.dev/v1alpha1
kind: AIWorkload
metadata: {name: bot}
spec:
  selector: {matchLabels: {app: bot}}
  owner: t
  purpose: p
  assurance: {lastRedTeam: 2026-01-01}
---
apiVersion: v1
kind: Pod
metadata: {name: bot, labels: {app: bot}}
spec:
  automountServiceAccountToken: false
  containers: [{name: c, image: "ghcr.io/acme/bot:1"}]
"""
    path = write(tmp_path, "m.yaml", f"{policy}---\n{workload}")
    assert run(str(path), "--now", "2026-01-20")[0] == 0
    code, stdout, _ = run(str(path), "--now", "2026-03-01", "-o", "json")
    assert code == EXIT_DENIED
    (pod,) = [o for o in json_lines(stdout) if o["kind"] == "Pod"]
    assert [r["rule"] for r in pod["reasons"]] == ["assurance/red-team-stale"]


def test_invalid_policies_are_not_context(tmp_path: Path) -> None:
    broken = POLICY.replace("spec: {", "spec: {podSecurity: strict, ")
    path = write(tmp_path, "m.yaml", f"{broken}---\n{SHADOW}")
    code, stdout, _ = run(str(path), "-o", "json")
    results = {o["kind"]: o["decision"] for o in json_lines(stdout)}
    assert results == {"AIClusterPolicy": "deny", "Deployment": "allow"}
    assert code == EXIT_DENIED


# --- output ----------------------------------------------------------------------------------


def test_json_output_shape() -> None:
    code, stdout, _ = run(str(DATA), "-o", "json", "--now", NOW)
    assert code == EXIT_DENIED
    objects = json_lines(stdout)
    assert objects
    for obj in objects:
        assert set(obj) == {"kind", "namespace", "name", "decision", "reasons", "source"}
        assert obj["decision"] in ("allow", "warn", "deny")
        assert (obj["decision"] == "allow") is (obj["reasons"] == [])
        for reason in obj["reasons"]:
            assert set(reason) == {"rule", "path", "message", "fix"}
    assert {o["decision"] for o in objects} == {"allow", "warn", "deny"}


def test_table_output() -> None:
    code, stdout, _ = run(str(DATA), "--now", NOW)
    assert code == EXIT_DENIED
    lines = stdout.splitlines()
    assert lines[0].split() == ["RESULT", "KIND", "NAMESPACE", "NAME", "SOURCE"]
    assert any(line.startswith("DENY   Deployment") and " llm " in line for line in lines)
    assert any("deny [shadow-ai] spec.template.metadata.labels:" in line for line in lines)
    assert any(line.strip().startswith("fix: ") for line in lines)
    assert lines[-1].startswith("16 reviewed: 6 deny, 1 warn, 9 allow")


# --- scan == webhook -------------------------------------------------------------------------


def stored(obj: Mapping[str, Any], namespace: str | None) -> dict[str, Any]:
    """The object as the API server stores it: namespace set, uid and status written."""
    result = copy.deepcopy(dict(obj))
    metadata = result.setdefault("metadata", {})
    metadata["uid"] = f"uid-{metadata.get('name')}"
    if namespace is not None:
        metadata["namespace"] = namespace
    if result.get("kind") == "AIWorkload":
        # Whatever the operator wrote: the engine must not depend on it.
        result["status"] = {"conditions": [{"type": "Compliant", "status": "Unknown"}]}
    return result


def cluster_view(
    documents: list[Mapping[str, Any]],
) -> list[tuple[dict[str, Any], AdmissionContext]]:
    """Each reviewed object with the context the webhook would build from the cluster's state."""
    objects = list(expand_lists(documents))
    kinds_cluster_scoped = {"AIClusterPolicy", "Namespace"}
    placed = [
        stored(
            o,
            None
            if o.get("kind") in kinds_cluster_scoped
            else o.get("metadata", {}).get("namespace", "default"),
        )
        for o in objects
    ]
    labels = {
        o["metadata"]["name"]: {
            "kubernetes.io/metadata.name": o["metadata"]["name"],
            **o["metadata"].get("labels", {}),
        }
        for o in placed
        if o.get("kind") == "Namespace"
    }
    policies = named_policies(placed)
    moment = parse_now(NOW)
    view = []
    for obj in placed:
        if not is_reviewed(obj):
            continue
        namespace = obj["metadata"].get("namespace")
        ctx = AdmissionContext(
            namespace=namespace,
            namespace_labels=labels.get(namespace, {"kubernetes.io/metadata.name": namespace})
            if namespace
            else {},
            workloads=[
                w
                for w in placed
                if w.get("kind") == "AIWorkload" and w["metadata"]["namespace"] == namespace
            ],
            policies=policies,
            aigis_namespace="aigis-system",
            now=moment,
        )
        view.append((obj, ctx))
    return view


def load_data() -> list[Mapping[str, Any]]:
    documents: list[Mapping[str, Any]] = []
    for path in sorted(DATA.rglob("*")):
        if path.suffix in (".yaml", ".yml"):
            documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
        elif path.suffix == ".json":
            documents.append(json.loads(path.read_text()))
    return documents


def test_scan_and_webhook_agree() -> None:
    code, stdout, _ = run(
        str(DATA), "-o", "json", "--now", NOW, "--aigis-namespace", "aigis-system"
    )
    scanned = {(o["kind"], o["namespace"], o["name"]): o for o in json_lines(stdout)}
    webhook = {}
    for obj, ctx in cluster_view(load_data()):
        decision = review_object(obj, ctx)
        verdict = "deny" if not decision.allowed else "warn" if decision.reasons else "allow"
        reasons = [
            {"rule": r.rule, "path": r.path, "message": r.message, "fix": r.fix}
            for r in decision.reasons
        ]
        webhook[obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]] = (
            verdict,
            reasons,
        )
    assert set(scanned) == set(webhook)
    assert len(webhook) == 16
    for key, (verdict, reasons) in webhook.items():
        assert (scanned[key]["decision"], scanned[key]["reasons"]) == (verdict, reasons), key
    assert code == (EXIT_DENIED if any(v == "deny" for v, _ in webhook.values()) else 0)


def test_context_from_manifests_matches_the_index() -> None:
    documents = load_data()
    moment = parse_now(NOW)
    single = context_from_manifests(documents, "support", now=moment)
    indexed = index_manifests(documents).context("support", now=moment)
    assert single == indexed
    assert single.namespace_labels == {
        "kubernetes.io/metadata.name": "support",
        "aigis.dev/governed": "true",
    }
    assert sorted(w["metadata"]["name"] for w in single.workloads) == ["bad-egress", "support-bot"]
    assert [p.name for p in single.policies] == ["agents", "org", "labs"]


@pytest.mark.parametrize("namespace", SYSTEM_NAMESPACES)
def test_system_namespaces_are_never_refused_by_scan(tmp_path: Path, namespace: str) -> None:
    path = write(tmp_path, "m.yaml", f"{POLICY}---\n{SHADOW}")
    code, stdout, _ = run(str(path), "-n", namespace, "-o", "json")
    assert code == 0
    assert all(o["reasons"] == [] for o in json_lines(stdout))


# --- Helm charts -----------------------------------------------------------------------------

CHART = Path(__file__).resolve().parents[1] / "data" / "charts" / "chatbot"
LLM_ON = Path(__file__).resolve().parents[1] / "data" / "chart-values" / "llm-on.yaml"
REPO_CHART = Path(__file__).resolve().parents[2] / "charts" / "aigis"
needs_helm = pytest.mark.skipif(find_helm(None) is None, reason="helm is not installed")


@needs_helm
def test_chart_is_rendered_and_attributed_to_its_templates() -> None:
    code, stdout, _ = run(str(CHART), "-o", "json")
    assert code == 0
    rows = {o["name"]: o for o in json_lines(stdout)}
    assert set(rows) == {"chatbot-web", "chatbot-org"}
    assert rows["chatbot-web"]["source"] == f"{CHART}/templates/web.yaml:1"


@needs_helm
def test_chart_values_files_are_applied() -> None:
    code, stdout, _ = run(str(CHART), "--values", str(LLM_ON), "-o", "json")
    assert code == EXIT_DENIED
    (denied,) = [o for o in json_lines(stdout) if o["decision"] == "deny"]
    assert denied["name"] == "chatbot-llm"
    assert denied["source"].endswith("templates/llm.yaml:1")


@needs_helm
def test_the_repositorys_own_chart_scans_clean() -> None:
    code, stdout, _ = run(str(REPO_CHART), "-o", "json")
    assert code == 0
    assert {o["decision"] for o in json_lines(stdout)} == {"allow"}


def test_chart_without_helm_is_bad_input(tmp_path: Path) -> None:
    code, stdout, stderr = run(str(CHART), "--helm", str(tmp_path / "no-helm"))
    assert code == EXIT_BAD_INPUT
    assert "needs helm" in stderr
    assert stdout == ""


def test_chart_that_does_not_render_is_bad_input(tmp_path: Path) -> None:
    write(tmp_path, "c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n")
    write(tmp_path, "c/templates/x.yaml", "kind: {{ .Values.missing.key }}\n")
    if find_helm(None) is None:
        pytest.skip("helm is not installed")
    code, _, stderr = run(str(tmp_path / "c"))
    assert code == EXIT_BAD_INPUT
    assert "helm template failed" in stderr


def test_chart_documents_are_attributed_by_source_comment() -> None:
    rendered = (
        "---\n# Source: chatbot/templates/web.yaml\napiVersion: v1\nkind: Pod\n"
        "metadata: {name: a}\n---\n# Source: chatbot/templates/sub/pod.yaml\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\n"
    )
    documents = chart_documents(rendered, Path("charts/chatbot"))
    assert [d.source for d in documents] == [
        "charts/chatbot/templates/web.yaml:1",
        "charts/chatbot/templates/sub/pod.yaml:1",
    ]
