"""Pod mutation: the JSON Patch that puts the aigis gateway into a pod an AIWorkload covers.

`render_pod_patch` owns what an injected pod looks like: the gateway as a native sidecar, its
config and key volumes, the app containers' environment that routes their SDKs through it, the
move of provider keys from the app to the gateway, and the labels, annotations and finalizer that
mark the pod. The admission server decides *whether* a pod is covered (selectors, namespaces) and
calls this on Pod CREATE; the operator renders the ConfigMap the sidecar mounts
(`aigis.gateway.config`). Both sides share the names from that module, so a mounted path cannot
drift from the path the gateway config names.

Decisions, and why:
- The gateway is the first init container with `restartPolicy: Always` (Kubernetes >= 1.29). The
  kubelet starts it before every other init container and the app, moves on only once its startup
  probe passes, and stops it after the app containers have exited, so Jobs still complete. On
  older clusters the API server drops the field and the pod would hang in Init: aigis requires
  1.29.
- The probes use HTTP on the metrics listener: the app-facing port listens on loopback only (the
  gateway is the pod's own proxy), which the kubelet, connecting to the pod IP, cannot reach.
- App containers are `spec.containers` and the ordinary init containers. The gateway starts first,
  so ordinary init containers (a model download, a migration) run with it up and are governed like
  the app. Other native sidecars (a mesh proxy, a log shipper) are infrastructure: they get no proxy
  settings, which could loop their traffic, but lose provider keys like everyone else.
- aigis wins for the variables it sets: `OPENAI_BASE_URL`, `OPENAI_API_BASE`, `ANTHROPIC_BASE_URL`
  and the proxy variables are overwritten in place whatever the user had, because routing the app
  through the gateway is the point of the injection. `NO_PROXY` is merged instead: the loopback
  and cluster-local names come first and the user's own entries are kept; a `NO_PROXY` that comes
  from a ConfigMap or Secret is kept under `AIGIS_ORIGINAL_<name>` and referenced as `$(...)`,
  which the kubelet expands. Values from `envFrom` cannot be read at admission and are overridden.
- Other providers' native SDKs (Azure's deployment paths, Cohere, Gemini, Mistral) have no
  base-URL variable the gateway could serve; their calls take the HTTPS proxy, where the gateway
  refuses LLM hosts with a message saying to use its `/v1` routes through an OpenAI-compatible SDK.
- Provider keys: an `env` entry referencing a declared Secret key keeps its name and gets a
  placeholder value in place (later `$(KEY)` references then see the placeholder); an `envFrom` of
  a declared Secret is removed, which also drops that Secret's other keys, so provider keys belong
  in a Secret of their own. The OpenAI and Anthropic SDKs refuse to start without a key, so the
  placeholder is also set for the variable they read when the workload uses such a provider. Keys
  mounted as files in the app are not touched here; the validating side reports them.
- Audit: the gateway also gets the workload's audit key (Secret `aigis-audit-<workload>`, key
  `hmac-key`, read-only at `AUDIT_KEY_DIR`), an emptyDir of 1Mi for its chain state at
  `AUDIT_STATE_DIR`, the flags that name both, and the pod's name, namespace and UID from the
  downward API (`aigis.gateway.identity` is the contract). No other container mounts them.
- Volume names: the gateway's volumes get the first of `aigis-gateway-config`,
  `aigis-gateway-config-2`, ... that no volume has and no container of any list mounts; a container
  that mounted a name the injection then created would otherwise receive the gateway's keys.
- Idempotency: a pod that already has a container named `aigis-gateway` gets no patch. Either it
  is the gateway this injection rendered (a reinvocation, then the patch would be empty anyway),
  or it is someone else's, which the validating side refuses: it accepts only a container equal
  to `render_gateway`'s (`gateway_differences`). The `aigis.dev/injected` annotation alone does not
  count: it can be copied into a pod template to skip injection. Every operation
  that is not idempotent (an insert, an append, a removal by index) is pinned by a leading `test`
  of the list or element it depends on, so the patch applies only to the pod it was computed for:
  applied twice, it fails as a whole instead of duplicating entries or removing the wrong one.
- Bad input never raises: a pod whose patched parts have the wrong types, a Windows pod (the
  gateway is a Linux image), a pod without containers, or a name clash gets `[]`, and the
  validating side explains what is missing.

Pure: no I/O, clock or environment. Must not import the webhook server or the Kubernetes client.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aigis.admission.reading import text
from aigis.api.aiworkload import MAX_GATEWAY_WORKERS, AIWorkload, AIWorkloadSpec, Provider
from aigis.gateway.config import (
    CONFIG_FILE_NAME,
    DEFAULT_KEY_DIR,
    PROVIDER_ENDPOINTS,
    gateway_config_map_name,
)
from aigis.gateway.identity import (
    AUDIT_KEY_DIR,
    AUDIT_KEY_FILE,
    AUDIT_KEY_FLAG,
    AUDIT_KEY_SECRET_KEY,
    AUDIT_STATE_DIR,
    AUDIT_STATE_FLAG,
    POD_NAME_ENV,
    POD_NAMESPACE_ENV,
    POD_UID_ENV,
    audit_key_secret_name,
)

INJECTED_ANNOTATION: Final = "aigis.dev/injected"
"""Set to "true" on every injected pod, for people and dashboards (idempotency reads the
container)."""
CONFIG_HASH_ANNOTATION: Final = "aigis.dev/gateway-config-hash"
"""The hash of the gateway config the pod was injected with."""
OPT_OUT_ANNOTATION: Final = "aigis.dev/inject"
"""`"false"` skips injection, honoured only where the cluster policy allows opting out."""
FORENSICS_FINALIZER: Final = "aigis.dev/forensics"
"""Holds a terminating pod until its evidence bundle is captured."""
GATEWAY_CONTAINER: Final = "aigis-gateway"
"""Name of the injected sidecar."""
WORKLOAD_LABEL: Final = "aigis.dev/workload"
"""The covering AIWorkload's name (shortened with a hash to fit a label value)."""
KEY_PLACEHOLDER: Final = "aigis-gateway-holds-the-key"
"""What app containers see instead of a provider key; the gateway drops it and sends the real
one."""
GATEWAY_CONFIG_DIR: Final = "/etc/aigis/gateway"
"""Where the gateway's ConfigMap is mounted (a directory, so ConfigMap updates reach the file)."""
ORIGINAL_ENV_PREFIX: Final = "AIGIS_ORIGINAL_"
"""Prefix under which a user's `NO_PROXY` from a ConfigMap or Secret is kept and referenced."""

