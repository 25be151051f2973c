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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

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
    name = f"it-{uuid.uuid4().hex[:10]}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {TEST_NAMESPACE_LABEL: "true"}},
        }
    )
    cluster.wait_for(
        f"ServiceAccount {name}/default",
        lambda: (
            cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode
            == 0
        ),
    )
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
