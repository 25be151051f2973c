"""Benchmark: one full background-audit pass over 5,000 KWOK pods in 500 Deployments.

On the local control plane: a few governed namespaces (an AIClusterPolicy selects them), each
with an AIWorkload covering some Deployments (their pods run without the gateway: findings), some
uncovered model servers (shadow AI) and some plain web servers; 10 KWOK pods per Deployment.
Then `aigis operator`, scoped to those namespaces, runs its first pass at start; the figures are
its own metric `aigis_audit_pass_duration_seconds` (read the cluster, judge every object, write
PolicyReports, AIWorkload status and Events) and its peak memory (VmHWM) after the pass. A
second, in-process pass (`BackgroundAudit.run_pass`, nothing left to write) is timed in parts:
reading the inventory, judging it, and the whole pass. Everything is deleted afterwards.

Run: `make bench` (or `uv run python bench/audit.py [--deployments 500 --replicas 10
--namespaces 5]`). All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from aigis.controller.audit import AuditSettings, BackgroundAudit
from aigis.devcluster import cluster as devcluster
from aigis.kube import KubeClient
from aigis.oversight.audit import audit_objects
from aigis.oversight.inventory import read_inventory

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.support: the tests' way of starting aigis processes
from tests.support.aigis_processes import free_port, start_operator  # noqa: E402

POLICYREPORT_CRD = REPO / "charts" / "aigis" / "files" / "policyreports.wgpolicyk8s.io.yaml"
LABEL = "aigis.dev/bench-audit"


def container(kind: str) -> dict[str, Any]:
    if kind == "shadow":
        return {
            "name": "server",
            "image": "vllm/vllm-openai:v0.6.3",
            "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct"],
        }
    if kind == "covered":
        return {"name": "app", "image": "registry.example/shop/bot:1.0"}
    return {"name": "web", "image": "nginx:1.27"}


def deployment(name: str, kind: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name, **({"tier": "assistant"} if kind == "covered" else {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {LABEL: "true"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"automountServiceAccountToken": False, "containers": [container(kind)]},
            },
        },
    }


def kind_of(index: int) -> str:
    """Half covered, a quarter shadow AI, a quarter plain web servers."""
    return ("covered", "covered", "shadow", "plain")[index % 4]


async def create(kube: KubeClient, path: str, body: dict[str, Any]) -> None:
    await kube.request("POST", path, body=body)


async def running_pods(kube: KubeClient, namespaces: list[str]) -> int:
    total = 0
    for ns in namespaces:
        token = ""
        while True:
            query = {"limit": "1000", "fieldSelector": "status.phase=Running"}
            if token:
                query["continue"] = token
            page = await kube.request("GET", f"/api/v1/namespaces/{ns}/pods", query=query) or {}
            total += len(page.get("items") or ())
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                break
    return total


def metric(text: str, name: str) -> float | None:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


async def setup(kube: KubeClient, run: str, args: argparse.Namespace) -> list[str]:
    namespaces = [f"bench-audit-{run}-{i}" for i in range(args.namespaces)]
    await create(
        kube,
        "/apis/aigis.dev/v1alpha1/aiclusterpolicies",
        {
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "AIClusterPolicy",
            "metadata": {"name": f"bench-audit-{run}"},
            "spec": {
                "namespaceSelector": {"matchLabels": {LABEL: run}},
                "enforcement": "Enforce",
                "shadowAI": "Enforce",
            },
        },
    )
    for ns in namespaces:
        await create(kube, "/api/v1/namespaces", {"metadata": {"name": ns, "labels": {LABEL: run}}})
        await create(
            kube,
            f"/apis/aigis.dev/v1alpha1/namespaces/{ns}/aiworkloads",
            {
                "apiVersion": "aigis.dev/v1alpha1",
                "kind": "AIWorkload",
                "metadata": {"name": "assistant"},
                "spec": {
                    "selector": {"matchLabels": {"tier": "assistant"}},
                    "owner": "bench",
                    "purpose": "Benchmark workload.",
                    "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
                },
            },
        )
    for ns in namespaces:
        while await kube.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default") is None:
            await asyncio.sleep(0.2)
    limit = asyncio.Semaphore(16)

    async def one(index: int) -> None:
        ns = namespaces[index % len(namespaces)]
        async with limit:
            await create(
                kube,
                f"/apis/apps/v1/namespaces/{ns}/deployments",
                deployment(f"d{index:04d}", kind_of(index), args.replicas),
            )

    await asyncio.gather(*(one(i) for i in range(args.deployments)))
    wanted = args.deployments * args.replicas
    started = time.monotonic()
    while (count := await running_pods(kube, namespaces)) < wanted:
        if time.monotonic() - started > 900:
            raise SystemExit(f"only {count} of {wanted} pods Running after 900 s")
        await asyncio.sleep(5)
    print(f"{wanted} KWOK pods Running in {time.monotonic() - started:.0f} s")
    return namespaces


async def cleanup(kube: KubeClient, run: str, namespaces: list[str]) -> None:
    await kube.request("DELETE", f"/apis/aigis.dev/v1alpha1/aiclusterpolicies/bench-audit-{run}")
    for ns in namespaces:
        await kube.request("DELETE", f"/api/v1/namespaces/{ns}")
    started = time.monotonic()
    while time.monotonic() - started < 600:
        left = [ns for ns in namespaces if await kube.request("GET", f"/api/v1/namespaces/{ns}")]
        if not left:
            print("cleaned up")
            return
        await asyncio.sleep(2)
    print(f"namespaces still terminating after 600 s: {left}")


def operator_pass(kubeconfig: str, namespaces: list[str]) -> None:
    """Start `aigis operator` scoped to the bench namespaces; report its first pass."""
    flags = ["--log-level", "WARNING", "--network-policy-mode", "NetworkPolicy"]
    for ns in namespaces:
        flags += ["--namespace", ns]
    log = Path(tempfile.mkdtemp()) / "operator.log"
    operator = start_operator(kubeconfig, log, metrics_port=free_port(), extra=flags)
    try:
        started = time.monotonic()
        while time.monotonic() - started < 600:
            text = operator.metrics_or_none() or ""
            if (metric(text, "aigis_audit_last_pass_timestamp_seconds") or 0) > 0:
                seconds = metric(text, "aigis_audit_pass_duration_seconds_sum")
                reviewed = metric(text, "aigis_audit_objects_reviewed")
                print(
                    f"operator: first full audit pass {seconds:.2f} s "
                    f"({reviewed:.0f} objects reviewed; target < 30 s)"
                )
                print(f"operator peak memory (VmHWM): {operator.peak_memory_mib():.0f} MiB")
                return
            time.sleep(0.5)
        print("operator: no audit pass within 600 s; log:\n" + log.read_text()[-3000:])
    finally:
        operator.stop()


async def in_process_pass(kube: KubeClient, namespaces: list[str]) -> None:
    started = time.perf_counter()
    inventory = await read_inventory(kube, namespaces=namespaces)
    read = time.perf_counter() - started
    pods = sum(1 for o in inventory.objects if o.get("kind") == "Pod")
    started = time.perf_counter()
    audits = audit_objects(inventory.objects, now=datetime.now(UTC))
    judged = time.perf_counter() - started
    findings = sum(len(a.denied) + len(a.warned) for a in audits)
    print(
        f"in-process: read {len(inventory.objects)} objects ({pods} pods) in {read:.2f} s, "
        f"judged {len(audits)} top-level objects ({findings} findings) in {judged:.2f} s"
    )
    audit = BackgroundAudit(kube, AuditSettings(), namespaces=namespaces)
    started = time.perf_counter()
    await audit.run_pass()
    print(f"in-process: a whole pass (nothing new to write) {time.perf_counter() - started:.2f} s")


async def bench(args: argparse.Namespace, kubeconfig: str) -> None:
    run = uuid.uuid4().hex[:6]
    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    async with KubeClient(configuration, user_agent="aigis-bench") as kube:
        subprocess.run(
            [str(devcluster.up().binary("kubectl")), "--kubeconfig", kubeconfig, "apply",
             "--server-side", "--force-conflicts", "-f", str(POLICYREPORT_CRD)],
            check=True, capture_output=True,
        )  # fmt: skip
        namespaces: list[str] = []
        try:
            namespaces = await setup(kube, run, args)
            await asyncio.to_thread(operator_pass, kubeconfig, namespaces)
            await in_process_pass(kube, namespaces)
        finally:
            await cleanup(
                kube, run, namespaces or [f"bench-audit-{run}-{i}" for i in range(args.namespaces)]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--namespaces", type=int, default=5)
    args = parser.parse_args()
    layout = devcluster.up()
    asyncio.run(bench(args, str(layout.kubeconfig)))


if __name__ == "__main__":
    main()
