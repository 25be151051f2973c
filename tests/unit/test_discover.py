"""`aigis discover` on manifests: AI workloads found, declared or not, and valid drafts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from aigis.api.validation import parse_aiworkload_spec
from aigis.cli import main
from aigis.oversight.discover import discover, draft_aiworkload

CORPUS = Path(__file__).resolve().parents[1] / "data" / "shadow"
DECLARED = """\
apiVersion: aigis.dev/v1alpha1
kind: AIWorkload
metadata: {name: chat, namespace: apps}
spec:
  selector: {matchLabels: {app: chat-ui}}
  owner: team-chat
  purpose: Chat.
"""


def load(*names: str) -> list[dict[str, Any]]:
    objects = []
    for name in names:
        objects.extend(d for d in yaml.safe_load_all((CORPUS / name).read_text()) if d)
    return objects


def test_undeclared_and_declared() -> None:
    objects = [*load("ai/chat-ui-ollama-client.yaml", "ai/ollama.yaml", "plain/nginx.yaml")]
    objects.append(yaml.safe_load(DECLARED))
    found = {(f.kind, f.name): f for f in discover(objects)}
    assert set(found) == {("Deployment", "chat-ui"), ("Deployment", "ollama")}
    assert found["Deployment", "chat-ui"].declared_by == ("chat",)
    assert not found["Deployment", "ollama"].declared
    assert found["Deployment", "ollama"].evidence


def test_controlled_objects_are_reported_through_their_owner() -> None:
    (deployment,) = load("ai/ollama.yaml")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "ollama-abc",
            "namespace": "ollama",
            "labels": {"name": "ollama"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "ollama-1", "controller": True}],
        },
        "spec": deployment["spec"]["template"]["spec"],
    }
    assert [f.kind for f in discover([deployment, pod])] == ["Deployment"]


def test_every_draft_of_the_ai_corpus_is_a_valid_audit_aiworkload() -> None:
    objects = [d for p in sorted((CORPUS / "ai").glob("*.yaml")) for d in load(f"ai/{p.name}")]
    found = discover(objects)
    assert len(found) == len(objects)
    for item in found:
        draft = draft_aiworkload(item)
        if item.kind == "ServingRuntime":
            assert draft is None  # a template for other pods: no labels to select
            continue
        assert draft is not None, item.name
        model, errors = parse_aiworkload_spec(draft["spec"])
        assert not errors, (item.name, errors)
        assert model is not None
        assert model.enforcement == "Audit"
        assert not model.gateway.inject
        assert draft["spec"]["selector"]["matchLabels"], item.name


def test_cli_json_and_drafts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["discover", "-o", "json", "--drafts", str(tmp_path), str(CORPUS / "ai" / "ollama.yaml")],
    )
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert record["declared"] is False
    assert record["draft"]["spec"]["enforcement"] == "Audit"
    (draft,) = tmp_path.glob("*.yaml")
    assert yaml.safe_load(draft.read_text())["kind"] == "AIWorkload"
