"""Compiling AIWorkload egress into NetworkPolicy and CiliumNetworkPolicy."""

from __future__ import annotations

from typing import Any

import pytest

from aigis.api.aiworkload import AIWorkloadSpec
from aigis.api.clusterpolicy import AIClusterPolicySpec
from aigis.egress.compliance import NamedPolicy, evaluate_compliance
from aigis.egress.networkpolicy import (
    ClusterDns,
    WorkloadRef,
    policy_name,
    render_cilium_network_policy,
    render_network_policy,
    workload_label_value,
)

REF = WorkloadRef(name="bot", namespace="team-a", uid="1234")


def spec(**changes: Any) -> AIWorkloadSpec:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "bot"}},
        "owner": "team-a",
        "purpose": "answers questions",
    }
    return AIWorkloadSpec.model_validate({**base, **changes}, by_alias=True)


DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def test_exact_policy_for_a_sample() -> None:
    sample = spec(
        egress=[
            {"host": "api.openai.com"},
            {"cidr": "10.20.0.0/16", "except": ["10.20.99.0/24"], "ports": [{"port": 5432}]},
            {"service": {"namespace": "search", "name": "opensearch"}, "ports": [{"port": 9200}]},
            {
                "service": {"podSelector": {"matchLabels": {"app": "qdrant"}}},
                "ports": [{"port": 6333}],
            },
        ]
    )
    rendered = render_network_policy(
        REF,
        sample,
        addresses={"api.openai.com": ["192.0.2.10", "2001:db8::10"]},
        service_selectors={("search", "opensearch"): {"app": "opensearch"}},
    )
    assert rendered.notes == ()
    assert rendered.manifest == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "aigis-bot",
            "namespace": "team-a",
            "labels": {"app.kubernetes.io/managed-by": "aigis", "aigis.dev/workload": "bot"},
            "ownerReferences": [
                {
                    "apiVersion": "aigis.dev/v1alpha1",
                    "kind": "AIWorkload",
                    "name": "bot",
                    "uid": "1234",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "podSelector": {"matchLabels": {"app": "bot"}},
            "policyTypes": ["Egress"],
            "egress": [
                DNS_RULE,
                {
                    "to": [
                        {"ipBlock": {"cidr": "192.0.2.10/32"}},
                        {"ipBlock": {"cidr": "2001:db8::10/128"}},
                    ],
                    "ports": [{"protocol": "TCP", "port": 443}],
                },
                {
                    "to": [{"ipBlock": {"cidr": "10.20.0.0/16", "except": ["10.20.99.0/24"]}}],
                    "ports": [{"protocol": "TCP", "port": 5432}],
                },
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "search"}
                            },
                            "podSelector": {"matchLabels": {"app": "opensearch"}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 9200}],
                },
                {
                    "to": [{"podSelector": {"matchLabels": {"app": "qdrant"}}}],
                    "ports": [{"protocol": "TCP", "port": 6333}],
                },
            ],
        },
    }


def test_no_egress_declared_means_dns_only() -> None:
    rendered = render_network_policy(REF, spec(), addresses={}, service_selectors={})
    assert rendered.manifest["spec"]["egress"] == [DNS_RULE]


@pytest.mark.parametrize(
    ("egress", "addresses", "selectors", "note"),
    [
        pytest.param(
            [{"host": "*.example.com"}],
            {},
            {},
            "cannot be expressed",
            id="wildcard-not-expressible",
        ),
        pytest.param(
            [{"host": "api.openai.com"}],
            {},
            {},
            "no addresses known yet",
            id="unresolved-host-stays-closed",
        ),
        pytest.param(
            [{"service": {"name": "missing"}}],
            {},
            {},
            "team-a/missing not found",
            id="missing-service-stays-closed",
        ),
    ],
)
def test_what_cannot_be_allowed_is_left_out_and_noted(
    egress: list[dict[str, Any]],
    addresses: dict[str, list[str]],
    selectors: dict[tuple[str, str], dict[str, str]],
    note: str,
) -> None:
    rendered = render_network_policy(
        REF, spec(egress=egress), addresses=addresses, service_selectors=selectors
    )
    assert rendered.manifest["spec"]["egress"] == [DNS_RULE]
    assert len(rendered.notes) == 1
    assert note in rendered.notes[0]


