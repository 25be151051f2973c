"""Capturing a pod: collect its evidence, build and sign the bundle, store it, record it.

`capture_pod` is the whole of one capture, resumable and idempotent: its ForensicSnapshot is
named by the caller from the pod's UID, so a capture interrupted (operator restart, lost
connection) and started again finds the same snapshot and finishes it, and one already stored
is not taken twice. Every artifact that cannot be had (logs unavailable, no workload, a missing
Secret, the time limit) becomes a recorded reason and an incomplete bundle, never an exception;
only a failure to store anything at all raises.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aigis.admission.mutation import GATEWAY_CONTAINER
from aigis.admission.mutation import WORKLOAD_LABEL as INJECTED_WORKLOAD_LABEL
from aigis.forensics import bundle
from aigis.forensics.backends import EvidenceStores
from aigis.forensics.evidence import (
    POD_UID_LABEL,
    Collection,
    LogTail,
    capture_facts,
    container_names,
    expiry,
    redact_pod,
    restart_counts,
    rfc3339,
    selecting_policies,
    summarize,
    whole_lines,
)
from aigis.forensics.signing import ensure_signing_key
from aigis.forensics.storage import StorageError
from aigis.gateway.audit import split_by_worker, verify_audit_chain
from aigis.gateway.identity import AUDIT_KEY_SECRET_KEY, audit_key_secret_name
from aigis.kube import KubeClient, KubeError, namespaced_path

log = logging.getLogger(__name__)

SNAPSHOTS: Final = "/apis/aigis.dev/v1alpha1"
DEFAULT_LOGS_MAX_BYTES: Final = 10 * 1024 * 1024
DEFAULT_RETENTION_DAYS: Final = 30


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """How captures run; one object, from the operator's settings."""

    timeout_seconds: float = 120.0
    """A capture still collecting after this long is stored incomplete with what it has."""
    signing_namespace: str | None = None
    """Where the signing key lives; None: the pod's namespace."""


@dataclass(frozen=True, slots=True)
class CaptureOutcome:
    snapshot: str
    namespace: str
    complete: bool
    size: int
    reasons: tuple[str, ...]
    resumed: bool
    """The snapshot was already stored: nothing was captured again."""
    backend: str = "Secrets"
    """Where the bundle is: Secrets or S3."""

    @property
    def outcome(self) -> str:
        return "complete" if self.complete else "incomplete"


def snapshots_path(namespace: str, name: str = "") -> str:
    return namespaced_path(SNAPSHOTS, namespace, "forensicsnapshots", name)


def snapshot_manifest(
    namespace: str, name: str, pod: Mapping[str, Any], trigger: str
) -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "ForensicSnapshot",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {POD_UID_LABEL: str(meta.get("uid") or "")[:63]},
        },
        "spec": {"pod": {"name": meta["name"], "uid": meta.get("uid")}, "trigger": trigger},
    }


async def ensure_snapshot(
    kube: KubeClient, namespace: str, name: str, pod: Mapping[str, Any], trigger: str
) -> dict[str, Any]:
    """The snapshot object, created unless it exists (a resumed capture)."""
    try:
        created = await kube.request(
            "POST", snapshots_path(namespace), body=snapshot_manifest(namespace, name, pod, trigger)
        )
        if created:
            return created
    except KubeError as exc:
        if exc.status != 409:
            raise
    found = await kube.request("GET", snapshots_path(namespace, name))
    if found is None:
        raise KubeError("GET", snapshots_path(namespace, name), 404, "snapshot vanished")
    return found


async def patch_snapshot_status(
    kube: KubeClient, namespace: str, name: str, status: Mapping[str, Any]
) -> None:
    await kube.request(
        "PATCH",
        snapshots_path(namespace, name) + "/status",
        body={"status": dict(status)},
        content_type="application/merge-patch+json",
    )


# --- collecting ------------------------------------------------------------------------------


class _Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._end = clock() + seconds
        self.seconds = seconds

    def left(self) -> float:
        return self._end - self._clock()


