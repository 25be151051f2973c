"""The local control plane behaves like a real cluster where the operator depends on it.

Each test checks one capability later tests rely on: the pinned version, scheduling onto the kwok
node, pod logs, ServiceAccount tokens, garbage collection by the real controller manager, Jobs
completing, and admission webhooks on loopback (how the operator's webhook server is reached).
Waits are generous deadlines, never speed assertions.
"""

from __future__ import annotations

import base64
import http.server
import ipaddress
import json
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aigis.devcluster import pki
from aigis.devcluster.build import pinned_versions, repository_root
from aigis.devcluster.kwok import SIMULATED_LOG_LINES
from aigis.devcluster.layout import LOOPBACK, NODE_NAME, POD_CIDR

if TYPE_CHECKING:
    from tests.integration.conftest import Cluster

# kwok never pulls images; a reserved (.invalid) registry makes that obvious.
IMAGE = "registry.invalid/aigis/placeholder:1"


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": IMAGE}]},
            },
        },
    }


def job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"job": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": IMAGE}],
                },
            },
        },
    }


def pods_with_label(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.get_json("pods", "-n", namespace, "-l", selector)["items"]
    return items


def running_pods(
    cluster: Cluster, namespace: str, selector: str, count: int
) -> list[dict[str, Any]]:
    """Wait until exactly ``count`` pods match ``selector`` and all are Running."""

    def probe() -> list[dict[str, Any]] | None:
        pods = pods_with_label(cluster, namespace, selector)
        phases = [pod.get("status", {}).get("phase") for pod in pods]
        return pods if len(pods) == count and phases == ["Running"] * count else None

    return cluster.wait_for(f"{count} Running pods with {selector} in {namespace}", probe)


def test_version_is_the_pinned_kubernetes_release(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)

    pinned = pinned_versions(repository_root()).get("KUBE_VERSION", "1.36.3")
    assert version["gitVersion"] == f"v{pinned}"


def test_deployment_pods_run_on_the_kwok_node_with_pod_ips(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(deployment("web", replicas=2), namespace)

    pods = running_pods(cluster, namespace, "app=web", count=2)

    assert {pod["spec"]["nodeName"] for pod in pods} == {NODE_NAME}
    for pod in pods:
        pod_ip = ipaddress.ip_address(pod["status"]["podIP"])
        assert pod_ip in ipaddress.ip_network(POD_CIDR)
        assert pod["status"]["hostIP"] == LOOPBACK
    assert len({pod["status"]["podIP"] for pod in pods}) == 2


def test_kubectl_logs_returns_the_simulated_lines(cluster: Cluster, namespace: str) -> None:
    cluster.apply(deployment("logger", replicas=1), namespace)
    (pod,) = running_pods(cluster, namespace, "app=logger", count=1)

    logs = cluster.kubectl("logs", "-n", namespace, pod["metadata"]["name"]).stdout

    expected = [line.split(" ", 3)[3] for line in SIMULATED_LOG_LINES]
    assert logs.splitlines() == expected


def test_service_account_token_authenticates_to_the_apiserver(
    cluster: Cluster, namespace: str
) -> None:
    token = cluster.kubectl("create", "token", "default", "-n", namespace).stdout.strip()

    # An empty kubeconfig, so the admin client certificate cannot authenticate instead.
    whoami = cluster.kubectl(
        "auth",
        "whoami",
        "-o",
        "json",
        f"--server={cluster.server}",
        f"--certificate-authority={cluster.ca_file}",
        f"--token={token}",
        kubeconfig="/dev/null",
    )

    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:default"
    assert f"system:serviceaccounts:{namespace}" in user["groups"]


def test_deleting_a_deployment_garbage_collects_replicasets_and_pods(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(deployment("doomed", replicas=2), namespace)
    running_pods(cluster, namespace, "app=doomed", count=2)
    replica_sets = cluster.get_json("replicasets", "-n", namespace, "-l", "app=doomed")["items"]
    assert len(replica_sets) == 1

    cluster.kubectl("delete", "deployment", "doomed", "-n", namespace, "--wait=false")

    def nothing_left() -> bool:
        left = cluster.get_json("replicasets,pods", "-n", namespace, "-l", "app=doomed")
        return not left["items"]

    cluster.wait_for("ReplicaSet and Pods of the deleted Deployment to be collected", nothing_left)


def test_job_pod_succeeds_and_the_job_completes(cluster: Cluster, namespace: str) -> None:
    cluster.apply(job("once"), namespace)

    def succeeded_pod() -> dict[str, Any] | None:
        pods = pods_with_label(cluster, namespace, "job=once")
        done = [pod for pod in pods if pod.get("status", {}).get("phase") == "Succeeded"]
        return done[0] if done else None

    pod = cluster.wait_for("the Job's pod to succeed", succeeded_pod)
    assert pod["spec"]["nodeName"] == NODE_NAME

    def complete() -> bool:
        conditions = cluster.get_json("job", "once", "-n", namespace)["status"].get(
            "conditions", []
        )
        return any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)

    cluster.wait_for("the Job to be Complete", complete)


class _DenyLabelledConfigMaps(http.server.BaseHTTPRequestHandler):
    """Admission webhook: refuses objects labelled ``deny=true``, allows everything else."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        labels = request["object"]["metadata"].get("labels") or {}
        allowed = labels.get("deny") != "true"
        response: dict[str, Any] = {"uid": request["uid"], "allowed": allowed}
        if not allowed:
            response["status"] = {"code": 403, "message": "denied by the test webhook"}
        body = json.dumps({**review, "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    """An HTTPS admission webhook on 127.0.0.1; yields its port and CA bundle (PEM)."""
    authority = pki.new_authority("test-webhook-ca")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-webhook")])
    cert, key = pki.issue_leaf(
        authority, subject, ExtendedKeyUsageOID.SERVER_AUTH, ip_addresses=(LOOPBACK,)
    )
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _DenyLabelledConfigMaps)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], authority.cert.public_bytes(serialization.Encoding.PEM)
    finally:
        server.shutdown()
        server.server_close()


def test_apiserver_calls_a_validating_webhook_on_loopback(
    cluster: Cluster, namespace: str, webhook_server: tuple[int, bytes]
) -> None:
    port, ca_bundle = webhook_server
    config_name = f"deny-labelled-{namespace}"
    cluster.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": config_name},
            "webhooks": [
                {
                    "name": "deny-labelled.test.aigis.dev",
                    "clientConfig": {
                        "url": f"https://{LOOPBACK}:{port}/validate",
                        "caBundle": base64.b64encode(ca_bundle).decode(),
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    # Only this test's namespace, so other tests never depend on this server.
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 5,
                }
            ],
        }
    )
    try:
        # The API server picks the configuration up asynchronously; poll until it is in force.
        refusal = cluster.wait_for(
            "a labelled ConfigMap to be refused by the webhook",
            lambda: _refusal(_create_configmap(cluster, namespace, deny=True)),
        )
        assert "denied by the test webhook" in refusal
        assert _create_configmap(cluster, namespace, deny=False).returncode == 0
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", config_name, check=False)


def _create_configmap(
    cluster: Cluster, namespace: str, deny: bool
) -> subprocess.CompletedProcess[str]:
    name = f"cm-{uuid.uuid4().hex[:8]}"
    labels = {"deny": "true"} if deny else {}
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
    }
    return cluster.kubectl(
        "create", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False
    )


def _refusal(result: subprocess.CompletedProcess[str]) -> str | None:
    """kubectl's error output if the request was refused, else None."""
    return result.stderr if result.returncode != 0 else None
