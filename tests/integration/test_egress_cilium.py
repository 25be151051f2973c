"""CiliumNetworkPolicies with toFQDNs, where Cilium's CRD is installed.

Cilium's agent cannot run here, so the test installs a stand-in CRD for
`ciliumnetworkpolicies.cilium.io` (same group, version, kind and scope, schema left open): the
API server then stores what aigis writes exactly as a cluster with Cilium would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.integration.conftest import Cluster, stand_in_crd
from tests.support.aigis_processes import AigisProcess

STAND_IN_CRD = stand_in_crd(
    "cilium.io", "CiliumNetworkPolicy", "ciliumnetworkpolicies", "v2", short_names=("cnp",)
)


@pytest.fixture(scope="module")
def cilium_crd(cluster: Cluster) -> Iterator[None]:
    with cluster.stand_in_crds(STAND_IN_CRD):
        yield


@pytest.fixture(scope="module")
def operator(cilium_crd: None, start_operator: Callable[..., AigisProcess]) -> AigisProcess:
    return start_operator("--network-policy-mode", "Auto")


def cilium_policy(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl(
        "get", "ciliumnetworkpolicy", name, "-n", namespace, "-o", "json", check=False
    )
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_auto_mode_writes_both_kinds_with_fqdns(
    cluster: Cluster, namespace: str, operator: AigisProcess
) -> None:
    cluster.apply(
        {
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "owner": "team-a",
                "purpose": "an agent that browses docs",
                "egress": [
                    {"host": "eu.api.openai.com"},
                    {"host": "*.docs.example.com", "region": "eu"},
                ],
            },
        },
        namespace,
    )
    cnp = cluster.wait_for(
        "the CiliumNetworkPolicy", lambda: cilium_policy(cluster, namespace, "aigis-agent")
    )
    rules = cnp["spec"]["egress"]
    assert rules[0]["toPorts"][0]["rules"] == {"dns": [{"matchPattern": "*"}]}
    assert rules[1]["toFQDNs"] == [{"matchName": "eu.api.openai.com"}]
    assert rules[2]["toFQDNs"] == [{"matchPattern": "*.docs.example.com"}]
    assert cnp["metadata"]["ownerReferences"][0]["name"] == "agent"
    # The plain NetworkPolicy exists too, and says what it could not express.
    obj = cluster.wait_for(
        "agent reconciled",
        lambda: (
            (o := cluster.get_json("aiw", "agent", "-n", namespace))
            and o.get("status", {}).get("observedGeneration") == o["metadata"]["generation"]
            and o
        ),
    )
    applied = next(c for c in obj["status"]["conditions"] if c["type"] == "NetworkPolicyApplied")
    assert "CiliumNetworkPolicy aigis-agent" in applied["message"]
    assert "NetworkPolicy aigis-agent" in applied["message"]
    assert "wildcard *.docs.example.com cannot be expressed" in applied["message"]

    # Drift repair covers Cilium policies too.
    cluster.kubectl("delete", "ciliumnetworkpolicy", "aigis-agent", "-n", namespace)
    cluster.wait_for(
        "the CiliumNetworkPolicy recreated",
        lambda: cilium_policy(cluster, namespace, "aigis-agent"),
    )


def test_pods_matched_counts_the_covered_pods(
    cluster: Cluster, namespace: str, operator: AigisProcess
) -> None:
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "agent"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "app", "image": "example.invalid/agent:1"}]},
                },
            },
        },
        namespace,
    )
    cluster.apply(
        {
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "owner": "team-a",
                "purpose": "an agent",
            },
        },
        namespace,
    )
    # Counted at every reconcile, including the refresh timer (2 s in tests).
    cluster.wait_for(
        "podsMatched == 3",
        lambda: (
            cluster.get_json("aiw", "agent", "-n", namespace).get("status", {}).get("podsMatched")
            == 3
        ),
    )
