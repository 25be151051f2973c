"""Fixtures of the real-node suite: real containers on the local real node (docs/real-node.md).

The suite runs only when asked (``make test-real-node``, which sets ``AIGIS_REAL_NODE=1``): it
needs root, Debian's containerd and a few minutes, so ``make test`` leaves it out (deselected,
and reported as such) rather than letting it fail or skip.

Test hosts are network namespaces this suite creates, joined to the node's namespace by veth
pairs: ``provider`` (198.18.100.2, the declared destination, serving the fake provider) and
``elsewhere`` (198.18.100.6, undeclared, serving the same). Names resolve from a static hosts file
(operator) and ``hostAliases`` (pods); nothing uses DNS.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.support.aigis_processes import start_operator, start_webhook

from aigis.devcluster import realnode
from aigis.devcluster.pki import PkiFiles, issue_leaf, new_authority

REPO = Path(__file__).resolve().parents[2]
MARKER = "realnode"
ENABLE_VARIABLE = "AIGIS_REAL_NODE"

SCOPE_LABEL = "aigis.dev/realnode-test"
AIGIS_NAMESPACE = "aigis-system"
CONFIGURATION = "aigis-realnode"
APP_NAMESPACE = "realnode-app"
PLAIN_NAMESPACE = "realnode-plain"
IMAGES_NAMESPACE = "realnode-images"
TEST_NAMESPACES = (APP_NAMESPACE, PLAIN_NAMESPACE, IMAGES_NAMESPACE)
PROVIDER_HOST = "provider.aigis.test"
ELSEWHERE_HOST = "elsewhere.aigis.test"
PROVIDER_PORT = 8443
# The aigis image plus the test CA as OpenSSL's default bundle: the gateway refuses plain http
# outside the cluster, so the fake provider speaks TLS with a certificate from a test CA.
GATEWAY_TEST_IMAGE = "localhost/aigis-realnode-gateway:test"
BASE_IMAGE_LABEL = "dev.aigis.realnode.base-image-id"
TEST_CA_LABEL = "dev.aigis.realnode.test-ca-sha256"
PROVIDER_TEXT = "an answer from the fake provider in its own network namespace"
KEY_SECRET = "openai-api-key"
KEY_VALUE = "sk-realnode-test-key-0123456789"
# The aigis image's interpreter: the app containers are small Python test clients.
PYTHON = "/opt/aigis/bin/python"
# An app container's last statement: PID 1 of a container ignores a SIGTERM it has no handler
# for, so without one every deletion would wait out the whole grace period.
WAIT_FOR_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "time.sleep(10**9)\n"
)
ON_REAL_NODE = {
    "nodeSelector": {realnode.NODE_LABEL: "true"},
    "tolerations": [{"key": realnode.NODE_LABEL, "operator": "Exists"}],
}


@dataclass(frozen=True)
class TestHost:
    name: str
    netns: str
    address: str
    node_side: str


TEST_HOSTS = (
    TestHost("provider", "aigis-th-provider", "198.18.100.2", "198.18.100.1"),
    TestHost("elsewhere", "aigis-th-elsewhere", "198.18.100.6", "198.18.100.5"),
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: needs the real node (root, containerd); make test-real-node"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    ours = [item for item in items if here in Path(str(item.path)).parents]
    for item in ours:
        item.add_marker(MARKER)
    if os.environ.get(ENABLE_VARIABLE) == "1" or not ours:
        return
    config.hook.pytest_deselected(items=ours)
    items[:] = [item for item in items if item not in ours]


class Kubectl:
    def __init__(self, kubeconfig: Path) -> None:
        self.base = [
            str(realnode.RealNodeLayout.from_env().binary("kubectl")),
            f"--kubeconfig={kubeconfig}",
        ]

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.base, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]]) -> None:
        documents = manifest if isinstance(manifest, list) else [manifest]
        self.run("apply", "-f", "-", stdin="\n---\n".join(json.dumps(d) for d in documents))

    def json(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json").stdout)

    def exec(
        self, namespace: str, pod: str, container: str, *command: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "exec",
            "-n",
            namespace,
            pod,
            "-c",
            container,
            "--",
            *command,
            check=False,
            timeout=timeout,
        )


@pytest.fixture(scope="session")
def real_node() -> realnode.RealNodeLayout:
    """The real-node cluster, started if needed (left running for the next session)."""
    return realnode.up()


@pytest.fixture(scope="session")
def kubectl(real_node: realnode.RealNodeLayout) -> Kubectl:
    return Kubectl(real_node.kubeconfig)


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@pytest.fixture(scope="session")
def test_ca(real_node: realnode.RealNodeLayout) -> PkiFiles:
    """A CA and a serving certificate for both test hosts' names.

    Kept in the real node's cache across sessions (only these test names, only these test
    namespaces trust it): the same CA means the same gateway test image, which then need not
    be rebuilt nor imported again.
    """
    files = PkiFiles(real_node.cache / "test-ca")
    if _usable(files):
        return files
    files.directory.mkdir(parents=True, exist_ok=True)
    authority = new_authority("aigis-realnode-test-ca")
    cert, key = issue_leaf(
        authority,
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PROVIDER_HOST)]),
        ExtendedKeyUsageOID.SERVER_AUTH,
        dns_names=(PROVIDER_HOST, ELSEWHERE_HOST),
    )
    pem = serialization.Encoding.PEM
    files.key("provider").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.cert("provider").write_bytes(cert.public_bytes(pem))
    # Written last: a CA file means the set is whole.
    files.ca_cert.write_bytes(authority.cert.public_bytes(pem))
    return files


def _usable(files: PkiFiles) -> bool:
    """The stored test CA is whole and its serving certificate good for another day."""
    paths = (files.ca_cert, files.cert("provider"), files.key("provider"))
    if not all(path.is_file() for path in paths):
        return False
    leaf = x509.load_pem_x509_certificate(files.cert("provider").read_bytes())
    return leaf.not_valid_after_utc > datetime.now(UTC) + timedelta(days=1)


@pytest.fixture(scope="session")
def gateway_image(real_node: realnode.RealNodeLayout, test_ca: PkiFiles) -> str:
    """localhost/aigis:dev with the test CA as the default trust store, imported into the node.

    Rebuilt only when the aigis image or the CA changed (both recorded as labels), and imported
    only when the node lacks this image ID, so a warm session spends no time on it.
    """
    wanted = {
        BASE_IMAGE_LABEL: _podman_inspect(realnode.AIGIS_IMAGE, "{{.Id}}"),
        TEST_CA_LABEL: hashlib.sha256(test_ca.ca_cert.read_bytes()).hexdigest(),
    }
    exists = subprocess.run(["podman", "image", "exists", GATEWAY_TEST_IMAGE], check=False)
    labels = (
        json.loads(_podman_inspect(GATEWAY_TEST_IMAGE, "{{json .Labels}}") or "null") or {}
        if exists.returncode == 0
        else {}
    )
    if any(labels.get(key) != value for key, value in wanted.items()):
        container = subprocess.run(
            ["buildah", "from", realnode.AIGIS_IMAGE], check=True, capture_output=True, text=True
        ).stdout.strip()
        try:
            _sh(
                "buildah",
                "copy",
                "--chmod",
                "0644",
                container,
                str(test_ca.ca_cert),
                "/usr/lib/ssl/cert.pem",
            )
            _sh(
                "buildah",
                "config",
                *(arg for key, value in wanted.items() for arg in ("--label", f"{key}={value}")),
                container,
            )
            _sh("buildah", "commit", "--quiet", container, GATEWAY_TEST_IMAGE)
        finally:
            subprocess.run(["buildah", "rm", container], check=False, capture_output=True)
    realnode.import_image(real_node, GATEWAY_TEST_IMAGE)
    return GATEWAY_TEST_IMAGE


def _podman_inspect(image: str, template: str) -> str:
    return subprocess.run(
        ["podman", "image", "inspect", "--format", template, image],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="session")
def test_logs(real_node: realnode.RealNodeLayout) -> Path:
    """The logs of the test hosts, the webhook and the operator: in the real node's cache,
    replaced each session, so they outlive pytest's temporary directories for a look later."""
    logs = real_node.cache / "test-logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    return logs


