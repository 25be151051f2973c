"""The covering AIWorkload: there is exactly one, it is valid, compliant and red-teamed recently.

Decisions (and why):
- Validity and compliance are computed from the workload's spec and the governing policies, with
  the functions the operator uses to write `status`, rather than read from `status` (see the
  engine's module docstring), so a pod is judged against the workload as it is now.
- Several AIWorkloads covering one pod: which declaration applies is unknown, so only that is
  reported, with every covering workload named.
- A non-compliant workload is reported on its pods by its first finding, the rest counted: the
  AIWorkload's own review and its status list them all, and a refusal must stay readable in
  kubectl's output.
- Red-team freshness: the maximum age is the smallest of the governing policies'
  `redTeamMaxAgeDays` and the workload's own `assurance.requiredFreshnessDays`. A date more than a
  day in the future (beyond any time-zone difference) is not an attestation. On the AIWorkload
  object the same finding is only warned (the engine decides that), on its pods it refuses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from aigis.admission.reading import name_of, quote
from aigis.admission.reasons import Reason
from aigis.admission.rules.bounds import PolicyBounds
from aigis.admission.rules.pod import CoveredPod
from aigis.admission.rules.rule import Family, Rule
from aigis.admission.templates import PodTemplate
from aigis.api.aiworkload import AIWorkloadSpec

RULE_MULTIPLE_COVER: Final = "workload/multiple-cover"
RULE_WORKLOAD_INVALID: Final = "workload/invalid"
RULE_WORKLOAD_NOT_COMPLIANT: Final = "workload/not-compliant"
RULE_RED_TEAM: Final = "assurance/red-team-stale"

_FAMILY: Final = "workload"
_MAX_ERRORS_SHOWN: Final = 3
_FUTURE_TOLERANCE_DAYS: Final = 1


def multiple_cover(template: PodTemplate, covering: Sequence[Mapping[str, Any]]) -> Reason:
    """Several AIWorkloads select the pod: name them all."""
    names = ", ".join(quote(name_of(w) or "?") for w in covering)
    return Reason(
        rule=RULE_MULTIPLE_COVER,
        path=f"{template.metadata_path}.labels",
        message=f"{len(covering)} AIWorkloads cover this pod ({names}), so aigis cannot tell "
        "which declaration applies",
        fix="change the pod's labels or the AIWorkloads' spec.selector so that exactly one "
        "selects it",
    )


def workload_invalid(pod: CoveredPod) -> Iterator[Reason]:
    """The covering workload's spec is invalid: the first few errors, the rest counted."""
    if pod.valid_model is not None:
        return
    listed = "; ".join(str(e) for e in pod.errors[:_MAX_ERRORS_SHOWN])
    more = len(pod.errors) - _MAX_ERRORS_SHOWN
    yield Reason(
        rule=RULE_WORKLOAD_INVALID,
        path=pod.labels_path,
        message=f"is covered by AIWorkload {pod.shown}, whose spec is invalid ({listed}"
        + (f"; and {more} more" if more > 0 else "")
        + ")",
        fix=f"fix AIWorkload {pod.shown} (kubectl describe aiworkload {pod.workload})",
    )


def workload_not_compliant(pod: CoveredPod) -> Iterator[Reason]:
    """The covering workload breaks its dataRegions or a policy: the first finding in full."""
    if pod.report is None or not pod.report.findings:
        return
    first = pod.report.findings[0]
    more = len(pod.report.findings) - 1
    yield Reason(
        rule=RULE_WORKLOAD_NOT_COMPLIANT,
        path=pod.labels_path,
        message=f"is covered by AIWorkload {pod.shown}, which is not compliant: "
        f"{first.path}: {first.message}"
        + (f" (and {more} more finding{'s' * (more > 1)})" if more > 0 else ""),
        fix=f"bring AIWorkload {pod.shown} within its dataRegions and the cluster "
        "policies (see its status.violations)",
    )


def red_team_stale(pod: CoveredPod) -> Iterator[Reason]:
    """The covering workload's red-team attestation, checked on its pods."""
    model = pod.valid_model
    if model is not None:
        yield from red_team_reasons(pod.labels_path, model, pod.shown, pod.bounds, pod.now)


