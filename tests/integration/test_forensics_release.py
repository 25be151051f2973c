"""The forensics finalizer through the real API server.

With the operator running, an injected pod is never stuck in Terminating: the operator
captures its evidence (test_forensics_capture_cluster.py), then releases the finalizer with an
Event.
With the operator down, a deleted pod stays Terminating; the hold computation (what the operator's
gauges publish) reports it, and `aigis forensics release` lets it go by hand.

The tests without an operator come first: the module's operator, once started by a later test,
runs until the end of the module and would release their pods itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client, config
from tests.integration.conftest import Cluster
from tests.support.aigis_processes import AigisProcess, run_aigis

from aigis.controller.forensics import HeldPod, HoldSummary, held_pods, list_covered_pods
from aigis.kube import KubeClient

FINALIZER = "aigis.dev/forensics"


@pytest.fixture(scope="module")
def watched(cluster: Cluster) -> Iterator[str]:
    """The one namespace this module's operator watches, so it leaves other tests' pods alone."""
    name = f"it-release-{uuid.uuid4().hex[:8]}"
    cluster.create_namespace(name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator(start_operator: Callable[..., AigisProcess], watched: str) -> AigisProcess:
    return start_operator("--namespace", watched, "--network-policy-mode", "NetworkPolicy")


def injected_pod(name: str, finalizers: list[str]) -> dict[str, Any]:
    """A pod as the webhook leaves it: the workload label and the forensics finalizer."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"aigis.dev/workload": "bot", "app": "bot"},
            "finalizers": finalizers,
        },
        "spec": {"containers": [{"name": "app", "image": "example.invalid/bot:1"}]},
    }


Held = Callable[[str], list[HeldPod]]


