"""A real node next to kwok's simulated one: containerd, runc, a kubelet and kube-router's policy
controller, running real containers (development and the ``realnode`` tests only).

The real-node cluster is a second instance of the local control plane (its own state directory
and ports, the same cached binaries), so it never disturbs the kwok cluster that ``make
cluster-up`` shares. Everything of the node runs inside a network namespace the node creates
(``aigis-node``): containerd and its CNI bridge, the pods' veths and addresses (198.18.0.0/24),
the kubelet and kube-router's iptables rules. That namespace has no route anywhere, so a pod
cannot send a packet off this machine, and the host's own network is never changed.

Two things still cross the namespace boundary, both as Unix sockets relayed by socat: the
kubelet reaches the API server (``127.0.0.1:<apiserver port>`` inside the namespace leads to the
host's loopback), and the API server reaches the kubelet for logs and exec. For the latter the
node's only address is 127.0.0.1: the kubelet refuses a loopback ``--node-ip`` but takes an IP
given as ``--hostname-override`` as the node's address, so the node is named ``127.0.0.1``, and
the API server's dial to ``127.0.0.1:<kubelet port>`` lands on the host end of the relay.

Why these pieces: Debian 12's containerd 1.6 speaks CRI v1, which is all the 1.36 kubelet needs;
runc because crun refuses this machine's hybrid cgroup layout; the cgroupfs driver and
``failCgroupV1: false`` because the machine is cgroup v1; containerd's default OCI spec lowers
RLIMIT_NOFILE to 1024, which this root (without CAP_SYS_RESOURCE) may do, where raising fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aigis.devcluster import cluster
from aigis.devcluster.build import ensure_binaries, repository_root
from aigis.devcluster.components import Component
from aigis.devcluster.kubeconfig import write_kubeconfig
from aigis.devcluster.layout import LOOPBACK, Layout, Ports, cache_root
from aigis.devcluster.loopback import LoopbackEndpoint
from aigis.devcluster.pki import Authority, PkiFiles, issue_leaf
from aigis.devcluster.processes import is_running, read_pid, start_detached, stop_all, tail

NETNS = "aigis-node"
# The node is named after its only address (see the module docstring).
NODE_NAME = LOOPBACK
NODE_LABEL = "aigis.dev/real-node"
# Real pods must ask for this node: kwok's node would otherwise take them and only pretend.
NODE_TAINT = {"key": NODE_LABEL, "value": "true", "effect": "NoSchedule"}

# Inside the node's namespace only; the benchmarking range keeps them from looking like a real
# network. 198.19.0.0/16 holds Service addresses; the test hosts take 198.18.100.0/24.
POD_SUBNET = "198.18.0.0/24"
POD_GATEWAY = "198.18.0.1"
ROUTED_RANGE = "198.18.0.0/15"
SERVICE_SUBNET = "198.19.0.0/16"
BRIDGE = "aigis0"
# The kubelet's cgroupRoot: pods live below it, so `down` finds (and kills) every one of them.
CGROUP_ROOT = "aigis-realnode"

PAUSE_IMAGE = "localhost/aigis-pause:dev"
BUSYBOX_IMAGE = "localhost/aigis-busybox:dev"
AIGIS_IMAGE = "localhost/aigis:dev"

REAL_NODE_CACHE_DIR = "realnode"
# Another set of uncommon ports, so both clusters can run at once.
REAL_NODE_PORTS: dict[str, tuple[str, int]] = {
    "etcd_client": ("AIGIS_REALNODE_ETCD_PORT", 33379),
    "etcd_peer": ("AIGIS_REALNODE_ETCD_PEER_PORT", 33380),
    "apiserver": ("AIGIS_REALNODE_APISERVER_PORT", 37443),
    "controller_manager": ("AIGIS_REALNODE_KCM_PORT", 31257),
    "scheduler": ("AIGIS_REALNODE_SCHEDULER_PORT", 31259),
    "kwok": ("AIGIS_REALNODE_KWOK_PORT", 31250),
}
KUBELET_PORT_VARIABLE = "AIGIS_REALNODE_KUBELET_PORT"
DEFAULT_KUBELET_PORT = 31262

CONTAINERD = "containerd"
KUBELET = "kubelet"
KUBE_ROUTER = "kube-router"
APISERVER_RELAY_HOST = "relay-apiserver-host"
APISERVER_RELAY_NODE = "relay-apiserver-node"
KUBELET_RELAY_HOST = "relay-kubelet-host"
KUBELET_RELAY_NODE = "relay-kubelet-node"
NODE_COMPONENTS = (
    APISERVER_RELAY_HOST,
    APISERVER_RELAY_NODE,
    CONTAINERD,
    KUBELET_RELAY_NODE,
    KUBELET_RELAY_HOST,
    KUBELET,
    KUBE_ROUTER,
)
# Stop order: what uses containerd first, then containerd, then the relays.
_STOP_WAVES = (
    (KUBE_ROUTER, KUBELET),
    (CONTAINERD,),
    (APISERVER_RELAY_HOST, APISERVER_RELAY_NODE, KUBELET_RELAY_NODE, KUBELET_RELAY_HOST),
)

SOCAT = "/usr/bin/socat"
IP = "/usr/sbin/ip"
NSENTER = "/usr/bin/nsenter"
CNI_BIN_DIR = Path("/usr/lib/cni")
RUNC = "/usr/sbin/runc"
# Debian 12 packages the node needs (`python -m aigis.devcluster real-node packages`, for CI).
HOST_PACKAGES = (
    "containerd",
    "runc",
    "containernetworking-plugins",
    "socat",
    "ipset",
    "iptables",
    "busybox-static",
)
_POLL_SECONDS = 0.25

Say = Callable[[str, str], None]


class RealNodeError(RuntimeError):
    """The real node could not be brought to (or out of) the requested state."""


@dataclass(frozen=True)
class RealNodeLayout(Layout):
    """The real-node cluster's own state and ports; binaries and kwok stages are shared."""

    shared: Path = field(default_factory=cache_root)
    kubelet_port: int = DEFAULT_KUBELET_PORT

    @classmethod
    def from_env(cls) -> RealNodeLayout:
        shared = cache_root()
        ports = {name: _port(*spec) for name, spec in REAL_NODE_PORTS.items()}
        return cls(
            cache=shared / REAL_NODE_CACHE_DIR,
            ports=Ports(**ports),
            shared=shared,
            kubelet_port=_port(KUBELET_PORT_VARIABLE, DEFAULT_KUBELET_PORT),
        )

    @property
    def bin(self) -> Path:
        return self.shared / "bin"

    @property
    def kwok_stages(self) -> Path:
        return self.shared / "kwok" / "stages"

    @property
    def pod_cidr(self) -> str:
        return POD_SUBNET

    @property
    def service_cidr(self) -> str:
        return SERVICE_SUBNET

    @property
    def node(self) -> Path:
        """containerd's, the kubelet's and CNI's state (removed by ``down``)."""
        return self.state / "node"

    @property
    def sockets(self) -> Path:
        """Unix sockets, kept short: a socket path may not exceed 107 bytes."""
        return self.node / "s"

    @property
    def containerd_socket(self) -> Path:
        return self.sockets / "containerd.sock"

    @property
    def images(self) -> Path:
        """Image archives exported from podman for import, kept across ``down``."""
        return self.cache / "images"


