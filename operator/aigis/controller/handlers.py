"""kopf handlers: the shell around the pure reconcile decisions.

`register_handlers(settings)` registers everything with kopf's default registry. Each handler
reads the objects kopf hands it, calls pure functions (`aigis.api.validation`,
`aigis.egress.*`, `aigis.controller.status`) and writes the outcome: status through kopf's
`patch`, policies through `aigis.controller.enforcer` (over `aigis.kube.KubeClient`, whose session
lives from the `configure` startup handler to the `close` cleanup handler). A handler never raises
on bad user input: bad input becomes a status condition, and only API failures are left to kopf's
retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from aigis import metrics
from aigis.admission.mutation import FORENSICS_FINALIZER
from aigis.admission.mutation import WORKLOAD_LABEL as INJECTED_WORKLOAD_LABEL
from aigis.api.validation import parse_aiworkload_spec, parse_cluster_policy_spec
from aigis.controller.audit import AuditSettings, BackgroundAudit
from aigis.controller.enforcer import WorkloadEnforcer
from aigis.controller.forensics import (
    capture_and_release,
    capture_on_demand,
    expire_snapshots_forever,
    publish_holds_forever,
)
from aigis.controller.status import (
    COMPLIANT,
    INVALID,
    EgressOutcome,
    build_aiworkload_status,
    build_cluster_policy_status,
)
from aigis.egress.compliance import NamedPolicy, evaluate_compliance, governing_policies
from aigis.egress.networkpolicy import MANAGED_BY, MANAGED_BY_LABEL, WorkloadRef
from aigis.forensics.backends import EvidenceStores
from aigis.forensics.capture import CaptureSettings, patch_snapshot_status
from aigis.forensics.evidence import (
    CAPTURE_ANNOTATION,
    CAPTURE_NOW,
    on_demand_snapshot_name,
    termination_snapshot_name,
)
from aigis.kube import KubeClient, KubeError
from aigis.settings import OperatorSettings

GROUP = "aigis.dev"
VERSION = "v1alpha1"
AIWORKLOADS = "aiworkloads"
AICLUSTERPOLICIES = "aiclusterpolicies"
POLICY_REVISION_ANNOTATION = f"{GROUP}/cluster-policy-revision"

log = logging.getLogger(__name__)


def _condition_status(status: Mapping[str, Any], kind: str) -> str | None:
    for c in status.get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == kind:
            value = c.get("status")
            return value if isinstance(value, str) else None
    return None


class WorkloadStates:
    """Per-object state for the workload gauge, so each object counts once."""

    def __init__(self) -> None:
        self._by_uid: dict[str, str] = {}

    def set(self, uid: str, state: str) -> None:
        self._by_uid[uid] = state
        self._publish()

    def forget(self, uid: str) -> None:
        if self._by_uid.pop(uid, None) is not None:
            self._publish()

    def _publish(self) -> None:
        for state in ("compliant", "noncompliant", "invalid"):
            count = sum(1 for s in self._by_uid.values() if s == state)
            metrics.WORKLOADS.labels(state=state).set(count)


def _named_policies(index: kopf.Index[str, Any]) -> list[NamedPolicy]:
    """Valid AIClusterPolicies from the index; invalid ones report themselves in their status."""
    found = []
    for name in index:
        for spec in index[name]:
            model, errors = parse_cluster_policy_spec(spec)
            if model is not None and not errors:
                found.append(NamedPolicy(name, model))
    return found


def _namespace_labels(index: kopf.Index[str, Any], namespace: str) -> dict[str, str]:
    for labels in index.get(namespace, ()):
        return dict(labels)
    return {}


@dataclass
class OperatorState:
    """What the handlers and the refresh loop share for the life of the operator."""

    enforcer: WorkloadEnforcer
    states: WorkloadStates = field(default_factory=lambda: WorkloadStates())
    bodies: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """The latest AIWorkload objects seen, by (namespace, name)."""
    indices: tuple[kopf.Index[str, Any], kopf.Index[str, Any]] | None = None
    """kopf's cluster-policy and namespace-label indices, once a handler has seen them."""
    refresher: asyncio.Task[None] | None = None
    hold_monitor: asyncio.Task[None] | None = None
    """Publishes how many pods the forensics finalizer holds in Terminating."""
    evidence_stores: EvidenceStores | None = None
    """The evidence backends: Secrets, and S3 buckets as workloads name them (set at
    startup)."""
    capture_settings: CaptureSettings = field(default_factory=CaptureSettings)
    captures: set[str] = field(default_factory=set)
    """Snapshots being captured now, so one capture never runs twice at once."""
    capture_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    """The running captures of terminating pods."""
    retention: asyncio.Task[None] | None = None
    """Deletes expired ForensicSnapshots with their bytes."""
    audit: BackgroundAudit | None = None
    """The background audit (`aigis.controller.audit`), set at startup."""
    audit_task: asyncio.Task[None] | None = None

    @property
    def stores(self) -> EvidenceStores:
        assert self.evidence_stores is not None, "set by the startup handler"
        return self.evidence_stores

    def cluster_policies(self) -> list[NamedPolicy]:
        return _named_policies(self.indices[0]) if self.indices else []

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        return _namespace_labels(self.indices[1], namespace) if self.indices else {}


