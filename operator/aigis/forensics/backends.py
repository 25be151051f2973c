"""Which backend a bundle goes to, and which one it is read back from.

A capture stores where the pod's AIWorkload says (`spec.forensics.storage`: Secrets, or an S3
bucket with the keys in a Secret of the workload's namespace). Reading, exporting, verifying and
expiring go where the ForensicSnapshot's `status.storage` says, never where the workload says
now: a workload that moves to another backend leaves its older snapshots readable.

Pure: `storage_spec`, `decode_credentials`, `settings_for_workload`, `settings_for_location`.
Shell: `EvidenceStores`, which reads the credentials Secret and keeps one S3 client per
(endpoint, bucket, keys). Problems are `StorageError`s whose message names what is missing and
the fix; the capture records them as reasons and keeps the bundle in Secrets instead.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any, Final

from aigis.forensics.s3 import S3Settings, S3Storage
from aigis.forensics.storage import EvidenceStorage, SecretStorage, StorageError
from aigis.kube import KubeClient, KubeError

ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 (a key name, not a value)
DEFAULT_REGION: Final = "us-east-1"
_MAX_CLIENTS: Final = 64

S3Factory = Callable[[S3Settings], EvidenceStorage]


# --- pure ---------------------------------------------------------------------------------


def storage_spec(workload: Mapping[str, Any] | None) -> dict[str, Any]:
    """The workload's `spec.forensics.storage`; Secrets when it has none (or is unknown)."""
    spec = ((workload or {}).get("spec") or {}).get("forensics") or {}
    found = spec.get("storage")
    return dict(found) if isinstance(found, Mapping) and found else {"type": "Secrets"}


def decode_credentials(
    secret: Mapping[str, Any] | None, namespace: str, name: str
) -> tuple[str, str]:
    """The access key id and secret key from a credentials Secret, or a `StorageError`
    saying what to fix."""
    where = f"credentials Secret {namespace}/{name}"
    if secret is None:
        raise StorageError(
            f"{where} not found; create it with keys {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY}"
        )
    data = secret.get("data") or {}
    values = []
    for key in (ACCESS_KEY_ID, SECRET_ACCESS_KEY):
        encoded = data.get(key)
        try:
            value = base64.b64decode(encoded, validate=True).decode() if encoded else ""
        except (binascii.Error, UnicodeDecodeError, TypeError):
            value = ""
        if not value:
            raise StorageError(f"{where} has no usable key {key}; add it")
        values.append(value)
    return values[0], values[1]


def settings_for_workload(
    s3: Mapping[str, Any], access_key: str, secret_key: str, credentials: tuple[str, str]
) -> S3Settings:
    """How to write to the bucket of a workload's `spec.forensics.storage.s3`."""
    lock = s3.get("objectLock")
    mode = str(lock.get("mode") or "Compliance").upper() if isinstance(lock, Mapping) else None
    return S3Settings(
        bucket=str(s3["bucket"]),
        access_key=access_key,
        secret_key=secret_key,
        endpoint_url=s3.get("endpoint") or None,
        region=s3.get("region") or DEFAULT_REGION,
        lock_mode=mode,
        prefix=str(s3.get("prefix") or ""),
        credentials_secret=credentials,
    )


def settings_for_location(
    location: Mapping[str, Any],
    access_key: str,
    secret_key: str,
    endpoint_override: str | None = None,
) -> S3Settings:
    """How to read (or delete) the object a snapshot's `status.storage` names."""
    return S3Settings(
        bucket=str(location.get("bucket") or ""),
        access_key=access_key,
        secret_key=secret_key,
        endpoint_url=endpoint_override or location.get("endpoint") or None,
        region=location.get("region") or DEFAULT_REGION,
        lock_mode=None,
    )


# --- shell ----------------------------------------------------------------------------------


class EvidenceStores:
    """The backends of one process: Secrets always, S3 buckets as workloads name them.

    `s3_endpoint` replaces the endpoint recorded in snapshots when reading (the CLI outside the
    cluster, through a port-forward); `s3_factory` is for tests.
    """

    def __init__(
        self,
        kube: KubeClient,
        *,
        s3_endpoint: str | None = None,
        s3_factory: S3Factory = S3Storage,
    ) -> None:
        self._kube = kube
        self._s3_endpoint = s3_endpoint
        self._s3_factory = s3_factory
        self._clients: dict[S3Settings, EvidenceStorage] = {}
        self.secrets: EvidenceStorage = SecretStorage(kube)

    async def _credentials(self, namespace: str, name: str) -> tuple[str, str]:
        try:
            secret = await self._kube.get_secret(namespace, name)
        except KubeError as exc:
            raise StorageError(
                f"credentials Secret {namespace}/{name} cannot be read: {exc.status}; "
                "grant the aigis operator get on secrets there"
            ) from exc
        return decode_credentials(secret, namespace, name)

    def _s3(self, settings: S3Settings) -> EvidenceStorage:
        client = self._clients.get(settings)
        if client is None:
            if len(self._clients) >= _MAX_CLIENTS:
                self._clients.pop(next(iter(self._clients)))
            try:
                client = self._s3_factory(settings)
            except ValueError as exc:
                raise StorageError(f"S3 bucket {settings.bucket}: {exc}") from exc
            self._clients[settings] = client
        return client

    async def for_workload(
        self, namespace: str, workload: Mapping[str, Any] | None
    ) -> EvidenceStorage:
        """Where a capture of a pod of `workload` (in `namespace`) goes; `StorageError` when
        its S3 backend cannot be used (no credentials Secret, no keys in it)."""
        spec = storage_spec(workload)
        if spec.get("type") != "S3":
            return self.secrets
        s3 = spec.get("s3") or {}
        name = str((s3.get("credentialsSecret") or {}).get("name") or "")
        if not s3.get("bucket") or not name:
            raise StorageError(
                "spec.forensics.storage.s3 needs bucket and credentialsSecret.name; add them"
            )
        access, secret = await self._credentials(namespace, name)
        return self._s3(settings_for_workload(s3, access, secret, (namespace, name)))

    async def for_location(self, location: Mapping[str, Any]) -> EvidenceStorage:
        """Where the bundle a snapshot's `status.storage` names is read from and deleted."""
        if location.get("backend") != "S3":
            return self.secrets
        reference = location.get("credentialsSecret") or {}
        namespace, name = reference.get("namespace"), reference.get("name")
        if not namespace or not name:
            raise StorageError(
                f"the snapshot's S3 location (bucket {location.get('bucket')}) names no "
                "credentials Secret to read it with"
            )
        access, secret = await self._credentials(str(namespace), str(name))
        return self._s3(settings_for_location(location, access, secret, self._s3_endpoint))