def _port(variable: str, default: int) -> int:
    raw = os.environ.get(variable)
    return int(raw) if raw else default


def node_components(layout: RealNodeLayout) -> dict[str, Component]:
    """The node's processes in start order.

    Node processes enter the namespace with ``nsenter --net`` rather than ``ip netns exec``,
    which also remounts /sys and so hides the cgroup mounts the kubelet needs. nsenter execs,
    so the recorded pid is the component's own.
    """
    netns = (NSENTER, f"--net=/run/netns/{NETNS}", "--")
    api_socket = layout.sockets / "apiserver.sock"
    kubelet_socket = layout.sockets / "kubelet.sock"
    api_port = layout.ports.apiserver
    kubelet_port = layout.kubelet_port

    def in_node(name: str, executable: str | Path, *args: str, port: int = 0) -> Component:
        # nsenter is what is started; it becomes `executable` when it execs.
        return Component(name, Path(executable), (*netns[1:], str(executable), *args), port, "")

    components = [
        Component(
            APISERVER_RELAY_HOST,
            Path(SOCAT),
            (
                f"UNIX-LISTEN:{api_socket},fork,unlink-early,mode=600",
                f"TCP:{LOOPBACK}:{api_port}",
            ),
            0,
            "",
        ),
        in_node(
            APISERVER_RELAY_NODE,
            SOCAT,
            f"TCP-LISTEN:{api_port},bind={LOOPBACK},fork,reuseaddr",
            f"UNIX-CONNECT:{api_socket}",
        ),
        in_node(
            CONTAINERD,
            shutil.which("containerd") or "/usr/bin/containerd",
            f"--config={layout.run / 'containerd.toml'}",
        ),
        in_node(
            KUBELET_RELAY_NODE,
            SOCAT,
            f"UNIX-LISTEN:{kubelet_socket},fork,unlink-early,mode=600",
            f"TCP:{LOOPBACK}:{kubelet_port}",
        ),
        Component(
            KUBELET_RELAY_HOST,
            Path(SOCAT),
            (
                f"TCP-LISTEN:{kubelet_port},bind={LOOPBACK},fork,reuseaddr",
                f"UNIX-CONNECT:{kubelet_socket}",
            ),
            0,
            "",
        ),
        in_node(
            KUBELET,
            layout.binary("kubelet"),
            f"--config={layout.run / 'kubelet.yaml'}",
            f"--kubeconfig={layout.component_kubeconfig(KUBELET)}",
            f"--hostname-override={NODE_NAME}",
            f"--root-dir={layout.node / 'kubelet'}",
            f"--cert-dir={layout.node / 'kubelet-pki'}",
            f"--node-labels={NODE_LABEL}=true",
            "--v=2",
        ),
        in_node(
            KUBE_ROUTER,
            layout.binary("kube-router"),
            f"--kubeconfig={layout.component_kubeconfig(KUBE_ROUTER)}",
            f"--hostname-override={NODE_NAME}",
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            f"--service-cluster-ip-range={SERVICE_SUBNET}",
            "--metrics-port=0",
            "--health-port=0",
            "--v=1",
        ),
    ]
    return {component.name: component for component in components}


