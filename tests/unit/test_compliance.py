"""Region, provider and host rules: a workload against its dataRegions and the cluster policies."""

from __future__ import annotations

from typing import Any

import pytest

from aigis.api.aiworkload import AIWorkloadSpec
from aigis.api.clusterpolicy import AIClusterPolicySpec
from aigis.egress.compliance import NamedPolicy, evaluate_compliance, governing_policies


def spec(**changes: Any) -> AIWorkloadSpec:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "bot"}},
        "owner": "team-a",
        "purpose": "answers questions",
    }
    return AIWorkloadSpec.model_validate({**base, **changes}, by_alias=True)


def policy(name: str = "org", **fields: Any) -> NamedPolicy:
    return NamedPolicy(name, AIClusterPolicySpec.model_validate(fields, by_alias=True))


@pytest.mark.parametrize(
    ("workload", "policies", "expected"),
    [
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "eu.api.openai.com"}]),
            [],
            [],
            id="catalogue-region-inside-data-regions",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "api.anthropic.com"}]),
            [],
            [("DataRegion", "spec.egress[0].host")],
            id="catalogue-region-outside-data-regions",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "bedrock-runtime.us-east-1.amazonaws.com"}]),
            [],
            [("DataRegion", "spec.egress[0].host")],
            id="regional-hostname-outside-data-regions",
        ),
        pytest.param(
            spec(
                dataRegions=["eu"], egress=[{"host": "bedrock-runtime.eu-central-1.amazonaws.com"}]
            ),
            [],
            [],
            id="regional-hostname-inside-data-regions",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "api.anthropic.com", "region": "eu"}]),
            [],
            [("RegionMismatch", "spec.egress[0].region"), ("DataRegion", "spec.egress[0].region")],
            id="catalogue-region-wins-over-a-declared-one",
        ),
        pytest.param(
            spec(egress=[{"host": "api.openai.com", "region": "eu"}]),
            [policy(allowedRegions=["eu"], unknownRegions="Allow")],
            [
                ("RegionMismatch", "spec.egress[0].region"),
                ("PolicyRegion", "spec.egress[0].region"),
            ],
            id="declared-eu-does-not-pass-an-eu-only-policy-for-a-global-host",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "eu.api.openai.com", "region": "eu"}]),
            [policy(allowedRegions=["eu"], trustDeclaredRegions=False)],
            [],
            id="declared-region-agreeing-with-catalogue-needs-no-trust",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "eu.api.openai.com", "region": "global"}]),
            [],
            [("RegionMismatch", "spec.egress[0].region")],
            id="any-contradiction-is-a-mismatch",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "support.openai.azure.com", "region": "eu"}]),
            [policy(allowedRegions=["eu"], trustDeclaredRegions=True)],
            [],
            id="declared-region-counts-where-the-catalogue-has-none",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "*.openai.com", "region": "eu"}]),
            [],
            [("RegionMismatch", "spec.egress[0].region")],
            id="wildcard-declared-eu-covers-the-global-api-host",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "*.api.openai.com", "region": "eu"}]),
            [],
            [("RegionMismatch", "spec.egress[0].region")],
            id="wildcard-covers-residency-hosts-of-other-regions",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "*.corp.example", "region": "eu"}]),
            [policy(allowedRegions=["eu"], trustDeclaredRegions=True)],
            [],
            id="wildcard-over-hosts-the-catalogue-does-not-know",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "api-openai.example", "region": "eu"}]),
            [policy(allowedRegions=["eu"], trustDeclaredRegions=False)],
            [("UnknownRegion", "spec.egress[0].region")],
            id="untrusted-declared-region-is-unknown",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "api-openai.example", "region": "eu"}]),
            [policy(trustDeclaredRegions=False, unknownRegions="Allow")],
            [],
            id="untrusted-declared-region-then-unknown-regions-decides",
        ),
        pytest.param(
            spec(egress=[{"host": "llm.corp.example", "region": "eu"}]),
            [policy("a"), policy("b", trustDeclaredRegions=False, unknownRegions="Allow")],
            [("UnknownRegion", "spec.egress[0].region")],
            id="one-distrusting-policy-is-enough",
        ),
        pytest.param(
            spec(egress=[{"cidr": "10.0.0.0/8", "region": "eu"}]),
            [policy(trustDeclaredRegions=False)],
            [("UnknownRegion", "spec.egress[0].region")],
            id="untrusted-declared-region-on-a-cidr",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "eu.api.openai.com"}]),
            [policy(allowedRegions=["eu"], trustDeclaredRegions=False)],
            [],
            id="distrust-leaves-catalogue-hosts-alone",
        ),
        pytest.param(
            spec(dataRegions=["eu"], egress=[{"host": "llm.corp.example", "region": "us"}]),
            [],
            [("DataRegion", "spec.egress[0].region")],
            id="explicit-region-outside-data-regions",
        ),
        pytest.param(
            spec(egress=[{"host": "api.anthropic.com"}]),
            [],
            [],
            id="no-data-regions-no-region-rule",
        ),
        pytest.param(
            spec(egress=[{"host": "llm.corp.example"}]),
            [],
            [],
            id="unknown-region-allowed-without-policy",
        ),
        pytest.param(
            spec(egress=[{"host": "llm.corp.example"}]),
            [policy()],
            [("UnknownRegion", "spec.egress[0].host")],
            id="unknown-region-denied-by-default-policy",
        ),
        pytest.param(
            spec(egress=[{"host": "llm.corp.example"}]),
            [policy(unknownRegions="Allow")],
            [],
            id="unknown-region-allowed-by-policy",
        ),
        pytest.param(
            spec(egress=[{"host": "llm.corp.example"}]),
            [policy("a", unknownRegions="Allow"), policy("b")],
            [("UnknownRegion", "spec.egress[0].host")],
            id="strictest-unknown-region-answer-wins",
        ),
        pytest.param(
            spec(egress=[{"cidr": "10.0.0.0/8"}]),
            [policy()],
            [],
            id="cidr-without-region-not-region-checked",
        ),
        pytest.param(
            spec(egress=[{"cidr": "10.0.0.0/8", "region": "us"}]),
            [policy(allowedRegions=["eu"])],
            [("PolicyRegion", "spec.egress[0].region")],
            id="cidr-with-region-checked-against-policy",
        ),
        pytest.param(
            spec(dataRegions=["us"], egress=[{"host": "us.api.openai.com"}]),
            [policy(allowedRegions=["eu"])],
            [("PolicyRegion", "spec.dataRegions[0]"), ("PolicyRegion", "spec.egress[0].host")],
            id="policy-region-bounds-data-regions-and-egress",
        ),
        pytest.param(
            spec(egress=[{"host": "eu.api.openai.com"}]),
            [policy("a", allowedRegions=["eu", "us"]), policy("b", allowedRegions=["us"])],
            [("PolicyRegion", "spec.egress[0].host")],
            id="allowed-regions-intersect-across-policies",
        ),
        pytest.param(
            spec(models=[{"provider": "openai", "name": "gpt-4o"}]),
            [policy(allowedProviders=["anthropic"])],
            [("PolicyProvider", "spec.models[0].provider")],
            id="provider-not-allowed",
        ),
        pytest.param(
            spec(egress=[{"host": "eu.api.openai.com"}]),
            [policy(allowedHosts=["*.api.openai.com"], unknownRegions="Allow")],
            [],
            id="host-covered-by-policy-wildcard",
        ),
        pytest.param(
            spec(egress=[{"host": "api.mistral.ai"}]),
            [policy(allowedHosts=["eu.api.openai.com"], unknownRegions="Allow")],
            [("PolicyHost", "spec.egress[0].host")],
            id="host-not-in-policy-allowlist",
        ),
        pytest.param(
            spec(egress=[{"host": "*.corp.example", "region": "eu"}]),
            [policy(allowedHosts=["api.corp.example"])],
            [("PolicyHost", "spec.egress[0].host")],
            id="wildcard-wider-than-policy-host",
        ),
    ],
)
def test_rules(
    workload: AIWorkloadSpec, policies: list[NamedPolicy], expected: list[tuple[str, str]]
) -> None:
    report = evaluate_compliance(workload, policies)
    assert [(f.rule, f.path) for f in report.findings] == expected
    assert report.compliant is (not expected)