def test_excluded_entries_are_left_out() -> None:
    sample = spec(egress=[{"host": "api.openai.com"}, {"cidr": "192.0.2.0/24"}])
    rendered = render_network_policy(
        REF,
        sample,
        addresses={"api.openai.com": ["192.0.2.10"]},
        service_selectors={},
        excluded=frozenset({0}),
    )
    peers = [rule["to"] for rule in rendered.manifest["spec"]["egress"][1:]]
    assert peers == [[{"ipBlock": {"cidr": "192.0.2.0/24"}}]]
    assert "spec.egress[0] left out" in rendered.notes[0]


def test_custom_cluster_dns() -> None:
    dns = ClusterDns(namespace="dns", pod_labels={"app": "coredns"}, port=5353)
    rendered = render_network_policy(REF, spec(), addresses={}, service_selectors={}, dns=dns)
    rule = rendered.manifest["spec"]["egress"][0]
    assert rule["to"][0]["podSelector"] == {"matchLabels": {"app": "coredns"}}
    assert {p["port"] for p in rule["ports"]} == {5353}


def test_long_names_stay_within_kubernetes_limits() -> None:
    name = "w" * 253
    assert len(policy_name(name)) == 253
    assert policy_name(name) != policy_name("w" * 252 + "x")
    assert len(workload_label_value(name)) <= 63
    assert workload_label_value("short") == "short"


def test_cilium_policy_uses_fqdns_and_a_dns_proxy_rule() -> None:
    sample = spec(
        egress=[
            {"host": "api.openai.com"},
            {"host": "*.example.com", "ports": [{"port": 8443}]},
            {"cidr": "10.0.0.0/8"},
            {
                "service": {
                    "namespaceSelector": {"matchLabels": {"team": "rag"}},
                    "podSelector": {"matchLabels": {"app": "qdrant"}},
                }
            },
        ]
    )
    rendered = render_cilium_network_policy(REF, sample, service_selectors={})
    manifest = rendered.manifest
    assert manifest["apiVersion"] == "cilium.io/v2"
    assert manifest["spec"]["endpointSelector"] == {"matchLabels": {"app": "bot"}}
    rules = manifest["spec"]["egress"]
    assert rules[0]["toPorts"][0]["rules"] == {"dns": [{"matchPattern": "*"}]}
    assert rules[1]["toFQDNs"] == [{"matchName": "api.openai.com"}]
    assert rules[2]["toFQDNs"] == [{"matchPattern": "*.example.com"}]
    assert rules[2]["toPorts"] == [{"ports": [{"port": "8443", "protocol": "TCP"}]}]
    assert rules[3]["toCIDRSet"] == [{"cidr": "10.0.0.0/8"}]
    assert rules[4]["toEndpoints"] == [
        {"matchLabels": {"k8s:app": "qdrant", "k8s:io.cilium.k8s.namespace.labels.team": "rag"}}
    ]
    assert rendered.notes == ()


@pytest.mark.parametrize(
    ("entry", "trust"),
    [
        pytest.param(
            {"host": "api.openai.com", "region": "eu"}, True, id="global-host-declared-eu"
        ),
        pytest.param(
            {"host": "*.openai.com", "region": "eu"}, True, id="wildcard-over-global-host"
        ),
        pytest.param({"host": "llm.corp.example", "region": "eu"}, False, id="untrusted-region"),
    ],
)
def test_entries_whose_region_does_not_hold_are_left_out_in_enforce(
    entry: dict[str, Any], trust: bool
) -> None:
    """The compliance check's blocked entries are what the compiler leaves out."""
    sample = spec(dataRegions=["eu"], egress=[{"host": "eu.api.openai.com"}, entry])
    policy = NamedPolicy(
        "eu-only",
        AIClusterPolicySpec(allowed_regions=["eu"], trust_declared_regions=trust),
    )
    excluded = evaluate_compliance(sample, [policy]).blocked_entries
    assert excluded == frozenset({1})
    rendered = render_cilium_network_policy(REF, sample, service_selectors={}, excluded=excluded)
    names = [
        name
        for rule in rendered.manifest["spec"]["egress"]
        for fqdn in rule.get("toFQDNs", [])
        for name in fqdn.values()
    ]
    assert names == ["eu.api.openai.com"]
