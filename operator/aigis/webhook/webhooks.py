"""The ValidatingWebhookConfiguration and MutatingWebhookConfiguration aigis registers.

Pure: `render_webhook_configurations` turns the valid AIClusterPolicies and a `WebhookLayout`
into the two manifests. Shell: `ConfigurationPublisher` applies them (server-side apply) once the
server is ready, again when the policies or the CA change, and every few minutes to put back
what someone changed or deleted.

Why the configurations look the way they do:

- A webhook outage must not stop the cluster. Every webhook excludes kube-system, kube-public,
  kube-node-lease and aigis's own namespace by `kubernetes.io/metadata.name` (a label the API
  server sets on every namespace and nobody can remove), and `failurePolicy: Fail` appears only on
  webhooks whose namespaceSelector is an Enforce policy's. Everything else is `Ignore`.
- A webhook has one namespaceSelector, and label selectors cannot express "A or B". So each
  Enforce policy gets an entry of its own (policies with the same selector share one), ANDed with
  the system exclusion. The `Ignore` entry covers the remaining namespaces: where every Enforce
  selector is a single requirement its negation is one selector too and is ANDed in, so each
  namespace is reviewed once; otherwise the two overlap, which costs a second identical review
  but changes no decision (a denial from either denies; on an outage the `Fail` entry decides).
- AIClusterPolicies are cluster-scoped, so a namespaceSelector does not apply to them; they get an
  `Ignore` entry of their own, which is also where the scope selector becomes an objectSelector.
- `matchConditions` keep updates aigis never governs off the wire: anything in the excluded
  namespaces (belt and braces), requests by nodes, and updates of objects already being deleted
  (so finalizer removal is never blocked by a policy that tightened meanwhile, even while the
  webhook is down). Creates carry none: the API server converts the whole object for CEL on every
  call of an entry that has conditions, whatever they read, and that cost more than the review
  itself on a pod create (measured by bench/admission_e2e.py). So each namespaced validating
  entry is two: creates without conditions, updates with them; the mutating entries (creates
  only) have none. What the conditions did for creates the server does: it skips requests by
  nodes (mirror pods), and the namespaceSelector already leaves the excluded namespaces out. The
  one difference: while the webhook is down, a node's mirror pod in an Enforce namespace waits
  (the kubelet retries; the static pod itself runs regardless).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aigis.admission.templates import TEMPLATE_KINDS
from aigis.api.clusterpolicy import UNGOVERNABLE_NAMESPACES
from aigis.api.common import LabelSelector
from aigis.egress.compliance import NamedPolicy

log = logging.getLogger("aigis.webhook.configurations")

VALIDATE_PATH = "/validate"
MUTATE_PATH = "/mutate"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace to its name; the one label that cannot lie."""
MAX_TIMEOUT_SECONDS = 5
ADMISSION_GROUP = "admissionregistration.k8s.io"
MANAGED_BY_LABELS = {
    "app.kubernetes.io/managed-by": "aigis",
    "app.kubernetes.io/component": "admission-webhook",
}
_MAX_WEBHOOK_NAME = 253
_VALIDATE_SUFFIX = ".validate.aigis.dev"
_VALIDATE_UPDATES_SUFFIX = ".updates.validate.aigis.dev"
_MUTATE_SUFFIX = ".inject.aigis.dev"

FailurePolicy = Literal["Fail", "Ignore"]

_WRITE = ["CREATE", "UPDATE"]
EPHEMERAL_CONTAINERS_RESOURCE = "pods/ephemeralcontainers"
"""Written by `kubectl debug`; only ever updated, never created."""
NODES_GROUP = "system:nodes"
"""The group of every kubelet's identity: requests by nodes are never reviewed."""


def _ai_native_rules() -> tuple[dict[str, Any], ...]:
    """A rule per API group of the AI-native kinds that run pods (see `TEMPLATE_KINDS`)."""
    by_group: dict[str, set[str]] = {}
    for row in TEMPLATE_KINDS.values():
        if not row.native:
            for group in row.groups:
                by_group.setdefault(group, set()).add(row.resource)
    return tuple(
        {
            "apiGroups": [group],
            "apiVersions": ["*"],
            "resources": sorted(resources),
            "operations": _WRITE,
            "scope": "Namespaced",
        }
        for group, resources in sorted(by_group.items())
    )


