"""Credentials in the app: provider API keys, and the Kubernetes ServiceAccount token.

Decisions (and why):
- Provider keys: the gateway injection (`aigis.admission.mutation`) moves each env entry that
  reads a key listed in `spec.gateway.providerKeys` (exact Secret name and key) from the app
  containers to the gateway. On a Deployment's template (never mutated), and on any manifest
  `aigis scan` reads, such an entry is not a finding while the gateway will be injected: it is
  moved when the pod is created. On a Pod in the webhook the validating pass runs after the
  injection, so whatever is still there was not moved (the pod arrived with a gateway of its own
  and the injection skipped it) and is a finding. Anything the injection does not move is a
  finding everywhere: other keys of those Secrets, `envFrom` or volumes exposing them, an app's
  own key for a provider, a literal key. Only aigis's own gateway sidecar is exempt.
- Service-account tokens: AIWorkload has no field to declare that a workload needs the Kubernetes
  API beyond `serviceAccountToken: true`, so unless it says so a template that does not set
  `automountServiceAccountToken: false`, or projects a token volume itself, is a finding. This
  holds even when the workload's spec is invalid (nothing then declares the token).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from aigis.admission.mutation import KEY_PLACEHOLDER, OPT_OUT_ANNOTATION
from aigis.admission.reading import is_mapping, mapping_at, quote, text_at
from aigis.admission.reasons import Reason
from aigis.admission.rules.containers import containers
from aigis.admission.rules.pod import CoveredPod
from aigis.admission.rules.rule import Family, Rule
from aigis.admission.shadow import PROVIDER_KEY_VARIABLES
from aigis.guardrails.credentials import is_placeholder

RULE_PROVIDER_KEY: Final = "secrets/provider-key-in-app"
RULE_TOKEN_AUTOMOUNT: Final = "serviceaccount/token-automount"  # noqa: S105 - a rule id

_FAMILY: Final = "secrets"
# Lists whose env the injection edits (ephemeral containers are added later, by a subresource).
_INJECTED_LISTS: Final = frozenset({"initContainers", "containers"})
_NOT_INJECTED_NOTE: Final = ", and no gateway is injected to take it over"


def provider_keys_in_app(pod: CoveredPod) -> Iterator[Reason]:
    """Every way an app container (not the gateway) can read a provider key: env entries the
    injection does not move, envFrom, volume mounts, literal keys (see the module docstring)."""
    model = pod.valid_model
    if model is None:
        return
    held = {(k.secret_ref.name, k.secret_ref.key): k.provider for k in model.gateway.provider_keys}
    held_secrets = {name for name, _ in held}
    shown, injected = pod.shown, pod.injected
    for container in containers(pod.template, pod.gateway.path):
        moved = pod.moves and container.list_name in _INJECTED_LISTS
        env = container.fields.get("env")
        for index, entry in enumerate(env if isinstance(env, list) else ()):
            if is_mapping(entry):
                yield from _env_key_reasons(
                    entry, f"{container.path}.env[{index}]", moved, injected, held, shown
                )
        env_from = container.fields.get("envFrom")
        for index, entry in enumerate(env_from if isinstance(env_from, list) else ()):
            name = mapping_at(entry, "secretRef").get("name")
            if isinstance(name, str) and name in held_secrets and not moved:
                yield Reason(
                    rule=RULE_PROVIDER_KEY,
                    path=f"{container.path}.envFrom[{index}].secretRef.name",
                    message=f"loads Secret {quote(name)}, which holds a provider key of "
                    f"AIWorkload {shown}, into the app's environment"
                    + ("" if injected else _NOT_INJECTED_NOTE),
                    fix=_key_fix(injected, "remove this envFrom entry"),
                )
        mounts = container.fields.get("volumeMounts")
        for index, mount in enumerate(mounts if isinstance(mounts, list) else ()):
            volume = text_at(mount, "name")
            if volume in pod.key_volumes:
                yield Reason(
                    rule=RULE_PROVIDER_KEY,
                    path=f"{container.path}.volumeMounts[{index}]",
                    message=f"mounts volume {quote(volume)}, which holds Secret "
                    f"{quote(pod.key_volumes[volume])} with a provider key of AIWorkload {shown}, "
                    "into the app",
                    fix=_key_fix(injected, "remove the mount"),
                )


def _key_fix(injected: bool, action: str) -> str:
    if injected:
        return f"{action}; the app reaches the provider through the gateway, which holds the key"
    return (
        f"{action}, or let aigis inject the gateway (spec.gateway.inject: true and no "
        f"{OPT_OUT_ANNOTATION} opt-out) so that it holds the key"
    )


def _env_key_reasons(
    entry: Mapping[str, Any],
    path: str,
    moved: bool,
    injected: bool,
    held: Mapping[tuple[str, str], str],
    shown: str,
) -> Iterator[Reason]:
    variable = text_at(entry, "name")
    value_from = entry.get("valueFrom")
    if value_from is None:
        yield from _literal_key_reasons(variable, entry.get("value"), path, shown)
        return
    ref = mapping_at(value_from, "secretKeyRef")
    secret, key = ref.get("name"), ref.get("key")
    if isinstance(secret, str) and isinstance(key, str):
        if (secret, key) in held:
            if not moved:
                yield Reason(
                    rule=RULE_PROVIDER_KEY,
                    path=f"{path}.valueFrom.secretKeyRef",
                    message=f"gives the app the {held[secret, key]} key of AIWorkload {shown} "
                    f"(Secret {quote(secret)}, key {quote(key)})"
                    + ("" if injected else _NOT_INJECTED_NOTE),
                    fix=_key_fix(injected, "remove this env entry"),
                )
            return
        if secret in {name for name, _ in held}:
            yield Reason(
                rule=RULE_PROVIDER_KEY,
                path=f"{path}.valueFrom.secretKeyRef",
                message=f"reads key {quote(key)} of Secret {quote(secret)}, which holds a "
                f"provider key of AIWorkload {shown}; the gateway injection moves only the keys "
                "listed in spec.gateway.providerKeys",
                fix="keep provider keys in a Secret of their own, or list this key in "
                "spec.gateway.providerKeys",
            )
            return
        provider = PROVIDER_KEY_VARIABLES.get(variable) or PROVIDER_KEY_VARIABLES.get(key)
        if injected and provider is not None:
            yield Reason(
                rule=RULE_PROVIDER_KEY,
                path=f"{path}.valueFrom.secretKeyRef",
                message=f"gives the app its own {provider} API key (Secret {quote(secret)}), "
                "so its calls could bypass the gateway",
                fix=f"list the key in spec.gateway.providerKeys of AIWorkload {shown} and remove "
                "this env entry; the gateway then holds it",
            )


def _literal_key_reasons(variable: str, value: object, path: str, shown: str) -> Iterator[Reason]:
    provider = PROVIDER_KEY_VARIABLES.get(variable)
    if (
        provider is not None
        and isinstance(value, str)
        and value
        and value != KEY_PLACEHOLDER
        and not is_placeholder(value)
    ):
        yield Reason(
            rule=RULE_PROVIDER_KEY,
            path=f"{path}.value",
            message=f"holds a literal {provider} API key in the manifest, readable by anyone "
            "who can read the pod",
            fix="store the key in a Secret, list it in spec.gateway.providerKeys of AIWorkload "
            f"{shown}, and remove the value",
        )


def token_automount(pod: CoveredPod) -> Iterator[Reason]:
    """A ServiceAccount token the workload does not declare (see the module docstring)."""
    if pod.model is not None and pod.model.service_account_token:
        return
    spec, shown = pod.template.spec, pod.shown
    if spec.get("automountServiceAccountToken") is not False:
        yield Reason(
            rule=RULE_TOKEN_AUTOMOUNT,
            path=f"{pod.template.spec_path}.automountServiceAccountToken",
            message="the pod gets a ServiceAccount token, so the AI workload (and anyone who "
            f"steers it, e.g. by prompt injection) can call the Kubernetes API, which AIWorkload "
            f"{shown} does not declare",
            fix="set automountServiceAccountToken: false in the pod spec, or declare "
            f"serviceAccountToken: true in AIWorkload {shown} if it needs the API",
        )
    volumes = spec.get("volumes")
    for index, volume in enumerate(volumes if isinstance(volumes, list) else ()):
        sources = mapping_at(volume, "projected").get("sources")
        for j, source in enumerate(sources if isinstance(sources, list) else ()):
            if isinstance(source, Mapping) and "serviceAccountToken" in source:
                yield Reason(
                    rule=RULE_TOKEN_AUTOMOUNT,
                    path=f"{pod.template.spec_path}.volumes[{index}].projected.sources[{j}]"
                    ".serviceAccountToken",
                    message="projects a ServiceAccount token into the pod, so the AI workload "
                    f"can call the Kubernetes API, which AIWorkload {shown} does not declare",
                    fix="remove the serviceAccountToken projection, or declare "
                    f"serviceAccountToken: true in AIWorkload {shown}",
                )


FAMILY: Final = Family(
    name=_FAMILY,
    title="Credentials in the app",
    summary="What an AI workload's app containers can read: provider API keys belong to the "
    "gateway, and a Kubernetes API token only to workloads that declare they need one.",
    rules=(
        Rule(
            id=RULE_PROVIDER_KEY,
            title="Provider API key reachable by the app",
            checks="No app container reads a provider key of the workload: through an env entry "
            "the gateway injection does not move, envFrom, a volume, another key of a key "
            "Secret, its own provider key variable, or a literal key in the manifest.",
            fix="Keep the key in a Secret, list it in spec.gateway.providerKeys, and let the "
            "injected gateway hold it; remove what else exposes it to the app.",
            family=_FAMILY,
            check=provider_keys_in_app,
        ),
        Rule(
            id=RULE_TOKEN_AUTOMOUNT,
            title="Undeclared ServiceAccount token",
            checks="Unless the AIWorkload declares serviceAccountToken: true, the pod sets "
            "automountServiceAccountToken: false and projects no token itself: an AI workload "
            "steered by prompt injection could otherwise call the Kubernetes API.",
            fix="Set automountServiceAccountToken: false in the pod spec, or declare "
            "serviceAccountToken: true in the AIWorkload if it needs the API.",
            family=_FAMILY,
            check=token_automount,
        ),
    ),
)
