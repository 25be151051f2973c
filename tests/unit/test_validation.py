"""parse_aiworkload_spec: schema errors and semantic checks, each a FieldError with path and fix."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
import yaml

from aigis.api.errors import FieldError
from aigis.api.validation import (
    check_host,
    parse_aiworkload,
    parse_aiworkload_spec,
    parse_cidr,
    pattern_problem,
)

DIGEST = "sha256:" + "ab" * 32

FULL_EXAMPLE = yaml.safe_load(
    f"""
apiVersion: aigis.dev/v1alpha1
kind: AIWorkload
metadata:
  name: support-chatbot
  namespace: support
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: support-chatbot
    matchExpressions:
    - key: tier
      operator: In
      values: [frontend, api]
  owner: team-support
  purpose: Answers customer questions about orders from the public help-centre articles.
  enforcement: Enforce
  models:
  - provider: azure-openai
    name: gpt-4o
  - provider: self-hosted
    name: mistral-7b-instruct
    image: registry.example.com/models/vllm-mistral@{DIGEST}
    source: hf://mistralai/Mistral-7B-Instruct-v0.3
    digest: {DIGEST}
  egress:
  - host: support-eu.openai.azure.com
    region: eu
  - host: "*.help.example.com"
  - cidr: 10.20.0.0/16
    except: [10.20.99.0/24]
    ports: [{{port: 5432}}]
  - service: {{namespace: search, name: opensearch}}
    ports: [{{port: 9200}}]
  - service: {{namespace: models, name: vllm}}
    ports: [{{port: 8000}}]
  - service:
      namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: rag}}}}
      podSelector: {{matchLabels: {{app: qdrant}}}}
    ports: [{{port: 6333}}, {{port: 6334, protocol: TCP}}]
  dataRegions: [eu]
  guardrails:
    promptInjection: {{action: Block, threshold: 0.7}}
    pii: {{entities: [EMAIL, PHONE, IBAN], action: Redact}}
    secrets: {{action: Block}}
    denyPatterns:
    - name: internal-codenames
      pattern: '(?i)\\bproject[- ]?(falcon|osprey)\\b'
      action: Block
      appliesTo: Both
    limits: {{maxRequestBytes: 65536, maxTokens: 4096, requestsPerMinute: 600}}
    promptLogging: Hash
    failureMode: FailClosed
  gateway:
    inject: true
    resources:
      requests: {{cpu: 50m, memory: 64Mi}}
      limits: {{memory: 256Mi}}
    providerKeys:
    - provider: azure-openai
      secretRef: {{name: azure-openai-key, key: api-key}}
    upstreams:
    - provider: self-hosted
      baseUrl: http://vllm.models.svc:8000/v1
  forensics:
    captureOnTermination: true
    logsMaxBytes: 10485760
    retentionDays: 90
    checkpoint: false
  assurance:
    lastRedTeam: 2026-09-15
    requiredFreshnessDays: 180
