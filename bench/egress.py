"""Benchmark: egress control, from the pure compiler to convergence on the local control plane.

1. Rendering one NetworkPolicy in the pure core (target: under 100 µs).
2. Convergence: 1,000 AIWorkloads created at once (32 concurrent clients) against a running
   operator; each is timed from its creation to the moment it is Ready *and* its NetworkPolicy
   exists (target: all within 60 s). Reports p50/p99 time-to-Ready and the operator's peak
   memory (VmHWM).

Run: `make bench` (or `uv run python bench/egress.py [--workloads N]`). Needs the local control
plane (started if it is not up). All traffic stays on 127.0.0.1; hosts resolve from a static file.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client, config

from aigis.api.aiworkload import AIWorkloadSpec
from aigis.devcluster import cluster as devcluster
from aigis.egress.networkpolicy import WorkloadRef, render_network_policy
from aigis.kube import KubeClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.support: the tests' way of starting aigis processes
from tests.support.aigis_processes import start_operator  # noqa: E402

SPEC: dict[str, Any] = {
    "selector": {"matchLabels": {"app": "bot"}},
    "owner": "team-bench",
    "purpose": "benchmark workload",
    "dataRegions": ["eu"],
    "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
    "egress": [
        {"host": "eu.api.openai.com"},
        {"host": "bedrock-runtime.eu-west-1.amazonaws.com"},
        {"cidr": "10.20.0.0/16", "except": ["10.20.99.0/24"], "ports": [{"port": 5432}]},
        {"service": {"podSelector": {"matchLabels": {"app": "qdrant"}}}, "ports": [{"port": 6333}]},
    ],
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bench_render() -> float:
    """Microseconds per render of a four-destination NetworkPolicy."""
    spec = AIWorkloadSpec.model_validate(SPEC, by_alias=True)
    ref = WorkloadRef("bot", "team-a", "uid")
    addresses = {
        "eu.api.openai.com": ["192.0.2.20"],
        "bedrock-runtime.eu-west-1.amazonaws.com": ["192.0.2.40", "192.0.2.41"],
    }

    def render() -> None:
        render_network_policy(ref, spec, addresses=addresses, service_selectors={})

    number = 20_000
    best = min(timeit.repeat(render, number=number, repeat=5))
    return best / number * 1e6


class ReadyPoll:
    """Lists the namespace's AIWorkloads and NetworkPolicies in a loop and notes when each is
    first seen done. Polling (every 0.2 s) bounds the timing error; a watch was tried and its
    client-side buffering delayed events by seconds."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.ready_at: dict[str, float] = {}
        self.policy_at: dict[str, float] = {}
        self._kube = kube
        self._namespace = namespace
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def done_at(self, name: str) -> float | None:
        ready, policy = self.ready_at.get(name), self.policy_at.get(f"aigis-{name}")
        return max(ready, policy) if ready and policy else None

    async def _poll(self) -> None:
        workloads = f"/apis/aigis.dev/v1alpha1/namespaces/{self._namespace}/aiworkloads"
        policies = f"/apis/networking.k8s.io/v1/namespaces/{self._namespace}/networkpolicies"
        while True:
            now = time.monotonic()
            for obj in (await self._kube.request("GET", workloads) or {}).get("items", []):
                conditions = obj.get("status", {}).get("conditions", [])
                if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                    self.ready_at.setdefault(obj["metadata"]["name"], now)
            for obj in (await self._kube.request("GET", policies) or {}).get("items", []):
                self.policy_at.setdefault(obj["metadata"]["name"], now)
            await asyncio.sleep(0.2)


def bench_convergence(count: int) -> dict[str, float]:
    layout = devcluster.up()
    kubeconfig = str(layout.kubeconfig)
    subprocess.run(
        [str(layout.binary("kubectl")), f"--kubeconfig={kubeconfig}", "apply", "--server-side",
         "--force-conflicts", "-f", str(REPO / "crds")],
        check=True, capture_output=True,
    )  # fmt: skip
    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return asyncio.run(
        converge(KubeClient(configuration, user_agent="aigis-bench"), kubeconfig, count)
    )


async def converge(kube: KubeClient, kubeconfig: str, count: int) -> dict[str, float]:
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    await kube.request(
        "POST",
        "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    workdir = Path(tempfile.mkdtemp(prefix="aigis-bench-"))
    hosts = workdir / "hosts.yaml"
    hosts.write_text(
        "eu.api.openai.com: [192.0.2.20]\n"
        "bedrock-runtime.eu-west-1.amazonaws.com: [192.0.2.40, 192.0.2.41]\n"
    )
    log = workdir / "operator.log"
    created_at: dict[str, float] = {}
    operator = start_operator(
        kubeconfig,
        log,
        extra=["--static-hosts", str(hosts), "--network-policy-mode", "NetworkPolicy",
               "--log-level", "WARNING"],
    )  # fmt: skip
    try:
        await asyncio.sleep(3)  # let kopf finish its initial listing
        watcher = ReadyPoll(kube, namespace)
        watcher.start()
        names = [f"bot-{i:04d}" for i in range(count)]
        path = f"/apis/aigis.dev/v1alpha1/namespaces/{namespace}/aiworkloads"
        clients = asyncio.Semaphore(32)

        async def create(name: str) -> None:
            body = {
                "apiVersion": "aigis.dev/v1alpha1",
                "kind": "AIWorkload",
                "metadata": {"name": name},
                "spec": SPEC,
            }
            async with clients:
                created_at[name] = time.monotonic()
                await kube.request("POST", path, body=body)

        started = time.monotonic()
        await asyncio.gather(*(create(n) for n in names))
        created = time.monotonic() - started
        deadline = started + 300
        while time.monotonic() < deadline:
            if all(watcher.done_at(n) for n in names):
                break
            if operator.process.poll() is not None:
                raise RuntimeError(f"operator exited; see {log}")
            await asyncio.sleep(0.2)
        await watcher.stop()
        done = {n: t for n in names if (t := watcher.done_at(n)) is not None}
        latencies = [t - created_at[n] for n, t in done.items()]
        total = max(done.values()) - started
        return {
            "workloads": count,
            "converged": len(done),
            "create_seconds": created,
            "all_ready_seconds": total,
            "p50": statistics.median(latencies),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies),
            "peak_rss_mib": operator.peak_memory_mib(),
        }
    finally:
        operator.stop()
        await kube.request("DELETE", f"/api/v1/namespaces/{namespace}")
        await kube.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=1000)
    args = parser.parse_args()

    render_us = bench_render()
    print("egress: render one NetworkPolicy (pure core)")
    print(
        f"  {render_us:8.1f} µs per render   target < 100 µs   "
        f"{'met' if render_us < 100 else 'NOT met'}"
    )
    result = bench_convergence(args.workloads)
    print(f"egress: convergence of {result['workloads']} AIWorkloads created at once")
    print(f"  created in {result['create_seconds']:.1f} s (32 concurrent clients)")
    met = result["all_ready_seconds"] < 60 and result["converged"] == args.workloads
    print(
        f"  Ready with NetworkPolicy: {result['converged']}/{result['workloads']}, "
        f"all within {result['all_ready_seconds']:.1f} s   target < 60 s   "
        f"{'met' if met else 'NOT met'}"
    )
    print(
        f"  time-to-Ready p50 {result['p50']:.2f} s   p99 {result['p99']:.2f} s   "
        f"max {result['max']:.2f} s"
    )
    print(f"  operator peak memory (VmHWM) {result['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
