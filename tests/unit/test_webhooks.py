"""The webhook configurations: what is excluded, where aigis fails closed, and what is sent."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from aigis.api.clusterpolicy import AIClusterPolicySpec
from aigis.api.common import LabelSelector
from aigis.egress.compliance import NamedPolicy
from aigis.webhook.webhooks import (
    MAX_TIMEOUT_SECONDS,
    ConfigurationPublisher,
    WebhookEndpoint,
    WebhookLayout,
    configuration_path,
    enforce_groups,
    negate_selector,
    render_webhook_configurations,
)

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SYSTEM = ["kube-node-lease", "kube-public", "kube-system"]


def layout(**overrides: Any) -> WebhookLayout:
    values: dict[str, Any] = {
        "configuration_name": "aigis",
        "endpoint": WebhookEndpoint(url="https://127.0.0.1:9443"),
        "ca_bundle": CA,
        "aigis_namespace": "aigis-system",
    }
    values.update(overrides)
    return WebhookLayout(**values)


def policy(name: str, selector: Mapping[str, Any] | None = None, **spec: Any) -> NamedPolicy:
    body: dict[str, Any] = dict(spec)
    if selector is not None:
        body["namespaceSelector"] = selector
    return NamedPolicy(name, AIClusterPolicySpec.model_validate(body))


def webhooks(configuration: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in configuration["webhooks"]}


def exclusion(webhook: Mapping[str, Any]) -> list[str]:
    for requirement in webhook["namespaceSelector"]["matchExpressions"]:
        if requirement["key"] == "kubernetes.io/metadata.name":
            assert requirement["operator"] == "NotIn"
            return list(requirement["values"])
    raise AssertionError(f"{webhook['name']} does not exclude any namespace")


def namespace_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes' label-selector semantics, on a rendered selector."""
    model = LabelSelector.model_validate(selector)
    return model.matches(labels)


def reviewed_by(
    configuration: Mapping[str, Any],
    name: str,
    labels: Mapping[str, str],
    operation: str = "CREATE",
) -> set[str]:
    """Which entries of a configuration the API server would call for a pod `operation` in
    namespace `name`."""
    full = {"kubernetes.io/metadata.name": name, **labels}
    return {
        w["name"]
        for w in configuration["webhooks"]
        if "namespaceSelector" in w
        and namespace_matches(w["namespaceSelector"], full)
        and any(operation in rule["operations"] for rule in w["rules"])
    }


POLICY_SETS = [
    pytest.param([], id="no-policies"),
    pytest.param([policy("audit", enforcement="Audit")], id="audit-only"),
    pytest.param(
        [policy("prod", {"matchLabels": {"env": "prod"}}, enforcement="Enforce")],
        id="one-enforce",
    ),
    pytest.param([policy("all", enforcement="Enforce")], id="enforce-everywhere"),
    pytest.param(
        [
            policy("a", {"matchLabels": {"env": "prod", "team": "x"}}, enforcement="Enforce"),
            policy(
                "b",
                {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
                shadowAI="Enforce",
            ),
        ],
        id="two-enforce-one-compound",
    ),
]


@pytest.mark.parametrize("policies", POLICY_SETS)
@pytest.mark.parametrize(
    "scope", [pytest.param((), id="unscoped"), pytest.param((("t", "1"),), id="scoped")]
)
def test_no_entry_matches_the_system_or_aigis_namespaces(
    policies: Sequence[NamedPolicy], scope: tuple[tuple[str, str], ...]
) -> None:
    labels = {"env": "prod", "team": "x", "tier": "a", "t": "1"}
    for configuration in render_webhook_configurations(policies, layout(scope=scope)):
        for webhook in configuration["webhooks"]:
            if "namespaceSelector" in webhook:
                assert exclusion(webhook) == sorted([*SYSTEM, "aigis-system"])
        for name in [*SYSTEM, "aigis-system"]:
            assert reviewed_by(configuration, name, labels) == set()
        # ...while an ordinary namespace with the same labels is reviewed.
        assert reviewed_by(configuration, "team-ns", labels) != set()


@pytest.mark.parametrize("policies", POLICY_SETS)
def test_invariants_of_every_entry(policies: Sequence[NamedPolicy]) -> None:
    validating, mutating = render_webhook_configurations(policies, layout())
    for webhook in [*validating["webhooks"], *mutating["webhooks"]]:
        assert webhook["sideEffects"] == "None"
        assert webhook["admissionReviewVersions"] == ["v1"]
        assert 1 <= webhook["timeoutSeconds"] <= MAX_TIMEOUT_SECONDS
        assert webhook["name"].count(".") >= 2
        assert base64.b64decode(webhook["clientConfig"]["caBundle"]) == CA
        conditions = {c["name"] for c in webhook.get("matchConditions", [])}
        operations = {op for rule in webhook["rules"] for op in rule["operations"]}
        if "UPDATE" in operations:
            assert {"not-an-excluded-namespace", "not-a-node", "not-being-deleted"} <= conditions
        else:
            # The API server converts the whole object for CEL on every call of an entry with
            # conditions: creates go without (the server skips nodes itself).
            assert conditions == set()
    for webhook in mutating["webhooks"]:
        assert webhook["reinvocationPolicy"] == "IfNeeded"
        assert webhook["rules"] == [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "operations": ["CREATE"],
                "scope": "Namespaced",
            }
        ]
        assert webhook["clientConfig"]["url"] == "https://127.0.0.1:9443/mutate"
    for webhook in validating["webhooks"]:
        assert webhook["clientConfig"]["url"] == "https://127.0.0.1:9443/validate"
        assert "DELETE" not in {op for rule in webhook["rules"] for op in rule["operations"]}


