"""The gateway's configuration: what one workload's sidecar enforces, and how it is rendered.

The operator calls `render_gateway_config` on an AIWorkload and writes the result into a
ConfigMap (`dump_gateway_config`); the gateway reads the mounted file with `parse_gateway_config`.
Both ends use this one model, so a field cannot mean one thing to the operator and another to the
gateway. Provider keys appear only as file paths (Secrets mounted as files): the key itself is
read by the gateway at load time and never enters this model, a log line or a metric.

Pure: no I/O here. Provider hosts, API paths, wire formats, key headers and data regions all
come from the shared endpoint catalogue (`aigis.egress.catalogue`), the same one admission and
the network policies use. Each upstream's base URL is derived from the workload's declaration
(`aigis.egress.catalogue.provider_base_url`), so the gateway calls the very host the workload's
egress and NetworkPolicy allow.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, get_args
from urllib.parse import urlsplit

import orjson
import yaml
from pydantic import Field, ValidationError

from aigis.api.aiworkload import (
    AIWorkload,
    Enforcement,
    Guardrails,
    Provider,
)
from aigis.api.common import MAX_NAME, ApiModel, Name
from aigis.api.errors import FieldError
from aigis.api.regions import DATA_REGIONS
from aigis.api.validation import egress_entry_for_url, in_cluster_service, url_port
from aigis.egress.catalogue import (
    PROVIDER_APIS,
    KeyHeader,
    WireFormat,
    default_base_url,
    effective_region,
    lookup_endpoint,
    provider_base_url,
)
from aigis.egress.hosts import host_matches

__all__ = ["KeyHeader", "WireFormat"]  # re-exported: defined with the catalogue's provider table

DEFAULT_KEY_DIR = "/var/run/aigis/provider-keys"
"""Where the operator mounts the provider-key Secrets in the gateway container."""
DEFAULT_BODY_CAP_BYTES = 16 * 1024 * 1024
"""The gateway's own ceiling on request bodies, whatever the workload declares."""


@dataclass(frozen=True, slots=True)
class ProviderEndpoint:
    """How the gateway speaks to one provider when the workload names none of its hosts."""

    base_url: str | None
    """The default host's API base URL including the version prefix; None when it is per
    account (Azure resources) or in-cluster."""
    wire_format: WireFormat | None
    """The request/response format spoken; None when the gateway cannot speak to it."""
    key_header: KeyHeader
    """Where the provider expects its API key."""


PROVIDER_ENDPOINTS: Mapping[Provider, ProviderEndpoint] = {
    provider: ProviderEndpoint(
        default_base_url(provider),
        PROVIDER_APIS[provider].wire_format,
        PROVIDER_APIS[provider].key_header,
    )
    for provider in get_args(Provider)
}
"""Provider -> default base URL, wire format and key header: a view of the catalogue's tables."""


class Upstream(ApiModel):
    """One provider the gateway forwards to."""

    provider: Provider
    """Which provider this is."""
    base_url: Annotated[str, Field(min_length=1, max_length=1024)]
    """API base URL including the version prefix, e.g. `https://api.openai.com/v1`."""
    wire_format: WireFormat
    """The format the provider speaks: OpenAI-compatible or Anthropic Messages."""
    key_header: KeyHeader = "authorization"
    """Where the provider expects its key: `Authorization: Bearer`, `x-api-key` or `api-key`."""
    key_file: Annotated[str, Field(max_length=1024)] | None = None
    """File holding the provider key (a mounted Secret); None for keyless in-cluster models."""
    region: Annotated[str, Field(max_length=32)] | None = None
    """Data region of the endpoint's host by the endpoint catalogue; None when it cannot place
    the host (the host rule's region then applies)."""


class HostRule(ApiModel):
    """A host the workload may reach: the LLM upstreams and plain egress alike."""

    host: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    """Exact host name or one-level `*.` wildcard."""
    ports: list[int] = Field(default_factory=lambda: [443], min_length=1, max_length=32)
    """Allowed destination ports."""
    region: Annotated[str, Field(max_length=32)] | None = None
    """Data region of the host as the operator resolved it (`effective_region`: the endpoint
    catalogue's, else the entry's declared region where the cluster trusts it); None when
    unknown. For a `*.` wildcard, the region of the hosts below it the catalogue cannot place:
    the catalogue still wins for a requested host it knows (`host_region`)."""
    in_cluster: bool = False
    """An in-cluster Service (a self-hosted model's upstream): no data leaves the cluster, so
    with no region it passes the region check, as service entries do in the compliance check."""