WORKLOAD_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        # `kubectl debug` adds ephemeral containers to a running pod through the subresource,
        # an UPDATE: without it, a privileged container or one reading the gateway's keys
        # could join a pod after admission.
        "resources": ["pods", EPHEMERAL_CONTAINERS_RESOURCE],
        "operations": _WRITE,
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "resources": ["daemonsets", "deployments", "replicasets", "statefulsets"],
        "operations": _WRITE,
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["batch"],
        "apiVersions": ["v1"],
        "resources": ["cronjobs", "jobs"],
        "operations": _WRITE,
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["aigis.dev"],
        "apiVersions": ["v1alpha1"],
        "resources": ["aiworkloads"],
        "operations": _WRITE,
        "scope": "Namespaced",
    },
    *_ai_native_rules(),
)
"""What the validating webhooks review in namespaces: every pod-template owner, the AI-native
ones included (LeaderWorkerSet, JobSet, Ray, KServe, Kubeflow: one rule per API group, from
`TEMPLATE_KINDS`, every version, whether or not their CRDs are installed: the API server only
sends what exists), AIWorkloads, and the ephemeral containers added to pods. Other subresources
(status, scale, binding) are not listed, so they are never sent."""
POLICY_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": ["aigis.dev"],
        "apiVersions": ["v1alpha1"],
        "resources": ["aiclusterpolicies"],
        "operations": _WRITE,
        "scope": "Cluster",
    },
)
INJECT_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["pods"],
        "operations": ["CREATE"],
        "scope": "Namespaced",
    },
)
"""Injection happens once, when a pod is created; a pod's containers cannot change later (the
ephemeral containers `kubectl debug` adds are validated, never injected into)."""


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """How the API server reaches the webhook server: a URL, or a Service in the cluster.

    `url` is the base (`https://127.0.0.1:9443`); the paths `/validate` and `/mutate` are
    appended. The URL form is for local clusters and tests; in a cluster the Service form lets
    the API server find whichever pod is ready.
    """

    url: str | None = None
    service_name: str | None = None
    service_namespace: str | None = None
    service_port: int = 443

    def client_config(self, path: str, ca_bundle: bytes | None) -> dict[str, Any]:
        """The `clientConfig` of a webhook entry calling `path`; no `caBundle` when None (then
        another tool, such as cert-manager's cainjector, owns that field)."""
        config: dict[str, Any] = {}
        if ca_bundle is not None:
            config["caBundle"] = base64.b64encode(ca_bundle).decode()
        if self.url is not None:
            config["url"] = self.url.rstrip("/") + path
        else:
            config["service"] = {
                "name": self.service_name,
                "namespace": self.service_namespace,
                "port": self.service_port,
                "path": path,
            }
        return config


@dataclass(frozen=True, slots=True)
class WebhookLayout:
    """Everything about the configurations that does not come from the cluster's policies."""

    configuration_name: str
    """Name of both configurations (they are different kinds, so one name serves both)."""
    endpoint: WebhookEndpoint
    ca_bundle: bytes | None
    """PEM of the CA(s) the API server trusts for the webhook's serving certificate."""
    aigis_namespace: str | None = None
    timeout_seconds: int = MAX_TIMEOUT_SECONDS
    enforce_failure_policy: FailurePolicy = "Fail"
    """`Ignore` makes aigis fail open everywhere, Enforce namespaces included."""
    scope: tuple[tuple[str, str], ...] = ()
    """Labels a namespace (or an AIClusterPolicy) must carry to be reviewed at all: a canary
    roll-out, or a test that must not touch anyone else's namespaces."""


@dataclass(frozen=True, slots=True)
class EnforceGroup:
    """Enforce policies sharing one namespaceSelector; they get one `Fail` webhook entry."""

    name: str
    """The alphabetically first policy's name: stable as long as that policy exists."""
    selector: LabelSelector | None
    """None selects every namespace."""
    policies: tuple[str, ...]


def excluded_namespaces(aigis_namespace: str | None) -> list[str]:
    """The namespaces no webhook ever matches, sorted."""
    names = set(UNGOVERNABLE_NAMESPACES)
    if aigis_namespace:
        names.add(aigis_namespace)
    return sorted(names)


def is_enforcing(policy: NamedPolicy) -> bool:
    """Whether a policy refuses anything: its own enforcement, or its shadow-AI mode.

    Both are settings an administrator chose in order to refuse workloads, so both make the
    namespaces it governs fail closed; a policy in Audit with shadow AI Audit or Off never
    refuses, so its namespaces fail open.
    """
    spec = policy.spec
    return spec.enforcement == "Enforce" or spec.shadow_ai == "Enforce"


