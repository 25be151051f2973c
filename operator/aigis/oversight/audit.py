"""The background audit's decision: every workload that runs now, judged as admission would judge
it today.

`audit_objects` takes what `aigis.oversight.inventory.read_inventory` read (objects of every kind
in `aigis.admission.templates.TEMPLATE_KINDS`, Pods included, AIWorkloads, AIClusterPolicies,
Namespaces) and returns one `WorkloadAudit` per top-level workload: its `Decision` from
`aigis.admission.engine.review_object` (the webhook's own function, in the context
`aigis.admission.manifests.index_manifests` builds, as `aigis scan` does) plus the audit-only
findings that need the running pods. The operator's background audit and `aigis report` both
call it, so the cluster, the report and admission agree.

The shared interface (for `aigis report` and the operator):
- `WorkloadAudit`: `kind`, `api_version`, `namespace`, `name`, `uid`; `decision` (the engine's
  `Decision`: every `Reason`, which refuse and which warn); `covered_by` (the AIWorkloads
  covering any of its templates); `findings` (audit-only `AuditFinding`s: a `Reason` and whether
  it counts as a refusal); `pods` (its running pods). `denied`, `warned` and `verdict`
  (`deny`/`warn`/`allow`) combine the decision and the audit-only findings.
- `audit_objects(objects, *, now, aigis_namespace=None)`: the audits, in input order.
- `audited_namespaces(objects, *, now, aigis_namespace=None)`: the namespaces audited (a
  governed namespace without workloads is audited and has no audits).
- `workload_summary(name, audits, ...)`: an AIWorkload's capped audit summary (its
  `status.audit`).
- `AUDIT_RULES`: the audit-only rules (id, title, what it checks, fix).

Decisions (and why):
- Top-level objects only, once: an object whose controller (`ownerReferences[].controller`) is
  among the objects (a ReplicaSet of a Deployment, a Pod of a ReplicaSet, a Job of a CronJob) is
  judged through its owner's template, as admission judged it when the owner was applied. An
  object whose controller is not among them (a kind aigis does not read, an owner it could not
  read) is judged itself: otherwise nothing would judge it.
- Namespaces: system namespaces and aigis's own are skipped (`is_exempt_namespace`), as admission
  skips them. Of the others, only namespaces that a valid AIClusterPolicy governs or that hold an
  AIWorkload are audited: in any other namespace no rule applies, and every object there would
  only inflate the counts with "allow".
- Running pods are the audit's own evidence: a pod one valid AIWorkload covers, that the
  injection would give the gateway (`gateway_injected`), but that runs without an `aigis-gateway`
  container, predates aigis (or the workload, or a change to `gateway.inject`), and talks to
  providers with whatever it holds. That is `audit/gateway-missing`, reported once per
  top-level object (how many of its running pods, a few names), refusing where the workload's
  effective enforcement is Enforce; the fix is to restart the pods so the webhook injects them.
- A bare Pod the webhook injected (label `aigis.dev/workload`) holds aigis's gateway as an init
  container. The engine, without the webhook's `InjectionSettings` (the gateway image is the
  webhook's flag), cannot re-render that container to compare, and would call it an impostor. A
  pod's containers cannot change after creation (only their images can), and the webhook compared
  that container field by field when the pod was created, so that one finding is dropped for
  that one container; every other rule still applies.
- AIWorkloads are audited too (kind `AIWorkload`): whether they still meet the governing
  policies. AIClusterPolicies are not: their validity is in their own status.

Pure: no I/O, no clock (`now` is passed), no environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from aigis.admission.engine import (
    AdmissionContext,
    Decision,
    covering_workloads,
    gateway_injected,
    is_exempt_namespace,
    is_reviewed,
    review_object,
)
from aigis.admission.manifests import (
    ManifestIndex,
    index_manifests,
    is_kind,
    object_name,
    object_namespace,
)
from aigis.admission.mutation import GATEWAY_CONTAINER, WORKLOAD_LABEL
from aigis.admission.reasons import Reason
from aigis.admission.rules import audit as audit_rules
from aigis.admission.rules.audit import RULE_GATEWAY_MISSING
from aigis.admission.rules.bounds import PolicyBounds, policy_bounds
from aigis.admission.rules.gateway import RULE_GATEWAY_IMPOSTOR
from aigis.admission.rules.rule import Rule
from aigis.admission.templates import PodTemplate, pod_template, pod_templates
from aigis.api.aiworkload import AIWorkloadSpec
from aigis.api.validation import parse_aiworkload_spec
from aigis.egress.compliance import evaluate_compliance, governing_policies

MAX_NAMED_PODS: Final = 5
"""Pods a gateway-missing finding names; the rest are counted."""
MAX_OWNER_DEPTH: Final = 8
"""Owner chains are short (Pod -> ReplicaSet -> Deployment); a longer one is a loop."""
FINISHED_PHASES: Final = frozenset({"Succeeded", "Failed"})

AUDIT_RULES: Final[tuple[Rule, ...]] = audit_rules.FAMILY.rules
"""Findings only the background audit makes: they need the running pods, not a manifest."""


@dataclass(frozen=True, slots=True)
class AuditFinding:
    """A finding the audit makes about running pods, and whether it counts as a refusal."""

    reason: Reason
    deny: bool


@dataclass(frozen=True, slots=True)
class WorkloadAudit:
    """One top-level workload (or AIWorkload) and how admission judges it today."""

    kind: str
    api_version: str
    namespace: str
    name: str
    uid: str | None
    decision: Decision
    """`review_object`'s decision on the object as it is stored now."""
    covered_by: tuple[str, ...]
    """The AIWorkloads whose selector matches any of its pod templates."""
    findings: tuple[AuditFinding, ...] = ()
    """Audit-only findings about its running pods (`AUDIT_RULES`)."""
    pods: int = 0
    """Its running pods (not finished, not being deleted); 1 or 0 for a Pod itself."""

    @property
    def denied(self) -> tuple[Reason, ...]:
        """Every finding that refuses: the decision's and the audit's."""
        return self.decision.denied + tuple(f.reason for f in self.findings if f.deny)

    @property
    def warned(self) -> tuple[Reason, ...]:
        """Every finding that only warns."""
        refused = {id(r) for r in self.decision.denied}
        return tuple(r for r in self.decision.reasons if id(r) not in refused) + tuple(
            f.reason for f in self.findings if not f.deny
        )

    @property
    def verdict(self) -> str:
        """`deny` (a finding refuses it), `warn` (only warnings) or `allow`."""
        if self.denied:
            return "deny"
        return "warn" if self.warned else "allow"


