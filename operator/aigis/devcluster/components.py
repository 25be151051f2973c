"""Command lines and health endpoints of the five control-plane processes.

Every listener is bound to 127.0.0.1 and every address a component could dial is loopback: the
simulated node's only address is 127.0.0.1 and the API server is told to use InternalIP, so
``kubectl logs`` reaches kwok on loopback. Pod and Service CIDRs are plain data nobody dials.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from aigis.devcluster import pki as pki_names
from aigis.devcluster.kwok import NODE_ANNOTATION_SELECTOR
from aigis.devcluster.layout import LOOPBACK, Layout
from aigis.devcluster.loopback import LoopbackEndpoint, tls_context
from aigis.devcluster.pki import PkiFiles

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KWOK = "kwok"

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Later benchmarks create ~1,000 objects at once; the client-side defaults (20-50 QPS) would make
# the controllers, not the operator under test, the bottleneck.
CONTROLLER_QPS = 5000
CONTROLLER_BURST = 10000
ETCD_QUOTA_BYTES = 8 * 1024**3
KWOK_NODE_LEASE_SECONDS = 40

# Proxies are stripped from the components' environment: everything they talk to is loopback, and a
# proxy would be the only way a loopback request could leave the machine.
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"})


@dataclass(frozen=True)
class Component:
    """One process of the control plane and how to tell whether it is healthy."""

    name: str
    executable: Path
    args: tuple[str, ...]
    health_port: int
    health_path: str
    health_over_tls: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def argv(self) -> list[str]:
        return [str(self.executable), *self.args]

    def health_endpoint(self, tls: ssl.SSLContext) -> LoopbackEndpoint:
        """Where to probe health; ``tls`` must trust the cluster CA (see ``admin_tls``)."""
        return LoopbackEndpoint(LOOPBACK, self.health_port, tls if self.health_over_tls else None)

    def environment(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
        return {**base, **self.extra_env}


def all_components(layout: Layout, files: PkiFiles) -> dict[str, Component]:
    """Every component keyed by name, in start order."""
    builders = (etcd, apiserver, controller_manager, scheduler, kwok)
    components = [build(layout, files) for build in builders]
    return {component.name: component for component in components}


def etcd(layout: Layout, files: PkiFiles) -> Component:
    """A single-member etcd. fsync is off: the data is disposable and fsync dominates latency."""
    args = (
        "--name=aigis",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={layout.etcd_url}",
        f"--advertise-client-urls={layout.etcd_url}",
        f"--listen-peer-urls={layout.etcd_peer_url}",
        f"--initial-advertise-peer-urls={layout.etcd_peer_url}",
        f"--initial-cluster=aigis={layout.etcd_peer_url}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync=true",
        f"--quota-backend-bytes={ETCD_QUOTA_BYTES}",
        "--auto-compaction-retention=1",
    )
    return Component(
        ETCD, layout.binary(ETCD), args, layout.ports.etcd_client, "/health", health_over_tls=False
    )


def apiserver(layout: Layout, files: PkiFiles) -> Component:
    """kube-apiserver with real authentication, Node+RBAC authorization and default admission."""
    args = (
        f"--etcd-servers={layout.etcd_url}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={layout.ports.apiserver}",
        # A loopback advertise address is invalid in the `kubernetes` Endpoints; nothing in this
        # cluster needs them, so the reconciler is switched off.
        "--endpoint-reconciler-type=none",
        f"--service-cluster-ip-range={layout.service_cidr}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        f"--cert-dir={files.directory}",
        f"--tls-cert-file={files.cert('apiserver')}",
        f"--tls-private-key-file={files.key('apiserver')}",
        f"--client-ca-file={files.ca_cert}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={files.service_account_public_key}",
        f"--service-account-signing-key-file={files.service_account_key}",
        f"--kubelet-client-certificate={files.cert(pki_names.APISERVER_KUBELET_CLIENT.file_stem)}",
        f"--kubelet-client-key={files.key(pki_names.APISERVER_KUBELET_CLIENT.file_stem)}",
        f"--kubelet-certificate-authority={files.ca_cert}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--requestheader-client-ca-file={files.front_proxy_ca_cert}",
        f"--requestheader-allowed-names={pki_names.FRONT_PROXY_CLIENT_NAME}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={files.cert('front-proxy-client')}",
        f"--proxy-client-key-file={files.key('front-proxy-client')}",
    )
    return Component(APISERVER, layout.binary(APISERVER), args, layout.ports.apiserver, "/readyz")


def controller_manager(layout: Layout, files: PkiFiles) -> Component:
    """kube-controller-manager: GC, workload, namespace, ServiceAccount and token controllers."""
    kubeconfig = layout.component_kubeconfig(CONTROLLER_MANAGER)
    args = (
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={layout.ports.controller_manager}",
        f"--tls-cert-file={files.cert('kube-controller-manager-serving')}",
        f"--tls-private-key-file={files.key('kube-controller-manager-serving')}",
        "--leader-elect=false",
        # Each controller acts as its own ServiceAccount, as in kubeadm clusters, so RBAC mistakes
        # in the bootstrap policy would show up here the same way.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={files.service_account_key}",
        f"--root-ca-file={files.ca_cert}",
        f"--cluster-signing-cert-file={files.ca_cert}",
        f"--cluster-signing-key-file={files.ca_key}",
        f"--service-cluster-ip-range={layout.service_cidr}",
        f"--kube-api-qps={CONTROLLER_QPS}",
        f"--kube-api-burst={CONTROLLER_BURST}",
    )
    return Component(
        CONTROLLER_MANAGER,
        layout.binary(CONTROLLER_MANAGER),
        args,
        layout.ports.controller_manager,
        "/healthz",
    )


def scheduler(layout: Layout, files: PkiFiles) -> Component:
    """kube-scheduler; client QPS lives in its config file (the QPS flags are deprecated)."""
    kubeconfig = layout.component_kubeconfig(SCHEDULER)
    args = (
        f"--config={scheduler_config_path(layout)}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={layout.ports.scheduler}",
        f"--tls-cert-file={files.cert('kube-scheduler-serving')}",
        f"--tls-private-key-file={files.key('kube-scheduler-serving')}",
    )
    return Component(SCHEDULER, layout.binary(SCHEDULER), args, layout.ports.scheduler, "/healthz")


def kwok(layout: Layout, files: PkiFiles) -> Component:
    """The kwok controller: kubelet API on 127.0.0.1 plus node/pod lifecycle simulation."""
    address = f"{LOOPBACK}:{layout.ports.kwok}"
    args = (
        f"--kubeconfig={layout.component_kubeconfig(KWOK)}",
        f"--config={kwok_config_path(layout)}",
        f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION_SELECTOR}",
        f"--node-ip={LOOPBACK}",
        f"--node-port={layout.ports.kwok}",
        f"--server-address={address}",
        f"--tls-cert-file={files.cert('kwok-kubelet-serving')}",
        f"--tls-private-key-file={files.key('kwok-kubelet-serving')}",
        f"--cidr={layout.pod_cidr}",
        f"--node-lease-duration-seconds={KWOK_NODE_LEASE_SECONDS}",
    )
    # kwok also reads ~/.kwok/kwok.yaml when it exists; its own work dir keeps a user's kwokctl
    # configuration out of this cluster.
    env = {"KWOK_WORKDIR": str(layout.state / "kwok")}
    return Component(KWOK, layout.binary(KWOK), args, layout.ports.kwok, "/healthz", extra_env=env)


def scheduler_config_path(layout: Layout) -> Path:
    return layout.run / "kube-scheduler.yaml"


def kwok_config_path(layout: Layout) -> Path:
    return layout.run / "kwok.yaml"


def simulated_logs_path(layout: Layout) -> Path:
    return layout.state / "kwok" / "simulated-container.log"


def write_scheduler_config(layout: Layout) -> Path:
    """The KubeSchedulerConfiguration: client connection with high QPS, no leader election."""
    config = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {
            "kubeconfig": str(layout.component_kubeconfig(SCHEDULER)),
            "qps": CONTROLLER_QPS,
            "burst": CONTROLLER_BURST,
        },
        "leaderElection": {"leaderElect": False},
    }
    path = scheduler_config_path(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def admin_tls(files: PkiFiles) -> ssl.SSLContext:
    """TLS context trusting the cluster CA and presenting the admin client certificate.

    Raises ``OSError`` when the PKI does not exist (cluster down).
    """
    stem = pki_names.ADMIN.file_stem
    return tls_context(files.ca_cert, files.cert(stem), files.key(stem))