"""
)

MINIMAL = {
    "selector": {"matchLabels": {"app": "chatbot"}},
    "owner": "team-a",
    "purpose": "answers questions",
}


def minimal(**fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(MINIMAL), **fields}


def s3_storage(**s3: Any) -> dict[str, Any]:
    """A minimal spec storing evidence in S3, with `s3` fields replaced."""
    fields = {"bucket": "evidence", "credentialsSecret": {"name": "s3-keys"}, **s3}
    return minimal(forensics={"storage": {"type": "S3", "s3": fields}})


def full_with(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    spec = copy.deepcopy(FULL_EXAMPLE["spec"])
    edit(spec)
    return spec


def messages(errors: list[FieldError]) -> str:
    return "\n".join(str(e) for e in errors)


def test_full_example_parses_without_errors() -> None:
    model, errors = parse_aiworkload_spec(FULL_EXAMPLE["spec"])
    assert errors == []
    assert model is not None
    assert model.egress[2].except_ == ["10.20.99.0/24"]
    assert model.assurance is not None
    assert model.assurance.last_red_team == date(2026, 9, 15)


def test_full_manifest_parses_and_json_strings_are_accepted() -> None:
    manifest = copy.deepcopy(FULL_EXAMPLE)
    manifest["spec"]["assurance"]["lastRedTeam"] = "2026-09-15"  # as the API server sends it
    model, errors = parse_aiworkload(manifest)
    assert errors == []
    assert model is not None
    assert model.metadata.name == "support-chatbot"


def test_parsing_does_not_touch_its_input() -> None:
    spec = copy.deepcopy(FULL_EXAMPLE["spec"])
    parse_aiworkload_spec(spec)
    assert spec == FULL_EXAMPLE["spec"]


# One row per semantic rule: (id, spec, path of the error, words the message must contain).
SEMANTIC_CASES = [
    ("host-is-url", minimal(egress=[{"host": "https://api.openai.com/v1"}]),
     "spec.egress[0].host",
     '"https://api.openai.com/v1" is a URL, not a host; write "api.openai.com"'),
    ("host-is-path", minimal(egress=[{"host": "api.openai.com/v1"}]),
     "spec.egress[0].host", 'is a URL, not a host; write "api.openai.com"'),
    ("host-has-port", minimal(egress=[{"host": "api.openai.com:443"}]),
     "spec.egress[0].host", 'write host "api.openai.com" and list 443 under ports'),
    ("host-is-ipv4", minimal(egress=[{"host": "203.0.113.7"}]),
     "spec.egress[0].host", 'declare it as cidr: "203.0.113.7/32"'),
    ("host-is-ipv6", minimal(egress=[{"host": "2001:db8::1"}]),
     "spec.egress[0].host", 'declare it as cidr: "2001:db8::1/128"'),
    ("host-uppercase", minimal(egress=[{"host": "API.OpenAI.com"}]),
     "spec.egress[0].host", 'must be lowercase; write "api.openai.com"'),
    ("host-trailing-dot", minimal(egress=[{"host": "api.openai.com."}]),
     "spec.egress[0].host", 'ends with a dot; write "api.openai.com"'),
    ("host-empty-label", minimal(egress=[{"host": "api..openai.com"}]),
     "spec.egress[0].host", "empty label"),
    ("host-label-too-long", minimal(egress=[{"host": "a" * 64 + ".example.com"}]),
     "spec.egress[0].host", "the limit is 63"),
    ("host-label-bad-character", minimal(egress=[{"host": "my_api.example.com"}]),
     "spec.egress[0].host", "only lowercase letters, digits and hyphens"),
    ("host-label-leading-hyphen", minimal(egress=[{"host": "-api.example.com"}]),
     "spec.egress[0].host", "must not start or end with a hyphen"),
    ("host-not-fully-qualified", minimal(egress=[{"host": "openai"}]),
     "spec.egress[0].host", "not a fully qualified domain name"),
    ("host-in-cluster", minimal(egress=[{"host": "db.data.svc.cluster.local"}]),
     "spec.egress[0].host", "service: {namespace: data, name: db}"),
    ("host-not-ascii", minimal(egress=[{"host": "bücher.example"}]),
     "spec.egress[0].host", '"xn--bcher-kva.example"'),
    ("host-whitespace", minimal(egress=[{"host": "api.openai.com "}]),
     "spec.egress[0].host", "contains whitespace"),
    ("wildcard-everything", minimal(egress=[{"host": "*"}]),
     "spec.egress[0].host", "would allow every host"),
    ("wildcard-too-broad", minimal(egress=[{"host": "*.com"}]),
     "spec.egress[0].host", "too broad: a wildcard must sit under a registrable domain"),
    ("wildcard-public-suffix", minimal(egress=[{"host": "*.co.uk"}]),
     "spec.egress[0].host", "too broad"),
    ("wildcard-shared-tenant", minimal(egress=[{"host": "*.openai.azure.com"}]),
     "spec.egress[0].host", 'e.g. "my-resource.openai.azure.com"'),
    ("wildcard-not-leading", minimal(egress=[{"host": "api.*.example.com"}]),
     "spec.egress[0].host", 'a wildcard may only be a leading "*."'),
    ("cidr-invalid", minimal(egress=[{"cidr": "10.0.0.300/8"}]),
     "spec.egress[0].cidr", "is not a CIDR"),
    ("cidr-host-bits-set", minimal(egress=[{"cidr": "10.1.2.3/16"}]),
     "spec.egress[0].cidr", 'has host bits set; write "10.1.0.0/16"'),
    ("cidr-no-prefix", minimal(egress=[{"cidr": "10.1.2.3"}]),
     "spec.egress[0].cidr", 'write "10.1.2.3/32"'),
    ("cidr-netmask-form", minimal(egress=[{"cidr": "10.0.0.0/255.0.0.0"}]),
     "spec.egress[0].cidr", "prefix length in bits"),
    ("except-outside-cidr", minimal(egress=[{"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}]),
     "spec.egress[0].except[0]", 'is not inside cidr "10.0.0.0/16"'),
    ("except-other-family", minimal(egress=[{"cidr": "10.0.0.0/8", "except": ["fd00::/8"]}]),
     "spec.egress[0].except[0]", "is IPv6 but cidr is IPv4"),
    ("except-whole-cidr", minimal(egress=[{"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}]),
     "spec.egress[0].except[0]", "excludes all of cidr"),
    ("except-invalid", minimal(egress=[{"cidr": "10.0.0.0/8", "except": ["10.1.0.1/16"]}]),
     "spec.egress[0].except[0]", 'write "10.1.0.0/16"'),
    ("egress-duplicate", minimal(egress=[{"host": "api.openai.com"}, {"host": "api.openai.com"}]),
     "spec.egress[1]", "duplicates spec.egress[0]"),
    ("egress-duplicate-port", minimal(egress=[{"host": "a.example.com",
                                               "ports": [{"port": 443}, {"port": 443}]}]),
     "spec.egress[0].ports[1]", "443/TCP is listed twice"),
    ("service-empty-selectors", minimal(egress=[{"service": {"namespaceSelector": {}}}]),
     "spec.egress[0].service", "allow every pod in every namespace"),
    ("service-bad-name", minimal(egress=[{"service": {"name": "9db"}}]),
     "spec.egress[0].service.name", "is not a Service name"),
    ("service-bad-namespace", minimal(egress=[{"service": {"namespace": "Data", "name": "db"}}]),
     "spec.egress[0].service.namespace", "is not a namespace name"),
    ("service-selector-bad-label", minimal(egress=[{"service": {"podSelector": {
        "matchLabels": {"app": "no spaces"}}}}]),
     'spec.egress[0].service.podSelector.matchLabels.app', 'label value "no spaces"'),
    ("region-unknown", minimal(dataRegions=["europe"]),
     "spec.dataRegions[0]", '"europe" is not a known data region; known regions: eu'),
    ("region-typo", minimal(dataRegions=["EU"]),
     "spec.dataRegions[0]", 'did you mean "eu"?'),
    ("region-duplicate", minimal(dataRegions=["eu", "eu"]),
     "spec.dataRegions[1]", "duplicates spec.dataRegions[0]"),
    ("egress-region-unknown", minimal(egress=[{"host": "a.example.com", "region": "mars"}]),
     "spec.egress[0].region", "not a known data region"),
    ("deny-pattern-not-re2", minimal(guardrails={"denyPatterns": [
        {"name": "x", "pattern": "(unclosed"}]}),
     "spec.guardrails.denyPatterns[0].pattern", "is not valid RE2 syntax: missing )"),
    ("deny-pattern-lookaround", minimal(guardrails={"denyPatterns": [
        {"name": "x", "pattern": "foo(?=bar)"}]}),
     "spec.guardrails.denyPatterns[0].pattern", "no backreferences or lookaround"),
    ("deny-pattern-matches-empty", minimal(guardrails={"denyPatterns": [
        {"name": "x", "pattern": "secret.*|"}]}),
     "spec.guardrails.denyPatterns[0].pattern", "matches the empty string"),
    ("deny-pattern-duplicate-name", minimal(guardrails={"denyPatterns": [
        {"name": "x", "pattern": "a"}, {"name": "x", "pattern": "b"}]}),
     "spec.guardrails.denyPatterns[1].name", "names must be unique"),
    ("deny-pattern-bad-name", minimal(guardrails={"denyPatterns": [
        {"name": "Internal Names", "pattern": "a"}]}),
     "spec.guardrails.denyPatterns[0].name", "is not a valid name"),
    ("selector-bad-label-key", minimal(selector={"matchLabels": {"-app": "x"}}),
     'spec.selector.matchLabels["-app"]', 'label key "-app" is not valid'),
    ("selector-bad-label-prefix", minimal(selector={"matchLabels": {"Example.com/app": "x"}}),
     'spec.selector.matchLabels["Example.com/app"]', "the prefix"),
    ("selector-bad-label-value", minimal(selector={"matchLabels": {"app": "a/b"}}),
     "spec.selector.matchLabels.app", 'label value "a/b" is not valid'),
    ("selector-bad-expression-key", minimal(selector={"matchExpressions": [
        {"key": "a b", "operator": "Exists"}]}),
     "spec.selector.matchExpressions[0].key", 'label key "a b"'),
    ("selector-bad-expression-value", minimal(selector={"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["-x"]}]}),
     "spec.selector.matchExpressions[0].values[0]", 'label value "-x"'),
    ("model-digest-format", minimal(models=[{"provider": "self-hosted", "name": "m",
                                             "image": "i", "digest": "md5:abc"}]),
     "spec.models[0].digest", "sha256: and 64 lowercase hex digits"),
    ("model-digest-uppercase", minimal(models=[{"provider": "self-hosted", "name": "m",
                                                "image": "i", "digest": DIGEST.upper()}]),
     "spec.models[0].digest", f'write "{DIGEST}"'),
    ("model-duplicate", minimal(models=[{"provider": "openai", "name": "gpt-4o"},
                                        {"provider": "openai", "name": "gpt-4o"}]),
     "spec.models[1]", "duplicates spec.models[0] (openai/gpt-4o)"),
    ("provider-key-secret-name", minimal(gateway={"providerKeys": [
        {"provider": "openai", "secretRef": {"name": "OpenAI_Key", "key": "k"}}]}),
     "spec.gateway.providerKeys[0].secretRef.name", "(it names a Secret)"),
    ("provider-key-secret-key", minimal(gateway={"providerKeys": [
        {"provider": "openai", "secretRef": {"name": "openai", "key": "api key"}}]}),
     "spec.gateway.providerKeys[0].secretRef.key", "is not a Secret key"),
    ("provider-key-duplicate", minimal(gateway={"providerKeys": [
        {"provider": "openai", "secretRef": {"name": "a", "key": "k"}},
        {"provider": "openai", "secretRef": {"name": "b", "key": "k"}}]}),
     "spec.gateway.providerKeys[1].provider", "already holds the key for openai"),
    ("provider-key-without-model", minimal(
        models=[{"provider": "anthropic", "name": "claude-sonnet-4-5"}],
        gateway={"providerKeys": [{"provider": "openai", "secretRef": {"name": "a", "key": "k"}}]}),
     "spec.gateway.providerKeys[0].provider", "no model in spec.models uses openai"),
    ("gateway-resource-name", minimal(gateway={"resources": {"limits": {"memroy": "1Gi"}}}),
     "spec.gateway.resources.limits.memroy", 'did you mean "memory"?'),
    ("owner-blank", minimal(owner="  "),
     "spec.owner", "not be blank"),
    ("upstream-host-not-in-egress", minimal(
        models=[{"provider": "azure-openai", "name": "gpt-4o"}],
        gateway={"upstreams": [{"provider": "azure-openai",
                                "baseUrl": "https://myres.openai.azure.com/openai/v1"}]}),
     "spec.gateway.upstreams[0].baseUrl", "add an egress entry for host myres.openai.azure.com"),
    ("upstream-port-not-in-egress", minimal(
        models=[{"provider": "openai", "name": "gpt-4o"}],
        egress=[{"host": "llm.corp.example"}],
        gateway={"upstreams": [{"provider": "openai", "baseUrl": "https://llm.corp.example:8443/v1"}]}),
     "spec.gateway.upstreams[0].baseUrl", "no spec.egress entry allows llm.corp.example:8443"),
    ("upstream-service-not-in-egress", minimal(
        models=[{"provider": "self-hosted", "name": "m", "image": "r.example.com/vllm:1"}],
        egress=[{"service": {"namespace": "ml", "name": "vllm"}, "ports": [{"port": 9000}]}],
        gateway={"upstreams": [{"provider": "self-hosted", "baseUrl": "http://vllm.ml.svc:8000/v1"}]}),
     "spec.gateway.upstreams[0].baseUrl",
     "add an egress entry {service: {namespace: ml, name: vllm}, ports: [{port: 8000}]}"),
    ("upstream-plain-http-outside-the-cluster", minimal(
        models=[{"provider": "self-hosted", "name": "m", "image": "r.example.com/vllm:1"}],
        egress=[{"host": "llm.corp.example", "ports": [{"port": 80}]}],
        gateway={"upstreams": [{"provider": "self-hosted", "baseUrl": "http://llm.corp.example/v1"}]}),
     "spec.gateway.upstreams[0].baseUrl", "use https://"),
    ("upstream-ip-address", minimal(
        models=[{"provider": "self-hosted", "name": "m", "image": "r.example.com/vllm:1"}],
        egress=[{"cidr": "10.0.0.0/8"}],
        gateway={"upstreams": [{"provider": "self-hosted", "baseUrl": "https://10.1.2.3/v1"}]}),
     "spec.gateway.upstreams[0].baseUrl", "names an IP address"),
    ("upstream-with-credentials", minimal(
        models=[{"provider": "openai", "name": "gpt-4o"}],
        egress=[{"host": "llm.corp.example"}],
        gateway={"upstreams": [{"provider": "openai", "baseUrl": "https://u:p@llm.corp.example/v1"}]}),
     "spec.gateway.upstreams[0].baseUrl", "holds credentials"),
    ("upstream-without-model", minimal(
        models=[{"provider": "openai", "name": "gpt-4o"}],
        egress=[{"host": "x.openai.azure.com"}],
        gateway={"upstreams": [{"provider": "azure-openai",
                                "baseUrl": "https://x.openai.azure.com/openai/v1"}]}),
     "spec.gateway.upstreams[0].provider", "no model in spec.models uses azure-openai"),
    ("upstream-not-spoken", minimal(
        models=[{"provider": "bedrock", "name": "m"}],
        egress=[{"host": "bedrock-runtime.eu-west-1.amazonaws.com"}],
        gateway={"upstreams": [{"provider": "bedrock",
                                "baseUrl": "https://bedrock-runtime.eu-west-1.amazonaws.com"}]}),
     "spec.gateway.upstreams[0].provider", "does not speak bedrock"),
    ("provider-hosts-ambiguous", minimal(
        models=[{"provider": "openai", "name": "gpt-4o"}],
        egress=[{"host": "eu.api.openai.com"}, {"host": "us.api.openai.com"}]),
     "spec.models[0].provider", "several openai hosts (eu.api.openai.com, us.api.openai.com)"),
    ("azure-without-host", minimal(models=[{"provider": "azure-openai", "name": "gpt-4o"}]),
     "spec.models[0].provider", "declare your resource's host in spec.egress"),
    ("self-hosted-without-base-url", minimal(
        models=[{"provider": "self-hosted", "name": "m", "image": "r.example.com/vllm:1"}]),
     "spec.models[0].provider", "add {provider: self-hosted, baseUrl:"),
    ("s3-bucket-uppercase", s3_storage(bucket="Evidence_Bucket"),
     "spec.forensics.storage.s3.bucket", "is not an S3 bucket name: use 3-63 lowercase"),
    ("s3-bucket-double-dot", s3_storage(bucket="evidence..eu"),
     "spec.forensics.storage.s3.bucket", "'.' must sit between letters or digits"),
    ("s3-bucket-ip", s3_storage(bucket="10.0.0.1"),
     "spec.forensics.storage.s3.bucket", "must not look like an IP address"),
    ("s3-endpoint-not-url", s3_storage(endpoint="minio.storage.svc:9000"),
     "spec.forensics.storage.s3.endpoint", "is not an http(s) URL; write e.g. https://"),
    ("s3-endpoint-with-path", s3_storage(endpoint="https://s3.example.com/evidence"),
     "spec.forensics.storage.s3.endpoint", 'so write "https://s3.example.com"'),
    ("s3-endpoint-with-credentials", s3_storage(endpoint="https://ak:sk@s3.example.com"),
     "spec.forensics.storage.s3.endpoint", "the keys belong in credentialsSecret"),
    ("s3-region-uppercase", s3_storage(region="EU-Central-1"),
     "spec.forensics.storage.s3.region", 'e.g. "eu-central-1"'),
    ("s3-credentials-secret-name", s3_storage(credentialsSecret={"name": "S3_Keys"}),
     "spec.forensics.storage.s3.credentialsSecret.name", "(it names a Secret)"),
    ("s3-prefix-leading-slash", s3_storage(prefix="/cluster-a/"),
     "spec.forensics.storage.s3.prefix", 'object keys have no root); write "cluster-a/"'),
    ("s3-prefix-bad-character", s3_storage(prefix="cluster{a}/"),
     "spec.forensics.storage.s3.prefix", "holds characters S3 keys should not"),
]  # fmt: skip


def test_a_good_s3_storage_has_no_errors() -> None:
    model, errors = parse_aiworkload_spec(
        s3_storage(endpoint="http://127.0.0.1:9000/", region="eu-central-1", prefix="c1/",
                   objectLock={"mode": "Governance"})
    )  # fmt: skip
    assert model is not None
    assert errors == []


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [pytest.param(spec, path, words, id=rule) for rule, spec, path, words in SEMANTIC_CASES],
)
def test_semantic_rule(spec: dict[str, Any], path: str, words: str) -> None:
    model, errors = parse_aiworkload_spec(spec)
    assert model is not None, f"the schema should accept this spec:\n{messages(errors)}"
    matching = [e for e in errors if e.path == path]
    assert matching, f"expected an error at {path}, got:\n{messages(errors)}"
    assert any(words in e.message for e in matching), messages(errors)


# One row per schema rule: how pydantic's complaint reaches the user.
SCHEMA_CASES = [
    ("required-field", {"selector": {"matchLabels": {"a": "b"}}, "purpose": "p"},
     "spec.owner", "is required but missing; add it (the team or person accountable"),
    ("unknown-field-typo", minimal(egres=[]),
     "spec.egres", 'unknown field; did you mean "egress"?'),
    ("unknown-field-snake-case", minimal(data_regions=["eu"]),
     "spec.data_regions", 'did you mean "dataRegions"?'),
    ("unknown-field-no-match", minimal(colour="blue"),
     "spec.colour", "unknown field; remove it (fields here: selector, owner"),
    ("enum-wrong-case", minimal(enforcement="enforce"),
     "spec.enforcement", 'must be one of "Enforce", "Audit"; got "enforce" (did you mean '
     '"Enforce"?)'),
    ("integer-quoted", minimal(egress=[{"host": "a.example.com", "ports": [{"port": "443"}]}]),
     "spec.egress[0].ports[0].port", 'must be an integer; got "443" (write it without quotes)'),
    ("boolean-quoted", minimal(gateway={"inject": "false"}),
     "spec.gateway.inject", 'must be true or false; got "false"'),
    ("object-expected", minimal(guardrails=["pii"]),
     "spec.guardrails", "must be an object (a YAML mapping); got a list"),
    ("list-expected", minimal(egress={"host": "a.example.com"}),
     "spec.egress", "must be a list; got an object"),
    ("string-too-long", minimal(purpose="x" * 2000),
     "spec.purpose", "is 2000 characters long; the limit is 1024"),
    ("string-empty", minimal(owner=""),
     "spec.owner", "must not be empty"),
    ("list-too-long", minimal(dataRegions=["eu"] * 17),
     "spec.dataRegions", "at most 16 are allowed"),
    ("number-out-of-range", minimal(guardrails={"promptInjection": {"threshold": 1.5}}),
     "spec.guardrails.promptInjection.threshold", "must be at most 1.0; got 1.5"),
    ("port-out-of-range", minimal(egress=[{"host": "a.example.com", "ports": [{"port": 0}]}]),
     "spec.egress[0].ports[0].port", "must be at least 1; got 0"),
    ("ports-empty", minimal(egress=[{"host": "a.example.com", "ports": []}]),
     "spec.egress[0].ports", "needs at least 1 entry"),
    ("quantity-invalid", minimal(gateway={"resources": {"requests": {"cpu": "lots"}}}),
     "spec.gateway.resources.requests.cpu", 'quantity such as 500m, 256Mi or 2; got "lots"'),
    ("date-invalid", minimal(assurance={"lastRedTeam": "15/09/2026"}),
     "spec.assurance.lastRedTeam", "YYYY-MM-DD"),
    ("label-key-path-quoted", minimal(selector={"matchLabels": {"app.kubernetes.io/name": 1}}),
     'spec.selector.matchLabels["app.kubernetes.io/name"]', "must be a string; got 1"),
    ("egress-needs-one-target", minimal(egress=[{"host": "a.example.com", "cidr": "10.0.0.0/8"}]),
     "spec.egress[0]", "exactly one of host, cidr or service"),
    ("selector-not-empty", minimal(selector={}),
     "spec.selector", "an empty selector would cover every pod of the namespace"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [pytest.param(spec, path, words, id=rule) for rule, spec, path, words in SCHEMA_CASES],
)
def test_schema_rule(spec: dict[str, Any], path: str, words: str) -> None:
    model, errors = parse_aiworkload_spec(spec)
    assert model is None
    matching = [e for e in errors if e.path == path]
    assert matching, f"expected an error at {path}, got:\n{messages(errors)}"
    assert any(words in e.message for e in matching), messages(errors)


def test_null_means_absent_so_the_default_applies() -> None:
    model, errors = parse_aiworkload_spec(minimal(enforcement=None, assurance=None))
    assert errors == []
    assert model is not None
    assert model.enforcement == "Enforce"


def test_not_a_mapping_is_one_error_at_spec() -> None:
    assert parse_aiworkload_spec([1, 2]) == (  # type: ignore[arg-type]
        None,
        [FieldError("spec", "must be an object (a YAML mapping); got a list")],
    )


def test_manifest_paths_start_at_the_document_root() -> None:
    manifest = {"apiVersion": "aigis.dev/v1alpha1", "kind": "AIWorkload", "spec": minimal()}
    manifest["spec"]["egress"] = [{"host": "https://api.openai.com/v1"}]
    _, errors = parse_aiworkload(manifest)
    assert [e.path for e in errors] == ["spec.egress[0].host"]
    _, errors = parse_aiworkload({"kind": "AIWorkload", "spec": minimal(), "sepc": {}})
    assert [str(e) for e in errors] == ['sepc: unknown field; did you mean "spec"?']


@pytest.mark.parametrize(
    "host",
    [
        "api.openai.com",
        "bedrock-runtime.eu-west-1.amazonaws.com",
        "europe-west4-aiplatform.googleapis.com",
        "my-resource.openai.azure.com",
        "*.help.example.com",
        "*.example.co.uk",
        "*.my-tenant.openai.azure.com",
        "xn--bcher-kva.example",
        "a" * 63 + ".example.com",
    ],
)
def test_good_hosts_pass(host: str) -> None:
    assert check_host(host) is None


def test_overlong_host_is_refused() -> None:
    host = ".".join(["a" * 60] * 5)
    assert check_host(host) == f"is {len(host)} characters long; a DNS name has at most 253"


@pytest.mark.parametrize(
    ("text", "network"),
    [("10.0.0.0/8", "10.0.0.0/8"), ("192.0.2.7/32", "192.0.2.7/32"), ("2001:db8::/32", None)],
)
def test_good_cidrs_parse(text: str, network: str | None) -> None:
    parsed, problem = parse_cidr(text)
    assert problem is None
    assert str(parsed) == (network or text)


@pytest.mark.parametrize("pattern", [r"(?i)\bsk-[a-z0-9]{20,}", "[0-9]{3}-[0-9]{2}-[0-9]{4}"])
def test_good_patterns_pass(pattern: str) -> None:
    assert pattern_problem(pattern) is None


# --- robustness: arbitrary JSON never raises and always yields an error ------------------------

HUGE = "x" * 100_000


def _deep(depth: int) -> object:
    node: object = "leaf"
    for i in range(depth):
        node = [node] if i % 2 else {"k": node}
    return node


# Values of a JSON type that differs from any type a field could take in the slot they replace
# (see `_breaks`), so each mutation must be reported.
JUNK: list[object] = [True, False, 7, -1, 2.5, [], [None], [[1]], {}, {"": [1]}, _deep(500), HUGE]


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str | date):
        return "string"
    return "list" if isinstance(value, list) else "object"


def _breaks(original: object, junk: object) -> bool:
    """Whether putting `junk` where `original` was must make the spec invalid."""
    before, after = _kind(original), _kind(junk)
    if before == after:
        return after == "string" and junk is HUGE  # every string field has a length limit
    # Quantities are int-or-string; floats are also valid where ints are.
    return {before, after} != {"number", "string"} or junk is HUGE


def _slots(node: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _slots(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _slots(value, (*path, i))
    return found


def _get(node: Any, path: tuple[object, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _mutations(seed: int, count: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    base = FULL_EXAMPLE["spec"]
    slots = [s for s in _slots(base) if s]
    found = []
    while len(found) < count:
        path = rng.choice(slots)
        original = _get(base, path)
        spec = copy.deepcopy(base)
        parent = _get(spec, path[:-1])
        if rng.random() < 0.2 and isinstance(original, dict):
            # An unknown field of a model, or a non-string value in a string map.
            _get(spec, path)["zzUnknown"] = {"junk": [1]}
            found.append((f"unknown key under {path}", spec))
            continue
        junk = rng.choice(JUNK)
        if not _breaks(original, junk):
            continue
        parent[path[-1]] = junk
        found.append((f"{path} = {str(junk)[:40]}", spec))
    return found


@pytest.mark.parametrize("seed", range(8))
def test_malformed_specs_never_raise_and_always_report(seed: int) -> None:
    for what, spec in _mutations(seed, 60):
        _, errors = parse_aiworkload_spec(spec)
        assert errors, f"no error for {what}"
        assert all(isinstance(e, FieldError) and e.path.startswith("spec") for e in errors)
        assert all(len(e.message) < 2000 for e in errors), what


HOSTILE = {
    "null": None,
    "list": [],
    "string": "spec",
    "number": 0,
    "empty": {},
    "all-null": {"selector": None, "owner": None, "purpose": None},
    "all-wrong-types": {"selector": [], "owner": {}, "purpose": 1},
    "empty-keys": {"": {"": {"": None}}},
    "huge-key": {HUGE: HUGE},
    "lone-surrogate-key": {"\ud800": "\ud800"},
    "nested-2000-deep": _deep(2000),
    "egress-junk-entries": minimal(
        egress=[None, 1, "x", {"host": None, "cidr": None, "service": None}]
    ),
    "egress-junk-strings": minimal(
        egress=[{"host": "\ud800.example.com"}, {"host": HUGE}, {"cidr": "\x00/8"}]
    ),
    "pattern-lone-surrogate": minimal(
        guardrails={"denyPatterns": [{"name": "a", "pattern": "\ud800"}]}
    ),
    "pattern-huge-repetition": minimal(
        guardrails={"denyPatterns": [{"name": "a", "pattern": "((((a{1000}){1000}))"}]}
    ),
    "label-huge": minimal(selector={"matchLabels": {HUGE: HUGE}}),
    "digest-huge": minimal(
        models=[{"provider": "self-hosted", "name": "m", "image": "i", "digest": HUGE}]
    ),
}


@pytest.mark.parametrize("spec", [pytest.param(v, id=k) for k, v in HOSTILE.items()])
def test_hostile_input_comes_back_as_errors(spec: Any) -> None:
    _, errors = parse_aiworkload_spec(spec)
    assert errors
    assert all(isinstance(e, FieldError) for e in errors)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(minimal(models=[{"provider": "openai", "name": "gpt-4o"}],
                             egress=[{"host": "eu.api.openai.com"}, {"host": "us.api.openai.com"}],
                             gateway={"upstreams": [{"provider": "openai",
                                                     "baseUrl": "https://eu.api.openai.com/v1"}]}),
                     id="explicit-base-url-picks-among-declared-hosts"),
        pytest.param(minimal(models=[{"provider": "self-hosted", "name": "m",
                                      "image": "r.example.com/vllm:1"}],
                             egress=[{"service": {"name": "vllm"}, "ports": [{"port": 8000}]}],
                             gateway={"upstreams": [{"provider": "self-hosted",
                                                     "baseUrl": "http://vllm.ml.svc.cluster.local:8000/v1"}]}),
                     id="in-cluster-service-of-the-workloads-namespace"),
        pytest.param(minimal(models=[{"provider": "openai", "name": "gpt-4o"}],
                             egress=[{"host": "*.corp.example", "ports": [{"port": 8443}]}],
                             gateway={"upstreams": [{"provider": "openai",
                                                     "baseUrl": "https://llm.corp.example:8443/v1"}]}),
                     id="wildcard-entry-covers-the-base-url"),
    ],
)  # fmt: skip
def test_upstreams_that_agree_with_the_egress_are_valid(spec: dict[str, Any]) -> None:
    model, errors = parse_aiworkload_spec(spec)
    assert model is not None
    assert errors == []