# ----------------------------------------------------------------------------------------------
# up / down / status


def up(emit: Callable[[str], None] | None = None, timeout: float | None = None) -> RealNodeLayout:
    """The control plane (with kwok) plus the real node; idempotent when all of it runs."""
    layout = RealNodeLayout.from_env()
    say = cluster.Progress(emit)
    timeout = cluster.configured_timeout() if timeout is None else timeout
    _check_host(say)
    _build(layout, say)
    healthy_before = cluster.status(layout).healthy
    if healthy_before and not node_problems(layout):
        # The node runs, but `make image` may have rebuilt an image since it was imported.
        _import_images(layout, say)
        say("real-node", f"already up (kubeconfig {layout.kubeconfig})")
        return layout
    if not healthy_before:
        # A restarted control plane has a new CA: the old node cannot rejoin it.
        _stop_node(layout, say)
    cluster.up(layout, emit=emit, timeout=timeout)
    _stop_node(layout, say)
    _prepare_node(layout, say)
    components = node_components(layout)
    try:
        for name, component in components.items():
            if name == KUBE_ROUTER:
                # kube-router looks its node up once at start and gives up if it is missing.
                _wait(
                    layout,
                    components[KUBELET],
                    f"node {NODE_NAME} Ready",
                    lambda: _node_problem(layout),
                    say,
                    timeout,
                )
            pid = start_detached(
                _argv(component),
                layout.log_file(name),
                layout.pid_file(name),
                cwd=layout.state,
                env=component.environment(),
            )
            say(name, f"started (pid {pid}, log {layout.log_file(name)})")
            if name == CONTAINERD:
                _wait(
                    layout,
                    component,
                    "serving CRI",
                    lambda: _containerd_problem(layout),
                    say,
                    timeout,
                )
                _import_images(layout, say)
        _wait(
            layout,
            components[KUBE_ROUTER],
            "network policy controller running",
            lambda: _policy_controller_problem(),
            say,
            timeout,
        )
    except BaseException:
        _stop_node(layout, say)
        raise
    say("real-node", f"ready; kubeconfig {layout.kubeconfig}")
    return layout


