"""The forensics finalizer: which pods it holds in Terminating, and letting them go by hand.

The admission webhook gives every pod of an AIWorkload with `forensics.captureOnTermination`
the finalizer `aigis.dev/forensics`, so that no such pod is gone before its evidence is taken.
That makes deleting those pods depend on a running operator. This module makes the dependency
visible (the operator publishes how many pods the finalizer holds and for how long) and
recoverable (`aigis forensics release` removes it by hand, recording why, when the operator is
down or gone for good).

Pure: `held_pods`, `HoldSummary.of`, `release_event`. Shell: `list_covered_pods`,
`publish_holds_forever` (the operator's periodic list) and `release_pods` (the command). The
shell goes through `aigis.kube.KubeClient`; this module must not touch the enforcer or the
admission webhook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from aigis import metrics
from aigis.admission.mutation import FORENSICS_FINALIZER
from aigis.admission.mutation import WORKLOAD_LABEL as INJECTED_WORKLOAD_LABEL
from aigis.kube import KubeClient, KubeError

log = logging.getLogger(__name__)

EVIDENCE_NOT_CAPTURED: Final = "EvidenceNotCaptured"
"""The Event reason (and the release counter's `reason` label) of a release without a bundle."""
RELEASE_COMMAND: Final = "aigis forensics release"
REPORTING_COMPONENT: Final = "aigis.dev/forensics-release"
_PAGE_SIZE: Final = "500"
_MAX_RELEASE_ATTEMPTS: Final = 3
_MAX_MESSAGE_CHARS: Final = 1024


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
    )[:_MAX_MESSAGE_CHARS]


def release_event(pod: Mapping[str, Any], message: str, now: datetime) -> dict[str, Any]:
    """A core/v1 `Warning` Event `EvidenceNotCaptured` about `pod`."""
    meta = pod["metadata"]
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    involved = {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": meta["namespace"],
        "name": meta["name"],
    }
    if meta.get("uid"):
        involved["uid"] = meta["uid"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": involved,
        "reason": EVIDENCE_NOT_CAPTURED,
        "message": message,
        "type": "Warning",
        "source": {"component": "aigis-cli"},
        "reportingComponent": REPORTING_COMPONENT,
        "reportingInstance": "aigis-cli",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


# --- shell: the operator's periodic list --------------------------------------------------


def _pods_path(namespace: str | None) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods" if namespace else "/api/v1/pods"


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
            page = await kube.request("GET", _pods_path(namespace), query=query) or {}
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                break
    return items


async def publish_holds(kube: KubeClient, namespaces: Sequence[str], now: datetime) -> HoldSummary:
    """List the covered pods once and set the two hold gauges from them."""
    summary = HoldSummary.of(held_pods(await list_covered_pods(kube, namespaces), now))
    metrics.FORENSICS_PODS_HELD.set(summary.count)
    metrics.FORENSICS_OLDEST_HELD_SECONDS.set(summary.oldest_seconds)
    return summary


async def publish_holds_forever(
    kube: KubeClient, namespaces: Sequence[str], interval_seconds: float
) -> None:
    """`publish_holds` now and every `interval_seconds`; a failed list keeps the last values
    and is logged (the gauges are then as old as the last good list)."""
    while True:
        try:
            summary = await publish_holds(kube, namespaces, datetime.now(UTC))
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


def _pod_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}"


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
        current = await kube.request("GET", _pod_path(namespace, name))
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
            found = await kube.request("GET", _pod_path(namespace, name))
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
