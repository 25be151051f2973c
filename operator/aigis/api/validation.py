"""Validation of AIWorkload specs: schema first, then the checks a schema cannot express.

`parse_aiworkload_spec` is what the operator, the admission webhook and `aigis scan` call on a
spec, so a manifest that passes in CI passes in the cluster. Every problem comes back as a
`FieldError` naming the field (`spec.egress[2].host`) and the fix; nothing raises on bad input.

Pure: no I/O, no clock, no environment. Must not import the operator, webhook or gateway.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

import re2
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from aigis.api.aiworkload import (
    CLASSIFIER_MOUNT_ROOT,
    PII_ENTITIES,
    AIWorkload,
    AIWorkloadSpec,
    EgressRule,
    Guardrails,
    ServiceTarget,
)
from aigis.api.clusterpolicy import AIClusterPolicySpec
from aigis.api.common import LabelSelector
from aigis.api.errors import FieldError
from aigis.api.regions import DATA_REGIONS
from aigis.egress.catalogue import PROVIDER_APIS, provider_base_url
from aigis.egress.hosts import host_matches

ModelT = TypeVar("ModelT", bound=BaseModel)

# Second-level domains under which anyone can register a name: `*.co.uk` would allow half of
# the United Kingdom. A small built-in list of the common ones, not the whole Public Suffix List.
PUBLIC_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp",
        "co.nz", "net.nz", "org.nz",
        "co.in", "net.in", "org.in", "gov.in",
        "co.kr", "or.kr",
        "com.br", "net.br", "org.br", "gov.br",
        "com.cn", "net.cn", "org.cn", "gov.cn",
        "com.sg", "edu.sg", "gov.sg",
        "co.za", "org.za", "gov.za",
        "com.mx", "com.tr", "com.tw", "com.hk", "com.ar", "co.il",
        "com.sa", "co.ae",
    }
)  # fmt: skip

# Domains shared by every customer of a cloud: `*.openai.azure.com` lets data go to anyone's
# Azure OpenAI resource, an attacker's included. A wildcard must name a tenant below them.
SHARED_TENANT_SUFFIXES = frozenset(
    {
        "amazonaws.com", "s3.amazonaws.com", "cloudfront.net",
        "azure.com", "openai.azure.com", "cognitiveservices.azure.com", "azurewebsites.net",
        "blob.core.windows.net", "windows.net", "azure-api.net",
        "googleapis.com", "appspot.com", "run.app", "cloudfunctions.net",
        "herokuapp.com", "vercel.app", "netlify.app", "pages.dev", "workers.dev",
        "github.io", "githubusercontent.com", "ngrok.io", "ngrok-free.app",
        "hf.space", "endpoints.huggingface.cloud",
    }
)  # fmt: skip

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PII_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
# The reference grammar of container images (distribution/reference): a registry host with an
# optional port (an IPv6 address in brackets), and lowercase repository path segments.
_REGISTRY_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
_REPOSITORY_SEGMENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_SHOWN_CHARS = 80


# --- entry points ---------------------------------------------------------------------------


def parse_aiworkload_spec(
    spec: Mapping[str, Any],
) -> tuple[AIWorkloadSpec | None, list[FieldError]]:
    """Validate an AIWorkload spec (the mapping under `spec:`).

    Returns the model and no errors, or the model (None when the schema is not met) and every
    error found. Schema errors come first; the semantic checks run only on a schema-valid spec.
    """
    model, errors = _validate(AIWorkloadSpec, spec, "spec")
    if model is None:
        return None, errors
    errors = list(check_aiworkload_spec(model))
    return model, errors


def parse_aiworkload(manifest: Mapping[str, Any]) -> tuple[AIWorkload | None, list[FieldError]]:
    """Validate a whole AIWorkload manifest (apiVersion, kind, metadata, spec, status)."""
    model, errors = _validate(AIWorkload, manifest, "")
    if model is None:
        return None, errors
    return model, list(check_aiworkload_spec(model.spec))


def parse_cluster_policy_spec(
    spec: Mapping[str, Any],
) -> tuple[AIClusterPolicySpec | None, list[FieldError]]:
    """Validate an AIClusterPolicy spec the way `parse_aiworkload_spec` does a workload's."""
    model, errors = _validate(AIClusterPolicySpec, spec, "spec")
    if model is None:
        return None, errors
    return model, list(check_cluster_policy_spec(model))


def check_cluster_policy_spec(spec: AIClusterPolicySpec) -> Iterator[FieldError]:
    """The semantic checks on a schema-valid AIClusterPolicy spec, paths rooted at `spec`."""
    if spec.namespace_selector is not None:
        yield from _selector_errors(spec.namespace_selector, "spec.namespaceSelector")
    for i, region in enumerate(spec.allowed_regions):
        problem = region_problem(region)
        if problem:
            yield FieldError(f"spec.allowedRegions[{i}]", problem)
    for i, host in enumerate(spec.allowed_hosts):
        problem = check_host(host)
        if problem:
            yield FieldError(f"spec.allowedHosts[{i}]", problem)
    seen: dict[str, int] = {}
    for i, entry in enumerate(spec.allowed_registries):
        path = f"spec.allowedRegistries[{i}]"
        problem = registry_prefix_problem(entry)
        if problem:
            yield FieldError(path, problem)
        if entry in seen:
            yield FieldError(path, f"duplicates spec.allowedRegistries[{seen[entry]}]; remove one")
        seen.setdefault(entry, i)


