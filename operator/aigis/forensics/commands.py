"""What `aigis forensics list|export|verify` do, below click.

An exported snapshot is a directory anyone can check without the cluster: manifest.json,
manifest.sig, artifacts/..., the bundle as stored (bundle.tar.gz), and the signing public key
published when it was exported (signing-key.pub). `verify` checks the same things for a stored
snapshot and for a directory: every artifact's digest and size against the manifest, and the
manifest's signature; a changed byte is reported under the artifact's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aigis.forensics import bundle
from aigis.forensics.backends import EvidenceStores
from aigis.forensics.capture import SNAPSHOTS, load_bundle
from aigis.forensics.signing import public_key_from_text, public_key_text, published_public_key
from aigis.kube import KubeClient, namespaced_path

BUNDLE_FILE = "bundle.tar.gz"
PUBLIC_KEY_FILE = "signing-key.pub"


# --- pure ---------------------------------------------------------------------------------


def snapshot_row(snapshot: Mapping[str, Any], now: datetime) -> list[str]:
    meta, spec = snapshot.get("metadata") or {}, snapshot.get("spec") or {}
    status = snapshot.get("status") or {}
    created = meta.get("creationTimestamp")
    age = "?"
    if isinstance(created, str):
        seconds = (now - datetime.fromisoformat(created)).total_seconds()
        age = f"{seconds / 86400:.0f}d" if seconds >= 86400 else f"{seconds / 60:.0f}m"
    complete = status.get("complete")
    return [
        str(meta.get("namespace")),
        str(meta.get("name")),
        str((spec.get("pod") or {}).get("name")),
        str(spec.get("trigger")),
        str(status.get("phase") or "Pending"),
        "-" if complete is None else str(complete).lower(),
        str(status.get("sizeBytes") or "-"),
        age,
    ]


def table(rows: list[list[str]]) -> str:
    header = ["NAMESPACE", "NAME", "POD", "TRIGGER", "PHASE", "COMPLETE", "SIZE", "AGE"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )


def tree_files(parts: bundle.Bundle) -> dict[str, bytes]:
    """The exported directory's files (besides bundle.tar.gz and the key)."""
    files = {bundle.MANIFEST: parts.manifest, bundle.SIGNATURE: parts.signature}
    for name, data in parts.artifacts.items():
        files[bundle.ARTIFACT_DIR + name] = data
    return files


def read_tree(directory: Path) -> bundle.Bundle:
    """A bundle from an exported directory; `ValueError` when manifest or signature lack."""
    manifest, signature = directory / bundle.MANIFEST, directory / bundle.SIGNATURE
    if not manifest.is_file() or not signature.is_file():
        raise ValueError(f"{directory} holds no {bundle.MANIFEST} and {bundle.SIGNATURE}")
    root = directory / bundle.ARTIFACT_DIR
    artifacts = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    return bundle.Bundle(manifest.read_bytes(), signature.read_bytes(), artifacts)


# --- shell ----------------------------------------------------------------------------------


async def list_snapshots(kube: KubeClient, namespace: str | None) -> list[dict[str, Any]]:
    found = await kube.request("GET", namespaced_path(SNAPSHOTS, namespace, "forensicsnapshots"))
    items = list((found or {}).get("items") or [])
    return sorted(items, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"]))


async def signing_key_for(
    kube: KubeClient, snapshot_namespace: str, signing_namespace: str | None
) -> Ed25519PublicKey | None:
    return await published_public_key(kube, signing_namespace or snapshot_namespace)


async def export_snapshot(
    kube: KubeClient,
    namespace: str,
    name: str,
    out: Path,
    signing_namespace: str | None,
    s3_endpoint: str | None = None,
) -> list[Path]:
    """Write the snapshot's bundle, unpacked, into `out`; the files written."""
    stores = EvidenceStores(kube, s3_endpoint=s3_endpoint)
    _snapshot, data = await load_bundle(kube, stores, namespace, name)
    parts = bundle.read_bundle(data)
    files = tree_files(parts)
    files[BUNDLE_FILE] = data
    key = await signing_key_for(kube, namespace, signing_namespace)
    if key is not None:
        files[PUBLIC_KEY_FILE] = (public_key_text(key) + "\n").encode()
    written = []
    for relative, content in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written


async def verify_snapshot(
    kube: KubeClient,
    namespace: str,
    name: str,
    signing_namespace: str | None,
    s3_endpoint: str | None = None,
) -> list[bundle.Problem]:
    """Verify a stored snapshot, read from the backend it names, under the published public
    key."""
    stores = EvidenceStores(kube, s3_endpoint=s3_endpoint)
    snapshot, data = await load_bundle(kube, stores, namespace, name)
    key = await signing_key_for(kube, namespace, signing_namespace)
    if key is None:
        return [bundle.Problem(bundle.SIGNATURE, "no published public key to verify with")]
    try:
        parts = bundle.read_bundle(data)
    except ValueError as exc:
        return [bundle.Problem(BUNDLE_FILE, str(exc))]
    problems = bundle.verify(parts, key)
    recorded = (snapshot.get("status") or {}).get("signingKeyId")
    if recorded and recorded != bundle.key_id(key):
        problems.append(
            bundle.Problem(bundle.SIGNATURE, "signed with a key other than the published one")
        )
    return problems


def verify_directory(directory: Path, public_key: Path | None) -> list[bundle.Problem]:
    """Verify an exported directory under `public_key` (default: its signing-key.pub)."""
    key_file = public_key or directory / PUBLIC_KEY_FILE
    try:
        key = public_key_from_text(key_file.read_text())
    except (OSError, ValueError) as exc:
        return [bundle.Problem(str(key_file), f"no usable public key: {exc}")]
    try:
        parts = read_tree(directory)
    except ValueError as exc:
        return [bundle.Problem(str(directory), str(exc))]
    return bundle.verify(parts, key)