@pytest.mark.parametrize(
    ("policies", "namespace_labels", "fail", "ignore"),
    [
        pytest.param([], {}, set(), {"default"}, id="no-policy-fails-open"),
        pytest.param(
            [policy("audit", enforcement="Audit", shadowAI="Audit")],
            {},
            set(),
            {"default"},
            id="audit-policy-fails-open",
        ),
        pytest.param(
            [policy("prod", {"matchLabels": {"env": "prod"}}, enforcement="Enforce")],
            {"env": "prod"},
            {"enforce-prod"},
            set(),
            id="enforce-namespace-fails-closed-once",
        ),
        pytest.param(
            [policy("prod", {"matchLabels": {"env": "prod"}}, enforcement="Enforce")],
            {"env": "dev"},
            set(),
            {"default"},
            id="other-namespace-fails-open",
        ),
        pytest.param(
            [policy("shadow", {"matchLabels": {"env": "prod"}}, shadowAI="Enforce")],
            {"env": "prod"},
            {"enforce-shadow"},
            set(),
            id="shadow-ai-enforce-fails-closed",
        ),
        pytest.param(
            [policy("all", enforcement="Enforce")],
            {"anything": "x"},
            {"enforce-all"},
            set(),
            id="policy-without-selector-covers-all",
        ),
        pytest.param(
            [
                policy("a", {"matchLabels": {"env": "prod", "team": "x"}}, enforcement="Enforce"),
            ],
            {"env": "prod", "team": "x"},
            {"enforce-a"},
            {"default"},
            id="compound-selector-overlaps",
        ),
        pytest.param(
            [
                policy("a", {"matchLabels": {"env": "prod", "team": "x"}}, enforcement="Enforce"),
            ],
            {"env": "prod", "team": "y"},
            set(),
            {"default"},
            id="compound-selector-miss-fails-open",
        ),
        pytest.param(
            [
                policy("a", {"matchLabels": {"env": "prod"}}, enforcement="Enforce"),
                policy("b", {"matchLabels": {"env": "prod"}}, enforcement="Enforce"),
                policy(
                    "c",
                    {"matchExpressions": [{"key": "pci", "operator": "Exists"}]},
                    enforcement="Enforce",
                ),
            ],
            {"env": "prod", "pci": ""},
            {"enforce-a", "enforce-c"},
            set(),
            id="same-selector-shares-an-entry",
        ),
    ],
)
def test_failure_policy_per_namespace(
    policies: Sequence[NamedPolicy],
    namespace_labels: Mapping[str, str],
    fail: set[str],
    ignore: set[str],
) -> None:
    for configuration, suffix in zip(
        render_webhook_configurations(policies, layout()),
        (".validate.aigis.dev", ".inject.aigis.dev"),
        strict=True,
    ):
        entries = webhooks(configuration)
        called = reviewed_by(configuration, "team-ns", namespace_labels)
        assert {n for n in called if entries[n]["failurePolicy"] == "Fail"} == {
            n + suffix for n in fail
        }
        assert {n for n in called if entries[n]["failurePolicy"] == "Ignore"} == {
            n + suffix for n in ignore
        }


def test_ignore_everywhere_setting_never_fails_closed() -> None:
    policies = [policy("prod", {"matchLabels": {"env": "prod"}}, enforcement="Enforce")]
    for configuration in render_webhook_configurations(
        policies, layout(enforce_failure_policy="Ignore")
    ):
        assert {w["failurePolicy"] for w in configuration["webhooks"]} == {"Ignore"}


