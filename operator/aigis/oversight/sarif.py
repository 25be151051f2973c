"""Admission findings as a SARIF 2.1.0 log, the format code-scanning UIs read.

One run; `tool.driver.rules` is the admission rule registry (`aigis.admission.rules`): each rule's
id, title (short description), what it checks (full description) and fix (help). A finding is a
result with its rule id, `error` when it refuses the object and `warning` when it is only warned,
the message and fix, the file and the line of the object (the first line of its YAML document),
and the field path as a logical location, since SARIF regions are lines and admission speaks in
field paths. A partial fingerprint (rule, object, field) lets a UI follow a finding across
commits when lines move.

Pure: plain values in, a JSON-ready dict out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from aigis.admission.rules import Rule, all_rules
from aigis.admission.rules.reference import anchor

SARIF_VERSION: Final = "2.1.0"
SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME: Final = "aigis"
INFORMATION_URI: Final = "https://github.com/aigis-dev/aigis"
RULES_DOC: Final = "docs/rules.md"
FINGERPRINT: Final = "aigisFinding/v1"

Level = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One admission finding and where it is."""

    rule: str
    level: Level
    message: str
    fix: str
    uri: str
    """The file, relative to the repository root where possible (`deploy/app.yaml`)."""
    line: int
    """The first line of the object's document (1-based)."""
    path: str
    """The field the finding is about, in the object (`spec.template.spec.containers[0]`)."""
    object_name: str
    """`Kind namespace/name` of the object, for the logical location."""


def finding_uri(source: str, root: str | None = None) -> str:
    """A file name as a SARIF artifact URI: POSIX slashes, relative to `root` when under it."""
    text = source.replace("\\", "/")
    if text == "<stdin>":
        return "stdin"
    if root:
        base = root.replace("\\", "/").rstrip("/") + "/"
        if text.startswith(base):
            return text[len(base) :]
    return text.removeprefix("./")


def rule_descriptor(entry: Rule) -> dict[str, Any]:
    """A registered rule as a SARIF reportingDescriptor."""
    return {
        "id": entry.id,
        "name": _pascal(entry.id),
        "shortDescription": {"text": entry.title},
        "fullDescription": {"text": entry.checks},
        "help": {"text": f"Fix: {entry.fix}", "markdown": f"**Fix:** {entry.fix}"},
        "helpUri": f"{INFORMATION_URI}/blob/main/{RULES_DOC}#{anchor(entry.id)}",
        "properties": {"family": entry.family, "tags": ["security", "ai", entry.family]},
    }


def render_sarif(
    findings: Sequence[Finding],
    *,
    version: str,
    rules: Iterable[Rule] | None = None,
) -> dict[str, Any]:
    """The SARIF log of `findings`; `rules` defaults to every registered rule."""
    descriptors = [rule_descriptor(r) for r in (all_rules() if rules is None else rules)]
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    for finding in findings:
        if finding.rule not in index:
            # An id outside the registry (an AIWorkload's per-policy id): listed, undocumented.
            index[finding.rule] = len(descriptors)
            descriptors.append({"id": finding.rule, "shortDescription": {"text": finding.rule}})
    results = [_result(f, index[f.rule]) for f in findings]
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": version,
                        "semanticVersion": version,
                        "informationUri": INFORMATION_URI,
                        "rules": descriptors,
                    }
                },
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    identity = "\x00".join((finding.rule, finding.object_name, finding.path))
    return {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": finding.level,
        "message": {
            "text": f"{finding.object_name}: {finding.path}: {finding.message}. Fix: {finding.fix}"
        },
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": finding.uri},
                    "region": {"startLine": max(1, finding.line)},
                },
                "logicalLocations": [
                    {
                        "name": finding.path,
                        "fullyQualifiedName": f"{finding.object_name}:{finding.path}",
                        "kind": "member",
                    }
                ],
            }
        ],
        "partialFingerprints": {
            FINGERPRINT: hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
        },
    }


def _pascal(rule_id: str) -> str:
    return "".join(p.capitalize() for p in rule_id.replace("/", "-").split("-") if p)
