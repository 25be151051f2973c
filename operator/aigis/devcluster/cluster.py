"""Bringing the local control plane up and down, and reporting whether it is healthy.

``up`` is idempotent and cheap when the cluster already runs, so every test session and every
``make`` target can simply call it. A partly running or stale cluster is never repaired in place:
it is stopped and started from scratch, because a clean start takes seconds and is predictable.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aigis.devcluster import pki as identities
from aigis.devcluster.build import ensure_binaries
from aigis.devcluster.components import (
    APISERVER,
    CONTROLLER_MANAGER,
    ETCD,
    KWOK,
    SCHEDULER,
    Component,
    admin_tls,
    all_components,
    kwok_config_path,
    simulated_logs_path,
    write_scheduler_config,
)
from aigis.devcluster.kubeconfig import write_kubeconfig
from aigis.devcluster.kwok import node_manifest, write_kwok_config
from aigis.devcluster.layout import LOOPBACK, NODE_NAME, Layout
from aigis.devcluster.loopback import LoopbackEndpoint
from aigis.devcluster.pki import ClientIdentity, PkiFiles, write_pki
from aigis.devcluster.processes import running_pid, start_detached, stop_all, tail

DEFAULT_TIMEOUT_SECONDS = 120.0
TIMEOUT_VARIABLE = "AIGIS_CLUSTER_TIMEOUT"
_POLL_SECONDS = 0.1
_PROBE_TIMEOUT_SECONDS = 2.0

# Taints the node lifecycle controller keeps on a node until it has seen it Ready; pods created
# while they are present would sit in Pending, so `up` waits them out.
_STARTUP_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})

# Which identity each component's kubeconfig authenticates as.
_COMPONENT_IDENTITIES: dict[str, ClientIdentity] = {
    CONTROLLER_MANAGER: identities.CONTROLLER_MANAGER,
    SCHEDULER: identities.SCHEDULER,
    KWOK: identities.KWOK,
}

Say = Callable[[str, str], None]


class ClusterError(RuntimeError):
    """The cluster could not be brought to (or out of) the requested state."""


@dataclass(frozen=True)
class Check:
    """One line of ``status``: a component or a readiness condition."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ClusterStatus:
    checks: tuple[Check, ...]

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks)

    def describe(self) -> str:
        width = max(len(check.name) for check in self.checks)
        lines = [
            f"{check.name:<{width}}  {'ok' if check.ok else 'DOWN':<4}  {check.detail}"
            for check in self.checks
        ]
        return "\n".join(lines)


class Progress:
    """Prints ``[devcluster  12.3s] component: message`` lines, timed from the command's start."""

    def __init__(self, emit: Callable[[str], None] | None = None) -> None:
        self._emit = emit or _print_flushed
        self._started = time.monotonic()

    def __call__(self, component: str, message: str) -> None:
        elapsed = time.monotonic() - self._started
        self._emit(f"[devcluster {elapsed:6.1f}s] {component}: {message}")


def configured_timeout() -> float:
    """Seconds to wait for each readiness step (``AIGIS_CLUSTER_TIMEOUT`` overrides)."""
    raw = os.environ.get(TIMEOUT_VARIABLE)
    if not raw:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        return float(raw)
    except ValueError:
        raise ClusterError(f"{TIMEOUT_VARIABLE}={raw!r} is not a number of seconds") from None


