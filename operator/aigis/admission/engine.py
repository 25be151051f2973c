"""The admission decision: may this object be admitted, and if not, exactly why.

`review_object` is the one function the validating webhook and `aigis scan` call, so a manifest
that passes in CI passes in the cluster. It takes the admitted object and an `AdmissionContext`
(the namespace, its AIWorkloads, every valid AIClusterPolicy, the time) and returns a `Decision`
holding every finding as a `Reason` with rule, field path and fix.

What is reviewed:
- Objects that run pods (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
  ReplicationController, Job, CronJob): the pod template, against the AIWorkload covering it (its
  selector matches the template's labels) and the governing AIClusterPolicies.
- AIWorkloads: what their schema cannot say (`parse_aiworkload_spec`), and the bounds of the
  governing policies (regions, providers, hosts: `evaluate_compliance`).
- AIClusterPolicies: `parse_cluster_policy_spec`.
Anything else, any DELETE, and anything in kube-system, kube-public, kube-node-lease or aigis's own
namespace is allowed without a look: the webhook is not even called there, and the engine must
agree so that `aigis scan` does too.

How findings become refusals. Each rule finding is either denied or turned into an admission
warning (the object is admitted):
- Pods a single AIWorkload covers: denied when the effective enforcement is Enforce (the
  workload says Enforce, or any governing policy does, as in `evaluate_compliance`), else warned.
- Pods no AIWorkload covers but that look like AI: per the strictest shadow-AI mode of the
  governing policies (Off: not looked at; Audit: warned; Enforce: denied). The Pod Security
  Standards apply to them at the same mode: they are AI workloads, declared or not.
- Pods several AIWorkloads cover: which declaration applies is unknown, so only that is reported,
  with every covering workload named, at the effective enforcement of all of them.
- Namespaces no policy governs: shadow AI and the policy rules (registries, digests, Pod Security,
  red-team age) do not apply; a covered pod is still held to its own AIWorkload's declaration.

Decisions this module makes (and why):
- The covering workload's validity and compliance are computed here from its spec and the
  governing policies, with the functions the operator uses to write `status`, rather than read
  from `status`. Status lags behind: a Deployment applied together with its AIWorkload would be
  refused until the operator caught up, and a policy change would take effect at the operator's
  pace. Computing it makes the webhook as current as its inputs and makes `aigis scan` (where no
  operator runs) agree by construction. `status` is never read.
- Provider keys: the gateway injection (`aigis.admission.mutation`) moves each env entry that reads
  a key listed in `spec.gateway.providerKeys` (exact Secret name and key) from the app containers
  to the gateway. On a Deployment's template (never mutated), and on any manifest `aigis scan`
  reads, such an entry is not a finding while the gateway will be injected: it is moved when the
  pod is created. On a Pod in the webhook (`ctx.injection` set) the validating pass runs after the
  injection, so whatever is still there was not moved (the pod arrived with a gateway of its own
  and the injection skipped it) and is a finding. Anything the injection does not move is a finding
  everywhere: other keys of those Secrets, `envFrom` or volumes exposing them, an app's own key for
  a provider, a literal key.
- The gateway sidecar is aigis's alone. Only a Pod in the webhook can hold aigis's gateway: the one
  `aigis-gateway` container, an init container, equal field by field to what `render_gateway`
  renders for the covering workload with the webhook's `InjectionSettings` (compared as the API
  server stores it, see `gateway_differences`). Every other container of that name (in a pod
  template, in a manifest offline, a second one, one in `containers` or `ephemeralContainers`,
  one with another command, env, mount or image) is refused: the injection skips a pod that
  already has one, so a look-alike would keep the key in the app. Refusing is simpler than
  replacing it and says plainly what to remove. Only the real gateway is exempt from the image
  and key rules.
- The gateway's volumes are its alone: no other container may mount a volume holding the audit
  key (found by the Secret it holds, whatever the volume is called), a volume the gateway mounts,
  or a volume the pod does not define under a name only the injection would create.
- `shareProcessNamespace: true` is refused on every pod that gets the gateway, and so is an
  ephemeral container targeting the gateway: both let another container read the gateway's files
  (keys, audit key) through /proc/<pid>/root.
- Ephemeral containers (`subresource="ephemeralcontainers"`, what `kubectl debug` writes): the
  pod is reviewed with every rule, and only the findings about ephemeral containers it did not
  have before count, so debugging an older pod is not refused for drift admitted earlier.
- Service-account tokens: AIWorkload has no field to declare that a workload needs the Kubernetes
  API, so a token is never declared: a template that does not set
  `automountServiceAccountToken: false`, or projects a token volume itself, is a finding.
- Red-team freshness: the maximum age is the smallest of the governing policies'
  `redTeamMaxAgeDays` and the workload's own `assurance.requiredFreshnessDays`. A date more than a
  day in the future (beyond any time-zone difference) is not an attestation.
- UPDATE: when `old_object` is given and nothing reviewed changed (the pod template, or the spec
  of an AIWorkload or AIClusterPolicy), the update is allowed. Metadata and status writes (the
  operator's annotations, a finalizer's removal, a scale) must never be refused because a policy
  tightened after the object was admitted; the same reasoning as Kubernetes' PodSecurity admission.

Pure: no I/O, no clock (`now` is passed in), no environment. Must not import the webhook server,
kopf handlers or the Kubernetes client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Final, TypeGuard

import orjson

from aigis.admission.images import ImageRef, digest_problem, parse_image, registry_allows
from aigis.admission.mutation import (
    GATEWAY_CONTAINER,
    KEY_PLACEHOLDER,
    OPT_OUT_ANNOTATION,
    InjectionSettings,
    gateway_differences,
    render_gateway,
    reserved_volume_name,
)
from aigis.admission.podsecurity import Level, check_pod_security
from aigis.admission.reasons import Reason
from aigis.admission.shadow import (
    PROVIDER_KEY_VARIABLES,
    ai_evidence,
    looks_like_ai,
)
from aigis.admission.templates import POD_KINDS, PodTemplate, api_group, pod_template
from aigis.api.aiworkload import AIWorkloadSpec
from aigis.api.clusterpolicy import UNGOVERNABLE_NAMESPACES, ShadowAIMode
from aigis.api.common import GROUP
from aigis.api.errors import FieldError
from aigis.api.validation import parse_aiworkload_spec, parse_cluster_policy_spec
from aigis.egress.compliance import NamedPolicy, evaluate_compliance, governing_policies
from aigis.gateway.identity import audit_key_secret_name
from aigis.guardrails.credentials import is_placeholder

# Stable rule identifiers. Renaming one breaks every exemption, dashboard and alert keyed on it.
RULE_SHADOW_AI: Final = "shadow-ai"
RULE_MULTIPLE_COVER: Final = "workload/multiple-cover"
RULE_WORKLOAD_INVALID: Final = "workload/invalid"
RULE_WORKLOAD_NOT_COMPLIANT: Final = "workload/not-compliant"
RULE_IMAGE_REGISTRY: Final = "image/registry"
RULE_IMAGE_DIGEST: Final = "image/digest"
RULE_PROVIDER_KEY: Final = "secrets/provider-key-in-app"
RULE_TOKEN_AUTOMOUNT: Final = "serviceaccount/token-automount"  # noqa: S105 - a rule id
RULE_RED_TEAM: Final = "assurance/red-team-stale"
RULE_GATEWAY_IMPOSTOR: Final = "gateway/impostor"
RULE_GATEWAY_VOLUME: Final = "gateway/volume-in-app"
RULE_GATEWAY_DEBUG_TARGET: Final = "gateway/debug-target"
RULE_SHARE_PROCESS_NAMESPACE: Final = "gateway/share-process-namespace"
RULE_AIWORKLOAD_INVALID: Final = "aiworkload/invalid"
RULE_CLUSTER_POLICY_INVALID: Final = "clusterpolicy/invalid"
AIWORKLOAD_POLICY_RULE_PREFIX: Final = "aiworkload/"
"""Compliance findings on an AIWorkload: `aiworkload/policy-region`, `aiworkload/data-region`,
`aiworkload/unknown-region`, `aiworkload/region-mismatch`, `aiworkload/policy-host`,
`aiworkload/policy-provider`."""


MAX_WARNINGS: Final = 10
MAX_WARNING_CHARS: Final = 255
MAX_MESSAGE_REASONS: Final = 20
_MAX_EVIDENCE_SHOWN: Final = 5
_MAX_ERRORS_SHOWN: Final = 3
_SHOWN_CHARS: Final = 80
_FUTURE_TOLERANCE_DAYS: Final = 1
_LEVEL_ORDER: Final[Mapping[str, int]] = {"privileged": 0, "baseline": 1, "restricted": 2}
_SHADOW_ORDER: Final[Mapping[str, int]] = {"Off": 0, "Audit": 1, "Enforce": 2}
_CONTAINER_LISTS: Final = ("initContainers", "containers", "ephemeralContainers")
# Lists whose env the injection edits (ephemeral containers are added later, by a subresource).
_INJECTED_LISTS: Final = frozenset({"initContainers", "containers"})
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")
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
EPHEMERAL_CONTAINERS: Final = "ephemeralcontainers"
"""The Pod subresource `kubectl debug` writes to add ephemeral containers to a running pod."""
_WORKLOAD_CACHE_LIMIT: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class AdmissionContext:
    """Everything besides the object that the decision depends on, read by the caller."""

    namespace: str | None
    """The namespace of the request; None for cluster-scoped objects (AIClusterPolicy)."""
    namespace_labels: Mapping[str, str]
    """Labels of that namespace: policies pick the namespaces they govern by label."""
    workloads: Sequence[Mapping[str, Any]]
    """The AIWorkload objects of that namespace, as the API serves them."""
    policies: Sequence[NamedPolicy]
    """Every valid AIClusterPolicy; the engine picks the ones governing the namespace."""
    aigis_namespace: str | None
    """aigis's own namespace, which no policy governs and admission never blocks."""
    now: datetime
    """The time of the decision (UTC), for red-team freshness."""
    injection: InjectionSettings | None = None
    """How the webhook injects the gateway, so that a Pod's `aigis-gateway` container can be
    compared with the one the injection renders. None offline (`aigis scan`), where objects are
    seen as written, before any injection, so no `aigis-gateway` container is aigis's."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one review."""

    allowed: bool
    reasons: tuple[Reason, ...]
    """Everything found, refused and warned alike."""
    denied: tuple[Reason, ...]
    """The findings that refuse the object (empty when it is allowed)."""
    warnings: tuple[str, ...]
    """Admission warnings for the findings that do not refuse (kubectl prints them)."""
    workload: str | None
    """Name of the covering AIWorkload, when exactly one covers the object."""

    def message(self) -> str:
        """The refusal as kubectl prints it: one line per refusing finding, with the fix."""
        lines = [
            f"[{r.rule}] {r.path}: {r.message}; fix: {r.fix}"
            for r in self.denied[:MAX_MESSAGE_REASONS]
        ]
        if len(self.denied) > MAX_MESSAGE_REASONS:
            lines.append(f"... and {len(self.denied) - MAX_MESSAGE_REASONS} more")
        return "\n".join(lines)


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


