"""Fixtures for tests against the local control plane started by ``aigis.devcluster``.

The cluster is started once (or reused when already up) and deliberately left running after the
session: starting takes seconds, but reusing takes milliseconds, which keeps the edit-test loop
short. ``python -m aigis.devcluster down`` removes it. Each test gets its own namespace so tests
stay independent without restarting anything.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.support import aigis_processes
from tests.support.aigis_processes import AigisProcess, free_port

from aigis.devcluster import cluster as devcluster
from aigis.devcluster.layout import Layout

T = TypeVar("T")

KUBECTL_TIMEOUT_SECONDS = 60.0
DEFAULT_WAIT_SECONDS = 60.0
TEST_NAMESPACE_LABEL = "aigis.dev/integration-test"

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory needs the cluster, so all of them are marked integration."""
    for item in items:
        if _HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call whose message includes what kubectl printed."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


@dataclass(frozen=True)
class Cluster:
    """Handle on the running dev cluster for tests: kubeconfig, kubectl and polling."""

    layout: Layout

    @property
    def kubeconfig(self) -> str:
        return str(self.layout.kubeconfig)

    @property
    def kubectl_binary(self) -> Path:
        return self.layout.binary("kubectl")

    @property
    def ca_file(self) -> str:
        return str(self.layout.pki / "ca.crt")

    @property
    def server(self) -> str:
        return self.layout.apiserver_url

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against the dev cluster (admin unless another ``kubeconfig`` is given)."""
        argv = [str(self.kubectl_binary), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=KUBECTL_TIMEOUT_SECONDS,
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def get_json(self, *args: str) -> Any:
        """``kubectl get ARGS -o json`` parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, manifest: dict[str, Any], namespace: str | None = None) -> None:
        """``kubectl apply`` a manifest given as a dict."""
        ns_args = ("--namespace", namespace) if namespace else ()
        self.kubectl("apply", *ns_args, "-f", "-", input=json.dumps(manifest))

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        """Create (or update) a test namespace and wait until its `default` ServiceAccount
        exists, so pods can be admitted at once. Marked as a test namespace."""
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": {TEST_NAMESPACE_LABEL: "true", **(labels or {})},
                },
            }
        )
        self.wait_for(
            f"ServiceAccount {name}/default",
            lambda: self.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
        )
        return name

    @contextmanager
    def stand_in_crds(self, *crds: dict[str, Any]) -> Iterator[None]:
        """Serve these CRDs (see `stand_in_crd`) while the block runs.

        A CRD already served is left as it is; one created here is deleted afterwards, so no test
        leaves a kind served that changes what later tests see (an API group the webhook's rules
        name, a kind `aigis report` must be allowed to read).
        """
        created = []
        for crd in crds:
            name = crd["metadata"]["name"]
            if self.kubectl("get", "crd", name, check=False).returncode != 0:
                self.apply(crd)
                created.append(name)
        for name in created:
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
        try:
            yield
        finally:
            for name in created:
                self.kubectl("delete", "crd", name, "--wait=false", check=False)

    def wait_for(
        self,
        what: str,
        probe: Callable[[], T | None],
        timeout: float = DEFAULT_WAIT_SECONDS,
        interval: float = 0.25,
    ) -> T:
        """Poll ``probe`` until it returns something truthy and return that; fail after timeout.

        Generous deadlines only: they bound a hang, they do not measure speed.
        """
        deadline = time.monotonic() + timeout
        last: T | None = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def stand_in_crd(
    group: str, kind: str, plural: str, version: str = "v1", short_names: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A CRD that serves `kind` with any content: enough for the API server to accept (and the
    webhook to receive) objects of a kind whose operator this cluster does not run."""
    names: dict[str, Any] = {"kind": kind, "plural": plural, "singular": kind.lower()}
    if short_names:
        names["shortNames"] = list(short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": names,
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The dev cluster, started if needed and left running for later sessions."""
    layout = devcluster.up()
    return Cluster(layout)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace whose ``default`` ServiceAccount exists (pods are admitted at once).

    Deletion is not awaited: the namespace controller finishes it in the background.
    """
    name = cluster.create_namespace(f"it-{uuid.uuid4().hex[:10]}")
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


REPO = _HERE.parents[1]


@pytest.fixture(scope="session")
def crds_installed(cluster: Cluster) -> None:
    """The CRDs from crds/, applied the way a user would, and Established."""
    crds = str(REPO / "crds")
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", crds)
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crds)


@pytest.fixture(scope="session")
def static_hosts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's name resolution in tests: a static file, never real DNS.

    The addresses come from the documentation ranges (RFC 5737/3849): they are written into
    NetworkPolicies and never dialled.
    """
    path = tmp_path_factory.mktemp("dns") / "hosts.yaml"
    path.write_text(
        "api.openai.com: [192.0.2.10, 192.0.2.11]\n"
        "eu.api.openai.com: [192.0.2.20]\n"
        "api.anthropic.com: [192.0.2.30]\n"
        "bedrock-runtime.eu-west-1.amazonaws.com: [192.0.2.40]\n"
        "search.internal.example: [198.51.100.7]\n"
    )
    return path


@pytest.fixture(scope="module")
def start_operator(
    cluster: Cluster,
    crds_installed: None,
    static_hosts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., AigisProcess]]:
    """Start `aigis operator` (one per module) against the dev cluster with extra flags.

    Stopped at the end of the module; its log must hold no traceback.
    """
    started: list[AigisProcess] = []

    def start(*extra: str) -> AigisProcess:
        running = aigis_processes.start_operator(
            cluster.kubeconfig,
            tmp_path_factory.mktemp("operator") / "operator.log",
            metrics_port=free_port(),
            health_port=free_port(),
            extra=("--static-hosts", str(static_hosts), "--refresh-seconds", "2", *extra),
        )
        started.append(running)
        cluster.wait_for("the operator's metrics endpoint", running.metrics_or_none)
        return running

    yield start
    for running in started:
        running.stop()
    for running in started:
        running.assert_clean_log()
