"""The gateway sidecar is aigis's alone: nothing else may pose as it, read its files or mount its
volumes.

Decisions (and why):
- Only a Pod in the webhook can hold aigis's gateway: the one `aigis-gateway` container, an init
  container, equal field by field to what `render_gateway` renders for the covering workload with
  the webhook's `InjectionSettings` (compared as the API server stores it, see
  `gateway_differences`). Every other container of that name (in a pod template, in a manifest
  offline, a second one, one in `containers` or `ephemeralContainers`, one with another command,
  env, mount or image) is refused: the injection skips a pod that already has one, so a
  look-alike would keep the key in the app. Refusing is simpler than replacing it and says
  plainly what to remove. Only the real gateway is exempt from the image and key rules.
- The gateway's volumes are its alone: no other container may mount a volume holding the audit
  key (found by the Secret it holds, whatever the volume is called), a volume the gateway mounts,
  or a volume the pod does not define under a name only the injection would create. Volumes
  holding provider keys are reported as keys (`aigis.admission.rules.secrets`).
- `shareProcessNamespace: true` is refused on every pod that gets the gateway, and so is an
  ephemeral container targeting the gateway: both let another container read the gateway's files
  (keys, audit key) through /proc/<pid>/root.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from aigis.admission.mutation import (
    GATEWAY_CONTAINER,
    InjectionSettings,
    gateway_differences,
    render_gateway,
    reserved_volume_name,
)
from aigis.admission.reading import entries, quote, text_at
from aigis.admission.reasons import Reason
from aigis.admission.rules.containers import containers, volumes_exposing
from aigis.admission.rules.pod import CoveredPod, GatewaySidecar
from aigis.admission.rules.rule import Family, Rule
from aigis.admission.templates import PodTemplate
from aigis.api.aiworkload import AIWorkloadSpec
from aigis.gateway.identity import audit_key_secret_name

RULE_GATEWAY_IMPOSTOR: Final = "gateway/impostor"
RULE_GATEWAY_VOLUME: Final = "gateway/volume-in-app"
RULE_GATEWAY_DEBUG_TARGET: Final = "gateway/debug-target"
RULE_SHARE_PROCESS_NAMESPACE: Final = "gateway/share-process-namespace"

_FAMILY: Final = "gateway"


def find_gateway(
    template: PodTemplate,
    workload_name: str,
    model: AIWorkloadSpec,
    will_inject: bool,
    injection: InjectionSettings | None,
) -> GatewaySidecar:
    """Find the gateway: the one `aigis-gateway` container that equals what the injection renders
    for this workload, in a Pod the webhook (`injection` set) sees after injection. Every other
    container of that name is a `gateway/impostor` finding (see the module docstring)."""
    named = [c for c in containers(template) if c.fields.get("name") == GATEWAY_CONTAINER]
    if not named:
        return GatewaySidecar()
    if not template.is_pod:
        why = "aigis adds the gateway to each pod when it is created, so one in a pod template "
        why += "is someone else's"
    elif injection is None:
        why = "aigis adds the gateway when the pod is created, so one in a manifest is someone "
        why += "else's"
    elif not will_inject:
        why = "aigis injects no gateway into this pod (spec.gateway.inject is false, the pod "
        why += "opted out, or it is a Windows pod)"
    elif len(named) > 1:
        why = f"the pod has {len(named)} containers of that name"
    elif named[0].list_name != "initContainers":
        why = f"it is in {named[0].list_name}; aigis's gateway is an init container"
    else:
        expected = render_gateway(workload_name, model, injection)
        differences = gateway_differences(named[0].fields, template.spec.get("volumes"), expected)
        if not differences:
            mounts = entries(named[0].fields, "volumeMounts")
            volumes = frozenset(text_at(m, "name") for m in mounts)
            return GatewaySidecar(path=named[0].path, volumes=volumes)
        why = "it differs from the gateway aigis renders for AIWorkload "
        why += f"{quote(workload_name)} in {', '.join(differences)}"
    return GatewaySidecar(
        reasons=tuple(
            Reason(
                rule=RULE_GATEWAY_IMPOSTOR,
                path=container.path,
                message=f"is named {GATEWAY_CONTAINER!r} but is not the gateway aigis injects: "
                + why,
                fix=f"remove this container; aigis injects the gateway itself (rename it if it "
                f"is an app container that happens to be called {GATEWAY_CONTAINER!r})",
            )
            for container in named
        )
    )


def gateway_impostors(pod: CoveredPod) -> Iterator[Reason]:
    """The containers `find_gateway` found posing as the gateway."""
    yield from pod.gateway.reasons


def gateway_volumes(pod: CoveredPod) -> Iterator[Reason]:
    """The gateway's volumes are its alone: the audit key (whatever the volume is called), every
    volume the injected gateway mounts, and a name only the injection would create."""
    if pod.valid_model is None:
        return
    template = pod.template
    audit_secret = audit_key_secret_name(pod.workload)
    audit_volumes = volumes_exposing(template, {audit_secret})
    defined = {text_at(v, "name") for v in entries(template.spec, "volumes")}
    for container in containers(template, pod.gateway.path):
        for index, mount in enumerate(entries(container.fields, "volumeMounts")):
            volume = text_at(mount, "name")
            path = f"{container.path}.volumeMounts[{index}]"
            if volume in pod.key_volumes:
                continue
            if volume in audit_volumes:
                message = f"mounts volume {quote(volume)}, which holds the gateway's audit key "
                message += f"(Secret {quote(audit_secret)}): with it, audit records can be forged"
                fix = "remove the mount; only the gateway may read the audit key"
            elif volume in pod.gateway.volumes:
                message = f"mounts volume {quote(volume)}, which the injected gateway mounts"
                fix = "remove the mount; the gateway's volumes are its alone"
            elif volume not in defined and reserved_volume_name(volume):
                message = f"mounts volume {quote(volume)}, which the pod does not define: only "
                message += "aigis's injection would create a volume of that name, for the gateway"
                fix = "remove the mount, or define a volume of your own under a name that does "
                fix += "not start with aigis-"
            else:
                continue
            yield Reason(rule=RULE_GATEWAY_VOLUME, path=path, message=message, fix=fix)


def debug_targets(pod: CoveredPod) -> Iterator[Reason]:
    """Ephemeral containers that target the gateway's process namespace."""
    if pod.valid_model is None:
        return
    template = pod.template
    for index, entry in enumerate(entries(template.spec, "ephemeralContainers")):
        if text_at(entry, "targetContainerName") == GATEWAY_CONTAINER:
            yield Reason(
                rule=RULE_GATEWAY_DEBUG_TARGET,
                path=f"{template.spec_path}.ephemeralContainers[{index}].targetContainerName",
                message="shares the process namespace of the gateway, whose files (provider keys, "
                "audit key) it could then read through /proc/<pid>/root",
                fix="target an app container instead (kubectl debug --target=<app container>)",
            )


