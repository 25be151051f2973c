"""aigis's own objects: what an AIWorkload's or AIClusterPolicy's schema cannot say, and the
bounds the governing policies set on an AIWorkload.

Validation is `aigis.api.validation` and compliance `aigis.egress.compliance` (the functions the
operator uses to write `status`); this module names their findings. A compliance finding's rule
is `aiworkload/` and the kebab-case of the compliance rule (`PolicyRegion` ->
`aiworkload/policy-region`). Whether a finding refuses the object is the engine's decision: an
invalid object always, a compliance finding only where a governing policy enforces (a workload in
Audit must be storable so its status can say what is wrong), a stale red-team attestation never
(`aigis.admission.rules.workload`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aigis.admission.reasons import Reason
from aigis.admission.rules.rule import Family, Rule
from aigis.api.errors import FieldError
from aigis.api.validation import parse_aiworkload_spec, parse_cluster_policy_spec
from aigis.egress import compliance
from aigis.egress.compliance import ComplianceReport, evaluate_compliance

RULE_AIWORKLOAD_INVALID: Final = "aiworkload/invalid"
RULE_CLUSTER_POLICY_INVALID: Final = "clusterpolicy/invalid"
AIWORKLOAD_POLICY_RULE_PREFIX: Final = "aiworkload/"

_FAMILY: Final = "resources"
_FIX_OPENINGS: Final = (
    "write ",
    "remove",
    "add ",
    "use ",
    "declare ",
    "list ",
    "fix ",
    "make ",
    "shorten",
    "ask ",
    "keep ",
    "split ",
    "choose ",
    "set ",
    "did you mean",
)
_GENERIC_FIX: Final = "correct this field and apply the object again"


def compliance_rule_id(compliance_rule: str) -> str:
    """The rule id of a compliance finding: `PolicyRegion` -> `aiworkload/policy-region`."""
    return AIWORKLOAD_POLICY_RULE_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "-", compliance_rule).lower()


RULE_AIWORKLOAD_POLICY_REGION: Final = compliance_rule_id(compliance.POLICY_REGION)
RULE_AIWORKLOAD_DATA_REGION: Final = compliance_rule_id(compliance.DATA_REGION)
RULE_AIWORKLOAD_UNKNOWN_REGION: Final = compliance_rule_id(compliance.UNKNOWN_REGION)
RULE_AIWORKLOAD_REGION_MISMATCH: Final = compliance_rule_id(compliance.REGION_MISMATCH)
RULE_AIWORKLOAD_POLICY_HOST: Final = compliance_rule_id(compliance.POLICY_HOST)
RULE_AIWORKLOAD_POLICY_PROVIDER: Final = compliance_rule_id(compliance.POLICY_PROVIDER)


def aiworkload_invalid(errors: Sequence[FieldError]) -> list[Reason]:
    """Everything wrong with an AIWorkload's spec, one finding per field."""
    return [field_reason(RULE_AIWORKLOAD_INVALID, e) for e in errors]


def aiworkload_compliance(report: ComplianceReport) -> list[Reason]:
    """A valid AIWorkload's compliance findings, each under its own `aiworkload/*` rule."""
    return [
        field_reason(compliance_rule_id(f.rule), FieldError(f.path, f.message))
        for f in report.findings
    ]


def cluster_policy_invalid(spec: Mapping[str, Any] | None) -> list[Reason]:
    """Everything wrong with an AIClusterPolicy's spec, one finding per field."""
    _, errors = parse_cluster_policy_spec({} if spec is None else spec)
    return [field_reason(RULE_CLUSTER_POLICY_INVALID, e) for e in errors]


def field_reason(rule: str, error: FieldError) -> Reason:
    """A FieldError as a Reason: its message usually ends with the fix after a semicolon."""
    head, separator, tail = error.message.rpartition("; ")
    if separator and tail.lower().startswith(_FIX_OPENINGS):
        return Reason(rule, error.path, head, tail)
    return Reason(rule, error.path, error.message, _GENERIC_FIX)


def _compliance(rule_id: str, title: str, checks: str, fix: str) -> Rule:
    return Rule(
        id=rule_id, title=title, checks=checks, fix=fix, family=_FAMILY, check=evaluate_compliance
    )


FAMILY: Final = Family(
    name=_FAMILY,
    title="AIWorkload and AIClusterPolicy objects",
    summary="Reviewed when the objects themselves are applied. Compliance findings refuse an "
    "AIWorkload only where a governing policy enforces; they are also listed in its "
    "status.violations, and its pods are refused under workload/not-compliant.",
    rules=(
        Rule(
            id=RULE_AIWORKLOAD_INVALID,
            title="Invalid AIWorkload",
            checks="The AIWorkload's spec meets its schema and the checks the schema cannot "
            "express (selector, egress hosts and regions, models, provider keys and the like). "
            "One finding per field.",
            fix="Correct the field the finding names; its message says how.",
            family=_FAMILY,
            check=parse_aiworkload_spec,
        ),
        Rule(
            id=RULE_CLUSTER_POLICY_INVALID,
            title="Invalid AIClusterPolicy",
            checks="The AIClusterPolicy's spec meets its schema and the checks the schema "
            "cannot express (namespace selector, regions, hosts, registries). One finding per "
            "field.",
            fix="Correct the field the finding names; its message says how.",
            family=_FAMILY,
            check=parse_cluster_policy_spec,
        ),
        _compliance(
            RULE_AIWORKLOAD_POLICY_REGION,
            "Region not allowed by policy",
            "Each of spec.dataRegions, and the region of each egress entry, is among the "
            "allowedRegions of every governing policy that sets them.",
            "Remove the region, or use an endpoint in a region the policies allow.",
        ),
        _compliance(
            RULE_AIWORKLOAD_DATA_REGION,
            "Egress outside the workload's data regions",
            "Each egress entry whose region is known is in one of the workload's own "
            "spec.dataRegions.",
            "Use an endpoint in a declared region, or add its region to spec.dataRegions.",
        ),
        _compliance(
            RULE_AIWORKLOAD_UNKNOWN_REGION,
            "Egress to an unknown region",
            "Where a governing policy sets unknownRegions: Deny, aigis can tell where each "
            "egress entry processes data (its endpoint catalogue, or a declared region the "
            "policies trust).",
            "Use an endpoint aigis's catalogue places in an allowed region, or declare the "
            "entry's region where the policies trust declared regions.",
        ),
        _compliance(
            RULE_AIWORKLOAD_REGION_MISMATCH,
            "Declared region contradicts the catalogue",
            "An egress entry's declared region agrees with where aigis's endpoint catalogue "
            "places its host (for a wildcard, every host it covers); the catalogue wins.",
            "Remove region from the entry or use an endpoint in the region you need; for a "
            "wildcard, declare the hosts you need as exact entries.",
        ),
        _compliance(
            RULE_AIWORKLOAD_POLICY_HOST,
            "Egress host not allowed by policy",
            "Each egress host is covered by the allowedHosts of every governing policy that "
            "sets them.",
            "Ask the platform team to allow the host, or remove the entry.",
        ),
        _compliance(
            RULE_AIWORKLOAD_POLICY_PROVIDER,
            "Model provider not allowed by policy",
            "Each of spec.models uses a provider among the allowedProviders of every governing "
            "policy that sets them.",
            "Use an allowed provider, or ask the platform team to allow this one.",
        ),
    ),
)
