"""Shadow AI: pods that look like AI workloads but no AIWorkload declares.

Evidence (model-serving images, provider key variables, GPU requests, ...) comes from
`aigis.admission.shadow`; this module turns it into the finding. Whether the finding is reported
at all, warned or refused follows the strictest `shadowAI` mode of the governing policies (Off:
not looked at; Audit: warned; Enforce: denied), and the Pod Security Standards apply to such a pod
at the same mode: it is an AI workload, declared or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from aigis.admission.reasons import Reason
from aigis.admission.rules.bounds import PolicyBounds
from aigis.admission.rules.rule import Family, Rule
from aigis.admission.shadow import ai_evidence, looks_like_ai
from aigis.admission.templates import PodTemplate

RULE_SHADOW_AI: Final = "shadow-ai"

_FAMILY: Final = "shadow"
_MAX_EVIDENCE_SHOWN: Final = 5


def shadow_ai(template: PodTemplate, bounds: PolicyBounds) -> Iterator[Reason]:
    """A pod no AIWorkload covers: the finding when it looks like AI and a policy looks."""
    if bounds.shadow_ai == "Off":
        return
    evidence = ai_evidence(template)
    if not looks_like_ai(evidence):
        return
    shown = "; ".join(f"{e.detail}, at {e.path}" for e in evidence[:_MAX_EVIDENCE_SHOWN])
    if len(evidence) > _MAX_EVIDENCE_SHOWN:
        shown += f"; and {len(evidence) - _MAX_EVIDENCE_SHOWN} more"
    yield Reason(
        rule=RULE_SHADOW_AI,
        path=f"{template.metadata_path}.labels",
        message=f"looks like an AI workload, but no AIWorkload covers it and AIClusterPolicy "
        f"{_shadow_policy(bounds)} sets shadowAI: {bounds.shadow_ai}. Evidence: {shown}",
        fix="declare it: apply an AIWorkload whose spec.selector matches these labels, "
        "or remove what makes it AI",
    )


def _shadow_policy(bounds: PolicyBounds) -> str:
    for policy in bounds.policies:
        if policy.spec.shadow_ai == bounds.shadow_ai:
            return policy.name
    return "?"


FAMILY: Final = Family(
    name=_FAMILY,
    title="Shadow AI",
    summary="Pods that run AI without an AIWorkload declaring them. Reported where a governing "
    "AIClusterPolicy sets shadowAI to Audit (warned) or Enforce (refused).",
    rules=(
        Rule(
            id=RULE_SHADOW_AI,
            title="Undeclared AI workload",
            checks="A pod that no AIWorkload's selector covers but that looks like an AI workload "
            "(model-serving images, provider API key variables, GPU requests and the like). The "
            "finding lists the evidence.",
            fix="Apply an AIWorkload whose spec.selector matches the pod's labels, or remove "
            "what makes the pod look like AI.",
            family=_FAMILY,
            check=shadow_ai,
        ),
    ),
)
