"""The S3 evidence backend against a real S3 server: Versity's gateway (versitygw) on 127.0.0.1.

versitygw is built from its Go module by `hack/build-control-plane.sh versitygw` (cached with
the control plane) and serves a local directory. The bucket is created with Object Lock; a
bundle is stored with a COMPLIANCE retention, read back byte for byte, and deleting its version
is refused while the retention lasts.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from aigis.forensics import bundle
from aigis.forensics.s3 import S3Settings, S3Storage
from aigis.forensics.storage import StorageError

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("AIGIS_CACHE", Path.home() / ".cache" / "aigis"))
ACCESS, SECRET = "aigis-test", "aigis-test-secret-key"  # a throwaway local server's root user


def versitygw() -> Path:
    binary = CACHE / "bin" / "versitygw"
    if not binary.exists():
        subprocess.run(
            ["bash", str(REPO / "hack" / "build-control-plane.sh"), "versitygw"],
            check=True,
            timeout=1800,
        )
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("s3")
    (root / "data").mkdir()
    (root / "versions").mkdir()
    port = free_port()
    log = (root / "versitygw.log").open("w")
    process = subprocess.Popen(
        [str(versitygw()), "--port", f"127.0.0.1:{port}", "--access", ACCESS,
         "--secret", SECRET, "posix", "--versioning-dir", str(root / "versions"),
         str(root / "data")],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, (root / "versitygw.log").read_text()
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def bucket(endpoint: str) -> str:
    name = f"evidence-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def storage(endpoint: str, bucket: str) -> S3Storage:
    return S3Storage(S3Settings(bucket, ACCESS, SECRET, endpoint_url=endpoint))


def evidence() -> bytes:
    artifacts = [bundle.Artifact("logs/app.log", os.urandom(300_000))]
    manifest = bundle.build_manifest(artifacts, {"trigger": "Termination"})
    return bundle.build_bundle(artifacts, manifest, b"signature")


SNAPSHOT = {"metadata": {"name": "fsnap-test", "uid": "u-1"}}


def test_a_bundle_is_stored_and_read_back_byte_for_byte(endpoint: str, bucket: str) -> None:
    data = evidence()
    backend = storage(endpoint, bucket)
    until = datetime.now(UTC) + timedelta(days=1)

    location = asyncio.run(backend.store("ns", SNAPSHOT, data, retain_until=until))

    assert location["backend"] == "S3"
    assert location["objects"] == ["ns/fsnap-test/bundle.tar.gz"]
    assert location.get("versionId")
    assert asyncio.run(backend.load("ns", location)) == data


def test_a_retained_bundle_cannot_be_deleted(endpoint: str, bucket: str) -> None:
    data = evidence()
    backend = storage(endpoint, bucket)
    until = datetime.now(UTC) + timedelta(days=1)
    location = asyncio.run(
        backend.store("ns", {"metadata": {"name": "locked", "uid": "u"}}, data, retain_until=until)
    )

    with pytest.raises(StorageError, match="delete_object") as refused:
        asyncio.run(backend.delete("ns", location))
    assert "AccessDenied" in str(refused.value)

    assert asyncio.run(backend.load("ns", location)) == data


def test_a_bundle_without_retention_can_be_deleted(endpoint: str, bucket: str) -> None:
    backend = storage(endpoint, bucket)
    location = asyncio.run(backend.store("ns", {"metadata": {"name": "free", "uid": "u"}}, b"x"))

    asyncio.run(backend.delete("ns", location))

    with pytest.raises(StorageError, match="get_object"):
        asyncio.run(backend.load("ns", location))
