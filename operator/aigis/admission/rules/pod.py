"""What the pod rules read about a pod template that exactly one AIWorkload covers.

The engine works these facts out once per review (the workload's validity and compliance, where
aigis's gateway sidecar is, whether the injection will add or move anything) and hands them to
every check as one `CoveredPod`, so each check is a function of that value alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aigis.admission.reasons import Reason
from aigis.admission.rules.bounds import PolicyBounds
from aigis.admission.templates import PodTemplate
from aigis.api.aiworkload import AIWorkloadSpec
from aigis.api.errors import FieldError
from aigis.egress.compliance import ComplianceReport


@dataclass(frozen=True, slots=True)
class GatewaySidecar:
    """What the review found of the gateway sidecar (`aigis.admission.rules.gateway`)."""

    path: str | None = None
    """Path of the container that is aigis's gateway; None when there is none."""
    volumes: frozenset[str] = frozenset()
    """The pod volumes that gateway mounts."""
    reasons: tuple[Reason, ...] = ()
    """Containers named like the gateway that are not it."""


@dataclass(frozen=True, slots=True)
class CoveredPod:
    """A pod template, the one AIWorkload covering it, and what follows from the two."""

    template: PodTemplate
    bounds: PolicyBounds
    workload: str
    """The covering AIWorkload's name ("" if it has none)."""
    shown: str
    """That name as findings show it (quoted)."""
    model: AIWorkloadSpec | None
    """The workload's spec; None when it does not meet the schema."""
    errors: Sequence[FieldError]
    """Everything wrong with the workload's spec (empty when it is valid)."""
    report: ComplianceReport | None
    """The workload's compliance with the governing policies; None when its spec is invalid."""
    gateway: GatewaySidecar
    will_inject: bool
    """Whether the injection gives pods of this template the gateway."""
    injected: bool
    """Whether the pod has (or will have) the gateway to hold the provider keys."""
    moves: bool
    """Whether the injection is still to move the declared key env entries (a template, or a
    manifest offline) rather than having run already (a Pod in the webhook)."""
    key_volumes: Mapping[str, str]
    """Pod volume name -> the Secret holding a declared provider key that it exposes."""
    now: datetime

    @property
    def valid_model(self) -> AIWorkloadSpec | None:
        """The workload's spec when it is valid; None when anything is wrong with it."""
        return self.model if not self.errors else None

    @property
    def labels_path(self) -> str:
        """Where findings about the pod as a whole point: its labels, which pick the workload."""
        return f"{self.template.metadata_path}.labels"