@pytest.fixture(scope="session")
def test_hosts(
    real_node: realnode.RealNodeLayout, test_ca: PkiFiles, test_logs: Path
) -> Iterator[dict[str, TestHost]]:
    """Two test hosts in namespaces of their own, each serving the fake provider over TLS."""
    logs = test_logs
    servers: list[subprocess.Popen[bytes]] = []
    node_ns = f"--net=/run/netns/{realnode.NETNS}"
    try:
        for index, host in enumerate(TEST_HOSTS):
            subprocess.run(["ip", "netns", "delete", host.netns], check=False, capture_output=True)
            _sh("ip", "netns", "add", host.netns)
            outer, inner = f"aigis-th{index}", "eth0"
            _sh("ip", "link", "add", outer, "type", "veth", "peer", "name", f"{outer}p")
            _sh("ip", "link", "set", outer, "netns", realnode.NETNS)
            _sh("ip", "link", "set", f"{outer}p", "netns", host.netns)
            _sh("ip", "-n", host.netns, "link", "set", f"{outer}p", "name", inner)
            _sh("ip", "-n", host.netns, "addr", "add", f"{host.address}/30", "dev", inner)
            _sh("ip", "-n", host.netns, "link", "set", inner, "up")
            _sh("ip", "-n", host.netns, "link", "set", "lo", "up")
            # Only the pod range is routed back; the host namespace has no other route.
            _sh("ip", "-n", host.netns, "route", "add", realnode.POD_SUBNET, "via", host.node_side)
            _sh("ip", "-n", realnode.NETNS, "addr", "add", f"{host.node_side}/30", "dev", outer)
            _sh("ip", "-n", realnode.NETNS, "link", "set", outer, "up")
            log = (logs / f"{host.name}.log").open("wb")
            servers.append(
                subprocess.Popen(
                    [
                        "nsenter",
                        f"--net=/run/netns/{host.netns}",
                        "--",
                        sys.executable,
                        "-m",
                        "tests.realnode.serve_fake_provider",
                        str(PROVIDER_PORT),
                        PROVIDER_TEXT,
                        str(test_ca.cert("provider")),
                        str(test_ca.key("provider")),
                    ],
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for host in TEST_HOSTS:
            _wait_listening(host, node_ns)
        yield {host.name: host for host in TEST_HOSTS}
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(5)
        for host in TEST_HOSTS:
            subprocess.run(["ip", "netns", "delete", host.netns], check=False, capture_output=True)


def _wait_listening(host: TestHost, node_ns: str) -> None:
    probe = f"import socket; socket.create_connection(('{host.address}', {PROVIDER_PORT}), 1)"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (
            subprocess.run(
                ["nsenter", node_ns, "--", sys.executable, "-c", probe],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        ):
            return
        time.sleep(0.3)
    raise AssertionError(f"fake provider on {host.name} ({host.address}) did not start")


@pytest.fixture(scope="session")
def aigis(
    real_node: realnode.RealNodeLayout,
    kubectl: Kubectl,
    test_hosts: dict[str, TestHost],
    gateway_image: str,
    test_logs: Path,
) -> Iterator[None]:
    """CRDs, the webhook (injecting localhost/aigis:dev) and the operator, on 127.0.0.1."""
    _clear_earlier_sessions(kubectl)
    work = test_logs
    hosts = work / "hosts.yaml"
    hosts.write_text("".join(f"{h.name}.aigis.test: [{h.address}]\n" for h in TEST_HOSTS))
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    kubectl.run("create", "namespace", AIGIS_NAMESPACE, check=False)
    processes = [
        start_webhook(
            real_node.kubeconfig,
            work / "webhook.log",
            aigis_namespace=AIGIS_NAMESPACE,
            configuration_name=CONFIGURATION,
            scope=f"{SCOPE_LABEL}=yes",
            gateway_image=gateway_image,
        ),
        start_operator(
            real_node.kubeconfig,
            work / "operator.log",
            extra=[
                "--namespace",
                APP_NAMESPACE,
                "--aigis-namespace",
                AIGIS_NAMESPACE,
                "--static-hosts",
                str(hosts),
            ],
        ),
    ]
    try:
        deadline = time.monotonic() + 60
        while (
            kubectl.run(
                "get", "mutatingwebhookconfiguration", CONFIGURATION, check=False
            ).returncode
            != 0
        ):
            if time.monotonic() > deadline or processes[0].process.poll() is not None:
                raise AssertionError(
                    f"webhook not registered: {(work / 'webhook.log').read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield
    finally:
        for running in processes:
            running.stop()
        kubectl.run(
            "delete",
            "validatingwebhookconfiguration,mutatingwebhookconfiguration",
            CONFIGURATION,
            "--ignore-not-found",
            check=False,
        )
        print(f"webhook and operator logs: {work}")


def _clear_earlier_sessions(kubectl: Kubectl) -> None:
    """Delete what an earlier session on this cluster left, before this session's operator
    starts: so it neither captures those pods nor mistakes the old workloads for new ones.
    With no operator running, the forensics finalizer is taken off by hand."""
    for namespace in TEST_NAMESPACES:
        pods = kubectl.run("get", "pods", "-n", namespace, "-o", "name", check=False)
        for pod in pods.stdout.split():
            kubectl.run("patch", pod, "-n", namespace, "--type=merge",
                        "-p", '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
        kubectl.run(
            "delete", "namespace", namespace, "--ignore-not-found", "--wait=true", timeout=180
        )


@pytest.fixture(scope="session")
def app_namespace(kubectl: Kubectl, aigis: None) -> str:
    """APP_NAMESPACE made afresh: in the webhook's scope, holding the provider key Secret."""
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": APP_NAMESPACE, "labels": {SCOPE_LABEL: "yes"}},
        }
    )
    wait_for(
        "ServiceAccount default",
        lambda: exists(kubectl, "serviceaccount", "default", APP_NAMESPACE),
    )
    kubectl.run(
        "create",
        "secret",
        "generic",
        KEY_SECRET,
        "-n",
        APP_NAMESPACE,
        f"--from-literal=api-key={KEY_VALUE}",
    )
    return APP_NAMESPACE


def aiworkload(name: str) -> dict[str, Any]:
    """An Enforce AIWorkload for pods labelled app=NAME, whose provider is the test host."""
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name, "namespace": APP_NAMESPACE},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "owner": "team-realnode",
            "purpose": "Proves the gateway, the NetworkPolicy and forensics on real containers",
            "enforcement": "Enforce",
            "dataRegions": ["eu"],
            "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
            "egress": [{"host": PROVIDER_HOST, "region": "eu", "ports": [{"port": PROVIDER_PORT}]}],
            "guardrails": {"promptInjection": {"action": "Block"}},
            "gateway": {
                "upstreams": [
                    {"provider": "openai", "baseUrl": f"https://{PROVIDER_HOST}:{PROVIDER_PORT}/v1"}
                ],
                "providerKeys": [
                    {"provider": "openai", "secretRef": {"name": KEY_SECRET, "key": "api-key"}}
                ],
            },
            "assurance": {"lastRedTeam": "2026-11-20"},
        },
    }