async def _step(
    collection: Collection, name: str, deadline: _Deadline, work: Awaitable[object]
) -> None:
    """Run one collection step within what is left of the time limit; a failure or the limit
    becomes a recorded reason for `name`."""
    left = deadline.left()
    if left <= 0:
        collection.lack(name, f"not collected: the {deadline.seconds:.0f}s capture limit passed")
        if asyncio.iscoroutine(work):
            work.close()
        return
    try:
        async with asyncio.timeout(left):
            await work
    except TimeoutError:
        collection.lack(name, f"cut off: the {deadline.seconds:.0f}s capture limit passed")
    except KubeError as exc:
        collection.lack(name, f"the API server refused: {exc.status} {bundle_reason(exc)}")
    except Exception as exc:  # recorded, never fatal: the rest of the evidence still counts
        log.exception("collecting %s failed", name)
        collection.lack(name, f"failed: {type(exc).__name__}: {exc}")


def bundle_reason(exc: KubeError) -> str:
    return str(exc).split(": ", 1)[-1][:300]


LOG_GONE: Final = b"unable to retrieve container logs for "
"""How a kubelet answers (HTTP 200) for a container it already removed: not the log."""


def log_gone(tail: LogTail) -> str | None:
    """The kubelet's message when `tail` holds no log but the kubelet's "removed" answer."""
    data = tail.data()
    if tail.total < 1024 and data.startswith(LOG_GONE):
        return data.decode(errors="replace").strip()
    return None


async def logs_cap(kube: KubeClient, pod: Mapping[str, Any]) -> int:
    """How many bytes of each log the pod's AIWorkload keeps (`forensics.logsMaxBytes`)."""
    workload_name = (pod["metadata"].get("labels") or {}).get(INJECTED_WORKLOAD_LABEL)
    found = None
    if workload_name:
        try:
            found = await kube.get_aiworkload(str(pod["metadata"]["namespace"]), workload_name)
        except KubeError:
            found = None
    forensics = ((found or {}).get("spec") or {}).get("forensics") or {}
    return int(forensics.get("logsMaxBytes") or DEFAULT_LOGS_MAX_BYTES)


async def follow_logs(
    kube: KubeClient, pod: Mapping[str, Any], *, timeout_seconds: float
) -> dict[str, LogTail]:
    """Each container's log, streamed from the moment a deletion is seen until the container
    exits (or `timeout_seconds` pass).

    A real kubelet removes a deleted pod's containers, and their logs with them, about a second
    after they stop, finalizer or not; a capture that only starts reading once the containers
    stopped finds nothing. What a stream could not read stays out of the result, and `collect`
    reads that container's log the ordinary way.
    """
    meta = pod["metadata"]
    cap = await logs_cap(kube, pod)
    tails = {container: LogTail(cap) for container in container_names(pod)}

    async def follow(container: str, tail: LogTail) -> None:
        try:
            await kube.pod_log(
                str(meta["namespace"]),
                str(meta["name"]),
                container,
                tail.add,
                follow=True,
                timeout=timeout_seconds + 5,
            )
        except (KubeError, OSError, TimeoutError) as exc:
            log.info("following the log of %s/%s: %s", meta["name"], container, exc)

    tasks = [asyncio.create_task(follow(c, t)) for c, t in tails.items()]
    _, pending = await asyncio.wait(tasks, timeout=timeout_seconds)
    for task in pending:  # what they read so far is kept
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {c: t for c, t in tails.items() if t.total and log_gone(t) is None}


async def _collect_log(
    kube: KubeClient,
    collection: Collection,
    pod: Mapping[str, Any],
    container: str,
    cap: int,
    *,
    previous: bool,
    followed: LogTail | None = None,
) -> bytes:
    meta = pod["metadata"]
    name = f"logs/{container}{'.previous' if previous else ''}.log"
    tail = followed
    if tail is None:
        tail = LogTail(cap)
        await kube.pod_log(meta["namespace"], meta["name"], container, tail.add, previous=previous)
        gone = log_gone(tail)
        if gone is not None:
            collection.lack(name, f"the kubelet no longer has it: {gone}")
            return b""
    collection.add(name, tail.data())
    if tail.truncated:
        collection.notes.setdefault("truncatedLogs", {})[name] = (
            f"kept the last {len(tail.data())} of {tail.total} bytes (logsMaxBytes {cap})"
        )
    return whole_lines(tail.data(), tail.truncated)


