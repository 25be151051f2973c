"""Benchmark: forensic capture, from deletion to the evidence bundle stored.

1. Building and signing one bundle in the pure core (pod, events, two 1 MiB logs).
2. On the local control plane, with an operator scoped to a fresh namespace: covered KWOK pods
   (app + gateway containers, simulated logs) are deleted, one alone and then 100 at once;
   each is timed from its deletion request (grace period 1 s) to the moment its
   ForensicSnapshot is first seen Stored (polled every 0.2 s, which bounds the error).
   Reports p50/p99 and the operator's peak memory (VmHWM).

Run: `make bench` (or `uv run python bench/forensics.py [--pods N]`). All traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kubernetes import client, config

from aigis.devcluster import cluster as devcluster
from aigis.forensics import bundle
from aigis.kube import KubeClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.support: the tests' way of starting aigis processes
from tests.support.aigis_processes import start_operator  # noqa: E402

SNAPSHOTS = "/apis/aigis.dev/v1alpha1/namespaces/{ns}/forensicsnapshots"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bench_bundle() -> float:
    """Milliseconds to build, sign and gzip one bundle with 2 MiB of logs."""
    key = Ed25519PrivateKey.generate()
    artifacts = [
        bundle.Artifact("pod.json", b"{}" * 2000),
        bundle.Artifact("logs/app.log", os.urandom(1024 * 1024)),
        bundle.Artifact("logs/aigis-gateway.log", b"audit line\n" * 95000),
    ]

    def build() -> None:
        manifest = bundle.build_manifest(artifacts, {"trigger": "Termination"})
        bundle.build_bundle(artifacts, manifest, bundle.sign(manifest, key))

    runs = 10
    return timeit.timeit(build, number=runs) / runs * 1000


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"aigis.dev/workload": "bot", "app": "bot"},
            "finalizers": ["aigis.dev/forensics"],
        },
        "spec": {
            "containers": [
                {"name": "app", "image": "example.invalid/bot:1"},
                {"name": "aigis-gateway", "image": "example.invalid/aigis:1"},
            ]
        },
    }


async def stored_times(kube: KubeClient, ns: str, uids: dict[str, str]) -> dict[str, float]:
    """Poll the namespace's snapshots until every pod's is Stored; when each was first seen."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 600
    while len(seen) < len(uids) and time.monotonic() < deadline:
        found = await kube.request("GET", SNAPSHOTS.format(ns=ns)) or {}
        now = time.monotonic()
        for item in found.get("items") or []:
            uid = item["spec"]["pod"].get("uid")
            if uid in uids and (item.get("status") or {}).get("phase") == "Stored":
                seen.setdefault(uid, now)
        await asyncio.sleep(0.2)
    return seen


async def run_round(kube: KubeClient, ns: str, prefix: str, count: int) -> list[float]:
    uids: dict[str, str] = {}
    for i in range(count):
        created = await kube.request(
            "POST", f"/api/v1/namespaces/{ns}/pods", body=pod(f"{prefix}-{i}")
        )
        assert created is not None
        uids[created["metadata"]["uid"]] = created["metadata"]["name"]
    while True:  # wait for Running, so the logs exist
        listed = await kube.request("GET", f"/api/v1/namespaces/{ns}/pods") or {}
        phases = [p["status"].get("phase") for p in listed["items"] if p["metadata"]["uid"] in uids]
        if phases.count("Running") == count:
            break
        await asyncio.sleep(0.5)
    started: dict[str, float] = {}

    async def delete(uid: str, name: str) -> None:
        started[uid] = time.monotonic()
        # A 1 s grace period: KWOK never stops containers, so the capture waits for the
        # deletion time to pass (with the default 30 s, that wait is the whole figure).
        await kube.request(
            "DELETE", f"/api/v1/namespaces/{ns}/pods/{name}", query={"gracePeriodSeconds": "1"}
        )

    await asyncio.gather(*(delete(u, n) for u, n in uids.items()))
    seen = await stored_times(kube, ns, uids)
    missing = len(uids) - len(seen)
    if missing:
        print(f"  {missing} snapshot(s) not stored within 600 s")
    return [seen[u] - started[u] for u in seen]


async def capture_rounds(kube: KubeClient, kubeconfig: str, count: int) -> None:
    ns = f"bench-fsnap-{uuid.uuid4().hex[:8]}"
    await kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    await kube.request(
        "POST",
        f"/apis/aigis.dev/v1alpha1/namespaces/{ns}/aiworkloads",
        body={
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": "bot"},
            "spec": {"selector": {"matchLabels": {"app": "bot"}}, "owner": "bench",
                     "purpose": "benchmark workload"},
        },
    )  # fmt: skip
    while await kube.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default") is None:
        await asyncio.sleep(0.2)
    flags = ["--namespace", ns, "--network-policy-mode", "NetworkPolicy", "--log-level", "WARNING"]
    operator = start_operator(kubeconfig, Path(tempfile.mkdtemp()) / "operator.log", extra=flags)
    try:
        await asyncio.sleep(3)
        for label, n in (("one pod", 1), (f"{count} pods at once", count)):
            times = await run_round(kube, ns, f"p{n}", n)
            if times:
                print(
                    f"deletion -> bundle stored, {label}: p50 {percentile(times, 0.5):.2f} s, "
                    f"p99 {percentile(times, 0.99):.2f} s (n={len(times)})"
                )
        print(f"operator peak memory (VmHWM): {operator.peak_memory_mib():.0f} MiB")
    finally:
        operator.stop()
        await kube.request("DELETE", f"/api/v1/namespaces/{ns}")
        await kube.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100)
    args = parser.parse_args()
    print(f"bundle build+sign (2 MiB of logs): {bench_bundle():.1f} ms")
    layout = devcluster.up()
    kubeconfig = str(layout.kubeconfig)
    subprocess.run(
        [str(layout.binary("kubectl")), f"--kubeconfig={kubeconfig}", "apply", "--server-side",
         "--force-conflicts", "-f", str(REPO / "crds")],
        check=True, capture_output=True,
    )  # fmt: skip
    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    asyncio.run(capture_rounds(KubeClient(configuration, user_agent="aigis-bench"), kubeconfig,
                               args.pods))  # fmt: skip


if __name__ == "__main__":
    main()
