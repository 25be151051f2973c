"""What goes into an evidence bundle, decided from plain data.

Redacting a pod manifest, keeping the tail of a log within its cap, which NetworkPolicies selected
a pod, how a snapshot is named, when it expires, how its bytes are chunked. Pure: the capture
shell (`aigis.forensics.capture`) reads the world and calls these.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

REDACTED: Final = "[REDACTED by aigis]"
SNAPSHOT_PREFIX: Final = "fsnap-"
CAPTURE_ANNOTATION: Final = "aigis.dev/capture"
"""On a running pod, `now` asks for an on-demand capture."""
CAPTURE_NOW: Final = "now"
SNAPSHOT_LABEL: Final = "aigis.dev/forensic-snapshot"
"""On the Secrets holding a snapshot's bytes: the snapshot's name."""
POD_UID_LABEL: Final = "aigis.dev/pod-uid"

_SECRET_NAME = re.compile(
    r"(key|token|secret|passw(or)?d|credential|auth|private|session|cookie|signature|bearer)",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_-]{8,}|sk-ant-[A-Za-z0-9_-]{8,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|Bearer\s+\S{8,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\..*)$"
)
_DROPPED_ANNOTATIONS: Final = ("kubectl.kubernetes.io/last-applied-configuration",)
_CONTAINER_LISTS: Final = ("initContainers", "containers", "ephemeralContainers")


def looks_secret(name: str, value: str) -> bool:
    """An env var whose name or value suggests a key, token or password."""
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.match(value.strip()))


def redact_pod(pod: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The pod without secrets in it, and the field paths that were redacted.

    Literal env values that look like keys or tokens are replaced; references (`valueFrom`) are
    kept, since they name a Secret without holding its contents. `managedFields` and the
    last-applied annotation (a second copy of the env) are dropped.
    """
    redacted = copy.deepcopy(dict(pod))
    paths: list[str] = []
    meta = redacted.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            for key in _DROPPED_ANNOTATIONS:
                if annotations.pop(key, None) is not None:
                    paths.append(f"metadata.annotations[{key}]")
    spec = redacted.get("spec")
    if not isinstance(spec, dict):
        return redacted, paths
    for kind in _CONTAINER_LISTS:
        for i, container in enumerate(spec.get(kind) or []):
            if not isinstance(container, dict):
                continue
            for j, env in enumerate(container.get("env") or []):
                if not isinstance(env, dict) or not isinstance(env.get("value"), str):
                    continue
                if env["value"] and looks_secret(str(env.get("name", "")), env["value"]):
                    env["value"] = REDACTED
                    paths.append(f"spec.{kind}[{i}].env[{j}].value")
    return redacted, paths


def container_names(pod: Mapping[str, Any]) -> list[str]:
    """Every container of the pod, init and ephemeral ones included, in spec order."""
    spec = pod.get("spec") or {}
    return [
        str(c["name"])
        for kind in _CONTAINER_LISTS
        for c in spec.get(kind) or []
        if isinstance(c, Mapping) and c.get("name")
    ]


def restart_counts(pod: Mapping[str, Any]) -> dict[str, int]:
    """Each container's restart count, from every kind of container status."""
    status = pod.get("status") or {}
    counts: dict[str, int] = {}
    for kind in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for s in status.get(kind) or []:
            if isinstance(s, Mapping) and s.get("name"):
                counts[str(s["name"])] = int(s.get("restartCount") or 0)
    return counts


def containers_stopped(pod: Mapping[str, Any]) -> bool:
    """No container of the pod is running any more (or none ever started)."""
    status = pod.get("status") or {}
    for kind in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for s in status.get(kind) or []:
            if isinstance(s, Mapping) and "running" in (s.get("state") or {}):
                return False
    return True


