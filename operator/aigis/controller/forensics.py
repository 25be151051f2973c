"""The forensics finalizer: capturing before letting a pod go, and what it holds meanwhile.

The admission webhook gives every pod of an AIWorkload with `forensics.captureOnTermination`
the finalizer `aigis.dev/forensics`, so that no such pod is gone before its evidence is taken.
That makes deleting those pods depend on a running operator. This module makes the dependency
visible (the operator publishes how many pods the finalizer holds and for how long) and
recoverable (`aigis forensics release` removes it by hand, recording why, when the operator is
down or gone for good).

The operator captures a terminating covered pod's evidence (`capture_and_release`, through
`aigis.forensics`) and then removes the finalizer, whatever the outcome, with an Event
(EvidenceCaptured, EvidenceIncomplete or EvidenceNotCaptured); it captures running pods on
demand (`capture_on_demand`) and deletes expired snapshots (`expire_snapshots_forever`).

Pure: `held_pods`, `HoldSummary.of`, `release_event`, `pod_event`, `seconds_until_capture`.
Shell: `list_covered_pods`, `publish_holds_forever` (the operator's periodic list),
`release_pods` (the command) and the capture functions above. The
shell goes through `aigis.kube.KubeClient`; this module must not touch the enforcer or the
admission webhook.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from aigis import metrics
from aigis.admission.mutation import FORENSICS_FINALIZER
from aigis.admission.mutation import WORKLOAD_LABEL as INJECTED_WORKLOAD_LABEL
from aigis.events import Involved, Reporter, render_event
from aigis.forensics.backends import EvidenceStores
from aigis.forensics.capture import SNAPSHOTS, CaptureSettings, capture_pod, follow_logs
from aigis.forensics.evidence import containers_stopped, is_expired, termination_snapshot_name
from aigis.forensics.storage import StorageError
from aigis.kube import KubeClient, KubeError, namespaced_path

log = logging.getLogger(__name__)

EVIDENCE_NOT_CAPTURED: Final = "EvidenceNotCaptured"
"""The Event reason (and the release counter's `reason` label) of a release without a bundle."""
RELEASE_COMMAND: Final = "aigis forensics release"
REPORTING_COMPONENT: Final = "aigis.dev/forensics-release"
_PAGE_SIZE: Final = "500"
_MAX_RELEASE_ATTEMPTS: Final = 3


# --- pure ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldPod:
    """A pod past its deletion time that only the forensics finalizer keeps."""

    namespace: str
    name: str
    held_seconds: float
    """Time since `deletionTimestamp`: the end of its grace period, or when the kubelet
    reported its containers stopped, whichever came first."""


@dataclass(frozen=True, slots=True)
class HoldSummary:
    """What the operator exports: how many pods are held, and the longest hold."""

    count: int
    oldest_seconds: float

    @classmethod
    def of(cls, held: Sequence[HeldPod]) -> HoldSummary:
        return cls(len(held), max((p.held_seconds for p in held), default=0.0))


def deletion_time(pod: Mapping[str, Any]) -> datetime | None:
    """The pod's `deletionTimestamp`, or None when it is not being deleted (or unreadable)."""
    meta = pod.get("metadata")
    stamp = meta.get("deletionTimestamp") if isinstance(meta, Mapping) else None
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def carries_finalizer(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata")
    finalizers = meta.get("finalizers") if isinstance(meta, Mapping) else None
    return isinstance(finalizers, list) and FORENSICS_FINALIZER in finalizers


def is_terminating(pod: Mapping[str, Any]) -> bool:
    """Deleted (it has a `deletionTimestamp`, readable or not) and carrying the finalizer."""
    meta = pod.get("metadata")
    return (
        isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp")) and carries_finalizer(pod)
    )


def held_pods(pods: Iterable[Mapping[str, Any]], now: datetime) -> list[HeldPod]:
    """The pods among `pods` that the forensics finalizer holds at `now`, longest-held first.

    A pod is held once its deletion time has passed while the finalizer is still on it. Before
    that it is in its grace period (its containers may still be stopping), which is ordinary
    Terminating and not the finalizer's doing. A deletion time that cannot be read counts as
    held from `now`: the pod is being deleted and the finalizer is there.
    """
    found = []
    for pod in pods:
        if not is_terminating(pod):
            continue
        meta = pod["metadata"]
        deleted = deletion_time(pod)
        if deleted is not None and deleted > now:
            continue
        seconds = (now - deleted).total_seconds() if deleted is not None else 0.0
        found.append(
            HeldPod(str(meta.get("namespace") or ""), str(meta.get("name") or ""), seconds)
        )
    return sorted(found, key=lambda p: (-p.held_seconds, p.namespace, p.name))


def release_message(actor: str | None) -> str:
    """The Event message of a release by hand: who, how, and that no evidence was taken."""
    who = actor or "an unknown user (the API server's audit log has the request)"
    return (
        f"released by hand by {who} with `{RELEASE_COMMAND}`, without a forensic evidence "
        "bundle: the pod's logs and state were not captured"
    )


def release_event(pod: Mapping[str, Any], message: str, now: datetime) -> dict[str, Any]:
    """A core/v1 `Warning` Event `EvidenceNotCaptured` about `pod`, from the CLI."""
    return _pod_event(
        pod,
        EVIDENCE_NOT_CAPTURED,
        message,
        now,
        Reporter("aigis-cli", REPORTING_COMPONENT, "aigis-cli"),
        warning=True,
    )


def _pod_event(
    pod: Mapping[str, Any],
    reason: str,
    message: str,
    now: datetime,
    reporter: Reporter,
    *,
    warning: bool,
) -> dict[str, Any]:
    meta = pod["metadata"]
    involved = Involved("v1", "Pod", meta["name"], meta["namespace"], meta.get("uid") or None)
    return render_event(
        involved, reason=reason, message=message, reporter=reporter, now=now, warning=warning
    )


# --- shell: the operator's periodic list --------------------------------------------------


async def list_covered_pods(
    kube: KubeClient, namespaces: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Every pod the webhook injected (it carries the workload label), in `namespaces` or, when
    empty, the whole cluster: filtered by label on the API server, paged by 500."""
    items: list[dict[str, Any]] = []
    for namespace in namespaces or (None,):
        token = ""
        while True:
            query = {"labelSelector": INJECTED_WORKLOAD_LABEL, "limit": _PAGE_SIZE}
            if token:
                query["continue"] = token
            path = namespaced_path("/api/v1", namespace, "pods")
            page = await kube.request("GET", path, query=query) or {}
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                break
    return items


async def publish_holds(
    kube: KubeClient,
    namespaces: Sequence[str],
    now: datetime,
    on_held: Callable[[list[dict[str, Any]]], object] | None = None,
) -> HoldSummary:
    """List the covered pods once and set the two hold gauges from them; `on_held` gets the
    pods the finalizer holds (past their deletion time)."""
    pods = await list_covered_pods(kube, namespaces)
    summary = HoldSummary.of(held_pods(pods, now))
    if on_held is not None and summary.count:
        held = {(p.namespace, p.name) for p in held_pods(pods, now)}
        on_held([p for p in pods if (p["metadata"]["namespace"], p["metadata"]["name"]) in held])
    metrics.FORENSICS_PODS_HELD.set(summary.count)
    metrics.FORENSICS_OLDEST_HELD_SECONDS.set(summary.oldest_seconds)
    return summary


async def publish_holds_forever(
    kube: KubeClient,
    namespaces: Sequence[str],
    interval_seconds: float,
    on_held: Callable[[list[dict[str, Any]]], object] | None = None,
) -> None:
    """`publish_holds` now and every `interval_seconds`; a failed list keeps the last values
    and is logged (the gauges are then as old as the last good list)."""
    while True:
        try:
            summary = await publish_holds(kube, namespaces, datetime.now(UTC), on_held)
        except KubeError as exc:
            log.warning("listing pods for the forensics hold gauges failed: %s", exc)
        except Exception:  # the gauges must not stop for good on one odd answer
            log.exception("listing pods for the forensics hold gauges failed")
        else:
            if summary.count:
                log.warning(
                    "%d pod(s) held in Terminating by %s, the longest for %.0fs",
                    summary.count,
                    FORENSICS_FINALIZER,
                    summary.oldest_seconds,
                )
        await asyncio.sleep(interval_seconds)


# --- shell: `aigis forensics release` ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReleaseOutcome:
    """What happened to one pod; `ok` is False for anything the exit code must report."""

    namespace: str
    name: str
    action: str
    """released, would-release, not-held, not-terminating, not-found, failed."""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.action in ("released", "would-release", "not-held")

    def line(self) -> str:
        text = f"{self.action}: pod {self.namespace}/{self.name}"
        return f"{text} ({self.detail})" if self.detail else text


async def who_am_i(kube: KubeClient) -> str | None:
    """The user name the API server knows the caller by (a SelfSubjectReview), if it says."""
    try:
        review = await kube.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    except KubeError:
        return None
    user = ((review or {}).get("status") or {}).get("userInfo") or {}
    name = user.get("username")
    return name if isinstance(name, str) and name else None


def _held_for(pod: Mapping[str, Any], now: datetime) -> str:
    deleted = deletion_time(pod)
    if deleted is None:
        return "deleted"
    seconds = (now - deleted).total_seconds()
    if seconds < 0:
        return f"deleted, {-seconds:.0f}s of grace period left"
    return f"deleted {seconds:.0f}s ago"


async def _release_one(
    kube: KubeClient, pod: Mapping[str, Any], *, dry_run: bool, message: str, now: datetime
) -> ReleaseOutcome:
    meta = pod["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    if not carries_finalizer(pod):
        return ReleaseOutcome(namespace, name, "not-held", f"no {FORENSICS_FINALIZER} finalizer")
    if not meta.get("deletionTimestamp"):
        return ReleaseOutcome(
            namespace, name, "not-terminating", "not deleted; delete it first, then release it"
        )
    detail = _held_for(pod, now)
    if dry_run:
        return ReleaseOutcome(namespace, name, "would-release", detail)
    current: Mapping[str, Any] | None = pod
    for _ in range(_MAX_RELEASE_ATTEMPTS):
        assert current is not None
        finalizers = list(current["metadata"].get("finalizers") or [])
        # Refused (and then re-read) when the list changed since it was read.
        await kube.remove_pod_finalizer(namespace, name, finalizers, FORENSICS_FINALIZER)
        current = await kube.request("GET", namespaced_path("/api/v1", namespace, "pods", name))
        if current is None or not carries_finalizer(current):
            break
    else:
        return ReleaseOutcome(namespace, name, "failed", "the finalizer list kept changing")
    try:
        await kube.request(
            "POST",
            f"/api/v1/namespaces/{quote(namespace)}/events",
            body=release_event(pod, message, now),
        )
    except KubeError as exc:
        return ReleaseOutcome(
            namespace, name, "failed", f"released, but the Event was not recorded: {exc}"
        )
    return ReleaseOutcome(namespace, name, "released", detail)


async def release_pods(
    kube: KubeClient,
    *,
    namespace: str | None,
    names: Sequence[str] = (),
    dry_run: bool = False,
    now: datetime,
) -> list[ReleaseOutcome]:
    """Remove the forensics finalizer from terminating pods, each with an Event saying so.

    With `names`, exactly those pods in `namespace` (found by name, labelled or not); else every
    terminating covered pod in `namespace` (None: all namespaces). Pods that are not being
    deleted keep the finalizer: without it, the operator could not capture their evidence
    later. Raises `KubeError` only when the pods cannot be listed at all.
    """
    if names:
        assert namespace is not None, "pods given by name need a namespace"
        pods: list[Mapping[str, Any]] = []
        missing = []
        for name in dict.fromkeys(names):
            found = await kube.request("GET", namespaced_path("/api/v1", namespace, "pods", name))
            if found is None:
                missing.append(ReleaseOutcome(namespace, name, "not-found"))
            else:
                pods.append(found)
    else:
        pods = [
            p
            for p in await list_covered_pods(kube, [namespace] if namespace else [])
            if is_terminating(p)
        ]
        missing = []
    message = "" if dry_run or not pods else release_message(await who_am_i(kube))
    outcomes = list(missing)
    for target in pods:
        try:
            outcomes.append(
                await _release_one(kube, target, dry_run=dry_run, message=message, now=now)
            )
        except KubeError as exc:
            meta = target["metadata"]
            outcomes.append(ReleaseOutcome(meta["namespace"], meta["name"], "failed", str(exc)))
    return outcomes


# --- the operator: capture before release ---------------------------------------------------

EVIDENCE_CAPTURED: Final = "EvidenceCaptured"
EVIDENCE_INCOMPLETE: Final = "EvidenceIncomplete"
CAPTURE_COMPONENT: Final = "aigis.dev/forensics"
_MAX_GRACE_WAIT_SECONDS: Final = 60.0


def pod_event(
    pod: Mapping[str, Any], reason: str, message: str, now: datetime, *, warning: bool
) -> dict[str, Any]:
    """A core/v1 Event about `pod` from the operator's forensics capture."""
    reporter = Reporter("aigis-operator", CAPTURE_COMPONENT, "aigis-operator")
    return _pod_event(pod, reason, message, now, reporter, warning=warning)


def refuge_namespace(exc: KubeError, namespace: str, aigis_namespace: str | None) -> str | None:
    """Where to store a snapshot that its pod's namespace refused because that namespace is
    being deleted: the aigis namespace, if there is one (and it is another); else None."""
    if exc.status != 403 or "being terminated" not in exc.body:
        return None
    return aigis_namespace if aigis_namespace and aigis_namespace != namespace else None


def seconds_until_capture(pod: Mapping[str, Any], now: datetime) -> float:
    """How long to wait before capturing a terminating pod: 0 once its containers stopped or
    its deletion time passed (the logs are then final), else until that time, at most a
    minute (a long grace period must not hold a capture forever)."""
    deleted = deletion_time(pod)
    if deleted is None or containers_stopped(pod):
        return 0.0
    return max(0.0, min((deleted - now).total_seconds(), _MAX_GRACE_WAIT_SECONDS))


async def _post_event(kube: KubeClient, pod: Mapping[str, Any], event: dict[str, Any]) -> None:
    try:
        await kube.request(
            "POST", f"/api/v1/namespaces/{quote(pod['metadata']['namespace'])}/events", body=event
        )
    except KubeError as exc:  # a terminating namespace refuses new Events; the log keeps it
        log.warning("Event %s about pod %s not recorded: %s", event["reason"],
                    pod["metadata"]["name"], exc)  # fmt: skip


async def capture_and_release(
    kube: KubeClient,
    stores: EvidenceStores,
    pod: Mapping[str, Any],
    settings: CaptureSettings,
) -> str:
    """Capture a terminating pod's evidence, then remove its forensics finalizer.

    The finalizer goes whatever happens: stored complete, stored incomplete (with the reasons
    in the snapshot and the Event), or not stored at all (the reason in an Event
    `EvidenceNotCaptured`). Returns the outcome: complete, incomplete or failed.
    """
    meta = pod["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    wait = seconds_until_capture(pod, datetime.now(UTC))
    followed = None
    if wait > 0:
        # Read the logs while the containers stop: a real kubelet removes them (and their logs)
        # right after. Done when every container exited, or at the deletion time.
        followed = await follow_logs(kube, pod, timeout_seconds=wait)
        pod = await kube.request("GET", namespaced_path("/api/v1", namespace, "pods", name)) or pod
    started = time.monotonic()
    snapshot = termination_snapshot_name(str(meta.get("uid")))
    try:
        try:
            result = await capture_pod(
                kube,
                stores,
                pod,
                snapshot_name=snapshot,
                trigger="Termination",
                settings=settings,
                followed_logs=followed,
            )
        except KubeError as exc:
            refuge = refuge_namespace(exc, namespace, settings.signing_namespace)
            if refuge is None:
                raise
            # The pod's namespace is being deleted and takes no new objects (and would take
            # its snapshots with it): the evidence goes to the aigis namespace.
            result = await capture_pod(
                kube,
                stores,
                pod,
                snapshot_name=snapshot,
                trigger="Termination",
                settings=settings,
                snapshot_namespace=refuge,
                followed_logs=followed,
            )
    except Exception as exc:  # the pod must go in any case; the reason is recorded
        if not isinstance(exc, KubeError):
            log.exception("capture of pod %s/%s failed", namespace, name)
        outcome, reason = "failed", EVIDENCE_NOT_CAPTURED
        message = f"released without a stored evidence bundle: {exc}"
    else:
        outcome = result.outcome
        reason = EVIDENCE_CAPTURED if result.complete else EVIDENCE_INCOMPLETE
        message = (
            f"evidence bundle stored in ForensicSnapshot {result.namespace}/{result.snapshot} "
            f"({result.size} bytes)"
        )
        if not result.complete:
            message += f"; incomplete: {'; '.join(result.reasons)}"
        if not result.resumed:
            metrics.FORENSICS_BYTES_STORED.labels(backend=result.backend).inc(result.size)
    await _post_event(kube, pod, pod_event(pod, reason, message, datetime.now(UTC),
                                           warning=outcome != "complete"))  # fmt: skip
    current: Mapping[str, Any] | None = pod
    for _ in range(_MAX_RELEASE_ATTEMPTS):
        assert current is not None
        finalizers = list(current["metadata"].get("finalizers") or [])
        if FORENSICS_FINALIZER not in finalizers:
            break
        await kube.remove_pod_finalizer(namespace, name, finalizers, FORENSICS_FINALIZER)
        current = await kube.request("GET", namespaced_path("/api/v1", namespace, "pods", name))
        if current is None:
            break
    metrics.FORENSICS_RELEASES.labels(reason=reason).inc()
    metrics.FORENSICS_CAPTURES.labels(trigger="Termination", outcome=outcome).inc()
    metrics.FORENSICS_CAPTURE_SECONDS.labels(trigger="Termination").observe(
        time.monotonic() - started
    )
    return outcome


async def capture_on_demand(
    kube: KubeClient,
    stores: EvidenceStores,
    pod: Mapping[str, Any],
    settings: CaptureSettings,
    snapshot_name: str,
) -> str:
    """Capture a running pod without stopping it, into `snapshot_name`."""
    started = time.monotonic()
    try:
        result = await capture_pod(
            kube, stores, pod, snapshot_name=snapshot_name, trigger="OnDemand", settings=settings
        )
    except (KubeError, StorageError) as exc:
        log.warning("on-demand capture of pod %s failed: %s", pod["metadata"]["name"], exc)
        outcome = "failed"
    else:
        outcome = result.outcome
        if not result.resumed:
            metrics.FORENSICS_BYTES_STORED.labels(backend=result.backend).inc(result.size)
    metrics.FORENSICS_CAPTURES.labels(trigger="OnDemand", outcome=outcome).inc()
    metrics.FORENSICS_CAPTURE_SECONDS.labels(trigger="OnDemand").observe(time.monotonic() - started)
    return outcome


async def expire_snapshots(
    kube: KubeClient, stores: EvidenceStores, namespaces: Sequence[str], now: datetime
) -> list[str]:
    """Delete every ForensicSnapshot past its `status.expiresAt`, its bytes first, from the
    backend the snapshot names. A snapshot whose bytes cannot be deleted yet (an S3 server
    whose clock lags, a credentials Secret gone) is kept, logged, and tried again next time."""
    deleted = []
    for namespace in namespaces or (None,):
        path = namespaced_path(SNAPSHOTS, namespace, "forensicsnapshots")
        found = await kube.request("GET", path)
        for snapshot in (found or {}).get("items") or []:
            if not is_expired(snapshot, now):
                continue
            meta = snapshot["metadata"]
            location = (snapshot.get("status") or {}).get("storage") or {}
            try:
                storage = await stores.for_location(location)
                await storage.delete(meta["namespace"], location)
            except StorageError as exc:
                log.warning(
                    "ForensicSnapshot %s/%s expired, but its bytes were not deleted: %s",
                    meta["namespace"], meta["name"], exc,
                )  # fmt: skip
                continue
            await kube.request(
                "DELETE",
                namespaced_path(SNAPSHOTS, meta["namespace"], "forensicsnapshots", meta["name"]),
            )
            metrics.FORENSICS_EXPIRED.inc()
            deleted.append(f"{meta['namespace']}/{meta['name']}")
    return deleted


async def expire_snapshots_forever(
    kube: KubeClient, stores: EvidenceStores, namespaces: Sequence[str], interval: float
) -> None:
    """`expire_snapshots` every `interval` seconds; failures are logged and retried."""
    while True:
        try:
            for name in await expire_snapshots(kube, stores, namespaces, datetime.now(UTC)):
                log.info("ForensicSnapshot %s expired; deleted with its bytes", name)
        except Exception:  # retention must not stop for good on one odd answer
            log.exception("deleting expired forensic snapshots failed")
        await asyncio.sleep(interval)
