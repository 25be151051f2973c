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
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aigis.devcluster import realnode
from aigis.devcluster.pki import PkiFiles, issue_leaf, new_authority

REPO = Path(__file__).resolve().parents[2]
MARKER = "realnode"
ENABLE_VARIABLE = "AIGIS_REAL_NODE"

SCOPE_LABEL = "aigis.dev/realnode-test"
AIGIS_NAMESPACE = "aigis-system"
CONFIGURATION = "aigis-realnode"
APP_NAMESPACE = "realnode-app"
PROVIDER_HOST = "provider.aigis.test"
ELSEWHERE_HOST = "elsewhere.aigis.test"
PROVIDER_PORT = 8443
# The aigis image plus the test CA as OpenSSL's default bundle: the gateway refuses plain http
# outside the cluster, so the fake provider speaks TLS with a certificate from a test CA.
GATEWAY_TEST_IMAGE = "localhost/aigis-realnode-gateway:test"
PROVIDER_TEXT = "an answer from the fake provider in its own network namespace"


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
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    """A CA and a serving certificate for both test hosts' names."""
    files = PkiFiles(tmp_path_factory.mktemp("test-ca"))
    authority = new_authority("aigis-realnode-test-ca")
    cert, key = issue_leaf(
        authority,
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PROVIDER_HOST)]),
        ExtendedKeyUsageOID.SERVER_AUTH,
        dns_names=(PROVIDER_HOST, ELSEWHERE_HOST),
    )
    pem = serialization.Encoding.PEM
    files.ca_cert.write_bytes(authority.cert.public_bytes(pem))
    files.cert("provider").write_bytes(cert.public_bytes(pem))
    files.key("provider").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


@pytest.fixture(scope="session")
def gateway_image(real_node: realnode.RealNodeLayout, test_ca: PkiFiles) -> str:
    """localhost/aigis:dev with the test CA as the default trust store, imported into the node."""
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
        _sh("buildah", "commit", "--quiet", container, GATEWAY_TEST_IMAGE)
    finally:
        subprocess.run(["buildah", "rm", container], check=False, capture_output=True)
    realnode.import_image(real_node, GATEWAY_TEST_IMAGE)
    return GATEWAY_TEST_IMAGE


@pytest.fixture(scope="session")
def test_hosts(
    real_node: realnode.RealNodeLayout, tmp_path_factory: pytest.TempPathFactory, test_ca: PkiFiles
) -> Iterator[dict[str, TestHost]]:
    """Two test hosts in namespaces of their own, each serving the fake provider over TLS."""
    logs = tmp_path_factory.mktemp("test-hosts")
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def aigis(
    real_node: realnode.RealNodeLayout,
    kubectl: Kubectl,
    test_hosts: dict[str, TestHost],
    gateway_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """CRDs, the webhook (injecting localhost/aigis:dev) and the operator, on 127.0.0.1."""
    work = tmp_path_factory.mktemp("aigis")
    hosts = work / "hosts.yaml"
    hosts.write_text("".join(f"{h.name}.aigis.test: [{h.address}]\n" for h in TEST_HOSTS))
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    kubectl.run("create", "namespace", AIGIS_NAMESPACE, check=False)
    env = {**os.environ, "KUBECONFIG": str(real_node.kubeconfig)}
    port, metrics = _free_port(), _free_port()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aigis",
                "webhook",
                "--listen",
                f"127.0.0.1:{port}",
                "--metrics-listen",
                f"127.0.0.1:{metrics}",
                "--webhook-url",
                f"https://127.0.0.1:{port}",
                "--aigis-namespace",
                AIGIS_NAMESPACE,
                "--configuration-name",
                CONFIGURATION,
                "--scope",
                f"{SCOPE_LABEL}=yes",
                "--gateway-image",
                gateway_image,
            ],
            env=env,
            cwd=REPO,
            stdout=(work / "webhook.log").open("wb"),
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aigis",
                "operator",
                "--namespace",
                APP_NAMESPACE,
                "--aigis-namespace",
                AIGIS_NAMESPACE,
                "--metrics-address",
                "127.0.0.1",
                "--metrics-port",
                "0",
                "--health-address",
                "127.0.0.1",
                "--health-port",
                "0",
                "--static-hosts",
                str(hosts),
            ],
            env=env,
            cwd=REPO,
            stdout=(work / "operator.log").open("wb"),
            stderr=subprocess.STDOUT,
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
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise AssertionError(
                    f"webhook not registered: {(work / 'webhook.log').read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        kubectl.run(
            "delete",
            "validatingwebhookconfiguration,mutatingwebhookconfiguration",
            CONFIGURATION,
            "--ignore-not-found",
            check=False,
        )
        print(f"webhook and operator logs: {work}")


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
