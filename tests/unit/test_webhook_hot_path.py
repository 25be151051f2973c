"""Admission's hot path: pod creates reach entries without matchConditions (the API server
converts the whole object for CEL on every call of an entry that has any), updates keep them,
and the server itself leaves requests by nodes alone, as the conditions did."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest

from aigis.admission.mutation import InjectionSettings
from aigis.api.common import LabelSelector
from aigis.api.validation import parse_cluster_policy_spec
from aigis.egress.compliance import NamedPolicy
from aigis.webhook.cache import StaticView
from aigis.webhook.metrics import WebhookMetrics
from aigis.webhook.server import AdmissionServer, BadReview, parse_review
from aigis.webhook.webhooks import (
    NODES_GROUP,
    WebhookEndpoint,
    WebhookLayout,
    render_webhook_configurations,
)


def policy(name: str, selector: Mapping[str, Any] | None = None, **spec: Any) -> NamedPolicy:
    if selector is not None:
        spec["namespaceSelector"] = selector
    model, errors = parse_cluster_policy_spec(spec)
    assert model is not None, errors
    return NamedPolicy(name, model)


LAYOUT = WebhookLayout("aigis", WebhookEndpoint(url="https://127.0.0.1:9443"), b"ca")
POLICY_SETS = [
    pytest.param([], id="no-policies"),
    pytest.param(
        [policy("prod", {"matchLabels": {"env": "prod"}}, enforcement="Enforce")], id="one"
    ),
    pytest.param([policy("all", enforcement="Enforce")], id="everywhere"),
    pytest.param(
        [policy("a", {"matchLabels": {"env": "prod", "team": "x"}}, enforcement="Enforce")],
        id="compound-overlaps",
    ),
]
NAMESPACE_LABELS = [{}, {"env": "prod"}, {"env": "prod", "team": "x"}, {"env": "dev"}]


def called(
    configuration: Mapping[str, Any], labels: Mapping[str, str], operation: str, resource: str
) -> dict[str, tuple[str, bool]]:
    """The entries the API server calls for `operation` on `resource` in a namespace with
    `labels`: {name without its create/update part: (failurePolicy, has conditions)}."""
    namespace = {"kubernetes.io/metadata.name": "team-ns", **labels}
    found = {}
    for entry in configuration["webhooks"]:
        selector = entry.get("namespaceSelector")
        if selector is None or not LabelSelector.model_validate(selector).matches(namespace):
            continue
        if not any(
            operation in rule["operations"] and resource in rule["resources"]
            for rule in entry["rules"]
        ):
            continue
        stem = entry["name"].replace(".updates.", ".")
        found[stem] = (entry["failurePolicy"], bool(entry.get("matchConditions")))
    return found


@pytest.mark.parametrize("policies", POLICY_SETS)
@pytest.mark.parametrize("labels", NAMESPACE_LABELS)
def test_creates_and_updates_reach_the_same_entries_only_updates_carry_conditions(
    policies: Sequence[NamedPolicy], labels: Mapping[str, str]
) -> None:
    validating, mutating = render_webhook_configurations(policies, LAYOUT)
    creates = called(validating, labels, "CREATE", "pods")
    updates = called(validating, labels, "UPDATE", "pods")
    assert creates, "every namespace outside the system ones is reviewed"
    assert {k: v[0] for k, v in creates.items()} == {k: v[0] for k, v in updates.items()}
    assert not any(conditions for _, conditions in creates.values())
    assert all(conditions for _, conditions in updates.values())
    assert called(validating, labels, "CREATE", "pods/ephemeralcontainers") == {}
    assert called(validating, labels, "UPDATE", "pods/ephemeralcontainers") == updates
    injects = called(mutating, labels, "CREATE", "pods")
    assert injects
    assert not any(conditions for _, conditions in injects.values())


# --- the server skips requests by nodes -------------------------------------------------------

NAMESPACE = "shop"
WORKLOAD = {
    "apiVersion": "aigis.dev/v1alpha1",
    "kind": "AIWorkload",
    "metadata": {"name": "bot", "namespace": NAMESPACE, "uid": "u1", "resourceVersion": "1"},
    "spec": {
        "selector": {"matchLabels": {"app": "bot"}},
        "owner": "team",
        "purpose": "Answers questions.",
        "enforcement": "Enforce",
        "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
        "egress": [{"host": "api.openai.com"}],
    },
}


def server() -> tuple[AdmissionServer, WebhookMetrics]:
    view = StaticView(
        namespaces={NAMESPACE: {"env": "prod"}},
        workloads=[WORKLOAD],
        policies=[
            policy(
                "prod", {"matchLabels": {"env": "prod"}}, enforcement="Enforce", shadowAI="Enforce"
            )
        ],
    )
    metrics = WebhookMetrics()
    return (
        AdmissionServer(view, injection=InjectionSettings(gateway_image="img"), metrics=metrics),
        metrics,
    )


def review(labels: Mapping[str, str], groups: list[str] | None) -> bytes:
    """A pod CREATE review; the model-server image makes an uncovered pod shadow AI."""
    request: dict[str, Any] = {
        "uid": "1",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": NAMESPACE,
        "name": "p",
        "operation": "CREATE",
        "object": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": NAMESPACE, "labels": dict(labels)},
            "spec": {"containers": [{"name": "c", "image": "vllm/vllm-openai:v0.6.0"}]},
        },
    }
    if groups is not None:
        request["userInfo"] = {"username": "u", "groups": groups}
    return orjson.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    )


@pytest.mark.parametrize(
    ("groups", "by_node"),
    [
        pytest.param(None, False, id="no-user-info"),
        pytest.param(["system:authenticated"], False, id="a-user"),
        pytest.param(["system:authenticated", NODES_GROUP], True, id="a-node"),
    ],
)
def test_parse_review_reads_whether_a_node_sent_it(groups: list[str] | None, by_node: bool) -> None:
    parsed = parse_review(review({}, groups))
    assert not isinstance(parsed, BadReview)
    assert parsed.by_node is by_node


def test_a_nodes_mirror_pod_is_neither_refused_nor_injected() -> None:
    admission, metrics = server()

    async def answers(groups: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        uncovered = parse_review(review({}, groups))
        covered = parse_review(review({"app": "bot"}, groups))
        assert not isinstance(uncovered, BadReview)
        assert not isinstance(covered, BadReview)
        return (await admission.validate(uncovered))["response"], (await admission.mutate(covered))[
            "response"
        ]

    user_validate, user_mutate = asyncio.run(answers(["system:authenticated"]))
    assert user_validate["allowed"] is False  # shadow AI in an Enforce namespace
    assert user_mutate.get("patchType") == "JSONPatch"
    node_validate, node_mutate = asyncio.run(answers([NODES_GROUP]))
    assert node_validate == {"uid": "1", "allowed": True}
    assert node_mutate == {"uid": "1", "allowed": True}
    skipped = metrics.reviews.labels("validate", "Pod", "skipped")._value.get()
    assert skipped == 1
