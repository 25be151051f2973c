"""The AIClusterPolicy resource: the organisation's bounds for every AIWorkload.

Cluster-scoped and written by the platform or security team. Several policies may exist; each
applies to the namespaces its `namespaceSelector` picks, and where several apply **the strictest
wins**: a workload must satisfy every applicable policy (so allow-lists intersect), `Enforce`
beats `Audit`, `Deny` beats `Allow`, not trusting declared regions beats trusting them, and the
strictest shadow-AI mode wins. The combination is
computed in `aigis.egress.compliance`, not here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from aigis.api.aiworkload import Provider
from aigis.api.common import (
    MAX_NAME,
    ApiModel,
    Condition,
    KubernetesObject,
    LabelSelector,
    ResourceKind,
)

AICLUSTERPOLICY = ResourceKind(
    kind="AIClusterPolicy", plural="aiclusterpolicies", short_names=("aicp",), namespaced=False
)

PolicyEnforcement = Literal["Enforce", "Audit"]
RegionAnswer = Literal["Allow", "Deny"]
ShadowAIMode = Literal["Off", "Audit", "Enforce"]
PodSecurityLevel = Literal["privileged", "baseline", "restricted"]

# Namespaces no policy governs, whatever its selector says: governing them could stop the
# cluster itself (the mission's first non-negotiable). aigis's own namespace is added at run time.
UNGOVERNABLE_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


class AIClusterPolicySpec(ApiModel):
    """Bounds every AIWorkload in the governed namespaces must stay within."""

    namespace_selector: LabelSelector | None = None
    """Namespaces this policy governs; every namespace when omitted. kube-system, kube-public,
    kube-node-lease and aigis's own namespace are never governed."""
    enforcement: PolicyEnforcement = "Audit"
    """Enforce makes every AIWorkload in the governed namespaces enforce, whatever it declares;
    Audit leaves each workload's own `enforcement` in force."""
    allowed_regions: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list, max_length=16, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Jurisdictions data may go to; any when empty. A workload's dataRegions and every egress
    destination with a known region must be among them."""
    unknown_regions: RegionAnswer = "Deny"
    """Whether egress to a destination whose region aigis cannot tell (not in its endpoint
    catalogue and no trusted `region:` on the entry) is allowed."""
    trust_declared_regions: bool = True
    """Whether a `region:` written on an egress entry counts for a destination aigis's endpoint
    catalogue cannot place (an unknown host, a cidr, a service). When false, such a destination
    is of unknown region, so `unknownRegions` decides (and a workload's gateway refuses a host of
    unknown region whenever the workload sets dataRegions). Where the catalogue knows a host, its
    region wins whatever this says. Where several policies apply, false wins."""
    allowed_providers: list[Provider] = Field(
        default_factory=list, max_length=16, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Model providers workloads may declare; any when empty."""
    allowed_hosts: list[Annotated[str, Field(max_length=MAX_NAME)]] = Field(
        default_factory=list, max_length=128, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Egress hosts workloads may declare, exact or `*.`-wildcard; any when empty. A workload's
    wildcard host must be covered by one of these too."""
    shadow_ai: ShadowAIMode = Field("Audit", alias="shadowAI")
    """What admission does with a pod that looks like AI but no AIWorkload covers: Off ignores
    it, Audit allows it with a warning and records it, Enforce refuses it."""
    allowed_registries: list[Annotated[str, Field(min_length=1, max_length=MAX_NAME)]] = Field(
        default_factory=list, max_length=64, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Where the images of AI workloads may come from: registry hosts (`ghcr.io`,
    `registry.example.com:5000`) or host/path prefixes matched on whole path segments
    (`docker.io/myorg` allows `docker.io/myorg/app`, not `docker.io/myorg-evil/app`). Docker Hub
    is `docker.io` (short names such as `nginx` mean `docker.io/library/nginx`). Any registry when
    empty."""
    require_digest: bool = False
    """Whether the images of AI workloads must be pinned by digest (`image@sha256:...`): a tag can
    be moved to other content after review, a digest cannot."""
    pod_security: PodSecurityLevel = "baseline"
    """The Pod Security Standards level AI workloads must meet: restricted, baseline, or
    privileged (no checks). Where several policies apply the strictest level wins."""
    allow_injection_opt_out: bool = False
    """Whether a pod may opt out of gateway injection with the annotation `aigis.dev/inject:
    "false"`. Off by default: a pod without the gateway reaches its providers with nobody checking
    prompts or holding the keys."""
    red_team_max_age_days: int | None = Field(None, ge=1, le=3650)
    """When set, the pods of an AIWorkload are admitted only while its `assurance.lastRedTeam` is
    at most this many days old; untested AI does not reach production. No requirement when
    omitted."""


class AIClusterPolicyStatus(ApiModel):
    """What the operator found in the policy. Written by aigis only."""

    observed_generation: int | None = Field(None, ge=0)
    """The metadata.generation last reconciled."""
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    """Ready and Invalid."""


class AIClusterPolicy(KubernetesObject):
    """The organisation's bounds for AI workloads: regions, providers, hosts, shadow AI."""

    resource = AICLUSTERPOLICY

    api_version: Literal["aigis.dev/v1alpha1"] = "aigis.dev/v1alpha1"
    """The API version."""
    kind: Literal["AIClusterPolicy"] = "AIClusterPolicy"
    """The resource kind."""
    spec: AIClusterPolicySpec = Field(default_factory=AIClusterPolicySpec)
    """The bounds."""
    status: AIClusterPolicyStatus | None = None
    """Written by aigis."""
