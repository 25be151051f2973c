"""`aigis bom`: a CycloneDX ML-BOM per AIWorkload, valid against the schema the library ships."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from aigis.cli import main
from aigis.oversight.bom import BomError, bom_json, render_bom, workload_images

NOW = datetime(2026, 3, 1, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
WORKLOAD = f"""\
apiVersion: aigis.dev/v1alpha1
kind: AIWorkload
metadata: {{name: rag, namespace: llm}}
spec:
  selector: {{matchLabels: {{app: rag}}}}
  owner: team-search
  purpose: Answers questions from the wiki.
  enforcement: Audit
  dataRegions: [eu]
  models:
    - provider: self-hosted
      name: mistral-7b
      image: "vllm/vllm-openai@{DIGEST}"
      source: "hf://mistralai/Mistral-7B-v0.3"
      digest: "{DIGEST}"
    - provider: anthropic
      name: claude-sonnet-4-5
  egress:
    - host: eu.api.openai.com
    - service: {{namespace: llm, name: mistral}}
      ports: [{{port: 8000}}]
  gateway:
    upstreams:
      - provider: self-hosted
        baseUrl: "http://mistral.llm.svc:8000/v1"
"""
APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: rag, namespace: llm}
spec:
  template:
    metadata: {labels: {app: rag}}
    spec:
      containers: [{name: app, image: "ghcr.io/acme/rag:1.2"}]
"""


def as_bom(text: str = WORKLOAD, objects: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    workload = yaml.safe_load(text)
    images = workload_images(workload, objects or [], "default")
    return dict(json.loads(bom_json(render_bom(workload, images=images, now=NOW))))


def test_bom_validates_against_the_cyclonedx_schema() -> None:
    text = bom_json(render_bom(yaml.safe_load(WORKLOAD), images=["ghcr.io/acme/rag:1.2"], now=NOW))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None


def test_models_images_and_hosts() -> None:
    bom = as_bom(objects=[yaml.safe_load(APP)])
    by_type: dict[str, list[dict[str, Any]]] = {}
    for component in bom["components"]:
        by_type.setdefault(component["type"], []).append(component)
    models = {(m["group"], m["name"]) for m in by_type["machine-learning-model"]}
    assert models == {("self-hosted", "mistral-7b"), ("anthropic", "claude-sonnet-4-5")}
    (mistral,) = [m for m in by_type["machine-learning-model"] if m["name"] == "mistral-7b"]
    assert mistral["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert (
        mistral["externalReferences"][0]["url"]
        == "https://huggingface.co/mistralai/Mistral-7B-v0.3"
    )
    images = {c["name"]: c for c in by_type["container"]}
    assert set(images) == {"ghcr.io/acme/rag", "docker.io/vllm/vllm-openai"}
    assert images["docker.io/vllm/vllm-openai"]["hashes"][0]["content"] == "ab" * 32
    hosts = {s["name"] for s in bom["services"]}
    assert hosts == {"eu.api.openai.com", "api.anthropic.com", "mistral.llm.svc"}
    assert bom["metadata"]["component"]["name"] == "rag"


def test_an_uncovered_app_adds_no_image() -> None:
    other = yaml.safe_load(APP.replace("app: rag", "app: other"))
    names = {c["name"] for c in as_bom(objects=[other])["components"]}
    assert "ghcr.io/acme/rag" not in names


def test_an_invalid_workload_is_refused() -> None:
    with pytest.raises(BomError, match="not valid"):
        render_bom(yaml.safe_load(WORKLOAD.replace("team-search", "''")), now=NOW)


def test_cli_writes_one_bom_per_workload(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(f"{WORKLOAD}---\n{APP}", encoding="utf-8")
    result = CliRunner().invoke(main, ["bom", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "out").glob("*.cdx.json")
    assert written.name == "llm-rag.cdx.json"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(written.read_text()) is None


def test_cli_without_workload_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(APP, encoding="utf-8")
    assert CliRunner().invoke(main, ["bom", str(path)]).exit_code == 2