CONFIG_VOLUME: Final = "aigis-gateway-config"
KEYS_VOLUME: Final = "aigis-provider-keys"
AUDIT_KEY_VOLUME: Final = "aigis-audit-key"
AUDIT_STATE_VOLUME: Final = "aigis-audit-state"
CLASSIFIER_VOLUME: Final = "aigis-classifier"
GATEWAY_VOLUMES: Final = (
    CONFIG_VOLUME,
    KEYS_VOLUME,
    AUDIT_KEY_VOLUME,
    AUDIT_STATE_VOLUME,
    CLASSIFIER_VOLUME,
)
"""The names the injection gives the gateway's volumes, before a `-2`, `-3`, ... suffix that
keeps them clear of every name the pod already uses (`reserved_volume_name` recognises both)."""
METRICS_PORT_NAME: Final = "aigis-metrics"
AUDIT_STATE_SIZE_LIMIT: Final = "1Mi"
"""The gateway's audit state is a hash and a sequence number: a megabyte is plenty."""
SECRET_FILE_MODE: Final = 0o444
"""Keys are owned by root and read by the gateway's non-root user: readable, never writable."""

_OPENAI_SDK_KEY: Final = "OPENAI_API_KEY"
_ANTHROPIC_SDK_KEY: Final = "ANTHROPIC_API_KEY"
_NO_PROXY_NAMES: Final = ("NO_PROXY", "no_proxy")
_PROXY_NAMES: Final = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
_MAX_LABEL_VALUE: Final = 63
# Names the kubelet accepts for variables from `envFrom` on every supported version.
_ENV_NAME: Final = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_SUFFIXED: Final = re.compile(r"(?P<stem>.+)-[0-9]+")
_PROBES: Final = ("startupProbe", "readinessProbe", "livenessProbe")
_PROBE_HANDLERS: Final = ("exec", "httpGet", "tcpSocket", "grpc")
# Fields the gateway never sets: any value in a container claiming to be it is someone else's.
_UNSET_FIELDS: Final = ("args", "envFrom", "lifecycle", "volumeDevices", "workingDir")
# Volume sources whose `defaultMode` the API server sets to 0644 when it is missing.
_DEFAULT_MODE_SOURCES: Final = ("configMap", "secret", "projected", "downwardAPI")
_API_DEFAULT_MODE: Final = 0o644
_POD_IDENTITY: Final = (
    (POD_NAME_ENV, "metadata.name"),
    (POD_NAMESPACE_ENV, "metadata.namespace"),
    (POD_UID_ENV, "metadata.uid"),
)


