"""What an AIWorkload's status should say, as a pure function of what the operator found.

Conditions follow the Kubernetes convention (type, status, reason, message, lastTransitionTime,
observedGeneration); `lastTransitionTime` moves only when a condition's status changes, so a
reconcile that finds nothing new writes an identical status and the API server sees a no-op.

- Invalid: the spec breaks a rule only code can check (the schema refuses the rest).
- Compliant: the spec stays within its dataRegions and every governing AIClusterPolicy.
- NetworkPolicyApplied: the egress policy in force matches the declaration.
- Ready: the workload is reconciled: valid, and its policy applied (or in Audit mode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aigis.api.errors import FieldError
from aigis.egress.compliance import ComplianceReport

# Status must stay small whatever the spec: a few KiB per object even with many errors.
MAX_VIOLATIONS = 20
MAX_MESSAGE_CHARS = 1024
MAX_POLICY_NAMES = 16

READY = "Ready"
INVALID = "Invalid"
COMPLIANT = "Compliant"
NETWORK_POLICY_APPLIED = "NetworkPolicyApplied"

APPLIED = "Applied"
AUDIT_MODE = "AuditMode"


@dataclass(frozen=True, slots=True)
class EgressOutcome:
    """What the operator did about the workload's network policy."""

    reason: str
    """Applied, AuditMode, or why not (e.g. ApplyFailed)."""
    message: str
    policy_names: tuple[str, ...] = ()

    @property
    def in_force(self) -> bool:
        return self.reason in (APPLIED, AUDIT_MODE)


def rfc3339(moment: datetime) -> str:
    """Kubernetes' timestamp format: UTC, second precision, `Z` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarise(problems: Sequence[str]) -> str:
    """One human message for a condition: the first problems in full, then a count."""
    shown = list(problems[:3])
    if len(problems) > 3:
        shown.append(f"and {len(problems) - 3} more (see status.violations)")
    return _clip("; ".join(shown))


def summarise_errors(errors: Sequence[FieldError]) -> str:
    return summarise([str(e) for e in errors])


class _Conditions:
    """Builds conditions, carrying lastTransitionTime over from the previous status."""

    def __init__(
        self, previous_status: Mapping[str, Any] | None, generation: int | None, now: datetime
    ) -> None:
        self._previous = {
            c["type"]: c
            for c in (previous_status or {}).get("conditions") or []
            if isinstance(c, Mapping) and isinstance(c.get("type"), str)
        }
        self._generation = generation
        self._now = now
        self.items: list[dict[str, Any]] = []

    def add(self, kind: str, status: str, reason: str, message: str) -> None:
        before = self._previous.get(kind, {})
        unchanged = before.get("status") == status and "lastTransitionTime" in before
        condition: dict[str, Any] = {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": _clip(message),
            "lastTransitionTime": before["lastTransitionTime"] if unchanged else rfc3339(self._now),
        }
        if self._generation is not None:
            condition["observedGeneration"] = self._generation
        self.items.append(condition)


def build_aiworkload_status(
    *,
    generation: int | None,
    errors: Sequence[FieldError],
    previous_status: Mapping[str, Any] | None,
    now: datetime,
    compliance: ComplianceReport | None = None,
    egress: EgressOutcome | None = None,
    pods_matched: int | None = None,
    gateway_config: str | None = None,
) -> dict[str, Any]:
    """The status fields the operator owns.

    An invalid spec lists its errors as violations; a valid one lists its compliance findings.
    Either way the list is capped, so `kubectl get -o yaml` shows what to fix and etcd stays small.
    """
    conditions = _Conditions(previous_status, generation, now)
    status: dict[str, Any] = {}
    if errors:
        summary = summarise_errors(errors)
        conditions.add(READY, "False", "InvalidSpec", summary)
        conditions.add(INVALID, "True", "InvalidSpec", summary)
        if compliance is not None or egress is not None:
            conditions.add(COMPLIANT, "Unknown", "InvalidSpec", "fix the spec first")
            conditions.add(
                NETWORK_POLICY_APPLIED,
                "False",
                "InvalidSpec",
                "the spec is invalid; policies already in force are left as they were",
            )
        status["violations"] = [
            {"rule": "InvalidSpec", "path": _clip(e.path, 256), "message": _clip(e.message)}
            for e in errors[:MAX_VIOLATIONS]
        ]
    else:
        if egress is None or egress.in_force:
            conditions.add(READY, "True", "Reconciled", "the spec is valid and has been reconciled")
        else:
            conditions.add(READY, "False", egress.reason, egress.message)
        conditions.add(INVALID, "False", "Valid", "the spec is valid")
        findings = compliance.findings if compliance is not None else ()
        if compliance is not None:
            if findings:
                conditions.add(
                    COMPLIANT,
                    "False",
                    "NonCompliant",
                    summarise([f"{f.path}: {f.message}" for f in findings]),
                )
            else:
                conditions.add(
                    COMPLIANT, "True", "Compliant", "within dataRegions and the cluster policies"
                )
        if egress is not None:
            conditions.add(
                NETWORK_POLICY_APPLIED,
                "True" if egress.reason == APPLIED else "False",
                egress.reason,
                egress.message,
            )
            status["networkPolicies"] = list(egress.policy_names[:MAX_POLICY_NAMES])
        status["violations"] = [
            {"rule": f.rule, "path": _clip(f.path, 256), "message": _clip(f.message)}
            for f in findings[:MAX_VIOLATIONS]
        ]
    if pods_matched is not None:
        status["podsMatched"] = pods_matched
    if gateway_config is not None:
        status["gatewayConfigMap"] = gateway_config
    status["conditions"] = conditions.items
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def build_cluster_policy_status(
    *,
    generation: int | None,
    errors: Sequence[FieldError],
    previous_status: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """An AIClusterPolicy's status: Ready, or Invalid (and ignored) with the fields to fix."""
    conditions = _Conditions(previous_status, generation, now)
    if errors:
        summary = summarise_errors(errors) + "; the policy is ignored until it is fixed"
        conditions.add(READY, "False", "InvalidSpec", summary)
        conditions.add(INVALID, "True", "InvalidSpec", summary)
    else:
        conditions.add(READY, "True", "Reconciled", "the policy is valid and in force")
        conditions.add(INVALID, "False", "Valid", "the policy is valid")
    status: dict[str, Any] = {"conditions": conditions.items}
    if generation is not None:
        status["observedGeneration"] = generation
    return status
