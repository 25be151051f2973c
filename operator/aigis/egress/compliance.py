"""Whether an AIWorkload stays within its own data regions and the cluster's policies.

A valid spec can still be non-compliant: an egress host served from a region the workload did
not declare, or one the organisation does not allow. Each finding names the egress entry (or
model) and the rule, and says how to fix it. Entries that break a region or host rule are
listed in `blocked_entries`, so in Enforce mode the network policy leaves them out: the data
boundary is enforced by the network, not only reported.

How several AIClusterPolicies combine: every policy whose namespaceSelector picks the
workload's namespace applies, and the workload must satisfy each of them (the strictest wins).

An entry's region is `aigis.egress.catalogue.effective_region`: the endpoint catalogue's where it
knows the host, else the entry's own `region:`. A declared region the catalogue contradicts (for
a wildcard: that contradicts a host it covers) is a `RegionMismatch` finding. Declared regions
count only while every governing policy trusts them (`trustDeclaredRegions`, default true); when
one does not, such an entry is of unknown region and `unknownRegions` decides.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aigis.api.aiworkload import AIWorkloadSpec, EgressRule
from aigis.api.clusterpolicy import UNGOVERNABLE_NAMESPACES, AIClusterPolicySpec
from aigis.egress.catalogue import effective_region, region_conflicts
from aigis.egress.hosts import pattern_covers


@dataclass(frozen=True, slots=True)
class NamedPolicy:
    """An AIClusterPolicy as the compliance check needs it: its name and a valid spec."""

    name: str
    spec: AIClusterPolicySpec


# The names of compliance findings: status.violations carry them as `rule`, and admission reports
# them as `aiworkload/<kebab-case name>` (aigis.admission.rules.resources registers each).
REGION_MISMATCH: Final = "RegionMismatch"
POLICY_REGION: Final = "PolicyRegion"
UNKNOWN_REGION: Final = "UnknownRegion"
DATA_REGION: Final = "DataRegion"
POLICY_HOST: Final = "PolicyHost"
POLICY_PROVIDER: Final = "PolicyProvider"
FINDING_RULES: Final = (
    REGION_MISMATCH,
    POLICY_REGION,
    UNKNOWN_REGION,
    DATA_REGION,
    POLICY_HOST,
    POLICY_PROVIDER,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One way a workload breaks a region, provider or host rule."""

    rule: str
    path: str
    message: str


@dataclass(frozen=True, slots=True)
class EntryRegion:
    """The data region of one egress entry and how aigis knows it."""

    index: int
    region: str | None
    basis: str


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """The outcome of the compliance check for one workload."""

    findings: tuple[Finding, ...]
    enforcement: str
    """Enforce or Audit: the workload's own, made Enforce by any governing policy that says so."""
    blocked_entries: frozenset[int]
    """Indices of spec.egress entries that break a region or host rule."""
    regions: tuple[EntryRegion, ...]
    policies: tuple[str, ...]
    """Names of the policies that govern the workload's namespace."""
    trust_declared_regions: bool = True
    """Whether regions declared on egress entries count: false when any governing policy sets
    `trustDeclaredRegions: false`. The gateway's configuration is rendered with the same answer."""

    @property
    def compliant(self) -> bool:
        return not self.findings


def governing_policies(
    policies: Sequence[NamedPolicy],
    namespace: str,
    namespace_labels: Mapping[str, str],
    *,
    aigis_namespace: str | None = None,
) -> list[NamedPolicy]:
    """The policies that govern `namespace`, in name order; none for system namespaces."""
    if namespace in UNGOVERNABLE_NAMESPACES or namespace == aigis_namespace:
        return []
    return sorted(
        (
            p
            for p in policies
            if p.spec.namespace_selector is None
            or p.spec.namespace_selector.matches(namespace_labels)
        ),
        key=lambda p: p.name,
    )


def trusts_declared_regions(policies: Sequence[NamedPolicy]) -> bool:
    """Whether regions declared on egress entries count: unless a policy says they do not."""
    return all(p.spec.trust_declared_regions for p in policies)


def entry_region(index: int, rule: EgressRule, *, trust_declared: bool = True) -> EntryRegion:
    """An entry's region: the endpoint catalogue's, else its declared `region` if trusted."""
    found = effective_region(rule.host, rule.region, trust_declared=trust_declared)
    return EntryRegion(index, found.region, found.basis)


def _target(rule: EgressRule) -> str:
    if rule.host is not None:
        return rule.host
    if rule.cidr is not None:
        return rule.cidr
    return "the service"


def _entry_path(index: int, rule: EgressRule) -> str:
    field = "region" if rule.region is not None else "host" if rule.host is not None else "cidr"
    return f"spec.egress[{index}].{field}"


def _mismatch_findings(spec: AIWorkloadSpec) -> Iterator[tuple[int | None, Finding]]:
    for i, rule in enumerate(spec.egress):
        if rule.host is None or rule.region is None:
            continue
        conflicts = region_conflicts(rule.host, rule.region)
        if not conflicts:
            continue
        path = f"spec.egress[{i}].region"
        if not rule.host.startswith("*."):
            found = conflicts[0]
            message = (
                f'{rule.host} is in region "{found.region}" by aigis\'s endpoint catalogue '
                f'({found.basis}), not "{rule.region}" as declared, and the catalogue wins; '
                "remove region from the entry, or use an endpoint in the region you need"
            )
        else:
            shown = ", ".join(f'{c.host} is "{c.region}"' for c in conflicts[:3])
            more = f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
            message = (
                f"{rule.host} covers hosts aigis's endpoint catalogue places outside region "
                f'"{rule.region}" ({shown}{more}), so the declared region cannot hold for every '
                "host it allows; declare the hosts you need as exact entries"
            )
        yield i, Finding(REGION_MISMATCH, path, message)