def is_exempt_namespace(namespace: str | None, aigis_namespace: str | None) -> bool:
    """Whether admission leaves `namespace` alone entirely (system namespaces and aigis's own)."""
    return namespace is not None and (
        namespace in UNGOVERNABLE_NAMESPACES or namespace == aigis_namespace
    )


def gateway_injected(model: AIWorkloadSpec, template: PodTemplate, bounds: PolicyBounds) -> bool:
    """Whether the injection (`aigis.admission.mutation`) gives pods of this template the gateway:
    the workload turns it on, the pod has not opted out where the policies allow that, and the
    pod is not a Windows pod (the gateway is a Linux image)."""
    if not model.gateway.inject:
        return False
    opt_out = template.annotations.get(OPT_OUT_ANNOTATION)
    if (
        bounds.injection_opt_out_allowed
        and isinstance(opt_out, str)
        and opt_out.strip().lower() == "false"
    ):
        return False
    return _field_text(_field(template.spec, "os"), "name") != "windows"


def is_reviewed(obj: Mapping[str, Any]) -> bool:
    """Whether `review_object` has rules for this kind of object."""
    return _aigis_kind(obj) is not None or pod_template(obj) is not None


def review_object(
    obj: Mapping[str, Any],
    ctx: AdmissionContext,
    *,
    operation: str = "CREATE",
    old_object: Mapping[str, Any] | None = None,
    subresource: str | None = None,
) -> Decision:
    """Decide whether `obj` may be admitted in `ctx` (see the module docstring for the rules).

    `obj` is the object as the API server (or a manifest) has it; nothing about it is trusted.
    `old_object` is the stored object on UPDATE, if the caller has it. `subresource` is the
    request's subresource: `ephemeralcontainers` reviews only the ephemeral containers `obj`
    adds to `old_object`; any other subresource carries nothing reviewed here.
    """
    if operation == "DELETE" or not isinstance(obj, Mapping):
        return _ALLOWED
    if is_exempt_namespace(ctx.namespace, ctx.aigis_namespace):
        return _ALLOWED
    aigis_kind = _aigis_kind(obj)
    if aigis_kind is not None:
        if operation == "UPDATE" and _same(obj, old_object, ("spec",)):
            return _ALLOWED
        if aigis_kind == "AIWorkload":
            return _decide(_review_aiworkload(obj, ctx), None)
        return _decide(_review_cluster_policy(obj), None)
    template = pod_template(obj)
    if template is None:
        return _ALLOWED
    if subresource:
        if subresource != EPHEMERAL_CONTAINERS or not template.is_pod:
            return _ALLOWED
        return _review_debug_containers(template, old_object, ctx)
    if operation == "UPDATE" and old_object is not None:
        old_template = pod_template(old_object)
        if old_template is not None and _same_template(template, old_template, obj):
            return _ALLOWED
    findings, workload = _review_template(template, ctx)
    return _decide(findings, workload)


