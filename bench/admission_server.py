"""Latency, throughput and memory of the aigis admission webhook over TLS on loopback.

The webhook server runs in its own process pinned to CPU core 0, exactly as `aigis webhook`
serves (uvloop, the same aiohttp server, TLS with an ECDSA certificate from aigis's own CA), over
a fixed snapshot instead of the watch cache: 20 AIWorkloads in the namespace and two
AIClusterPolicies (Enforce with registries and Pod Security baseline, and Audit), so every
review runs the whole engine. The load generator runs pinned to core 1 with 64 keep-alive TLS
connections, like the API server's connection pool.

Load is open-loop: requests are sent on a fixed schedule whatever the answers do. A request
that finds every connection busy waits, and its latency counts from its scheduled time, so a
stalled server shows up as queueing in the percentiles instead of silently lowering the offered
rate (no coordinated omission); a request sent at once counts from when it was sent, so the load
generator's own timer jitter is not charged to the server.

The bodies are real AdmissionReviews (about 4 KB): a compliant Deployment with three containers
for `/validate`, and its Pod for `/mutate` (which gets the gateway injected). Figures:

- p50/p99 at 500 reviews/s (target: p99 < 5 ms),
- the highest rate sustained with p99 < 25 ms (the API server's first latency bucket above
  5 ms) over a whole phase, found by stepping the rate up by half and then bisecting; a phase
  that misses is run once more before the rate counts as missed,
- the server's resident memory after the runs, and its peak.

Run: `uv run python bench/admission_server.py` (`--quick` for shorter phases). Not collected by
pytest; numbers vary by machine. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

SERVER_CORE = 0
LOAD_CORE = 1
CONNECTIONS = 64
BASE_RATE = 500
P99_AT_BASE_TARGET_MS = 5.0
P99_CEILING_MS = 25.0
NAMESPACE = "shop"
GATEWAY_IMAGE = "ghcr.io/aigis-dev/aigis:0.1.0"


# --- the snapshot and the bodies ------------------------------------------------------------


def workload(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "generation": 1,
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "owner": "team-support",
            "purpose": "Answers customer questions about orders from the help-centre articles.",
            "enforcement": "Enforce",
            "dataRegions": ["eu"],
            "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
            "egress": [
                {"host": "eu.api.openai.com"},
                {
                    "service": {"namespace": "search", "name": "opensearch"},
                    "ports": [{"port": 9200}],
                },
            ],
            "gateway": {
                "providerKeys": [
                    {
                        "provider": "openai",
                        "secretRef": {"name": "openai-api-key", "key": "api-key"},
                    }
                ]
            },
        },
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Reconciled",
                    "lastTransitionTime": "2026-11-30T00:00:00Z",
                }
            ],
        },
    }


POLICIES = [
    {
        "name": "production",
        "spec": {
            "namespaceSelector": {"matchLabels": {"env": "prod"}},
            "enforcement": "Enforce",
            "shadowAI": "Enforce",
            "podSecurity": "baseline",
            "allowedRegistries": ["registry.example.com/shop", "ghcr.io/aigis-dev"],
            "allowedProviders": ["openai", "anthropic"],
        },
    },
    {"name": "everyone", "spec": {"enforcement": "Audit", "shadowAI": "Audit"}},
]


def containers() -> list[dict[str, Any]]:
    def container(name: str, image: str, port: int, env: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "name": name,
            "image": image,
            "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
            "env": env,
            "resources": {
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"memory": "512Mi"},
            },
            "readinessProbe": {
                "httpGet": {"path": "/healthz", "port": port},
                "periodSeconds": 10,
            },
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/app"}],
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }

    return [
        container(
            "app",
            "registry.example.com/shop/support-bot:1.4.2",
            8080,
            [
                {
                    "name": "OPENAI_API_KEY",
                    "valueFrom": {"secretKeyRef": {"name": "openai-api-key", "key": "api-key"}},
                },
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "SEARCH_URL", "value": "http://opensearch.search.svc:9200"},
            ],
        ),
        container(
            "worker",
            "registry.example.com/shop/support-bot-worker:1.4.2",
            8081,
            [{"name": "QUEUE", "value": "tickets"}, {"name": "CONCURRENCY", "value": "4"}],
        ),
        container(
            "metrics",
            "registry.example.com/shop/exporter:0.9.1",
            9100,
            [{"name": "SCRAPE_INTERVAL", "value": "15s"}],
        ),
    ]


def pod_spec() -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "serviceAccountName": "support-bot",
        "securityContext": {"runAsNonRoot": True, "fsGroup": 2000},
        "containers": containers(),
        "volumes": [{"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "ai", "effect": "NoSchedule"}
        ],
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
    }


def labels() -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "bot-07",
        "app.kubernetes.io/part-of": "support",
        "app.kubernetes.io/version": "1.4.2",
    }


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "bot-07",
            "namespace": NAMESPACE,
            "labels": labels(),
            "annotations": {"deployment.kubernetes.io/revision": "3"},
        },
        "spec": {
            "replicas": 3,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "bot-07"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {"metadata": {"labels": labels()}, "spec": pod_spec()},
        },
    }


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "bot-07-5d9c8f7b6-",
            "namespace": NAMESPACE,
            "labels": {**labels(), "pod-template-hash": "5d9c8f7b6"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "bot-07-5d9c8f7b6",
                    "uid": "0b6a2f1e-3c55-4a7e-9d7c-1f0e2a3b4c5d",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pod_spec(),
    }


def admission_review(obj: dict[str, Any], group: str, version: str, resource: str) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": group, "version": version, "kind": obj["kind"]},
                "resource": {"group": group, "version": version, "resource": resource},
                "requestKind": {"group": group, "version": version, "kind": obj["kind"]},
                "requestResource": {"group": group, "version": version, "resource": resource},
                "name": obj["metadata"].get("name", ""),
                "namespace": NAMESPACE,
                "operation": "CREATE",
                "userInfo": {
                    "username": "system:serviceaccount:ci:deployer",
                    "uid": "b3c1d2e4-0000-4000-8000-000000000001",
                    "groups": [
                        "system:serviceaccounts",
                        "system:serviceaccounts:ci",
                        "system:authenticated",
                    ],
                },
                "object": obj,
                "oldObject": None,
                "dryRun": False,
                "options": {
                    "apiVersion": "meta.k8s.io/v1",
                    "kind": "CreateOptions",
                    "fieldManager": "kubectl-client-side-apply",
                },
            },
        }
    )


# --- the server process ---------------------------------------------------------------------


def serve(cert_dir: Path, port_file: Path) -> None:
    """The server process: `aigis webhook`'s HTTP stack over a fixed snapshot."""
    import uvloop
    from aiohttp import web

    from aigis.admission.mutation import InjectionSettings
    from aigis.api.validation import parse_cluster_policy_spec
    from aigis.egress.compliance import NamedPolicy
    from aigis.webhook.cache import StaticView
    from aigis.webhook.certificates import DirectoryCertificateSource, ReloadableTLS
    from aigis.webhook.metrics import WebhookMetrics
    from aigis.webhook.server import AdmissionServer

    policies = []
    for entry in POLICIES:
        model, errors = parse_cluster_policy_spec(entry["spec"])
        assert model is not None, errors
        assert not errors, errors
        policies.append(NamedPolicy(str(entry["name"]), model))
    view = StaticView(
        namespaces={NAMESPACE: {"env": "prod", "kubernetes.io/metadata.name": NAMESPACE}},
        workloads=[workload(f"bot-{i:02d}") for i in range(20)],
        policies=policies,
    )

    async def main() -> None:
        tls = ReloadableTLS()
        tls.load(DirectoryCertificateSource(cert_dir).read())
        server = AdmissionServer(
            view,
            injection=InjectionSettings(gateway_image=GATEWAY_IMAGE),
            metrics=WebhookMetrics(),
            aigis_namespace="aigis-system",
            audit=lambda record: None,
        )
        runner = web.ServerRunner(server.web_server(), handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context, backlog=1024).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        gc.collect()
        gc.freeze()
        port_file.write_text(str(runner.addresses[0][1]))
        await stop.wait()
        await runner.cleanup()

    uvloop.run(main())


