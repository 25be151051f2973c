"""Allow/refuse decisions over plain data (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.gateway.harness import make_config

from aigis.api.aiworkload import Guardrails, Limits
from aigis.gateway.config import HostRule, Upstream
from aigis.gateway.limits import TokenBucket
from aigis.gateway.policy import (
    Refusal,
    Target,
    body_limit,
    check_destination,
    check_max_tokens,
    check_upstream,
    choose_target,
)
from aigis.gateway.providers import ROUTES

CONFIG = make_config(8443, Path("/keys"))


@pytest.mark.parametrize(
    ("path", "model", "expected"),
    [
        pytest.param("/v1/chat/completions", "gpt-4o-mini", "openai", id="allowed-openai"),
        pytest.param("/v1/messages", "claude-sonnet-4-5", "anthropic", id="allowed-anthropic"),
        pytest.param("/v1/chat/completions", "gpt-4o", "model_not_allowed", id="not-listed"),
        pytest.param("/v1/chat/completions", None, "model_missing", id="no-model"),
        pytest.param("/v1/messages", "gpt-4o-mini", "wrong_route", id="openai-model-on-messages"),
        pytest.param("/v1/models", None, "openai", id="models-listing"),
    ],
)
def test_choose_target(path: str, model: str | None, expected: str) -> None:
    target = choose_target(CONFIG, ROUTES[path], model)
    if isinstance(target, Target):
        assert target.upstream.provider == expected
        assert target.url.endswith(ROUTES[path].upstream_suffix)
    else:
        assert target.reason == expected


def test_model_without_an_upstream_is_a_gateway_error() -> None:
    config = CONFIG.model_copy(update={"upstreams": [CONFIG.upstreams[1]]})
    target = choose_target(config, ROUTES["/v1/chat/completions"], "gpt-4o-mini")
    assert isinstance(target, Refusal)
    assert (target.status, target.reason) == (502, "upstream_not_configured")


@pytest.mark.parametrize(
    ("hosts", "regions", "host", "port", "expected"),
    [
        pytest.param(
            [HostRule(host="a.example.com")], [], "a.example.com", 443, None, id="allowed"
        ),
        pytest.param([], [], "a.example.com", 443, "host_not_allowed", id="undeclared"),
        pytest.param(
            [HostRule(host="a.example.com")],
            [],
            "a.example.com",
            8443,
            "port_not_allowed",
            id="port",
        ),
        pytest.param(
            [HostRule(host="a.example.com", region="us")],
            ["eu"],
            "a.example.com",
            443,
            "region_not_allowed",
            id="region-outside",
        ),
        pytest.param(
            [HostRule(host="a.example.com")],
            ["eu"],
            "a.example.com",
            443,
            "region_unknown",
            id="region-unknown-with-data-regions",
        ),
        pytest.param(
            [HostRule(host="*.example.com", region="eu")],
            ["eu"],
            "b.example.com",
            443,
            None,
            id="wildcard-in-region",
        ),
        pytest.param(
            [HostRule(host="*.openai.com", region="eu")],
            ["eu"],
            "api.openai.com",
            443,
            "region_not_allowed",
            id="wildcard-region-yields-to-the-catalogue-for-a-known-host",
        ),
        pytest.param(
            [HostRule(host="*.api.openai.com", region="us")],
            ["eu"],
            "eu.api.openai.com",
            443,
            None,
            id="wildcard-host-the-catalogue-places-in-region",
        ),
        pytest.param(
            [HostRule(host="vllm.ml.svc", ports=[8000], in_cluster=True)],
            ["eu"],
            "vllm.ml.svc",
            8000,
            None,
            id="in-cluster-service-without-region",
        ),
    ],
)
def test_check_destination(
    hosts: list[HostRule], regions: list[str], host: str, port: int, expected: str | None
) -> None:
    config = CONFIG.model_copy(update={"allowed_hosts": hosts, "data_regions": regions})
    refusal = check_destination(config, host, port)
    assert (refusal.reason if refusal else None) == expected


def test_upstream_region_applies_when_the_host_rule_has_none() -> None:
    upstream = Upstream(
        provider="mistral", base_url="https://api.mistral.ai/v1", wire_format="openai", region="eu"
    )
    config = CONFIG.model_copy(
        update={"allowed_hosts": [HostRule(host="api.mistral.ai")], "data_regions": ["eu"]}
    )
    assert check_upstream(config, upstream) is None
    config = config.model_copy(update={"data_regions": ["us"]})
    refusal = check_upstream(config, upstream)
    assert refusal is not None
    assert refusal.reason == "region_not_allowed"


@pytest.mark.parametrize(
    ("path", "body", "refused"),
    [
        pytest.param("/v1/chat/completions", {"max_tokens": 100}, False, id="at-limit"),
        pytest.param("/v1/chat/completions", {"max_tokens": 101}, True, id="above"),
        pytest.param(
            "/v1/chat/completions", {"max_completion_tokens": 500}, True, id="completion-tokens"
        ),
        pytest.param("/v1/responses", {"max_output_tokens": 101}, True, id="responses"),
        pytest.param("/v1/messages", {"max_tokens": 101}, True, id="anthropic"),
        pytest.param("/v1/chat/completions", {"max_tokens": True}, False, id="bool-is-not-a-count"),
        pytest.param("/v1/embeddings", {"max_tokens": 10_000}, False, id="embeddings-ignore"),
    ],
)
def test_check_max_tokens(path: str, body: dict[str, Any], refused: bool) -> None:
    config = CONFIG.model_copy(update={"guardrails": Guardrails(limits=Limits(max_tokens=100))})
    refusal = check_max_tokens(config, ROUTES[path], body)
    assert (refusal is not None) is refused


@pytest.mark.parametrize(
    ("declared", "cap", "expected"),
    [
        pytest.param(None, 4096, 4096, id="cap-when-undeclared"),
        pytest.param(2048, 4096, 2048, id="declared-below-cap"),
        pytest.param(8192, 4096, 4096, id="cap-wins-over-declared"),
    ],
)
def test_body_limit(declared: int | None, cap: int, expected: int) -> None:
    config = CONFIG.model_copy(
        update={
            "guardrails": Guardrails(limits=Limits(max_request_bytes=declared)),
            "body_cap_bytes": cap,
        }
    )
    assert body_limit(config)[0] == expected


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        pytest.param([0, 0, 0], [0, 0, 0], id="burst-of-rpm"),
        pytest.param([0, 0, 0, 0], [0, 0, 0, 20.0], id="fourth-waits-one-interval"),
        pytest.param([0, 0, 0, 0, 20], [0, 0, 0, 20.0, 0], id="refills-at-rpm-per-minute"),
        pytest.param([0, 0, 0, 600, 600, 600, 600], [0, 0, 0, 0, 0, 0, 20.0], id="caps-at-rpm"),
    ],
)
def test_token_bucket(times: list[float], expected: list[float]) -> None:
    bucket = TokenBucket.full(3, 0.0)
    assert [round(bucket.take(t), 6) for t in times] == expected