class AllowedModel(ApiModel):
    """A model the workload may call."""

    provider: Provider
    """Who serves it."""
    name: Name
    """The model name as the provider's API knows it."""


class GatewayConfig(ApiModel):
    """Everything one workload's gateway enforces. Rendered by the operator, read by the gateway."""

    namespace: Annotated[str, Field(min_length=1, max_length=63)]
    """Namespace of the AIWorkload (for audit records)."""
    name: Name
    """Name of the AIWorkload (for audit records)."""
    enforcement: Enforcement = "Enforce"
    """Enforce refuses; Audit lets everything through and records what it would have refused."""
    upstreams: list[Upstream] = Field(default_factory=list, max_length=16)
    """Providers the gateway forwards to."""
    allowed_hosts: list[HostRule] = Field(default_factory=list, max_length=128)
    """Hosts that may be reached, through the LLM routes or as plain egress."""
    models: list[AllowedModel] = Field(default_factory=list, max_length=32)
    """The model allowlist; a request for any other model is refused."""
    data_regions: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list, max_length=16
    )
    """Regions data may go to; empty means no region restriction."""
    guardrails: Guardrails = Field(default_factory=Guardrails)
    """The workload's guardrails, limits included."""
    body_cap_bytes: int = Field(DEFAULT_BODY_CAP_BYTES, ge=1024, le=1024 * 1024 * 1024)
    """Largest body the gateway reads at all, in Audit mode too."""
    upstream_connect_timeout_seconds: float = Field(10.0, gt=0, le=300)
    """How long to wait for a TCP/TLS connection to an upstream."""
    upstream_read_timeout_seconds: float = Field(300.0, gt=0, le=3600)
    """How long an upstream may stay silent (no byte) before the request fails with 504."""


def render_gateway_config(
    workload: AIWorkload,
    *,
    key_dir: str = DEFAULT_KEY_DIR,
    trust_declared_regions: bool = True,
) -> GatewayConfig:
    """The gateway configuration for `workload`, as the operator writes it into a ConfigMap.

    Each provider's base URL comes from the declaration (`provider_base_url`: an explicit
    spec.gateway.upstreams entry, else the one declared host of that provider, else its default
    host). A model whose provider has no URL, or several competing hosts, gets no upstream: the
    gateway then refuses it naming the missing base URL, rather than guessing one (validation
    reports the same spec as invalid). Provider keys become file paths under `key_dir`, one per
    provider (`<key_dir>/<provider>`), matching how the operator mounts them.

    `trust_declared_regions` is the governing AIClusterPolicies' answer
    (`ComplianceReport.trust_declared_regions`): when false, a region declared on an egress
    entry does not count, as in the compliance check.
    """
    spec = workload.spec
    keyed = {key.provider for key in spec.gateway.provider_keys}
    explicit = {upstream.provider: upstream.base_url for upstream in spec.gateway.upstreams}
    declared = [rule.host for rule in spec.egress if rule.host is not None]
    upstreams: list[Upstream] = []
    services: list[HostRule] = []
    for provider in dict.fromkeys(model.provider for model in spec.models):
        api = PROVIDER_APIS[provider]
        base_url = provider_base_url(provider, declared, explicit.get(provider)).url
        if base_url is None or api.wire_format is None:
            continue
        host = urlsplit(base_url).hostname or ""
        upstreams.append(
            Upstream(
                provider=provider,
                base_url=base_url,
                wire_format=api.wire_format,
                key_header=api.key_header,
                key_file=f"{key_dir.rstrip('/')}/{provider}" if provider in keyed else None,
                region=endpoint_region(host),
            )
        )
        index = egress_entry_for_url(spec.egress, base_url)
        if in_cluster_service(host) is not None and index is not None:
            region = effective_region(
                None, spec.egress[index].region, trust_declared=trust_declared_regions
            )
            services.append(
                HostRule(
                    host=host, ports=[url_port(base_url)], region=region.region, in_cluster=True
                )
            )
    hosts = [
        HostRule(
            host=rule.host,
            ports=[port.port for port in rule.ports if port.protocol == "TCP"] or [443],
            region=effective_region(
                rule.host, rule.region, trust_declared=trust_declared_regions
            ).region,
        )
        for rule in spec.egress
        if rule.host is not None
    ]
    return GatewayConfig(
        namespace=workload.metadata.namespace or "default",
        name=workload.metadata.name or "unnamed",
        enforcement=spec.enforcement,
        upstreams=upstreams,
        allowed_hosts=[*hosts, *services],
        models=[AllowedModel(provider=m.provider, name=m.name) for m in spec.models],
        data_regions=list(spec.data_regions),
        guardrails=spec.guardrails,
    )


