"""The background audit: every workload that runs now, judged by the admission engine, now and
whenever a declaration or a policy changes.

Admission judges an object once, when it is applied. Workloads that predate aigis, a policy, or
an AIWorkload were never judged under today's rules; `BackgroundAudit` finds them. A pass reads
the cluster (`aigis.oversight.inventory.read_inventory`), judges it
(`aigis.oversight.audit.audit_objects`, the webhook's own engine) and writes:

- one wg-policy `PolicyReport` per audited namespace (`aigis.oversight.policyreport`), by
  server-side apply, only when it changed; a report of a namespace no longer audited is deleted.
  When the PolicyReport CRD is not installed, that is logged once and the rest goes on.
- `status.audit` of each AIWorkload (`aigis.api.aiworkload.AuditSummary`): counts and the first
  findings about the objects it covers, only when they changed (merge patch of that key alone).
- a `Warning` Event on an object when it has a finding it did not have in the previous pass
  (seeded from the stored PolicyReport after a restart), at most `max_events` a pass.
- metrics (`AUDIT_*` below; labels rule and result only).

When: a full pass at start and every `interval_seconds` (0: never again), and a pass over the
affected namespaces `debounce_seconds` after a change: an AIWorkload's spec (its namespace), an
AIClusterPolicy's spec (every namespace), a Namespace's labels (that namespace). Changes that
arrive during a pass are taken by the next one. Workloads themselves are not watched: admission
judges new ones, and the periodic pass catches the rest.

`render_finding_event` is pure; `BackgroundAudit` is the shell, and the kopf handlers in
`aigis.controller.handlers` only call `request`/`workload_seen`/`policy_seen`/`namespace_seen`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from aigis.admission.manifests import is_kind, object_name
from aigis.admission.reasons import Reason
from aigis.controller.status import rfc3339
from aigis.events import Involved, Reporter, render_event
from aigis.kube import KubeClient, KubeError
from aigis.metrics import (
    AUDIT_FINDINGS,
    AUDIT_LAST_PASS,
    AUDIT_OBJECTS,
    AUDIT_PASS_SECONDS,
    AUDIT_UNREADABLE,
)
from aigis.oversight.audit import WorkloadAudit, audit_objects, audited_namespaces, workload_summary
from aigis.oversight.inventory import Inventory, read_inventory
from aigis.oversight.policyreport import (
    API_VERSION,
    CRD_NAME,
    PLURAL,
    REPORT_NAME,
    FindingKey,
    finding_key,
    findings,
    render_policy_report,
    reported_keys,
    same_report,
)

log = logging.getLogger(__name__)

EVENT_REASON: Final = "AIPolicyAuditFinding"
REPORTING_COMPONENT: Final = "aigis.dev/operator"


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """How often and how much the background audit does."""

    interval_seconds: float = 300.0
    """Between full passes; 0 runs one at start and then only on changes."""
    debounce_seconds: float = 2.0
    """How long a change waits for more changes before its pass starts."""
    max_report_results: int = 100
    """Results listed in a namespace's PolicyReport (the summary counts all)."""
    max_status_findings: int = 10
    """Findings listed in an AIWorkload's `status.audit`."""
    max_events: int = 50
    """Events written in one pass; the rest of the new findings are in the PolicyReport."""


def render_finding_event(
    audit: WorkloadAudit, new: Sequence[tuple[str, Reason]], now: datetime, instance: str
) -> dict[str, Any]:
    """A core/v1 `Warning` Event on `audit`'s object naming its new findings."""
    parts = [
        f"{'would be refused' if result == 'fail' else 'warned'}: [{r.rule}] {r.path}: {r.message}"
        for result, r in new
    ]
    return render_event(
        Involved(audit.api_version, audit.kind, audit.name, audit.namespace, audit.uid),
        reason=EVENT_REASON,
        message="background audit: " + "; ".join(parts),
        reporter=Reporter("aigis-operator", REPORTING_COMPONENT, instance),
        now=now,
    )