def test_findings_name_the_policy_the_host_and_the_region() -> None:
    report = evaluate_compliance(
        spec(dataRegions=["eu"], egress=[{"host": "api.anthropic.com"}]),
        [policy("corp-eu", allowedRegions=["eu"])],
    )
    messages = [f.message for f in report.findings]
    assert any("api.anthropic.com" in m and "outside spec.dataRegions (eu)" in m for m in messages)
    assert any("AIClusterPolicy corp-eu" in m for m in messages)


def test_region_and_host_breaches_block_the_entry_but_provider_breaches_do_not() -> None:
    workload = spec(
        dataRegions=["eu"],
        models=[{"provider": "openai", "name": "gpt-4o"}],
        egress=[
            {"host": "eu.api.openai.com"},
            {"host": "api.anthropic.com"},
            {"cidr": "10.0.0.0/8"},
        ],
    )
    report = evaluate_compliance(
        workload, [policy(allowedProviders=["anthropic"], unknownRegions="Allow")]
    )
    assert report.blocked_entries == frozenset({1})
    assert {f.rule for f in report.findings} == {"DataRegion", "PolicyProvider"}


@pytest.mark.parametrize(
    ("own", "policy_modes", "expected"),
    [
        pytest.param("Audit", [], "Audit", id="own-audit"),
        pytest.param("Enforce", ["Audit"], "Enforce", id="own-enforce-stays"),
        pytest.param("Audit", ["Audit", "Enforce"], "Enforce", id="policy-enforce-wins"),
    ],
)
def test_effective_enforcement(own: str, policy_modes: list[str], expected: str) -> None:
    policies = [policy(f"p{i}", enforcement=m) for i, m in enumerate(policy_modes)]
    assert evaluate_compliance(spec(enforcement=own), policies).enforcement == expected


