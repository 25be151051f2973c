"""The rule registry: every id a finding can carry is registered once, with its documentation,
and `docs/rules.md` is the reference rendered from it."""

from __future__ import annotations

import importlib
import io
import json
import pkgutil
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

import aigis.admission
from aigis.admission import engine, podsecurity
from aigis.admission.rules import FAMILIES, Family, Rule, all_rules, is_registered, rule
from aigis.admission.rules.reference import REGENERATE, render_markdown
from aigis.admission.rules.resources import compliance_rule_id
from aigis.cli import main
from aigis.egress import compliance
from aigis.scan import read_documents, review_documents

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "rules.md"
SCAN_DATA = ROOT / "tests" / "data" / "scan"


def admission_modules() -> list[ModuleType]:
    """Every module of `aigis.admission` (the rule families included)."""
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(aigis.admission.__path__, prefix="aigis.admission.")
    ]


def rule_constants() -> dict[str, str]:
    """Every module-level `RULE_*` string of the admission modules: the ids findings carry."""
    found: dict[str, str] = {}
    for module in admission_modules():
        for name, value in vars(module).items():
            if name.startswith("RULE_") and isinstance(value, str):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_docs_rules_md_is_generated_from_the_registry() -> None:
    expected = render_markdown(FAMILIES)
    assert DOCS.read_text(encoding="utf-8") == expected, (
        f"docs/rules.md is out of date; run `{REGENERATE}`"
    )


def test_rule_ids_are_unique() -> None:
    ids = [r.id for family in FAMILIES for r in family.rules]
    assert len(ids) == len(set(ids))
    assert [r.id for r in all_rules()] == ids


def test_a_rule_registered_twice_is_refused() -> None:
    from aigis.admission.rules import _index

    twice = Family("shadow", "t", "s", (all_rules()[0],))
    with pytest.raises(ValueError, match="registered twice"):
        _index((*FAMILIES, twice))


def test_a_rule_in_the_wrong_family_is_refused() -> None:
    stray = Rule(id="x/y", title="t", checks="c", fix="f", family="images")
    with pytest.raises(ValueError, match="another family"):
        Family("shadow", "t", "s", (stray,))


@pytest.mark.parametrize("entry", all_rules(), ids=lambda r: r.id)
def test_every_rule_is_documented(entry: Rule) -> None:
    assert entry.title.strip()
    assert entry.checks.strip()
    assert entry.fix.strip()
    assert entry.checks.endswith("."), "checks is one or two full sentences"
    assert entry.fix.endswith("."), "fix is a full sentence"
    module = importlib.import_module(entry.module)
    assert entry in module.FAMILY.rules
    assert entry.check is None or callable(entry.check)
    assert rule(entry.id) is entry


def test_every_family_module_is_registered() -> None:
    package = importlib.import_module("aigis.admission.rules")
    with_family = {
        info.name
        for info in pkgutil.iter_modules(package.__path__, prefix="aigis.admission.rules.")
        if isinstance(getattr(importlib.import_module(info.name), "FAMILY", None), Family)
    }
    assert with_family == {family.module for family in FAMILIES}


def test_unknown_ids_are_not_registered() -> None:
    assert not is_registered("pod-security/no-such-check")
    with pytest.raises(KeyError):
        rule("no-such-rule")


def test_every_rule_constant_is_registered() -> None:
    constants = rule_constants()
    # The families' own constants, the engine's re-exports and the Pod Security checks' ids.
    assert "aigis.admission.engine.RULE_SHADOW_AI" in constants
    assert "aigis.admission.podsecurity.RULE_PRIVILEGED" in constants
    unregistered = {name: value for name, value in constants.items() if not is_registered(value)}
    assert unregistered == {}


def test_every_registered_rule_has_a_constant_or_a_compliance_finding() -> None:
    """The registry names no id nothing can produce."""
    producible = set(rule_constants().values()) | {
        compliance_rule_id(name) for name in compliance_finding_names()
    }
    assert {r.id for r in all_rules()} - producible == set()


def test_every_pod_security_check_is_registered() -> None:
    pss = podsecurity.BASELINE_RULES | podsecurity.RESTRICTED_RULES
    assert all(is_registered(rule_id) for rule_id in pss)
    registered = {r.id for r in all_rules() if r.family == "podsecurity"}
    assert registered == pss


def compliance_finding_names() -> set[str]:
    """The rule names `aigis.egress.compliance` gives its findings."""
    return set(compliance.FINDING_RULES)


def test_every_compliance_finding_is_registered() -> None:
    names = compliance_finding_names()
    assert {"PolicyRegion", "RegionMismatch", "PolicyProvider"} <= names
    ids = {compliance_rule_id(name) for name in names}
    assert {rule_id for rule_id in ids if not is_registered(rule_id)} == set()


def test_compliance_rule_ids_keep_their_spelling() -> None:
    assert compliance_rule_id("PolicyRegion") == "aiworkload/policy-region"
    assert compliance_rule_id("RegionMismatch") == "aiworkload/region-mismatch"


def test_every_pod_check_of_the_engine_is_a_registered_check() -> None:
    registered = {r.check for r in all_rules()}
    assert [c for c in engine.COVERED_POD_CHECKS if c not in registered] == []


def test_every_reason_the_engine_gives_on_the_scan_data_is_registered() -> None:
    documents, problems = read_documents([str(SCAN_DATA)], io.StringIO())
    assert problems == []
    reviews = review_documents(documents, now=datetime(2026, 3, 1, tzinfo=UTC))
    produced = {reason.rule for review in reviews for reason in review.decision.reasons}
    assert len(produced) >= 5, "the scan data should exercise several rule families"
    assert {r for r in produced if not is_registered(r)} == set()


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, ["rules", *args], catch_exceptions=False)
    assert result.exit_code == 0
    return result.stdout


def test_cli_table_lists_every_rule() -> None:
    lines = invoke().splitlines()
    assert lines[0].split() == ["RULE", "FAMILY", "TITLE"]
    assert [line.split()[0] for line in lines[1:]] == [r.id for r in all_rules()]


def test_cli_json_has_every_field() -> None:
    records = json.loads(invoke("--output", "json"))
    assert [r["id"] for r in records] == [r.id for r in all_rules()]
    by_id = {r["id"]: r for r in records}
    assert by_id["image/digest"] == {
        "id": "image/digest",
        "title": rule("image/digest").title,
        "checks": rule("image/digest").checks,
        "fix": rule("image/digest").fix,
        "family": "images",
        "module": "aigis.admission.rules.images",
        "check": "aigis.admission.rules.images.image_sources",
    }


def test_cli_markdown_is_the_reference() -> None:
    assert invoke("-o", "markdown") == render_markdown(FAMILIES)
