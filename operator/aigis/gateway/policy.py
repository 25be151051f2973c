"""The gateway's allow/refuse decisions over plain data: models, hosts, regions and limits.

Every refusal is a `Refusal` value carrying the HTTP status, a machine-readable reason (a small
fixed set, safe as a metric label) and a message that names the declaration at fault and how to
fix it. The shell turns it into the provider's error shape. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aigis.gateway.config import (
    AllowedModel,
    GatewayConfig,
    Upstream,
    host_region,
    host_rule_for,
)
from aigis.gateway.providers import Route, requested_max_tokens


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not forwarded."""

    status: int
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Target:
    """Where an allowed request goes."""

    upstream: Upstream
    model: AllowedModel | None
    url: str


def workload_ref(config: GatewayConfig) -> str:
    """`AIWorkload namespace/name`, as messages name the declaration."""
    return f"AIWorkload {config.namespace}/{config.name}"


def choose_target(config: GatewayConfig, route: Route, model: str | None) -> Target | Refusal:
    """The upstream for a request on `route` naming `model`, or why there is none."""
    if not route.has_body:
        for allowed in config.models:
            upstream = _upstream_of(config, allowed.provider)
            if upstream is not None and upstream.wire_format == route.wire_format:
                return Target(upstream, None, upstream.base_url + route.upstream_suffix)
        return Refusal(
            403,
            "no_upstream",
            f"{workload_ref(config)} allows no model served in the {route.wire_format} format; "
            "add one to spec.models",
        )
    if model is None:
        return Refusal(400, "model_missing", 'the request names no model; set "model"')
    matches = [allowed for allowed in config.models if allowed.name == model]
    if not matches:
        names = ", ".join(allowed.name for allowed in config.models) or "none"
        return Refusal(
            403,
            "model_not_allowed",
            f'model "{model[:100]}" is not in spec.models of {workload_ref(config)} '
            f"(allowed: {names}); use an allowed model or add it to spec.models",
        )
    for allowed in matches:
        upstream = _upstream_of(config, allowed.provider)
        if upstream is not None and upstream.wire_format == route.wire_format:
            return Target(upstream, allowed, upstream.base_url + route.upstream_suffix)
    served = [_upstream_of(config, allowed.provider) for allowed in matches]
    other = next((upstream for upstream in served if upstream is not None), None)
    if other is not None:
        right = "/v1/messages" if other.wire_format == "anthropic" else "/v1/chat/completions"
        return Refusal(
            400,
            "wrong_route",
            f'model "{model}" is served by {other.provider} in the {other.wire_format} format; '
            f"call {right} instead of {route.path}",
        )
    provider = matches[0].provider
    return Refusal(
        502,
        "upstream_not_configured",
        f'no upstream is configured for provider "{provider}" (model "{model}"): '
        "the gateway has no base URL for it, or does not speak its API",
    )


def _upstream_of(config: GatewayConfig, provider: str) -> Upstream | None:
    return next((u for u in config.upstreams if u.provider == provider), None)


def check_destination(
    config: GatewayConfig, host: str, port: int, *, fallback_region: str | None = None
) -> Refusal | None:
    """Whether `host:port` may be reached: declared in egress, on a declared port, in region.

    The region is `host_region`: the endpoint catalogue's for the requested host where it
    knows one (for a wildcard rule too), else the rule's; `fallback_region` (an upstream's own
    region) applies when that is unknown. An in-cluster Service rule with no region passes.
    """
    rule = host_rule_for(config.allowed_hosts, host)
    if rule is None:
        return Refusal(
            403,
            "host_not_allowed",
            f'host "{host[:253]}" is not in spec.egress of {workload_ref(config)}; '
            f"add it as an egress host, or call a declared host",
        )
    if port not in rule.ports:
        ports = ", ".join(str(p) for p in rule.ports)
        return Refusal(
            403,
            "port_not_allowed",
            f'port {port} of host "{host}" is not declared (ports: {ports}) in spec.egress of '
            f"{workload_ref(config)}; add it under the entry's ports",
        )
    if not config.data_regions:
        return None
    region = host_region(rule, host) or fallback_region
    allowed = ", ".join(config.data_regions)
    if region is None and rule.in_cluster:
        return None
    if region is None:
        return Refusal(
            403,
            "region_unknown",
            f'the data region of host "{host}" is unknown and spec.dataRegions is [{allowed}]; '
            "declare its region on the egress entry (region: ...), or, where the cluster "
            "does not trust declared regions, use an endpoint aigis's catalogue places",
        )
    if region not in config.data_regions:
        return Refusal(
            403,
            "region_not_allowed",
            f'host "{host}" processes data in region "{region}", which is not in '
            f"spec.dataRegions [{allowed}] of {workload_ref(config)}; use an endpoint in an "
            "allowed region or add the region",
        )
    return None


def check_upstream(config: GatewayConfig, upstream: Upstream) -> Refusal | None:
    """Whether the upstream's host is declared egress in an allowed data region."""
    parts = urlsplit(upstream.base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return check_destination(config, parts.hostname or "", port, fallback_region=upstream.region)


def check_max_tokens(config: GatewayConfig, route: Route, body: dict[str, Any]) -> Refusal | None:
    """Whether the request asks for more output tokens than spec.guardrails.limits.maxTokens."""
    limits = config.guardrails.limits
    if limits is None or limits.max_tokens is None:
        return None
    asked = requested_max_tokens(route, body)
    if asked is None or asked[1] <= limits.max_tokens:
        return None
    field, value = asked
    return Refusal(
        400,
        "max_tokens_exceeded",
        f'"{field}" is {value}, above spec.guardrails.limits.maxTokens ({limits.max_tokens}) of '
        f"{workload_ref(config)}; ask for at most {limits.max_tokens}",
    )


def body_limit(config: GatewayConfig) -> tuple[int, str]:
    """The largest body accepted, and the setting it comes from."""
    limits = config.guardrails.limits
    declared = limits.max_request_bytes if limits is not None else None
    if declared is not None and declared <= config.body_cap_bytes:
        return declared, "spec.guardrails.limits.maxRequestBytes"
    return config.body_cap_bytes, "the gateway's bodyCapBytes"


def body_too_large(config: GatewayConfig, size: int, limit: int, source: str) -> Refusal:
    """The refusal for a body of `size` bytes over `limit`."""
    return Refusal(
        413,
        "request_too_large",
        f"the request body is {size} bytes, above {source} ({limit} bytes) of "
        f"{workload_ref(config)}; send a smaller request",
    )
