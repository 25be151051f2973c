"""Where the local control plane keeps its binaries and state, and which loopback ports it uses.

Everything is derived from ``AIGIS_CACHE`` (default ``~/.cache/aigis``) so tests, the CLI and the
build script agree on one location. Binaries live in ``bin/`` and survive ``down``; everything a
running cluster owns lives in ``cluster/`` and is removed by ``down``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Uncommon ports so the dev cluster does not collide with a kind/minikube/kwokctl cluster or a
# system etcd on the same machine. Each can be overridden through the named environment variable.
DEFAULT_PORTS: dict[str, tuple[str, int]] = {
    "etcd_client": ("AIGIS_CLUSTER_ETCD_PORT", 32379),
    "etcd_peer": ("AIGIS_CLUSTER_ETCD_PEER_PORT", 32380),
    "apiserver": ("AIGIS_CLUSTER_APISERVER_PORT", 36443),
    "controller_manager": ("AIGIS_CLUSTER_KCM_PORT", 30257),
    "scheduler": ("AIGIS_CLUSTER_SCHEDULER_PORT", 30259),
    "kwok": ("AIGIS_CLUSTER_KWOK_PORT", 30250),
}

# Pod and Service addresses are only numbers stored in etcd: nothing in this cluster dials them.
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"

NODE_NAME = "kwok-node-0"


def cache_root() -> Path:
    """The aigis cache directory shared with ``hack/build-control-plane.sh``."""
    configured = os.environ.get("AIGIS_CACHE")
    root = Path(configured).expanduser() if configured else Path.home() / ".cache" / "aigis"
    # Absolute, because pid checks compare the recorded executable path with /proc/<pid>/cmdline.
    return root.absolute()


@dataclass(frozen=True)
class Ports:
    """The loopback ports of every component (all bound to 127.0.0.1 only)."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def from_env(cls) -> Ports:
        """Default ports, each overridable by its ``AIGIS_CLUSTER_*_PORT`` variable."""
        return cls(**{field: _port_from_env(*spec) for field, spec in DEFAULT_PORTS.items()})

    def by_variable(self) -> dict[str, int]:
        """Ports keyed by the environment variable that overrides them (for error messages)."""
        return {variable: getattr(self, field) for field, (variable, _) in DEFAULT_PORTS.items()}


def _port_from_env(variable: str, default: int) -> int:
    raw = os.environ.get(variable)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{variable}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{variable}={port} is outside 1-65535")
    return port


@dataclass(frozen=True)
class Layout:
    """All paths of the local control plane.

    ``state`` is disposable: ``down`` deletes it. ``bin`` is never deleted by this package because
    rebuilding the binaries takes tens of minutes.
    """

    cache: Path
    ports: Ports

    @classmethod
    def from_env(cls) -> Layout:
        """The layout selected by ``AIGIS_CACHE`` and the port variables."""
        return cls(cache=cache_root(), ports=Ports.from_env())

    @property
    def bin(self) -> Path:
        return self.cache / "bin"

    @property
    def kwok_stages(self) -> Path:
        """Stage YAMLs copied from kwok's Go module by the build script."""
        return self.cache / "kwok" / "stages"

    @property
    def state(self) -> Path:
        return self.cache / "cluster"

    @property
    def lock_file(self) -> Path:
        """Outside ``state`` so that removing the state never races with the lock."""
        return self.cache / "cluster.lock"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        """Pid files and generated component configuration."""
        return self.state / "run"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig handed to users and tests (never ``~/.kube/config``)."""
        return self.state / "kubeconfig"

    @property
    def pod_cidr(self) -> str:
        """Pod addresses kwok hands out (a real node's layout uses its own range)."""
        return POD_CIDR

    @property
    def service_cidr(self) -> str:
        return SERVICE_CIDR

    def binary(self, name: str) -> Path:
        return self.bin / name

    def log_file(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def component_kubeconfig(self, component: str) -> Path:
        return self.run / f"{component}.kubeconfig"

    @property
    def apiserver_url(self) -> str:
        return f"https://{LOOPBACK}:{self.ports.apiserver}"

    @property
    def etcd_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.etcd_client}"

    @property
    def etcd_peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.etcd_peer}"
