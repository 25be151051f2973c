"""`aigis webhook`, `aigis operator` and one-shot `aigis` commands as subprocesses, for the
integration tests and the benchmarks.

Each component's command line is built here once, from the flags the tests and benches pass, and
run with the caller's kubeconfig in `KUBECONFIG` on top of the inherited environment, its output in
a log file. What callers wait for (readiness, metrics) and for how long stays with them: a test
waits through `Cluster.wait_for`, a bench in its own loop. Every listener binds 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
STOP_SECONDS = 15.0
_REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free TCP port on loopback, chosen by the kernel from its ephemeral range."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports below the kernel's ephemeral range: a port from that range
    can be taken by any outgoing connection (proxies and Prometheus make many) before the process
    that was meant to listen on it binds it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def _environment(kubeconfig: str | Path) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(kubeconfig)}


@dataclass
class AigisProcess:
    """A running `aigis` component: its process, its log and (0 when off) its metrics port.

    `port` is the webhook's admission port; 0 for the operator.
    """

    process: subprocess.Popen[bytes]
    log: Path
    metrics_port: int
    port: int = 0

    def alive(self) -> None:
        """Fail with the log's tail if the process has exited."""
        assert self.process.poll() is None, self.log.read_text()[-4000:]

    def _url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.metrics_port}{path}"

    def metrics(self) -> str:
        """The Prometheus text of /metrics."""
        with urllib.request.urlopen(self._url("/metrics"), timeout=5) as response:  # noqa: S310
            return str(response.read().decode())

    def metrics_or_none(self) -> str | None:
        """/metrics, or None while it does not answer yet; fails if the process died."""
        self.alive()
        try:
            return self.metrics()
        except OSError:
            return None

    def ready(self) -> bool:
        """Whether /readyz answers 200 (the webhook serves it); fails if the process died."""
        self.alive()
        try:
            with urllib.request.urlopen(self._url("/readyz"), timeout=5) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    def peak_memory_mib(self) -> float:
        """The process's peak resident memory so far (VmHWM), in MiB; NaN if not reported."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> str:
        """Terminate (kill after `STOP_SECONDS`) unless already exited; return the log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log.read_text()

    def assert_clean_log(self) -> None:
        """The log holds no Python traceback (an error the process did not handle)."""
        text = self.log.read_text()
        assert "Traceback" not in text, f"{self.log}:\n{text[-6000:]}"


AIGIS = (sys.executable, "-m", "aigis")


def _start(
    argv: Sequence[str], kubeconfig: str | Path, log: Path, *, metrics_port: int, port: int = 0
) -> AigisProcess:
    """ARGV from the repository against `kubeconfig`, stdout and stderr into `log`."""
    with log.open("w") as out:
        process = subprocess.Popen(
            argv, cwd=_REPO, env=_environment(kubeconfig), stdout=out, stderr=subprocess.STDOUT
        )
    return AigisProcess(process, log, metrics_port, port)


def start_webhook(
    kubeconfig: str | Path,
    log: Path,
    *,
    aigis_namespace: str,
    configuration_name: str,
    scope: str,
    gateway_image: str | None = None,
    port: int | None = None,
    metrics_port: int | None = None,
    extra: Sequence[str] = (),
    command: Sequence[str] = (*AIGIS, "webhook"),
) -> AigisProcess:
    """`aigis webhook` on 127.0.0.1:`port`, registered by URL under `configuration_name`,
    reviewing only objects labelled `scope` ("key=value"), with /metrics and /readyz on
    `metrics_port` (each a free port unless given). Without `gateway_image` the webhook's
    default is injected. `command` replaces `python -m aigis webhook` (a bench's wrapper)."""
    port = port or free_port()
    metrics_port = metrics_port or free_port()
    argv = [
        *command,
        "--listen", f"{LOOPBACK}:{port}",
        "--metrics-listen", f"{LOOPBACK}:{metrics_port}",
        "--webhook-url", f"https://{LOOPBACK}:{port}",
        "--aigis-namespace", aigis_namespace,
        "--configuration-name", configuration_name,
        "--scope", scope,
        *(("--gateway-image", gateway_image) if gateway_image else ()),
        *extra,
    ]  # fmt: skip
    return _start(argv, kubeconfig, log, metrics_port=metrics_port, port=port)


def start_operator(
    kubeconfig: str | Path,
    log: Path,
    *,
    metrics_port: int = 0,
    health_port: int = 0,
    extra: Sequence[str] = (),
) -> AigisProcess:
    """`aigis operator` with /metrics and /healthz on 127.0.0.1 (port 0 turns either off)."""
    argv = [
        *AIGIS, "operator",
        "--metrics-address", LOOPBACK, "--metrics-port", str(metrics_port),
        "--health-address", LOOPBACK, "--health-port", str(health_port),
        *extra,
    ]  # fmt: skip
    return _start(argv, kubeconfig, log, metrics_port=metrics_port)


def run_aigis(
    kubeconfig: str | Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`aigis ARGS` as a person runs it from the repository, output captured, never raising on
    a non-zero exit (tests assert on it)."""
    return subprocess.run(
        [*AIGIS, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=_REPO,
        env=_environment(kubeconfig),
    )
