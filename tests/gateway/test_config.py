"""Rendering and reading the gateway configuration (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from aigis.api.aiworkload import AIWorkload
from aigis.gateway.config import (
    GatewayConfig,
    HostRule,
    dump_gateway_config,
    host_rule_for,
    parse_gateway_config,
    render_gateway_config,
)
from aigis.gateway.policy import check_upstream


def workload(**spec: Any) -> AIWorkload:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "bot"}},
        "owner": "team-support",
        "purpose": "Answers customer questions.",
    }
    return AIWorkload.model_validate(
        {"metadata": {"name": "bot", "namespace": "shop"}, "spec": {**base, **spec}},
        by_alias=True,
    )


def test_render_maps_models_egress_and_keys() -> None:
    config = render_gateway_config(
        workload(
            models=[
                {"provider": "openai", "name": "gpt-4o-mini"},
                {"provider": "anthropic", "name": "claude-sonnet-4-5"},
                {"provider": "openai", "name": "gpt-4o"},
            ],
            egress=[{"host": "api.openai.com"}, {"host": "api.anthropic.com", "region": "eu"}],
            dataRegions=["us", "eu"],
            gateway={
                "providerKeys": [
                    {"provider": "openai", "secretRef": {"name": "openai", "key": "api-key"}}
                ]
            },
        ),
        key_dir="/keys",
    )
    assert [(u.provider, u.base_url, u.key_file) for u in config.upstreams] == [
        ("openai", "https://api.openai.com/v1", "/keys/openai"),
        ("anthropic", "https://api.anthropic.com/v1", None),
    ]
    assert [(u.key_header, u.wire_format, u.region) for u in config.upstreams] == [
        ("authorization", "openai", "global"),
        ("x-api-key", "anthropic", "global"),
    ]
    # The catalogue places api.anthropic.com, so the entry's region "eu" does not count.
    assert [(h.host, h.ports, h.region) for h in config.allowed_hosts] == [
        ("api.openai.com", [443], "global"),
        ("api.anthropic.com", [443], "global"),
    ]
    assert (config.namespace, config.name, config.data_regions) == ("shop", "bot", ["us", "eu"])
    assert [m.name for m in config.models] == ["gpt-4o-mini", "claude-sonnet-4-5", "gpt-4o"]


@pytest.mark.parametrize(
    ("provider", "hosts", "explicit", "expected"),
    [
        pytest.param(
            "openai", ["eu.api.openai.com"], None, ["https://eu.api.openai.com/v1"],
            id="readme-example-declared-eu-host",
        ),
        pytest.param(
            "azure-openai", ["support.openai.azure.com"], None,
            ["https://support.openai.azure.com/openai/v1"], id="azure-resource-host",
        ),
        pytest.param(
            "mistral", ["api.eu.mistral.ai", "search.example.com"], None,
            ["https://api.eu.mistral.ai/v1"], id="other-hosts-do-not-count",
        ),
        pytest.param(
            "cohere", ["api.cohere.ai"], None, ["https://api.cohere.ai/compatibility/v1"],
            id="provider-path-prefix",
        ),
        pytest.param(
            "openai", ["eu.api.openai.com", "us.api.openai.com"], None, [],
            id="several-hosts-no-guess",
        ),
        pytest.param(
            "openai", ["eu.api.openai.com", "us.api.openai.com"], "https://us.api.openai.com/v1/",
            ["https://us.api.openai.com/v1"], id="explicit-picks-one",
        ),
        pytest.param("self-hosted", [], None, [], id="self-hosted-needs-a-base-url"),
        pytest.param(
            "self-hosted", [], "http://vllm.models.svc:8000/v1/",
            ["http://vllm.models.svc:8000/v1"], id="self-hosted-with-base-url",
        ),
        pytest.param("bedrock", [], "https://x.example.com", [], id="bedrock-is-not-spoken"),
        pytest.param("mistral", [], None, ["https://api.mistral.ai/v1"], id="mistral-default"),
    ],
)  # fmt: skip
def test_render_upstream_base_urls_from_the_declaration(
    provider: str, hosts: list[str], explicit: str | None, expected: list[str]
) -> None:
    model: dict[str, Any] = {"provider": provider, "name": "m"}
    if provider == "self-hosted":
        model["image"] = "registry.example.com/vllm:1"
    upstreams = [] if explicit is None else [{"provider": provider, "baseUrl": explicit}]
    config = render_gateway_config(
        workload(
            models=[model], egress=[{"host": h} for h in hosts], gateway={"upstreams": upstreams}
        )
    )
    assert [u.base_url for u in config.upstreams] == expected


@pytest.mark.parametrize(
    ("egress", "trust", "expected"),
    [
        pytest.param({"host": "llm.corp.example", "region": "eu"}, True, "eu", id="trusted"),
        pytest.param({"host": "llm.corp.example", "region": "eu"}, False, None, id="untrusted"),
        pytest.param(
            {"host": "eu.api.openai.com", "region": "us"}, False, "eu", id="catalogue-wins"
        ),
        pytest.param({"host": "*.corp.example", "region": "eu"}, False, None, id="wildcard"),
    ],
)
def test_host_rule_regions_follow_trust_declared_regions(
    egress: dict[str, Any], trust: bool, expected: str | None
) -> None:
    config = render_gateway_config(workload(egress=[egress]), trust_declared_regions=trust)
    assert [h.region for h in config.allowed_hosts] == [expected]


def test_an_in_cluster_upstream_gets_a_host_rule_from_its_service_entry() -> None:
    config = render_gateway_config(
        workload(
            models=[{"provider": "self-hosted", "name": "m", "image": "r.example.com/vllm:1"}],
            egress=[{"service": {"namespace": "ml", "name": "vllm"}, "ports": [{"port": 8000}]}],
            gateway={"upstreams": [{"provider": "self-hosted", "baseUrl": "http://vllm.ml.svc:8000/v1"}]},
            dataRegions=["eu"],
        )
    )  # fmt: skip
    assert [(h.host, h.ports, h.region, h.in_cluster) for h in config.allowed_hosts] == [
        ("vllm.ml.svc", [8000], None, True)
    ]
    assert check_upstream(config, config.upstreams[0]) is None


def test_dump_and_parse_round_trip() -> None:
    config = render_gateway_config(
        workload(models=[{"provider": "openai", "name": "gpt-4o-mini"}], dataRegions=["us"])
    )
    parsed, problems = parse_gateway_config(dump_gateway_config(config))
    assert problems == []
    assert parsed == config


@pytest.mark.parametrize(
    ("text", "path"),
    [
        pytest.param("[1, 2]", "<config>", id="not-a-mapping"),
        pytest.param("a: [b", "<config>", id="not-yaml"),
        pytest.param('{"name": "x"}', "namespace", id="missing-field"),
        pytest.param(
            '{"namespace": "a", "name": "b", "upstreams": [{"provider": "openai", '
            '"baseUrl": "api.openai.com", "wireFormat": "openai"}]}',
            "upstreams[0].baseUrl",
            id="base-url-without-scheme",
        ),
        pytest.param(
            '{"namespace": "a", "name": "b", "allowedHosts": [{"host": "https://x.com/v1"}]}',
            "allowedHosts[0].host",
            id="host-is-a-url",
        ),
        pytest.param(
            '{"namespace": "a", "name": "b", "dataRegions": ["mars"]}',
            "dataRegions[0]",
            id="unknown-region",
        ),
        pytest.param(
            '{"namespace": "a", "name": "b", "bodyCapBytes": 10}', "bodyCapBytes", id="tiny-cap"
        ),
    ],
)
def test_parse_reports_the_field_at_fault(text: str, path: str) -> None:
    config, problems = parse_gateway_config(text)
    assert config is None
    assert path in [p.path for p in problems]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("api.openai.com", "api.openai.com", id="exact"),
        pytest.param("API.OpenAI.com.", "api.openai.com", id="case-and-trailing-dot"),
        pytest.param("eu.search.example.com", "*.search.example.com", id="wildcard-one-level"),
        pytest.param("a.b.search.example.com", None, id="wildcard-not-two-levels"),
        pytest.param("search.example.com", None, id="wildcard-not-the-apex"),
        pytest.param("api.openai.com.evil.io", None, id="suffix-trick"),
        pytest.param("10.0.0.1", None, id="ip-literal"),
    ],
)
def test_host_rule_for(host: str, expected: str | None) -> None:
    rules = [HostRule(host="*.search.example.com"), HostRule(host="api.openai.com")]
    rule = host_rule_for(rules, host)
    assert (rule.host if rule else None) == expected


def test_config_is_strict_about_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        GatewayConfig.model_validate({"namespace": "a", "name": "b", "modles": []})


@pytest.mark.parametrize(
    ("base_url", "region"),
    [
        pytest.param("https://api.eu.mistral.ai/v1", "eu", id="regional-endpoint-from-catalogue"),
        pytest.param("https://api.mistral.ai/v1", "global", id="global-endpoint"),
        pytest.param("https://llm.internal.example.com/v1", None, id="unknown-host"),
    ],
)
def test_upstream_region_comes_from_the_endpoint_catalogue(
    base_url: str, region: str | None
) -> None:
    config = render_gateway_config(
        workload(
            models=[{"provider": "mistral", "name": "mistral-large"}],
            gateway={"upstreams": [{"provider": "mistral", "baseUrl": base_url}]},
        )
    )
    assert config.upstreams[0].region == region


def test_a_rendered_config_with_a_control_character_reads_back() -> None:
    """JSON allows a DEL in a string where YAML does not; the gateway must read what the operator
    wrote (found by tests/unit/test_fuzz_specs.py)."""
    workload = AIWorkload.model_validate(
        {
            "metadata": {"name": "bot", "namespace": "support"},
            "spec": {
                "selector": {"matchLabels": {"app": "bot"}},
                "owner": "team",
                "purpose": "answers",
                "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
                "egress": [{"host": "api.openai.com"}],
                "guardrails": {"denyPatterns": [{"name": "del", "pattern": "a\x7fb"}]},
            },
        },
        by_alias=True,
    )
    config, problems = parse_gateway_config(dump_gateway_config(render_gateway_config(workload)))
    assert problems == []
    assert config is not None
    assert config.guardrails.deny_patterns[0].pattern == "a\x7fb"