def _region_findings(
    spec: AIWorkloadSpec,
    regions: Sequence[EntryRegion],
    policies: Sequence[NamedPolicy],
    *,
    trust_declared: bool,
) -> Iterator[tuple[int | None, Finding]]:
    distrusting = [p.name for p in policies if not p.spec.trust_declared_regions]
    for j, region in enumerate(spec.data_regions):
        for policy in policies:
            allowed = policy.spec.allowed_regions
            if allowed and region not in allowed:
                yield (
                    None,
                    Finding(
                        POLICY_REGION,
                        f"spec.dataRegions[{j}]",
                        f'region "{region}" is not allowed by AIClusterPolicy {policy.name} '
                        f"(allowed: {', '.join(allowed)}); remove it",
                    ),
                )
    for entry in regions:
        rule = spec.egress[entry.index]
        path = _entry_path(entry.index, rule)
        target = _target(rule)
        checked = rule.host is not None or rule.region is not None
        if not checked:
            continue
        if entry.region is None:
            if rule.region is not None and not trust_declared:
                fix = (
                    f"AIClusterPolicy {', '.join(distrusting)} does not trust declared regions; "
                    "use an endpoint aigis's catalogue places in an allowed region"
                )
            else:
                fix = "add region: <where it is served> to the entry if you know it"
            for policy in policies:
                if policy.spec.unknown_regions == "Deny":
                    yield (
                        entry.index,
                        Finding(
                            UNKNOWN_REGION,
                            path,
                            f"aigis cannot tell where {target} processes data ({entry.basis}) and "
                            f"AIClusterPolicy {policy.name} denies unknown regions; {fix}",
                        ),
                    )
            continue
        if spec.data_regions and entry.region not in spec.data_regions:
            yield (
                entry.index,
                Finding(
                    DATA_REGION,
                    path,
                    f'{target} is in region "{entry.region}" ({entry.basis}), outside '
                    f"spec.dataRegions ({', '.join(spec.data_regions)}); use an endpoint in an "
                    "allowed region or add the region to dataRegions",
                ),
            )
        for policy in policies:
            allowed = policy.spec.allowed_regions
            if allowed and entry.region not in allowed:
                yield (
                    entry.index,
                    Finding(
                        POLICY_REGION,
                        path,
                        f'{target} is in region "{entry.region}" ({entry.basis}), which '
                        f"AIClusterPolicy {policy.name} does not allow ({', '.join(allowed)})",
                    ),
                )


def _host_findings(
    spec: AIWorkloadSpec, policies: Sequence[NamedPolicy]
) -> Iterator[tuple[int | None, Finding]]:
    for i, rule in enumerate(spec.egress):
        if rule.host is None:
            continue
        for policy in policies:
            allowed = policy.spec.allowed_hosts
            if allowed and not any(pattern_covers(p, rule.host) for p in allowed):
                yield (
                    i,
                    Finding(
                        POLICY_HOST,
                        f"spec.egress[{i}].host",
                        f"{rule.host} is not among the hosts AIClusterPolicy {policy.name} allows; "
                        "ask the platform team to add it or remove the entry",
                    ),
                )


def _provider_findings(
    spec: AIWorkloadSpec, policies: Sequence[NamedPolicy]
) -> Iterator[tuple[int | None, Finding]]:
    for k, model in enumerate(spec.models):
        for policy in policies:
            allowed = policy.spec.allowed_providers
            if allowed and model.provider not in allowed:
                yield (
                    None,
                    Finding(
                        POLICY_PROVIDER,
                        f"spec.models[{k}].provider",
                        f'provider "{model.provider}" is not allowed by AIClusterPolicy '
                        f"{policy.name} (allowed: {', '.join(allowed)})",
                    ),
                )


def evaluate_compliance(spec: AIWorkloadSpec, policies: Sequence[NamedPolicy]) -> ComplianceReport:
    """Check a valid spec against its own dataRegions and the governing policies."""
    trust = trusts_declared_regions(policies)
    regions = tuple(
        entry_region(i, rule, trust_declared=trust) for i, rule in enumerate(spec.egress)
    )
    findings: list[Finding] = []
    blocked: set[int] = set()
    for index, finding in (
        *_mismatch_findings(spec),
        *_region_findings(spec, regions, policies, trust_declared=trust),
        *_host_findings(spec, policies),
        *_provider_findings(spec, policies),
    ):
        findings.append(finding)
        if index is not None:
            blocked.add(index)
    enforce = spec.enforcement == "Enforce" or any(
        p.spec.enforcement == "Enforce" for p in policies
    )
    return ComplianceReport(
        findings=tuple(findings),
        enforcement="Enforce" if enforce else "Audit",
        blocked_entries=frozenset(blocked),
        regions=regions,
        policies=tuple(p.name for p in policies),
        trust_declared_regions=trust,
    )