def audit_verdict(log_bytes: bytes, key: bytes | None) -> str:
    """The gateway's audit lines (the log lines that carry a MAC) verified under `key`."""
    lines = [line for line in log_bytes.splitlines() if b'"mac"' in line]
    if not lines:
        return "not verified: the gateway's log holds no audit lines"
    if key is None:
        return f"not verified: no audit key; {len(lines)} audit line(s) kept as captured"
    # A `--workers` gateway writes one chain per worker into the same log.
    problems = sorted(
        (p for chain in split_by_worker(lines) for p in verify_audit_chain(chain, key)),
        key=lambda p: p.line,
    )
    if not problems:
        return f"intact: {len(lines)} audit line(s) verified"
    shown = "; ".join(str(p) for p in problems[:5])
    return f"broken: {len(problems)} problem(s) in {len(lines)} audit line(s): {shown}"


async def collect(
    kube: KubeClient,
    pod: Mapping[str, Any],
    *,
    timeout_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    followed_logs: Mapping[str, LogTail] | None = None,
) -> tuple[Collection, dict[str, Any] | None]:
    """Everything the bundle holds about `pod`, with a reason for each part it lacks; and the
    pod's AIWorkload (None when it could not be read). A container's log in `followed_logs`
    (see `follow_logs`) is taken as it is instead of being read again."""
    collection = Collection()
    deadline = _Deadline(timeout_seconds, clock)
    meta = pod["metadata"]
    namespace = str(meta["namespace"])
    labels = dict(meta.get("labels") or {})
    workload_name = labels.get(INJECTED_WORKLOAD_LABEL)

    redacted, paths = redact_pod(pod)
    collection.add("pod.json", bundle.canonical_json(redacted))
    collection.notes["redacted"] = paths
    collection.notes["restartCounts"] = restart_counts(pod)
    if not (pod.get("spec") or {}).get("nodeName"):
        collection.notes["node"] = "the pod was never scheduled to a node"

    workload: dict[str, Any] | None = None

    async def read_workload() -> None:
        nonlocal workload
        if not workload_name:
            collection.lack("workload.json", "the pod has no aigis.dev/workload label")
            return
        found = await kube.get_aiworkload(namespace, workload_name)
        if found is None:
            collection.lack("workload.json", f"AIWorkload {namespace}/{workload_name} not found")
            return
        workload = found
        collection.add(
            "workload.json",
            bundle.canonical_json(
                {
                    "name": workload_name,
                    "uid": (found.get("metadata") or {}).get("uid"),
                    "generation": (found.get("metadata") or {}).get("generation"),
                    "spec": found.get("spec"),
                }
            ),
        )

    await _step(collection, "workload.json", deadline, read_workload())
    forensics = ((workload or {}).get("spec") or {}).get("forensics") or {}
    cap = int(forensics.get("logsMaxBytes") or DEFAULT_LOGS_MAX_BYTES)

    counts = restart_counts(pod)
    gateway_log: bytes | None = None
    for container in container_names(pod):

        async def current(c: str = container) -> None:
            nonlocal gateway_log
            followed = (followed_logs or {}).get(c)
            kept = await _collect_log(
                kube, collection, pod, c, cap, previous=False, followed=followed
            )
            if c == GATEWAY_CONTAINER:
                gateway_log = kept

        await _step(collection, f"logs/{container}.log", deadline, current())
        if counts.get(container, 0) > 0:
            await _step(
                collection,
                f"logs/{container}.previous.log",
                deadline,
                _collect_log(kube, collection, pod, container, cap, previous=True),
            )

    async def read_events() -> None:
        found = await kube.request(
            "GET",
            namespaced_path("/api/v1", namespace, "events"),
            query={"fieldSelector": f"involvedObject.uid={meta.get('uid')}"},
        )
        items = sorted(
            (found or {}).get("items") or [],
            key=lambda e: (
                str(e.get("firstTimestamp") or e.get("eventTime") or ""),
                str(e["metadata"]["name"]),
            ),
        )
        for event in items:
            event.get("metadata", {}).pop("managedFields", None)
        collection.add("events.json", bundle.canonical_json(items))

    await _step(collection, "events.json", deadline, read_events())

    async def read_policies() -> None:
        found = await kube.request(
            "GET", namespaced_path("/apis/networking.k8s.io/v1", namespace, "networkpolicies")
        )
        chosen = selecting_policies((found or {}).get("items") or [], labels)
        collection.add("networkpolicies.json", bundle.canonical_json(chosen))

    await _step(collection, "networkpolicies.json", deadline, read_policies())

    if GATEWAY_CONTAINER in container_names(pod):

        async def verify_audit() -> None:
            key = None
            if workload_name:
                secret = await kube.get_secret(namespace, audit_key_secret_name(workload_name))
                encoded = ((secret or {}).get("data") or {}).get(AUDIT_KEY_SECRET_KEY)
                key = base64.b64decode(encoded) if isinstance(encoded, str) else None
            collection.notes["auditChain"] = (
                audit_verdict(gateway_log, key)
                if gateway_log is not None
                else "not verified: the gateway's log could not be read"
            )

        await _step(collection, "audit chain", deadline, verify_audit())
    else:
        collection.notes["auditChain"] = "no gateway container in the pod"

    if forensics.get("checkpoint"):
        await _step(collection, "checkpoint", deadline, _checkpoint(kube, collection, pod))
    return collection, workload