def enforce_groups(policies: Sequence[NamedPolicy]) -> list[EnforceGroup]:
    """The Enforce policies grouped by identical namespaceSelector, in name order."""
    grouped: dict[str, list[NamedPolicy]] = {}
    for policy in sorted(policies, key=lambda p: p.name):
        if not is_enforcing(policy):
            continue
        grouped.setdefault(_selector_key(policy.spec.namespace_selector), []).append(policy)
    return [
        EnforceGroup(
            name=members[0].name,
            selector=_non_empty(members[0].spec.namespace_selector),
            policies=tuple(p.name for p in members),
        )
        for members in grouped.values()
    ]


def negate_selector(selector: LabelSelector) -> dict[str, Any] | None:
    """A requirement matching exactly the namespaces `selector` does not, if one exists.

    Only a selector of a single requirement has a single-requirement negation (the negation of
    "A and B" is "not A or not B", which a label selector cannot say); None otherwise.
    """
    labels = selector.match_labels or {}
    expressions = selector.match_expressions or []
    if len(labels) + len(expressions) != 1:
        return None
    if labels:
        ((key, value),) = labels.items()
        return {"key": key, "operator": "NotIn", "values": [value]}
    requirement = expressions[0]
    opposite = {"In": "NotIn", "NotIn": "In", "Exists": "DoesNotExist", "DoesNotExist": "Exists"}
    negated: dict[str, Any] = {"key": requirement.key, "operator": opposite[requirement.operator]}
    if requirement.operator in ("In", "NotIn"):
        negated["values"] = sorted(requirement.values or [])
    return negated


