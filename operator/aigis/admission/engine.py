"""The admission decision: may this object be admitted, and if not, exactly why.

`review_object` is the one function the validating webhook and `aigis scan` call, so a manifest
that passes in CI passes in the cluster. It takes the admitted object and an `AdmissionContext`
(the namespace, its AIWorkloads, every valid AIClusterPolicy, the time) and returns a `Decision`
holding every finding as a `Reason` with rule, field path and fix.

What is reviewed:
- Objects that run pods (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
  ReplicationController, Job, CronJob, and the AI-native kinds of `templates.TEMPLATE_KINDS`:
  LeaderWorkerSet, JobSet, Ray, KServe, Kubeflow training jobs): each pod template, against the
  AIWorkload covering it (its selector matches the template's labels) and the governing
  AIClusterPolicies. An object with several templates (a Ray head and its worker groups) gets
  the findings of all of them.
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

Where the rules are: each rule family is a module of `aigis.admission.rules`, which registers
every rule id with its title, what it checks, the fix and its check function (`aigis rules`,
`docs/rules.md`). The rule-specific decisions are in those modules' docstrings: shadow AI
(`rules.shadow`), the covering workload and red-team freshness (`rules.workload`), images
(`rules.images`), provider keys and ServiceAccount tokens (`rules.secrets`), the gateway sidecar,
its volumes and process namespace (`rules.gateway`), aigis's own objects (`rules.resources`) and
Pod Security (`rules.podsecurity`). This module decides which checks run on which object, and
whether a finding refuses or warns.

Decisions this module makes (and why):
- The covering workload's validity and compliance are computed here from its spec and the
  governing policies, with the functions the operator uses to write `status`, rather than read
  from `status`. Status lags behind: a Deployment applied together with its AIWorkload would be
  refused until the operator caught up, and a policy change would take effect at the operator's
  pace. Computing it makes the webhook as current as its inputs and makes `aigis scan` (where no
  operator runs) agree by construction. `status` is never read.
- Where the gateway is: on a Pod in the webhook (`ctx.injection` set) the validating pass runs
  after the injection, so the pod holds aigis's gateway if it has one (`rules.gateway`) and
  whatever the injection moves is gone already. On a template, or any manifest `aigis scan`
  reads, the injection is still to come: it will add the gateway and move the declared keys.
- Ephemeral containers (`subresource="ephemeralcontainers"`, what `kubectl debug` writes): the
  pod is reviewed with every rule, and only the findings about ephemeral containers it did not
  have before count, so debugging an older pod is not refused for drift admitted earlier.
- An AIWorkload's stale red-team attestation is a warning on the AIWorkload and a refusal on its
  pods: its age changes with time alone, and refusing the AIWorkload would also refuse the very
  update that records a new exercise.
- UPDATE: when `old_object` is given and nothing reviewed changed (the pod template, or the spec
  of an AIWorkload or AIClusterPolicy), the update is allowed. Metadata and status writes (the
  operator's annotations, a finalizer's removal, a scale) must never be refused because a policy
  tightened after the object was admitted; the same reasoning as Kubernetes' PodSecurity admission.

Pure: no I/O, no clock (`now` is passed in), no environment. Must not import the webhook server,
kopf handlers or the Kubernetes client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Final

import orjson

from aigis.admission.mutation import GATEWAY_CONTAINER, OPT_OUT_ANNOTATION, InjectionSettings
from aigis.admission.reading import EMPTY, entries, is_mapping, mapping_at, name_of, quote, text_at
from aigis.admission.reasons import Reason
from aigis.admission.rules.bounds import PolicyBounds, policy_bounds
from aigis.admission.rules.containers import volumes_exposing
from aigis.admission.rules.gateway import (
    RULE_GATEWAY_DEBUG_TARGET,
    RULE_GATEWAY_IMPOSTOR,
    RULE_GATEWAY_VOLUME,
    RULE_SHARE_PROCESS_NAMESPACE,
    debug_targets,
    find_gateway,
    gateway_impostors,
    gateway_volumes,
    shared_process_namespace,
)
from aigis.admission.rules.images import RULE_IMAGE_DIGEST, RULE_IMAGE_REGISTRY, image_sources
from aigis.admission.rules.pod import CoveredPod, GatewaySidecar
from aigis.admission.rules.podsecurity import pod_security, pod_security_reasons
from aigis.admission.rules.resources import (
    AIWORKLOAD_POLICY_RULE_PREFIX,
    RULE_AIWORKLOAD_INVALID,
    RULE_CLUSTER_POLICY_INVALID,
    aiworkload_compliance,
    aiworkload_invalid,
    cluster_policy_invalid,
)
from aigis.admission.rules.secrets import (
    RULE_PROVIDER_KEY,
    RULE_TOKEN_AUTOMOUNT,
    provider_keys_in_app,
    token_automount,
)
from aigis.admission.rules.shadow import RULE_SHADOW_AI, shadow_ai
from aigis.admission.rules.workload import (
    RULE_MULTIPLE_COVER,
    RULE_RED_TEAM,
    RULE_WORKLOAD_INVALID,
    RULE_WORKLOAD_NOT_COMPLIANT,
    multiple_cover,
    red_team_reasons,
    red_team_stale,
    workload_invalid,
    workload_not_compliant,
)
from aigis.admission.templates import (
    POD_KINDS,
    PodTemplate,
    api_group,
    pod_template,
    pod_templates,
    template_kind,
)
from aigis.api.aiworkload import AIWorkloadSpec
from aigis.api.clusterpolicy import UNGOVERNABLE_NAMESPACES
from aigis.api.common import GROUP
from aigis.api.errors import FieldError
from aigis.api.validation import parse_aiworkload_spec
from aigis.egress.compliance import NamedPolicy, evaluate_compliance, governing_policies

MAX_WARNINGS: Final = 10
MAX_WARNING_CHARS: Final = 255
MAX_MESSAGE_REASONS: Final = 20
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")
EPHEMERAL_CONTAINERS: Final = "ephemeralcontainers"
"""The Pod subresource `kubectl debug` writes to add ephemeral containers to a running pod."""
_WORKLOAD_CACHE_LIMIT: Final = 64 * 1024

PodCheck = Callable[[CoveredPod], Iterable[Reason]]

COVERED_POD_CHECKS: Final[tuple[PodCheck, ...]] = (
    workload_invalid,
    workload_not_compliant,
    gateway_impostors,
    provider_keys_in_app,
    gateway_volumes,
    debug_targets,
    shared_process_namespace,
    red_team_stale,
    token_automount,
    image_sources,
    pod_security,
)
"""The checks a pod one AIWorkload covers goes through, in the order findings are reported (the
first MAX_WARNINGS become admission warnings). Each is a registered rule's check
(`aigis.admission.rules`)."""


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
    return text_at(mapping_at(template.spec, "os"), "name") != "windows"


def is_reviewed(obj: Mapping[str, Any]) -> bool:
    """Whether `review_object` has rules for this kind of object."""
    return _aigis_kind(obj) is not None or template_kind(obj) is not None


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
    if template_kind(obj) is None:
        return _ALLOWED
    templates = pod_templates(obj)
    if subresource:
        template = pod_template(obj)
        if subresource != EPHEMERAL_CONTAINERS or template is None or not template.is_pod:
            return _ALLOWED
        return _review_debug_containers(template, old_object, ctx)
    if operation == "UPDATE" and old_object is not None:
        old_templates = pod_templates(old_object)
        if len(old_templates) == len(templates) and all(
            _same_template(new, old, obj) for new, old in zip(templates, old_templates, strict=True)
        ):
            return _ALLOWED
    findings: list[Finding] = []
    covering: set[str | None] = set()
    for template in templates:
        found, workload = _review_template(template, ctx)
        findings.extend(found)
        covering.add(workload)
    # An object whose templates a single AIWorkload covers names it; AI-native kinds can hold
    # templates that different workloads (or none) cover.
    return _decide(findings, covering.pop() if len(covering) == 1 else None)


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
        return [(multiple_cover(template, covering), enforce)], None
    workload = covering[0]
    name = name_of(workload)
    return _review_covered(template, workload, name, bounds, ctx), name


def _review_uncovered(template: PodTemplate, bounds: PolicyBounds) -> list[Finding]:
    shadow = list(shadow_ai(template, bounds))
    if not shadow:
        return []
    deny = bounds.shadow_ai == "Enforce"
    reasons = [*shadow, *pod_security_reasons(template, bounds)]
    return [(r, deny) for r in reasons]


def _review_debug_containers(
    template: PodTemplate, old_object: Mapping[str, Any] | None, ctx: AdmissionContext
) -> Decision:
    """pods/ephemeralcontainers: the pod is reviewed as it will run, and only the findings about
    ephemeral containers it did not have before count. The rest was admitted earlier; refusing a
    debug container for a policy that tightened since would help no one."""
    old_template = pod_template(old_object) if isinstance(old_object, Mapping) else None
    old_names = {
        text_at(entry, "name")
        for entry in entries(old_template.spec if old_template else EMPTY, "ephemeralContainers")
    }
    new_paths = tuple(
        f"{template.spec_path}.ephemeralContainers[{index}]"
        for index, entry in enumerate(entries(template.spec, "ephemeralContainers"))
        if text_at(entry, "name") not in old_names
    )
    if not new_paths:
        return _ALLOWED
    findings, workload = _review_template(template, ctx)
    return _decide([f for f in findings if _within(f[0].path, new_paths)], workload)


def _within(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith((p + ".", p + "[")) for p in prefixes)


def _review_covered(
    template: PodTemplate,
    workload: Mapping[str, Any],
    name: str | None,
    bounds: PolicyBounds,
    ctx: AdmissionContext,
) -> list[Finding]:
    pod = _covered_pod(template, workload, name, bounds, ctx)
    if pod.report is not None:
        enforce = pod.report.enforcement == "Enforce"
    else:
        enforce = bounds.enforce or _declares_enforce(workload)
    return [(r, enforce) for check in COVERED_POD_CHECKS for r in check(pod)]


def _covered_pod(
    template: PodTemplate,
    workload: Mapping[str, Any],
    name: str | None,
    bounds: PolicyBounds,
    ctx: AdmissionContext,
) -> CoveredPod:
    """What the checks read about a covered pod, worked out once."""
    model, errors = _parse_workload(workload.get("spec"))
    report = None
    gateway = GatewaySidecar()
    will_inject = injected = moves = False
    key_volumes: dict[str, str] = {}
    if model is not None and not errors:
        report = evaluate_compliance(model, bounds.policies)
        will_inject = gateway_injected(model, template, bounds)
        gateway = find_gateway(template, name or "", model, will_inject, ctx.injection)
        if template.is_pod and ctx.injection is not None:
            # The webhook sees a Pod after the injection ran: what it moves is gone already, and
            # whatever is left was not moved (the pod arrived with a gateway, so was skipped).
            injected, moves = gateway.path is not None, False
        else:
            injected = moves = will_inject
        key_volumes = volumes_exposing(
            template, {k.secret_ref.name for k in model.gateway.provider_keys}
        )
    return CoveredPod(
        template=template,
        bounds=bounds,
        workload=name or "",
        shown=quote(name or "?"),
        model=model,
        errors=errors,
        report=report,
        gateway=gateway,
        will_inject=will_inject,
        injected=injected,
        moves=moves,
        key_volumes=key_volumes,
        now=ctx.now,
    )


# --- AIWorkload and AIClusterPolicy objects ------------------------------------------------------


def _review_aiworkload(obj: Mapping[str, Any], ctx: AdmissionContext) -> list[Finding]:
    model, errors = _parse_workload(obj.get("spec"))
    if model is None or errors:
        return [(r, True) for r in aiworkload_invalid(errors)]
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
    findings: list[Finding] = [(r, deny) for r in aiworkload_compliance(report)]
    # The age of an attestation changes with time alone: refusing the AIWorkload for it would
    # also refuse the very update that records a new exercise, so it is a warning here and a
    # refusal on the pods.
    bounds = policy_bounds(policies)
    shown = quote(name_of(obj) or "?")
    stale = red_team_reasons("spec.assurance.lastRedTeam", model, shown, bounds, ctx.now)
    findings.extend((reason, False) for reason in stale)
    return findings


def _review_cluster_policy(obj: Mapping[str, Any]) -> list[Finding]:
    spec = obj.get("spec")
    return [(r, True) for r in cluster_policy_invalid(spec)]


# --- shared helpers -------------------------------------------------------------------------------


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


def _selector_of(workload: Mapping[str, Any]) -> object:
    spec = workload.get("spec")
    return spec.get("selector") if is_mapping(spec) else None


def _selects(selector: object, labels: Mapping[str, str]) -> bool:
    if not is_mapping(selector):
        return False
    match_labels = selector.get("matchLabels")
    expressions = selector.get("matchExpressions")
    if not match_labels and not expressions:
        return False
    if match_labels:
        if not is_mapping(match_labels):
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
    if not is_mapping(requirement):
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


_ALLOWED: Final = Decision(allowed=True, reasons=(), denied=(), warnings=(), workload=None)


__all__ = [
    "AIWORKLOAD_POLICY_RULE_PREFIX",
    "COVERED_POD_CHECKS",
    "EPHEMERAL_CONTAINERS",
    "GATEWAY_CONTAINER",
    "OPT_OUT_ANNOTATION",
    "POD_KINDS",
    "RULE_AIWORKLOAD_INVALID",
    "RULE_CLUSTER_POLICY_INVALID",
    "RULE_GATEWAY_DEBUG_TARGET",
    "RULE_GATEWAY_IMPOSTOR",
    "RULE_GATEWAY_VOLUME",
    "RULE_IMAGE_DIGEST",
    "RULE_IMAGE_REGISTRY",
    "RULE_MULTIPLE_COVER",
    "RULE_PROVIDER_KEY",
    "RULE_RED_TEAM",
    "RULE_SHADOW_AI",
    "RULE_SHARE_PROCESS_NAMESPACE",
    "RULE_TOKEN_AUTOMOUNT",
    "RULE_WORKLOAD_INVALID",
    "RULE_WORKLOAD_NOT_COMPLIANT",
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