async def _checkpoint(kube: KubeClient, collection: Collection, pod: Mapping[str, Any]) -> None:
    """Ask the kubelet (through the API server's node proxy) to checkpoint each container.

    The kubelet writes the checkpoint archive on its node and answers with its path; the bundle
    records the paths, or why there are none (the feature is off, the runtime lacks it, the
    pod is gone).
    """
    meta = pod["metadata"]
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        collection.lack("checkpoint", "the pod has no node to checkpoint on")
        return
    results = {}
    for container in container_names(pod):
        path = (
            f"/api/v1/nodes/{quote(node)}/proxy/checkpoint/"
            f"{quote(meta['namespace'])}/{quote(meta['name'])}/{quote(container)}"
        )
        try:
            answer = await kube.request("POST", path, timeout=60)
            results[container] = {"checkpoint": (answer or {}).get("items")}
        except KubeError as exc:
            results[container] = {"unsupported": f"{exc.status} {bundle_reason(exc)}"}
    collection.add("checkpoint.json", bundle.canonical_json(results))
    failed = [c for c, r in results.items() if "unsupported" in r]
    if failed:
        collection.lack("checkpoint", f"the kubelet did not checkpoint {', '.join(failed)}")


# --- the whole capture ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sealed:
    """A signed bundle and what its snapshot records about it."""

    artifacts: list[bundle.Artifact]
    manifest: bytes
    signature: bytes
    data: bytes
    key_id: str


def _seal(
    collection: Collection,
    pod: Mapping[str, Any],
    trigger: str,
    captured_at: datetime,
    key: Ed25519PrivateKey,
) -> _Sealed:
    """Build and sign the bundle of what `collection` holds."""
    artifacts = [bundle.Artifact(n, d) for n, d in sorted(collection.artifacts.items())]
    key_id = bundle.key_id(key.public_key())
    manifest = bundle.build_manifest(
        artifacts,
        capture_facts(
            pod=pod,
            trigger=trigger,
            captured_at=captured_at,
            collection=collection,
            key_id=key_id,
            workload=(pod["metadata"].get("labels") or {}).get(INJECTED_WORKLOAD_LABEL),
        ),
    )
    signature = bundle.sign(manifest, key)
    return _Sealed(
        artifacts, manifest, signature, bundle.build_bundle(artifacts, manifest, signature), key_id
    )