def check_aiworkload_spec(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    """The semantic checks on a schema-valid spec, paths rooted at `spec`."""
    for check in _SPEC_CHECKS:
        yield from check(spec)


# --- schema errors --------------------------------------------------------------------------


def _validate(
    model: type[ModelT], data: object, prefix: str
) -> tuple[ModelT | None, list[FieldError]]:
    if not isinstance(data, Mapping):
        where = prefix or "<document>"
        return None, [
            FieldError(where, f"must be an object (a YAML mapping); got {_describe(data)}")
        ]
    try:
        # By alias only: `match_labels` in YAML is a typo the API server would silently prune.
        return model.model_validate(dict(data), by_alias=True, by_name=False), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return None, [
            FieldError(_join(prefix, _format_loc(e["loc"])), _schema_message(model, e))
            for e in errors
        ]


def _join(prefix: str, rest: str) -> str:
    if not prefix:
        return rest.lstrip(".") or "<document>"
    return prefix + rest


def _format_loc(loc: Sequence[int | str]) -> str:
    parts = []
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _IDENTIFIER.fullmatch(part):
            parts.append(f".{part}")
        else:
            parts.append(f"[{_quote(part)}]")
    return "".join(parts)


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "an object (a YAML mapping)",
    "model_type": "an object (a YAML mapping)",
    "model_attributes_type": "an object (a YAML mapping)",
    "list_type": "a list",
    "date_type": "a date written YYYY-MM-DD",
}


def _schema_message(root: type[BaseModel], error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    loc = error["loc"]
    value = error["input"]
    got = f"got {_describe(value)}"
    if kind == "missing":
        description = _field_description(root, loc)
        return "is required but missing; add it" + (f" ({description})" if description else "")
    if kind == "extra_forbidden":
        known = _field_names(root, loc[:-1])
        hint = _did_you_mean(str(loc[-1]), known)
        if hint:
            return f"unknown field; did you mean {_quote(hint)}?"
        return "unknown field; remove it" + (f" (fields here: {', '.join(known)})" if known else "")
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        message = f"must be one of {', '.join(_quote(o) for o in options)}; {got}"
        hint = _did_you_mean(str(value), options) if isinstance(value, str) else None
        return message + (f" (did you mean {_quote(hint)}?)" if hint else "")
    if kind in _EXPECTED:
        message = f"must be {_EXPECTED[kind]}; {got}"
        if isinstance(value, str) and kind in ("int_type", "float_type", "bool_type"):
            message += " (write it without quotes)"
        return message
    if kind == "string_too_long":
        return (
            f"is {len(value)} characters long; the limit is {ctx['max_length']}: shorten it"
            if isinstance(value, str)
            else f"is too long; the limit is {ctx['max_length']} characters"
        )
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_long":
        count = ctx.get("actual_length")
        has = f"has {count} entries" if isinstance(count, int) else "has too many entries"
        return f"{has}; at most {ctx.get('max_length')} are allowed: remove some"
    if kind == "too_short":
        return f"needs at least {ctx['min_length']} entr{'y' if ctx['min_length'] == 1 else 'ies'}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("greater than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }[kind]
        return f"must be {bound[0]} {ctx[bound[1]]}; {got}"
    if kind == "value_error":
        message = str(ctx.get("error", error["msg"]))
        return message if isinstance(value, Mapping | list) else f"{message}; {got}"
    return f"{error['msg']}; {got}"


