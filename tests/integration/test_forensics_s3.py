"""The S3 evidence backend against a real S3 server: Versity's gateway (versitygw) on 127.0.0.1.

versitygw is built from its Go module by `hack/build-control-plane.sh versitygw` (cached with
the control plane) and serves a local directory. The bucket is created with Object Lock; a
bundle is stored with a COMPLIANCE retention, read back byte for byte, and deleting its version
is refused while the retention lasts. Then the operator (scoped to this module's namespace)
stores the evidence of a deleted pod of an AIWorkload with `storage: {type: S3}` there, and
`aigis forensics verify` reads it back from the bucket; a workload whose bucket or credentials
Secret is missing gets an incomplete bundle, kept in Secrets, that says why.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.integration.conftest import Cluster
from tests.support.aigis_processes import AigisProcess, free_port, run_aigis

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
    # Already gone counts as deleted: expiry does not retry it forever.
    asyncio.run(backend.delete("ns", location))


# --- the operator storing in S3 -----------------------------------------------------------

CAPTURE_WAIT_SECONDS = 120.0
CREDENTIALS = "evidence-s3"


def workload(name: str, storage: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "owner": "team-test",
            "purpose": "Answers questions in S3 forensics tests",
            "forensics": {"logsMaxBytes": 1024, "retentionDays": 1, "storage": storage},
        },
    }


def s3_storage(endpoint: str, bucket: str, secret: str = CREDENTIALS) -> dict[str, Any]:
    return {
        "type": "S3",
        "s3": {
            "bucket": bucket,
            "endpoint": endpoint,
            "credentialsSecret": {"name": secret},
            "objectLock": {"mode": "Compliance"},
            "prefix": "it/",
        },
    }


def covered_pod(name: str, workload_name: str) -> dict[str, Any]:
    """A pod as the webhook leaves it: the workload label, the finalizer, the gateway."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"aigis.dev/workload": workload_name, "app": workload_name},
            "finalizers": ["aigis.dev/forensics"],
        },
        "spec": {
            "containers": [
                {"name": "app", "image": "example.invalid/bot:1"},
                {"name": "aigis-gateway", "image": "example.invalid/aigis:1"},
            ]
        },
    }