async def capture_pod(
    kube: KubeClient,
    stores: EvidenceStores,
    pod: Mapping[str, Any],
    *,
    snapshot_name: str,
    trigger: str,
    settings: CaptureSettings,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    snapshot_namespace: str | None = None,
    followed_logs: Mapping[str, LogTail] | None = None,
) -> CaptureOutcome:
    """Capture `pod` into ForensicSnapshot `snapshot_name` (created if needed) and store it
    where its AIWorkload's `spec.forensics.storage` says.

    Returns at once when that snapshot is already stored. A backend that cannot be used (no
    credentials Secret, no bucket) is a recorded reason, and the bundle goes to Secrets instead.
    Raises `KubeError` or `StorageError` only when the snapshot or the bundle could not be
    written at all.
    """
    meta = pod["metadata"]
    namespace = snapshot_namespace or str(meta["namespace"])
    snapshot = await ensure_snapshot(kube, namespace, snapshot_name, pod, trigger)
    status = snapshot.get("status") or {}
    if status.get("phase") == "Stored":
        return CaptureOutcome(
            snapshot_name,
            namespace,
            bool(status.get("complete")),
            int(status.get("sizeBytes") or 0),
            tuple(status.get("reasons") or ()),
            resumed=True,
            backend=str((status.get("storage") or {}).get("backend") or "Secrets"),
        )
    await patch_snapshot_status(
        kube, namespace, snapshot_name, {"phase": "Capturing", "message": "collecting evidence"}
    )
    collection, workload = await collect(
        kube, pod, timeout_seconds=settings.timeout_seconds, followed_logs=followed_logs
    )
    try:
        storage = await stores.for_workload(str(meta["namespace"]), workload)
    except StorageError as exc:
        collection.lack("storage", f"{exc}; the bundle is kept in Secrets instead")
        storage = stores.secrets
    key = await ensure_signing_key(kube, settings.signing_namespace or namespace)
    # Whole seconds: expiresAt (RFC 3339, seconds) is then exactly the Object Lock's end.
    captured_at = now().replace(microsecond=0)
    retention = int(
        (((workload or {}).get("spec") or {}).get("forensics") or {}).get("retentionDays")
        or DEFAULT_RETENTION_DAYS
    )
    expires = expiry(captured_at, retention)
    sealed = _seal(collection, pod, trigger, captured_at, key)
    try:
        location = await storage.store(namespace, snapshot, sealed.data, retain_until=expires)
    except StorageError as exc:
        if storage is stores.secrets:
            raise
        # The evidence matters more than where it is kept: record why, and seal again so that
        # the signed manifest says the same as the snapshot.
        log.warning("storing snapshot %s/%s in S3 failed: %s", namespace, snapshot_name, exc)
        collection.lack("storage", f"{exc}; the bundle is kept in Secrets instead")
        sealed = _seal(collection, pod, trigger, captured_at, key)
        location = await stores.secrets.store(
            namespace, snapshot, sealed.data, retain_until=expires
        )
    reasons = list(collection.missing)
    await patch_snapshot_status(
        kube,
        namespace,
        snapshot_name,
        {
            "phase": "Stored",
            "complete": collection.complete,
            "reasons": [r[:1024] for r in reasons[:256]],
            "capturedAt": rfc3339(captured_at),
            "expiresAt": rfc3339(expires),
            "nodeName": (pod.get("spec") or {}).get("nodeName"),
            "artifacts": [
                {"name": a.name, "sha256": a.sha256, "size": len(a.data)} for a in sealed.artifacts
            ],
            "manifestSha256": hashlib.sha256(sealed.manifest).hexdigest(),
            "signature": sealed.signature.decode(),
            "signingKeyId": sealed.key_id,
            "auditChain": str(collection.notes.get("auditChain", ""))[:1024],
            "storage": location,
            "sizeBytes": len(sealed.data),
            "message": summarize(collection.complete, reasons, len(sealed.data)),
        },
    )
    return CaptureOutcome(
        snapshot_name,
        namespace,
        collection.complete,
        len(sealed.data),
        tuple(reasons),
        resumed=False,
        backend=str(location.get("backend") or storage.backend),
    )


async def load_bundle(
    kube: KubeClient, stores: EvidenceStores, namespace: str, name: str
) -> tuple[dict[str, Any], bytes]:
    """A stored snapshot and its bundle's bytes, read from the backend its `status.storage`
    names; `LookupError` when there is no stored one, `StorageError` when it cannot be read."""
    snapshot = await kube.request("GET", snapshots_path(namespace, name))
    if snapshot is None:
        raise LookupError(f"ForensicSnapshot {namespace}/{name} not found")
    status = snapshot.get("status") or {}
    if status.get("phase") != "Stored" or not status.get("storage"):
        raise LookupError(f"ForensicSnapshot {namespace}/{name} has no stored bundle yet")
    storage = await stores.for_location(status["storage"])
    return snapshot, await storage.load(namespace, status["storage"])
