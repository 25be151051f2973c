"""The evidence bundle: a deterministic tar.gz of artifacts with a signed manifest.

Layout of a bundle:

    manifest.json        what the bundle holds: every artifact's name, SHA-256 and size, the pod,
                         the trigger, the capture time, completeness and the reasons
    manifest.sig         the Ed25519 signature of manifest.json's exact bytes, base64
    artifacts/<name>     the artifacts

The same artifacts and manifest always give the same bytes (names sorted, mtime 0, uid/gid 0,
fixed modes, gzip without a timestamp), so a bundle can be rebuilt and compared. Pure: no I/O,
no clock; signing takes the key, verification the public key.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"
ARTIFACT_DIR: Final = "artifacts/"
FORMAT: Final = "aigis.dev/evidence-bundle/v1"
MAX_MEMBER_BYTES: Final = 2 * 1024 * 1024 * 1024
"""A member larger than this is refused when reading (a bundle is made of capped logs)."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """One captured file: its path under artifacts/ and its bytes."""

    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a bundle does not verify, naming the file concerned."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle's parts as read back: the manifest's bytes, its signature and the artifacts."""

    manifest: bytes
    signature: bytes
    artifacts: dict[str, bytes] = field(default_factory=dict)

    def manifest_json(self) -> dict[str, Any]:
        loaded = orjson.loads(self.manifest)
        if not isinstance(loaded, dict):
            raise ValueError("manifest.json is not a JSON object")
        return loaded


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, a final newline: the bytes that are signed."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


def build_manifest(artifacts: Sequence[Artifact], facts: Mapping[str, Any]) -> bytes:
    """manifest.json: `facts` (pod, trigger, capturedAt, complete, reasons, ...) plus the list
    of artifacts, sorted by name, each with its SHA-256 and size."""
    listed = [
        {"name": a.name, "sha256": a.sha256, "size": len(a.data)}
        for a in sorted(artifacts, key=lambda a: a.name)
    ]
    names = [a["name"] for a in listed]
    if len(set(names)) != len(names):
        raise ValueError("two artifacts have the same name")
    return canonical_json({**facts, "format": FORMAT, "artifacts": listed})


def sign(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """The base64 Ed25519 signature of the manifest's bytes (as stored in manifest.sig)."""
    return base64.b64encode(key.sign(manifest))


def key_id(public_key: Ed25519PublicKey) -> str:
    """The SHA-256 of the raw 32-byte public key, hex: how manifests and snapshots name it."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info, io.BytesIO(data)


def build_bundle(artifacts: Iterable[Artifact], manifest: bytes, signature: bytes) -> bytes:
    """The tar.gz bytes: manifest, signature, then the artifacts sorted by name."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(*_member(MANIFEST, manifest))
        tar.addfile(*_member(SIGNATURE, signature))
        for artifact in sorted(artifacts, key=lambda a: a.name):
            tar.addfile(*_member(ARTIFACT_DIR + artifact.name, artifact.data))
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


def read_bundle(data: bytes) -> Bundle:
    """The parts of a tar.gz bundle; `ValueError` when it is not one (bad gzip, bad tar, a
    missing manifest or signature, a member that is not a plain file)."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    raise ValueError(f"{info.name}: not a plain file")
                if info.size > MAX_MEMBER_BYTES or info.name in files:
                    raise ValueError(f"{info.name}: too large or repeated")
                extracted = tar.extractfile(info)
                assert extracted is not None
                files[info.name] = extracted.read()
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise ValueError(f"not a readable tar.gz bundle: {exc}") from exc
    if MANIFEST not in files or SIGNATURE not in files:
        raise ValueError(f"the bundle lacks {MANIFEST} or {SIGNATURE}")
    artifacts = {
        name.removeprefix(ARTIFACT_DIR): body
        for name, body in files.items()
        if name.startswith(ARTIFACT_DIR)
    }
    return Bundle(files[MANIFEST], files[SIGNATURE], artifacts)


def verify(bundle: Bundle, public_key: Ed25519PublicKey) -> list[Problem]:
    """Everything wrong with a bundle under `public_key`; empty when it verifies.

    The signature covers manifest.json; the manifest covers every artifact by digest and size.
    So a changed byte anywhere is reported: in manifest.json as a bad signature, in an artifact
    under that artifact's name. Artifacts present but not listed, and listed but absent, are
    reported too.
    """
    problems: list[Problem] = []
    try:
        public_key.verify(base64.b64decode(bundle.signature, validate=True), bundle.manifest)
    except (InvalidSignature, ValueError):
        problems.append(
            Problem(MANIFEST, f"the signature does not match (key {key_id(public_key)[:16]})")
        )
    try:
        manifest = bundle.manifest_json()
        listed = manifest.get("artifacts")
        if not isinstance(listed, list):
            raise ValueError("manifest.json has no artifact list")
    except ValueError as exc:
        return [*problems, Problem(MANIFEST, str(exc))]
    seen = set()
    for entry in listed:
        name = str(entry.get("name")) if isinstance(entry, Mapping) else "?"
        seen.add(name)
        body = bundle.artifacts.get(name)
        if body is None:
            problems.append(Problem(name, "listed in the manifest but missing"))
            continue
        if len(body) != entry.get("size"):
            problems.append(
                Problem(name, f"size {len(body)} differs from the manifest's {entry.get('size')}")
            )
        if hashlib.sha256(body).hexdigest() != entry.get("sha256"):
            problems.append(Problem(name, "SHA-256 differs from the manifest: the file changed"))
    for name in sorted(set(bundle.artifacts) - seen):
        problems.append(Problem(name, "present but not listed in the manifest"))
    return problems
