"""The compliance report: what AI runs in a cluster, whether it is governed, and the evidence.

`build_report` turns plain objects (what `aigis.oversight.inventory.read_inventory` reads, or
manifests) into a `Report`; `render_markdown`, `render_html` and `render_json` print it. The
report reuses the other oversight cores rather than judging anything itself: the inventory of AI
workloads is `aigis.oversight.discover` (the same evidence admission uses), the compliance of
each workload is `aigis.oversight.audit.audit_objects` (the webhook's engine, plus the audit-only
checks on running pods), joined with what the operator wrote into each AIWorkload's status.

Sections:
- Inventory: declared AIWorkloads, and every workload that looks like AI or that an AIWorkload
  covers, with its state: `compliant` (covered, nothing found, its AIWorkload not reported
  non-compliant), `non-compliant`, or `shadow` (AI that no AIWorkload covers).
- Open violations: every finding with rule id, object, field path and fix (admission and audit
  findings, then what AIWorkload status lists that they do not).
- Guardrail coverage, forensic readiness (per AIWorkload, and every ForensicSnapshot).
- Controls: `controls.yaml` (data, with its sources) maps each aigis control to NIST AI RMF and
  ISO/IEC 42001 Annex A ids and names the facts that evidence it; each fact (`FACTS`) is counted
  here (met of how many, with names), and a control is evidenced, partial or missing from them.
- Board view: a few numbers on trust, accountability and resilience.
- Unreadable: what could not be read (a namespace the user may not list, a manifest that does
  not parse), listed so the reader knows what the report does not cover.

The HTML is one self-contained page (inline CSS, no script, no external resource) and every
value in it is escaped, as every Markdown cell is: names come from the cluster.

Pure apart from reading the package's own `controls.yaml`: no cluster, clock or environment.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any, Final, Literal

import yaml

from aigis.admission.engine import covering_workloads
from aigis.admission.manifests import is_kind, object_name, object_namespace
from aigis.admission.mutation import GATEWAY_CONTAINER
from aigis.admission.reading import fields
from aigis.admission.reasons import Reason
from aigis.admission.templates import pod_template
from aigis.api.aiworkload import AIWorkloadSpec
from aigis.api.validation import parse_aiworkload_spec
from aigis.oversight.audit import WorkloadAudit, audit_objects
from aigis.oversight.bom import workload_images
from aigis.oversight.discover import DRAFT_OWNER, DiscoveredWorkload, discover, is_controlled

REPORT_API_VERSION: Final = "aigis.dev/report/v1"
DEFAULT_NAMESPACE: Final = "default"
MAX_NAMES: Final = 20
"""Names a fact lists; the rest are counted."""
_FINISHED: Final = frozenset({"Succeeded", "Failed"})

State = Literal["compliant", "non-compliant", "shadow"]
Level = Literal["full", "some", "none"]
Status = Literal["evidenced", "partial", "missing"]
Tone = Literal["good", "warn", "bad", "info"]


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Declaration:
    """One AIWorkload: who owns it, its mode, what the operator and the audit say about it."""

    namespace: str
    name: str
    owner: str
    purpose: str
    enforcement: str
    valid: bool
    verdict: str
    """The audit's verdict on the AIWorkload itself (`allow`, `warn`, `deny`; `-` unaudited)."""
    ready: str
    """Status condition Ready (`True`, `False`, `Unknown`, `-` when absent), as are the next."""
    compliant: str
    network_policy: str
    status_violations: int
    covers: tuple[str, ...]
    """The objects it covers, as `Kind/name`."""


@dataclass(frozen=True, slots=True)
class WorkloadRow:
    """One object that runs pods and looks like AI or is covered by an AIWorkload."""

    kind: str
    namespace: str
    name: str
    state: State
    declared_by: tuple[str, ...]
    owners: tuple[str, ...]
    verdict: str
    """The audit's verdict (`allow`, `warn`, `deny`), `-` where no audit applies (a namespace
    no policy governs and no AIWorkload is in)."""
    findings: int
    pods: int
    evidence: tuple[str, ...]
    """Why it looks like AI (empty for a covered object that shows no AI evidence itself)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One open finding: the rule, the object and field, what is wrong and the fix."""

    source: Literal["admission", "audit", "status"]
    effect: Literal["deny", "warn", "status"]
    rule: str
    namespace: str
    object: str
    path: str
    message: str
    fix: str


@dataclass(frozen=True, slots=True)
class GuardrailRow:
    """What one AIWorkload's gateway checks, and how many of its pods run the gateway."""

    namespace: str
    name: str
    inject: bool
    enforcement: str
    pods: int
    pods_injected: int
    prompt_injection: str
    pii: str
    secrets: str
    deny_patterns: int
    limits: str
    prompt_logging: str
    failure_mode: str