def red_team_reasons(
    path: str,
    model: AIWorkloadSpec,
    shown: str,
    bounds: PolicyBounds,
    now: datetime,
) -> Iterator[Reason]:
    """Whether the workload's last red-team exercise is recent enough (see the module docstring);
    `path` is where the finding points (the pod's labels, or the AIWorkload's field)."""
    assurance = model.assurance
    limits: list[tuple[int, str]] = []
    if bounds.red_team_max_age_days is not None:
        limits.append((bounds.red_team_max_age_days, f"AIClusterPolicy {bounds.red_team_policy}"))
    if assurance is not None and assurance.required_freshness_days is not None:
        limits.append(
            (assurance.required_freshness_days, "its spec.assurance.requiredFreshnessDays")
        )
    if not limits:
        return
    max_age, source = min(limits)
    last = assurance.last_red_team if assurance is not None else None
    fix = (
        f"run a red-team exercise and record its date in spec.assurance.lastRedTeam of "
        f"AIWorkload {shown}"
    )
    if last is None:
        yield Reason(
            rule=RULE_RED_TEAM,
            path=path,
            message=f"AIWorkload {shown} records no red-team exercise "
            f"(spec.assurance.lastRedTeam), but {source} requires one at most {max_age} days old",
            fix=fix,
        )
        return
    age = (now.date() - last).days
    if age > max_age:
        yield Reason(
            rule=RULE_RED_TEAM,
            path=path,
            message=f"the last red-team exercise of AIWorkload {shown} "
            f"({last.isoformat()}) is {age} days old; {source} allows at most {max_age}",
            fix=fix,
        )
    elif age < -_FUTURE_TOLERANCE_DAYS:
        yield Reason(
            rule=RULE_RED_TEAM,
            path=path,
            message=f"spec.assurance.lastRedTeam of AIWorkload {shown} "
            f"({last.isoformat()}) is in the future, so it attests nothing",
            fix="record the date the exercise actually took place",
        )


FAMILY: Final = Family(
    name=_FAMILY,
    title="The covering AIWorkload",
    summary="A pod an AIWorkload covers is held to that declaration: exactly one workload must "
    "cover it, and it must be valid, compliant and recently red-teamed.",
    rules=(
        Rule(
            id=RULE_MULTIPLE_COVER,
            title="Several AIWorkloads cover the pod",
            checks="More than one AIWorkload's spec.selector selects the pod, so which "
            "declaration applies is unknown. Nothing else is reported for such a pod.",
            fix="Change the pod's labels or the AIWorkloads' spec.selector so that exactly one "
            "selects it.",
            family=_FAMILY,
            check=multiple_cover,
        ),
        Rule(
            id=RULE_WORKLOAD_INVALID,
            title="Covering AIWorkload is invalid",
            checks="The spec of the AIWorkload covering the pod does not validate, so the pod "
            "has no usable declaration.",
            fix="Fix the AIWorkload's spec: applying it, or kubectl describe, lists every error.",
            family=_FAMILY,
            check=workload_invalid,
        ),
        Rule(
            id=RULE_WORKLOAD_NOT_COMPLIANT,
            title="Covering AIWorkload is not compliant",
            checks="The AIWorkload covering the pod breaks its own dataRegions or a governing "
            "AIClusterPolicy (regions, hosts, providers; the aiworkload/* rules).",
            fix="Bring the AIWorkload within its dataRegions and the cluster policies (see its "
            "status.violations).",
            family=_FAMILY,
            check=workload_not_compliant,
        ),
        Rule(
            id=RULE_RED_TEAM,
            title="Red-team exercise missing or stale",
            checks="The workload's spec.assurance.lastRedTeam is missing, older than the "
            "smallest of the policies' redTeamMaxAgeDays and its own requiredFreshnessDays, or "
            "in the future. Reported on the workload's pods like every finding about them; on "
            "the AIWorkload object itself it is only ever a warning.",
            fix="Run a red-team exercise and record its date in spec.assurance.lastRedTeam.",
            family=_FAMILY,
            check=red_team_stale,
        ),
    ),
)