def summary_changed(stored: Mapping[str, Any] | None, summary: Mapping[str, Any]) -> bool:
    """Whether an AIWorkload's stored `status.audit` says something else than `summary`."""
    if not isinstance(stored, Mapping):
        return True
    return {k: v for k, v in stored.items() if k != "lastChangeTime"} != dict(summary)


@dataclass
class _Namespace:
    """What the audit remembers about one namespace between passes."""

    known: set[FindingKey] | None = None
    """The findings of the previous pass (None: not audited since start)."""
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    """(rule, result) -> findings, for the metrics."""
    objects: int = 0


class BackgroundAudit:
    """Runs audit passes and writes their results (see the module docstring)."""

    def __init__(
        self,
        kube: KubeClient,
        settings: AuditSettings,
        *,
        namespaces: Sequence[str] = (),
        aigis_namespace: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        instance: str | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.only = tuple(namespaces)
        """The namespaces this operator watches; empty: the whole cluster."""
        self.aigis_namespace = aigis_namespace
        self.clock = clock
        self.instance = instance or socket.gethostname()
        self._wake = asyncio.Event()
        self._pending: set[str] = set()
        self._pending_all = True
        self._namespaces: dict[str, _Namespace] = {}
        self._generations: dict[tuple[str, str], Any] = {}
        self._labels: dict[str, dict[str, str]] = {}
        self._reports_missing_logged = False
        self._unreadable: list[str] = []
        self.passes = 0
        """Passes finished (for tests and the benchmark)."""

    # --- what the kopf handlers call -----------------------------------------------------------

    def request(self, namespaces: Iterable[str] | None = None) -> None:
        """Audit these namespaces soon (None: all of them)."""
        if namespaces is None:
            self._pending_all = True
        else:
            self._pending.update(n for n in namespaces if self._watches(n))
        if self._pending_all or self._pending:
            self._wake.set()

    def workload_seen(self, namespace: str, name: str, generation: Any, deleted: bool) -> None:
        """An AIWorkload event: re-audit its namespace when its spec changed (a new generation)
        or it is gone; its own status writes (this audit's included) change nothing."""
        key = (namespace, name)
        if deleted:
            self._generations.pop(key, None)
        elif self._generations.get(key) == generation:
            return
        else:
            self._generations[key] = generation
        self.request([namespace])

    def policy_seen(self, name: str, generation: Any, deleted: bool) -> None:
        """An AIClusterPolicy event: a new spec (or none) can change every namespace."""
        key = ("", name)
        if deleted:
            self._generations.pop(key, None)
        elif self._generations.get(key) == generation:
            return
        else:
            self._generations[key] = generation
        self.request(None)

    def namespace_seen(self, name: str, labels: Mapping[str, str], deleted: bool) -> None:
        """A Namespace event: its labels decide which policies govern it."""
        if deleted:
            self._labels.pop(name, None)
            self._namespaces.pop(name, None)
            self._publish()
            return
        if self._labels.get(name) == dict(labels):
            return
        known = name in self._labels
        self._labels[name] = dict(labels)
        if known:
            self.request([name])

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Pass after pass until cancelled; a failed pass is logged and the next one comes."""
        interval = self.settings.interval_seconds
        while True:
            if not (self._pending_all or self._pending):
                try:
                    await asyncio.wait_for(self._wake.wait(), interval or None)
                except TimeoutError:
                    self._pending_all = True
            await asyncio.sleep(self.settings.debounce_seconds)
            self._wake.clear()
            scope = None if self._pending_all else sorted(self._pending)
            self._pending_all = False
            self._pending = set()
            try:
                await self.run_pass(scope)
            except asyncio.CancelledError:
                raise
            except Exception:  # the next change or interval tries again
                log.exception("audit pass failed")

    async def run_pass(self, namespaces: Sequence[str] | None = None) -> list[WorkloadAudit]:
        """One pass over `namespaces` (None: every namespace this operator watches)."""
        started = time.perf_counter()
        scope = list(namespaces) if namespaces is not None else (list(self.only) or None)
        inventory = await read_inventory(self.kube, namespaces=scope)
        self._note_unreadable(inventory, partial=namespaces is not None)
        now = self.clock()
        audits = audit_objects(inventory.objects, now=now, aigis_namespace=self.aigis_namespace)
        audited = audited_namespaces(
            inventory.objects, now=now, aigis_namespace=self.aigis_namespace
        )
        in_scope = set(scope) if scope is not None else _namespaces_of(inventory.objects)
        by_namespace: dict[str, list[WorkloadAudit]] = {n: [] for n in audited}
        for audit in audits:
            by_namespace.setdefault(audit.namespace, []).append(audit)
        reports = await self._stored_reports(sorted(in_scope))
        events_left = self.settings.max_events
        for namespace in sorted(in_scope):
            if not self._watches(namespace):
                continue
            if namespace not in audited:
                self._namespaces.pop(namespace, None)
                if reports is not None and namespace in reports:
                    await self._delete_report(namespace)
                continue
            found = by_namespace.get(namespace, [])
            stored = reports.get(namespace) if reports is not None else None
            events_left -= await self._announce(namespace, found, stored, now, events_left)
            if reports is not None:
                await self._write_report(namespace, found, stored, now)
        await self._write_statuses(inventory.objects, audits, in_scope, now)
        self._publish()
        AUDIT_PASS_SECONDS.observe(time.perf_counter() - started)
        AUDIT_LAST_PASS.set(time.time())
        self.passes += 1
        return audits

    # --- writing ----------------------------------------------------------------------------

    async def _stored_reports(self, namespaces: Sequence[str]) -> dict[str, dict[str, Any]] | None:
        """aigis's stored PolicyReports by namespace; None when the CRD is not installed."""
        if not await self.kube.crd_installed(CRD_NAME):
            if not self._reports_missing_logged:
                log.warning(
                    "the PolicyReport CRD (%s) is not installed: the audit writes AIWorkload "
                    "status, Events and metrics only (apply charts/aigis/files/policyreports."
                    "wgpolicyk8s.io.yaml, or set the chart's policyReports.installCRD)",
                    CRD_NAME,
                )
                self._reports_missing_logged = True
            return None
        self._reports_missing_logged = False
        found: dict[str, dict[str, Any]] = {}
        if not self.only:
            query = {"fieldSelector": f"metadata.name={REPORT_NAME}"}
            listing = await self.kube.request("GET", f"/apis/{API_VERSION}/{PLURAL}", query=query)
            for item in (listing or {}).get("items") or ():
                found[str(item["metadata"]["namespace"])] = item
            return found
        for namespace in namespaces:
            item = await self.kube.request("GET", _report_path(namespace))
            if item is not None:
                found[namespace] = item
        return found

    async def _write_report(
        self,
        namespace: str,
        audits: Sequence[WorkloadAudit],
        stored: Mapping[str, Any] | None,
        now: datetime,
    ) -> None:
        report = render_policy_report(
            namespace,
            audits,
            now=now,
            previous=stored,
            max_results=self.settings.max_report_results,
        )
        if same_report(stored, report):
            return
        try:
            await self.kube.apply(_report_path(namespace), report)
        except KubeError as exc:
            log.warning("could not write the PolicyReport of namespace %s: %s", namespace, exc)

    async def _delete_report(self, namespace: str) -> None:
        try:
            await self.kube.request("DELETE", _report_path(namespace))
        except KubeError as exc:
            log.warning("could not delete the PolicyReport of namespace %s: %s", namespace, exc)

    async def _announce(
        self,
        namespace: str,
        audits: Sequence[WorkloadAudit],
        stored: Mapping[str, Any] | None,
        now: datetime,
        budget: int,
    ) -> int:
        """Events for findings the previous pass did not have; returns how many were written."""
        state = self._namespaces.setdefault(namespace, _Namespace())
        known = state.known if state.known is not None else reported_keys(stored)
        current: set[FindingKey] = set()
        counts: dict[tuple[str, str], int] = {}
        written = 0
        for audit in audits:
            found = findings(audit)
            keys = [finding_key(audit, reason) for _, reason in found]
            current.update(keys)
            for result, reason in found:
                counts[(reason.rule, result)] = counts.get((reason.rule, result), 0) + 1
            new = [f for f, key in zip(found, keys, strict=True) if key not in known]
            if not new:
                continue
            if written >= budget:
                continue
            try:
                await self.kube.request(
                    "POST",
                    f"/api/v1/namespaces/{quote(namespace)}/events",
                    body=render_finding_event(audit, new, now, self.instance),
                )
                written += 1
            except KubeError as exc:
                log.warning("could not record an audit Event in %s: %s", namespace, exc)
        state.known = current
        state.counts = counts
        state.objects = len(audits)
        return written

    async def _write_statuses(
        self,
        objects: Sequence[Mapping[str, Any]],
        audits: Sequence[WorkloadAudit],
        in_scope: set[str],
        now: datetime,
    ) -> None:
        by_namespace: dict[str, list[WorkloadAudit]] = {}
        for audit in audits:
            by_namespace.setdefault(audit.namespace, []).append(audit)
        for obj in objects:
            if not is_kind(obj, "AIWorkload"):
                continue
            metadata = obj.get("metadata") or {}
            namespace, name = metadata.get("namespace"), object_name(obj)
            if namespace not in in_scope or name is None or not self._watches(namespace):
                continue
            summary = workload_summary(
                name,
                by_namespace.get(namespace, []),
                max_items=self.settings.max_status_findings,
            )
            if not summary_changed((obj.get("status") or {}).get("audit"), summary):
                continue
            try:
                await self.kube.patch_aiworkload_status(
                    namespace, name, {"audit": {**summary, "lastChangeTime": rfc3339(now)}}
                )
            except KubeError as exc:
                if exc.status != 404:  # deleted meanwhile
                    log.warning(
                        "could not write the audit status of %s/%s: %s", namespace, name, exc
                    )

    # --- bookkeeping --------------------------------------------------------------------------

    def _watches(self, namespace: str) -> bool:
        return not self.only or namespace in self.only

    def _note_unreadable(self, inventory: Inventory, *, partial: bool) -> None:
        """Log what could not be read when it is new; the gauge follows full passes."""
        for line in inventory.unreadable:
            if line not in self._unreadable:
                log.warning("the audit cannot read %s", line)
        if partial:
            self._unreadable = sorted(set(self._unreadable) | set(inventory.unreadable))
        else:
            self._unreadable = list(inventory.unreadable)
            AUDIT_UNREADABLE.set(len(self._unreadable))

    def _publish(self) -> None:
        totals: dict[tuple[str, str], int] = {}
        for state in self._namespaces.values():
            for key, count in state.counts.items():
                totals[key] = totals.get(key, 0) + count
        for labels in _published_labels():
            if labels not in totals:
                AUDIT_FINDINGS.labels(*labels).set(0)
        for (rule, result), count in totals.items():
            AUDIT_FINDINGS.labels(rule, result).set(count)
        AUDIT_OBJECTS.set(sum(s.objects for s in self._namespaces.values()))


def _published_labels() -> list[tuple[str, str]]:
    """The (rule, result) series the findings gauge has, so vanished findings drop to 0."""
    return [
        (str(sample.labels["rule"]), str(sample.labels["result"]))
        for metric in AUDIT_FINDINGS.collect()
        for sample in metric.samples
    ]


def _report_path(namespace: str) -> str:
    return f"/apis/{API_VERSION}/namespaces/{quote(namespace)}/{PLURAL}/{REPORT_NAME}"


def _namespaces_of(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every namespace the inventory knows of: its Namespace objects and its objects'."""
    found: set[str] = set()
    for obj in objects:
        metadata = obj.get("metadata") or {}
        if obj.get("kind") == "Namespace":
            if metadata.get("name"):
                found.add(str(metadata["name"]))
        elif metadata.get("namespace"):
            found.add(str(metadata["namespace"]))
    return found