def audit_objects(
    objects: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    aigis_namespace: str | None = None,
) -> list[WorkloadAudit]:
    """Every top-level workload and AIWorkload of an audited namespace, judged (see above)."""
    index = index_manifests(objects)
    by_uid = {uid: obj for obj in objects if (uid := _uid(obj)) is not None}
    audited = _audited(objects, index, now, aigis_namespace)
    running: dict[str, list[Mapping[str, Any]]] = {}
    for obj in objects:
        if obj.get("kind") == "Pod" and _is_running(obj):
            top = _top_owner(obj, by_uid)
            running.setdefault(_key(top), []).append(obj)
    parsed: dict[str, tuple[AIWorkloadSpec | None, bool]] = {}
    audits: list[WorkloadAudit] = []
    for obj in objects:
        if not is_reviewed(obj) or is_kind(obj, "AIClusterPolicy"):
            continue
        namespace = object_namespace(obj, index.default_namespace)
        if namespace is None or namespace not in audited or _controller_here(obj, by_uid):
            continue
        ctx = index.context(namespace, now=now, aigis_namespace=aigis_namespace)
        decision = _without_injected_gateway(obj, review_object(obj, ctx))
        pods = running.get(_key(obj), [])
        covered_by: list[str] = []
        for template in pod_templates(obj):
            for workload in covering_workloads(template.labels, ctx.workloads):
                name = object_name(workload) or "?"
                if name not in covered_by:
                    covered_by.append(name)
        findings = _gateway_missing(obj, pods, ctx.workloads, ctx, parsed)
        audits.append(
            WorkloadAudit(
                kind=str(obj.get("kind")),
                api_version=str(obj.get("apiVersion") or ""),
                namespace=namespace,
                name=object_name(obj) or "<unnamed>",
                uid=_uid(obj),
                decision=decision,
                covered_by=tuple(covered_by),
                findings=findings,
                pods=len(pods),
            )
        )
    return audits


# --- AIWorkload status ------------------------------------------------------------------------