def _status_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    return any(before.get(key) != value for key, value in after.items())


def _describe(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata", {})
    return f"AIWorkload {meta.get('namespace')}/{meta.get('name')}"


def register_handlers(settings: OperatorSettings, audit: AuditSettings | None = None) -> None:
    """Register every handler; `settings` fixes intervals and what the enforcer does, `audit`
    how often the background audit runs (`aigis.controller.audit`)."""
    audit_settings = audit or AuditSettings()

    @kopf.on.startup(id="configure")
    async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        """Keep kopf's bookkeeping under our own domain and out of `status`."""
        settings.persistence.finalizer = f"{GROUP}/finalizer"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        # Handler outcomes are in status and metrics; events are for compliance changes.
        settings.posting.level = logging.WARNING
        # Watch only the objects aigis generated, filtered by the API server.
        managed = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
        for plural in ("networkpolicies", "ciliumnetworkpolicies", "configmaps"):
            settings.watching.label_selectors[plural] = managed
        # Only pods the webhook injected (they carry the workload label).
        settings.watching.label_selectors["pods"] = INJECTED_WORKLOAD_LABEL
        # DNS look-ups (getaddrinfo) and kopf's sync handlers run in the default executor;
        # enough threads for bursts of creations.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="aigis-worker")
        )
        # Loading the configuration reads files and may run a credential plugin, so it runs in
        # a thread; the client's aiohttp session opens on its first call, in this (kopf's) loop,
        # and the cleanup handler closes it there.
        kube = await asyncio.to_thread(KubeClient.from_environment, user_agent="aigis-operator")
        # One object shared by every per-object memo (kopf copies the root memo shallowly).
        state = OperatorState(WorkloadEnforcer(kube, operator_settings, clock=time.monotonic))
        # Started here, not on the first AIWorkload: held pods matter even when none is left.
        state.hold_monitor = asyncio.create_task(
            publish_holds_forever(
                kube,
                operator_settings.namespaces,
                operator_settings.refresh_seconds,
                # The safety net: a held pod whose event was lost (or whose capture kopf
                # cancelled) is captured from the periodic list.
                on_held=lambda pods: capture_all(state, pods),
            )
        )
        state.evidence_stores = EvidenceStores(kube)
        state.capture_settings = CaptureSettings(
            timeout_seconds=operator_settings.forensics_capture_timeout,
            signing_namespace=operator_settings.aigis_namespace,
        )
        state.retention = asyncio.create_task(
            expire_snapshots_forever(
                kube, state.stores, operator_settings.namespaces, operator_settings.refresh_seconds
            )
        )
        state.audit = BackgroundAudit(
            kube,
            audit_settings,
            namespaces=operator_settings.namespaces,
            aigis_namespace=operator_settings.aigis_namespace,
        )
        state.audit_task = asyncio.create_task(state.audit.run())
        memo.state = state

    operator_settings = settings

    @kopf.on.cleanup(id="close")
    async def close(memo: kopf.Memo, **_: Any) -> None:
        state: OperatorState | None = getattr(memo, "state", None)
        if state is not None:
            tasks = [
                t
                for t in (state.refresher, state.hold_monitor, state.retention, state.audit_task)
                if t is not None
            ]
            # Interrupted captures resume on the next start: their snapshots are named by UID.
            tasks += list(state.capture_tasks)
            for task in tasks:
                task.cancel()
            # Their calls end before the session they use does.
            await asyncio.gather(*tasks, return_exceptions=True)
            await state.enforcer.kube.close()

    @kopf.index(GROUP, VERSION, AICLUSTERPOLICIES, id="cluster_policies")
    def cluster_policies(name: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
        return {name: dict(spec)}

    @kopf.index("", "v1", "namespaces", id="namespace_labels")
    def namespace_labels(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
        return {name: dict(labels)}

    async def reconcile(
        state: OperatorState, body: Mapping[str, Any], *, force: bool
    ) -> tuple[dict[str, Any], EgressOutcome | None]:
        """Validate, check compliance, enforce egress and the gateway config; the new status."""
        started = time.perf_counter()
        result = "error"
        enforcer = state.enforcer
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        status = body.get("status") or {}
        try:
            model, errors = parse_aiworkload_spec(dict(body.get("spec") or {}))
            compliance = egress = pods = gateway_config = None
            if model is not None and not errors:
                policies = governing_policies(
                    state.cluster_policies(),
                    namespace,
                    state.namespace_labels(namespace),
                    aigis_namespace=operator_settings.aigis_namespace,
                )
                compliance = evaluate_compliance(model, policies)
                ref = WorkloadRef(name=name, namespace=namespace, uid=meta["uid"])
                egress = await enforcer.enforce(ref, model, compliance, force=force)
                gateway_config = await enforcer.configure_gateway(
                    ref,
                    model,
                    force=force,
                    trust_declared_regions=compliance.trust_declared_regions,
                )
                pods = await enforcer.kube.count_pods(namespace, model.selector)
            new_status = build_aiworkload_status(
                generation=meta.get("generation"),
                errors=errors,
                previous_status=dict(status),
                now=datetime.now(UTC),
                compliance=compliance,
                egress=egress,
                pods_matched=pods,
                gateway_config=gateway_config,
            )
            _announce(kopf.Body(cast(kopf.RawBody, dict(body))), status, errors, new_status)
            if errors:
                result, kind = "invalid", "invalid"
            else:
                assert compliance is not None
                result = "ready"
                kind = "compliant" if compliance.compliant else "noncompliant"
            state.states.set(meta["uid"], kind)
            return new_status, egress
        finally:
            metrics.RECONCILES.labels(resource=AIWORKLOADS, result=result).inc()
            metrics.RECONCILE_SECONDS.labels(resource=AIWORKLOADS).observe(
                time.perf_counter() - started
            )

    async def reconcile_aiworkload(
        body: kopf.Body,
        patch: kopf.Patch,
        memo: kopf.Memo,
        cluster_policies: kopf.Index[str, Any],
        namespace_labels: kopf.Index[str, Any],
        **_: Any,
    ) -> None:
        """The event-driven reconcile: status through kopf's patch, retried on API failures."""
        state: OperatorState = memo.state
        state.indices = (cluster_policies, namespace_labels)
        if state.refresher is None:
            # Started from a resource handler, whose context lets kopf post events from it.
            state.refresher = asyncio.create_task(refresh_forever(state))
        new_status, egress = await reconcile(state, body, force=False)
        patch.status.update(new_status)
        if egress is not None and not egress.in_force:
            raise kopf.TemporaryError(egress.message, delay=10)

    for register in (kopf.on.resume, kopf.on.create, kopf.on.update):
        # kopf passes indices as extra keyword arguments, which its handler protocol omits.
        register(GROUP, VERSION, AIWORKLOADS, id="reconcile")(reconcile_aiworkload)  # type: ignore[arg-type]

    async def refresh_forever(state: OperatorState) -> None:
        """Reconcile every known workload again, every `--refresh-seconds`.

        New DNS answers, and objects re-applied even if unchanged (a policy someone relabelled
        drops out of the drift watch; this puts it back). A plain task rather than a kopf timer:
        kopf gives objects with timers a finalizer, and then an AIWorkload (and its namespace)
        could not be deleted while the operator is down.
        """
        limit = asyncio.Semaphore(16)

        async def refresh(body: Mapping[str, Any]) -> None:
            async with limit:
                try:
                    new_status, _ = await reconcile(state, body, force=True)
                    if _status_changed(body.get("status") or {}, new_status):
                        meta = body["metadata"]
                        await state.enforcer.kube.patch_aiworkload_status(
                            meta["namespace"], meta["name"], new_status
                        )
                except KubeError as exc:
                    if exc.status != 404:  # 404: deleted meanwhile, nothing left to refresh
                        log.warning("refresh of %s failed: %s", _describe(body), exc)
                except Exception:  # one workload's failure must not stop the others' refresh
                    log.exception("refresh of %s failed", _describe(body))

        while True:
            await asyncio.sleep(operator_settings.refresh_seconds)
            await asyncio.gather(*(refresh(b) for b in list(state.bodies.values())))

    @kopf.on.event(GROUP, VERSION, AIWORKLOADS, id="track")
    def track_aiworkload(
        event: kopf.RawEvent, body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, **_: Any
    ) -> None:
        """Remember each workload's latest object for the refresh loop; forget deleted ones.

        A raw event handler rather than `on.delete`, which would add a finalizer: the generated
        objects go with the workload through owner references, so deletion need not wait.
        """
        state: OperatorState = memo.state
        key = (meta.get("namespace") or "", meta.get("name") or "")
        deleted = event.get("type") == "DELETED"
        if deleted:
            state.bodies.pop(key, None)
            state.states.forget(meta.get("uid") or "")
            state.enforcer.forget(*key)
        else:
            state.bodies[key] = dict(body)
        if state.audit is not None:
            state.audit.workload_seen(*key, meta.get("generation"), deleted)

    @kopf.on.event(GROUP, VERSION, AICLUSTERPOLICIES, id="audit_policy")
    def audit_cluster_policy(
        event: kopf.RawEvent, meta: kopf.Meta, memo: kopf.Memo, **_: Any
    ) -> None:
        """A policy's new spec (or its deletion) re-audits every namespace."""
        audit: BackgroundAudit | None = memo.state.audit
        if audit is not None:
            deleted = event.get("type") == "DELETED"
            audit.policy_seen(meta.get("name") or "", meta.get("generation"), deleted)

    @kopf.on.event("", "v1", "namespaces", id="audit_namespace")
    def audit_namespace(
        event: kopf.RawEvent, meta: kopf.Meta, labels: kopf.Labels, memo: kopf.Memo, **_: Any
    ) -> None:
        """A namespace's new labels may put it under a policy, or out of one."""
        audit: BackgroundAudit | None = memo.state.audit
        if audit is not None:
            deleted = event.get("type") == "DELETED"
            audit.namespace_seen(meta.get("name") or "", dict(labels), deleted)

    async def repair_drift(
        event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any
    ) -> None:
        """Put a generated policy back when someone edits or deletes it."""
        repaired = await memo.state.enforcer.repair(str(event.get("type")), dict(body))
        if repaired:
            logger.warning(
                "%s %s was changed or deleted; restored it", body["kind"], body["metadata"]["name"]
            )

    managed = {MANAGED_BY_LABEL: MANAGED_BY}
    kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels=managed, id="repair_drift")(
        repair_drift
    )
    kopf.on.event("cilium.io", "v2", "ciliumnetworkpolicies", labels=managed, id="repair_drift")(
        repair_drift
    )
    kopf.on.event("", "v1", "configmaps", labels=managed, id="repair_drift")(repair_drift)

    def start_capture(state: OperatorState, pod: Mapping[str, Any]) -> None:
        """Capture and release a terminating pod in a task of its own, unless one runs."""
        key = termination_snapshot_name(str(pod["metadata"].get("uid")))
        if key in state.captures:
            return
        state.captures.add(key)

        async def capture() -> None:
            try:
                await capture_and_release(
                    state.enforcer.kube, state.stores, pod, state.capture_settings
                )
            except Exception:  # logged; the periodic list of held pods starts it again
                log.exception("capture of pod %s failed", pod["metadata"].get("name"))
            finally:
                state.captures.discard(key)

        task = asyncio.create_task(capture())
        state.capture_tasks.add(task)
        task.add_done_callback(state.capture_tasks.discard)

    def capture_all(state: OperatorState, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            start_capture(state, pod)

    @kopf.on.event(
        "", "v1", "pods", labels={INJECTED_WORKLOAD_LABEL: kopf.PRESENT}, id="capture_forensics"
    )
    async def capture_forensics(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """Capture a terminating injected pod's evidence, then let it go; or capture a running
        one that asks for it (annotation aigis.dev/capture=now) without stopping it.

        A raw event handler: kopf adds nothing to the pods, and after a restart the initial
        list replays every terminating pod, so an interrupted capture resumes. The capture of a
        terminating pod runs as a task of its own: kopf cancels a handler when it stops
        watching (a namespace being deleted), and the pod must still be released.
        """
        state: OperatorState = memo.state
        meta = body["metadata"]
        pod = dict(body)
        if meta.get("deletionTimestamp"):
            if FORENSICS_FINALIZER in (meta.get("finalizers") or []):
                start_capture(state, pod)
        elif (meta.get("annotations") or {}).get(CAPTURE_ANNOTATION) == CAPTURE_NOW:
            key = on_demand_snapshot_name(str(meta.get("uid")), str(meta.get("resourceVersion")))
            if key in state.captures:
                return
            state.captures.add(key)
            try:
                await capture_on_demand(
                    state.enforcer.kube, state.stores, pod, state.capture_settings, key
                )
                # The request is answered; a new `now` asks again.
                await state.enforcer.kube.request(
                    "PATCH",
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                    body={"metadata": {"annotations": {CAPTURE_ANNOTATION: None}}},
                    content_type="application/merge-patch+json",
                )
            except KubeError as exc:
                if exc.status != 404:
                    raise
            finally:
                state.captures.discard(key)

    @kopf.on.event(GROUP, VERSION, "forensicsnapshots", id="capture_requested")
    async def capture_requested(
        event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any
    ) -> None:
        """A ForensicSnapshot someone created (no status yet, OnDemand): capture its pod now."""
        meta, spec = body["metadata"], body.get("spec") or {}
        if (
            event.get("type") == "DELETED"
            or (body.get("status") or {}).get("phase")
            or spec.get("trigger") != "OnDemand"
        ):
            return
        state: OperatorState = memo.state
        key = str(meta["name"])
        if key in state.captures:
            return
        state.captures.add(key)
        try:
            kube = state.enforcer.kube
            wanted = spec.get("pod") or {}
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{wanted.get('name')}"
            pod = await kube.request("GET", path)
            if pod is None or (wanted.get("uid") and pod["metadata"].get("uid") != wanted["uid"]):
                await patch_snapshot_status(
                    kube,
                    meta["namespace"],
                    key,
                    {
                        "phase": "Failed",
                        "complete": False,
                        "reasons": [f"pod {wanted.get('name')} not found"],
                        "message": "nothing captured: the pod is not there",
                    },
                )
                return
            await capture_on_demand(kube, state.stores, pod, state.capture_settings, key)
        finally:
            state.captures.discard(key)

    @kopf.on.resume(GROUP, VERSION, AICLUSTERPOLICIES, id="validate")
    @kopf.on.create(GROUP, VERSION, AICLUSTERPOLICIES, id="validate")
    @kopf.on.update(GROUP, VERSION, AICLUSTERPOLICIES, id="validate")
    def validate_cluster_policy(
        spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any
    ) -> None:
        _policy, errors = parse_cluster_policy_spec(dict(spec))
        patch.status.update(
            build_cluster_policy_status(
                generation=meta.get("generation"),
                errors=errors,
                previous_status=dict(status),
                now=datetime.now(UTC),
            )
        )

    @kopf.on.create(GROUP, VERSION, AICLUSTERPOLICIES, id="propagate")
    @kopf.on.update(GROUP, VERSION, AICLUSTERPOLICIES, id="propagate")
    async def propagate_cluster_policy(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
        """Re-reconcile every workload now, rather than at its next refresh."""
        revision = f"{meta['name']}@{meta.get('resourceVersion')}"
        await memo.state.enforcer.touch_workloads(POLICY_REVISION_ANNOTATION, revision)

    @kopf.on.event(GROUP, VERSION, AICLUSTERPOLICIES, id="propagate_deletion")
    async def propagate_cluster_policy_deletion(
        event: kopf.RawEvent, meta: kopf.Meta, memo: kopf.Memo, **_: Any
    ) -> None:
        if event.get("type") == "DELETED":
            revision = f"{meta.get('name')}@deleted-{meta.get('resourceVersion')}"
            await memo.state.enforcer.touch_workloads(POLICY_REVISION_ANNOTATION, revision)


def _announce(
    body: kopf.Body,
    previous: Mapping[str, Any],
    errors: list[Any],
    new_status: Mapping[str, Any],
) -> None:
    """Events for changes a person should notice: invalid specs and compliance flips."""
    was_invalid = _condition_status(previous, INVALID) == "True"
    if errors and not was_invalid:
        kopf.warn(body, reason="InvalidSpec", message=new_status["conditions"][0]["message"])
        return
    if not errors and was_invalid:
        kopf.info(body, reason="Valid", message="the spec is valid again")
    before, after = _condition_status(previous, COMPLIANT), _condition_status(new_status, COMPLIANT)
    if after == before or after is None:
        return
    compliant = next(c for c in new_status["conditions"] if c["type"] == COMPLIANT)
    if after == "False":
        kopf.warn(body, reason="NonCompliant", message=compliant["message"])
    elif before == "False":
        kopf.info(body, reason="Compliant", message=compliant["message"])