@dataclass(frozen=True, slots=True)
class InjectionSettings:
    """How the gateway sidecar is built: the cluster-wide choices, read once from flags."""

    gateway_image: str
    """The aigis image; the sidecar runs its `aigis gateway` command."""
    gateway_port: int = 15080
    """Loopback port the app reaches the gateway on (its base URLs and proxy)."""
    metrics_port: int = 15091
    """Port of `/metrics`, `/healthz` and `/readyz`, which the kubelet probes and Prometheus
    scrapes. Not 15090: Istio's Envoy serves its metrics there, and meshed pods would clash."""
    metrics_host: str = "0.0.0.0"  # noqa: S104 - probes and scrapes arrive on the pod IP
    """Address the metrics listener binds; `0.0.0.0` so the kubelet and Prometheus reach it."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy of the gateway image."""
    run_as_user: int | None = 65532
    """Numeric non-root user of the gateway, so `runAsNonRoot` can be verified by the kubelet
    whatever user the image names; None leaves it to the image."""
    default_requests: Mapping[str, str] = field(
        default_factory=lambda: {"cpu": "50m", "memory": "64Mi"}
    )
    """Requests when the AIWorkload sets no gateway resources."""
    default_limits: Mapping[str, str] = field(default_factory=lambda: {"memory": "256Mi"})
    """Limits when the AIWorkload sets no gateway resources (no CPU limit: throttling would add
    latency to every model call)."""
    cluster_domain: str = "cluster.local"
    """The cluster's DNS domain; names under it bypass the proxy."""
    extra_no_proxy: tuple[str, ...] = ()
    """More `NO_PROXY` entries for every app, e.g. the pod and service CIDRs."""

    def __post_init__(self) -> None:
        for name in ("gateway_port", "metrics_port"):
            port = getattr(self, name)
            if not 1 <= port <= 65535:
                raise ValueError(f"{name} {port} is not a port (1-65535)")
        if self.gateway_port == self.metrics_port:
            raise ValueError(f"gateway_port and metrics_port are both {self.gateway_port}")
        if not self.gateway_image:
            raise ValueError("gateway_image is empty; set the aigis image to inject")

    @property
    def gateway_url(self) -> str:
        """The URL the app containers reach the gateway at."""
        return f"http://127.0.0.1:{self.gateway_port}"


def render_pod_patch(
    pod: Mapping[str, Any],
    workload: AIWorkload,
    *,
    settings: InjectionSettings,
    config_hash: str,
    opt_out_allowed: bool,
) -> list[dict[str, Any]]:
    """The RFC 6902 operations that inject `workload`'s gateway into `pod`; [] when none apply.

    `pod` is the Pod object of an AdmissionReview, which `workload` covers (the caller matched the
    selector). `config_hash` identifies the gateway config the operator rendered, stamped on the
    pod so a stale sidecar can be found. Nothing is injected when the workload turns the gateway
    off, when the pod opts out with `aigis.dev/inject: "false"` and `opt_out_allowed`, when the pod
    already has the gateway, or when the pod cannot be patched safely (see the module docstring).
    """
    if not workload.spec.gateway.inject or not workload.metadata.name:
        return []
    try:
        return _render(pod, workload, settings, config_hash, opt_out_allowed)
    except _MalformedError:
        return []


class _MalformedError(Exception):
    """A part of the pod the patch must touch has the wrong type: patching it could not apply."""


# Reading plain data: absent and null read as None; a present value of the wrong type is malformed.


def _mapping(value: object) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, Mapping):
        return value
    raise _MalformedError