def workload_summary(
    workload: str, audits: Iterable[WorkloadAudit], *, max_items: int = 10
) -> dict[str, Any]:
    """What an AIWorkload's `status.audit` says about the objects it covers (camelCase, as the
    API serves it; `aigis.api.aiworkload.AuditSummary` without `lastChangeTime`): counts of
    objects by verdict, of findings by rule, and the first `max_items` findings (refusals
    first), with how many were left out."""
    covered = [a for a in audits if workload in a.covered_by]
    verdicts = [a.verdict for a in covered]
    items: list[dict[str, str]] = []
    rules: dict[str, int] = {}
    for result in ("deny", "warn"):
        for audit in covered:
            for reason in audit.denied if result == "deny" else audit.warned:
                rules[reason.rule] = rules.get(reason.rule, 0) + 1
                items.append(
                    {
                        "result": result,
                        "rule": reason.rule,
                        "object": f"{audit.kind}/{audit.name}",
                        "path": reason.path,
                        "message": reason.message,
                    }
                )
    return {
        "objects": len(covered),
        "denied": verdicts.count("deny"),
        "warned": verdicts.count("warn"),
        "allowed": verdicts.count("allow"),
        "pods": sum(a.pods for a in covered),
        "rules": [{"rule": r, "count": n} for r, n in sorted(rules.items())],
        "findings": items[:max_items],
        "omitted": max(0, len(items) - max_items),
    }


# --- helpers ------------------------------------------------------------------------------------


