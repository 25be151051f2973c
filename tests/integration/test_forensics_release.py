"""An injected pod is never stuck in Terminating: until aigis captures evidence, the operator
releases the forensics finalizer and records why no bundle was taken."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.conftest import Cluster, RunningOperator


@pytest.fixture(scope="module")
def operator(start_operator: Callable[..., RunningOperator]) -> RunningOperator:
    return start_operator("--network-policy-mode", "NetworkPolicy")


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


def test_terminating_injected_pod_is_released_with_a_recorded_reason(
    cluster: Cluster, namespace: str, operator: RunningOperator
) -> None:
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
    assert "EvidenceNotCaptured" in reasons


def test_other_finalizers_are_kept(
    cluster: Cluster, namespace: str, operator: RunningOperator
) -> None:
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
