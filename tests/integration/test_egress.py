"""Egress control against the real API server: NetworkPolicies compiled from AIWorkloads.

The operator resolves hosts from the static hosts file of the `static_hosts` fixture (no DNS);
the addresses are documentation addresses that end up in policies and are never dialled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import Cluster
from tests.support.aigis_processes import AigisProcess

BOT_SPEC: dict[str, Any] = {
    "selector": {"matchLabels": {"app": "bot"}},
    "owner": "team-a",
    "purpose": "answers questions",
    "dataRegions": ["eu"],
    "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
    "egress": [
        {"host": "eu.api.openai.com"},
        {"cidr": "10.20.0.0/16", "except": ["10.20.99.0/24"], "ports": [{"port": 5432}]},
    ],
}


@pytest.fixture(scope="module")
def operator(start_operator: Callable[..., AigisProcess]) -> AigisProcess:
    return start_operator("--network-policy-mode", "NetworkPolicy")


def workload(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name},
        "spec": spec,
    }


def network_policy(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl(
        "get", "networkpolicy", name, "-n", namespace, "-o", "json", check=False
    )
    return json.loads(result.stdout) if result.returncode == 0 else None


def reconciled(cluster: Cluster, namespace: str, name: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        obj = cluster.get_json("aiw", name, "-n", namespace)
        done = obj.get("status", {}).get("observedGeneration") == obj["metadata"]["generation"]
        return dict(obj) if done else None

    return probe


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def egress_peers(policy: dict[str, Any]) -> list[Any]:
    return [rule["to"] for rule in policy["spec"]["egress"]]


def test_exact_network_policy_for_a_sample(
    cluster: Cluster, namespace: str, operator: AigisProcess
) -> None:
    cluster.apply(workload("bot", BOT_SPEC), namespace)
    obj = cluster.wait_for("bot reconciled", reconciled(cluster, namespace, "bot"))
    assert condition(obj, "NetworkPolicyApplied")["status"] == "True"
    assert condition(obj, "Compliant")["status"] == "True"
    assert obj["status"]["networkPolicies"] == ["aigis-bot"]
    # No finalizer: deleting a workload (or its namespace) never waits for the operator.
    assert "finalizers" not in obj["metadata"]
    policy = cluster.wait_for("aigis-bot", lambda: network_policy(cluster, namespace, "aigis-bot"))
    assert policy["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "aigis",
        "aigis.dev/workload": "bot",
    }
    owner = policy["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "AIWorkload",
        "bot",
        obj["metadata"]["uid"],
    )
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app": "bot"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
            {
                "to": [{"ipBlock": {"cidr": "192.0.2.20/32"}}],
                "ports": [{"protocol": "TCP", "port": 443}],
            },
            {
                "to": [{"ipBlock": {"cidr": "10.20.0.0/16", "except": ["10.20.99.0/24"]}}],
                "ports": [{"protocol": "TCP", "port": 5432}],
            },
        ],
    }


def test_update_drift_repair_and_garbage_collection(
    cluster: Cluster, namespace: str, operator: AigisProcess
) -> None:
    cluster.apply(workload("bot", BOT_SPEC), namespace)
    cluster.wait_for("aigis-bot", lambda: network_policy(cluster, namespace, "aigis-bot"))

    # Update: a new destination appears in the policy.
    changed = {
        **BOT_SPEC,
        "egress": [*BOT_SPEC["egress"], {"host": "search.internal.example", "region": "eu"}],
    }
    cluster.apply(workload("bot", changed), namespace)
    cluster.wait_for(
        "the new host in the policy",
        lambda: (
            [{"ipBlock": {"cidr": "198.51.100.7/32"}}]
            in egress_peers(
                network_policy(cluster, namespace, "aigis-bot") or {"spec": {"egress": []}}
            )
        ),
    )

    # Drift: someone widens the policy by hand; aigis puts it back.
    cluster.kubectl(
        "patch", "networkpolicy", "aigis-bot", "-n", namespace, "--type=json",
        "-p", '[{"op": "add", "path": "/spec/egress/-", "value": {}}]',
    )  # fmt: skip
    cluster.wait_for(
        "the hand edit undone",
        lambda: (
            {}
            not in (network_policy(cluster, namespace, "aigis-bot") or {})
            .get("spec", {})
            .get("egress", [{}])
        ),
    )

    # Drift: someone deletes it; aigis recreates it.
    before = network_policy(cluster, namespace, "aigis-bot")
    assert before is not None
    cluster.kubectl("delete", "networkpolicy", "aigis-bot", "-n", namespace)
    recreated = cluster.wait_for(
        "the policy recreated",
        lambda: (
            (p := network_policy(cluster, namespace, "aigis-bot"))
            and p["metadata"]["uid"] != before["metadata"]["uid"]
            and p
        ),
    )
    assert recreated["spec"] == before["spec"]
    assert "aigis_drift_repairs_total" in operator.metrics()

    # Deletion: the garbage collector (the real kube-controller-manager) removes the policy.
    cluster.kubectl("delete", "aiw", "bot", "-n", namespace)
    cluster.wait_for(
        "the policy garbage-collected",
        lambda: network_policy(cluster, namespace, "aigis-bot") is None,
    )


@pytest.mark.parametrize(
    ("host", "rule", "message"),
    [
        pytest.param(
            "api.anthropic.com",
            "DataRegion",
            "outside spec.dataRegions (eu)",
            id="catalogue-region-outside-data-regions",
        ),
        pytest.param(
            "bedrock-runtime.us-east-1.amazonaws.com",
            "DataRegion",
            '"us"',
            id="regional-hostname-outside-data-regions",
        ),
    ],
)
def test_host_outside_data_regions_is_non_compliant_and_left_out(
    cluster: Cluster,
    namespace: str,
    operator: AigisProcess,
    host: str,
    rule: str,
    message: str,
) -> None:
    spec = {**BOT_SPEC, "egress": [{"host": "eu.api.openai.com"}, {"host": host}]}
    cluster.apply(workload("bot", spec), namespace)
    obj = cluster.wait_for("bot reconciled", reconciled(cluster, namespace, "bot"))
    compliant = condition(obj, "Compliant")
    assert compliant["status"] == "False"
    assert compliant["reason"] == "NonCompliant"
    assert "spec.egress[1].host" in compliant["message"]
    violation = obj["status"]["violations"][0]
    assert violation["rule"] == rule
    assert violation["path"] == "spec.egress[1].host"
    assert message in violation["message"]
    # Enforce mode: the non-compliant destination is not in the policy.
    policy = cluster.wait_for("aigis-bot", lambda: network_policy(cluster, namespace, "aigis-bot"))
    assert [{"ipBlock": {"cidr": "192.0.2.20/32"}}] in egress_peers(policy)
    assert len(policy["spec"]["egress"]) == 2
    reasons = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=bot",
        "-o", "jsonpath={.items[*].reason}",
    ).stdout.split()  # fmt: skip
    assert "NonCompliant" in reasons


def test_audit_mode_writes_no_policy(
    cluster: Cluster, namespace: str, operator: AigisProcess
) -> None:
    cluster.apply(workload("bot", {**BOT_SPEC, "enforcement": "Audit"}), namespace)
    obj = cluster.wait_for("bot reconciled", reconciled(cluster, namespace, "bot"))
    applied = condition(obj, "NetworkPolicyApplied")
    assert (applied["status"], applied["reason"]) == ("False", "AuditMode")
    assert condition(obj, "Ready")["status"] == "True"
    assert network_policy(cluster, namespace, "aigis-bot") is None


def test_dns_answers_are_refreshed(
    cluster: Cluster, namespace: str, operator: AigisProcess, static_hosts: Path
) -> None:
    spec = {**BOT_SPEC, "egress": [{"host": "eu.api.openai.com"}]}
    cluster.apply(workload("bot", spec), namespace)
    cluster.wait_for("aigis-bot", lambda: network_policy(cluster, namespace, "aigis-bot"))
    original = static_hosts.read_text()
    try:
        static_hosts.write_text(original.replace("[192.0.2.20]", "[192.0.2.21]"))
        # The new address is added at the next refresh; the old one stays for its grace period.
        policy = cluster.wait_for(
            "the new address in the policy",
            lambda: (
                (p := network_policy(cluster, namespace, "aigis-bot"))
                and {"ipBlock": {"cidr": "192.0.2.21/32"}} in egress_peers(p)[1]
                and p
            ),
        )
        assert {"ipBlock": {"cidr": "192.0.2.20/32"}} in egress_peers(policy)[1]
    finally:
        static_hosts.write_text(original)


def test_cluster_policy_governs_labelled_namespaces(
    cluster: Cluster, namespace: str, operator: AigisProcess
) -> None:
    policy_name = f"only-us-{namespace}"
    cluster.kubectl("label", "namespace", namespace, f"policy-test={namespace}")
    cluster.apply(workload("bot", BOT_SPEC), namespace)
    first = cluster.wait_for("bot reconciled", reconciled(cluster, namespace, "bot"))
    assert condition(first, "Compliant")["status"] == "True"
    try:
        cluster.apply(
            {
                "apiVersion": "aigis.dev/v1alpha1",
                "kind": "AIClusterPolicy",
                "metadata": {"name": policy_name},
                "spec": {
                    "namespaceSelector": {"matchLabels": {"policy-test": namespace}},
                    "allowedRegions": ["us"],
                    "allowedProviders": ["anthropic"],
                },
            }
        )
        # The policy reaches the workload without waiting for its refresh timer.
        obj = cluster.wait_for(
            "the workload non-compliant under the policy",
            lambda: (
                (o := cluster.get_json("aiw", "bot", "-n", namespace))
                and condition(o, "Compliant")["status"] == "False"
                and o
            ),
        )
        rules = {(v["rule"], v["path"]) for v in obj["status"]["violations"]}
        assert ("PolicyRegion", "spec.dataRegions[0]") in rules
        assert ("PolicyRegion", "spec.egress[0].host") in rules
        assert ("PolicyProvider", "spec.models[0].provider") in rules
        assert policy_name in condition(obj, "Compliant")["message"] or any(
            policy_name in v["message"] for v in obj["status"]["violations"]
        )
        status = cluster.get_json("aiclusterpolicy", policy_name)["status"]
        assert condition({"status": status}, "Ready")["status"] == "True"
    finally:
        cluster.kubectl("delete", "aiclusterpolicy", policy_name, check=False)
    cluster.wait_for(
        "compliance restored after the policy is deleted",
        lambda: (
            condition(cluster.get_json("aiw", "bot", "-n", namespace), "Compliant")["status"]
            == "True"
        ),
    )


def test_gateway_config_map_is_rendered_owned_and_repaired(
    cluster: Cluster, namespace: str, operator: AigisProcess
) -> None:
    spec = {
        **BOT_SPEC,
        "gateway": {
            "providerKeys": [{"provider": "openai", "secretRef": {"name": "openai", "key": "k"}}]
        },
    }
    cluster.apply(workload("bot", spec), namespace)
    obj = cluster.wait_for("bot reconciled", reconciled(cluster, namespace, "bot"))
    assert obj["status"]["gatewayConfigMap"] == "aigis-gateway-bot"
    config_map = cluster.get_json("configmap", "aigis-gateway-bot", "-n", namespace)
    config = json.loads(config_map["data"]["config.json"])
    assert (config["namespace"], config["name"]) == (namespace, "bot")
    assert [m["name"] for m in config["models"]] == ["gpt-4o-mini"]
    assert config["upstreams"][0]["keyFile"] == "/var/run/aigis/provider-keys/openai"
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]

    cluster.kubectl("delete", "configmap", "aigis-gateway-bot", "-n", namespace)
    cluster.wait_for(
        "the ConfigMap recreated",
        lambda: (
            cluster.kubectl(
                "get", "configmap", "aigis-gateway-bot", "-n", namespace, check=False
            ).returncode
            == 0
        ),
    )

    # Turning the gateway off removes its configuration.
    cluster.apply(workload("bot", {**spec, "gateway": {"inject": False}}), namespace)
    cluster.wait_for(
        "the ConfigMap removed",
        lambda: (
            cluster.kubectl(
                "get", "configmap", "aigis-gateway-bot", "-n", namespace, check=False
            ).returncode
            != 0
        ),
    )
