"""The background audit's findings as a wg-policy PolicyReport, one per namespace.

`wgpolicyk8s.io/v1alpha2` PolicyReport is the format the Kubernetes policy ecosystem reads
(Kyverno writes it; Policy Reporter, dashboards and exporters read it), so aigis's findings show
up next to everyone else's. One object per namespace, named `aigis-audit`:

- `results`: one per finding (a `Reason` of the admission engine, or an audit-only finding):
  `policy` is the rule's family (the part of the rule id before `/`, e.g. `pod-security`),
  `rule` the rule id, `result` `fail` (admission would refuse the object today) or `warn` (it
  would admit it with a warning), `severity` high or medium, `resources` the object, `message`
  the field path and what is wrong, `properties` the path and the fix, `source` `aigis`.
- Capped at `max_results` (refusals first), so a namespace with thousands of pods never fills
  etcd; `summary` holds the complete counts (`fail` and `warn` count findings, `pass` the
  objects with none), and the annotation `aigis.dev/omitted-results` says how many results
  were left out.
- A result's `timestamp` is when a finding was first seen: carried over from the previous report
  for the same object, rule and path. So a pass that finds nothing new renders the same object,
  and `same_report` lets the shell skip the write.

Pure: no I/O, no clock (`now` is passed in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from aigis.admission.reasons import Reason
from aigis.egress.networkpolicy import MANAGED_BY, MANAGED_BY_LABEL
from aigis.oversight.audit import WorkloadAudit

GROUP: Final = "wgpolicyk8s.io"
VERSION: Final = "v1alpha2"
API_VERSION: Final = f"{GROUP}/{VERSION}"
PLURAL: Final = "policyreports"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"
REPORT_NAME: Final = "aigis-audit"
SOURCE: Final = "aigis"
CATEGORY: Final = "AI governance"
OMITTED_ANNOTATION: Final = "aigis.dev/omitted-results"
MAX_RESULTS: Final = 100
MAX_MESSAGE_CHARS: Final = 1024
_SEVERITY: Final = {"fail": "high", "warn": "medium"}

FindingKey = tuple[str, str, str]
"""(object UID or kind/name, rule id, field path): one finding, across passes."""


def finding_key(audit: WorkloadAudit, reason: Reason) -> FindingKey:
    """The identity of one finding about one object, stable from pass to pass."""
    return (audit.uid or f"{audit.kind}/{audit.name}", reason.rule, reason.path)


def findings(audit: WorkloadAudit) -> list[tuple[str, Reason]]:
    """Every finding of `audit` as (result, reason): `fail` ones first, then `warn`."""
    return [("fail", r) for r in audit.denied] + [("warn", r) for r in audit.warned]


def render_policy_report(
    namespace: str,
    audits: Iterable[WorkloadAudit],
    *,
    now: datetime,
    previous: Mapping[str, Any] | None = None,
    max_results: int = MAX_RESULTS,
) -> dict[str, Any]:
    """The PolicyReport of `namespace` for the audits of its objects (see the module docstring).

    `previous` is the stored report, if any: its results' timestamps are kept for findings it
    already had.
    """
    first_seen = _first_seen(previous)
    stamp = {"seconds": int(now.timestamp()), "nanos": 0}
    rows: list[tuple[int, str, str, str, dict[str, Any]]] = []
    passed = 0
    for audit in audits:
        found = findings(audit)
        if not found:
            passed += 1
        for result, reason in found:
            key = finding_key(audit, reason)
            rows.append(
                (
                    0 if result == "fail" else 1,
                    audit.kind,
                    audit.name,
                    reason.rule,
                    _result(audit, result, reason, first_seen.get(key, stamp)),
                )
            )
    rows.sort(key=lambda row: row[:4])
    fail = sum(1 for row in rows if row[0] == 0)
    shown = [row[4] for row in rows[:max_results]]
    metadata: dict[str, Any] = {
        "name": REPORT_NAME,
        "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
    }
    if len(rows) > max_results:
        metadata["annotations"] = {OMITTED_ANNOTATION: str(len(rows) - max_results)}
    return {
        "apiVersion": API_VERSION,
        "kind": "PolicyReport",
        "metadata": metadata,
        "summary": {"pass": passed, "fail": fail, "warn": len(rows) - fail, "error": 0, "skip": 0},
        "results": shown,
    }


def same_report(stored: Mapping[str, Any] | None, rendered: Mapping[str, Any]) -> bool:
    """Whether writing `rendered` would change nothing a reader sees in `stored`."""
    if stored is None:
        return False
    stored_meta = stored.get("metadata") or {}
    rendered_meta = rendered.get("metadata") or {}
    omitted = (stored_meta.get("annotations") or {}).get(OMITTED_ANNOTATION)
    return (
        stored.get("summary") == rendered.get("summary")
        and (stored.get("results") or []) == rendered.get("results")
        and omitted == (rendered_meta.get("annotations") or {}).get(OMITTED_ANNOTATION)
        and (stored_meta.get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY
    )


def reported_keys(report: Mapping[str, Any] | None) -> set[FindingKey]:
    """The findings a stored report lists (what an earlier pass already announced)."""
    keys: set[FindingKey] = set()
    for result in (report or {}).get("results") or ():
        key = _key_of(result)
        if key is not None:
            keys.add(key)
    return keys


def _first_seen(previous: Mapping[str, Any] | None) -> dict[FindingKey, Any]:
    found: dict[FindingKey, Any] = {}
    for result in (previous or {}).get("results") or ():
        key = _key_of(result)
        stamp = result.get("timestamp") if isinstance(result, Mapping) else None
        if key is not None and isinstance(stamp, Mapping):
            found[key] = dict(stamp)
    return found


def _key_of(result: object) -> FindingKey | None:
    if not isinstance(result, Mapping):
        return None
    resources = result.get("resources") or [{}]
    resource = resources[0] if isinstance(resources, Sequence) and resources else {}
    properties = result.get("properties") or {}
    if not isinstance(resource, Mapping) or not isinstance(properties, Mapping):
        return None
    subject = resource.get("uid") or f"{resource.get('kind')}/{resource.get('name')}"
    rule, path = result.get("rule"), properties.get("path")
    if not isinstance(rule, str) or not isinstance(path, str):
        return None
    return (str(subject), rule, path)


def _result(
    audit: WorkloadAudit, result: str, reason: Reason, stamp: Mapping[str, Any]
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "apiVersion": audit.api_version,
        "kind": audit.kind,
        "name": audit.name,
        "namespace": audit.namespace,
    }
    if audit.uid:
        resource["uid"] = audit.uid
    message = f"{reason.path}: {reason.message}"
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return {
        "source": SOURCE,
        "policy": reason.rule.partition("/")[0],
        "rule": reason.rule,
        "category": CATEGORY,
        "severity": _SEVERITY[result],
        "result": result,
        "scored": True,
        "timestamp": dict(stamp),
        "resources": [resource],
        "message": message,
        "properties": {"path": reason.path, "fix": reason.fix[:MAX_MESSAGE_CHARS]},
    }