# --- the load generator -----------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; answers are matched to requests in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        marker = head.find(b"content-length:")
        stop = head.find(b"\r\n", marker)
        length = int(head[marker + 15 : stop if stop > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed by the server"))

    async def send(self, request: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


def http_request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path}?timeout=5s HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nAccept: application/json, */*\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Phase:
    rate: float
    seconds: float
    latencies: list[float]
    errors: int
    elapsed: float

    @property
    def achieved(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("inf")
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    @property
    def sustained(self) -> bool:
        return (
            self.errors == 0
            and self.percentile(0.99) < P99_CEILING_MS
            and self.achieved >= 0.97 * self.rate
        )


async def connect(port: int, context: ssl.SSLContext, count: int) -> list[Connection]:
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(count):
        _, connection = await loop.create_connection(
            Connection, "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
        )
        sock = connection.transport.get_extra_info("socket") if connection.transport else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connections.append(connection)
    return connections


async def open_loop(
    connections: list[Connection], request: bytes, rate: float, seconds: float
) -> Phase:
    """Send `request` at `rate` per second for `seconds` (see the module docstring for how
    latency is counted)."""
    idle: list[Connection] = list(connections)
    backlog: list[float] = []
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds)
    done = asyncio.Event()
    finished = 0

    async def fire(connection: Connection, scheduled: float) -> None:
        nonlocal errors, finished
        while True:
            try:
                status = await connection.send(request)
            except ConnectionError:
                errors += 1
                status = 0
            latencies.append((time.perf_counter() - scheduled) * 1000)
            if status != 200:
                errors += 1
            finished += 1
            if finished == total:
                done.set()
            if not backlog:
                idle.append(connection)
                return
            scheduled = backlog.pop(0)

    tasks: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    for index in range(total):
        scheduled = started + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        if idle:
            task = asyncio.create_task(fire(idle.pop(), time.perf_counter()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        else:
            backlog.append(scheduled)
    await asyncio.wait_for(done.wait(), 60)
    return Phase(rate, seconds, latencies, errors, time.perf_counter() - started)


def rss_kib(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


@contextlib.contextmanager
def server_process(cert_dir: Path) -> Iterator[tuple[int, int]]:
    port_file = cert_dir / "port"
    command = [sys.executable, __file__, "--serve", str(cert_dir)]
    process = subprocess.Popen(command, preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CORE}))
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the webhook server did not start")
            time.sleep(0.05)
        yield process.pid, int(port_file.read_text())
    finally:
        process.terminate()
        process.wait(timeout=15)


def write_certificates(directory: Path) -> ssl.SSLContext:
    from aigis.webhook.certificates import (
        RotationPolicy,
        issue_ca,
        issue_serving_certificate,
        serving_hosts,
    )

    now = datetime.now(UTC)
    policy = RotationPolicy()
    ca = issue_ca(now, policy)
    serving = issue_serving_certificate(ca, serving_hosts(), now, policy)
    (directory / "tls.crt").write_bytes(serving.cert_pem)
    (directory / "tls.key").write_bytes(serving.key_pem)
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    return ssl.create_default_context(cadata=ca.cert_pem.decode())


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


async def measure(port: int, context: ssl.SSLContext, seconds: float) -> dict[str, Any]:
    connections = await connect(port, context, CONNECTIONS)
    validate = http_request(
        port, "/validate", admission_review(deployment(), "apps", "v1", "deployments")
    )
    mutate = http_request(port, "/mutate", admission_review(pod(), "", "v1", "pods"))
    for connection in connections[:2]:
        assert await connection.send(validate) == 200
        assert await connection.send(mutate) == 200
    await open_loop(connections, validate, BASE_RATE, min(2.0, seconds))  # warm-up
    base = await open_loop(connections, validate, BASE_RATE, seconds)
    base_mutate = await open_loop(connections, mutate, BASE_RATE, seconds)
    # Step up until the ceiling is missed, then bisect between the last pass and the miss.
    steps: list[Phase] = []

    async def holds(rate: float) -> Phase | None:
        """A phase at `rate` that met the ceiling, or None. A miss is tried once more: the
        machine is shared, and one stall elsewhere should not decide the figure."""
        for _ in range(2):
            phase = await open_loop(connections, validate, rate, seconds)
            steps.append(phase)
            await asyncio.sleep(1.0)  # let a backlog drain before the next phase
            if phase.sustained:
                return phase
        return None

    best: Phase | None = base if base.sustained else None
    rate = 1000.0
    failed: float | None = None
    while failed is None and rate <= 20000:
        passed = await holds(rate)
        if passed is not None:
            best = passed
            rate *= 1.5
        else:
            failed = rate
    low = best.rate if best is not None else 0.0
    for _ in range(4):
        if failed is None or failed - low < 100:
            break
        middle = (low + failed) / 2
        passed = await holds(middle)
        if passed is not None:
            best, low = passed, middle
        else:
            failed = middle
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()
    return {
        "validate_body": len(admission_review(deployment(), "apps", "v1", "deployments")),
        "mutate_body": len(admission_review(pod(), "", "v1", "pods")),
        "base": base,
        "base_mutate": base_mutate,
        "steps": steps,
        "best": best,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s phases instead of 10 s")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve is not None:
        serve(arguments.serve, arguments.serve / "port")
        return
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two CPU cores (server and load generator pinned apart)", file=sys.stderr)
        sys.exit(2)
    seconds = 3.0 if arguments.quick else 10.0
    import uvloop

    with tempfile.TemporaryDirectory(prefix="aigis-bench-webhook-") as directory:
        cert_dir = Path(directory)
        context = write_certificates(cert_dir)
        with server_process(cert_dir) as (pid, port):
            os.sched_setaffinity(0, {LOAD_CORE})
            # The generator's own collections would pause reading answers mid-phase.
            gc.disable()
            results = uvloop.run(measure(port, context, seconds))
            gc.enable()
            rss, peak = rss_kib(pid)
    report(results, rss, peak, seconds)


def report(results: dict[str, Any], rss: int, peak: int, seconds: float) -> None:
    base: Phase = results["base"]
    mutate: Phase = results["base_mutate"]
    best: Phase | None = results["best"]
    print(
        f"aigis admission webhook, TLS on 127.0.0.1, server pinned to core {SERVER_CORE}, "
        f"load on core {LOAD_CORE}, {CONNECTIONS} keep-alive connections, open loop, "
        f"{seconds:.0f} s per phase"
    )
    print(
        f"bodies: /validate Deployment {results['validate_body']} B, "
        f"/mutate Pod {results['mutate_body']} B"
    )
    print()
    header = (
        f"{'phase':<26}{'offered/s':>10}{'achieved/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    )
    print(header)
    print("-" * len(header))
    rows = [("validate @500/s", base), ("mutate @500/s", mutate)]
    rows += [("validate step", phase) for phase in results["steps"]]
    for name, phase in rows:
        print(
            f"{name:<26}{phase.rate:>10.0f}{phase.achieved:>12.0f}"
            f"{phase.percentile(0.5):>9.2f}{phase.percentile(0.99):>9.2f}{phase.errors:>8}"
        )
    print()
    p99 = base.percentile(0.99)
    print("aigis targets:")
    print(
        f"  p99 < {P99_AT_BASE_TARGET_MS:.0f} ms at {BASE_RATE} reviews/s:     "
        f"p50 {base.percentile(0.5):.2f} ms, p99 {p99:.2f} ms   "
        f"{verdict(p99 < P99_AT_BASE_TARGET_MS and base.errors == 0)}"
    )
    print(
        f"  mutate at {BASE_RATE} reviews/s:             p50 {mutate.percentile(0.5):.2f} ms, "
        f"p99 {mutate.percentile(0.99):.2f} ms"
    )
    if best is not None:
        print(
            f"  max sustained with p99 < {P99_CEILING_MS:.0f} ms:     "
            f"{best.achieved:.0f} reviews/s (p99 {best.percentile(0.99):.2f} ms)"
        )
    else:
        print(f"  max sustained with p99 < {P99_CEILING_MS:.0f} ms:     none   MISSED")
    print(
        f"  server memory:                    RSS {rss / 1024:.1f} MiB (peak {peak / 1024:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