def _unwrap(annotation: Any) -> Any:
    """The model or container type inside `Annotated[...]` and `X | None`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is UnionType:
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class found at `loc` inside `root`, following fields, lists and maps."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        origin = get_origin(current)
        if origin is list and isinstance(part, int):
            current = get_args(current)[0]
        elif origin is dict:
            current = get_args(current)[1]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            fields = {f.alias or n: f for n, f in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field_names(root: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    model = _model_at(root, loc)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _field_description(root: type[BaseModel], loc: Sequence[int | str]) -> str | None:
    model = _model_at(root, loc[:-1])
    if model is None:
        return None
    for name, field in model.model_fields.items():
        if (field.alias or name) == loc[-1] and field.description:
            text = " ".join(field.description.split())
            return text[0].lower() + text[1:].rstrip(".")
    return None


def _did_you_mean(word: str, options: Sequence[str]) -> str | None:
    if not options:
        return None
    squashed = {o.replace("_", "").replace("-", "").lower(): o for o in options}
    exact = squashed.get(word.replace("_", "").replace("-", "").lower())
    if exact:
        return exact
    close = difflib.get_close_matches(word[:_SHOWN_CHARS], list(options), n=1, cutoff=0.75)
    return close[0] if close else None


def _quote(text: str) -> str:
    shown = text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
    # Lone surrogates (possible in JSON input) cannot be encoded; show them escaped.
    shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")
    return json.dumps(shown, ensure_ascii=False)


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = str(value)
        return text if len(text) <= 40 else text[:39] + "…"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


# --- host and address checks ----------------------------------------------------------------


def check_host(host: str) -> str | None:
    """Why `host` cannot be an egress host, with the fix; None when it can."""
    shown = _quote(host)
    if not host:
        return 'must not be empty; write a host name such as "api.openai.com"'
    if "://" in host or "/" in host:
        bare = _host_of_url(host)
        fix = f"; write {_quote(bare)}" if bare else ""
        return f"{shown} is a URL, not a host{fix}"
    if any(c.isspace() for c in host):
        return f"{shown} contains whitespace; remove it"
    address = _ip_address(host)
    if address is not None:
        return (
            f"{shown} is an IP address, not a host name; "
            f'declare it as cidr: "{address}/{address.max_prefixlen}"'
        )
    if ":" in host:
        name, _, port = host.rpartition(":")
        if port.isdigit():
            return f"{shown} includes a port; write host {_quote(name)} and list {port} under ports"
        return f'{shown} is not a host name: ":" is not allowed'
    if host.endswith("."):
        return f"{shown} ends with a dot; write {_quote(host.rstrip('.'))}"
    if host != host.lower():
        return f"{shown} must be lowercase; write {_quote(host.lower())}"
    if len(host) > 253:
        return f"is {len(host)} characters long; a DNS name has at most 253"
    if "*" in host:
        return _wildcard_problem(host)
    if not host.isascii():
        return _non_ascii_problem(host)
    problem = _dns_labels_problem(host)
    if problem:
        return problem
    if "." not in host:
        return (
            f"{shown} is not a fully qualified domain name; "
            'write the full name, e.g. "api.openai.com"'
        )
    if host.endswith((".svc", ".cluster.local")):
        labels = host.split(".")
        name, namespace = labels[0], labels[1] if len(labels) > 2 else "<namespace>"
        return (
            f"{shown} is an in-cluster name; declare it as "
            f"service: {{namespace: {namespace}, name: {name}}}"
        )
    return None


def registry_prefix_problem(entry: str) -> str | None:
    """Why `entry` cannot be an allowedRegistries entry (`host[:port][/path]`), or None.

    The first segment must be a registry host, as container runtimes read it: it contains a dot or
    a port, or is `localhost`. Anything else would be a Docker Hub namespace, and an entry that
    silently meant something else than it says would allow the wrong images.
    """
    shown = _quote(entry)
    if any(c.isspace() for c in entry):
        return f"{shown} contains whitespace; remove it"
    if "://" in entry:
        bare = entry.split("://", 1)[1].rstrip("/")
        return f"{shown} is a URL; write the registry without a scheme: {_quote(bare)}"
    if "*" in entry:
        return (
            f"{shown}: wildcards are not supported; an entry already allows everything under it, "
            'so write the common prefix, e.g. "registry.example.com/team"'
        )
    if "@" in entry:
        return f"{shown} names an image digest; list the registry or repository prefix only"
    if entry.endswith("/"):
        return f"{shown} ends with a slash; write {_quote(entry.rstrip('/'))}"
    host, _, rest = entry.partition("/")
    if not _REGISTRY_HOST.fullmatch(host):
        return (
            f"{shown}: {_quote(host)} is not a registry host (a name with a dot or a port, or "
            "localhost, optionally with :port)"
        )
    if "." not in host and ":" not in host and host != "localhost":
        return (
            f"{shown} does not start with a registry host, so it would be read as a Docker Hub "
            f"namespace; write {_quote('docker.io/' + entry)} for Docker Hub, or the full host "
            "of your registry"
        )
    if host != host.lower():
        return f"{shown}: registry hosts are lowercase; write {_quote(entry.lower())}"
    for segment in rest.split("/") if rest else ():
        if not _REPOSITORY_SEGMENT.fullmatch(segment):
            fix = (
                f" (did you mean {_quote(host + '/' + rest.rsplit(':', 1)[0])}?)"
                if ":" in segment
                else ""
            )
            return (
                f"{shown}: path segment {_quote(segment)} is not valid in an image name: use "
                f"lowercase letters, digits and single separators (., _, __, -){fix}"
            )
    return None


def _host_of_url(text: str) -> str | None:
    try:
        parsed = urlsplit(text if "://" in text else f"//{text}")
        return parsed.hostname or None
    except ValueError:
        return None


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _wildcard_problem(host: str) -> str | None:
    shown = _quote(host)
    if host == "*":
        return '"*" would allow every host; list the hosts the workload needs'
    if not host.startswith("*.") or "*" in host[2:]:
        return f'{shown}: a wildcard may only be a leading "*.", as in "*.example.com"'
    base = host[2:]
    problem = _dns_labels_problem(base)
    if problem:
        return problem
    if "." not in base or base in PUBLIC_SUFFIXES:
        return (
            f"{shown} is too broad: a wildcard must sit under a registrable domain, "
            'as in "*.example.com"'
        )
    if base in SHARED_TENANT_SUFFIXES:
        return (
            f"{shown} is too broad: every customer of {_quote(base)} gets a name under it, "
            f"attackers included; list your own host, e.g. {_quote('my-resource.' + base)}"
        )
    return None


def _non_ascii_problem(host: str) -> str:
    try:
        punycode = host.encode("idna").decode("ascii")
    except UnicodeError:
        return f"{_quote(host)} is not a valid host name"
    return f"{_quote(host)} is an internationalised name; write it in ASCII: {_quote(punycode)}"


def _dns_labels_problem(name: str) -> str | None:
    for label in name.split("."):
        if not label:
            return f"{_quote(name)} has an empty label (two dots in a row, or a leading dot)"
        if len(label) > 63:
            return f"label {_quote(label)} is {len(label)} characters long; the limit is 63"
        if not _DNS_LABEL.fullmatch(label):
            return (
                f"label {_quote(label)} of {_quote(name)} may contain only lowercase letters, "
                "digits and hyphens, and must not start or end with a hyphen"
            )
    return None


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_cidr(text: str) -> tuple[Network | None, str | None]:
    """The network `text` names, or why it does not name one (with the fix)."""
    shown = _quote(text)
    _, slash, prefix = text.partition("/")
    if not slash:
        if _ip_address(text) is not None:
            bits = 32 if ":" not in text else 128
            return None, f'{shown} has no prefix length; write "{text}/{bits}" for one address'
        return None, f'{shown} is not a CIDR; write an address block such as "10.0.0.0/8"'
    if not prefix.isdigit():
        return None, f"{shown} needs a prefix length in bits after the slash, e.g. /24"
    try:
        return ipaddress.ip_network(text, strict=True), None
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None, f'{shown} is not a CIDR; write an address block such as "10.0.0.0/8"'
    return None, f"{shown} has host bits set; write {_quote(str(network))}"


# --- semantic checks on a schema-valid spec -------------------------------------------------

SpecCheck = Callable[[AIWorkloadSpec], Iterable[FieldError]]


def _check_text(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    if not spec.owner.strip():
        yield FieldError("spec.owner", "must name the team or person accountable, not be blank")
    if not spec.purpose.strip():
        yield FieldError("spec.purpose", "must say what the workload is for, not be blank")


def _check_selector(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    yield from _selector_errors(spec.selector, "spec.selector")


def _selector_errors(selector: LabelSelector, path: str) -> Iterator[FieldError]:
    for key, value in (selector.match_labels or {}).items():
        where = f"{path}.matchLabels{_format_loc([key])}"
        problem = label_key_problem(key)
        if problem:
            yield FieldError(where, problem)
        problem = label_value_problem(value)
        if problem:
            yield FieldError(where, problem)
    for i, requirement in enumerate(selector.match_expressions or []):
        where = f"{path}.matchExpressions[{i}]"
        problem = label_key_problem(requirement.key)
        if problem:
            yield FieldError(f"{where}.key", problem)
        for j, value in enumerate(requirement.values or []):
            problem = label_value_problem(value)
            if problem:
                yield FieldError(f"{where}.values[{j}]", problem)


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a Kubernetes label key (`[prefix/]name`), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        problem = dns_subdomain_problem(prefix)
        if problem:
            return f"label key {_quote(key)}: the prefix {problem}"
    if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        return (
            f"label key {_quote(key)} is not valid: the name part needs 1-63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit (optionally after a "
            "DNS prefix and '/', as in app.kubernetes.io/name)"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why `value` is not a Kubernetes label value, or None."""
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        return (
            f"label value {_quote(value)} is not valid: use at most 63 letters, digits, '-', "
            "'_' or '.', starting and ending with a letter or digit"
        )
    return None