@dataclass(frozen=True, slots=True)
class ForensicsRow:
    """One AIWorkload's readiness to capture evidence."""

    namespace: str
    name: str
    capture_on_termination: bool
    storage: str
    object_lock: str
    retention_days: int
    last_snapshot: str
    snapshots: int
    complete: int


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """One ForensicSnapshot and what it holds."""

    namespace: str
    name: str
    pod: str
    trigger: str
    phase: str
    complete: bool | None
    storage: str
    object_lock: str
    audit_chain: str


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing the report counted as evidence: `met` of `of` (None: a plain count)."""

    key: str
    label: str
    met: int
    of: int | None
    level: Level
    names: tuple[str, ...]
    """What counts, by name (capped at MAX_NAMES)."""
    gaps: tuple[str, ...]
    """What falls short, by name (capped at MAX_NAMES)."""

    @property
    def shown(self) -> str:
        return str(self.met) if self.of is None else f"{self.met} of {self.of}"


@dataclass(frozen=True, slots=True)
class ControlResult:
    """One aigis control, its framework ids and the evidence found for it."""

    id: str
    title: str
    what: str
    nist: tuple[str, ...]
    iso: tuple[str, ...]
    evidence: tuple[Fact, ...]
    status: Status


@dataclass(frozen=True, slots=True)
class Figure:
    """One number of the board view."""

    label: str
    value: str
    tone: Tone
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BoardSection:
    title: str
    question: str
    figures: tuple[Figure, ...]


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: str
    scope: str
    declarations: tuple[Declaration, ...]
    workloads: tuple[WorkloadRow, ...]
    violations: tuple[Violation, ...]
    guardrails: tuple[GuardrailRow, ...]
    forensics: tuple[ForensicsRow, ...]
    snapshots: tuple[SnapshotRow, ...]
    controls: tuple[ControlResult, ...]
    board: tuple[BoardSection, ...]
    unreadable: tuple[str, ...]
    facts: Mapping[str, Fact] = field(default_factory=dict)

    def count(self, state: State) -> int:
        return sum(1 for w in self.workloads if w.state == state)


# --- the controls table ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Control:
    id: str
    title: str
    what: str
    nist: tuple[str, ...]
    iso: tuple[str, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ControlTable:
    nist: Mapping[str, str]
    iso: Mapping[str, str]
    controls: tuple[Control, ...]


def parse_controls(text: str) -> ControlTable:
    """The controls table from its YAML (`controls.yaml`)."""
    data = yaml.safe_load(text)
    return ControlTable(
        nist={str(k): str(v) for k, v in data["nist"].items()},
        iso={str(k): str(v) for k, v in data["iso"].items()},
        controls=tuple(
            Control(
                id=str(c["id"]),
                title=str(c["title"]),
                what=" ".join(str(c["what"]).split()),
                nist=tuple(str(i) for i in c["nist"]),
                iso=tuple(str(i) for i in c["iso"]),
                evidence=tuple(str(e) for e in c["evidence"]),
            )
            for c in data["controls"]
        ),
    )


_NIST_ID = re.compile(r"(GOVERN|MAP|MEASURE|MANAGE)( [1-9][0-9]?\.[1-9][0-9]?)?")
_ISO_ID = re.compile(r"A\.([2-9]|10)\.[1-9][0-9]?(\.[1-9][0-9]?)?")


def controls_problems(table: ControlTable) -> list[str]:
    """Everything wrong with a controls table: ids that are not NIST AI RMF functions or
    subcategories or ISO/IEC 42001 Annex A controls (A.2 to A.10), a control naming an id its
    table does not list or a fact the report model does not count, duplicate control ids."""
    problems = [
        f"nist: {i!r} is not a NIST AI RMF id" for i in table.nist if not _NIST_ID.fullmatch(i)
    ]
    problems += [
        f"iso: {i!r} is not an Annex A control id" for i in table.iso if not _ISO_ID.fullmatch(i)
    ]
    seen: set[str] = set()
    for control in table.controls:
        if control.id in seen:
            problems.append(f"controls: {control.id!r} is listed twice")
        seen.add(control.id)
        problems += [
            f"{control.id}: nist {i!r} is not in the nist table"
            for i in control.nist
            if i not in table.nist
        ]
        problems += [
            f"{control.id}: iso {i!r} is not in the iso table"
            for i in control.iso
            if i not in table.iso
        ]
        problems += [
            f"{control.id}: evidence {e!r} is not a fact of the report (FACTS)"
            for e in control.evidence
            if e not in FACTS
        ]
        if not (control.nist and control.iso and control.evidence):
            problems.append(f"{control.id}: needs nist, iso and evidence entries")
    return problems


@lru_cache(maxsize=1)
def load_controls() -> ControlTable:
    """The package's controls table."""
    text = resources.files("aigis.oversight").joinpath("controls.yaml").read_text("utf-8")
    return parse_controls(text)


FACTS: Final[Mapping[str, str]] = {
    "declarations.owned": "AIWorkloads with a named owner",
    "declarations.valid": "AIWorkloads with a valid spec",
    "discovery.declared": "AI workloads declared by an AIWorkload",
    "admission.policies": "Valid AIClusterPolicies",
    "admission.clean": "Covered workloads the admission engine finds nothing wrong with",
    "egress.policies_applied": "Valid AIWorkloads with their egress NetworkPolicy applied",
    "gateway.pods_injected": "Running covered pods with the gateway sidecar",
    "gateway.guardrails_on": "Valid AIWorkloads with the gateway and all three guards on",
    "forensics.capture_on": "Valid AIWorkloads capturing evidence on termination",
    "forensics.object_lock": "Capturing AIWorkloads storing evidence under S3 Object Lock",
    "forensics.snapshots_complete": "ForensicSnapshots stored complete",
    "forensics.chain_intact": "Snapshots of gateway pods whose audit chain verified intact",
    "bom.models_declared": "Valid AIWorkloads declaring their models",
    "bom.images_pinned": "Images in the templates of covered workloads pinned by digest",
    "audit.clean": "Audited objects with no finding",
    "audit.background": "AIWorkloads whose status carries the operator's background audit",
}
"""Every fact the report model counts: key -> what it counts. controls.yaml names these."""


# --- building -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Workload:
    """An AIWorkload object, its namespace, name and parsed spec (None when invalid)."""

    obj: Mapping[str, Any]
    namespace: str
    name: str
    spec: AIWorkloadSpec | None

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


