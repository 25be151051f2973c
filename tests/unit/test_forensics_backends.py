"""Choosing the evidence backend: from the workload to store, from the snapshot to read."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any

import pytest
from click.testing import CliRunner

from aigis.cli import main
from aigis.forensics.backends import (
    EvidenceStores,
    decode_credentials,
    settings_for_location,
    settings_for_workload,
    storage_spec,
)
from aigis.forensics.s3 import S3Settings, object_key
from aigis.forensics.storage import StorageError
from aigis.kube import KubeError
from aigis.settings import OperatorSettings


def secret(**data: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


KEYS = secret(AWS_ACCESS_KEY_ID="AKIA", AWS_SECRET_ACCESS_KEY="s3cret")
S3 = {
    "bucket": "evidence",
    "endpoint": "https://s3.example.com",
    "credentialsSecret": {"name": "keys"},
}


def workload(storage: dict[str, Any] | None) -> dict[str, Any]:
    forensics: dict[str, Any] = {"retentionDays": 7}
    if storage is not None:
        forensics["storage"] = storage
    return {"spec": {"forensics": forensics}}


@pytest.mark.parametrize(
    ("found", "kind"),
    [
        pytest.param(None, "Secrets", id="no-workload-means-secrets"),
        pytest.param(workload(None), "Secrets", id="no-storage-means-secrets"),
        pytest.param(workload({"type": "Secrets"}), "Secrets", id="secrets-named"),
        pytest.param(workload({"type": "S3", "s3": S3}), "S3", id="s3-named"),
    ],
)
def test_storage_spec(found: dict[str, Any] | None, kind: str) -> None:
    assert storage_spec(found)["type"] == kind


@pytest.mark.parametrize(
    ("found", "words"),
    [
        pytest.param(None, "kube-system/keys not found; create it with keys", id="no-secret"),
        pytest.param(secret(AWS_ACCESS_KEY_ID="a"), "no usable key AWS_SECRET_ACCESS_KEY",
                     id="no-secret-key"),
        pytest.param(secret(AWS_SECRET_ACCESS_KEY="s"), "no usable key AWS_ACCESS_KEY_ID",
                     id="no-access-key"),
        pytest.param({"data": {"AWS_ACCESS_KEY_ID": "%%%", "AWS_SECRET_ACCESS_KEY": "%%%"}},
                     "no usable key AWS_ACCESS_KEY_ID", id="not-base64"),
    ],
)  # fmt: skip
def test_unusable_credentials_say_what_to_fix(found: dict[str, Any] | None, words: str) -> None:
    with pytest.raises(StorageError, match=words):
        decode_credentials(found, "kube-system", "keys")


def test_credentials_are_decoded() -> None:
    assert decode_credentials(KEYS, "ns", "keys") == ("AKIA", "s3cret")


@pytest.mark.parametrize(
    ("lock", "mode"),
    [
        pytest.param(None, None, id="no-object-lock-no-retention"),
        pytest.param({}, "COMPLIANCE", id="object-lock-defaults-to-compliance"),
        pytest.param({"mode": "Governance"}, "GOVERNANCE", id="governance"),
        pytest.param({"mode": "Compliance"}, "COMPLIANCE", id="compliance"),
    ],
)
def test_lock_mode_follows_object_lock(lock: dict[str, str] | None, mode: str | None) -> None:
    spec = {**S3, **({"objectLock": lock} if lock is not None else {})}
    assert settings_for_workload(spec, "a", "s", ("ns", "keys")).lock_mode == mode


def test_workload_settings_take_every_field_and_default_the_region() -> None:
    settings = settings_for_workload({**S3, "prefix": "c1/"}, "a", "s", ("ns", "keys"))
    assert settings == S3Settings(
        bucket="evidence",
        access_key="a",
        secret_key="s",
        endpoint_url="https://s3.example.com",
        region="us-east-1",
        lock_mode=None,
        prefix="c1/",
        credentials_secret=("ns", "keys"),
    )


def test_the_secret_key_stays_out_of_logs() -> None:
    settings = settings_for_workload(S3, "AKIA", "s3cret", ("ns", "keys"))
    assert "s3cret" not in repr(settings)


def test_the_prefix_starts_the_object_key() -> None:
    assert object_key("ns", "fsnap-1", "c1/") == "c1/ns/fsnap-1/bundle.tar.gz"
    assert object_key("ns", "fsnap-1") == "ns/fsnap-1/bundle.tar.gz"


@pytest.mark.parametrize(
    ("override", "endpoint"),
    [
        pytest.param(None, "http://minio.storage.svc:9000", id="recorded-endpoint"),
        pytest.param("http://127.0.0.1:9000", "http://127.0.0.1:9000", id="override-wins"),
    ],
)
def test_location_settings_read_where_the_bundle_was_written(
    override: str | None, endpoint: str
) -> None:
    location = {"backend": "S3", "bucket": "b1", "endpoint": "http://minio.storage.svc:9000",
                "region": "eu-central-1"}  # fmt: skip
    settings = settings_for_location(location, "a", "s", override)
    assert (settings.bucket, settings.endpoint_url, settings.region) == (
        "b1",
        endpoint,
        "eu-central-1",
    )


# --- EvidenceStores against a fake API -----------------------------------------------------


class FakeKube:
    def __init__(self, secrets: Mapping[tuple[str, str], Any]) -> None:
        self.secrets = secrets
        self.reads: list[tuple[str, str]] = []

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append((namespace, name))
        found = self.secrets.get((namespace, name))
        if isinstance(found, Exception):
            raise found
        return found


class FakeS3:
    backend = "S3"

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings

    async def store(
        self, namespace: str, snapshot: Mapping[str, Any], data: bytes, retain_until: Any = None
    ) -> dict[str, Any]:
        return {"backend": "S3"}

    async def load(self, namespace: str, location: Mapping[str, Any]) -> bytes:
        return b""

    async def delete(self, namespace: str, location: Mapping[str, Any]) -> None:
        return None


def stores(secrets: Mapping[tuple[str, str], Any], **kwargs: Any) -> EvidenceStores:
    return EvidenceStores(FakeKube(secrets), s3_factory=FakeS3, **kwargs)  # type: ignore[arg-type]


def test_a_workload_without_storage_goes_to_secrets() -> None:
    chosen = stores({})
    assert asyncio.run(chosen.for_workload("ns", workload(None))) is chosen.secrets


def test_an_s3_workload_gets_its_bucket_with_the_keys_of_its_namespace() -> None:
    chosen = stores({("team", "keys"): KEYS})
    backend = asyncio.run(chosen.for_workload("team", workload({"type": "S3", "s3": S3})))
    assert isinstance(backend, FakeS3)
    assert backend.settings.bucket == "evidence"
    assert (backend.settings.access_key, backend.settings.secret_key) == ("AKIA", "s3cret")
    assert backend.settings.credentials_secret == ("team", "keys")
    # One client per bucket and keys, not one per capture.
    again = asyncio.run(chosen.for_workload("team", workload({"type": "S3", "s3": S3})))
    assert again is backend


@pytest.mark.parametrize(
    ("secrets", "words"),
    [
        pytest.param({}, "credentials Secret team/keys not found", id="secret-missing"),
        pytest.param({("team", "keys"): KubeError("GET", "/x", 403, "forbidden")},
                     "cannot be read: 403; grant the aigis operator get on secrets",
                     id="secret-forbidden"),
    ],
)  # fmt: skip
def test_an_s3_workload_without_usable_keys_is_a_storage_error(
    secrets: Mapping[tuple[str, str], Any], words: str
) -> None:
    with pytest.raises(StorageError, match=words):
        asyncio.run(stores(secrets).for_workload("team", workload({"type": "S3", "s3": S3})))


def test_a_snapshot_is_read_from_the_backend_it_names() -> None:
    chosen = stores({("team", "keys"): KEYS}, s3_endpoint="http://127.0.0.1:1")
    assert asyncio.run(chosen.for_location({"backend": "Secrets"})) is chosen.secrets
    assert asyncio.run(chosen.for_location({})) is chosen.secrets
    location = {"backend": "S3", "bucket": "b1", "objects": ["k"],
                "credentialsSecret": {"namespace": "team", "name": "keys"}}  # fmt: skip
    backend = asyncio.run(chosen.for_location(location))
    assert isinstance(backend, FakeS3)
    assert backend.settings.bucket == "b1"
    assert backend.settings.endpoint_url == "http://127.0.0.1:1"


def test_an_s3_location_without_credentials_cannot_be_read() -> None:
    with pytest.raises(StorageError, match="names no credentials Secret"):
        asyncio.run(stores({}).for_location({"backend": "S3", "bucket": "b1"}))


# --- the capture time limit ---------------------------------------------------------------


def test_the_capture_timeout_flag_reaches_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[OperatorSettings] = []
    monkeypatch.setattr("aigis.controller.run.run_operator", seen.append)
    result = CliRunner().invoke(main, ["operator", "--forensics-capture-timeout", "45"])
    assert result.exit_code == 0, result.output
    assert seen[0].forensics_capture_timeout == 45.0

    seen.clear()
    result = CliRunner().invoke(main, ["operator"], env={"AIGIS_FORENSICS_CAPTURE_TIMEOUT": "30"})
    assert result.exit_code == 0, result.output
    assert seen[0].forensics_capture_timeout == 30.0

    seen.clear()
    assert CliRunner().invoke(main, ["operator"], env={}).exit_code == 0
    assert seen[0].forensics_capture_timeout == 120.0


@pytest.mark.parametrize("seconds", [0.0, 0.5, 3601.0])
def test_a_capture_timeout_out_of_range_names_the_flag(seconds: float) -> None:
    problems = OperatorSettings(forensics_capture_timeout=seconds).problems()
    assert [p.path for p in problems] == ["--forensics-capture-timeout"]
