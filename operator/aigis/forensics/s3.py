"""An S3-compatible evidence store with Object Lock: bundles nobody can delete before expiry.

Each bundle is one object, `<prefix><namespace>/<snapshot>/bundle.tar.gz`, written with an
Object Lock retention (`COMPLIANCE` by default: not even the bucket's owner can shorten it) until
the snapshot's expiry, and a SHA-256 checksum the server verifies on upload. The bucket must have
been created with Object Lock enabled (which also versions it): the location records the
object's version, since a delete without one only adds a delete marker and leaves the locked
version in place. With no lock mode the object is written without retention. The location also
records the endpoint and region, so the bundle is read back from where it was written. boto3 is
synchronous, so every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aigis.forensics.evidence import rfc3339
from aigis.forensics.storage import StorageError

LOCK_MODES: Final = ("COMPLIANCE", "GOVERNANCE")
_GONE: Final = ("NoSuchKey", "NoSuchVersion")


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where and how to store: endpoint (None: AWS), bucket, region, credentials, lock mode
    (None: no Object Lock retention), and a prefix for the object keys."""

    bucket: str
    access_key: str
    secret_key: str = field(repr=False)
    endpoint_url: str | None = None
    region: str = "us-east-1"
    lock_mode: str | None = "COMPLIANCE"
    prefix: str = ""
    credentials_secret: tuple[str, str] | None = None
    """(namespace, name) of the Secret the keys came from, recorded in the location so that
    the bundle can be read back."""


def object_key(namespace: str, snapshot: str, prefix: str = "") -> str:
    return f"{prefix}{namespace}/{snapshot}/bundle.tar.gz"


class S3Storage:
    """Bundles as Object-Locked objects in one bucket."""

    backend = "S3"

    def __init__(self, settings: S3Settings) -> None:
        if settings.lock_mode is not None and settings.lock_mode not in LOCK_MODES:
            raise ValueError(f"lock mode {settings.lock_mode!r} is not one of {LOCK_MODES}")
        self._settings = settings
        self._client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return dict(await asyncio.to_thread(getattr(self._client, method), **kwargs))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"S3 {method} on bucket {self._settings.bucket}: {exc}") from exc

    async def store(
        self,
        namespace: str,
        snapshot: Mapping[str, Any],
        data: bytes,
        retain_until: datetime | None = None,
    ) -> dict[str, Any]:
        key = object_key(namespace, str(snapshot["metadata"]["name"]), self._settings.prefix)
        lock_mode = self._settings.lock_mode if retain_until is not None else None
        extra: dict[str, Any] = {}
        if lock_mode is not None:
            extra = {"ObjectLockMode": lock_mode, "ObjectLockRetainUntilDate": retain_until}
        answer = await self._call(
            "put_object",
            Bucket=self._settings.bucket,
            Key=key,
            Body=data,
            ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
            ContentType="application/gzip",
            **extra,
        )
        location: dict[str, Any] = {
            "backend": self.backend,
            "bucket": self._settings.bucket,
            "objects": [key],
            "region": self._settings.region,
        }
        if self._settings.endpoint_url:
            location["endpoint"] = self._settings.endpoint_url
        if self._settings.credentials_secret is not None:
            namespace_of, name = self._settings.credentials_secret
            location["credentialsSecret"] = {"namespace": namespace_of, "name": name}
        if answer.get("VersionId"):
            location["versionId"] = answer["VersionId"]
        if lock_mode is not None and retain_until is not None:
            location["objectLockMode"] = lock_mode
            location["retainUntil"] = rfc3339(retain_until)
        return location

    def _version(self, location: Mapping[str, Any]) -> dict[str, Any]:
        version = location.get("versionId")
        return {"VersionId": version} if version else {}

    async def load(self, namespace: str, location: Mapping[str, Any]) -> bytes:
        (key,) = location.get("objects") or [None]
        answer = await self._call(
            "get_object",
            Bucket=location.get("bucket") or self._settings.bucket,
            Key=str(key),
            **self._version(location),
        )
        return bytes(await asyncio.to_thread(answer["Body"].read))

    async def delete(self, namespace: str, location: Mapping[str, Any]) -> None:
        """Delete the stored version; refused by the server (`StorageError`) while retained.
        A version already gone counts as deleted, so expiry does not retry it forever."""
        (key,) = location.get("objects") or [None]
        try:
            await self._call(
                "delete_object",
                Bucket=location.get("bucket") or self._settings.bucket,
                Key=str(key),
                **self._version(location),
            )
        except StorageError as exc:
            cause = exc.__cause__
            code = (
                cause.response.get("Error", {}).get("Code")
                if isinstance(cause, ClientError)
                else None
            )
            if code not in _GONE:
                raise