def up(
    layout: Layout | None = None,
    emit: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> Layout:
    """Make sure a healthy cluster runs; start it cleanly unless one already does."""
    layout = layout or Layout.from_env()
    say = Progress(emit)
    timeout = configured_timeout() if timeout is None else timeout
    with _exclusive(layout, say):
        if status(layout).healthy:
            say("cluster", f"already up and healthy (kubeconfig {layout.kubeconfig})")
            return layout
        _clear_leftovers(layout, say)
        ensure_binaries(layout, lambda message: say("build", message))
        _check_ports_free(layout)
        files = _prepare_state(layout)
        try:
            _start_all(layout, files, say, timeout)
        except BaseException:
            # Also on Ctrl-C: the components run in their own session and would otherwise linger.
            # The logs stay for inspection; the next `up` clears them.
            stopped = _stop_components(layout)
            if stopped:
                say("cluster", f"start failed: stopped {', '.join(stopped)}; logs in {layout.logs}")
            raise
        say("cluster", f"ready; kubeconfig {layout.kubeconfig}")
    return layout


def down(layout: Layout | None = None, emit: Callable[[str], None] | None = None) -> None:
    """Stop every component and delete the state directory (never the binaries)."""
    layout = layout or Layout.from_env()
    say = Progress(emit)
    with _exclusive(layout, say):
        stopped = _stop_components(layout)
        if stopped:
            say("cluster", f"stopped {', '.join(stopped)}")
        had_state = layout.state.exists()
        if had_state:
            shutil.rmtree(layout.state)
            say("cluster", f"removed {layout.state}")
        if not stopped and not had_state:
            say("cluster", "already down")


def status(layout: Layout | None = None) -> ClusterStatus:
    """Process, health-endpoint and readiness checks, without changing anything."""
    layout = layout or Layout.from_env()
    files = PkiFiles(layout.pki)
    components = all_components(layout, files)
    try:
        api = _api(layout, files)
    except OSError:
        checks = [_process_check(layout, c, None) for c in components.values()]
        checks.append(Check("pki", False, f"no client certificate in {layout.pki}"))
        return ClusterStatus(tuple(checks))
    checks = [_process_check(layout, c, api.tls) for c in components.values()]
    if all(check.ok for check in checks):
        checks.append(_readiness_check(f"node {NODE_NAME}", _node_not_ready(api)))
        checks.append(
            _readiness_check(
                "serviceaccount default/default", _default_service_account_missing(api)
            )
        )
    return ClusterStatus(tuple(checks))


def _start_all(layout: Layout, files: PkiFiles, say: Say, timeout: float) -> None:
    """Start in dependency order and wait for each stage, so a failure names its component."""
    components = all_components(layout, files)
    api = _api(layout, files)

    for name, state in ((ETCD, "healthy"), (APISERVER, "ready")):
        _start(layout, components[name], say)
        _wait(
            layout, components[name], state, _health_probe(components[name], api.tls), say, timeout
        )
    # Created before kwok starts, so kwok initializes it as soon as it begins watching.
    _create_node(api)
    say(APISERVER, f"created node {NODE_NAME}")

    # These three only need the API server, so they start together to save seconds.
    late = (CONTROLLER_MANAGER, SCHEDULER, KWOK)
    for name in late:
        _start(layout, components[name], say)
    for name in late:
        probe = _health_probe(components[name], api.tls)
        _wait(layout, components[name], "healthy", probe, say, timeout)
    _wait(
        layout,
        components[KWOK],
        f"node {NODE_NAME} Ready and schedulable",
        lambda: _node_not_ready(api),
        say,
        timeout,
    )
    _wait(
        layout,
        components[CONTROLLER_MANAGER],
        "ServiceAccount default/default created",
        lambda: _default_service_account_missing(api),
        say,
        timeout,
    )


def _start(layout: Layout, component: Component, say: Say) -> None:
    pid = start_detached(
        component.argv,
        layout.log_file(component.name),
        layout.pid_file(component.name),
        cwd=layout.state,
        env=component.environment(),
    )
    say(component.name, f"started (pid {pid}, log {layout.log_file(component.name)})")


def _wait(
    layout: Layout,
    owner: Component,
    what: str,
    failure: Callable[[], str | None],
    say: Say,
    timeout: float,
) -> None:
    """Poll ``failure`` until it returns None; fail early if ``owner`` exits, with its log tail."""
    deadline = time.monotonic() + timeout
    while True:
        problem = failure()
        if problem is None:
            say(owner.name, what)
            return
        if running_pid(layout.pid_file(owner.name), owner.executable) is None:
            raise ClusterError(
                f"{owner.name} exited before reaching '{what}' ({problem}).\n"
                f"Last lines of {layout.log_file(owner.name)}:\n{tail(layout.log_file(owner.name))}"
            )
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{owner.name} did not reach '{what}' within {timeout:.0f}s ({problem}).\n"
                f"Last lines of {layout.log_file(owner.name)}:\n{tail(layout.log_file(owner.name))}"
            )
        time.sleep(_POLL_SECONDS)


@dataclass(frozen=True)
class _Api:
    """The API server as the admin user, plus the TLS context reused for every health probe."""

    endpoint: LoopbackEndpoint
    tls: ssl.SSLContext


def _api(layout: Layout, files: PkiFiles) -> _Api:
    """Raises ``OSError`` when the PKI is missing (cluster down)."""
    tls = admin_tls(files)
    return _Api(LoopbackEndpoint(LOOPBACK, layout.ports.apiserver, tls), tls)


def _health_probe(component: Component, tls: ssl.SSLContext) -> Callable[[], str | None]:
    return lambda: _unhealthy(component, tls)


def _unhealthy(component: Component, tls: ssl.SSLContext) -> str | None:
    """None when the component's health endpoint answers 2xx, else what went wrong."""
    endpoint = component.health_endpoint(tls)
    try:
        response = endpoint.get(component.health_path, timeout=_PROBE_TIMEOUT_SECONDS)
    except OSError as error:
        return f"{component.health_path}: {error}"
    if response.ok:
        return None
    return f"{component.health_path}: HTTP {response.status} {response.text()[:300]}"