def test_cluster_policies_are_reviewed_by_their_own_entry_with_the_scope_as_object_selector() -> (
    None
):
    validating, _ = render_webhook_configurations([], layout(scope=(("aigis.dev/test", "abc"),)))
    entry = webhooks(validating)["policies.validate.aigis.dev"]
    assert entry["rules"][0]["resources"] == ["aiclusterpolicies"]
    assert entry["rules"][0]["scope"] == "Cluster"
    assert entry["failurePolicy"] == "Ignore"
    assert entry["objectSelector"] == {"matchLabels": {"aigis.dev/test": "abc"}}
    assert "namespaceSelector" not in entry


def test_scope_restricts_every_namespaced_entry() -> None:
    policies = [policy("prod", {"matchLabels": {"env": "prod"}}, enforcement="Enforce")]
    validating, mutating = render_webhook_configurations(
        policies, layout(scope=(("aigis.dev/test", "abc"),))
    )
    assert reviewed_by(validating, "ns", {"env": "prod"}) == set()
    assert reviewed_by(mutating, "ns", {}) == set()
    assert reviewed_by(validating, "ns", {"env": "prod", "aigis.dev/test": "abc"}) == {
        "enforce-prod.validate.aigis.dev"
    }


def test_validating_rules_cover_every_pod_template_owner_and_aiworkloads() -> None:
    validating, _ = render_webhook_configurations([], layout())
    entries = webhooks(validating)
    resources = {
        (group, resource)
        for name in ("default.validate.aigis.dev", "default.updates.validate.aigis.dev")
        for rule in entries[name]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert resources == {
        ("", "pods"),
        ("", "pods/ephemeralcontainers"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("apps", "replicasets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("aigis.dev", "aiworkloads"),
        ("leaderworkerset.x-k8s.io", "leaderworkersets"),
        ("jobset.x-k8s.io", "jobsets"),
        ("ray.io", "rayclusters"),
        ("ray.io", "rayjobs"),
        ("ray.io", "rayservices"),
        ("serving.kserve.io", "inferenceservices"),
        ("serving.kserve.io", "llminferenceservices"),
        ("serving.kserve.io", "servingruntimes"),
        ("kubeflow.org", "jaxjobs"),
        ("kubeflow.org", "mpijobs"),
        ("kubeflow.org", "notebooks"),
        ("kubeflow.org", "paddlejobs"),
        ("kubeflow.org", "pytorchjobs"),
        ("kubeflow.org", "tfjobs"),
        ("kubeflow.org", "xgboostjobs"),
    }


def test_ephemeral_containers_are_validated_on_update_and_never_mutated() -> None:
    """`kubectl debug` writes the pods/ephemeralcontainers subresource (an UPDATE): it must reach
    the validating webhooks, and the injection, which happens once at CREATE, must not see it."""
    validating, mutating = render_webhook_configurations([], layout())
    for entry in webhooks(validating).values():
        for rule in entry["rules"]:
            if "pods" in rule["resources"] and "UPDATE" in rule["operations"]:
                assert "pods/ephemeralcontainers" in rule["resources"]
    updates = webhooks(validating)["default.updates.validate.aigis.dev"]
    assert any("pods/ephemeralcontainers" in rule["resources"] for rule in updates["rules"])
    for entry in webhooks(mutating).values():
        for rule in entry["rules"]:
            assert rule["resources"] == ["pods"]
            assert rule["operations"] == ["CREATE"]


def test_service_endpoint_names_the_service_and_path() -> None:
    endpoint = WebhookEndpoint(service_name="aigis-webhook", service_namespace="aigis-system")
    validating, mutating = render_webhook_configurations([], layout(endpoint=endpoint))
    assert validating["webhooks"][0]["clientConfig"]["service"] == {
        "name": "aigis-webhook",
        "namespace": "aigis-system",
        "port": 443,
        "path": "/validate",
    }
    assert "url" not in mutating["webhooks"][0]["clientConfig"]
    assert mutating["webhooks"][0]["clientConfig"]["service"]["path"] == "/mutate"


def test_without_a_ca_bundle_the_field_is_left_to_someone_else() -> None:
    validating, _ = render_webhook_configurations([], layout(ca_bundle=None))
    assert "caBundle" not in validating["webhooks"][0]["clientConfig"]


def test_long_policy_names_still_give_valid_webhook_names() -> None:
    name = "p" + ".very-long-segment" * 14
    validating, _ = render_webhook_configurations(
        [policy(name, {"matchLabels": {"a": "b"}}, enforcement="Enforce")], layout()
    )
    names = [w["name"] for w in validating["webhooks"]]
    assert all(len(n) <= 253 for n in names)
    assert any(n.startswith("enforce-p.very-long-segment") for n in names)


@pytest.mark.parametrize(
    ("selector", "negation"),
    [
        pytest.param(
            {"matchLabels": {"a": "b"}},
            {"key": "a", "operator": "NotIn", "values": ["b"]},
            id="label",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x"]}]},
            {"key": "a", "operator": "NotIn", "values": ["x", "y"]},
            id="in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]},
            {"key": "a", "operator": "In", "values": ["x"]},
            id="not-in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
            {"key": "a", "operator": "DoesNotExist"},
            id="exists",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
            {"key": "a", "operator": "Exists"},
            id="does-not-exist",
        ),
        pytest.param({"matchLabels": {"a": "b", "c": "d"}}, None, id="two-requirements"),
    ],
)
def test_negate_selector(selector: Mapping[str, Any], negation: Mapping[str, Any] | None) -> None:
    model = LabelSelector.model_validate(selector)
    assert negate_selector(model) == negation
    if negation is not None:
        negated = LabelSelector.model_validate({"matchExpressions": [negation]})
        for labels in ({}, {"a": "b"}, {"a": "x"}, {"a": "y"}, {"c": "d"}):
            assert negated.matches(labels) != model.matches(labels), labels


def test_enforce_groups_are_stable_and_named_for_the_first_policy() -> None:
    policies = [
        policy("zeta", {"matchLabels": {"env": "prod"}}, enforcement="Enforce"),
        policy("alpha", {"matchLabels": {"env": "prod"}}, enforcement="Enforce"),
        policy("audit", {"matchLabels": {"env": "prod"}}),
    ]
    groups = enforce_groups(policies)
    assert [(g.name, g.policies) for g in groups] == [("alpha", ("alpha", "zeta"))]


class FakeApplyApi:
    def __init__(self) -> None:
        self.applied: list[tuple[str, dict[str, Any]]] = []

    async def apply(self, path: str, manifest: Mapping[str, Any], field_manager: str) -> None:
        assert field_manager == "aigis-webhook"
        self.applied.append((path, dict(manifest)))


class FakeCounter:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def labels(self, *values: str) -> FakeCounter:
        self._key = values[0]
        return self

    def inc(self) -> None:
        self.counts[self._key] = self.counts.get(self._key, 0) + 1


def test_publisher_applies_only_when_active_and_only_changes() -> None:
    api = FakeApplyApi()
    current: list[NamedPolicy] = []
    counter = FakeCounter()
    publisher = ConfigurationPublisher(api, layout(ca_bundle=None), lambda: current, counter)

    async def scenario() -> None:
        await publisher.set_ca_bundle(CA)
        assert api.applied == []
        await publisher.activate()
        assert [path for path, _ in api.applied] == [
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/aigis",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/aigis",
        ]
        await publisher.apply()
        assert len(api.applied) == 2
        current.append(policy("prod", {"matchLabels": {"env": "prod"}}, enforcement="Enforce"))
        await publisher.apply()
        assert len(api.applied) == 4
        assert "enforce-prod.validate.aigis.dev" in webhooks(api.applied[2][1])
        await publisher.set_ca_bundle(CA + CA)
        assert len(api.applied) == 6
        ca = api.applied[-1][1]["webhooks"][0]["clientConfig"]["caBundle"]
        assert base64.b64decode(ca) == CA + CA

    asyncio.run(scenario())
    assert counter.counts == {"applied": 3}


def test_configuration_path() -> None:
    validating, mutating = render_webhook_configurations([], layout(configuration_name="it-x"))
    assert configuration_path(validating).endswith("/validatingwebhookconfigurations/it-x")
    assert configuration_path(mutating).endswith("/mutatingwebhookconfigurations/it-x")


def test_match_conditions_never_read_a_field_that_may_be_missing() -> None:
    """A matchCondition that errors makes a `Fail` entry refuse the request: cluster-scoped
    requests have no `namespace`, and `userInfo.groups` may be absent."""
    validating, mutating = render_webhook_configurations(
        [policy("p", enforcement="Enforce")], layout()
    )
    for webhook in [*validating["webhooks"], *mutating["webhooks"]]:
        for condition in webhook.get("matchConditions", []):
            expression = condition["expression"]
            for field in ("request.namespace", "request.userInfo.groups"):
                if f"{field} " in expression or f"{field})" in expression:
                    assert f"!has({field}) ||" in expression, expression