def down(emit: Callable[[str], None] | None = None) -> None:
    """Stop the node (its containers too) and the control plane; remove all their state."""
    layout = RealNodeLayout.from_env()
    say = cluster.Progress(emit)
    _stop_node(layout, say)
    cluster.down(layout, emit=emit)


def node_problems(layout: RealNodeLayout) -> list[str]:
    """What is wrong with the node (empty when every process runs and the node is Ready)."""
    problems = [
        f"{name} not running"
        for name, component in node_components(layout).items()
        if _pid(layout, component) is None
    ]
    if not problems:
        node = _node_problem(layout)
        if node:
            problems.append(node)
    return problems


def status() -> tuple[cluster.ClusterStatus, list[str]]:
    layout = RealNodeLayout.from_env()
    return cluster.status(layout), node_problems(layout)


# ----------------------------------------------------------------------------------------------
# preparation


def _check_host(say: Say) -> None:
    if os.geteuid() != 0:
        raise RealNodeError("the real node needs root (network namespaces, cgroups, mounts)")
    missing = [
        path
        for path in (
            SOCAT,
            IP,
            RUNC,
            str(CNI_BIN_DIR / "bridge"),
            "/usr/sbin/ipset",
            "/bin/busybox",
        )
        if not Path(path).exists()
    ]
    if shutil.which("containerd") is None:
        missing.append("containerd")
    if missing:
        raise RealNodeError(
            f"missing on this host: {', '.join(missing)}; "
            f"apt-get install -y --no-install-recommends {' '.join(HOST_PACKAGES)}"
        )
    say("real-node", "host packages present")


def _build(layout: RealNodeLayout, say: Say) -> None:
    """The control plane's binaries (shared cache), then the kubelet and kube-router."""
    ensure_binaries(Layout(cache=layout.shared, ports=layout.ports), lambda m: say("build", m))
    wanted = [name for name in (KUBELET, KUBE_ROUTER) if not layout.binary(name).is_file()]
    if not wanted:
        return
    root = repository_root()
    if root is None:
        raise RealNodeError(f"{', '.join(wanted)} missing in {layout.bin}; run from the checkout")
    say("build", f"building {', '.join(wanted)} with hack/build-control-plane.sh")
    env = {**os.environ, "AIGIS_CACHE": str(layout.shared)}
    script = root / "hack" / "build-control-plane.sh"
    if subprocess.run([str(script), *wanted], cwd=root, env=env, check=False).returncode != 0:
        raise RealNodeError(f"{script} {' '.join(wanted)} failed; see its output above")