@pytest.mark.parametrize(
    ("namespace", "labels", "expected"),
    [
        pytest.param("team-a", {"env": "prod"}, ["all", "prod"], id="selector-and-catch-all"),
        pytest.param("team-b", {"env": "dev"}, ["all"], id="selector-does-not-match"),
        pytest.param("kube-system", {"env": "prod"}, [], id="system-namespace-never-governed"),
        pytest.param("kube-node-lease", {}, [], id="node-lease-never-governed"),
        pytest.param("aigis-system", {"env": "prod"}, [], id="own-namespace-never-governed"),
    ],
)
def test_governing_policies(namespace: str, labels: dict[str, str], expected: list[str]) -> None:
    policies = [
        policy("prod", namespaceSelector={"matchLabels": {"env": "prod"}}),
        policy("all"),
    ]
    found = governing_policies(policies, namespace, labels, aigis_namespace="aigis-system")
    assert [p.name for p in found] == expected


def test_a_region_mismatch_blocks_the_entry_and_says_the_catalogue_wins() -> None:
    report = evaluate_compliance(
        spec(
            dataRegions=["eu", "global"],
            egress=[{"host": "eu.api.openai.com"}, {"host": "api.openai.com", "region": "eu"}],
        ),
        [],
    )
    assert [(f.rule, f.path) for f in report.findings] == [
        ("RegionMismatch", "spec.egress[1].region")
    ]
    assert report.blocked_entries == frozenset({1})
    message = report.findings[0].message
    assert 'api.openai.com is in region "global"' in message
    assert 'not "eu" as declared' in message
    assert report.regions[1].region == "global"


def test_a_wildcard_mismatch_names_the_hosts_it_covers() -> None:
    report = evaluate_compliance(
        spec(egress=[{"host": "*.openai.com", "region": "eu"}]), [policy(unknownRegions="Allow")]
    )
    assert report.blocked_entries == frozenset({0})
    assert 'api.openai.com is "global"' in report.findings[0].message


def test_distrust_is_reported_and_named_in_the_finding() -> None:
    report = evaluate_compliance(
        spec(egress=[{"host": "llm.corp.example", "region": "eu"}]),
        [policy("strict", trustDeclaredRegions=False)],
    )
    assert report.trust_declared_regions is False
    assert report.regions[0].region is None
    assert "trustDeclaredRegions: false" in report.findings[0].message
    assert "AIClusterPolicy strict does not trust declared regions" in report.findings[0].message
    trusting = evaluate_compliance(spec(), [policy()])
    assert trusting.trust_declared_regions is True