def dns_subdomain_problem(name: str) -> str | None:
    """Why `name` is not a DNS-1123 subdomain (most Kubernetes object names), or None."""
    if not name or len(name) > 253:
        return f"{_quote(name)} must be 1-253 characters long"
    if not all(_DNS_LABEL.fullmatch(label) for label in name.split(".")):
        return (
            f"{_quote(name)} is not a valid name: use lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


def _check_models(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    seen: dict[tuple[str, str], int] = {}
    for i, model in enumerate(spec.models):
        path = f"spec.models[{i}]"
        if model.digest is not None and not _DIGEST.fullmatch(model.digest):
            fix = (
                f"; write {_quote(model.digest.lower())}"
                if _DIGEST.fullmatch(model.digest.lower())
                else ""
            )
            yield FieldError(
                f"{path}.digest",
                f"{_quote(model.digest)} is not a digest: write sha256: and 64 lowercase hex "
                f"digits{fix}",
            )
        key = (model.provider, model.name)
        if key in seen:
            yield FieldError(
                path,
                f"duplicates spec.models[{seen[key]}] ({model.provider}/{model.name}); remove one",
            )
        else:
            seen[key] = i


def _check_egress(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    seen: dict[tuple[object, ...], int] = {}
    for i, rule in enumerate(spec.egress):
        path = f"spec.egress[{i}]"
        yield from _egress_target_errors(rule, path)
        ports: set[tuple[int, str]] = set()
        for j, port in enumerate(rule.ports):
            if (port.port, port.protocol) in ports:
                yield FieldError(
                    f"{path}.ports[{j}]", f"{port.port}/{port.protocol} is listed twice; remove one"
                )
            ports.add((port.port, port.protocol))
        key = (_target_key(rule), tuple(sorted(ports)))
        if key in seen:
            yield FieldError(
                path,
                f"duplicates spec.egress[{seen[key]}] (same destination and ports); remove one",
            )
        else:
            seen[key] = i


def _egress_target_errors(rule: EgressRule, path: str) -> Iterator[FieldError]:
    if rule.host is not None:
        problem = check_host(rule.host)
        if problem:
            yield FieldError(f"{path}.host", problem)
    if rule.cidr is not None:
        network, problem = parse_cidr(rule.cidr)
        if problem:
            yield FieldError(f"{path}.cidr", problem)
        for j, text in enumerate(rule.except_ or []):
            yield from _except_errors(network, text, f"{path}.except[{j}]")
    if rule.service is not None:
        yield from _service_errors(rule.service, f"{path}.service")


def _except_errors(network: Network | None, text: str, path: str) -> Iterator[FieldError]:
    excluded, problem = parse_cidr(text)
    if problem:
        yield FieldError(path, problem)
        return
    if network is None or excluded is None:
        return
    if excluded.version != network.version:
        yield FieldError(
            path,
            f"{_quote(text)} is IPv{excluded.version} but cidr is IPv{network.version}; "
            "an exception must lie inside cidr",
        )
    elif excluded == network:
        yield FieldError(path, f"{_quote(text)} excludes all of cidr; remove the entry instead")
    elif not (
        excluded.prefixlen > network.prefixlen
        and excluded.supernet(new_prefix=network.prefixlen) == network
    ):
        yield FieldError(
            path,
            f"{_quote(text)} is not inside cidr {_quote(str(network))}; "
            "an exception must lie inside cidr",
        )


def _service_errors(service: ServiceTarget, path: str) -> Iterator[FieldError]:
    if service.namespace is not None and not _DNS_LABEL.fullmatch(service.namespace):
        yield FieldError(
            f"{path}.namespace",
            f"{_quote(service.namespace)} is not a namespace name: use lowercase letters, digits "
            "and '-', starting and ending with a letter or digit",
        )
    if service.name is not None and not _DNS_1035_LABEL.fullmatch(service.name):
        yield FieldError(
            f"{path}.name",
            f"{_quote(service.name)} is not a Service name: use lowercase letters, digits and "
            "'-', starting with a letter and ending with a letter or digit",
        )
    selectors = {
        "namespaceSelector": service.namespace_selector,
        "podSelector": service.pod_selector,
    }
    given = {name: s for name, s in selectors.items() if s is not None}
    for name, selector in given.items():
        yield from _selector_errors(selector, f"{path}.{name}")
    if given and all(s.is_empty() for s in given.values()):
        scope = "in every namespace" if "namespaceSelector" in given else "in the namespace"
        yield FieldError(
            path,
            f"empty selectors allow every pod {scope}; add matchLabels naming the pods "
            "the workload talks to",
        )


def _target_key(rule: EgressRule) -> tuple[object, ...]:
    if rule.host is not None:
        return ("host", rule.host.lower())
    if rule.cidr is not None:
        return ("cidr", rule.cidr, tuple(sorted(rule.except_ or [])))
    if rule.service is not None:
        return ("service", rule.service.model_dump_json(exclude_none=True))
    return ()


def _check_regions(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    seen: dict[str, int] = {}
    for i, region in enumerate(spec.data_regions):
        path = f"spec.dataRegions[{i}]"
        problem = region_problem(region)
        if problem:
            yield FieldError(path, problem)
        if region in seen:
            yield FieldError(path, f"duplicates spec.dataRegions[{seen[region]}]; remove one")
        seen.setdefault(region, i)
    for i, rule in enumerate(spec.egress):
        if rule.region is None:
            continue
        path = f"spec.egress[{i}].region"
        problem = region_problem(rule.region)
        # A known region outside spec.dataRegions is a valid spec that is not compliant: the
        # compliance check reports it (NonCompliant), not validation (Invalid).
        if problem:
            yield FieldError(path, problem)


def region_problem(region: str) -> str | None:
    """Why `region` is not a known data region, or None."""
    if region in DATA_REGIONS:
        return None
    hint = _did_you_mean(region, list(DATA_REGIONS))
    suggestion = f"did you mean {_quote(hint)}? " if hint else ""
    return (
        f"{_quote(region)} is not a known data region; {suggestion}"
        f"known regions: {', '.join(DATA_REGIONS)}"
    )


def _check_guardrails(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    yield from check_guardrails(spec.guardrails, "spec.guardrails")
    yield from _classifier_mount_errors(spec)


def _classifier_mount_errors(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    """A classifier the injected gateway loads must come with its volume, mounted where it
    cannot shadow anything of the gateway's (its code, configuration, keys or audit state)."""
    classifier = spec.guardrails.prompt_injection.active_classifier
    if classifier is None or not spec.gateway.inject:
        return
    path = "spec.guardrails.promptInjection.classifier"
    mount = classifier.path.rstrip("/")
    if not mount.startswith(CLASSIFIER_MOUNT_ROOT) or "/." in mount or "//" in mount:
        yield FieldError(
            f"{path}.path",
            f"{_quote(classifier.path)} is not a directory under {CLASSIFIER_MOUNT_ROOT}: the "
            f"gateway mounts classifier volumes there only (e.g. {CLASSIFIER_MOUNT_ROOT}injection)",
        )
    volume = classifier.volume
    if volume is None:
        yield FieldError(
            f"{path}.volume",
            "is required while the gateway is injected: its image holds no model; name an image "
            "or a persistentVolumeClaim holding model.onnx and tokenizer.json",
        )
    elif volume.persistent_volume_claim is not None:
        problem = dns_subdomain_problem(volume.persistent_volume_claim)
        if problem:
            yield FieldError(
                f"{path}.volume.persistentVolumeClaim",
                f"{problem} (it names a PersistentVolumeClaim)",
            )


def parse_guardrails(
    data: Mapping[str, Any], path: str = "guardrails"
) -> tuple[Guardrails | None, list[FieldError]]:
    """Validate a guardrails section on its own (as `aigis guard --config` reads it), paths
    rooted at `path`. Same contract as `parse_aiworkload_spec`."""
    model, errors = _validate(Guardrails, data, path)
    if model is None:
        return None, errors
    return model, list(check_guardrails(model, path))


def check_guardrails(guardrails: Guardrails, path: str) -> Iterator[FieldError]:
    """The semantic checks on a schema-valid guardrails section rooted at `path`."""
    yield from _deny_pattern_errors(guardrails, path)
    yield from _pii_pattern_errors(guardrails, path)


def _pii_pattern_errors(guardrails: Guardrails, root: str) -> Iterator[FieldError]:
    seen: dict[str, int] = {}
    for i, custom in enumerate(guardrails.pii.custom_patterns or []):
        path = f"{root}.pii.customPatterns[{i}]"
        if not _PII_NAME.fullmatch(custom.name):
            yield FieldError(
                f"{path}.name",
                f"{_quote(custom.name)} is not a valid name: use upper-case letters, digits and "
                "'_', starting with a letter, e.g. CUSTOMER_ID",
            )
        elif custom.name in PII_ENTITIES:
            yield FieldError(
                f"{path}.name",
                f"{_quote(custom.name)} is a built-in entity; list it under pii.entities "
                "instead, or choose another name",
            )
        if custom.name in seen:
            yield FieldError(
                f"{path}.name",
                f"{_quote(custom.name)} is already the name of "
                f"{root}.pii.customPatterns[{seen[custom.name]}]; names must be unique",
            )
        seen.setdefault(custom.name, i)
        problem = pattern_problem(custom.pattern)
        if problem:
            yield FieldError(f"{path}.pattern", problem)


def _deny_pattern_errors(guardrails: Guardrails, root: str) -> Iterator[FieldError]:
    seen: dict[str, int] = {}
    for i, deny in enumerate(guardrails.deny_patterns):
        path = f"{root}.denyPatterns[{i}]"
        if not _DNS_LABEL.fullmatch(deny.name):
            yield FieldError(
                f"{path}.name",
                f"{_quote(deny.name)} is not a valid name: use lowercase letters, digits and "
                "'-', e.g. internal-project-names",
            )
        if deny.name in seen:
            yield FieldError(
                f"{path}.name",
                f"{_quote(deny.name)} is already the name of "
                f"{root}.denyPatterns[{seen[deny.name]}]; names must be unique",
            )
        seen.setdefault(deny.name, i)
        problem = pattern_problem(deny.pattern)
        if problem:
            yield FieldError(f"{path}.pattern", problem)


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be a deny pattern (RE2 syntax, must not match nothing), or None."""
    options = re2.Options()
    options.log_errors = False  # RE2 would otherwise write to stderr
    try:
        compiled = re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return (
            f"is not valid RE2 syntax: {reason}; fix the expression (RE2 has no backreferences "
            "or lookaround: https://github.com/google/re2/wiki/Syntax)"
        )
    except UnicodeError:
        return "contains characters that are not valid Unicode; remove them"
    if compiled.search("") is not None:
        return (
            "matches the empty string, so it would match every message; "
            "make it require at least one character (e.g. + instead of *)"
        )
    return None


def _check_gateway(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    resources = spec.gateway.resources
    if resources is not None:
        for kind, amounts in (("requests", resources.requests), ("limits", resources.limits)):
            for name in amounts or {}:
                if name not in _RESOURCE_NAMES:
                    hint = _did_you_mean(name, _RESOURCE_NAMES)
                    yield FieldError(
                        f"spec.gateway.resources.{kind}{_format_loc([name])}",
                        f"{_quote(name)} is not a resource the gateway uses; "
                        + (
                            f"did you mean {_quote(hint)}?"
                            if hint
                            else f"use {', '.join(_RESOURCE_NAMES)}"
                        ),
                    )
    providers_in_models = {m.provider for m in spec.models}
    seen: dict[str, int] = {}
    for i, key in enumerate(spec.gateway.provider_keys):
        path = f"spec.gateway.providerKeys[{i}]"
        problem = dns_subdomain_problem(key.secret_ref.name)
        if problem:
            yield FieldError(f"{path}.secretRef.name", f"{problem} (it names a Secret)")
        if not _SECRET_KEY.fullmatch(key.secret_ref.key):
            yield FieldError(
                f"{path}.secretRef.key",
                f"{_quote(key.secret_ref.key)} is not a Secret key: use letters, digits, "
                "'-', '_' and '.'",
            )
        if key.provider in seen:
            yield FieldError(
                f"{path}.provider",
                f"spec.gateway.providerKeys[{seen[key.provider]}] already holds the key for "
                f"{key.provider}; keep one",
            )
        seen.setdefault(key.provider, i)
        if providers_in_models and key.provider not in providers_in_models:
            yield FieldError(
                f"{path}.provider",
                f"no model in spec.models uses {key.provider}; add the model or remove the key",
            )


# --- gateway upstreams ----------------------------------------------------------------------


def in_cluster_service(host: str) -> tuple[str, str] | None:
    """(name, namespace) when `host` is a Service's DNS name, `<name>.<namespace>.svc[...]`."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) >= 3 and labels[2] == "svc":
        return labels[0], labels[1]
    return None


def url_port(url: str) -> int:
    """The TCP port a URL connects to (its own, else the scheme's)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return port or (443 if parts.scheme == "https" else 80)


def egress_entry_for_url(egress: Sequence[EgressRule], url: str) -> int | None:
    """The index of the egress entry that lets the gateway reach `url`'s host and port.

    A host entry matching the host (exact or `*.`), or for an in-cluster URL a `service` entry
    naming that Service (an entry without namespace is the workload's own, which a spec alone
    cannot tell, so any namespace is taken). The port must be among the entry's TCP ports.
    """
    host = (urlsplit(url).hostname or "").rstrip(".")
    port = url_port(url)
    service = in_cluster_service(host)
    for i, rule in enumerate(egress):
        if not any(p.port == port and p.protocol == "TCP" for p in rule.ports):
            continue
        if service is not None:
            target = rule.service
            if (
                target is not None
                and target.name == service[0]
                and target.namespace in (None, service[1])
            ):
                return i
        elif rule.host is not None and host_matches(rule.host, host):
            return i
    return None


def base_url_problem(url: str, egress: Sequence[EgressRule]) -> str | None:
    """Why the gateway cannot use `url` as an upstream base URL under this egress, or None."""
    shown = _quote(url)
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port out of range or not a number
    except ValueError:
        return f"{shown} has an invalid port; write e.g. https://llm.example.com:8443/v1"
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return (
            f'{shown} is not an http(s) URL; write e.g. "https://myres.openai.azure.com/openai/v1"'
        )
    if parts.username is not None or parts.password is not None:
        return f"{shown} holds credentials; remove them and put the key in gateway.providerKeys"
    if parts.query or parts.fragment:
        return f"{shown} has a query or fragment; write the base URL only, e.g. .../v1"
    if _ip_address(host) is not None:
        return (
            f"{shown} names an IP address; the gateway allows egress by name: give the server "
            "a DNS name or reach it through an in-cluster Service"
        )
    service = in_cluster_service(host)
    if parts.scheme == "http" and service is None:
        return (
            f"{shown} is plain http outside the cluster, where prompts and the provider key "
            f"would travel unencrypted; use https:// (http is for in-cluster Services only)"
        )
    if egress_entry_for_url(egress, url) is not None:
        return None
    port = url_port(url)
    if service is not None:
        return (
            f"no spec.egress entry allows Service {service[1]}/{service[0]} on port {port}; add "
            f"an egress entry {{service: {{namespace: {service[1]}, name: {service[0]}}}, "
            f"ports: [{{port: {port}}}]}}"
        )
    ports = "" if port == 443 else f" with port {port}"
    return f"no spec.egress entry allows {host}:{port}; add an egress entry for host {host}{ports}"


def _check_upstreams(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    used = {m.provider for m in spec.models}
    explicit: dict[str, str] = {}
    for i, upstream in enumerate(spec.gateway.upstreams):
        path = f"spec.gateway.upstreams[{i}]"
        if upstream.provider in explicit:
            yield FieldError(
                f"{path}.provider", f"{upstream.provider} already has a base URL here; keep one"
            )
            continue
        explicit[upstream.provider] = upstream.base_url
        if upstream.provider not in used:
            yield FieldError(
                f"{path}.provider",
                f"no model in spec.models uses {upstream.provider}; add the model or remove "
                "the entry",
            )
        if PROVIDER_APIS[upstream.provider].wire_format is None:
            yield FieldError(
                f"{path}.provider",
                f"the gateway does not speak {upstream.provider}'s API (signed requests); "
                "remove the entry",
            )
            continue
        problem = base_url_problem(upstream.base_url, spec.egress)
        if problem:
            yield FieldError(f"{path}.baseUrl", problem)
    hosts = [rule.host for rule in spec.egress if rule.host is not None]
    first_model: dict[str, int] = {}
    for k, model in enumerate(spec.models):
        first_model.setdefault(model.provider, k)
    for provider, k in first_model.items():
        if provider in explicit or PROVIDER_APIS[provider].wire_format is None:
            continue
        path = f"spec.models[{k}].provider"
        choice = provider_base_url(provider, hosts)
        if len(choice.hosts) > 1:
            listed = ", ".join(choice.hosts)
            yield FieldError(
                path,
                f"spec.egress declares several {provider} hosts ({listed}) and the gateway calls "
                f"one; add {{provider: {provider}, baseUrl: <URL of the one to call>}} to "
                "spec.gateway.upstreams",
            )
        elif choice.url is None and provider == "self-hosted":
            yield FieldError(
                path,
                "the gateway needs the model server's URL; add {provider: self-hosted, baseUrl: "
                '"http://<service>.<namespace>.svc:<port>/v1"} to spec.gateway.upstreams and a '
                "service entry for it to spec.egress",
            )
        elif choice.url is None:
            yield FieldError(
                path,
                f"{provider} has no default host; declare your resource's host in spec.egress "
                '(e.g. "myres.openai.azure.com") or add its baseUrl to spec.gateway.upstreams',
            )


# --- forensics storage ----------------------------------------------------------------------

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_REGION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def bucket_problem(name: str) -> str | None:
    """Why `name` is not an S3 bucket name (the rules every S3 implementation shares)."""
    if not _BUCKET.fullmatch(name):
        return (
            f"{_quote(name)} is not an S3 bucket name: use 3-63 lowercase letters, digits, '.' "
            "and '-', starting and ending with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        return f"{_quote(name)} is not an S3 bucket name: '.' must sit between letters or digits"
    if _ip_address(name) is not None:
        return f"{_quote(name)} is not an S3 bucket name: it must not look like an IP address"
    return None


def s3_endpoint_problem(url: str) -> str | None:
    """Why `url` cannot be an S3 endpoint: aigis needs scheme and host, nothing after them."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"{_quote(url)} is not a URL; write e.g. https://minio.storage.svc:9000"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{_quote(url)} is not an http(s) URL; write e.g. https://minio.storage.svc:9000"
    if parts.username is not None or parts.password is not None:
        return "holds a user or password; the keys belong in credentialsSecret: drop them here"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        root = f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")
        return (
            f"{_quote(url)} has a path; the bucket is named in s3.bucket, so write {_quote(root)}"
        )
    return None


def _check_forensics(spec: AIWorkloadSpec) -> Iterator[FieldError]:
    s3 = spec.forensics.storage.s3 if spec.forensics.storage is not None else None
    if s3 is None:
        return
    path = "spec.forensics.storage.s3"
    problem = bucket_problem(s3.bucket)
    if problem:
        yield FieldError(f"{path}.bucket", problem)
    if s3.endpoint is not None:
        problem = s3_endpoint_problem(s3.endpoint)
        if problem:
            yield FieldError(f"{path}.endpoint", problem)
    if s3.region is not None and not _S3_REGION.fullmatch(s3.region):
        yield FieldError(
            f"{path}.region",
            f"{_quote(s3.region)} is not a region name; write it as the S3 API knows it, "
            'e.g. "eu-central-1"',
        )
    problem = dns_subdomain_problem(s3.credentials_secret.name)
    if problem:
        yield FieldError(f"{path}.credentialsSecret.name", f"{problem} (it names a Secret)")
    if s3.prefix is not None:
        if s3.prefix.startswith("/"):
            yield FieldError(
                f"{path}.prefix",
                f"must not start with '/' (object keys have no root); write "
                f"{_quote(s3.prefix.lstrip('/'))}",
            )
        elif any(ord(c) < 0x20 or c in "\\{}^%`<>|" for c in s3.prefix):
            yield FieldError(
                f"{path}.prefix",
                "holds characters S3 keys should not; use letters, digits and -_./!*'()",
            )


_SPEC_CHECKS: tuple[SpecCheck, ...] = (
    _check_text,
    _check_selector,
    _check_models,
    _check_egress,
    _check_regions,
    _check_guardrails,
    _check_gateway,
    _check_upstreams,
    _check_forensics,
)
