"""What an AIWorkload's status should say, as a pure function of what the operator found.

Conditions follow the Kubernetes convention (type, status, reason, message, lastTransitionTime,
observedGeneration); `lastTransitionTime` moves only when a condition's status changes, so a
reconcile that finds nothing new writes an identical status and the API server sees a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aigis.api.errors import FieldError

# Status must stay small whatever the spec: a few KiB per object even with many errors.
MAX_VIOLATIONS = 20
MAX_MESSAGE_CHARS = 1024

READY = "Ready"
INVALID = "Invalid"


def rfc3339(moment: datetime) -> str:
    """Kubernetes' timestamp format: UTC, second precision, `Z` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarise_errors(errors: Sequence[FieldError]) -> str:
    """One human message for a condition: the first errors in full, then a count of the rest."""
    shown = [str(e) for e in errors[:3]]
    if len(errors) > 3:
        shown.append(f"and {len(errors) - 3} more (see status.violations)")
    return _clip("; ".join(shown))


def _condition(
    kind: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    previous: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    before = previous.get(kind, {})
    unchanged = before.get("status") == status and "lastTransitionTime" in before
    condition: dict[str, Any] = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": before["lastTransitionTime"] if unchanged else rfc3339(now),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return condition


def build_aiworkload_status(
    *,
    generation: int | None,
    errors: Sequence[FieldError],
    previous_status: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The status fields the operator owns, given the spec's validation errors.

    A valid spec is Ready and not Invalid; an invalid one is the reverse, with each error listed
    (capped) as a violation so `kubectl get -o yaml` shows every field to fix.
    """
    previous_conditions = {
        c["type"]: c
        for c in (previous_status or {}).get("conditions") or []
        if isinstance(c, Mapping) and isinstance(c.get("type"), str)
    }
    if errors:
        summary = summarise_errors(errors)
        conditions = [
            _condition(
                READY, "False", "InvalidSpec", summary, generation, previous_conditions, now
            ),
            _condition(
                INVALID, "True", "InvalidSpec", summary, generation, previous_conditions, now
            ),
        ]
        violations = [
            {"rule": "InvalidSpec", "path": _clip(e.path, 256), "message": _clip(e.message)}
            for e in errors[:MAX_VIOLATIONS]
        ]
    else:
        conditions = [
            _condition(
                READY,
                "True",
                "Reconciled",
                "the spec is valid and has been reconciled",
                generation,
                previous_conditions,
                now,
            ),
            _condition(
                INVALID, "False", "Valid", "the spec is valid", generation, previous_conditions, now
            ),
        ]
        violations = []
    status: dict[str, Any] = {"conditions": conditions, "violations": violations}
    if generation is not None:
        status["observedGeneration"] = generation
    return status
