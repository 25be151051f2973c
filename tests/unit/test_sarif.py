"""`aigis scan --output sarif`: a SARIF 2.1.0 log that validates against the OASIS schema.

The schema is the official `sarif-schema-2.1.0.json` as embedded in the Go module
github.com/owenrumney/go-sarif/v3 (pkg/report/v210/sarif/schema.go), fetched into the Go module
cache with `go mod download` at test time; no copy is kept in this repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from aigis.admission.rules import all_rules
from aigis.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "scan"
GO_SARIF = "github.com/owenrumney/go-sarif/v3@v3.3.1"
SCHEMA_SOURCE = "pkg/report/v210/sarif/schema.go"


@lru_cache(maxsize=1)
def sarif_schema() -> dict[str, Any]:
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        pytest.skip("the SARIF schema comes from a Go module and go is not installed")
    result = subprocess.run(
        [go, "mod", "download", "-json", GO_SARIF],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        cwd="/",
        env={**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "on"},
    )
    source = (Path(json.loads(result.stdout)["Dir"]) / SCHEMA_SOURCE).read_text(encoding="utf-8")
    text = source.split("`", 2)[1]
    schema = json.loads(text)
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return dict(schema)


def scan_sarif(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["scan", "-o", "sarif", "--now", "2026-03-01", *args])
    return result.exit_code, json.loads(result.stdout)


def test_sarif_validates_against_the_oasis_schema() -> None:
    code, log = scan_sarif(str(DATA))
    assert code == 1
    validator = jsonschema.Draft4Validator(
        sarif_schema(), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_a_broken_log_does_not_validate() -> None:
    _, log = scan_sarif(str(DATA))
    log["runs"][0]["results"][0]["level"] = "deny"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(log, sarif_schema(), cls=jsonschema.Draft4Validator)


def test_driver_rules_are_the_registry() -> None:
    _, log = scan_sarif(str(DATA))
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    registered = [r.id for r in all_rules()]
    assert [r["id"] for r in rules[: len(registered)]] == registered
    for rule in rules[: len(registered)]:
        assert rule["shortDescription"]["text"]
        assert rule["fullDescription"]["text"]
        assert rule["help"]["text"].startswith("Fix: ")


def test_results_carry_level_file_line_and_field(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "apiVersion: aigis.dev/v1alpha1\nkind: AIClusterPolicy\nmetadata: {name: org}\n"
        "spec: {enforcement: Enforce, shadowAI: Enforce}\n---\n# the model server\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: llm}\nspec:\n  template:\n"
        "    metadata: {labels: {app: llm}}\n    spec:\n"
        "      containers: [{name: m, image: ollama/ollama}]\n",
        encoding="utf-8",
    )
    code, log = scan_sarif(str(manifest))
    assert code == 1
    (result,) = log["runs"][0]["results"]
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert result["ruleId"] == "shadow-ai" == rules[result["ruleIndex"]]["id"]
    assert result["level"] == "error"
    location = result["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"].endswith("m.yaml")
    assert location["physicalLocation"]["region"]["startLine"] == 7
    assert location["logicalLocations"][0]["name"] == "spec.template.metadata.labels"
    assert "Fix: declare it" in result["message"]["text"]


def test_warnings_are_warning_level(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "apiVersion: aigis.dev/v1alpha1\nkind: AIClusterPolicy\nmetadata: {name: org}\n"
        "spec: {enforcement: Audit, shadowAI: Audit}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: llm, labels: {app: llm}}\n"
        "spec: {containers: [{name: m, image: ollama/ollama}]}\n",
        encoding="utf-8",
    )
    code, log = scan_sarif(str(manifest))
    assert code == 0
    assert {r["level"] for r in log["runs"][0]["results"]} == {"warning"}
