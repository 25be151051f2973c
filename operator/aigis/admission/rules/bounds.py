"""The AIClusterPolicies governing a namespace, combined into the bounds the pod rules apply.

Where several policies govern a namespace, the strictest setting wins: the highest Pod Security
level and shadow-AI mode, the smallest red-team age, every registry restriction at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aigis.admission.podsecurity import Level
from aigis.api.clusterpolicy import ShadowAIMode
from aigis.egress.compliance import NamedPolicy

_LEVEL_ORDER: Final[Mapping[str, int]] = {"privileged": 0, "baseline": 1, "restricted": 2}
_SHADOW_ORDER: Final[Mapping[str, int]] = {"Off": 0, "Audit": 1, "Enforce": 2}


@dataclass(frozen=True, slots=True)
class PolicyBounds:
    """The governing policies combined: where several apply, the strictest setting wins."""

    policies: tuple[NamedPolicy, ...]
    enforce: bool
    """Whether any governing policy says Enforce."""
    shadow_ai: ShadowAIMode
    pod_security: Level | None
    """The strictest level; None when no policy governs the namespace."""
    registries: tuple[NamedPolicy, ...]
    """The policies that restrict registries: an image must satisfy each of them."""
    digest_required_by: tuple[str, ...]
    red_team_max_age_days: int | None
    red_team_policy: str | None
    """Name of the policy with the smallest red-team age."""
    injection_opt_out_allowed: bool
    """Whether the opt-out annotation is honoured: only when every governing policy allows it
    (and thus never where no policy governs)."""


def policy_bounds(policies: Sequence[NamedPolicy]) -> PolicyBounds:
    """Combine the policies governing one namespace (see `governing_policies`)."""
    shadow: ShadowAIMode = "Off"
    level: Level | None = None
    max_age: int | None = None
    max_age_policy: str | None = None
    for policy in policies:
        spec = policy.spec
        if _SHADOW_ORDER[spec.shadow_ai] > _SHADOW_ORDER[shadow]:
            shadow = spec.shadow_ai
        if level is None or _LEVEL_ORDER[spec.pod_security] > _LEVEL_ORDER[level]:
            level = spec.pod_security
        age = spec.red_team_max_age_days
        if age is not None and (max_age is None or age < max_age):
            max_age, max_age_policy = age, policy.name
    return PolicyBounds(
        policies=tuple(policies),
        enforce=any(p.spec.enforcement == "Enforce" for p in policies),
        shadow_ai=shadow,
        pod_security=level,
        registries=tuple(p for p in policies if p.spec.allowed_registries),
        digest_required_by=tuple(p.name for p in policies if p.spec.require_digest),
        red_team_max_age_days=max_age,
        red_team_policy=max_age_policy,
        injection_opt_out_allowed=bool(policies)
        and all(p.spec.allow_injection_opt_out for p in policies),
    )
