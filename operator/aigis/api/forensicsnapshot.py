"""The ForensicSnapshot resource: the record of one forensic capture of a pod.

The spec names the pod and why it was captured; creating one by hand (with `trigger: OnDemand`)
asks the operator to capture that pod now, without stopping it. The status is written by the
operator only: which artifacts the evidence bundle holds and their digests, the manifest's
signature, where the bundle's bytes are stored, whether the capture is complete (and why not),
and when the snapshot expires. The bytes themselves are never in this object.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from aigis.api.common import MAX_TEXT, ApiModel, KubernetesObject, Name, ResourceKind, Text

FORENSICSNAPSHOT = ResourceKind(
    kind="ForensicSnapshot", plural="forensicsnapshots", short_names=("fsnap",)
)

Trigger = Literal["Termination", "OnDemand"]
Phase = Literal["Capturing", "Stored", "Failed"]
StorageBackend = Literal["Secrets", "S3"]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", min_length=64, max_length=64)]
Timestamp = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]


class PodReference(ApiModel):
    """The captured pod, in the snapshot's namespace."""

    name: Name
    """The pod's name."""
    uid: Annotated[str, Field(max_length=64)] | None = None
    """The pod's UID when the capture began; a pod of the same name that replaced it is not
    captured in its place."""


class ForensicSnapshotSpec(ApiModel):
    """What to capture and why."""

    pod: PodReference
    """The pod to capture."""
    trigger: Trigger = "OnDemand"
    """Termination (the operator, when a covered pod is deleted) or OnDemand (a person or a
    tool, through this object or the pod annotation aigis.dev/capture=now)."""


class ArtifactRecord(ApiModel):
    """One file of the evidence bundle."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    """The path of the file inside the bundle."""
    sha256: Sha256
    """Its SHA-256 digest, hex."""
    size: int = Field(ge=0)
    """Its size in bytes."""


class CredentialsSecretReference(ApiModel):
    """The Secret whose keys read the bucket (S3)."""

    namespace: Name
    """Its namespace: the AIWorkload's."""
    name: Name
    """Its name."""


class StorageLocation(ApiModel):
    """Where the bundle's bytes are."""

    backend: StorageBackend
    """Secrets: chunked into Secrets owned by this snapshot, in its namespace. S3: an object in an
    S3-compatible bucket."""
    objects: list[Annotated[str, Field(max_length=MAX_TEXT)]] = Field(
        default_factory=list, max_length=4096
    )
    """The Secret names in order (Secrets), or the object key (S3)."""
    bucket: Annotated[str, Field(max_length=255)] | None = None
    """The bucket (S3)."""
    version_id: Annotated[str, Field(max_length=1024)] | None = None
    """The object's version (S3 with Object Lock): the version the retention protects."""
    endpoint: Annotated[str, Field(max_length=512)] | None = None
    """The S3 API's URL (S3); AWS S3 when absent."""
    region: Annotated[str, Field(max_length=64)] | None = None
    """The bucket's region (S3)."""
    credentials_secret: CredentialsSecretReference | None = None
    """The Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY that reads the bucket (S3);
    `aigis forensics export|verify` and the operator's expiry read it."""
    object_lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] | None = None
    """The Object Lock retention mode of the stored version (S3); absent: not locked."""
    retain_until: Timestamp | None = None
    """Until when the stored version is locked (RFC 3339)."""


class ForensicSnapshotStatus(ApiModel):
    """The outcome of the capture, written by the operator."""

    phase: Phase | None = None
    """Capturing while the operator collects; Stored once the bundle is stored (complete or
    not); Failed when nothing could be stored."""
    complete: bool | None = None
    """Whether every expected artifact was captured."""
    reasons: list[Text] = Field(default_factory=list, max_length=256)
    """Why the capture is incomplete or failed: one entry per missing artifact."""
    captured_at: Timestamp | None = None
    """When the capture ended (RFC 3339)."""
    expires_at: Timestamp | None = None
    """When the snapshot and its bytes are deleted (RFC 3339)."""
    node_name: Annotated[str, Field(max_length=253)] | None = None
    """The node the pod ran on."""
    artifacts: list[ArtifactRecord] = Field(default_factory=list, max_length=512)
    """The files of the bundle with their digests (the signed manifest lists the same)."""
    manifest_sha256: Sha256 | None = None
    """The SHA-256 of the bundle's manifest.json."""
    signature: Annotated[str, Field(max_length=128)] | None = None
    """The Ed25519 signature of manifest.json, base64."""
    signing_key_id: Annotated[str, Field(max_length=64)] | None = None
    """The SHA-256 of the signing public key, hex; published in the ConfigMap
    aigis-forensics-public-key."""
    audit_chain: Text | None = None
    """The verification result of the gateway's audit lines."""
    storage: StorageLocation | None = None
    """Where the bundle is stored."""
    size_bytes: int | None = Field(None, ge=0)
    """The size of the stored bundle (tar.gz), in bytes."""
    message: Text = ""
    """A summary for humans."""


class ForensicSnapshot(KubernetesObject):
    """A forensic capture of a pod: the signed evidence bundle's record and where it is."""

    resource = FORENSICSNAPSHOT

    api_version: Literal["aigis.dev/v1alpha1"] = "aigis.dev/v1alpha1"
    """The API version."""
    kind: Literal["ForensicSnapshot"] = "ForensicSnapshot"
    """The resource kind."""
    spec: ForensicSnapshotSpec
    """What to capture."""
    status: ForensicSnapshotStatus | None = None
    """Written by aigis."""
