"""Forensic capture through the real API server, with KWOK pods and their simulated logs.

A covered pod that is deleted leaves a ForensicSnapshot whose bundle verifies; a changed byte
is reported under the artifact's name; a capture interrupted by an operator restart completes
when the operator is back; a running pod is captured on demand without stopping; an expired
snapshot goes with its bytes; a pod whose logs cannot be read yields an incomplete bundle that
is stored with the reason.

The operator is scoped to this module's namespace (`--namespace`). The first test runs before
it is started: it plays an operator that died mid-capture.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import Cluster
from tests.support.aigis_processes import AigisProcess, run_aigis

FINALIZER = "aigis.dev/forensics"
WORKLOAD = "bot"
CAPTURE_WAIT_SECONDS = 120.0


@pytest.fixture(scope="module")
def ns(cluster: Cluster) -> Iterator[str]:
    name = f"it-fsnap-{uuid.uuid4().hex[:8]}"
    cluster.create_namespace(name)
    yield name
    for pod in cluster.get_json("pods", "-n", name)["items"]:
        cluster.kubectl("patch", "pod", pod["metadata"]["name"], "-n", name, "--type=merge",
                        "-p", '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def doomed(cluster: Cluster) -> str:
    """A second watched namespace, deleted by a test while it holds a covered pod."""
    name = f"it-doomed-{uuid.uuid4().hex[:8]}"
    cluster.create_namespace(name)
    return name


def operator_args(ns: str, doomed: str) -> tuple[str, ...]:
    """Scoped to this module's namespaces; `ns` doubles as the aigis namespace (signing key,
    and refuge for the evidence of pods whose namespace is being deleted)."""
    return ("--namespace", ns, "--namespace", doomed, "--aigis-namespace", ns,
            "--network-policy-mode", "NetworkPolicy")  # fmt: skip


@pytest.fixture(scope="module")
def workload(cluster: Cluster, ns: str, crds_installed: None) -> str:
    cluster.apply(
        {
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": WORKLOAD},
            "spec": {
                "selector": {"matchLabels": {"app": WORKLOAD}},
                "owner": "team-test",
                "purpose": "Answers questions in forensics tests",
                "forensics": {"logsMaxBytes": 1024},
            },
        },
        ns,
    )
    return WORKLOAD


@pytest.fixture(scope="module")
def operator(
    start_operator: Callable[..., AigisProcess], ns: str, doomed: str, workload: str
) -> AigisProcess:
    return start_operator(*operator_args(ns, doomed))


def covered_pod(name: str, *, schedulable: bool = True) -> dict[str, Any]:
    """A pod as the webhook leaves it: the workload label, the finalizer, the gateway."""
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "app",
                "image": "example.invalid/bot:1",
                "env": [{"name": "OPENAI_API_KEY", "value": "sk-test-abcdefghijklmnop"}],
            },
            {"name": "aigis-gateway", "image": "example.invalid/aigis:1"},
        ]
    }
    if not schedulable:
        spec["nodeSelector"] = {"aigis.dev/no-such-node": "true"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"aigis.dev/workload": WORKLOAD, "app": WORKLOAD},
            "finalizers": [FINALIZER],
        },
        "spec": spec,
    }


def running_pod(cluster: Cluster, ns: str, manifest: dict[str, Any]) -> dict[str, Any]:
    name = manifest["metadata"]["name"]
    cluster.apply(manifest, ns)
    return dict(
        cluster.wait_for(
            f"pod {name} Running",
            lambda: (
                (p := cluster.get_json("pod", name, "-n", ns))["status"].get("phase") == "Running"
                and p
            ),
        )
    )


def snapshot(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    found = cluster.kubectl("get", "forensicsnapshot", name, "-n", ns, "-o", "json", check=False)
    return dict(json.loads(found.stdout)) if found.returncode == 0 else None


def stored(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return cluster.wait_for(
        f"ForensicSnapshot {name} stored",
        lambda: (
            (s := snapshot(cluster, ns, name))
            and (s.get("status") or {}).get("phase") == "Stored"
            and s
        ),
        timeout=CAPTURE_WAIT_SECONDS,
    )


def gone(cluster: Cluster, ns: str, kind: str, name: str) -> bool:
    return cluster.kubectl("get", kind, name, "-n", ns, check=False).returncode != 0


def delete_pod(cluster: Cluster, ns: str, name: str) -> None:
    cluster.kubectl("delete", "pod", name, "-n", ns, "--wait=false", "--grace-period=1")


def test_a_capture_interrupted_by_an_operator_restart_completes(
    cluster: Cluster,
    ns: str,
    doomed: str,
    workload: str,
    start_operator: Callable[..., AigisProcess],
) -> None:
    pod = running_pod(cluster, ns, covered_pod("restart-1"))
    uid = pod["metadata"]["uid"]
    delete_pod(cluster, ns, "restart-1")
    # What an operator killed mid-capture leaves behind: its snapshot, Capturing, no bytes.
    name = f"fsnap-{uid}"
    cluster.apply(
        {
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "ForensicSnapshot",
            "metadata": {"name": name},
            "spec": {"pod": {"name": "restart-1", "uid": uid}, "trigger": "Termination"},
        },
        ns,
    )
    cluster.kubectl("patch", "forensicsnapshot", name, "-n", ns, "--subresource=status",
                    "--type=merge", "-p", '{"status":{"phase":"Capturing"}}')  # fmt: skip
    held = cluster.get_json("pod", "restart-1", "-n", ns)
    assert held["metadata"]["finalizers"] == [FINALIZER]

    restarted = start_operator(*operator_args(ns, doomed))

    done = stored(cluster, ns, name)
    assert done["status"]["complete"] is True, done["status"]
    cluster.wait_for("the pod gone", lambda: gone(cluster, ns, "pod", "restart-1"))
    result = run_aigis(cluster.kubeconfig, "forensics", "verify", name, "-n", ns)
    assert result.returncode == 0, result.stdout + result.stderr
    # The later tests start their own; two operators on one namespace would both capture.
    assert "Traceback" not in restarted.stop()


def test_a_deleted_pod_leaves_a_snapshot_that_verifies_and_a_changed_byte_is_named(
    cluster: Cluster, ns: str, operator: AigisProcess, tmp_path: Path
) -> None:
    pod = running_pod(cluster, ns, covered_pod("bot-1"))
    name = f"fsnap-{pod['metadata']['uid']}"
    delete_pod(cluster, ns, "bot-1")

    done = stored(cluster, ns, name)
    cluster.wait_for("the pod gone", lambda: gone(cluster, ns, "pod", "bot-1"))

    status = done["status"]
    assert status["complete"] is True, status
    assert done["spec"]["trigger"] == "Termination"
    names = {a["name"] for a in status["artifacts"]}
    assert {
        "pod.json",
        "logs/app.log",
        "logs/aigis-gateway.log",
        "events.json",
        "workload.json",
        "networkpolicies.json",
    } <= names
    assert status["storage"]["backend"] == "Secrets"
    assert status["sizeBytes"] > 0
    assert "no audit lines" in status["auditChain"]
    reasons = cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", "involvedObject.name=bot-1",
        "-o", "jsonpath={.items[*].reason}",
    ).stdout.split()  # fmt: skip
    assert "EvidenceCaptured" in reasons

    verified = run_aigis(cluster.kubeconfig, "forensics", "verify", name, "-n", ns)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    listed = run_aigis(cluster.kubeconfig, "forensics", "list", "-n", ns)
    assert name in listed.stdout
    assert "bot-1" in listed.stdout

    out = tmp_path / "export"
    exported = run_aigis(cluster.kubeconfig, "forensics", "export", name, "-n", ns, "-o", str(out))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    pod_json = json.loads((out / "artifacts" / "pod.json").read_text())
    assert "sk-test" not in json.dumps(pod_json)
    assert run_aigis(cluster.kubeconfig, "forensics", "verify", str(out)).returncode == 0

    log = out / "artifacts" / "logs" / "app.log"
    data = bytearray(log.read_bytes())
    data[0] ^= 0x20
    log.write_bytes(bytes(data))
    tampered = run_aigis(cluster.kubeconfig, "forensics", "verify", str(out))
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "logs/app.log" in tampered.stdout
    assert "pod.json" not in tampered.stdout


def test_a_pod_without_logs_yields_an_incomplete_bundle_with_the_reason(
    cluster: Cluster, ns: str, operator: AigisProcess
) -> None:
    cluster.apply(covered_pod("pending-1", schedulable=False), ns)
    pod = cluster.get_json("pod", "pending-1", "-n", ns)
    name = f"fsnap-{pod['metadata']['uid']}"
    delete_pod(cluster, ns, "pending-1")

    done = stored(cluster, ns, name)
    cluster.wait_for("the pod gone", lambda: gone(cluster, ns, "pod", "pending-1"))

    status = done["status"]
    assert status["complete"] is False
    assert any(r.startswith("logs/app.log: ") for r in status["reasons"]), status["reasons"]
    assert "pod.json" in {a["name"] for a in status["artifacts"]}
    assert run_aigis(cluster.kubeconfig, "forensics", "verify", name, "-n", ns).returncode == 0


def test_a_pod_force_deleted_with_grace_period_zero_still_leaves_its_evidence(
    cluster: Cluster, ns: str, operator: AigisProcess
) -> None:
    """`kubectl delete --grace-period=0 --force` skips the grace period, not the finalizer: the
    capture still runs, and the pod goes once its snapshot is stored."""
    pod = running_pod(cluster, ns, covered_pod("forced-1"))
    name = f"fsnap-{pod['metadata']['uid']}"
    cluster.kubectl(
        "delete", "pod", "forced-1", "-n", ns, "--grace-period=0", "--force", "--wait=false"
    )
    done = stored(cluster, ns, name)
    cluster.wait_for("the pod gone", lambda: gone(cluster, ns, "pod", "forced-1"))
    assert "pod.json" in {a["name"] for a in done["status"]["artifacts"]}
    assert run_aigis(cluster.kubeconfig, "forensics", "verify", name, "-n", ns).returncode == 0


def test_a_running_pod_is_captured_on_demand_without_stopping(
    cluster: Cluster, ns: str, operator: AigisProcess
) -> None:
    pod = running_pod(cluster, ns, covered_pod("live-1"))
    uid = pod["metadata"]["uid"]
    cluster.kubectl("annotate", "pod", "live-1", "-n", ns, "aigis.dev/capture=now")

    def on_demand() -> dict[str, Any] | None:
        items = cluster.get_json("forensicsnapshots", "-n", ns)["items"]
        for s in items:
            if s["spec"]["pod"].get("uid") == uid and s["spec"]["trigger"] == "OnDemand":
                return dict(s) if (s.get("status") or {}).get("phase") == "Stored" else None
        return None

    done = cluster.wait_for("an on-demand snapshot", on_demand, timeout=CAPTURE_WAIT_SECONDS)
    assert done["status"]["complete"] is True
    cluster.wait_for(
        "the annotation answered",
        lambda: (
            "aigis.dev/capture"
            not in (
                cluster.get_json("pod", "live-1", "-n", ns)["metadata"].get("annotations") or {}
            )
        ),
    )
    live = cluster.get_json("pod", "live-1", "-n", ns)
    assert live["status"]["phase"] == "Running"
    assert not live["metadata"].get("deletionTimestamp")

    cluster.apply(
        {
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "ForensicSnapshot",
            "metadata": {"name": "asked-by-hand"},
            "spec": {"pod": {"name": "live-1"}},
        },
        ns,
    )
    by_hand = stored(cluster, ns, "asked-by-hand")
    assert by_hand["status"]["complete"] is True
    assert (
        run_aigis(cluster.kubeconfig, "forensics", "verify", "asked-by-hand", "-n", ns).returncode
        == 0
    )
    assert cluster.get_json("pod", "live-1", "-n", ns)["status"]["phase"] == "Running"


def test_an_expired_snapshot_is_deleted_with_its_bytes(
    cluster: Cluster, ns: str, operator: AigisProcess
) -> None:
    running_pod(cluster, ns, covered_pod("old-1"))
    cluster.apply(
        {
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "ForensicSnapshot",
            "metadata": {"name": "soon-expired"},
            "spec": {"pod": {"name": "old-1"}},
        },
        ns,
    )
    done = stored(cluster, ns, "soon-expired")
    chunks = done["status"]["storage"]["objects"]
    assert chunks
    assert all(not gone(cluster, ns, "secret", c) for c in chunks)

    cluster.kubectl("patch", "forensicsnapshot", "soon-expired", "-n", ns,
                    "--subresource=status", "--type=merge",
                    "-p", '{"status":{"expiresAt":"2000-01-01T00:00:00Z"}}')  # fmt: skip

    cluster.wait_for(
        "the expired snapshot deleted",
        lambda: gone(cluster, ns, "forensicsnapshot", "soon-expired"),
    )
    cluster.wait_for(
        "its chunk Secrets deleted", lambda: all(gone(cluster, ns, "secret", c) for c in chunks)
    )
    assert snapshot(cluster, ns, "soon-expired") is None


def test_deleting_a_namespace_completes_and_its_evidence_goes_to_the_aigis_namespace(
    cluster: Cluster, ns: str, doomed: str, operator: AigisProcess
) -> None:
    pod = running_pod(cluster, doomed, covered_pod("doomed-1"))
    name = f"fsnap-{pod['metadata']['uid']}"

    cluster.kubectl("delete", "namespace", doomed, "--wait=false")

    cluster.wait_for(
        "the namespace gone",
        lambda: cluster.kubectl("get", "namespace", doomed, check=False).returncode != 0,
        timeout=CAPTURE_WAIT_SECONDS,
    )
    done = stored(cluster, ns, name)
    assert done["spec"]["pod"]["name"] == "doomed-1"
    # No AIWorkload in the doomed namespace: stored, and incomplete for that reason.
    assert any(r.startswith("workload.json: ") for r in done["status"]["reasons"])
    assert run_aigis(cluster.kubeconfig, "forensics", "verify", name, "-n", ns).returncode == 0