def shared_process_namespace(pod: CoveredPod) -> Iterator[Reason]:
    """`shareProcessNamespace: true` on a pod that gets the gateway."""
    if pod.will_inject and pod.template.spec.get("shareProcessNamespace") is True:
        yield Reason(
            rule=RULE_SHARE_PROCESS_NAMESPACE,
            path=f"{pod.template.spec_path}.shareProcessNamespace",
            message="puts every container of the pod into one process namespace, so the app "
            "could read the gateway's files (its provider keys and audit key) through "
            "/proc/<pid>/root",
            fix="remove spec.shareProcessNamespace or set it to false: a pod aigis injects the "
            "gateway into cannot share its process namespace",
        )


FAMILY: Final = Family(
    name=_FAMILY,
    title="The gateway sidecar",
    summary="The gateway aigis injects holds the provider keys and the audit key; these rules "
    "keep every other container away from it and its files.",
    rules=(
        Rule(
            id=RULE_GATEWAY_IMPOSTOR,
            title="Container posing as the gateway",
            checks="Every container named aigis-gateway is the one aigis injected: an init "
            "container of a Pod, equal field by field to what aigis renders for the covering "
            "AIWorkload. One in a template or manifest, a second one, or a modified one is not.",
            fix="Remove the container (aigis injects the gateway itself), or rename it if it is "
            "an app container that happens to share the name.",
            family=_FAMILY,
            check=gateway_impostors,
        ),
        Rule(
            id=RULE_GATEWAY_DEBUG_TARGET,
            title="Debug container targeting the gateway",
            checks="No ephemeral container targets the gateway container: it would share the "
            "gateway's process namespace and could read its keys through /proc/<pid>/root.",
            fix="Target an app container instead (kubectl debug --target=<app container>).",
            family=_FAMILY,
            check=debug_targets,
        ),
        Rule(
            id=RULE_SHARE_PROCESS_NAMESPACE,
            title="Shared process namespace with the gateway",
            checks="A pod that gets the gateway does not set shareProcessNamespace: true, which "
            "would let the app read the gateway's files through /proc/<pid>/root.",
            fix="Remove spec.shareProcessNamespace or set it to false.",
            family=_FAMILY,
            check=shared_process_namespace,
        ),
        Rule(
            id=RULE_GATEWAY_VOLUME,
            title="App container mounting the gateway's volumes",
            checks="No container but the gateway mounts a volume holding the gateway's audit "
            "key, a volume the gateway mounts, or an undefined volume under a name only aigis's "
            "injection creates (aigis-...).",
            fix="Remove the mount; the gateway's volumes are its alone.",
            family=_FAMILY,
            check=gateway_volumes,
        ),
    ),
)