class LogTail:
    """The last `cap` bytes of a stream, with the total length seen: memory stays at `cap`."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.total = 0
        self._kept = bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._kept += chunk
        if len(self._kept) > self.cap:
            del self._kept[: len(self._kept) - self.cap]

    @property
    def truncated(self) -> bool:
        return self.total > len(self._kept)

    def data(self) -> bytes:
        return bytes(self._kept)


def whole_lines(data: bytes, truncated: bool) -> bytes:
    """Without the partial first line a truncated (tail-kept) log starts with."""
    if not truncated:
        return data
    _, newline, rest = data.partition(b"\n")
    return rest if newline else b""


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics over plain dicts; an empty selector matches all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.get("matchExpressions") or []:
        key, op, values = req.get("key"), req.get("operator"), req.get("values") or []
        present = key in labels
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def selecting_policies(
    policies: Iterable[Mapping[str, Any]], labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The NetworkPolicies (of the pod's namespace) whose podSelector selects these labels,
    sorted by name, without managedFields."""
    found = []
    for policy in policies:
        if selector_matches((policy.get("spec") or {}).get("podSelector"), labels):
            kept = copy.deepcopy(dict(policy))
            (kept.get("metadata") or {}).pop("managedFields", None)
            found.append(kept)
    return sorted(found, key=lambda p: str((p.get("metadata") or {}).get("name")))


def termination_snapshot_name(pod_uid: str) -> str:
    """The one snapshot of a pod's termination: named from its UID, so a capture that restarts
    (operator restart, retried event) finds and finishes the same snapshot."""
    return f"{SNAPSHOT_PREFIX}{pod_uid}"


def on_demand_snapshot_name(pod_uid: str, pod_resource_version: str) -> str:
    """An on-demand snapshot of a running pod, named from its UID and the pod version that
    asked: the same request read twice gives the same name."""
    return f"{SNAPSHOT_PREFIX}{pod_uid}-{pod_resource_version}"[:253]


def expiry(captured: datetime, retention_days: int) -> datetime:
    return captured + timedelta(days=retention_days)


def is_expired(snapshot: Mapping[str, Any], now: datetime) -> bool:
    """Whether a ForensicSnapshot's `status.expiresAt` has passed (unreadable: not expired)."""
    stamp = (snapshot.get("status") or {}).get("expiresAt")
    if not isinstance(stamp, str):
        return False
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return False
    return when.tzinfo is not None and when <= now


def chunks(data: bytes, size: int) -> list[bytes]:
    """`data` cut into pieces of at most `size` bytes (one empty piece for empty data)."""
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Collection:
    """What a capture gathered so far: the artifacts, and a reason for each one it could not
    take. Incomplete exactly when some reason was recorded."""

    artifacts: dict[str, bytes] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    """Facts for the manifest that are not files (redacted paths, truncations, audit result)."""

    def add(self, name: str, data: bytes) -> None:
        self.artifacts[name] = data

    def lack(self, name: str, reason: str) -> None:
        self.missing.append(f"{name}: {reason}")

    @property
    def complete(self) -> bool:
        return not self.missing


def capture_facts(
    *,
    pod: Mapping[str, Any],
    trigger: str,
    captured_at: datetime,
    collection: Collection,
    key_id: str,
    workload: str | None,
) -> dict[str, Any]:
    """The manifest's facts besides the artifact list."""
    meta = pod.get("metadata") or {}
    return {
        "pod": {
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "node": (pod.get("spec") or {}).get("nodeName"),
            "deletionTimestamp": meta.get("deletionTimestamp"),
        },
        "workload": workload,
        "trigger": trigger,
        "capturedAt": rfc3339(captured_at),
        "complete": collection.complete,
        "reasons": list(collection.missing),
        "notes": dict(sorted(collection.notes.items())),
        "signingKeyId": key_id,
    }


def summarize(complete: bool, reasons: Sequence[str], size: int) -> str:
    if complete:
        return f"complete bundle stored ({size} bytes)"
    return f"incomplete bundle stored ({size} bytes): {len(reasons)} artifact(s) missing"