def build_report(
    objects: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    unreadable: Sequence[str] = (),
    scope: str = "cluster",
    aigis_namespace: str | None = None,
    controls: ControlTable | None = None,
) -> Report:
    """The report on `objects` (every kind `read_inventory` reads, plus ForensicSnapshots)."""
    table = controls or load_controls()
    workloads = [_workload(o) for o in objects if is_kind(o, "AIWorkload")]
    by_key = {w.key: w for w in workloads}
    audits = audit_objects(objects, now=now, aigis_namespace=aigis_namespace)
    found = discover(objects, default_namespace=DEFAULT_NAMESPACE)
    pods = _running_pods(objects)
    # Top-level objects by namespace: their templates say which images a workload runs (a Pod
    # of a ReplicaSet repeats its owner's template).
    by_namespace: dict[str | None, list[Mapping[str, Any]]] = {}
    for obj in objects:
        if not is_controlled(obj):
            by_namespace.setdefault(object_namespace(obj, DEFAULT_NAMESPACE), []).append(obj)
    snapshots = [o for o in objects if is_kind(o, "ForensicSnapshot")]

    rows = _workload_rows(audits, found, by_key)
    declarations = tuple(_declaration(w, audits) for w in workloads)
    violations = _violations(audits, workloads)
    coverage = {w.key: _pod_coverage(w, pods.get(w.namespace, [])) for w in workloads}
    guardrails = tuple(_guardrail_row(w, coverage[w.key]) for w in workloads if w.spec)
    snapshot_rows = tuple(_snapshot_row(s) for s in snapshots)
    forensics = tuple(_forensics_row(w, snapshot_rows) for w in workloads if w.spec)
    facts = _facts(
        objects=objects,
        by_namespace=by_namespace,
        workloads=workloads,
        rows=rows,
        audits=audits,
        coverage=coverage,
        snapshots=snapshot_rows,
    )
    results = tuple(_control_result(c, facts) for c in table.controls)
    return Report(
        generated_at=now.isoformat(timespec="seconds"),
        scope=scope,
        declarations=declarations,
        workloads=rows,
        violations=violations,
        guardrails=guardrails,
        forensics=forensics,
        snapshots=snapshot_rows,
        controls=results,
        board=_board(rows, workloads, violations, facts, unreadable),
        unreadable=tuple(unreadable),
        facts=facts,
    )