def app_pod_spec(command: list[str]) -> dict[str, Any]:
    """A pod spec for the real node: one app container (the aigis image's Python) running
    `command`, with the provider key in its environment (the webhook moves it to the gateway)
    and the declared host in /etc/hosts."""
    provider = next(h for h in TEST_HOSTS if h.name == "provider")
    return {
        **ON_REAL_NODE,
        "automountServiceAccountToken": False,
        # The pod's /etc/hosts, not DNS: the gateway calls the declared host here.
        "hostAliases": [{"ip": provider.address, "hostnames": [PROVIDER_HOST]}],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        # A terminating covered pod is captured at its deletion time at the latest: a short
        # grace period keeps the next session's cleanup of this namespace short.
        "terminationGracePeriodSeconds": 5,
        "containers": [
            {
                "name": "app",
                "image": realnode.AIGIS_IMAGE,
                "imagePullPolicy": "Never",
                "command": command,
                "env": [
                    {
                        "name": "OPENAI_API_KEY",
                        "valueFrom": {"secretKeyRef": {"name": KEY_SECRET, "key": "api-key"}},
                    }
                ],
                "securityContext": {
                    "runAsUser": 1000,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }


def running_pod(kubectl: Kubectl, namespace: str, selector: str) -> dict[str, Any]:
    """The first pod matching `selector` that runs with every container ready."""

    def ready() -> dict[str, Any] | None:
        pods = kubectl.json("pods", "-n", namespace, "-l", selector)["items"]
        for pod in pods:
            statuses = pod["status"].get("containerStatuses") or []
            if (
                pod["status"].get("phase") == "Running"
                and statuses
                and all(s.get("ready") for s in statuses)
                and not pod["metadata"].get("deletionTimestamp")
            ):
                return dict(pod)
        return None

    return dict(wait_for(f"a Running pod {selector} in {namespace}", ready, timeout=180))


def chat(kubectl: Kubectl, pod: str, prompt: str) -> tuple[int, str]:
    """POST a chat completion from the app container to $OPENAI_BASE_URL (no proxy)."""
    script = (
        "import json, os, urllib.request, urllib.error\n"
        "req = urllib.request.Request(os.environ['OPENAI_BASE_URL'].rstrip('/') + "
        "'/chat/completions', method='POST', headers={'Content-Type': 'application/json', "
        "'Authorization': 'Bearer ' + os.environ.get('OPENAI_API_KEY', '')}, data=json.dumps("
        "{'model': 'gpt-4o-mini', 'messages': [{'role': 'user', 'content': os.environ['P']}]})"
        ".encode())\n"
        "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
        "try:\n    r = opener.open(req, timeout=20); print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n    print(e.code); print(e.read().decode())\n"
    )
    result = kubectl.exec(APP_NAMESPACE, pod, "app", "env", f"P={prompt}", PYTHON, "-c", script)
    assert result.returncode == 0, result.stderr
    status, _, body = result.stdout.partition("\n")
    return int(status), body


def exists(kubectl: Kubectl, kind: str, name: str, namespace: str) -> bool:
    return kubectl.run("get", kind, name, "-n", namespace, check=False).returncode == 0


def wait_for(what: str, check: Any, timeout: float = 120, interval: float = 1.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