def _mappings(value: object) -> list[Mapping[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise _MalformedError
    return value


def _pointer(*parts: str | int) -> str:
    """A JSON Pointer; `~` and `/` inside a part (annotation keys) are escaped as RFC 6901 says."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


@dataclass(slots=True)
class _Patch:
    """Operations, with the `test`s that pin non-idempotent ones collected to run first."""

    pins: list[dict[str, Any]] = field(default_factory=list)
    ops: list[dict[str, Any]] = field(default_factory=list)

    def pin(self, path: str, value: Any) -> None:
        self.pins.append({"op": "test", "path": path, "value": value})

    def add(self, path: str, value: Any) -> None:
        self.ops.append({"op": "add", "path": path, "value": value})

    def replace(self, path: str, value: Any) -> None:
        self.ops.append({"op": "replace", "path": path, "value": value})

    def remove(self, path: str) -> None:
        self.ops.append({"op": "remove", "path": path})

    def extend(self, path: str, current: Sequence[Any] | None, items: Sequence[Any]) -> None:
        """Append `items` to the list at `path`, creating it when absent.

        Creating a whole list with `add` is idempotent; appending is not, so it is pinned to the
        whole list as it was: only a `test` of the list itself sees that it grew (its last
        element is still in place after an append).
        """
        if not items:
            return
        if current is None:
            self.add(path, list(items))
            return
        self.pin(path, list(current))
        for item in items:
            self.add(f"{path}/-", item)

    def result(self) -> list[dict[str, Any]]:
        return [*self.pins, *self.ops]


@dataclass(frozen=True, slots=True)
class _Keys:
    """The provider keys the gateway holds, as the app containers would reference them."""

    refs: frozenset[tuple[str, str]]
    """(Secret name, key) of every declared provider key."""
    by_secret: Mapping[str, tuple[str, ...]]
    """Secret name -> its declared keys."""
    files: tuple[tuple[Provider, str, str], ...]
    """(provider, Secret name, key) mounted as `<key dir>/<provider>`; the first key wins for a
    provider, because the gateway reads one file per provider and duplicate paths would make the
    API server refuse the pod."""
    sdk_keys: tuple[str, ...]
    """Key variables the SDKs pointed at the gateway insist on."""


def _read_keys(spec: AIWorkloadSpec) -> _Keys:
    gateway = spec.gateway
    by_secret: dict[str, list[str]] = {}
    files: dict[Provider, tuple[Provider, str, str]] = {}
    for key in gateway.provider_keys:
        ref = key.secret_ref
        by_secret.setdefault(ref.name, [])
        if ref.key not in by_secret[ref.name]:
            by_secret[ref.name].append(ref.key)
        files.setdefault(key.provider, (key.provider, ref.name, ref.key))
    providers = {key.provider for key in gateway.provider_keys}
    providers.update(model.provider for model in spec.models)
    formats = {PROVIDER_ENDPOINTS[provider].wire_format for provider in providers}
    sdk_keys = tuple(
        name
        for name, wire_format in ((_OPENAI_SDK_KEY, "openai"), (_ANTHROPIC_SDK_KEY, "anthropic"))
        if wire_format in formats
    )
    return _Keys(
        refs=frozenset((k.secret_ref.name, k.secret_ref.key) for k in gateway.provider_keys),
        by_secret={name: tuple(keys) for name, keys in by_secret.items()},
        files=tuple(files.values()),
        sdk_keys=sdk_keys,
    )


def _render(
    pod: Mapping[str, Any],
    workload: AIWorkload,
    settings: InjectionSettings,
    config_hash: str,
    opt_out_allowed: bool,
) -> list[dict[str, Any]]:
    if not isinstance(pod, Mapping):
        return []
    metadata = _mapping(pod.get("metadata"))
    spec = _mapping(pod.get("spec"))
    if spec is None:
        return []
    annotations = _mapping(metadata.get("annotations")) if metadata is not None else None
    if (
        opt_out_allowed
        and annotations is not None
        and text(annotations.get(OPT_OUT_ANNOTATION)).strip().lower() == "false"
    ):
        return []
    pod_os = _mapping(spec.get("os"))
    if pod_os is not None and text(pod_os.get("name")) == "windows":
        return []
    containers = _mappings(spec.get("containers"))
    init_containers = _mappings(spec.get("initContainers"))
    ephemeral = _mappings(spec.get("ephemeralContainers"))
    everyone = [*(containers or ()), *(init_containers or ()), *(ephemeral or ())]
    if not containers or any(text(c.get("name")) == GATEWAY_CONTAINER for c in everyone):
        return []

    keys = _read_keys(workload.spec)
    patch = _Patch()
    app_env = _app_env(workload, settings)
    for index, container in enumerate(containers):
        _patch_container(patch, _pointer("spec", "containers", index), container, keys, app_env)
    for index, container in enumerate(init_containers or ()):
        sidecar = container.get("restartPolicy") == "Always"
        path = _pointer("spec", "initContainers", index)
        _patch_container(patch, path, container, keys, None if sidecar else app_env)

    volumes = _mappings(spec.get("volumes"))
    # A name some container already mounts is taken too: a container mounting a volume that
    # only the injection would create would otherwise receive the gateway's keys.
    taken = {text(volume.get("name")) for volume in volumes or ()}
    for container in everyone:
        taken.update(text(m.get("name")) for m in _mappings(container.get("volumeMounts")) or ())
    sidecar_parts = render_gateway(workload.metadata.name or "", workload.spec, settings)
    names: dict[str, str] = {}
    for volume in sidecar_parts.volumes:
        names[volume["name"]] = _free_name(volume["name"], taken)
        taken.add(names[volume["name"]])
    new_volumes = [{**volume, "name": names[volume["name"]]} for volume in sidecar_parts.volumes]
    gateway = dict(sidecar_parts.container)
    gateway["volumeMounts"] = [
        {**mount, "name": names[mount["name"]]} for mount in sidecar_parts.container["volumeMounts"]
    ]
    port_names = {
        text(port.get("name"))
        for container in everyone
        for port in _mappings(container.get("ports")) or ()
    }
    if port_names & {text(port.get("name")) for port in gateway["ports"]}:
        # Port names are unique per pod: a user's own `aigis-metrics` port keeps its name.
        gateway["ports"] = [
            {k: v for k, v in port.items() if k != "name"} for port in gateway["ports"]
        ]
    init_path = _pointer("spec", "initContainers")
    if init_containers is None:
        patch.add(init_path, [gateway])
    else:
        # Inserting first shifts every init container: pinned to the one it displaces.
        if init_containers:
            patch.pin(f"{init_path}/0", init_containers[0])
        else:
            patch.pin(init_path, [])
        patch.add(f"{init_path}/0", gateway)
    patch.extend(_pointer("spec", "volumes"), volumes, new_volumes)
    _patch_metadata(patch, metadata, workload, config_hash)
    return patch.result()


def metrics_port_name(worker: int) -> str:
    """The name of gateway worker `worker`'s metrics port (the PodMonitor scrapes these)."""
    return METRICS_PORT_NAME if worker == 0 else f"{METRICS_PORT_NAME}-{worker}"


_METRICS_PORT_NAMES: Final = frozenset(metrics_port_name(i) for i in range(MAX_GATEWAY_WORKERS))


def _free_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted-2`, `wanted-3`, ... when the pod already uses the name."""
    name, suffix = wanted, 2
    while name in taken:
        name, suffix = f"{wanted}-{suffix}", suffix + 1
    return name


def reserved_volume_name(name: str) -> bool:
    """Whether the injection may give a volume of the gateway this name (with or without the
    suffix that keeps it free)."""
    suffixed = _SUFFIXED.fullmatch(name)
    return name in GATEWAY_VOLUMES or (
        suffixed is not None and suffixed.group("stem") in GATEWAY_VOLUMES
    )


@dataclass(frozen=True, slots=True)
class GatewaySidecar:
    """The gateway container and the volumes it mounts, under their unsuffixed names."""

    container: Mapping[str, Any]
    volumes: tuple[Mapping[str, Any], ...]


def render_gateway(
    workload_name: str, spec: AIWorkloadSpec, settings: InjectionSettings
) -> GatewaySidecar:
    """The gateway sidecar of a workload, as the injection adds it to every pod it covers.

    The one definition of the gateway: the injection renames the volumes to names free in the
    pod, and the validating side (`gateway_differences`) accepts an `aigis-gateway` container
    only when it equals this.
    """
    keys = _read_keys(spec)
    volumes: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "configMap": {"name": gateway_config_map_name(workload_name)}}
    ]
    mounts = [{"name": CONFIG_VOLUME, "mountPath": GATEWAY_CONFIG_DIR, "readOnly": True}]
    if keys.files:
        volumes.append(_keys_volume(KEYS_VOLUME, keys))
        mounts.append({"name": KEYS_VOLUME, "mountPath": DEFAULT_KEY_DIR, "readOnly": True})
    volumes.append(
        {
            "name": AUDIT_KEY_VOLUME,
            "secret": {
                "secretName": audit_key_secret_name(workload_name),
                "items": [{"key": AUDIT_KEY_SECRET_KEY, "path": AUDIT_KEY_SECRET_KEY}],
                "defaultMode": SECRET_FILE_MODE,
            },
        }
    )
    mounts.append({"name": AUDIT_KEY_VOLUME, "mountPath": AUDIT_KEY_DIR, "readOnly": True})
    # The chain state survives a restart of the gateway container, not of the pod.
    volumes.append({"name": AUDIT_STATE_VOLUME, "emptyDir": {"sizeLimit": AUDIT_STATE_SIZE_LIMIT}})
    mounts.append({"name": AUDIT_STATE_VOLUME, "mountPath": AUDIT_STATE_DIR})
    classifier = _classifier_volume(spec)
    if classifier is not None:
        source, mount_path = classifier
        volumes.append({"name": CLASSIFIER_VOLUME, **source})
        mounts.append({"name": CLASSIFIER_VOLUME, "mountPath": mount_path, "readOnly": True})
    return GatewaySidecar(_gateway_container(spec, settings, mounts), tuple(volumes))


def _classifier_volume(spec: AIWorkloadSpec) -> tuple[dict[str, Any], str] | None:
    """The volume source and mount path of the workload's prompt-injection classifier, if any.

    Validation (`aigis.api.validation`) keeps the path under /models/ and requires the volume
    whenever the gateway is injected; a spec without one gets no volume here.
    """
    classifier = spec.guardrails.prompt_injection.active_classifier
    if classifier is None or classifier.volume is None:
        return None
    volume = classifier.volume
    if volume.image is not None:
        source: dict[str, Any] = {
            "image": {"reference": volume.image, "pullPolicy": "IfNotPresent"}
        }
    else:
        source = {
            "persistentVolumeClaim": {
                "claimName": volume.persistent_volume_claim,
                "readOnly": True,
            }
        }
    return source, classifier.path


def gateway_differences(
    container: Mapping[str, Any], volumes: object, expected: GatewaySidecar
) -> list[str]:
    """The fields in which `container` differs from the rendered gateway; [] when it is aigis's.

    `volumes` are the pod's volumes, `expected` what `render_gateway` gives for the covering
    workload. Everything that decides what runs in the gateway and what it can read is compared:
    image, command, args, env, envFrom, lifecycle hooks, probe actions, volume mounts (by path
    and by what the mounted volume holds, so the suffixed names the injection picked still
    match), volume devices, working directory, security context, ports and restart policy.
    Compared as the API server stores a pod: the values it fills in when missing (a port's
    protocol, a probe's scheme, a fieldRef's apiVersion, a volume's defaultMode) count as given.
    Resources, pull policy, probe timings and termination settings are not compared: they change
    nothing the gateway can run or read.
    """
    wanted = expected.container
    differences = [
        name
        for name in ("image", "command", "securityContext", "restartPolicy")
        if container.get(name) != wanted.get(name)
    ]
    differences.extend(name for name in _UNSET_FIELDS if container.get(name))
    if _normal_env(container.get("env")) != _normal_env(wanted.get("env")):
        differences.append("env")
    if _normal_ports(container.get("ports")) != _normal_ports(wanted.get("ports")):
        differences.append("ports")
    differences.extend(
        probe
        for probe in _PROBES
        if _probe_action(container.get(probe)) != _probe_action(wanted.get(probe))
    )
    if _mounted(container, volumes) != _mounted(wanted, expected.volumes):
        differences.append("volumeMounts")
    return differences


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _normal_env(value: object) -> list[str] | None:
    if not value:
        return []
    if not isinstance(value, list):
        return None
    entries: list[str] = []
    for entry in value:
        if not isinstance(entry, Mapping):
            return None
        normal = dict(entry)
        value_from = normal.get("valueFrom")
        if isinstance(value_from, Mapping):
            field_ref = value_from.get("fieldRef")
            if isinstance(field_ref, Mapping):
                normal["valueFrom"] = {
                    **value_from,
                    "fieldRef": {"apiVersion": "v1", **field_ref},
                }
        entries.append(_canonical(normal))
    return entries


def _normal_ports(value: object) -> list[str] | None:
    if not value:
        return []
    if not isinstance(value, list) or not all(isinstance(p, Mapping) for p in value):
        return None
    normal = []
    for port in value:
        # The name is the injection's choice (dropped when the pod already uses it).
        fields = {k: v for k, v in port.items() if not (k == "name" and v in _METRICS_PORT_NAMES)}
        fields.setdefault("protocol", "TCP")
        normal.append(_canonical(fields))
    return sorted(normal)


def _probe_action(value: object) -> str | None:
    """What a probe runs (and where), without its timings."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return _canonical(value)
    action = {key: value[key] for key in _PROBE_HANDLERS if key in value}
    http = action.get("httpGet")
    if isinstance(http, Mapping):
        action["httpGet"] = {"scheme": "HTTP", **http}
    return _canonical(action)


def _mounted(container: Mapping[str, Any], volumes: object) -> list[str] | None:
    """Each mount as (where, how, what the volume holds), independent of the volume's name."""
    mounts = container.get("volumeMounts")
    if not mounts:
        return []
    if not isinstance(mounts, list) or not isinstance(volumes, list | tuple):
        return None
    sources: dict[str, str] = {}
    for volume in volumes:
        if isinstance(volume, Mapping):
            sources.setdefault(text(volume.get("name")), _volume_source(volume))
    described = []
    for mount in mounts:
        if not isinstance(mount, Mapping):
            return None
        fields = {
            "readOnly": False,
            "mountPropagation": "None",
            **{k: v for k, v in mount.items() if k != "name"},
            "volume": sources.get(text(mount.get("name"))),
        }
        described.append(_canonical(fields))
    return sorted(described)


def _volume_source(volume: Mapping[str, Any]) -> str:
    source = {k: v for k, v in volume.items() if k != "name"}
    for kind in _DEFAULT_MODE_SOURCES:
        fields = source.get(kind)
        if isinstance(fields, Mapping):
            source[kind] = {"defaultMode": _API_DEFAULT_MODE, **fields}
    return _canonical(source)


def _keys_volume(name: str, keys: _Keys) -> dict[str, Any]:
    return {
        "name": name,
        "projected": {
            "defaultMode": SECRET_FILE_MODE,
            "sources": [
                {"secret": {"name": secret, "items": [{"key": key, "path": provider}]}}
                for provider, secret, key in keys.files
            ],
        },
    }


def _gateway_container(
    spec: AIWorkloadSpec, settings: InjectionSettings, mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The sidecar: hardened to pass the restricted Pod Security level whatever the app sets."""
    metrics = settings.metrics_port
    workers = spec.gateway.workers
    ports = [
        {"name": metrics_port_name(i), "containerPort": metrics + i, "protocol": "TCP"}
        for i in range(workers)
    ]
    security: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if settings.run_as_user is not None:
        security["runAsUser"] = settings.run_as_user
    return {
        "name": GATEWAY_CONTAINER,
        "image": settings.gateway_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": [
            "aigis",
            "gateway",
            "--config",
            f"{GATEWAY_CONFIG_DIR}/{CONFIG_FILE_NAME}",
            "--listen",
            f"127.0.0.1:{settings.gateway_port}",
            "--metrics-listen",
            f"{settings.metrics_host}:{metrics}",
            AUDIT_KEY_FLAG,
            AUDIT_KEY_FILE,
            AUDIT_STATE_FLAG,
            AUDIT_STATE_DIR,
            *(["--workers", str(workers)] if workers > 1 else []),
        ],
        # Who is writing the audit records; `apiVersion` as the API server would default it,
        # so the rendered gateway equals the stored one.
        "env": [
            {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}
            for name, path in _POD_IDENTITY
        ],
        "restartPolicy": "Always",
        "ports": ports,
        # Worker 0's endpoints speak for the container (a worker that dies stops them all).
        # The kubelet starts the app (and later init containers) only once this passes.
        "startupProbe": _http_probe("/readyz", metrics, period=1, failures=60),
        "readinessProbe": _http_probe("/readyz", metrics, period=5, failures=3),
        "livenessProbe": _http_probe("/healthz", metrics, period=10, failures=3, timeout=3),
        "resources": _resources(spec, settings),
        "securityContext": security,
        "volumeMounts": mounts,
        # A config the gateway refuses is explained on stderr: show it in the pod's status.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _http_probe(
    path: str, port: int, *, period: int, failures: int, timeout: int = 1
) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": timeout,
    }


def _resources(spec: AIWorkloadSpec, settings: InjectionSettings) -> dict[str, Any]:
    """The workload's gateway resources as written, else the defaults, never a mix of the two:
    a default request could exceed a limit the workload set and make the pod invalid."""
    declared = spec.gateway.resources
    if declared is not None and (declared.requests or declared.limits):
        return {
            section: dict(values)
            for section, values in (("requests", declared.requests), ("limits", declared.limits))
            if values
        }
    resources: dict[str, Any] = {}
    if settings.default_requests:
        resources["requests"] = dict(settings.default_requests)
    if settings.default_limits:
        resources["limits"] = dict(settings.default_limits)
    return resources


@dataclass(frozen=True, slots=True)
class _AppEnv:
    """The variables every app container gets: fixed ones, and the parts of the merged NO_PROXY."""

    fixed: Mapping[str, str]
    no_proxy: tuple[str, ...]


def _app_env(workload: AIWorkload, settings: InjectionSettings) -> _AppEnv:
    url = settings.gateway_url
    fixed = {
        "OPENAI_BASE_URL": f"{url}/v1",
        "OPENAI_API_BASE": f"{url}/v1",
        # The Anthropic SDK appends `/v1/messages` itself.
        "ANTHROPIC_BASE_URL": url,
        **dict.fromkeys(_PROXY_NAMES, url),
    }
    domain = settings.cluster_domain.strip(".")
    no_proxy = [
        "localhost",
        "127.0.0.1",
        "::1",
        ".svc",
        f".{domain}",
        # Always defined by the kubelet: clients that reach the API server by address bypass too.
        "$(KUBERNETES_SERVICE_HOST)",
    ]
    # Declared in-cluster services are reached directly (the NetworkPolicy allows them); short
    # names carry no `.svc` suffix, so they are listed one by one.
    namespace = workload.metadata.namespace
    for rule in workload.spec.egress:
        service = rule.service
        if service is None or service.name is None:
            continue
        target = service.namespace or namespace
        if target is None or target == namespace:
            no_proxy.append(service.name)
        if target is not None:
            no_proxy.append(f"{service.name}.{target}")
    no_proxy.extend(settings.extra_no_proxy)
    return _AppEnv(fixed=fixed, no_proxy=tuple(dict.fromkeys(no_proxy)))


def _secret_key_ref(entry: Mapping[str, Any]) -> tuple[str, str] | None:
    value_from = entry.get("valueFrom")
    ref = value_from.get("secretKeyRef") if isinstance(value_from, Mapping) else None
    if not isinstance(ref, Mapping):
        return None
    return text(ref.get("name")), text(ref.get("key"))


def _patch_container(
    patch: _Patch,
    path: str,
    container: Mapping[str, Any],
    keys: _Keys,
    app_env: _AppEnv | None,
) -> None:
    """Take provider keys out of one container and, for an app container, route it through the
    gateway (`app_env` is None for other native sidecars).

    Operations on one list run as: replacements in place, removals from the highest index down,
    then appends, so every index refers to the list as the pod had it.
    """
    env = _mappings(container.get("env"))
    env_from = _mappings(container.get("envFrom"))
    entries = env or []
    names = [text(entry.get("name")) for entry in entries]
    env_path = f"{path}/env"
    removals: list[int] = []
    appends: list[dict[str, Any]] = []

    for index, entry in enumerate(entries):
        name = names[index]
        if _secret_key_ref(entry) in keys.refs:
            patch.replace(f"{env_path}/{index}", {"name": name, "value": KEY_PLACEHOLDER})
        elif app_env is not None and name in app_env.fixed:
            wanted = {"name": name, "value": app_env.fixed[name]}
            if entry != wanted:
                patch.replace(f"{env_path}/{index}", wanted)

    if app_env is not None:
        no_proxy = list(app_env.no_proxy)
        for name in _NO_PROXY_NAMES:
            indexes = [index for index, other in enumerate(names) if other == name]
            if not indexes:
                continue
            # Of duplicates the kubelet uses the last: that one is the user's value.
            effective = entries[indexes[-1]]
            if "valueFrom" in effective:
                kept = ORIGINAL_ENV_PREFIX + name
                patch.replace(
                    f"{env_path}/{indexes[-1]}",
                    {"name": kept, "valueFrom": effective["valueFrom"]},
                )
                no_proxy.append(f"$({kept})")
                indexes.pop()
            else:
                no_proxy.extend(part.strip() for part in text(effective.get("value")).split(","))
            removals.extend(indexes)
        merged = ",".join(part for part in dict.fromkeys(no_proxy) if part)
        appends.extend(
            {"name": name, "value": value}
            for name, value in app_env.fixed.items()
            if name not in names
        )
        appends.extend({"name": name, "value": merged} for name in _NO_PROXY_NAMES)

    placeholders: list[str] = []
    from_removals: list[int] = []
    for index, source in enumerate(env_from or ()):
        secret = _mapping(source.get("secretRef"))
        held = keys.by_secret.get(text(secret.get("name"))) if secret is not None else None
        if held is None:
            continue
        from_removals.append(index)
        prefix = text(source.get("prefix"))
        placeholders.extend(prefix + key for key in held if _ENV_NAME.fullmatch(prefix + key))
    if app_env is not None:
        placeholders.extend(keys.sdk_keys)
    present = set(names) | {entry["name"] for entry in appends}
    for name in dict.fromkeys(placeholders):
        if name not in present:
            appends.append({"name": name, "value": KEY_PLACEHOLDER})

    # Removals come with appends of NO_PROXY to the same list, whose pin covers them too.
    for index in sorted(removals, reverse=True):
        patch.remove(f"{env_path}/{index}")
    patch.extend(env_path, env, appends)
    for index in sorted(from_removals, reverse=True):
        patch.pin(f"{path}/envFrom/{index}", (env_from or [])[index])
        patch.remove(f"{path}/envFrom/{index}")


def _patch_metadata(
    patch: _Patch,
    metadata: Mapping[str, Any] | None,
    workload: AIWorkload,
    config_hash: str,
) -> None:
    labels = {WORKLOAD_LABEL: _label_value(workload.metadata.name or "")}
    annotations = {INJECTED_ANNOTATION: "true", CONFIG_HASH_ANNOTATION: config_hash}
    finalize = workload.spec.forensics.capture_on_termination
    if metadata is None:
        new: dict[str, Any] = {"labels": labels, "annotations": annotations}
        if finalize:
            new["finalizers"] = [FORENSICS_FINALIZER]
        patch.add("/metadata", new)
        return
    for field_name, wanted in (("labels", labels), ("annotations", annotations)):
        current = _mapping(metadata.get(field_name))
        if current is None:
            patch.add(_pointer("metadata", field_name), wanted)
            continue
        for key, value in wanted.items():
            # `add` on an existing member replaces it: idempotent, and aigis's value wins.
            if current.get(key) != value:
                patch.add(_pointer("metadata", field_name, key), value)
    finalizers = metadata.get("finalizers")
    if finalizers is not None and not isinstance(finalizers, list):
        raise _MalformedError
    if finalize and FORENSICS_FINALIZER not in (finalizers or ()):
        patch.extend(_pointer("metadata", "finalizers"), finalizers, [FORENSICS_FINALIZER])


def _label_value(name: str) -> str:
    """`name` as a label value: as is up to 63 characters, else cut with a hash suffix (object
    names start and end alphanumeric, and the hex suffix keeps the end so)."""
    if len(name) <= _MAX_LABEL_VALUE:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: _MAX_LABEL_VALUE - 11]}-{digest}"