def _workload(obj: Mapping[str, Any]) -> _Workload:
    spec = obj.get("spec")
    model, errors = parse_aiworkload_spec(spec if isinstance(spec, Mapping) else {})
    return _Workload(
        obj=obj,
        namespace=object_namespace(obj, DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE,
        name=object_name(obj) or "<unnamed>",
        spec=model if model is not None and not errors else None,
    )


def _running(pod: Mapping[str, Any]) -> bool:
    metadata = fields(pod.get("metadata"))
    return not metadata.get("deletionTimestamp") and (
        fields(pod.get("status")).get("phase") not in _FINISHED
    )


def _condition(obj: Mapping[str, Any], kind: str) -> str:
    for condition in fields(obj.get("status")).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return str(condition.get("status") or "Unknown")
    return "-"


def _owner_of(workload: _Workload) -> str:
    if workload.spec is not None:
        return workload.spec.owner
    owner = fields(workload.obj.get("spec")).get("owner")
    return owner if isinstance(owner, str) and owner else DRAFT_OWNER


def _workload_rows(
    audits: Sequence[WorkloadAudit],
    found: Sequence[DiscoveredWorkload],
    workloads: Mapping[tuple[str, str], _Workload],
) -> tuple[WorkloadRow, ...]:
    discovered = {(f.kind, f.namespace, f.name): f for f in found}
    rows: list[WorkloadRow] = []
    seen: set[tuple[str, str, str]] = set()
    for audit in audits:
        key = (audit.kind, audit.namespace, audit.name)
        ai = discovered.get(key)
        if audit.kind == "AIWorkload" or (ai is None and not audit.covered_by):
            continue
        seen.add(key)
        declared_by = audit.covered_by or (ai.declared_by if ai else ())
        rows.append(
            _row(audit.kind, audit.namespace, audit.name, declared_by, workloads, audit, ai)
        )
    for ai in found:
        if (ai.kind, ai.namespace, ai.name) not in seen:
            rows.append(_row(ai.kind, ai.namespace, ai.name, ai.declared_by, workloads, None, ai))
    return tuple(rows)


def _row(
    kind: str,
    namespace: str,
    name: str,
    declared_by: tuple[str, ...],
    workloads: Mapping[tuple[str, str], _Workload],
    audit: WorkloadAudit | None,
    ai: DiscoveredWorkload | None,
) -> WorkloadRow:
    covering = [workloads[(namespace, n)] for n in declared_by if (namespace, n) in workloads]
    findings = len(audit.denied) + len(audit.warned) if audit is not None else 0
    state: State
    if not declared_by:
        state = "shadow"
    elif findings or any(_condition(w.obj, "Compliant") == "False" for w in covering):
        state = "non-compliant"
    else:
        state = "compliant"
    return WorkloadRow(
        kind=kind,
        namespace=namespace,
        name=name,
        state=state,
        declared_by=declared_by,
        owners=tuple(dict.fromkeys(_owner_of(w) for w in covering)),
        verdict=audit.verdict if audit is not None else "-",
        findings=findings,
        pods=audit.pods if audit is not None else 0,
        evidence=tuple(dict.fromkeys(e.detail for e in ai.evidence)) if ai else (),
    )


def _declaration(workload: _Workload, audits: Sequence[WorkloadAudit]) -> Declaration:
    own = next(
        (a for a in audits if a.kind == "AIWorkload" and (a.namespace, a.name) == workload.key),
        None,
    )
    spec = fields(workload.obj.get("spec"))
    purpose = workload.spec.purpose if workload.spec else str(spec.get("purpose") or "")
    enforcement = (
        workload.spec.enforcement if workload.spec else str(spec.get("enforcement") or "-")
    )
    violations = fields(workload.obj.get("status")).get("violations")
    return Declaration(
        namespace=workload.namespace,
        name=workload.name,
        owner=_owner_of(workload),
        purpose=purpose,
        enforcement=enforcement,
        valid=workload.spec is not None,
        verdict=own.verdict if own is not None else "-",
        ready=_condition(workload.obj, "Ready"),
        compliant=_condition(workload.obj, "Compliant"),
        network_policy=_condition(workload.obj, "NetworkPolicyApplied"),
        status_violations=len(violations) if isinstance(violations, list) else 0,
        covers=tuple(
            f"{a.kind}/{a.name}"
            for a in audits
            if a.kind != "AIWorkload"
            and a.namespace == workload.namespace
            and workload.name in a.covered_by
        ),
    )


def _violations(
    audits: Sequence[WorkloadAudit], workloads: Sequence[_Workload]
) -> tuple[Violation, ...]:
    found: list[Violation] = []
    seen: set[tuple[str, str, str, str]] = set()

    def add(violation: Violation) -> None:
        key = (violation.namespace, violation.object, violation.rule, violation.path)
        if key not in seen:
            seen.add(key)
            found.append(violation)

    for audit in audits:
        where = f"{audit.kind}/{audit.name}"
        denied = {id(r) for r in audit.decision.denied}
        for reason in audit.decision.reasons:
            effect: Literal["deny", "warn"] = "deny" if id(reason) in denied else "warn"
            add(_violation("admission", effect, audit.namespace, where, reason))
        for finding in audit.findings:
            effect = "deny" if finding.deny else "warn"
            add(_violation("audit", effect, audit.namespace, where, finding.reason))
    for workload in workloads:
        listed = fields(workload.obj.get("status")).get("violations")
        for item in listed if isinstance(listed, list) else ():
            if not isinstance(item, Mapping):
                continue
            add(
                Violation(
                    source="status",
                    effect="status",
                    rule=str(item.get("rule") or "-"),
                    namespace=workload.namespace,
                    object=f"AIWorkload/{workload.name}",
                    path=str(item.get("path") or "-"),
                    message=str(item.get("message") or ""),
                    fix=_rule_fix(str(item.get("rule") or "")),
                )
            )
    order = {"deny": 0, "warn": 1, "status": 2}
    return tuple(sorted(found, key=lambda v: (order[v.effect], v.namespace, v.object)))


def _violation(
    source: Literal["admission", "audit"],
    effect: Literal["deny", "warn"],
    namespace: str,
    where: str,
    reason: Reason,
) -> Violation:
    return Violation(
        source=source,
        effect=effect,
        rule=reason.rule,
        namespace=namespace,
        object=where,
        path=reason.path,
        message=reason.message,
        fix=reason.fix,
    )


def _rule_fix(rule_id: str) -> str:
    """The registered rule's usual fix; for status-only ids, what the message says."""
    from aigis.admission.rules import rule

    try:
        return rule(rule_id).fix
    except KeyError:
        return "see the message; then the operator updates the status"


@dataclass(frozen=True, slots=True)
class _Coverage:
    pods: tuple[str, ...]
    injected: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Pod:
    name: str
    labels: Mapping[str, str]
    gateway: bool


def _running_pods(objects: Sequence[Mapping[str, Any]]) -> dict[str, list[_Pod]]:
    """The running pods by namespace, each read once: its name, labels and whether it runs the
    gateway."""
    found: dict[str, list[_Pod]] = {}
    for obj in objects:
        if obj.get("kind") != "Pod" or not _running(obj):
            continue
        template = pod_template(obj)
        if template is None:
            continue
        names = [
            fields(c).get("name")
            for key in ("initContainers", "containers")
            for c in (template.spec.get(key) or ())
        ]
        namespace = object_namespace(obj, DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE
        found.setdefault(namespace, []).append(
            _Pod(object_name(obj) or "<unnamed>", template.labels, GATEWAY_CONTAINER in names)
        )
    return found


def _pod_coverage(workload: _Workload, pods: Sequence[_Pod]) -> _Coverage:
    """The pods (of the workload's namespace) its selector covers, and those with the gateway."""
    covered = [p for p in pods if covering_workloads(p.labels, [workload.obj])]
    return _Coverage(tuple(p.name for p in covered), tuple(p.name for p in covered if p.gateway))


def _guardrail_row(workload: _Workload, coverage: _Coverage) -> GuardrailRow:
    assert workload.spec is not None
    spec = workload.spec
    guards = spec.guardrails
    limits = guards.limits
    limit_parts = []
    if limits is not None:
        if limits.max_request_bytes:
            limit_parts.append(f"{limits.max_request_bytes} bytes")
        if limits.max_tokens:
            limit_parts.append(f"{limits.max_tokens} tokens")
        if limits.requests_per_minute:
            limit_parts.append(f"{limits.requests_per_minute}/min")
    injection = guards.prompt_injection
    return GuardrailRow(
        namespace=workload.namespace,
        name=workload.name,
        inject=spec.gateway.inject,
        enforcement=spec.enforcement,
        pods=len(coverage.pods),
        pods_injected=len(coverage.injected),
        prompt_injection=(
            f"{injection.action} at {injection.threshold:g}" if injection.enabled else "off"
        ),
        pii=(
            f"{guards.pii.action} ({len(guards.pii.entities)} kinds"
            f"{', +' + str(len(guards.pii.custom_patterns)) if guards.pii.custom_patterns else ''})"
            if guards.pii.enabled
            else "off"
        ),
        secrets=guards.secrets.action if guards.secrets.enabled else "off",
        deny_patterns=len(guards.deny_patterns),
        limits=", ".join(limit_parts) or "none",
        prompt_logging=guards.prompt_logging,
        failure_mode=guards.failure_mode,
    )


def _guards_on(spec: AIWorkloadSpec) -> bool:
    guards = spec.guardrails
    return (
        spec.gateway.inject
        and guards.prompt_injection.enabled
        and guards.pii.enabled
        and guards.secrets.enabled
    )


def _storage(spec: AIWorkloadSpec) -> tuple[str, str]:
    storage = spec.forensics.storage
    if storage is None:
        return "Secrets", "-"
    lock = storage.s3.object_lock if storage.s3 is not None else None
    return storage.type, lock.mode if lock is not None else "-"


def _forensics_row(workload: _Workload, snapshots: Sequence[SnapshotRow]) -> ForensicsRow:
    assert workload.spec is not None
    storage, lock = _storage(workload.spec)
    last = fields(workload.obj.get("status")).get("lastSnapshot")
    here = [s for s in snapshots if s.namespace == workload.namespace]
    return ForensicsRow(
        namespace=workload.namespace,
        name=workload.name,
        capture_on_termination=workload.spec.forensics.capture_on_termination,
        storage=storage,
        object_lock=lock,
        retention_days=workload.spec.forensics.retention_days,
        last_snapshot=last if isinstance(last, str) else "-",
        snapshots=len(here),
        complete=sum(1 for s in here if s.complete),
    )


def _snapshot_row(obj: Mapping[str, Any]) -> SnapshotRow:
    spec = fields(obj.get("spec"))
    status = fields(obj.get("status"))
    storage = fields(status.get("storage"))
    complete = status.get("complete")
    return SnapshotRow(
        namespace=object_namespace(obj, DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE,
        name=object_name(obj) or "<unnamed>",
        pod=str(fields(spec.get("pod")).get("name") or "-"),
        trigger=str(spec.get("trigger") or "-"),
        phase=str(status.get("phase") or "Pending"),
        complete=complete if isinstance(complete, bool) else None,
        storage=str(storage.get("backend") or "-"),
        object_lock=str(storage.get("objectLockMode") or "-"),
        audit_chain=str(status.get("auditChain") or "-"),
    )


# --- evidence -------------------------------------------------------------------------------------


def _fact(key: str, met: Iterable[str], gaps: Iterable[str] = (), *, ratio: bool = True) -> Fact:
    met_names = list(met)
    gap_names = list(gaps)
    of = len(met_names) + len(gap_names) if ratio else None
    level: Level
    if not met_names or of == 0:
        level = "none"
    elif gap_names:
        level = "some"
    else:
        level = "full"
    return Fact(
        key=key,
        label=FACTS[key],
        met=len(met_names),
        of=of,
        level=level,
        names=tuple(_capped(met_names)),
        gaps=tuple(_capped(gap_names)),
    )


def _capped(names: Sequence[str]) -> list[str]:
    if len(names) <= MAX_NAMES:
        return list(names)
    return [*names[:MAX_NAMES], f"and {len(names) - MAX_NAMES} more"]


def _split(items: Iterable[tuple[str, bool]]) -> tuple[list[str], list[str]]:
    met: list[str] = []
    gaps: list[str] = []
    for name, ok in items:
        (met if ok else gaps).append(name)
    return met, gaps


def _facts(
    *,
    objects: Sequence[Mapping[str, Any]],
    by_namespace: Mapping[str | None, Sequence[Mapping[str, Any]]],
    workloads: Sequence[_Workload],
    rows: Sequence[WorkloadRow],
    audits: Sequence[WorkloadAudit],
    coverage: Mapping[tuple[str, str], _Coverage],
    snapshots: Sequence[SnapshotRow],
) -> dict[str, Fact]:
    def ref(w: _Workload) -> str:
        return f"{w.namespace}/{w.name}"

    valid = [w for w in workloads if w.spec is not None]
    specs = [(w, w.spec) for w in valid if w.spec is not None]
    capturing = [(w, s) for w, s in specs if s.forensics.capture_on_termination]
    injecting = [w for w, s in specs if s.gateway.inject]
    pods_met: list[str] = []
    pods_gap: list[str] = []
    for w in injecting:
        shown = coverage[w.key]
        pods_met += [f"{w.namespace}/{p}" for p in shown.injected]
        pods_gap += [f"{w.namespace}/{p}" for p in shown.pods if p not in shown.injected]
    images: dict[str, bool] = {}
    for w in valid:
        here = by_namespace.get(w.namespace, [])
        for image in workload_images(w.obj, here, DEFAULT_NAMESPACE):
            images[image] = "@sha256:" in image
    stored = [s for s in snapshots if s.phase in ("Stored", "Failed")]
    chained = [s for s in stored if s.audit_chain.startswith(("intact", "broken"))]
    policies = [
        object_name(o) or "?"
        for o in objects
        if is_kind(o, "AIClusterPolicy") and _condition(o, "Invalid") != "True"
    ]
    covered_rows = [r for r in rows if r.state != "shadow"]

    def row_ref(r: WorkloadRow) -> str:
        return f"{r.kind} {r.namespace}/{r.name}"

    facts = [
        _fact(
            "declarations.owned", *_split((ref(w), _owner_of(w) != DRAFT_OWNER) for w in workloads)
        ),
        _fact("declarations.valid", *_split((ref(w), w.spec is not None) for w in workloads)),
        _fact("discovery.declared", *_split((row_ref(r), r.state != "shadow") for r in rows)),
        _fact("admission.policies", policies, ratio=False),
        _fact(
            "admission.clean",
            *_split((row_ref(r), r.state == "compliant") for r in covered_rows),
        ),
        _fact(
            "egress.policies_applied",
            *_split((ref(w), _condition(w.obj, "NetworkPolicyApplied") == "True") for w in valid),
        ),
        _fact("gateway.pods_injected", pods_met, pods_gap),
        _fact("gateway.guardrails_on", *_split((ref(w), _guards_on(s)) for w, s in specs)),
        _fact(
            "forensics.capture_on",
            *_split((ref(w), s.forensics.capture_on_termination) for w, s in specs),
        ),
        _fact(
            "forensics.object_lock",
            *_split((ref(w), _storage(s)[1] != "-") for w, s in capturing),
        ),
        _fact(
            "forensics.snapshots_complete",
            *_split((f"{s.namespace}/{s.name}", s.complete is True) for s in stored),
        ),
        _fact(
            "forensics.chain_intact",
            *_split(
                (f"{s.namespace}/{s.name}", s.audit_chain.startswith("intact")) for s in chained
            ),
        ),
        _fact("bom.models_declared", *_split((ref(w), bool(s.models)) for w, s in specs)),
        _fact("bom.images_pinned", *_split(images.items())),
        _fact(
            "audit.clean",
            *_split((f"{a.kind} {a.namespace}/{a.name}", a.verdict == "allow") for a in audits),
        ),
        _fact(
            "audit.background",
            *_split((ref(w), "audit" in fields(w.obj.get("status"))) for w in workloads),
        ),
    ]
    return {f.key: f for f in facts}


def _control_result(control: Control, facts: Mapping[str, Fact]) -> ControlResult:
    evidence = tuple(facts[key] for key in control.evidence)
    levels = {f.level for f in evidence}
    status: Status
    if levels == {"full"}:
        status = "evidenced"
    elif levels == {"none"}:
        status = "missing"
    else:
        status = "partial"
    return ControlResult(
        id=control.id,
        title=control.title,
        what=control.what,
        nist=control.nist,
        iso=control.iso,
        evidence=evidence,
        status=status,
    )


_LEVEL_TONES: Final[Mapping[Level, Tone]] = {"full": "good", "some": "warn", "none": "bad"}


def _tone(fact: Fact) -> Tone:
    return "info" if fact.of == 0 else _LEVEL_TONES[fact.level]


def _figure(label: str, fact: Fact, detail: str = "") -> Figure:
    return Figure(label=label, value=fact.shown, tone=_tone(fact), detail=detail or fact.label)


def _board(
    rows: Sequence[WorkloadRow],
    workloads: Sequence[_Workload],
    violations: Sequence[Violation],
    facts: Mapping[str, Fact],
    unreadable: Sequence[str],
) -> tuple[BoardSection, ...]:
    total = len(rows)
    compliant = sum(1 for r in rows if r.state == "compliant")
    shadow = [f"{r.namespace}/{r.name}" for r in rows if r.state == "shadow"]
    refusing = sum(1 for v in violations if v.effect == "deny")
    owners = sorted({_owner_of(w) for w in workloads} - {DRAFT_OWNER})
    modes = [w.spec.enforcement for w in workloads if w.spec is not None]
    trust = (
        Figure(
            "AI workloads compliant",
            f"{compliant} of {total}",
            "info"
            if not total
            else "good"
            if compliant == total
            else "bad"
            if not compliant
            else "warn",
            "covered by an AIWorkload with nothing found; shadow AI counts against",
        ),
        _figure("Pods behind the gateway", facts["gateway.pods_injected"]),
        _figure("Guardrails fully on", facts["gateway.guardrails_on"]),
        Figure(
            "Open violations",
            str(len(violations)),
            "good" if not violations else "bad" if refusing else "warn",
            f"{refusing} would be refused today",
        ),
    )
    accountability = (
        _figure("AI workloads declared", facts["discovery.declared"]),
        Figure(
            "Shadow AI workloads",
            str(len(shadow)),
            "good" if not shadow else "bad",
            ", ".join(_capped(shadow)) or "none found",
        ),
        Figure(
            "Accountable owners",
            str(len(owners)),
            "info",
            ", ".join(_capped(owners)) or "none named",
        ),
        _figure("AIWorkloads with a named owner", facts["declarations.owned"]),
    )
    resilience = (
        _figure("Forensic capture on", facts["forensics.capture_on"]),
        _figure("Evidence under Object Lock", facts["forensics.object_lock"]),
        _figure("Snapshots complete", facts["forensics.snapshots_complete"]),
        Figure(
            "Enforcement mode",
            f"{modes.count('Enforce')} Enforce, {modes.count('Audit')} Audit",
            "info" if not modes else "good" if "Audit" not in modes else "warn",
            "AIWorkloads by mode: Audit only warns",
        ),
        Figure(
            "Not readable",
            str(len(unreadable)),
            "good" if not unreadable else "warn",
            "namespaces, kinds or files this report could not read",
        ),
    )
    return (
        BoardSection("Trust", "Is the AI we run governed?", trust),
        BoardSection("Accountability", "Do we know where AI runs and who owns it?", accountability),
        BoardSection("Resilience", "Can we enforce, investigate and prove?", resilience),
    )


# --- JSON -----------------------------------------------------------------------------------------


def report_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-able data with camelCase keys, in a stable shape
    (`REPORT_API_VERSION`: fields are only ever added)."""
    body = asdict(report)
    body.pop("facts")
    return {
        "apiVersion": REPORT_API_VERSION,
        "summary": {
            "workloads": len(report.workloads),
            "compliant": report.count("compliant"),
            "nonCompliant": report.count("non-compliant"),
            "shadow": report.count("shadow"),
            "declarations": len(report.declarations),
            "violations": len(report.violations),
            "unreadable": len(report.unreadable),
        },
        **_camel(body),
        "facts": {key: _camel(asdict(fact)) for key, fact in report.facts.items()},
    }


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel_key(k): _camel(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_camel(v) for v in value]
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.capitalize() for word in rest)


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


# --- the tables both renderers print --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    anchor: str
    section: str | None
    """The h2 heading this table opens, if any."""
    heading: str | None
    """Its own h3 heading, if any."""
    headers: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    tagged: tuple[int, ...] = ()
    """Columns whose value is a state (coloured in HTML)."""


def _names(items: Sequence[str]) -> str:
    return ", ".join(items) or "-"


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "no"


def _fact_line(fact: Fact, shown: int = 5) -> str:
    line = f"{fact.label}: {fact.shown}"
    if fact.names:
        more = ", ..." if len(fact.names) > shown else ""
        line += f" ({', '.join(fact.names[:shown])}{more})"
    if fact.gaps:
        more = ", ..." if len(fact.gaps) > shown else ""
        line += f"; short: {', '.join(fact.gaps[:shown])}{more}"
    return line


Column = tuple[str, Callable[[Any], object]]

_WORKLOAD_COLUMNS: Final[tuple[Column, ...]] = (
    ("State", lambda w: w.state),
    ("Kind", lambda w: w.kind),
    ("Namespace", lambda w: w.namespace),
    ("Name", lambda w: w.name),
    ("Declared by", lambda w: _names(w.declared_by)),
    ("Owner", lambda w: _names(w.owners)),
    ("Verdict", lambda w: w.verdict),
    ("Pods", lambda w: w.pods),
    ("Evidence", lambda w: "; ".join(w.evidence[:3]) or "-"),
)
_DECLARATION_COLUMNS: Final[tuple[Column, ...]] = (
    ("Namespace", lambda d: d.namespace),
    ("Name", lambda d: d.name),
    ("Owner", lambda d: d.owner),
    ("Enforcement", lambda d: d.enforcement),
    ("Valid", lambda d: _yes_no(d.valid)),
    ("Audit", lambda d: d.verdict),
    ("Ready", lambda d: d.ready),
    ("Compliant", lambda d: d.compliant),
    ("NetworkPolicy", lambda d: d.network_policy),
    ("Status violations", lambda d: d.status_violations),
    ("Covers", lambda d: _names(d.covers)),
)
_VIOLATION_COLUMNS: Final[tuple[Column, ...]] = (
    ("Effect", lambda v: v.effect),
    ("Rule", lambda v: v.rule),
    ("Namespace", lambda v: v.namespace),
    ("Object", lambda v: v.object),
    ("Field", lambda v: v.path),
    ("Problem", lambda v: v.message),
    ("Fix", lambda v: v.fix),
)
_GUARDRAIL_COLUMNS: Final[tuple[Column, ...]] = (
    ("Namespace", lambda g: g.namespace),
    ("AIWorkload", lambda g: g.name),
    ("Gateway", lambda g: "injected" if g.inject else "off"),
    ("Pods with gateway", lambda g: f"{g.pods_injected} of {g.pods}"),
    ("Mode", lambda g: g.enforcement),
    ("Prompt injection", lambda g: g.prompt_injection),
    ("PII", lambda g: g.pii),
    ("Secrets", lambda g: g.secrets),
    ("Deny patterns", lambda g: g.deny_patterns),
    ("Limits", lambda g: g.limits),
    ("Prompt logging", lambda g: g.prompt_logging),
    ("On failure", lambda g: g.failure_mode),
)
_FORENSICS_COLUMNS: Final[tuple[Column, ...]] = (
    ("Namespace", lambda f: f.namespace),
    ("AIWorkload", lambda f: f.name),
    ("Capture on termination", lambda f: _yes_no(f.capture_on_termination)),
    ("Storage", lambda f: f.storage),
    ("Object Lock", lambda f: f.object_lock),
    ("Retention (days)", lambda f: f.retention_days),
    ("Last snapshot", lambda f: f.last_snapshot),
    ("Snapshots complete", lambda f: f"{f.complete} of {f.snapshots}"),
)
_SNAPSHOT_COLUMNS: Final[tuple[Column, ...]] = (
    ("Namespace", lambda s: s.namespace),
    ("Name", lambda s: s.name),
    ("Pod", lambda s: s.pod),
    ("Trigger", lambda s: s.trigger),
    ("Phase", lambda s: s.phase),
    ("Complete", lambda s: _yes_no(s.complete)),
    ("Storage", lambda s: s.storage),
    ("Object Lock", lambda s: s.object_lock),
    ("Audit chain", lambda s: s.audit_chain),
)
_CONTROL_COLUMNS: Final[tuple[Column, ...]] = (
    ("Control", lambda c: c.title),
    ("Status", lambda c: c.status),
    ("What it does", lambda c: c.what),
    ("NIST AI RMF", lambda c: ", ".join(c.nist)),
    ("ISO/IEC 42001", lambda c: ", ".join(c.iso)),
    ("Evidence in this cluster", lambda c: "; ".join(_fact_line(f) for f in c.evidence)),
)


def _table(
    anchor: str,
    section: str | None,
    heading: str | None,
    columns: Sequence[Column],
    items: Iterable[Any],
    tagged: tuple[int, ...] = (),
) -> _Table:
    return _Table(
        anchor,
        section,
        heading,
        tuple(header for header, _ in columns),
        tuple(tuple(value(item) for _, value in columns) for item in items),
        tagged,
    )


def _tables(report: Report) -> tuple[_Table, ...]:
    """Every table of the report, in order, as both renderers print them."""
    return (
        _table(
            "inventory", "Inventory", "AI workloads", _WORKLOAD_COLUMNS, report.workloads, (0, 6)
        ),
        _table(
            "declarations",
            None,
            "AIWorkloads: compliance per declaration",
            _DECLARATION_COLUMNS,
            report.declarations,
            (5,),
        ),
        _table("violations", "Open violations", None, _VIOLATION_COLUMNS, report.violations, (0,)),
        _table("guardrails", "Guardrail coverage", None, _GUARDRAIL_COLUMNS, report.guardrails),
        _table("forensics", "Forensic readiness", None, _FORENSICS_COLUMNS, report.forensics),
        _table("snapshots", None, "ForensicSnapshots", _SNAPSHOT_COLUMNS, report.snapshots),
        _table(
            "controls",
            "Controls: NIST AI RMF and ISO/IEC 42001 Annex A",
            None,
            _CONTROL_COLUMNS,
            report.controls,
            (1,),
        ),
    )


def _headline(report: Report) -> str:
    return (
        f"Generated {report.generated_at} for {report.scope}. {len(report.workloads)} AI "
        f"workloads: {report.count('compliant')} compliant, {report.count('non-compliant')} "
        f"non-compliant, {report.count('shadow')} shadow."
    )


# --- Markdown -------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#<>])")


def md(value: object) -> str:
    """`value` as Markdown text on one line: markup characters escaped, so a name from the
    cluster can neither format the document nor smuggle HTML into it."""
    text = " ".join(str(value).split()).replace("&", "&amp;")
    return _MD_SPECIAL.sub(lambda m: {"<": "&lt;", ">": "&gt;"}.get(m[1], "\\" + m[1]), text)


def render_markdown(report: Report) -> str:
    """The report as one Markdown document (GitHub-flavoured tables)."""
    out = ["# aigis compliance report", "", md(_headline(report)), ""]
    if report.unreadable:
        out += ["**Not covered** (could not be read):", ""]
        out += [f"- {md(u)}" for u in report.unreadable] + [""]
    out += ["## Board view", ""]
    for section in report.board:
        out += [f"### {md(section.title)}: {md(section.question)}", ""]
        out += [f"- **{md(f.label)}: {md(f.value)}** ({md(f.detail)})" for f in section.figures]
        out.append("")
    for table in _tables(report):
        if table.section:
            out += [f"## {md(table.section)}", ""]
        if table.heading:
            out += [f"### {md(table.heading)}", ""]
        out.append("| " + " | ".join(md(h) for h in table.headers) + " |")
        out.append("|" + "|".join("---" for _ in table.headers) + "|")
        out += ["| " + " | ".join(md(c) for c in row) + " |" for row in table.rows]
        if not table.rows:
            out.append("| none" + " |" * len(table.headers))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# --- HTML -----------------------------------------------------------------------------------------

_CSS: Final = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6474; --line: #d9dde5;
  --good: #1f7a4d; --warn: #a05a00; --bad: #b3261e; --info: #3d5a99; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); margin: 0; padding: 24px 32px; background: #f6f7f9; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.meta { color: var(--muted); margin: 0 0 16px; }
section.board { display: grid; grid-template-columns: repeat(3, 1fr); gap: 16px;
  break-after: page; }
.pillar { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px; }
.pillar h3 { margin: 0; }
.pillar p.q { color: var(--muted); margin: 2px 0 10px; }
.figure { display: flex; justify-content: space-between; align-items: baseline; gap: 8px;
  border-top: 1px solid var(--line); padding: 6px 0; }
.figure .value { font-size: 20px; font-weight: 600; white-space: nowrap; }
.figure .detail { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.good { color: var(--good); }
.warn { color: var(--warn); }
.bad { color: var(--bad); }
.info { color: var(--info); }
table { border-collapse: collapse; width: 100%; background: #fff; margin: 4px 0 12px;
  font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
th { background: #eef0f4; }
span.tag { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px;
  border: 1px solid currentColor; white-space: nowrap; }
ul.unreadable { background: #fff4e5; border: 1px solid #f0c48a; padding: 8px 28px; }
@media print { body { background: #fff; } }
"""

_TONES: Final[Mapping[str, Tone]] = {
    "compliant": "good",
    "non-compliant": "bad",
    "shadow": "bad",
    "evidenced": "good",
    "partial": "warn",
    "missing": "bad",
    "allow": "good",
    "warn": "warn",
    "deny": "bad",
    "status": "warn",
}


def esc(value: object) -> str:
    """`value` as HTML text, every markup character escaped (quotes included)."""
    return html.escape(str(value), quote=True)


def _cell(value: object, tagged: bool) -> str:
    if not tagged:
        return esc(value)
    return f'<span class="tag {_TONES.get(str(value), "info")}">{esc(value)}</span>'


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page: inline CSS, no script, no external resource.

    A Content-Security-Policy that allows inline style only makes the browser refuse any script
    or fetch the page might hold, as a second line behind the escaping.
    """
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        "<title>aigis compliance report</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        "<h1>aigis compliance report</h1>",
        f'<p class="meta">{esc(_headline(report))}</p>',
    ]
    if report.unreadable:
        out.append("<p><strong>Not covered</strong> (could not be read):</p>")
        out.append('<ul class="unreadable">')
        out += [f"<li>{esc(u)}</li>" for u in report.unreadable]
        out.append("</ul>")
    out.append('<h2 id="board">Board view</h2>')
    out.append('<section class="board">')
    for section in report.board:
        out.append('<div class="pillar">')
        out.append(f'<h3>{esc(section.title)}</h3><p class="q">{esc(section.question)}</p>')
        for figure in section.figures:
            out.append(
                f'<div class="figure"><div>{esc(figure.label)}'
                f'<div class="detail">{esc(figure.detail)}</div></div>'
                f'<div class="value {figure.tone}">{esc(figure.value)}</div></div>'
            )
        out.append("</div>")
    out.append("</section>")
    for table in _tables(report):
        if table.section:
            out.append(f'<h2 id="{table.anchor}">{esc(table.section)}</h2>')
        if table.heading:
            out.append(f"<h3>{esc(table.heading)}</h3>")
        out.append("<table><thead><tr>")
        out.append("".join(f"<th>{esc(h)}</th>" for h in table.headers))
        out.append("</tr></thead><tbody>")
        for row in table.rows:
            cells = (_cell(c, i in table.tagged) for i, c in enumerate(row))
            out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        if not table.rows:
            out.append(f'<tr><td colspan="{len(table.headers)}">none</td></tr>')
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
