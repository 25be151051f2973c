"""Fuzzing the spec pipeline: validation, compliance, policy compilation, gateway config.

Specs are generated from the JSON schema of the pydantic models (so a field added to a model is
fuzzed without touching this file), with realistic values for the fields whose strings matter
(hosts, cidrs, regions, patterns, labels) and junk of every type mixed in. Properties:

- validation never raises, and every error names a field path under `spec`;
- a spec that validates goes through compliance, the NetworkPolicy and CiliumNetworkPolicy
  renderers and the gateway config renderer without raising;
- the NetworkPolicy selects the workload's pods with the workload's own selector, and allows
  egress only to the cluster DNS and to the declared, non-excluded destinations;
- the gateway config names only declared hosts and reads back without errors.

Bounded: `max_examples` per test, no deadline (the first call warms caches), plain pytest.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigis.api.aiworkload import AIWorkloadSpec
from aigis.api.clusterpolicy import AIClusterPolicySpec
from aigis.api.validation import (
    parse_aiworkload,
    parse_aiworkload_spec,
    parse_cluster_policy_spec,
)
from aigis.egress.compliance import NamedPolicy, evaluate_compliance
from aigis.egress.networkpolicy import (
    ClusterDns,
    WorkloadRef,
    render_cilium_network_policy,
    render_network_policy,
)
from aigis.gateway.config import dump_gateway_config, parse_gateway_config, render_gateway_config

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
REF = WorkloadRef(name="fuzz-bot", namespace="shop", uid="uid-fuzz")
DNS = ClusterDns()

# --- generating specs from the models' schema --------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.text(alphabet=st.characters(min_codepoint=0x80), max_size=8),
    st.just("x" * 5000),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
"""Wrong types, huge and non-ASCII strings."""


def mostly(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """Three good values to one bad: enough valid specs to exercise what follows validation."""
    return st.one_of(*[st.sampled_from(good)] * 3, st.sampled_from(bad))


REALISTIC: dict[str, st.SearchStrategy[Any]] = {
    "host": mostly(
        [
            "api.openai.com",
            "eu.api.openai.com",
            "api.anthropic.com",
            "bedrock-runtime.eu-west-1.amazonaws.com",
            "api.eu.mistral.ai",
            "search.internal.example",
            "*.openai.com",
        ],
        [
            "*.com",
            "*",
            "https://api.openai.com/v1",
            "api.openai.com:443",
            "10.0.0.1",
            "Bücher.example",
            "xn--bcher-kva.example",
            "a..b",
            "-bad-.example",
            "",
        ],
    ),
    "cidr": mostly(
        ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32", "0.0.0.0/0", "::/0"],
        ["10.0.0.1/8", "300.1.1.1/8", "10.0.0.0/33", "fe80::1%eth0/64", "10.0.0.0"],
    ),
    "except": st.lists(
        st.sampled_from(["10.1.0.0/16", "192.0.2.0/25", "11.0.0.0/8", "x"]), max_size=3
    ),
    "region": st.sampled_from(["eu", "us", "global", "apac", "uk", "mars", "EU", ""]),
    "dataRegions": st.lists(st.sampled_from(["eu", "us", "global", "apac", "mars"]), max_size=3),
    "allowedRegions": st.lists(st.sampled_from(["eu", "us", "global", "mars"]), max_size=3),
    "allowedHosts": st.lists(
        st.sampled_from(["*.api.openai.com", "api.eu.mistral.ai", "*.com", "api.openai.com", "*"]),
        max_size=3,
    ),
    "allowedRegistries": st.lists(
        st.sampled_from(["registry.example.com/ai", "ghcr.io", "docker.io/library", "https://x"]),
        max_size=3,
    ),
    "pattern": st.sampled_from(["(?i)secret", "a(b", "(a+)+$", r"\d{16}", "", "(?P<x>y)", "\\"]),
    "matchLabels": st.dictionaries(
        mostly(["app", "app.kubernetes.io/name"], ["bad key!", "x/y/" + "z" * 70, ""]),
        mostly(["bot", "ok.value", ""], ["x" * 70, "-bad"]),
        max_size=3,
    ),
    "key": mostly(["app", "tier", "app.kubernetes.io/name"], ["bad key!"]),
    "operator": mostly(["In", "NotIn", "Exists", "DoesNotExist"], ["Gt"]),
    "values": st.lists(mostly(["bot", "web"], ["", "x" * 70]), max_size=3),
    "port": st.one_of(
        st.integers(min_value=-1, max_value=70000), st.sampled_from([443, 80, "https"])
    ),
    "lastRedTeam": st.sampled_from(["2026-01-15", "2026-13-01", "yesterday", "2020-01-01"]),
}
_PORTS = st.lists(
    st.fixed_dictionaries(
        {"port": st.sampled_from([443, 80, 5432, 8443])},
        optional={"protocol": st.sampled_from(["TCP", "UDP", "SCTP"])},
    ),
    min_size=1,
    max_size=2,
)
_SERVICES = st.one_of(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["search", "vector-db"])},
        optional={"namespace": st.sampled_from(["tools", "shop"])},
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "namespaceSelector": st.fixed_dictionaries({"matchLabels": REALISTIC["matchLabels"]}),
            "podSelector": st.fixed_dictionaries({"matchLabels": REALISTIC["matchLabels"]}),
        },
    ),
)
_GOOD_LABELS = st.dictionaries(
    st.sampled_from(["app", "app.kubernetes.io/name", "tier"]),
    st.sampled_from(["bot", "support-bot", "web"]),
    min_size=1,
    max_size=2,
)
REALISTIC["selector"] = st.one_of(
    st.fixed_dictionaries({"matchLabels": _GOOD_LABELS}),
    st.fixed_dictionaries({"matchLabels": _GOOD_LABELS}),
    st.fixed_dictionaries({"matchLabels": REALISTIC["matchLabels"]}),
    st.fixed_dictionaries(
        {
            "matchExpressions": st.lists(
                st.fixed_dictionaries(
                    {"key": REALISTIC["key"], "operator": REALISTIC["operator"]},
                    optional={"values": REALISTIC["values"]},
                ),
                min_size=1,
                max_size=2,
            )
        },
        optional={"matchLabels": _GOOD_LABELS},
    ),
)
REALISTIC["egress"] = st.lists(
    st.one_of(
        st.fixed_dictionaries({"host": REALISTIC["host"]}, optional={"ports": _PORTS}),
        st.fixed_dictionaries(
            {"cidr": REALISTIC["cidr"]}, optional={"except": REALISTIC["except"], "ports": _PORTS}
        ),
        st.fixed_dictionaries({"service": _SERVICES}, optional={"ports": _PORTS}),
    ).flatmap(
        lambda entry: st.fixed_dictionaries(
            {k: st.just(v) for k, v in entry.items()}, optional={"region": REALISTIC["region"]}
        )
    ),
    max_size=5,
)
"""Egress entries of one destination each: what users write, good and bad."""


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if isinstance(ref, str) else schema


def from_schema(
    schema: Mapping[str, Any],
    defs: Mapping[str, Any],
    key: str = "",
    *,
    junk: bool,
    depth: int = 0,
) -> st.SearchStrategy[Any]:
    """Values for `schema`: well-typed (realistic for known keys); with `junk`, one value in ten
    at every level is of any type instead."""
    schema = _resolve(schema, defs)
    if depth > 8:
        return JUNK
    if key in REALISTIC:
        shaped = REALISTIC[key]
    elif "anyOf" in schema:
        shaped = st.one_of(
            *(from_schema(s, defs, key, junk=junk, depth=depth + 1) for s in schema["anyOf"])
        )
    elif "enum" in schema:
        shaped = st.sampled_from(list(schema["enum"]))
    else:
        shaped = _typed(schema, defs, key, junk=junk, depth=depth)
    return st.one_of(*[shaped] * 9, JUNK) if junk else shaped


def _typed(
    schema: Mapping[str, Any], defs: Mapping[str, Any], key: str, *, junk: bool, depth: int
) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return st.one_of(
            st.integers(min_value=-5, max_value=10**12),
            st.sampled_from(["100m", "1Gi", "0.5", "1e3", "lots", ""]),
        )
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and not properties:
            values = from_schema(extra, defs, key, junk=junk, depth=depth + 1)
            return st.dictionaries(st.text(max_size=10), values, max_size=3)
        fields = {
            name: from_schema(sub, defs, name, junk=junk, depth=depth + 1)
            for name, sub in properties.items()
        }
        required = {name: fields.pop(name) for name in schema.get("required", ()) if name in fields}
        shaped = st.fixed_dictionaries(required, optional=fields)
        if junk:  # an unknown field, or a required one missing
            shaped |= st.fixed_dictionaries({"unknownField": JUNK}, optional=fields)
            shaped |= st.fixed_dictionaries({}, optional={**required, **fields})
        return shaped
    if kind == "array":
        items = from_schema(schema.get("items") or {}, defs, key, junk=junk, depth=depth + 1)
        return st.lists(items, max_size=4)
    if kind == "string":
        if schema.get("format") == "date":
            return st.dates().map(str)
        return st.text(max_size=int(schema.get("maxLength", 30)) + 2)
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.integers(
            min_value=None if low is None else low - 1, max_value=None if high is None else high + 1
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "number":
        return st.floats(allow_nan=False)
    return JUNK


def spec_strategy(
    model: Any, base: Mapping[str, Any], realistic: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Random specs of five kinds: from the schema with and without junk, a valid `base` with up
    to three fields replaced, with and without junk, and `realistic` ones (many of which
    validate, so that what comes after validation is exercised too)."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    properties = schema["properties"]

    def near_base(junk: bool) -> st.SearchStrategy[dict[str, Any]]:
        @st.composite
        def build(draw: st.DrawFn) -> dict[str, Any]:
            spec = dict(base)
            names = draw(st.lists(st.sampled_from(sorted(properties)), max_size=3, unique=True))
            for name in names:
                if junk and draw(st.booleans()):
                    spec.pop(name, None)
                else:
                    spec[name] = draw(from_schema(properties[name], defs, name, junk=junk))
            return spec

        return build()

    return st.one_of(
        realistic,
        from_schema(schema, defs, junk=True).filter(lambda s: isinstance(s, dict)),
        from_schema(schema, defs, junk=False),
        near_base(junk=False),
        near_base(junk=True),
    )


WORKLOAD_BASE = {
    "selector": {"matchLabels": {"app": "bot"}},
    "owner": "team-support",
    "purpose": "Answers customer questions about orders",
    "dataRegions": ["eu"],
    "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
    "egress": [
        {"host": "eu.api.openai.com"},
        {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"], "ports": [{"port": 5432}]},
        {"service": {"name": "search", "namespace": "tools"}, "region": "eu"},
    ],
}
POLICY_BASE = {"allowedRegions": ["eu"], "enforcement": "Enforce"}
REALISTIC_WORKLOADS = st.fixed_dictionaries(
    {
        "selector": REALISTIC["selector"],
        "owner": st.just("team-support"),
        "purpose": st.just("Answers customer questions"),
        "models": st.lists(
            st.fixed_dictionaries(
                {
                    "provider": st.sampled_from(["openai", "anthropic", "mistral", "bedrock"]),
                    "name": st.sampled_from(["gpt-4o-mini", "claude-3-5-sonnet", "large"]),
                }
            ),
            min_size=1,
            max_size=2,
        ),
        "egress": REALISTIC["egress"],
    },
    optional={
        "dataRegions": REALISTIC["dataRegions"],
        "enforcement": st.sampled_from(["Enforce", "Audit"]),
    },
)
REALISTIC_POLICIES = st.fixed_dictionaries(
    {},
    optional={
        "allowedRegions": REALISTIC["allowedRegions"],
        "allowedHosts": REALISTIC["allowedHosts"],
        "allowedProviders": st.lists(st.sampled_from(["openai", "anthropic", "mistral"])),
        "unknownRegions": st.sampled_from(["Allow", "Deny"]),
        "trustDeclaredRegions": st.booleans(),
        "enforcement": st.sampled_from(["Enforce", "Audit"]),
    },
)
WORKLOAD_SPECS = spec_strategy(AIWorkloadSpec, WORKLOAD_BASE, REALISTIC_WORKLOADS)
POLICY_SPECS = spec_strategy(AIClusterPolicySpec, POLICY_BASE, REALISTIC_POLICIES)
COMPILABLE_SPECS = st.one_of(*[REALISTIC_WORKLOADS] * 3, WORKLOAD_SPECS)
"""Leaning to specs that validate, for the properties of what follows validation."""


# --- properties -------------------------------------------------------------------------------


def assert_errors_name_fields(errors: list[Any]) -> None:
    for error in errors:
        assert isinstance(error.path, str)
        assert re.fullmatch(r"spec([.\[].*)?", error.path, re.S), error
        assert isinstance(error.message, str)
        assert error.message.strip(), error


@FUZZ
@given(WORKLOAD_SPECS)
def test_workload_validation_never_raises_and_names_fields(spec: dict[str, Any]) -> None:
    model, errors = parse_aiworkload_spec(spec)
    assert model is not None or errors
    assert_errors_name_fields(errors)


@FUZZ
@given(POLICY_SPECS)
def test_cluster_policy_validation_never_raises_and_names_fields(spec: dict[str, Any]) -> None:
    model, errors = parse_cluster_policy_spec(spec)
    assert model is not None or errors
    assert_errors_name_fields(errors)


def addresses_for(spec: Any) -> dict[str, list[str]]:
    """Made-up current addresses of each declared host (documentation ranges)."""
    return {
        rule.host: [f"192.0.2.{i % 250 + 1}", f"2001:db8::{i + 1:x}"]
        for i, rule in enumerate(spec.egress)
        if rule.host is not None
    }


def selectors_for(spec: Any) -> dict[tuple[str, str], dict[str, str] | None]:
    found: dict[tuple[str, str], dict[str, str] | None] = {}
    for i, rule in enumerate(spec.egress):
        service = rule.service
        if service is not None and service.name is not None:
            namespace = service.namespace or REF.namespace
            found[(namespace, service.name)] = None if i % 3 == 2 else {"app": f"svc-{i}"}
    return found


def dns_rule() -> dict[str, Any]:
    return render_network_policy(
        REF,
        parse_aiworkload_spec(WORKLOAD_BASE)[0],
        addresses={},
        service_selectors={},
        dns=DNS,  # type: ignore[arg-type]
    ).manifest["spec"]["egress"][0]


def declared_rules(
    spec: Any,
    addresses: Mapping[str, list[str]],
    selectors: Mapping[tuple[str, str], Mapping[str, str] | None],
    excluded: frozenset[int],
) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """What each kept egress entry may allow: (its possible peers, its ports)."""
    allowed = []
    for i, rule in enumerate(spec.egress):
        if i in excluded:
            continue
        ports = [{"protocol": p.protocol, "port": p.port} for p in rule.ports]
        if rule.host is not None:
            peers = [
                {"ipBlock": {"cidr": str(ipaddress.ip_network(a))}}
                for a in addresses.get(rule.host, [])
            ]
        elif rule.cidr is not None:
            block: dict[str, Any] = {"cidr": rule.cidr}
            if rule.except_:
                block["except"] = list(rule.except_)
            peers = [{"ipBlock": block}]
        else:
            service = rule.service
            if service.name is not None:
                namespace = service.namespace or REF.namespace
                labels = dict(selectors.get((namespace, service.name)) or {})
                peers = [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": namespace}
                        },
                        "podSelector": {"matchLabels": labels},
                    }
                ]
            else:
                peer: dict[str, Any] = {}
                if service.namespace_selector is not None:
                    peer["namespaceSelector"] = service.namespace_selector.to_kubernetes()
                if service.pod_selector is not None:
                    peer["podSelector"] = service.pod_selector.to_kubernetes()
                peers = [peer]
        allowed.append((peers, ports))
    return allowed


def same_selector(rendered: Mapping[str, Any], declared: Any) -> bool:
    """The rendered podSelector selects what the spec's `selector:` says (empty parts omitted)."""
    labels = rendered.get("matchLabels") or {}
    expressions = rendered.get("matchExpressions") or []
    want_labels = (declared or {}).get("matchLabels") or {}
    want_expressions = (declared or {}).get("matchExpressions") or []
    return labels == want_labels and [
        (e["key"], e["operator"], sorted(e.get("values") or [])) for e in expressions
    ] == [(e["key"], e["operator"], sorted(e.get("values") or [])) for e in want_expressions]