def _prepare_node(layout: RealNodeLayout, say: Say) -> None:
    for directory in (layout.node, layout.sockets, layout.node / "cni" / "net.d", layout.run):
        directory.mkdir(parents=True, exist_ok=True)
    _create_netns(say)
    _create_cgroup_root()
    files = PkiFiles(layout.pki)
    _write_node_pki(files)
    write_kubeconfig(
        layout.component_kubeconfig(KUBELET),
        layout.apiserver_url,
        files,
        "kubelet-client",
        f"system:node:{NODE_NAME}",
    )
    write_kubeconfig(
        layout.component_kubeconfig(KUBE_ROUTER),
        layout.apiserver_url,
        files,
        "admin",
        "kubernetes-admin",
    )
    (layout.run / "containerd.toml").write_text(containerd_config(layout))
    (layout.node / "cni" / "net.d" / "10-aigis.conflist").write_text(
        json.dumps(cni_config(layout), indent=2)
    )
    (layout.run / "kubelet.yaml").write_text(
        yaml.safe_dump(kubelet_config(layout, files), sort_keys=False)
    )


def _create_netns(say: Say) -> None:
    if not (Path("/run/netns") / NETNS).exists():
        _run(IP, "netns", "add", NETNS)
        say("real-node", f"created network namespace {NETNS}")
    _run(IP, "-n", NETNS, "link", "set", "lo", "up")
    for key, value in (
        ("net.ipv4.ip_forward", "1"),
        # NetworkPolicy between pods on the one bridge is enforced by iptables only when
        # bridged traffic passes through it.
        ("net.bridge.bridge-nf-call-iptables", "1"),
    ):
        _run(NSENTER, f"--net=/run/netns/{NETNS}", "--", "sysctl", "-q", "-w", f"{key}={value}")


def _cgroup_roots(unified: bool = False) -> list[Path]:
    """The node's cgroup in every mounted hierarchy (cgroup v1 here: one per controller; runc
    also creates one in the hybrid layout's cgroup2 ``unified`` mount, removed on ``down``)."""
    base = Path("/sys/fs/cgroup")
    return [
        hierarchy / CGROUP_ROOT
        for hierarchy in sorted(base.iterdir())
        if hierarchy.is_dir()
        and not hierarchy.is_symlink()
        and (unified or hierarchy.name != "unified")
    ]


def _create_cgroup_root() -> None:
    """The kubelet refuses a cgroupRoot that is missing in any hierarchy."""
    for root in _cgroup_roots():
        root.mkdir(exist_ok=True)
        if root.parent.name == "cpuset":
            # A new v1 cpuset has no CPUs or memory nodes; a task cannot join it until it does.
            for name in ("cpuset.cpus", "cpuset.mems"):
                current = (root / name).read_text().strip()
                if not current:
                    (root / name).write_text((root.parent / name).read_text())


def _remove_cgroup_root() -> int:
    """rmdir the node's cgroups bottom-up (only empty cgroups can be removed)."""
    removed = 0
    for root in _cgroup_roots(unified=True):
        if not root.exists():
            continue
        for directory in sorted(
            (d for d in root.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            root.rmdir()
            removed += 1
    return removed


def _write_node_pki(files: PkiFiles) -> None:
    """The kubelet's client identity (Node authorizer) and its serving cert for 127.0.0.1."""
    ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    authority = Authority(key=ca_key, cert=ca_cert)
    client = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{NODE_NAME}"),
        ]
    )
    serving = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubelet-serving")])
    for stem, subject, usage, ips in (
        ("kubelet-client", client, ExtendedKeyUsageOID.CLIENT_AUTH, ()),
        ("kubelet-serving", serving, ExtendedKeyUsageOID.SERVER_AUTH, (LOOPBACK,)),
    ):
        cert, key = issue_leaf(authority, subject, usage, ("localhost",) if ips else (), ips)
        files.cert(stem).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        path = files.key(stem)
        path.touch(mode=0o600, exist_ok=True)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def containerd_config(layout: RealNodeLayout) -> str:
    """containerd 1.6 (config version 2) with its own root, state and sockets."""
    node = layout.node
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{node / "containerd"}"
state = "{node / "containerd-state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{layout.containerd_socket}"
[ttrpc]
  address = "{layout.sockets / "containerd.ttrpc.sock"}"
[debug]
  address = ""
