"""The AIWorkload models: defaults, Kubernetes conventions, and the cross-field rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aigis.api.aiworkload import (
    AIWORKLOAD,
    PII_ENTITIES,
    AIWorkload,
    AIWorkloadSpec,
    AIWorkloadStatus,
    EgressRule,
)
from aigis.api.clusterpolicy import AIClusterPolicySpec
from aigis.api.common import ApiModel

MINIMAL = {
    "selector": {"matchLabels": {"app": "chatbot"}},
    "owner": "team-a",
    "purpose": "answers questions",
}


def spec_with(**fields: Any) -> dict[str, Any]:
    return {**MINIMAL, **fields}


def test_minimal_spec_gets_every_default() -> None:
    spec = AIWorkloadSpec.model_validate(MINIMAL)
    assert spec.model_dump(exclude_none=True) == {
        **MINIMAL,
        "enforcement": "Enforce",
        "models": [],
        "egress": [],
        "dataRegions": [],
        "guardrails": {
            "promptInjection": {"enabled": True, "action": "Block", "threshold": 0.5},
            "pii": {"enabled": True, "entities": list(PII_ENTITIES), "action": "Redact"},
            "secrets": {"enabled": True, "action": "Block"},
            "denyPatterns": [],
            "promptLogging": "Hash",
            "failureMode": "FailClosed",
        },
        "gateway": {"inject": True, "workers": 1, "providerKeys": [], "upstreams": []},
        "forensics": {
            "captureOnTermination": True,
            "logsMaxBytes": 10 * 1024 * 1024,
            "retentionDays": 30,
            "checkpoint": False,
        },
        "serviceAccountToken": False,
    }


def test_egress_ports_default_to_https_and_are_not_shared() -> None:
    first = EgressRule(host="a.example.com")
    second = EgressRule(host="b.example.com")
    first.ports[0].port = 8443
    assert [(p.port, p.protocol) for p in second.ports] == [(443, "TCP")]


def test_python_names_and_yaml_names_both_construct_but_dumps_use_yaml_names() -> None:
    by_name = EgressRule(cidr="10.0.0.0/8", except_=["10.1.0.0/16"])
    by_alias = EgressRule.model_validate({"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]})
    assert by_name == by_alias
    assert by_name.model_dump(exclude_none=True) == {
        "cidr": "10.0.0.0/8",
        "except": ["10.1.0.0/16"],
        "ports": [{"port": 443, "protocol": "TCP"}],
    }


def test_manifest_round_trips() -> None:
    manifest = {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "bot", "namespace": "team-a", "finalizers": ["x"]},
        "spec": MINIMAL,
    }
    workload = AIWorkload.model_validate(manifest)
    dumped = workload.model_dump(mode="json", exclude_none=True)
    assert dumped["metadata"]["finalizers"] == ["x"]  # metadata aigis does not model is kept
    assert AIWorkload.model_validate(dumped) == workload
    assert AIWorkload.resource is AIWORKLOAD
    assert AIWORKLOAD.api_version == workload.api_version


def test_status_accepts_what_the_operator_writes() -> None:
    status = AIWorkloadStatus.model_validate(
        {
            "observedGeneration": 2,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "InvalidSpec",
                    "message": "spec.owner: is required",
                    "lastTransitionTime": "2026-11-29T12:00:00Z",
                    "observedGeneration": 2,
                }
            ],
            "violations": [{"rule": "InvalidSpec", "path": "spec.owner", "message": "required"}],
        }
    )
    assert status.conditions[0].last_transition_time == "2026-11-29T12:00:00Z"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        pytest.param(spec_with(egress=[{"host": "a.example.com", "ports": [{"port": "443"}]}]),
                     "valid integer", id="port-is-not-a-string"),
        pytest.param(spec_with(gateway={"inject": "yes"}), "valid boolean",
                     id="boolean-is-not-a-string"),
        pytest.param(spec_with(forensics={"retentionDays": 1.5}), "valid integer",
                     id="integer-is-not-a-float"),
        pytest.param(spec_with(colour="blue"), "Extra inputs", id="unknown-field"),
        pytest.param(spec_with(gateway={"upstreams": [{"provider": "openai",
                                                       "baseUrl": "api.openai.com/v1"}]}),
                     "should match pattern", id="base-url-needs-a-scheme"),
    ],
)  # fmt: skip
def test_types_are_strict_like_the_api_server(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        AIWorkloadSpec.model_validate(spec)


def test_null_is_absent() -> None:
    spec = AIWorkloadSpec.model_validate(spec_with(enforcement=None, guardrails=None))
    assert spec.enforcement == "Enforce"
    assert spec.guardrails.secrets.enabled


# One row per cross-field rule (the same rules are CEL in the CRD): (spec, rule's message or None).
CROSS_FIELD_CASES = [
    ("egress-two-targets", spec_with(egress=[{"host": "a.example.com", "cidr": "10.0.0.0/8"}]),
     "exactly one of host, cidr or service"),
    ("egress-no-target", spec_with(egress=[{"ports": [{"port": 443}]}]),
     "exactly one of host, cidr or service"),
    ("egress-one-target", spec_with(egress=[{"service": {"name": "db"}}]), None),
    ("except-needs-cidr", spec_with(egress=[{"host": "a.example.com", "except": ["10.0.0.0/8"]}]),
     "except narrows a cidr"),
    ("in-needs-values", spec_with(selector={"matchExpressions": [
        {"key": "tier", "operator": "In"}]}), "In and NotIn need at least one value"),
    ("notin-needs-nonempty-values", spec_with(selector={"matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": []}]}), "In and NotIn need"),
    ("exists-takes-no-values", spec_with(selector={"matchExpressions": [
        {"key": "tier", "operator": "Exists", "values": ["a"]}]}),
     "Exists and DoesNotExist take no values"),
    ("exists-without-values", spec_with(selector={"matchExpressions": [
        {"key": "tier", "operator": "Exists"}]}), None),
    ("selector-empty", spec_with(selector={}), "an empty selector would cover every pod"),
    ("selector-empty-lists", spec_with(selector={"matchLabels": {}, "matchExpressions": []}),
     "an empty selector would cover every pod"),
    ("self-hosted-needs-image", spec_with(models=[{"provider": "self-hosted", "name": "m"}]),
     "a self-hosted model needs image"),
    ("image-only-for-self-hosted", spec_with(models=[
        {"provider": "openai", "name": "gpt-4o", "digest": "sha256:00"}]),
     "image, source and digest describe a self-hosted model"),
    ("service-name-and-selector", spec_with(egress=[{"service": {
        "name": "db", "podSelector": {"matchLabels": {"app": "db"}}}}]),
     "either {namespace, name}"),
    ("service-namespace-with-selector", spec_with(egress=[{"service": {
        "namespace": "data", "podSelector": {"matchLabels": {"app": "db"}}}}]),
     "either {namespace, name}"),
    ("service-names-nothing", spec_with(egress=[{"service": {"namespace": "data"}}]),
     "either {namespace, name}"),
    ("service-by-selectors", spec_with(egress=[{"service": {
        "namespaceSelector": {"matchLabels": {"team": "data"}},
        "podSelector": {"matchLabels": {"app": "db"}}}}]), None),
    ("s3-storage-needs-s3", spec_with(forensics={"storage": {"type": "S3"}}),
     "type S3 needs s3"),
    ("s3-only-with-type-s3", spec_with(forensics={"storage": {"s3": {
        "bucket": "evidence", "credentialsSecret": {"name": "s3"}}}}),
     "s3 describes the S3 backend"),
    ("s3-storage-with-s3", spec_with(forensics={"storage": {"type": "S3", "s3": {
        "bucket": "evidence", "credentialsSecret": {"name": "s3"}}}}), None),
    ("classifier-volume-two-sources", spec_with(guardrails={"promptInjection": {"classifier": {
        "path": "/models/pi", "volume": {"image": "r.example.com/m:1",
                                         "persistentVolumeClaim": "models"}}}}),
     "exactly one of image or persistentVolumeClaim"),
    ("classifier-volume-no-source", spec_with(guardrails={"promptInjection": {"classifier": {
        "path": "/models/pi", "volume": {}}}}),
     "exactly one of image or persistentVolumeClaim"),
    ("classifier-volume-one-source", spec_with(guardrails={"promptInjection": {"classifier": {
        "path": "/models/pi", "volume": {"persistentVolumeClaim": "models"}}}}), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "message"),
    [pytest.param(spec, message, id=rule) for rule, spec, message in CROSS_FIELD_CASES],
)
def test_cross_field_rule(spec: dict[str, Any], message: str | None) -> None:
    if message is None:
        AIWorkloadSpec.model_validate(spec)
        return
    with pytest.raises(ValidationError) as caught:
        AIWorkloadSpec.model_validate(spec)
    assert message in str(caught.value)


def _all_models(base: type[ApiModel] = ApiModel) -> list[type[ApiModel]]:
    found = []
    for sub in base.__subclasses__():
        found += [sub, *_all_models(sub)]
    return found


def test_every_cross_field_rule_is_proven_by_a_row() -> None:
    rules = {r.message for m in _all_models() for r in m.cross_field_rules}
    proven = {message for _, _, message in CROSS_FIELD_CASES if message}
    unproven = [r for r in rules if not any(p in r for p in proven)]
    assert not unproven, f"add a CROSS_FIELD_CASES row for: {unproven}"


def test_cluster_policy_trusts_declared_regions_unless_told_not_to() -> None:
    assert AIClusterPolicySpec().trust_declared_regions is True
    strict = AIClusterPolicySpec.model_validate({"trustDeclaredRegions": False}, by_alias=True)
    assert strict.trust_declared_regions is False