def _node_not_ready(api: _Api) -> str | None:
    """None when the simulated node is Ready and free of start-up taints."""
    try:
        response = api.endpoint.get(f"/api/v1/nodes/{NODE_NAME}", timeout=_PROBE_TIMEOUT_SECONDS)
    except OSError as error:
        return str(error)
    if not response.ok:
        return f"GET node: HTTP {response.status}"
    node = response.json()
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    if not ready:
        return "node not Ready yet"
    taints = {t.get("key") for t in node.get("spec", {}).get("taints") or []}
    blocking = sorted(taints & _STARTUP_TAINTS)
    if blocking:
        return f"node still tainted {', '.join(blocking)}"
    return None


def _default_service_account_missing(api: _Api) -> str | None:
    """None once KCM created the ServiceAccount pods in namespace default need for admission."""
    path = "/api/v1/namespaces/default/serviceaccounts/default"
    try:
        response = api.endpoint.get(path, timeout=_PROBE_TIMEOUT_SECONDS)
    except OSError as error:
        return str(error)
    return None if response.ok else f"GET {path}: HTTP {response.status}"


def _create_node(api: _Api) -> None:
    response = api.endpoint.request("POST", "/api/v1/nodes", body=node_manifest())
    if not response.ok and response.status != 409:
        raise ClusterError(
            f"creating node {NODE_NAME} failed: HTTP {response.status} {response.text()}"
        )


def _process_check(layout: Layout, component: Component, tls: ssl.SSLContext | None) -> Check:
    pid = running_pid(layout.pid_file(component.name), component.executable)
    if pid is None:
        return Check(component.name, False, "not running")
    if tls is None:
        return Check(component.name, False, f"pid {pid}, cannot probe without PKI")
    problem = _unhealthy(component, tls)
    if problem is None:
        return Check(component.name, True, f"pid {pid}, {component.health_path} ok")
    return Check(component.name, False, f"pid {pid}, {problem}")


def _readiness_check(name: str, problem: str | None) -> Check:
    return Check(name, problem is None, problem or "ok")


def _clear_leftovers(layout: Layout, say: Say) -> None:
    """Stop a partly running cluster and remove stale state so the start is clean."""
    stopped = _stop_components(layout)
    if stopped:
        say("cluster", f"partly up: stopped leftover {', '.join(stopped)} to start cleanly")
    if layout.state.exists():
        shutil.rmtree(layout.state)
        say("cluster", f"removed stale state {layout.state}")


# Stop order: clients of the API server first, then the API server, then etcd. An API server
# whose etcd vanished first lingers in its graceful shutdown until it is killed.
_STOP_WAVES = ((KWOK, SCHEDULER, CONTROLLER_MANAGER), (APISERVER,), (ETCD,))


def _stop_components(layout: Layout) -> list[str]:
    """Stop every component recorded in a pid file; return the names of those that ran."""
    components = all_components(layout, PkiFiles(layout.pki))
    stopped: list[str] = []
    for wave in _STOP_WAVES:
        targets: list[tuple[int, Path]] = []
        for name in wave:
            component = components[name]
            pid = running_pid(layout.pid_file(name), component.executable)
            if pid is not None:
                targets.append((pid, component.executable))
                stopped.append(name)
        stop_all(targets)
    return stopped


def _check_ports_free(layout: Layout) -> None:
    ports = layout.ports.by_variable()
    if len(set(ports.values())) != len(ports):
        raise ClusterError(f"two components are configured with the same port: {ports}")
    busy = [f"{port} ({variable})" for variable, port in ports.items() if not _port_free(port)]
    if busy:
        raise ClusterError(
            f"ports already in use on {LOOPBACK} by processes this cluster did not start: "
            f"{', '.join(busy)}. Stop them or choose other ports with the named variables."
        )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Like the Go servers, tolerate sockets in TIME_WAIT from a previous run.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _prepare_state(layout: Layout) -> PkiFiles:
    """Fresh PKI, kubeconfigs and component configuration in a new state directory."""
    for directory in (layout.state, layout.logs, layout.run):
        directory.mkdir(parents=True, exist_ok=True)
    layout.state.chmod(0o700)
    files = write_pki(layout.pki)
    server = layout.apiserver_url
    write_kubeconfig(
        layout.kubeconfig, server, files, identities.ADMIN.file_stem, identities.ADMIN.user
    )
    for component, identity in _COMPONENT_IDENTITIES.items():
        write_kubeconfig(
            layout.component_kubeconfig(component), server, files, identity.file_stem, identity.user
        )
    write_scheduler_config(layout)
    write_kwok_config(layout.kwok_stages, kwok_config_path(layout), simulated_logs_path(layout))
    return files


@contextlib.contextmanager
def _exclusive(layout: Layout, say: Say) -> Iterator[None]:
    """One up/down at a time per cache directory (parallel test sessions share one cluster)."""
    layout.cache.mkdir(parents=True, exist_ok=True)
    with layout.lock_file.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("cluster", f"waiting for another devcluster command (lock {layout.lock_file})")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _print_flushed(line: str) -> None:
    print(line, flush=True)