[metrics]
  address = ""

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "{LOOPBACK}"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # Root here lacks CAP_SYS_RESOURCE: never ask for a lower oom_score_adj than containerd's.
  restrict_oom_score_adj = true
  disable_hugetlb_controller = true
  tolerate_missing_hugetlb_controller = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        BinaryName = "{RUNC}"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{node / "cni" / "net.d"}"
"""


def cni_config(layout: RealNodeLayout) -> dict[str, Any]:
    """One bridge in the node's namespace; no masquerade, since nothing may leave it anyway."""
    return {
        "cniVersion": "0.4.0",
        "name": "aigis-realnode",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]],
                    # No default route: a pod reaches the benchmarking range and nothing else.
                    "routes": [{"dst": ROUTED_RANGE}],
                    "dataDir": str(layout.node / "cni" / "ipam"),
                },
            },
        ],
    }


def kubelet_config(layout: RealNodeLayout, files: PkiFiles) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": LOOPBACK,
        "port": layout.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": LOOPBACK,
        "healthzPort": 0,
        "tlsCertFile": str(files.cert("kubelet-serving")),
        "tlsPrivateKeyFile": str(files.key("kubelet-serving")),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(files.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        # Machine facts (field notes §8): cgroup v1 hybrid, no systemd.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "failSwapOn": False,
        "protectKernelDefaults": False,
        "localStorageCapacityIsolation": False,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # No cluster DNS and no host resolv.conf: pods get no resolver (no real DNS).
        "resolvConf": "",
        "registerWithTaints": [NODE_TAINT],
        "maxPods": 30,
        "serializeImagePulls": False,
        "staticPodPath": "",
    }


def _import_images(layout: RealNodeLayout, say: Say) -> None:
    """Locally built images (podman's store) into containerd's k8s.io namespace, each only when
    the node does not already hold that very image (same image ID) under its name."""
    _ensure_busybox_images(layout, say)
    for image in (PAUSE_IMAGE, BUSYBOX_IMAGE, AIGIS_IMAGE):
        if subprocess.run(["podman", "image", "exists", image], check=False).returncode != 0:
            if image == AIGIS_IMAGE:
                say("images", f"{image} not built (make image): pods of aigis cannot start")
                continue
            raise RealNodeError(f"{image} missing from podman's store")
        started = time.monotonic()
        image_id = import_image(layout, image)
        took = time.monotonic() - started
        if image_id is None:
            say("images", f"{image} already on the node ({took:.1f}s to check)")
        else:
            say("images", f"{image} imported as {image_id[:12]} ({took:.1f}s)")


def import_image(layout: RealNodeLayout, image: str) -> str | None:
    """One image from podman's store into the node's containerd (no registry involved).

    Returns the image ID imported, or None when the node already held this image ID under
    `image`. The ID (the digest of the image's config) is what decides: a rebuilt image under
    the same name has another ID and is imported again, so pods never start from a stale copy.
    """
    image_id = _capture("podman", "image", "inspect", "--format", "{{.Id}}", image)
    if node_image_id(layout, image) == image_id:
        return None
    stem = image.split("/")[-1].replace(":", "_")
    archive = layout.images / f"{stem}-{image_id[:12]}.tar"
    if not archive.exists():
        layout.images.mkdir(parents=True, exist_ok=True)
        for old in layout.images.glob(f"{stem}-*.tar"):
            old.unlink()
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        _run("podman", "save", "--quiet", "--format", "docker-archive", "-o", str(partial), image)
        # Renamed only when complete: an interrupted save must not pass for the image later.
        partial.rename(archive)
    _ctr(layout, "images", "import", str(archive))
    imported = node_image_id(layout, image)
    if imported != image_id:
        raise RealNodeError(
            f"{image}: imported {archive.name}, but the node holds image ID {imported} "
            f"under that name, not {image_id}; remove {archive} and run `up` again"
        )
    return image_id