def endpoint_region(host: str) -> str | None:
    """The data region of a host from aigis's endpoint catalogue; None when it is unknown."""
    return lookup_endpoint(host).region


def dump_gateway_config(config: GatewayConfig) -> str:
    """The config as the JSON document the operator puts into the ConfigMap."""
    return orjson.dumps(config.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode()


def parse_gateway_config(text: str | bytes) -> tuple[GatewayConfig | None, list[FieldError]]:
    """Read a config file (JSON or YAML); the config, or every problem with its field path.

    JSON is read as JSON first: it is what the operator writes, and YAML refuses characters JSON
    allows in strings (a DEL in a deny pattern, say), so a valid rendered config would otherwise
    be refused by the gateway it was rendered for.
    """
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            return None, [FieldError("<config>", f"is not valid YAML or JSON: {exc}")]
    if not isinstance(data, dict):
        return None, [FieldError("<config>", "must be a mapping of gateway settings")]
    try:
        config = GatewayConfig.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        return None, [
            FieldError(_loc_path(error["loc"]), error["msg"])
            for error in exc.errors(include_url=False)
        ]
    problems = check_gateway_config(config)
    return (config if not problems else None), problems


def check_gateway_config(config: GatewayConfig) -> list[FieldError]:
    """The checks a schema cannot express: URLs, host patterns, region names."""
    problems: list[FieldError] = []
    for index, upstream in enumerate(config.upstreams):
        parts = urlsplit(upstream.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(
                FieldError(
                    f"upstreams[{index}].baseUrl",
                    f'"{upstream.base_url}" is not an http(s) URL; '
                    'write e.g. "https://api.openai.com/v1"',
                )
            )
        if upstream.region is not None and upstream.region not in DATA_REGIONS:
            problems.append(_unknown_region(f"upstreams[{index}].region", upstream.region))
    for index, rule in enumerate(config.allowed_hosts):
        if "/" in rule.host or ":" in rule.host or "*" in rule.host.removeprefix("*."):
            problems.append(
                FieldError(
                    f"allowedHosts[{index}].host",
                    f'"{rule.host}" is not a host name or "*." wildcard; '
                    'write e.g. "api.openai.com"',
                )
            )
        for port in rule.ports:
            if not 1 <= port <= 65535:
                problems.append(
                    FieldError(f"allowedHosts[{index}].ports", f"{port} is not a port (1-65535)")
                )
        if rule.region is not None and rule.region not in DATA_REGIONS:
            problems.append(_unknown_region(f"allowedHosts[{index}].region", rule.region))
    for index, region in enumerate(config.data_regions):
        if region not in DATA_REGIONS:
            problems.append(_unknown_region(f"dataRegions[{index}]", region))
    return problems


def host_region(rule: HostRule, host: str) -> str | None:
    """The data region of a request to `host`, allowed by `rule`.

    An exact rule's region was resolved for that very host by the operator. A wildcard's could
    not be, since the host is known only now: where the catalogue places the requested host, its
    region wins (`*.openai.com` declared `eu` does not make `api.openai.com` EU); else the
    rule's own region, which the operator already rendered under `trustDeclaredRegions`.
    """
    if not rule.host.startswith("*."):
        return rule.region
    return effective_region(host, rule.region, trust_declared=True).region


def host_rule_for(rules: Sequence[HostRule], host: str) -> HostRule | None:
    """The first rule that allows `host`, exact rules before wildcards."""
    if _is_ip_literal(host):
        return None
    exact = [rule for rule in rules if not rule.host.startswith("*.")]
    wildcard = [rule for rule in rules if rule.host.startswith("*.")]
    for rule in (*exact, *wildcard):
        if host_matches(rule.host, host):
            return rule
    return None


def _is_ip_literal(host: str) -> bool:
    # Egress is declared by name: an address would bypass the host allowlist and its region.
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _unknown_region(path: str, region: str) -> FieldError:
    return FieldError(
        path, f'"{region}" is not a known data region; use one of {", ".join(DATA_REGIONS)}'
    )


def _loc_path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "<config>"


CONFIG_MAP_PREFIX = "aigis-gateway-"
CONFIG_FILE_NAME = "config.json"
"""The key of the gateway's ConfigMap, and the file name where the sidecar mounts it."""


def gateway_config_map_name(workload_name: str) -> str:
    """`aigis-gateway-<workload>`, shortened with a hash suffix to fit a 253-character name."""
    name = CONFIG_MAP_PREFIX + workload_name
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(workload_name.encode()).hexdigest()[:10]
    return name[: 253 - 11] + "-" + digest
