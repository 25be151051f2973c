"""Where evidence bundles' bytes are kept: a backend behind one small interface.

A backend stores a bundle under a snapshot's name, reads it back, and deletes it. It returns the
location recorded in the ForensicSnapshot's `status.storage`, and is given that location back to
read or delete, so a snapshot always says where its bytes are.

`SecretStorage` (the default) needs nothing outside the cluster: the bundle is cut into chunks
well under the API server's 1 MiB object limit, each in a Secret owned by the ForensicSnapshot
(so the garbage collector removes them with it, even when aigis does not), named
`<snapshot>-<index>` and labelled with the snapshot's name. Writing is idempotent: a capture that
restarts writes the same names again.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Protocol

from aigis.forensics.evidence import SNAPSHOT_LABEL, chunks
from aigis.kube import KubeClient, namespaced_path

CHUNK_BYTES: Final = 768 * 1024
"""Raw bytes per Secret: base64 makes them 1 MiB of JSON, under etcd's 1.5 MB request limit,
and Secret data itself is capped at 1 MiB."""
CHUNK_KEY: Final = "chunk"
_MAX_NAME: Final = 253


class StorageError(RuntimeError):
    """The backend could not store, read or delete a bundle."""


class EvidenceStorage(Protocol):
    """What the capture and the CLI need from a backend."""

    backend: str

    async def store(
        self,
        namespace: str,
        snapshot: Mapping[str, Any],
        data: bytes,
        retain_until: datetime | None = None,
    ) -> dict[str, Any]:
        """Store `data` for `snapshot` (its metadata: name, uid), kept at least until
        `retain_until` where the backend can promise it; the location to record."""
        ...

    async def load(self, namespace: str, location: Mapping[str, Any]) -> bytes: ...

    async def delete(self, namespace: str, location: Mapping[str, Any]) -> None: ...


def chunk_name(snapshot: str, index: int) -> str:
    suffix = f"-{index}"
    return snapshot[: _MAX_NAME - len(suffix)] + suffix


def chunk_secret(
    namespace: str, snapshot: Mapping[str, Any], index: int, data: bytes
) -> dict[str, Any]:
    """One chunk's Secret, owned by the snapshot."""
    meta = snapshot["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": chunk_name(meta["name"], index),
            "namespace": namespace,
            "labels": {SNAPSHOT_LABEL: meta["name"][:63]},
            "ownerReferences": [
                {
                    "apiVersion": "aigis.dev/v1alpha1",
                    "kind": "ForensicSnapshot",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "type": "aigis.dev/evidence-chunk",
        "data": {CHUNK_KEY: base64.b64encode(data).decode()},
    }


class SecretStorage:
    """Bundles as chunked Secrets next to their ForensicSnapshot."""

    backend = "Secrets"

    def __init__(self, kube: KubeClient, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._kube = kube
        self._chunk_bytes = chunk_bytes

    async def store(
        self,
        namespace: str,
        snapshot: Mapping[str, Any],
        data: bytes,
        retain_until: datetime | None = None,
    ) -> dict[str, Any]:
        # Secrets have no retention lock: anyone who may delete them can; `retain_until` is
        # enforced by the operator's expiry alone.
        names = []
        for index, piece in enumerate(chunks(data, self._chunk_bytes)):
            manifest = chunk_secret(namespace, snapshot, index, piece)
            name = manifest["metadata"]["name"]
            await self._kube.apply(namespaced_path("/api/v1", namespace, "secrets", name), manifest)
            names.append(name)
        return {"backend": self.backend, "objects": names}

    async def load(self, namespace: str, location: Mapping[str, Any]) -> bytes:
        parts = []
        for name in location.get("objects") or []:
            secret = await self._kube.get_secret(namespace, str(name))
            encoded = ((secret or {}).get("data") or {}).get(CHUNK_KEY)
            if not isinstance(encoded, str):
                raise StorageError(f"chunk Secret {namespace}/{name} is missing or empty")
            parts.append(base64.b64decode(encoded))
        return b"".join(parts)

    async def delete(self, namespace: str, location: Mapping[str, Any]) -> None:
        for name in location.get("objects") or []:
            await self._kube.request(
                "DELETE", namespaced_path("/api/v1", namespace, "secrets", str(name))
            )