@FUZZ
@given(COMPILABLE_SPECS, st.lists(POLICY_SPECS, max_size=2))
def test_a_valid_spec_compiles_to_a_policy_of_its_selector_and_declared_egress_only(
    spec: dict[str, Any], policy_specs: list[dict[str, Any]]
) -> None:
    model, errors = parse_aiworkload_spec(spec)
    if model is None or errors:
        return
    policies = []
    for i, raw in enumerate(policy_specs):
        policy, policy_errors = parse_cluster_policy_spec(raw)
        if policy is not None and not policy_errors:
            policies.append(NamedPolicy(f"policy-{i}", policy))
    report = evaluate_compliance(model, policies)
    assert report.blocked_entries <= set(range(len(model.egress)))
    for finding in report.findings:
        assert re.fullmatch(r"spec([.\[].*)?", finding.path, re.S), finding
        assert finding.message.strip(), finding

    addresses = addresses_for(model)
    selectors = selectors_for(model)
    excluded = frozenset(report.blocked_entries)
    rendered = render_network_policy(
        REF, model, addresses=addresses, service_selectors=selectors, excluded=excluded, dns=DNS
    ).manifest
    render_cilium_network_policy(
        REF, model, service_selectors=selectors, excluded=excluded, dns=DNS
    )

    policy_spec = rendered["spec"]
    assert rendered["metadata"]["namespace"] == REF.namespace
    assert same_selector(policy_spec["podSelector"], spec["selector"]), policy_spec["podSelector"]
    assert policy_spec["policyTypes"] == ["Egress"]
    allowed = declared_rules(model, addresses, selectors, excluded)
    egress = policy_spec["egress"]
    assert egress[0] == dns_rule()
    for rule in egress[1:]:
        assert rule["to"], rule  # an empty `to` would allow every destination
        assert any(
            all(peer in peers for peer in rule["to"]) and rule["ports"] == ports
            for peers, ports in allowed
        ), f"undeclared egress {rule}"


@FUZZ
@given(COMPILABLE_SPECS)
def test_a_valid_workload_renders_a_gateway_config_that_reads_back(spec: dict[str, Any]) -> None:
    manifest = {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "fuzz-bot", "namespace": "shop"},
        "spec": spec,
    }
    workload, errors = parse_aiworkload(manifest)
    if workload is None or errors:
        return
    config = render_gateway_config(workload)
    declared = {rule.host for rule in workload.spec.egress if rule.host is not None}
    assert {rule.host for rule in config.allowed_hosts} <= declared
    again, problems = parse_gateway_config(dump_gateway_config(config))
    assert not problems, problems
    assert again == config