def covering_workloads(
    pod_labels: Mapping[str, str], workloads: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The AIWorkloads whose `spec.selector` selects a pod with these labels.

    Kubernetes' label-selector semantics. A selector that is empty or malformed selects nothing:
    the CRD refuses both, and guessing what one meant could put a pod under the wrong declaration.
    """
    return [w for w in workloads if _selects(_selector_of(w), pod_labels)]


# --- pods --------------------------------------------------------------------------------------

# A finding and whether it refuses the object.
Finding = tuple[Reason, bool]


def _review_template(
    template: PodTemplate, ctx: AdmissionContext
) -> tuple[list[Finding], str | None]:
    policies = governing_policies(
        ctx.policies,
        ctx.namespace or "",
        ctx.namespace_labels,
        aigis_namespace=ctx.aigis_namespace,
    )
    bounds = policy_bounds(policies)
    covering = covering_workloads(template.labels, ctx.workloads)
    if not covering:
        return _review_uncovered(template, bounds), None
    if len(covering) > 1:
        enforce = bounds.enforce or any(_declares_enforce(w) for w in covering)
        return [(_multiple_cover(template, covering), enforce)], None
    workload = covering[0]
    name = _name_of(workload)
    return _review_covered(template, workload, name, bounds, ctx), name


def _review_uncovered(template: PodTemplate, bounds: PolicyBounds) -> list[Finding]:
    if bounds.shadow_ai == "Off":
        return []
    evidence = ai_evidence(template)
    if not looks_like_ai(evidence):
        return []
    deny = bounds.shadow_ai == "Enforce"
    shown = "; ".join(f"{e.detail}, at {e.path}" for e in evidence[:_MAX_EVIDENCE_SHOWN])
    if len(evidence) > _MAX_EVIDENCE_SHOWN:
        shown += f"; and {len(evidence) - _MAX_EVIDENCE_SHOWN} more"
    policy = _shadow_policy(bounds)
    reason = Reason(
        rule=RULE_SHADOW_AI,
        path=f"{template.metadata_path}.labels",
        message=f"looks like an AI workload, but no AIWorkload covers it and AIClusterPolicy "
        f"{policy} sets shadowAI: {bounds.shadow_ai}. Evidence: {shown}",
        fix="declare it: apply an AIWorkload whose spec.selector matches these labels, "
        "or remove what makes it AI",
    )
    findings: list[Finding] = [(reason, deny)]
    findings.extend((r, deny) for r in _pod_security(template, bounds))
    return findings


def _shadow_policy(bounds: PolicyBounds) -> str:
    for policy in bounds.policies:
        if policy.spec.shadow_ai == bounds.shadow_ai:
            return policy.name
    return "?"


def _review_debug_containers(
    template: PodTemplate, old_object: Mapping[str, Any] | None, ctx: AdmissionContext
) -> Decision:
    """pods/ephemeralcontainers: the pod is reviewed as it will run, and only the findings about
    ephemeral containers it did not have before count. The rest was admitted earlier; refusing a
    debug container for a policy that tightened since would help no one."""
    old_template = pod_template(old_object) if isinstance(old_object, Mapping) else None
    old_names = {
        _field_text(entry, "name")
        for entry in _entries(old_template.spec if old_template else _EMPTY, "ephemeralContainers")
    }
    new_paths = tuple(
        f"{template.spec_path}.ephemeralContainers[{index}]"
        for index, entry in enumerate(_entries(template.spec, "ephemeralContainers"))
        if _field_text(entry, "name") not in old_names
    )
    if not new_paths:
        return _ALLOWED
    findings, workload = _review_template(template, ctx)
    return _decide([f for f in findings if _within(f[0].path, new_paths)], workload)


def _within(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith((p + ".", p + "[")) for p in prefixes)


def _multiple_cover(template: PodTemplate, covering: Sequence[Mapping[str, Any]]) -> Reason:
    names = ", ".join(_quote(_name_of(w) or "?") for w in covering)
    return Reason(
        rule=RULE_MULTIPLE_COVER,
        path=f"{template.metadata_path}.labels",
        message=f"{len(covering)} AIWorkloads cover this pod ({names}), so aigis cannot tell "
        "which declaration applies",
        fix="change the pod's labels or the AIWorkloads' spec.selector so that exactly one "
        "selects it",
    )


def _review_covered(
    template: PodTemplate,
    workload: Mapping[str, Any],
    name: str | None,
    bounds: PolicyBounds,
    ctx: AdmissionContext,
) -> list[Finding]:
    shown = _quote(name or "?")
    labels_path = f"{template.metadata_path}.labels"
    model, errors = _parse_workload(workload.get("spec"))
    reasons: list[Reason] = []
    gateway = _Gateway()
    if model is None or errors:
        listed = "; ".join(str(e) for e in errors[:_MAX_ERRORS_SHOWN])
        more = len(errors) - _MAX_ERRORS_SHOWN
        reasons.append(
            Reason(
                rule=RULE_WORKLOAD_INVALID,
                path=labels_path,
                message=f"is covered by AIWorkload {shown}, whose spec is invalid ({listed}"
                + (f"; and {more} more" if more > 0 else "")
                + ")",
                fix=f"fix AIWorkload {shown} (kubectl describe aiworkload {name or ''})",
            )
        )
        enforce = bounds.enforce or _declares_enforce(workload)
    else:
        report = evaluate_compliance(model, bounds.policies)
        enforce = report.enforcement == "Enforce"
        if report.findings:
            # The first finding in full, the rest counted: the AIWorkload's own review and its
            # status list them all, and a refusal must stay readable in kubectl's output.
            first = report.findings[0]
            more = len(report.findings) - 1
            reasons.append(
                Reason(
                    rule=RULE_WORKLOAD_NOT_COMPLIANT,
                    path=labels_path,
                    message=f"is covered by AIWorkload {shown}, which is not compliant: "
                    f"{first.path}: {first.message}"
                    + (f" (and {more} more finding{'s' * (more > 1)})" if more > 0 else ""),
                    fix=f"bring AIWorkload {shown} within its dataRegions and the cluster "
                    "policies (see its status.violations)",
                )
            )
        will_inject = gateway_injected(model, template, bounds)
        gateway = _review_gateway(template, name or "", model, will_inject, ctx)
        reasons.extend(gateway.reasons)
        if template.is_pod and ctx.injection is not None:
            # The webhook sees a Pod after the injection ran: what it moves is gone already, and
            # whatever is left was not moved (the pod arrived with a gateway, so was skipped).
            injected, moves = gateway.path is not None, False
        else:
            injected = moves = will_inject
        key_volumes = _volumes_exposing(
            template, {k.secret_ref.name for k in model.gateway.provider_keys}
        )
        reasons.extend(
            _provider_keys(template, model, shown, injected, moves, key_volumes, gateway.path)
        )
        reasons.extend(_gateway_volumes(template, name or "", gateway, key_volumes))
        reasons.extend(_debug_targets(template))
        if will_inject:
            reasons.extend(_shared_processes(template))
        reasons.extend(_red_team(labels_path, model, shown, bounds, ctx.now))
    if model is None or not model.service_account_token:
        reasons.extend(_token_automount(template, shown))
    reasons.extend(_images(template, bounds, gateway.path))
    reasons.extend(_pod_security(template, bounds))
    return [(r, enforce) for r in reasons]


def _pod_security(template: PodTemplate, bounds: PolicyBounds) -> list[Reason]:
    if bounds.pod_security is None:
        return []
    return check_pod_security(
        template.spec, template.metadata, bounds.pod_security, path=template.spec_path
    )


@dataclass(frozen=True, slots=True)
class _Container:
    path: str
    list_name: str
    fields: Mapping[str, Any]


def _containers(template: PodTemplate, skip: str | None = None) -> Iterator[_Container]:
    """Every container of the template, except the one at `skip` (aigis's gateway sidecar)."""
    for list_name in _CONTAINER_LISTS:
        for index, entry in enumerate(_entries(template.spec, list_name)):
            path = f"{template.spec_path}.{list_name}[{index}]"
            if path != skip:
                fields = entry if isinstance(entry, Mapping) else _EMPTY
                yield _Container(path, list_name, fields)


def _entries(spec: Mapping[str, Any], key: str) -> Sequence[Any]:
    found = spec.get(key)
    return found if isinstance(found, list) else ()


@dataclass(frozen=True, slots=True)
class _Gateway:
    """What the review found of the gateway sidecar."""

    path: str | None = None
    """Path of the container that is aigis's gateway; None when there is none."""
    volumes: frozenset[str] = frozenset()
    """The pod volumes that gateway mounts."""
    reasons: tuple[Reason, ...] = ()
    """Containers named like the gateway that are not it."""


def _review_gateway(
    template: PodTemplate,
    workload_name: str,
    model: AIWorkloadSpec,
    will_inject: bool,
    ctx: AdmissionContext,
) -> _Gateway:
    """Find the gateway: the one `aigis-gateway` container that equals what the injection renders
    for this workload, in a Pod the webhook sees after injection. Every other container of that
    name is a finding: the injection skips a pod that already has one, so a look-alike would keep
    the keys in the app, and a gateway running something else would hold them itself."""
    named = [c for c in _containers(template) if c.fields.get("name") == GATEWAY_CONTAINER]
    if not named:
        return _Gateway()
    if not template.is_pod:
        why = "aigis adds the gateway to each pod when it is created, so one in a pod template "
        why += "is someone else's"
    elif ctx.injection is None:
        why = "aigis adds the gateway when the pod is created, so one in a manifest is someone "
        why += "else's"
    elif not will_inject:
        why = "aigis injects no gateway into this pod (spec.gateway.inject is false, the pod "
        why += "opted out, or it is a Windows pod)"
    elif len(named) > 1:
        why = f"the pod has {len(named)} containers of that name"
    elif named[0].list_name != "initContainers":
        why = f"it is in {named[0].list_name}; aigis's gateway is an init container"
    else:
        expected = render_gateway(workload_name, model, ctx.injection)
        differences = gateway_differences(named[0].fields, template.spec.get("volumes"), expected)
        if not differences:
            mounts = _entries(named[0].fields, "volumeMounts")
            volumes = frozenset(_field_text(m, "name") for m in mounts)
            return _Gateway(path=named[0].path, volumes=volumes)
        why = "it differs from the gateway aigis renders for AIWorkload "
        why += f"{_quote(workload_name)} in {', '.join(differences)}"
    return _Gateway(
        reasons=tuple(
            Reason(
                rule=RULE_GATEWAY_IMPOSTOR,
                path=container.path,
                message=f"is named {GATEWAY_CONTAINER!r} but is not the gateway aigis injects: "
                + why,
                fix=f"remove this container; aigis injects the gateway itself (rename it if it "
                f"is an app container that happens to be called {GATEWAY_CONTAINER!r})",
            )
            for container in named
        )
    )


def _gateway_volumes(
    template: PodTemplate, workload_name: str, gateway: _Gateway, key_volumes: Mapping[str, str]
) -> Iterator[Reason]:
    """The gateway's volumes are its alone: the audit key (whatever the volume is called), every
    volume the injected gateway mounts, and a name only the injection would create. Volumes
    holding provider keys are reported as keys (`_provider_keys`)."""
    audit_secret = audit_key_secret_name(workload_name)
    audit_volumes = _volumes_exposing(template, {audit_secret})
    defined = {_field_text(v, "name") for v in _entries(template.spec, "volumes")}
    for container in _containers(template, gateway.path):
        for index, mount in enumerate(_entries(container.fields, "volumeMounts")):
            volume = _field_text(mount, "name")
            path = f"{container.path}.volumeMounts[{index}]"
            if volume in key_volumes:
                continue
            if volume in audit_volumes:
                message = f"mounts volume {_quote(volume)}, which holds the gateway's audit key "
                message += f"(Secret {_quote(audit_secret)}): with it, audit records can be forged"
                fix = "remove the mount; only the gateway may read the audit key"
            elif volume in gateway.volumes:
                message = f"mounts volume {_quote(volume)}, which the injected gateway mounts"
                fix = "remove the mount; the gateway's volumes are its alone"
            elif volume not in defined and reserved_volume_name(volume):
                message = f"mounts volume {_quote(volume)}, which the pod does not define: only "
                message += "aigis's injection would create a volume of that name, for the gateway"
                fix = "remove the mount, or define a volume of your own under a name that does "
                fix += "not start with aigis-"
            else:
                continue
            yield Reason(rule=RULE_GATEWAY_VOLUME, path=path, message=message, fix=fix)


def _debug_targets(template: PodTemplate) -> Iterator[Reason]:
    for index, entry in enumerate(_entries(template.spec, "ephemeralContainers")):
        if _field_text(entry, "targetContainerName") == GATEWAY_CONTAINER:
            yield Reason(
                rule=RULE_GATEWAY_DEBUG_TARGET,
                path=f"{template.spec_path}.ephemeralContainers[{index}].targetContainerName",
                message="shares the process namespace of the gateway, whose files (provider keys, "
                "audit key) it could then read through /proc/<pid>/root",
                fix="target an app container instead (kubectl debug --target=<app container>)",
            )


def _shared_processes(template: PodTemplate) -> Iterator[Reason]:
    if template.spec.get("shareProcessNamespace") is True:
        yield Reason(
            rule=RULE_SHARE_PROCESS_NAMESPACE,
            path=f"{template.spec_path}.shareProcessNamespace",
            message="puts every container of the pod into one process namespace, so the app "
            "could read the gateway's files (its provider keys and audit key) through "
            "/proc/<pid>/root",
            fix="remove spec.shareProcessNamespace or set it to false: a pod aigis injects the "
            "gateway into cannot share its process namespace",
        )


def _images(template: PodTemplate, bounds: PolicyBounds, gateway: str | None) -> Iterator[Reason]:
    if not bounds.registries and not bounds.digest_required_by:
        return
    for container in _containers(template, gateway):
        path = f"{container.path}.image"
        image = container.fields.get("image")
        text = image if isinstance(image, str) else ""
        parsed = parse_image(text)
        if not isinstance(parsed, ImageRef):
            rule = RULE_IMAGE_REGISTRY if bounds.registries else RULE_IMAGE_DIGEST
            yield Reason(
                rule=rule,
                path=path,
                message=f"{_quote(text)} {parsed}, so aigis cannot tell where it comes from",
                fix="write a valid image reference, e.g. registry.example.com/team/app@sha256:...",
            )
            continue
        for policy in bounds.registries:
            allowed = policy.spec.allowed_registries
            if not registry_allows(parsed, allowed):
                yield Reason(
                    rule=RULE_IMAGE_REGISTRY,
                    path=path,
                    message=f"{_quote(text)} comes from {parsed.name}, which AIClusterPolicy "
                    f"{policy.name} does not allow (allowed: {_listing(allowed)})",
                    fix="use an image from an allowed registry, or ask the platform team to add "
                    "its registry to spec.allowedRegistries",
                )
        if bounds.digest_required_by:
            problem = digest_problem(parsed.digest)
            if problem is not None:
                yield Reason(
                    rule=RULE_IMAGE_DIGEST,
                    path=path,
                    message=f"{_quote(text)} {problem}, and AIClusterPolicy "
                    f"{bounds.digest_required_by[0]} sets requireDigest: a tag can be moved to "
                    "other content after review",
                    fix=f"pin it by digest: {parsed.name}@sha256:<64 hex digits> "
                    "(the digest the registry reports for the reviewed image)",
                )


def _provider_keys(
    template: PodTemplate,
    model: AIWorkloadSpec,
    shown: str,
    injected: bool,
    moves: bool,
    key_volumes: Mapping[str, str],
    gateway: str | None,
) -> Iterator[Reason]:
    """`injected`: the pod has (or will have) the gateway to hold the keys; `moves`: the
    injection is still to move the declared env entries (a template, or a manifest offline)."""
    held = {(k.secret_ref.name, k.secret_ref.key): k.provider for k in model.gateway.provider_keys}
    held_secrets = {name for name, _ in held}
    for container in _containers(template, gateway):
        moved = moves and container.list_name in _INJECTED_LISTS
        env = container.fields.get("env")
        for index, entry in enumerate(env if isinstance(env, list) else ()):
            if _is_mapping(entry):
                yield from _env_key_reasons(
                    entry, f"{container.path}.env[{index}]", moved, injected, held, shown
                )
        env_from = container.fields.get("envFrom")
        for index, entry in enumerate(env_from if isinstance(env_from, list) else ()):
            name = _field(entry, "secretRef").get("name")
            if isinstance(name, str) and name in held_secrets and not moved:
                yield Reason(
                    rule=RULE_PROVIDER_KEY,
                    path=f"{container.path}.envFrom[{index}].secretRef.name",
                    message=f"loads Secret {_quote(name)}, which holds a provider key of "
                    f"AIWorkload {shown}, into the app's environment"
                    + ("" if injected else _NOT_INJECTED_NOTE),
                    fix=_key_fix(injected, "remove this envFrom entry"),
                )
        mounts = container.fields.get("volumeMounts")
        for index, mount in enumerate(mounts if isinstance(mounts, list) else ()):
            volume = _field_text(mount, "name")
            if volume in key_volumes:
                yield Reason(
                    rule=RULE_PROVIDER_KEY,
                    path=f"{container.path}.volumeMounts[{index}]",
                    message=f"mounts volume {_quote(volume)}, which holds Secret "
                    f"{_quote(key_volumes[volume])} with a provider key of AIWorkload {shown}, "
                    "into the app",
                    fix=_key_fix(injected, "remove the mount"),
                )


_NOT_INJECTED_NOTE: Final = ", and no gateway is injected to take it over"


def _key_fix(injected: bool, action: str) -> str:
    if injected:
        return f"{action}; the app reaches the provider through the gateway, which holds the key"
    return (
        f"{action}, or let aigis inject the gateway (spec.gateway.inject: true and no "
        f"{OPT_OUT_ANNOTATION} opt-out) so that it holds the key"
    )


def _volumes_exposing(template: PodTemplate, secrets: set[str]) -> dict[str, str]:
    """Volume name -> the held Secret it exposes as files, for the pod's volumes."""
    exposing: dict[str, str] = {}
    volumes = template.spec.get("volumes")
    for volume in volumes if isinstance(volumes, list) else ():
        name = _field_text(volume, "name")
        found = _field_text(_field(volume, "secret"), "secretName")
        if found not in secrets:
            found = ""
            sources = _field(volume, "projected").get("sources")
            for source in sources if isinstance(sources, list) else ():
                candidate = _field_text(_field(source, "secret"), "name")
                if candidate in secrets:
                    found = candidate
                    break
        if name and found:
            exposing[name] = found
    return exposing


def _env_key_reasons(
    entry: Mapping[str, Any],
    path: str,
    moved: bool,
    injected: bool,
    held: Mapping[tuple[str, str], str],
    shown: str,
) -> Iterator[Reason]:
    variable = _field_text(entry, "name")
    value_from = entry.get("valueFrom")
    if value_from is None:
        yield from _literal_key_reasons(variable, entry.get("value"), path, shown)
        return
    ref = _field(value_from, "secretKeyRef")
    secret, key = ref.get("name"), ref.get("key")
    if isinstance(secret, str) and isinstance(key, str):
        if (secret, key) in held:
            if not moved:
                yield Reason(
                    rule=RULE_PROVIDER_KEY,
                    path=f"{path}.valueFrom.secretKeyRef",
                    message=f"gives the app the {held[secret, key]} key of AIWorkload {shown} "
                    f"(Secret {_quote(secret)}, key {_quote(key)})"
                    + ("" if injected else _NOT_INJECTED_NOTE),
                    fix=_key_fix(injected, "remove this env entry"),
                )
            return
        if secret in {name for name, _ in held}:
            yield Reason(
                rule=RULE_PROVIDER_KEY,
                path=f"{path}.valueFrom.secretKeyRef",
                message=f"reads key {_quote(key)} of Secret {_quote(secret)}, which holds a "
                f"provider key of AIWorkload {shown}; the gateway injection moves only the keys "
                "listed in spec.gateway.providerKeys",
                fix="keep provider keys in a Secret of their own, or list this key in "
                "spec.gateway.providerKeys",
            )
            return
        provider = PROVIDER_KEY_VARIABLES.get(variable) or PROVIDER_KEY_VARIABLES.get(key)
        if injected and provider is not None:
            yield Reason(
                rule=RULE_PROVIDER_KEY,
                path=f"{path}.valueFrom.secretKeyRef",
                message=f"gives the app its own {provider} API key (Secret {_quote(secret)}), "
                "so its calls could bypass the gateway",
                fix=f"list the key in spec.gateway.providerKeys of AIWorkload {shown} and remove "
                "this env entry; the gateway then holds it",
            )


def _literal_key_reasons(variable: str, value: object, path: str, shown: str) -> Iterator[Reason]:
    provider = PROVIDER_KEY_VARIABLES.get(variable)
    if (
        provider is not None
        and isinstance(value, str)
        and value
        and value != KEY_PLACEHOLDER
        and not is_placeholder(value)
    ):
        yield Reason(
            rule=RULE_PROVIDER_KEY,
            path=f"{path}.value",
            message=f"holds a literal {provider} API key in the manifest, readable by anyone "
            "who can read the pod",
            fix="store the key in a Secret, list it in spec.gateway.providerKeys of AIWorkload "
            f"{shown}, and remove the value",
        )


def _token_automount(template: PodTemplate, shown: str) -> Iterator[Reason]:
    spec = template.spec
    if spec.get("automountServiceAccountToken") is not False:
        yield Reason(
            rule=RULE_TOKEN_AUTOMOUNT,
            path=f"{template.spec_path}.automountServiceAccountToken",
            message="the pod gets a ServiceAccount token, so the AI workload (and anyone who "
            f"steers it, e.g. by prompt injection) can call the Kubernetes API, which AIWorkload "
            f"{shown} does not declare",
            fix="set automountServiceAccountToken: false in the pod spec, or declare "
            f"serviceAccountToken: true in AIWorkload {shown} if it needs the API",
        )
    volumes = spec.get("volumes")
    for index, volume in enumerate(volumes if isinstance(volumes, list) else ()):
        sources = _field(volume, "projected").get("sources")
        for j, source in enumerate(sources if isinstance(sources, list) else ()):
            if isinstance(source, Mapping) and "serviceAccountToken" in source:
                yield Reason(
                    rule=RULE_TOKEN_AUTOMOUNT,
                    path=f"{template.spec_path}.volumes[{index}].projected.sources[{j}]"
                    ".serviceAccountToken",
                    message="projects a ServiceAccount token into the pod, so the AI workload "
                    f"can call the Kubernetes API, which AIWorkload {shown} does not declare",
                    fix="remove the serviceAccountToken projection, or declare "
                    f"serviceAccountToken: true in AIWorkload {shown}",
                )


def _red_team(
    path: str,
    model: AIWorkloadSpec,
    shown: str,
    bounds: PolicyBounds,
    now: datetime,
) -> Iterator[Reason]:
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


# --- AIWorkload and AIClusterPolicy objects ------------------------------------------------------


def _review_aiworkload(obj: Mapping[str, Any], ctx: AdmissionContext) -> list[Finding]:
    model, errors = _parse_workload(obj.get("spec"))
    if model is None or errors:
        return [(_field_reason(RULE_AIWORKLOAD_INVALID, e), True) for e in errors]
    policies = governing_policies(
        ctx.policies,
        ctx.namespace or "",
        ctx.namespace_labels,
        aigis_namespace=ctx.aigis_namespace,
    )
    # Refused only where a governing policy enforces: the workload's own Enforce applies to its
    # pods, and a workload in Audit must be storable so its status can say what is wrong.
    deny = any(p.spec.enforcement == "Enforce" for p in policies)
    report = evaluate_compliance(model, policies)
    findings: list[Finding] = [
        (
            _field_reason(
                AIWORKLOAD_POLICY_RULE_PREFIX + _kebab(f.rule), FieldError(f.path, f.message)
            ),
            deny,
        )
        for f in report.findings
    ]
    # The age of an attestation changes with time alone: refusing the AIWorkload for it would
    # also refuse the very update that records a new exercise, so it is a warning here and a
    # refusal on the pods.
    bounds = policy_bounds(policies)
    shown = _quote(_name_of(obj) or "?")
    stale = _red_team("spec.assurance.lastRedTeam", model, shown, bounds, ctx.now)
    findings.extend((reason, False) for reason in stale)
    return findings


def _review_cluster_policy(obj: Mapping[str, Any]) -> list[Finding]:
    spec = obj.get("spec")
    _, errors = parse_cluster_policy_spec({} if spec is None else spec)
    return [(_field_reason(RULE_CLUSTER_POLICY_INVALID, e), True) for e in errors]


def _field_reason(rule: str, error: FieldError) -> Reason:
    """A FieldError as a Reason: its message usually ends with the fix after a semicolon."""
    head, separator, tail = error.message.rpartition("; ")
    if separator and tail.lower().startswith(_FIX_OPENINGS):
        return Reason(rule, error.path, head, tail)
    return Reason(rule, error.path, error.message, _GENERIC_FIX)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


# --- shared helpers -------------------------------------------------------------------------------

_EMPTY: Final[Mapping[str, Any]] = {}


def _aigis_kind(obj: Mapping[str, Any]) -> str | None:
    kind = obj.get("kind")
    if kind not in ("AIWorkload", "AIClusterPolicy"):
        return None
    group = api_group(obj)
    return str(kind) if group is None or group == GROUP else None


def _parse_workload(spec: object) -> tuple[AIWorkloadSpec | None, list[FieldError]]:
    """`parse_aiworkload_spec`, memoised on the spec's canonical JSON.

    Every pod of a namespace is checked against the same few specs; validating one (pydantic,
    RE2 compilation of its patterns) costs far more than serialising it.
    """
    if not isinstance(spec, Mapping):
        return parse_aiworkload_spec(spec)  # type: ignore[arg-type]
    try:
        key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return parse_aiworkload_spec(spec)
    if len(key) > _WORKLOAD_CACHE_LIMIT:
        return parse_aiworkload_spec(spec)
    return _parse_workload_cached(key)


@lru_cache(maxsize=256)
def _parse_workload_cached(key: bytes) -> tuple[AIWorkloadSpec | None, list[FieldError]]:
    return parse_aiworkload_spec(orjson.loads(key))


def _declares_enforce(workload: Mapping[str, Any]) -> bool:
    """The workload's own enforcement read without validation (Enforce is the default)."""
    spec = workload.get("spec")
    value = spec.get("enforcement", "Enforce") if isinstance(spec, Mapping) else "Enforce"
    return value != "Audit"


def _name_of(obj: Mapping[str, Any]) -> str | None:
    name = _field(obj, "metadata").get("name")
    return name if isinstance(name, str) else None


def _selector_of(workload: Mapping[str, Any]) -> object:
    spec = workload.get("spec")
    return spec.get("selector") if _is_mapping(spec) else None


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    # `dict` first: objects from JSON are dicts, and an ABC check costs ten times more. This runs
    # for every AIWorkload of the namespace on every review.
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def _selects(selector: object, labels: Mapping[str, str]) -> bool:
    if not _is_mapping(selector):
        return False
    match_labels = selector.get("matchLabels")
    expressions = selector.get("matchExpressions")
    if not match_labels and not expressions:
        return False
    if match_labels:
        if not _is_mapping(match_labels):
            return False
        for key, value in match_labels.items():
            if labels.get(key) != value:
                return False
    if expressions:
        if not isinstance(expressions, list):
            return False
        return all(_requirement_holds(r, labels) for r in expressions)
    return True


def _requirement_holds(requirement: object, labels: Mapping[str, str]) -> bool:
    if not _is_mapping(requirement):
        return False
    key = requirement.get("key")
    operator = requirement.get("operator")
    values = requirement.get("values") or []
    if not isinstance(key, str) or not isinstance(values, list):
        return False
    present = key in labels
    if operator == "In":
        return bool(values) and present and labels[key] in values
    if operator == "NotIn":
        return bool(values) and not (present and labels[key] in values)
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    return False


def _same(obj: Mapping[str, Any], old: Mapping[str, Any] | None, keys: tuple[str, ...]) -> bool:
    return isinstance(old, Mapping) and all(obj.get(k) == old.get(k) for k in keys)


def _same_template(new: PodTemplate, old: PodTemplate, obj: Mapping[str, Any]) -> bool:
    if new.spec != old.spec or new.labels != old.labels:
        return False
    # A Pod's annotations change nothing it runs; a template's roll out a new generation of pods.
    return obj.get("kind") == "Pod" or new.annotations == old.annotations


def _field_text(value: object, key: str) -> str:
    found = value.get(key) if _is_mapping(value) else None
    return found if isinstance(found, str) else ""


def _field(value: object, key: str) -> Mapping[str, Any]:
    if _is_mapping(value):
        found = value.get(key)
        if _is_mapping(found):
            return found
    return _EMPTY


def _decide(findings: Sequence[Finding], workload: str | None) -> Decision:
    reasons = tuple(r for r, _ in findings)
    denied = tuple(r for r, deny in findings if deny)
    warned = [r for r, deny in findings if not deny]
    return Decision(
        allowed=not denied,
        reasons=reasons,
        denied=denied,
        warnings=_warnings(warned),
        workload=workload,
    )


def _warnings(reasons: Sequence[Reason]) -> tuple[str, ...]:
    """Admission warnings: one short line each, at most MAX_WARNINGS (the API server and kubectl
    truncate long or many warnings, so the most important come first and the rest are counted)."""
    if not reasons:
        return ()
    shown = reasons if len(reasons) <= MAX_WARNINGS else reasons[: MAX_WARNINGS - 1]
    lines = [_clip(f"{r.rule} {r.path}: {r.message}") for r in shown]
    if len(shown) < len(reasons):
        lines.append(f"aigis: {len(reasons) - len(shown)} more findings (run aigis scan)")
    return tuple(lines)


def _clip(text: str) -> str:
    text = _CONTROL_CHARACTERS.sub(" ", text)
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 1] + "…"


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:5])
    return shown + (f", and {len(items) - 5} more" if len(items) > 5 else "")


def _quote(text: str) -> str:
    shown = text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
    return json.dumps(shown.encode("utf-8", "backslashreplace").decode("utf-8"), ensure_ascii=False)


_ALLOWED: Final = Decision(allowed=True, reasons=(), denied=(), warnings=(), workload=None)


__all__ = [
    "EPHEMERAL_CONTAINERS",
    "GATEWAY_CONTAINER",
    "OPT_OUT_ANNOTATION",
    "POD_KINDS",
    "AdmissionContext",
    "Decision",
    "PodTemplate",
    "PolicyBounds",
    "covering_workloads",
    "gateway_injected",
    "is_exempt_namespace",
    "is_reviewed",
    "pod_template",
    "policy_bounds",
    "review_object",
]
