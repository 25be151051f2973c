"""`aigis scan --output sarif`: what the log says (rules, levels, locations).

Validation against the OASIS SARIF 2.1.0 schema is in tests/conformance/test_sarif_schema.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from aigis.admission.rules import all_rules
from aigis.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "scan"
GO_SARIF = "github.com/owenrumney/go-sarif/v3@v3.3.1"
SCHEMA_SOURCE = "pkg/report/v210/sarif/schema.go"


def scan_sarif(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["scan", "-o", "sarif", "--now", "2026-03-01", *args])
    return result.exit_code, json.loads(result.stdout)


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