@pytest.fixture
def held(cluster: Cluster) -> Iterator[Held]:
    """What the operator's hold gauges are computed from, for one namespace: listed with
    aigis's client on the dev cluster's admin kubeconfig, in one event loop kept for the test."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=cluster.kubeconfig, client_configuration=configuration)
    kube = KubeClient(configuration)
    with asyncio.Runner() as loop:

        def held_in(namespace: str) -> list[HeldPod]:
            pods = loop.run(list_covered_pods(kube, [namespace]))
            return held_pods(pods, datetime.now(UTC))

        yield held_in
        loop.run(kube.close())


def pod_or_none(cluster: Cluster, name: str, namespace: str) -> dict[str, Any] | None:
    found = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    if found.returncode != 0:
        return None
    return dict(json.loads(found.stdout))


def event_messages(cluster: Cluster, namespace: str, pod: str) -> list[str]:
    events = cluster.get_json(
        "events", "-n", namespace, "--field-selector", f"involvedObject.name={pod}"
    )
    return [e.get("message", "") for e in events["items"] if e["reason"] == "EvidenceNotCaptured"]


def let_go(cluster: Cluster, namespace: str, *pods: str) -> None:
    """Drop every finalizer, so that the test namespace can be deleted."""
    for name in pods:
        cluster.kubectl("patch", "pod", name, "-n", namespace, "--type=merge",
                        "-p", '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip


def delete_and_wait_until_held(
    cluster: Cluster, held: Held, namespace: str, name: str
) -> HoldSummary:
    cluster.kubectl("delete", "pod", name, "-n", namespace, "--wait=false", "--grace-period=1")
    return cluster.wait_for(
        f"pod {name} held by the finalizer",
        lambda: (h := HoldSummary.of(held(namespace))).count and h,
    )


def test_without_the_operator_a_held_pod_is_reported_and_released_by_hand(
    cluster: Cluster, namespace: str, held: Held
) -> None:
    cluster.apply(injected_pod("held-1", [FINALIZER]), namespace)
    cluster.apply(injected_pod("alive-1", [FINALIZER]), namespace)
    try:
        summary = delete_and_wait_until_held(cluster, held, namespace, "held-1")
        assert summary.count == 1
        # The live pod carries the finalizer too, but is not held by it.
        assert [(p.namespace, p.name) for p in held(namespace)] == [(namespace, "held-1")]
        terminating = pod_or_none(cluster, "held-1", namespace)
        assert terminating is not None
        assert terminating["metadata"]["deletionTimestamp"]
        assert terminating["metadata"]["finalizers"] == [FINALIZER]

        result = run_aigis(cluster.kubeconfig, "forensics", "release", "--namespace", namespace)

        assert result.returncode == 0, result.stdout + result.stderr
        assert f"released: pod {namespace}/held-1" in result.stdout
        assert "alive-1" not in result.stdout
        cluster.wait_for("the pod gone", lambda: pod_or_none(cluster, "held-1", namespace) is None)
        messages = event_messages(cluster, namespace, "held-1")
        assert len(messages) == 1
        assert "released by hand by" in messages[0]
        assert HoldSummary.of(held(namespace)) == HoldSummary(0, 0.0)
        alive = pod_or_none(cluster, "alive-1", namespace)
        assert alive is not None
        assert alive["metadata"]["finalizers"] == [FINALIZER]
    finally:
        let_go(cluster, namespace, "held-1", "alive-1")


def test_dry_run_changes_nothing(cluster: Cluster, namespace: str, held: Held) -> None:
    cluster.apply(injected_pod("held-2", [FINALIZER]), namespace)
    try:
        delete_and_wait_until_held(cluster, held, namespace, "held-2")
        before = pod_or_none(cluster, "held-2", namespace)
        assert before is not None

        result = run_aigis(
            cluster.kubeconfig, "forensics", "release", "-n", namespace, "held-2", "--dry-run"
        )

        assert result.returncode == 0, result.stdout + result.stderr
        assert f"would-release: pod {namespace}/held-2" in result.stdout
        after = pod_or_none(cluster, "held-2", namespace)
        assert after is not None
        assert after["metadata"]["finalizers"] == [FINALIZER]
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert event_messages(cluster, namespace, "held-2") == []
        assert [p.name for p in held(namespace)] == ["held-2"]
    finally:
        let_go(cluster, namespace, "held-2")


def test_a_named_pod_that_is_not_being_deleted_keeps_its_finalizer(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(injected_pod("alive-2", [FINALIZER]), namespace)
    try:
        result = run_aigis(
            cluster.kubeconfig, "forensics", "release", "-n", namespace, "alive-2", "missing"
        )

        assert result.returncode == 1, result.stdout + result.stderr
        assert f"not-terminating: pod {namespace}/alive-2" in result.stdout
        assert f"not-found: pod {namespace}/missing" in result.stdout
        alive = pod_or_none(cluster, "alive-2", namespace)
        assert alive is not None
        assert alive["metadata"]["finalizers"] == [FINALIZER]
    finally:
        let_go(cluster, namespace, "alive-2")


def test_the_command_refuses_pod_names_across_all_namespaces(cluster: Cluster) -> None:
    result = run_aigis(cluster.kubeconfig, "forensics", "release", "--all-namespaces", "some-pod")
    assert result.returncode == 2
    assert "--all-namespaces" in result.stderr


def test_terminating_injected_pod_is_released_with_a_recorded_reason(
    cluster: Cluster, watched: str, operator: AigisProcess
) -> None:
    namespace = watched
    cluster.apply(injected_pod("bot-1", ["aigis.dev/forensics"]), namespace)
    cluster.wait_for(
        "the pod Running",
        lambda: (
            cluster.get_json("pod", "bot-1", "-n", namespace)["status"].get("phase") == "Running"
        ),
    )
    cluster.kubectl("delete", "pod", "bot-1", "-n", namespace, "--wait=false")
    cluster.wait_for(
        "the pod gone",
        lambda: (
            cluster.kubectl("get", "pod", "bot-1", "-n", namespace, check=False).returncode != 0
        ),
    )
    reasons = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=bot-1",
        "-o", "jsonpath={.items[*].reason}",
    ).stdout.split()  # fmt: skip
    # The pod has no AIWorkload in this namespace: its bundle is stored, incomplete.
    assert "EvidenceIncomplete" in reasons
    text = operator.metrics()
    released = re.search(
        r'^aigis_forensics_releases_total\{reason="EvidenceIncomplete"\} (\S+)$', text, re.M
    )
    assert released is not None
    assert float(released.group(1)) >= 1
    assert re.search(r"^aigis_forensics_pods_held \S+$", text, re.M)
    assert re.search(r"^aigis_forensics_oldest_held_seconds \S+$", text, re.M)


def test_other_finalizers_are_kept(cluster: Cluster, watched: str, operator: AigisProcess) -> None:
    namespace = watched
    cluster.apply(injected_pod("bot-2", ["aigis.dev/forensics", "example.com/keep"]), namespace)
    cluster.kubectl("delete", "pod", "bot-2", "-n", namespace, "--wait=false")
    pod = cluster.wait_for(
        "the forensics finalizer released",
        lambda: (
            (p := cluster.get_json("pod", "bot-2", "-n", namespace))
            and p["metadata"].get("finalizers") == ["example.com/keep"]
            and p
        ),
    )
    assert pod["metadata"]["deletionTimestamp"]
    cluster.kubectl("patch", "pod", "bot-2", "-n", namespace, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}')  # fmt: skip