def _uid(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
    return uid if isinstance(uid, str) and uid else None


def _key(obj: Mapping[str, Any]) -> str:
    """Identity of an object for grouping: its UID, else kind/namespace/name (manifests)."""
    uid = _uid(obj)
    if uid is not None:
        return uid
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return f"{obj.get('kind')}/{namespace}/{object_name(obj)}"


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    owners = metadata.get("ownerReferences") if isinstance(metadata, Mapping) else None
    for owner in owners if isinstance(owners, list) else ():
        if isinstance(owner, Mapping) and owner.get("controller") is True:
            uid = owner.get("uid")
            return uid if isinstance(uid, str) else None
    return None


def _controller_here(obj: Mapping[str, Any], by_uid: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a controller among the objects owns `obj` (then the owner is judged instead)."""
    uid = _controller_uid(obj)
    return uid is not None and uid in by_uid


def _top_owner(
    obj: Mapping[str, Any], by_uid: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any]:
    current = obj
    for _ in range(MAX_OWNER_DEPTH):
        uid = _controller_uid(current)
        owner = by_uid.get(uid) if uid is not None else None
        if owner is None:
            return current
        current = owner
    return current


def _is_running(pod: Mapping[str, Any]) -> bool:
    metadata = pod.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("deletionTimestamp"):
        return False
    status = pod.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return phase not in FINISHED_PHASES


def audited_namespaces(
    objects: Sequence[Mapping[str, Any]], *, now: datetime, aigis_namespace: str | None = None
) -> frozenset[str]:
    """The namespaces `audit_objects` audits among `objects` (see the module docstring)."""
    return _audited(objects, index_manifests(objects), now, aigis_namespace)


def _audited(
    objects: Sequence[Mapping[str, Any]],
    index: ManifestIndex,
    now: datetime,
    aigis_namespace: str | None,
) -> frozenset[str]:
    """Namespaces a valid policy governs or that hold an AIWorkload, minus the exempt ones."""
    names: set[str] = set(index.workloads)
    for obj in objects:
        if obj.get("kind") == "Namespace":
            name = object_name(obj)
            if name is not None:
                names.add(name)
        else:
            namespace = object_namespace(obj, index.default_namespace)
            if namespace is not None:
                names.add(namespace)
    audited = set()
    for name in names:
        if is_exempt_namespace(name, aigis_namespace):
            continue
        ctx = index.context(name, now=now, aigis_namespace=aigis_namespace)
        if name in index.workloads or governing_policies(
            ctx.policies, name, ctx.namespace_labels, aigis_namespace=aigis_namespace
        ):
            audited.add(name)
    return frozenset(audited)


def _without_injected_gateway(obj: Mapping[str, Any], decision: Decision) -> Decision:
    """The decision without the impostor finding on the gateway the webhook injected into a bare
    Pod (see the module docstring); any other decision as it is."""
    if obj.get("kind") != "Pod" or not decision.reasons:
        return decision
    template = pod_template(obj)
    if template is None or WORKLOAD_LABEL not in template.labels:
        return decision
    injected = {
        f"spec.initContainers[{i}]"
        for i, c in enumerate(template.spec.get("initContainers") or ())
        if isinstance(c, Mapping) and c.get("name") == GATEWAY_CONTAINER
    }
    if len(injected) != 1:
        return decision

    def kept(reason: Reason) -> bool:
        return not (reason.rule == RULE_GATEWAY_IMPOSTOR and reason.path in injected)

    reasons = tuple(r for r in decision.reasons if kept(r))
    denied = tuple(r for r in decision.denied if kept(r))
    return Decision(
        allowed=not denied,
        reasons=reasons,
        denied=denied,
        warnings=tuple(w for w in decision.warnings if RULE_GATEWAY_IMPOSTOR not in w),
        workload=decision.workload,
    )


def _has_gateway(template: PodTemplate) -> bool:
    for list_name in ("initContainers", "containers"):
        items = template.spec.get(list_name)
        for container in items if isinstance(items, list) else ():
            if isinstance(container, Mapping) and container.get("name") == GATEWAY_CONTAINER:
                return True
    return False


def _gateway_missing(
    obj: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    workloads: Sequence[Mapping[str, Any]],
    ctx: AdmissionContext,
    parsed: dict[str, tuple[AIWorkloadSpec | None, bool]],
) -> tuple[AuditFinding, ...]:
    """`audit/gateway-missing` for the running pods of `obj` (see the module docstring)."""
    if not pods or not workloads:
        return ()
    bounds = policy_bounds(
        governing_policies(
            ctx.policies,
            ctx.namespace or "",
            ctx.namespace_labels,
            aigis_namespace=ctx.aigis_namespace,
        )
    )
    missing: list[str] = []
    enforce = False
    workload_names: list[str] = []
    for pod in pods:
        template = pod_template(pod)
        if template is None or _has_gateway(template):
            continue
        covering = covering_workloads(template.labels, workloads)
        if len(covering) != 1:
            continue
        workload = covering[0]
        model, enforced = _parse(workload, bounds, parsed)
        if model is None or not gateway_injected(model, template, bounds):
            continue
        missing.append(object_name(pod) or "<unnamed>")
        enforce = enforce or enforced
        name = object_name(workload) or "?"
        if name not in workload_names:
            workload_names.append(name)
    if not missing:
        return ()
    shown = ", ".join(missing[:MAX_NAMED_PODS])
    if len(missing) > MAX_NAMED_PODS:
        shown += f" and {len(missing) - MAX_NAMED_PODS} more"
    declared = ", ".join(f'"{n}"' for n in workload_names)
    templates = pod_templates(obj)
    path = f"{templates[0].metadata_path}.labels" if templates else "metadata"
    restart = (
        f"kubectl -n {ctx.namespace} rollout restart {str(obj.get('kind')).lower()}/"
        f"{object_name(obj)}"
        if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet")
        else "delete the pods so that their controller recreates them"
    )
    reason = Reason(
        rule=RULE_GATEWAY_MISSING,
        path=path,
        message=f"{len(missing)} of {len(pods)} running pods run without the aigis gateway that "
        f"AIWorkload {declared} gives them: {shown}",
        fix=f"restart them so that the webhook injects the gateway: {restart}",
    )
    return (AuditFinding(reason, enforce),)


def _parse(
    workload: Mapping[str, Any],
    bounds: PolicyBounds,
    parsed: dict[str, tuple[AIWorkloadSpec | None, bool]],
) -> tuple[AIWorkloadSpec | None, bool]:
    """The workload's valid spec (None if invalid) and whether its effective enforcement is
    Enforce; memoised per workload for this pass."""
    key = f"{object_namespace(workload, 'default')}/{object_name(workload)}"
    if key not in parsed:
        spec = workload.get("spec")
        model, errors = parse_aiworkload_spec(spec if isinstance(spec, Mapping) else {})
        if model is None or errors:
            parsed[key] = (None, False)
        else:
            report = evaluate_compliance(model, bounds.policies)
            parsed[key] = (model, report.enforcement == "Enforce")
    return parsed[key]