def node_image_id(layout: RealNodeLayout, image: str) -> str | None:
    """The image ID (config digest, as podman and the CRI show it) that the node's containerd
    holds under `image`, or None when it holds nothing under that name."""
    listing = _ctr(layout, "images", "list", f"name=={image}").splitlines()
    # Columns: REF TYPE DIGEST SIZE PLATFORMS LABELS; the digest is the manifest's.
    rows = [line.split() for line in listing[1:] if line.split()[:1] == [image]]
    if not rows:
        return None
    manifest = json.loads(_ctr(layout, "content", "get", rows[0][2]))
    if "manifests" in manifest:  # an index: podman's docker-archive has one manifest in it
        manifest = json.loads(_ctr(layout, "content", "get", manifest["manifests"][0]["digest"]))
    digest = str((manifest.get("config") or {}).get("digest") or "")
    return digest.removeprefix("sha256:") or None


def _ctr(layout: RealNodeLayout, *args: str) -> str:
    """`ctr` against the node's containerd, in the namespace the CRI uses."""
    return _capture("ctr", "--address", str(layout.containerd_socket), "-n", "k8s.io", *args)


def _ensure_busybox_images(layout: RealNodeLayout, say: Say) -> None:
    """The pause image and a busybox image, from Debian's static busybox (no registry)."""
    for image, config in (
        # Any process that sleeps forever serves as a pod sandbox; signals end it by SIGKILL.
        (PAUSE_IMAGE, ["--entrypoint", '["/bin/sleep", "2147483647"]', "--cmd", ""]),
        (BUSYBOX_IMAGE, ["--entrypoint", "", "--cmd", '["/bin/sh"]']),
    ):
        if subprocess.run(["podman", "image", "exists", image], check=False).returncode == 0:
            continue
        container = _capture("buildah", "from", "scratch")
        try:
            mount = Path(_capture("buildah", "mount", container))
            (mount / "bin").mkdir()
            (mount / "tmp").mkdir(mode=0o1777)
            shutil.copy2("/bin/busybox", mount / "bin" / "busybox")
            applets = _capture("/bin/busybox", "--list").split()
            for applet in applets:
                if applet != "busybox":
                    (mount / "bin" / applet).symlink_to("busybox")
            _run("buildah", "umount", container)
            _run("buildah", "config", *config, "--user", "65532:65532", container)
            _run("buildah", "commit", "--quiet", container, image)
        finally:
            subprocess.run(["buildah", "rm", container], check=False, capture_output=True)
        say("images", f"built {image} from /bin/busybox")


# ----------------------------------------------------------------------------------------------
# stopping


def _stop_node(layout: RealNodeLayout, say: Say) -> None:
    """Kill the pods' processes, then the node's, then undo mounts and the namespace."""
    killed = _kill_pod_processes()
    components = node_components(layout)
    stopped: list[str] = []
    for wave in _STOP_WAVES:
        targets: list[tuple[int, Path]] = []
        for name in wave:
            pid = _pid(layout, components[name])
            if pid is not None:
                targets.append((pid, components[name].executable))
                stopped.append(name)
        stop_all(targets)
    shims = _kill_shims(layout)
    _remove_cgroup_root()
    unmounted = _unmount_under(layout.node)
    removed = _remove_pod_namespaces()
    if (Path("/run/netns") / NETNS).exists():
        subprocess.run([IP, "netns", "delete", NETNS], check=False)
        removed.append(NETNS)
    if layout.node.exists():
        shutil.rmtree(layout.node, ignore_errors=True)
    if stopped or killed or shims or unmounted or removed:
        say(
            "real-node",
            f"stopped {', '.join(stopped) or 'no node process'}; killed {killed} pod processes "
            f"and {shims} shims; {unmounted} mounts, namespaces removed: {', '.join(removed)}",
        )