def namespace_selector(
    layout: WebhookLayout,
    selector: LabelSelector | None = None,
    extra: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """`selector` ANDed with the system exclusion, the scope labels and `extra` requirements."""
    expressions: list[dict[str, Any]] = [
        {
            "key": NAMESPACE_NAME_LABEL,
            "operator": "NotIn",
            "values": excluded_namespaces(layout.aigis_namespace),
        }
    ]
    expressions += [
        {"key": key, "operator": "In", "values": [value]} for key, value in layout.scope
    ]
    labels: dict[str, str] = {}
    if selector is not None:
        labels.update(selector.match_labels or {})
        for requirement in selector.match_expressions or []:
            item: dict[str, Any] = {"key": requirement.key, "operator": requirement.operator}
            if requirement.values:
                item["values"] = sorted(requirement.values)
            expressions.append(item)
    expressions.extend(extra)
    rendered: dict[str, Any] = {"matchExpressions": expressions}
    if labels:
        rendered["matchLabels"] = dict(sorted(labels.items()))
    return rendered


def match_conditions(layout: WebhookLayout, *, updates: bool) -> list[dict[str, str]]:
    """CEL conditions that keep requests aigis never governs from reaching the server."""
    excluded = ", ".join(f"'{name}'" for name in excluded_namespaces(layout.aigis_namespace))
    conditions = [
        {
            "name": "not-an-excluded-namespace",
            # Cluster-scoped requests have no namespace key at all: reading it would be an
            # error, which a `Fail` entry turns into a refusal.
            "expression": f"!has(request.namespace) || !(request.namespace in [{excluded}])",
        },
        {
            "name": "not-a-node",
            "expression": "!has(request.userInfo.groups)"
            f" || !('{NODES_GROUP}' in request.userInfo.groups)",
        },
    ]
    if updates:
        conditions.append(
            {
                "name": "not-being-deleted",
                "expression": "request.operation != 'UPDATE'"
                " || !has(object.metadata.deletionTimestamp)",
            }
        )
    return conditions


def render_webhook_configurations(
    policies: Sequence[NamedPolicy], layout: WebhookLayout
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ValidatingWebhookConfiguration and the MutatingWebhookConfiguration, in that order."""
    groups = enforce_groups(policies) if layout.enforce_failure_policy == "Fail" else []
    return (
        _configuration(
            "ValidatingWebhookConfiguration", layout, _validating_webhooks(groups, layout)
        ),
        _configuration("MutatingWebhookConfiguration", layout, _mutating_webhooks(groups, layout)),
    )


def configuration_path(manifest: Mapping[str, Any]) -> str:
    """The REST path of a rendered configuration."""
    plural = {
        "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
        "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
    }[manifest["kind"]]
    return f"/apis/{ADMISSION_GROUP}/v1/{plural}/{manifest['metadata']['name']}"


# --- internals ------------------------------------------------------------------------------


def _configuration(
    kind: str, layout: WebhookLayout, webhooks: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": f"{ADMISSION_GROUP}/v1",
        "kind": kind,
        "metadata": {"name": layout.configuration_name, "labels": dict(MANAGED_BY_LABELS)},
        "webhooks": webhooks,
    }


def _namespaced_webhooks(
    groups: list[EnforceGroup],
    layout: WebhookLayout,
    *,
    suffix: str,
    path: str,
    rules: Sequence[Mapping[str, Any]],
    updates_suffix: str | None,
) -> list[dict[str, Any]]:
    """One `Fail` entry per Enforce group, then the `Ignore` entry for every other namespace.

    Each is an entry for creates, without matchConditions, and, with `updates_suffix`, an entry
    for updates with them (see the module docstring).
    """
    selectors: list[tuple[str, FailurePolicy, dict[str, Any]]] = [
        ("enforce-" + group.name, "Fail", namespace_selector(layout, group.selector))
        for group in groups
    ]
    remainder = _remainder_selector(groups, layout)
    if remainder is not None:
        selectors.append(("default", "Ignore", remainder))
    webhooks: list[dict[str, Any]] = []
    for stem, failure_policy, selector in selectors:
        webhooks.append(
            _webhook(
                _entry_name(stem, suffix),
                path,
                layout,
                rules=_for_operation(rules, "CREATE"),
                failure_policy=failure_policy,
                selector=selector,
                conditions=[],
            )
        )
        if updates_suffix is not None:
            webhooks.append(
                _webhook(
                    _entry_name(stem, updates_suffix),
                    path,
                    layout,
                    rules=_for_operation(rules, "UPDATE"),
                    failure_policy=failure_policy,
                    selector=selector,
                    conditions=match_conditions(layout, updates=True),
                )
            )
    return webhooks


def _for_operation(rules: Sequence[Mapping[str, Any]], operation: str) -> list[dict[str, Any]]:
    """`rules` narrowed to one operation; a subresource only written by the other is left out
    (`pods/ephemeralcontainers` is only ever updated)."""
    narrowed = []
    for rule in rules:
        if operation not in rule["operations"]:
            continue
        resources = [
            r
            for r in rule["resources"]
            if operation == "UPDATE" or r != EPHEMERAL_CONTAINERS_RESOURCE
        ]
        narrowed.append({**rule, "resources": resources, "operations": [operation]})
    return narrowed


def _validating_webhooks(groups: list[EnforceGroup], layout: WebhookLayout) -> list[dict[str, Any]]:
    webhooks = _namespaced_webhooks(
        groups,
        layout,
        suffix=_VALIDATE_SUFFIX,
        path=VALIDATE_PATH,
        rules=WORKLOAD_RULES,
        updates_suffix=_VALIDATE_UPDATES_SUFFIX,
    )
    policies = _webhook(
        "policies" + _VALIDATE_SUFFIX,
        VALIDATE_PATH,
        layout,
        rules=POLICY_RULES,
        failure_policy="Ignore",
        selector=None,
        conditions=match_conditions(layout, updates=True),
    )
    if layout.scope:
        policies["objectSelector"] = {"matchLabels": dict(layout.scope)}
    webhooks.append(policies)
    return webhooks


def _mutating_webhooks(groups: list[EnforceGroup], layout: WebhookLayout) -> list[dict[str, Any]]:
    webhooks = _namespaced_webhooks(
        groups,
        layout,
        suffix=_MUTATE_SUFFIX,
        path=MUTATE_PATH,
        rules=INJECT_RULES,
        updates_suffix=None,
    )
    for webhook in webhooks:
        # Another mutating webhook may add a container after aigis ran; a second pass lets the
        # injector see it (the patch is idempotent, so a pass that finds nothing to do is free).
        webhook["reinvocationPolicy"] = "IfNeeded"
    return webhooks


def _remainder_selector(groups: list[EnforceGroup], layout: WebhookLayout) -> dict[str, Any] | None:
    """The `Ignore` entry's selector: outside every Enforce group where that can be said.

    None when an Enforce group selects every namespace, so nothing remains.
    """
    negations: list[dict[str, Any]] = []
    for group in groups:
        if group.selector is None:
            return None
        negated = negate_selector(group.selector)
        if negated is None:
            # Overlap instead (see the module docstring); the other negations are still exact.
            continue
        negations.append(negated)
    return namespace_selector(layout, None, negations)


def _webhook(
    name: str,
    path: str,
    layout: WebhookLayout,
    *,
    rules: Sequence[Mapping[str, Any]],
    failure_policy: FailurePolicy,
    selector: dict[str, Any] | None,
    conditions: list[dict[str, str]],
) -> dict[str, Any]:
    webhook: dict[str, Any] = {
        "name": name,
        "clientConfig": layout.endpoint.client_config(path, layout.ca_bundle),
        "rules": [dict(rule) for rule in rules],
        "failurePolicy": failure_policy,
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "timeoutSeconds": min(max(layout.timeout_seconds, 1), MAX_TIMEOUT_SECONDS),
        "admissionReviewVersions": ["v1"],
    }
    if conditions:
        webhook["matchConditions"] = [dict(condition) for condition in conditions]
    if selector is not None:
        webhook["namespaceSelector"] = selector
    return webhook


def _entry_name(stem: str, suffix: str) -> str:
    """`stem` + `suffix`, shortened with a hash when it would exceed a webhook name's length."""
    name = stem + suffix
    if len(name) <= _MAX_WEBHOOK_NAME:
        return name
    digest = hashlib.sha256(stem.encode()).hexdigest()[:10]
    keep = _MAX_WEBHOOK_NAME - len(suffix) - len(digest) - 1
    return f"{stem[:keep].rstrip('.-')}-{digest}{suffix}"


def _selector_key(selector: LabelSelector | None) -> str:
    selector = _non_empty(selector)
    if selector is None:
        return ""
    return json.dumps(
        {
            "labels": sorted((selector.match_labels or {}).items()),
            "expressions": sorted(
                (r.key, r.operator, sorted(r.values or []))
                for r in selector.match_expressions or []
            ),
        }
    )


def _non_empty(selector: LabelSelector | None) -> LabelSelector | None:
    """None for a missing or empty selector: both select every namespace."""
    if selector is None or selector.is_empty():
        return None
    return selector


# --- shell ----------------------------------------------------------------------------------

FIELD_MANAGER = "aigis-webhook"


class ApplyApi(Protocol):
    """Server-side apply (`aigis.kube.KubeClient` has it); what it returns is not used."""

    async def apply(self, path: str, manifest: Mapping[str, Any], field_manager: str) -> object: ...


class Counter(Protocol):
    def labels(self, *values: str) -> Any: ...


class ConfigurationPublisher:
    """Keeps the two webhook configurations applied, matching the policies and the CA.

    Nothing is applied before `activate`: the configurations must not point the API server at a
    server that is not listening yet (a `Fail` entry would refuse writes in Enforce namespaces).
    Policy changes arrive in bursts (a `kubectl apply -f policies/`), so they are coalesced for
    `debounce_seconds` before one apply.
    """

    def __init__(
        self,
        api: ApplyApi,
        layout: WebhookLayout,
        policies: Callable[[], Sequence[NamedPolicy]],
        applies: Counter,
        *,
        debounce_seconds: float = 0.5,
        resync_seconds: float = 300.0,
        retry_seconds: float = 5.0,
    ) -> None:
        self._api = api
        self._layout = layout
        self._policies = policies
        self._applies = applies
        self._debounce = debounce_seconds
        self._resync = resync_seconds
        self._retry = retry_seconds
        self._active = False
        self._changed = asyncio.Event()
        self._applied: tuple[dict[str, Any], dict[str, Any]] | None = None

    @property
    def layout(self) -> WebhookLayout:
        return self._layout

    def render(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return render_webhook_configurations(self._policies(), self._layout)

    async def set_ca_bundle(self, ca_bundle: bytes) -> None:
        """A new CA bundle: applied at once when active (the caller waits for it)."""
        if ca_bundle == self._layout.ca_bundle:
            return
        self._layout = dataclasses.replace(self._layout, ca_bundle=ca_bundle)
        if self._active:
            await self.apply()

    def policies_changed(self) -> None:
        self._changed.set()

    async def activate(self) -> None:
        self._active = True
        await self.apply()

    async def apply(self, *, force: bool = False) -> None:
        """Apply both configurations unless they equal what was last applied (or `force`)."""
        rendered = self.render()
        if not force and rendered == self._applied:
            return
        try:
            for manifest in rendered:
                await self._api.apply(configuration_path(manifest), manifest, FIELD_MANAGER)
        except Exception:
            self._applies.labels("failed").inc()
            raise
        self._applies.labels("applied").inc()
        if rendered != self._applied:
            log.info(
                "webhook configurations %s applied: %s",
                self._layout.configuration_name,
                ", ".join(w["name"] for w in rendered[0]["webhooks"]),
            )
        self._applied = rendered

    async def run(self) -> None:
        """Re-apply on policy changes and every `resync_seconds`, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._resync)
            force = not self._changed.is_set()
            if not force:
                await asyncio.sleep(self._debounce)
            self._changed.clear()
            try:
                await self.apply(force=force)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("applying the webhook configurations failed (%s); retrying", error)
                await asyncio.sleep(self._retry)
                self._changed.set()