@pytest.fixture(scope="module")
def ns(cluster: Cluster, crds_installed: None, endpoint: str, bucket: str) -> Iterator[str]:
    name = f"it-fs3-{uuid.uuid4().hex[:8]}"
    cluster.create_namespace(name)
    cluster.kubectl("create", "secret", "generic", CREDENTIALS, "-n", name,
                    f"--from-literal=AWS_ACCESS_KEY_ID={ACCESS}",
                    f"--from-literal=AWS_SECRET_ACCESS_KEY={SECRET}")  # fmt: skip
    cluster.apply(workload("s3bot", s3_storage(endpoint, bucket)), name)
    cluster.apply(workload("nobucket", s3_storage(endpoint, "no-such-bucket-aigis")), name)
    cluster.apply(workload("nosecret", s3_storage(endpoint, bucket, "no-such-secret")), name)
    yield name
    for pod in cluster.get_json("pods", "-n", name)["items"]:
        cluster.kubectl("patch", "pod", pod["metadata"]["name"], "-n", name, "--type=merge",
                        "-p", '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator(start_operator: Callable[..., AigisProcess], ns: str) -> AigisProcess:
    return start_operator("--namespace", ns, "--aigis-namespace", ns,
                          "--network-policy-mode", "NetworkPolicy",
                          "--forensics-capture-timeout", "60")  # fmt: skip


def capture_deleted(cluster: Cluster, ns: str, name: str, workload_name: str) -> dict[str, Any]:
    """Run a covered pod, delete it, and wait for its snapshot stored and the pod gone."""
    cluster.apply(covered_pod(name, workload_name), ns)
    pod = cluster.wait_for(
        f"pod {name} Running",
        lambda: (
            (p := cluster.get_json("pod", name, "-n", ns))["status"].get("phase") == "Running" and p
        ),
    )
    cluster.kubectl("delete", "pod", name, "-n", ns, "--wait=false", "--grace-period=1")
    snapshot = f"fsnap-{pod['metadata']['uid']}"

    def stored() -> dict[str, Any] | None:
        found = cluster.kubectl("get", "fsnap", snapshot, "-n", ns, "-o", "json", check=False)
        if found.returncode != 0:
            return None
        body = json.loads(found.stdout)
        return dict(body) if (body.get("status") or {}).get("phase") == "Stored" else None

    done = cluster.wait_for(f"{snapshot} stored", stored, timeout=CAPTURE_WAIT_SECONDS)
    cluster.wait_for(
        f"pod {name} gone",
        lambda: cluster.kubectl("get", "pod", name, "-n", ns, check=False).returncode != 0,
    )
    return done


def test_a_deleted_pod_of_an_s3_workload_is_stored_locked_in_the_bucket_and_verifies(
    cluster: Cluster, ns: str, operator: AigisProcess, endpoint: str, bucket: str
) -> None:
    done = capture_deleted(cluster, ns, "s3bot-1", "s3bot")

    status = done["status"]
    assert status["complete"] is True, status
    location = status["storage"]
    assert location["backend"] == "S3"
    assert location["bucket"] == bucket
    assert location["endpoint"] == endpoint
    assert location["objects"] == [f"it/{ns}/{done['metadata']['name']}/bundle.tar.gz"]
    assert location["credentialsSecret"] == {"namespace": ns, "name": CREDENTIALS}
    assert location["objectLockMode"] == "COMPLIANCE"
    assert location["retainUntil"] == status["expiresAt"]
    assert location["versionId"]
    # Nothing in Secrets: the bytes are only in the bucket.
    label = f"aigis.dev/forensic-snapshot={done['metadata']['name']}"
    chunks = cluster.get_json("secrets", "-n", ns, "-l", label)
    assert chunks["items"] == []

    verified = run_aigis(
        cluster.kubeconfig, "forensics", "verify", done["metadata"]["name"], "-n", ns
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET, config=Config(s3={"addressing_style": "path"}),
    )  # fmt: skip
    retention = client.get_object_retention(
        Bucket=bucket, Key=location["objects"][0], VersionId=location["versionId"]
    )["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    with pytest.raises(ClientError) as refused:
        client.delete_object(
            Bucket=bucket, Key=location["objects"][0], VersionId=location["versionId"]
        )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    again = run_aigis(cluster.kubeconfig, "forensics", "verify", done["metadata"]["name"], "-n", ns)
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.mark.parametrize(
    ("workload_name", "reason"),
    [
        ("nobucket", "no-such-bucket-aigis"),
        ("nosecret", "credentials Secret {ns}/no-such-secret not found"),
    ],
)
def test_an_unusable_s3_backend_yields_an_incomplete_bundle_in_secrets_with_the_reason(
    cluster: Cluster,
    ns: str,
    operator: AigisProcess,
    workload_name: str,
    reason: str,
    tmp_path: Path,
) -> None:
    done = capture_deleted(cluster, ns, f"{workload_name}-1", workload_name)

    status = done["status"]
    assert status["complete"] is False
    storage_reasons = [r for r in status["reasons"] if r.startswith("storage: ")]
    assert storage_reasons, status["reasons"]
    assert reason.format(ns=ns) in storage_reasons[0]
    assert "kept in Secrets instead" in storage_reasons[0]
    assert status["storage"]["backend"] == "Secrets"
    name = done["metadata"]["name"]
    verified = run_aigis(cluster.kubeconfig, "forensics", "verify", name, "-n", ns)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The signed manifest says the same as the snapshot.
    exported = run_aigis(
        cluster.kubeconfig, "forensics", "export", name, "-n", ns, "-o", str(tmp_path)
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert storage_reasons[0] in manifest["reasons"]