def _kill_pod_processes() -> int:
    """SIGKILL every process in the node's pod cgroups (all started by this node's runc)."""
    pids: set[int] = set()
    root = Path("/sys/fs/cgroup/pids") / CGROUP_ROOT
    if root.exists():
        for procs in root.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(line) for line in procs.read_text().split())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def _kill_shims(layout: RealNodeLayout) -> int:
    """containerd-shim processes that serve this node's containerd (they outlive it)."""
    marker = str(layout.containerd_socket).encode()
    count = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and marker in argv:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)
                count += 1
    return count


def _unmount_under(directory: Path) -> int:
    prefix = str(directory) + "/"
    mounts = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(prefix)
    ]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    return len(mounts)


def _remove_pod_namespaces() -> list[str]:
    """Pod network namespaces (containerd names them cni-*) that no process uses any more."""
    removed = []
    netns_dir = Path("/run/netns")
    for path in sorted(netns_dir.glob("cni-*")) if netns_dir.exists() else []:
        users = _capture(IP, "netns", "pids", path.name, check=False)
        if not users.strip():
            subprocess.run([IP, "netns", "delete", path.name], check=False)
            removed.append(path.name)
    return removed


# ----------------------------------------------------------------------------------------------
# probes and helpers


def _containerd_problem(layout: RealNodeLayout) -> str | None:
    result = subprocess.run(
        ["ctr", "--address", str(layout.containerd_socket), "version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    return None if result.returncode == 0 else (result.stderr.strip() or "ctr version failed")


def _policy_controller_problem() -> str | None:
    """None once kube-router has installed its top-level chain in the node's namespace."""
    result = subprocess.run(
        [NSENTER, f"--net=/run/netns/{NETNS}", "--", "iptables", "-S", "KUBE-ROUTER-FORWARD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if result.returncode == 0 else "no KUBE-ROUTER-FORWARD chain yet"


def _node_problem(layout: RealNodeLayout) -> str | None:
    files = PkiFiles(layout.pki)
    try:
        from aigis.devcluster.components import admin_tls

        api = LoopbackEndpoint(LOOPBACK, layout.ports.apiserver, admin_tls(files))
        response = api.get(f"/api/v1/nodes/{NODE_NAME}", timeout=2.0)
    except OSError as error:
        return str(error)
    if not response.ok:
        return f"GET node {NODE_NAME}: HTTP {response.status}"
    conditions = response.json().get("status", {}).get("conditions") or []
    for condition in conditions:
        if condition.get("type") == "Ready":
            if condition.get("status") == "True":
                return None
            return f"node not Ready: {condition.get('reason')}: {condition.get('message')}"
    return "node has no Ready condition yet"


def _wait(
    layout: RealNodeLayout,
    owner: Component,
    what: str,
    failure: Callable[[], str | None],
    say: Say,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    log = layout.log_file(owner.name)
    while True:
        problem = failure()
        if problem is None:
            say(owner.name, what)
            return
        if _pid(layout, owner) is None:
            raise RealNodeError(
                f"{owner.name} exited before reaching '{what}' ({problem}).\n"
                f"Last lines of {log}:\n{tail(log, 30)}"
            )
        if time.monotonic() > deadline:
            raise RealNodeError(
                f"{owner.name} did not reach '{what}' within {timeout:.0f}s ({problem}).\n"
                f"Last lines of {log}:\n{tail(log, 30)}"
            )
        time.sleep(_POLL_SECONDS)


def _pid(layout: RealNodeLayout, component: Component) -> int | None:
    """The component's pid if it runs (started through nsenter: looked for in all of argv)."""
    pid = read_pid(layout.pid_file(component.name))
    if pid is None or not is_running(pid, component.executable, anywhere=True):
        return None
    return pid


def _argv(component: Component) -> list[str]:
    """Host processes run as they are; node processes through nsenter."""
    if component.name in (APISERVER_RELAY_HOST, KUBELET_RELAY_HOST):
        return component.argv
    return [NSENTER, *component.args]


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RealNodeError(
            f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}"
        )


def _capture(*argv: str, check: bool = True) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RealNodeError(
            f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}"
        )
    return result.stdout.strip()
