"""Pod Security Standards: whether a pod template meets the baseline or restricted level.

The checks mirror Kubernetes' built-in PodSecurity admission at its newest policy version (v1.37:
the sysctls `net.ipv4.tcp_slow_start_after_idle` and `net.ipv4.tcp_notsent_lowat` are safe), check
by check, so a workload aigis admits at a level is one the API server's own admission would admit at
that level, and `aigis scan` gives the same answer in CI. Where the reference writes one line per
check, aigis returns one `Reason` per offending field, with the full path in the admitted object and
the fix, so the user never has to hunt for which container or which entry is meant.

Reading the input: pods come as the dicts the Kubernetes API serves. A value of the wrong type is
read as its zero value, exactly as if it were absent (a flag is unset, a profile is missing, a
string is empty): the API server decodes a pod before any admission runs, so such values never reach
the built-in checks, and here they must not crash anything either, because `aigis scan` reads
manifests nobody has validated. Entries of a list still count: a container that is not a mapping is
a container that sets nothing, and fails every check that requires a setting.

Where aigis is stricter than the reference, only for pods the API server rejects anyway:
- restricted always includes every baseline check. The reference lets its restricted seccomp and
  capabilities checks replace the baseline ones and then skips them for Windows pods, so a Windows
  pod with an Unconfined seccomp profile fails baseline but passes restricted; here the baseline
  check still runs for Windows pods (API validation forbids both fields on Windows pods).
- a volume that sets several sources (API validation allows one) fails restricted if any of them is
  outside the allowed list; the reference accepts it when one of them is allowed.

Where aigis reads a manifest the way the API server would hand it to the reference: a volume
that names no source at all (or only null ones) is an emptyDir, which is what the API server's
defaulting makes of it before any admission runs. A volume whose only source has the wrong type
is not defaulted (the API server refuses to decode it) and fails restricted.

Ephemeral containers are checked exactly as containers and init containers are, at both levels,
as the reference does (it visits all three lists for every container check).

Pure: no I/O. Must not import the webhook server, the operator or the gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from aigis.admission.reading import (
    fields,
    flag,
    items,
    number,
    optional_mapping,
    quote,
    text,
)
from aigis.admission.reasons import Reason

Level = Literal["privileged", "baseline", "restricted"]

# Stable rule identifiers. Renaming one breaks every exemption and dashboard keyed on it.
RULE_HOST_PROCESS: Final = "pod-security/host-process"
RULE_HOST_NAMESPACES: Final = "pod-security/host-namespaces"
RULE_PRIVILEGED: Final = "pod-security/privileged"
RULE_CAPABILITIES: Final = "pod-security/capabilities"
RULE_HOST_PATH_VOLUMES: Final = "pod-security/host-path-volumes"
RULE_HOST_PORTS: Final = "pod-security/host-ports"
RULE_APPARMOR: Final = "pod-security/apparmor"
RULE_SELINUX: Final = "pod-security/selinux"
RULE_PROC_MOUNT: Final = "pod-security/proc-mount"
RULE_SECCOMP: Final = "pod-security/seccomp"
RULE_SYSCTLS: Final = "pod-security/sysctls"
RULE_HOST_PROBES: Final = "pod-security/host-probes"
RULE_VOLUME_TYPES: Final = "pod-security/volume-types"
RULE_PRIVILEGE_ESCALATION: Final = "pod-security/privilege-escalation"
RULE_RUN_AS_NON_ROOT: Final = "pod-security/run-as-non-root"
RULE_RUN_AS_USER: Final = "pod-security/run-as-user"
RULE_SECCOMP_RESTRICTED: Final = "pod-security/seccomp-restricted"
RULE_CAPABILITIES_RESTRICTED: Final = "pod-security/capabilities-restricted"

BASELINE_RULES: Final = frozenset(
    {
        RULE_HOST_PROCESS,
        RULE_HOST_NAMESPACES,
        RULE_PRIVILEGED,
        RULE_CAPABILITIES,
        RULE_HOST_PATH_VOLUMES,
        RULE_HOST_PORTS,
        RULE_APPARMOR,
        RULE_SELINUX,
        RULE_PROC_MOUNT,
        RULE_SECCOMP,
        RULE_SYSCTLS,
        RULE_HOST_PROBES,
    }
)
# At restricted, hostPath volumes are reported as a restricted volume type, and the restricted
# seccomp and capabilities rules take over from the baseline ones (which still report Windows pods).
RESTRICTED_RULES: Final = (BASELINE_RULES - {RULE_HOST_PATH_VOLUMES}) | {
    RULE_VOLUME_TYPES,
    RULE_PRIVILEGE_ESCALATION,
    RULE_RUN_AS_NON_ROOT,
    RULE_RUN_AS_USER,
    RULE_SECCOMP_RESTRICTED,
    RULE_CAPABILITIES_RESTRICTED,
}

# The container runtimes' default capability set: adding one of these changes nothing.
BASELINE_CAPABILITIES: Final = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_CAPABILITY_ADDS: Final = frozenset({"NET_BIND_SERVICE"})

# Sysctls namespaced to the pod and isolated from other pods on the node; names match exactly
# (the reference does not translate the `net/ipv4/...` spelling either).
SAFE_SYSCTLS: Final = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
    }
)

# The empty type means "the runtime's default", which is a container type.
SELINUX_TYPES: Final = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)

# Volume sources a restricted pod may use: ephemeral or API-backed data, and storage that goes
# through a PersistentVolumeClaim (whose PersistentVolume an administrator controls).
RESTRICTED_VOLUME_SOURCES: Final = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)

_CONFINING_PROFILE_TYPES: Final = frozenset({"RuntimeDefault", "Localhost"})
_APPARMOR_ANNOTATION_PREFIX: Final = "container.apparmor.security.beta.kubernetes.io/"
_APPARMOR_ANNOTATION_DEFAULT: Final = "runtime/default"
_APPARMOR_ANNOTATION_LOCALHOST_PREFIX: Final = "localhost/"
# The reference visits init containers first, then containers, then ephemeral containers.
_CONTAINER_LISTS: Final = (
    ("initContainers", "init container"),
    ("containers", "container"),
    ("ephemeralContainers", "ephemeral container"),
)
_HOST_NAMESPACES: Final = (
    ("hostNetwork", "network"),
    ("hostPID", "process ID"),
    ("hostIPC", "IPC"),
)
_PROBES: Final = ("livenessProbe", "readinessProbe", "startupProbe")
_LIFECYCLE_HANDLERS: Final = ("postStart", "preStop")
_HOST_HANDLERS: Final = ("httpGet", "tcpSocket")


def check_pod_security(
    pod_spec: Mapping[str, Any],
    pod_metadata: Mapping[str, Any] | None,
    level: Level,
    *,
    path: str = "spec",
    inline_containers: Sequence[tuple[str, object]] = (),
) -> list[Reason]:
    """Return why the pod template fails the Pod Security Standards `level`; empty if it passes.

    `inline_containers` are (path, container) pairs an object holds outside the PodSpec's lists
    (KServe's `spec.predictor.model`); they are checked as containers.

    `pod_spec` is a PodSpec as the API serves it, `pod_metadata` the metadata of the same pod
    template (only its annotations matter: legacy AppArmor profiles live there). `path` is where
    the PodSpec sits in the admitted object (`spec` for a Pod, `spec.template.spec` for a
    Deployment), so every reason names the field as the user wrote it; the annotations are at the
    sibling `metadata`. Malformed input never raises (see the module docstring); an unknown
    `level` does, because it is a programming error rather than bad user input.
    """
    if level == "privileged":
        return []
    if level == "baseline":
        checks = _BASELINE_CHECKS
    elif level == "restricted":
        checks = _RESTRICTED_CHECKS
    else:
        raise ValueError(f"unknown Pod Security Standards level {level!r}")
    pod = _read_pod(pod_spec, pod_metadata, path, inline_containers)
    return [reason for check in checks for reason in check(pod)]


@dataclass(frozen=True, slots=True)
class _Container:
    """One container, init container or ephemeral container, located in the admitted object."""

    path: str
    label: str
    fields: Mapping[str, Any]
    security: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Pod:
    """The parts of a pod template the checks read, with the paths reasons point at."""

    path: str
    fields: Mapping[str, Any]
    security: Mapping[str, Any]
    annotations: Mapping[str, Any]
    annotations_path: str
    containers: tuple[_Container, ...]

    @property
    def windows(self) -> bool:
        return text(fields(self.fields.get("os")).get("name")) == "windows"

    @property
    def user_namespace(self) -> bool:
        """`hostUsers: false` gives the pod its own user namespace, whose root is not the node's."""
        return flag(self.fields.get("hostUsers")) is False

    def security_contexts(self) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        """The pod's security context, then each container's: (path, who, fields)."""
        yield f"{self.path}.securityContext", "the pod", self.security
        for container in self.containers:
            yield f"{container.path}.securityContext", container.label, container.security


def _read_pod(
    spec_value: object,
    metadata_value: object,
    path: str,
    inline_containers: Sequence[tuple[str, object]] = (),
) -> _Pod:
    spec = fields(spec_value)
    located: list[tuple[str, str, object]] = [
        (f"{path}.{key}[{index}]", noun, entry)
        for key, noun in _CONTAINER_LISTS
        for index, entry in enumerate(items(spec.get(key)))
    ]
    located += [(where, "container", entry) for where, entry in inline_containers]
    containers: list[_Container] = []
    for container_path, noun, entry in located:
        container = fields(entry)
        name = text(container.get("name"))
        label = f"{noun} {quote(name)}" if name else f"the {noun} at {container_path}"
        security = fields(container.get("securityContext"))
        containers.append(_Container(container_path, label, container, security))
    parent, dot, _ = path.rpartition(".")
    metadata_path = f"{parent}.metadata" if dot else "metadata"
    return _Pod(
        path=path,
        fields=spec,
        security=fields(spec.get("securityContext")),
        annotations=fields(fields(metadata_value).get("annotations")),
        annotations_path=f"{metadata_path}.annotations",
        containers=tuple(containers),
    )


# Baseline checks: known privilege escalations, refused at every level but privileged.


def _check_host_process(pod: _Pod) -> Iterator[Reason]:
    for context_path, who, security in pod.security_contexts():
        if flag(fields(security.get("windowsOptions")).get("hostProcess")) is True:
            yield Reason(
                rule=RULE_HOST_PROCESS,
                path=f"{context_path}.windowsOptions.hostProcess",
                message=f"{who} asks to run as a Windows HostProcess container, directly on the "
                "node with the node's privileges",
                fix="remove windowsOptions.hostProcess or set it to false; only the privileged "
                "level admits HostProcess pods",
            )


def _check_host_namespaces(pod: _Pod) -> Iterator[Reason]:
    for field, namespace in _HOST_NAMESPACES:
        if flag(pod.fields.get(field)) is True:
            yield Reason(
                rule=RULE_HOST_NAMESPACES,
                path=f"{pod.path}.{field}",
                message=f"the pod shares the node's {namespace} namespace, so it can see and "
                "reach the node's and other pods' traffic and processes",
                fix=f"remove {field} or set it to false",
            )


def _check_privileged(pod: _Pod) -> Iterator[Reason]:
    for container in pod.containers:
        if flag(container.security.get("privileged")) is True:
            yield Reason(
                rule=RULE_PRIVILEGED,
                path=f"{container.path}.securityContext.privileged",
                message=f"{container.label} runs privileged, which turns off nearly all "
                "isolation from the node",
                fix="remove securityContext.privileged or set it to false",
            )


def _check_capabilities_baseline(pod: _Pod) -> Iterator[Reason]:
    for container in pod.containers:
        capabilities = fields(container.security.get("capabilities"))
        for index, entry in enumerate(items(capabilities.get("add"))):
            capability = text(entry)
            if capability not in BASELINE_CAPABILITIES:
                yield Reason(
                    rule=RULE_CAPABILITIES,
                    path=f"{container.path}.securityContext.capabilities.add[{index}]",
                    message=f"{container.label} adds the capability {quote(capability)}, which "
                    "is not in the container runtime's default set",
                    fix="remove it from capabilities.add; baseline allows adding only "
                    + ", ".join(sorted(BASELINE_CAPABILITIES)),
                )


def _check_host_path_volumes(pod: _Pod) -> Iterator[Reason]:
    for index, entry in enumerate(items(pod.fields.get("volumes"))):
        volume = fields(entry)
        if optional_mapping(volume.get("hostPath")) is not None:
            yield Reason(
                rule=RULE_HOST_PATH_VOLUMES,
                path=f"{pod.path}.volumes[{index}].hostPath",
                message=f"{_volume_label(volume, index)} mounts a directory of the node (hostPath)",
                fix="use an emptyDir, configMap, secret or persistentVolumeClaim volume instead",
            )


def _check_host_ports(pod: _Pod) -> Iterator[Reason]:
    for container in pod.containers:
        for index, entry in enumerate(items(container.fields.get("ports"))):
            host_port = number(fields(entry).get("hostPort"))
            if host_port is not None and host_port != 0:
                yield Reason(
                    rule=RULE_HOST_PORTS,
                    path=f"{container.path}.ports[{index}].hostPort",
                    message=f"{container.label} binds port {host_port} on the node itself",
                    fix="remove hostPort (or set it to 0) and expose the port through a Service",
                )


def _check_apparmor(pod: _Pod) -> Iterator[Reason]:
    for context_path, who, security in pod.security_contexts():
        profile = optional_mapping(security.get("appArmorProfile"))
        if profile is None:
            continue
        profile_type = text(profile.get("type"))
        if profile_type not in _CONFINING_PROFILE_TYPES:
            yield Reason(
                rule=RULE_APPARMOR,
                path=f"{context_path}.appArmorProfile.type",
                message=f"{who} sets the AppArmor profile type to {quote(profile_type)}, which "
                "does not confine the container",
                fix='set appArmorProfile.type to "RuntimeDefault" (or "Localhost" with a '
                "localhostProfile), or remove appArmorProfile",
            )
    for key in sorted(k for k in pod.annotations if isinstance(k, str)):
        if not key.startswith(_APPARMOR_ANNOTATION_PREFIX):
            continue
        value = text(pod.annotations[key])
        if (
            value
            and value != _APPARMOR_ANNOTATION_DEFAULT
            and not value.startswith(_APPARMOR_ANNOTATION_LOCALHOST_PREFIX)
        ):
            yield Reason(
                rule=RULE_APPARMOR,
                path=f"{pod.annotations_path}[{key}]",
                message=f"the annotation sets the AppArmor profile {quote(value)}, which does "
                "not confine the container",
                fix='set it to "runtime/default" or "localhost/<profile>", or better, remove it '
                "and set securityContext.appArmorProfile",
            )


def _check_selinux(pod: _Pod) -> Iterator[Reason]:
    for context_path, who, security in pod.security_contexts():
        options = optional_mapping(security.get("seLinuxOptions"))
        if options is None:
            continue
        selinux_type = text(options.get("type"))
        if selinux_type not in SELINUX_TYPES:
            yield Reason(
                rule=RULE_SELINUX,
                path=f"{context_path}.seLinuxOptions.type",
                message=f"{who} sets the SELinux type {quote(selinux_type)}, which is not a "
                "container type",
                fix="remove seLinuxOptions.type or set it to one of "
                + ", ".join(sorted(t for t in SELINUX_TYPES if t)),
            )
        for field in ("user", "role"):
            if text(options.get(field)):
                yield Reason(
                    rule=RULE_SELINUX,
                    path=f"{context_path}.seLinuxOptions.{field}",
                    message=f"{who} sets a custom SELinux {field}",
                    fix=f"remove seLinuxOptions.{field}",
                )


def _proc_mount_reasons(pod: _Pod) -> Iterator[Reason]:
    for container in pod.containers:
        proc_mount = text(container.security.get("procMount"))
        if proc_mount and proc_mount != "Default":
            yield Reason(
                rule=RULE_PROC_MOUNT,
                path=f"{container.path}.securityContext.procMount",
                message=f"{container.label} sets procMount to {quote(proc_mount)}, which "
                "unmasks parts of /proc that expose the node",
                fix='remove securityContext.procMount or set it to "Default"',
            )


def _check_proc_mount_baseline(pod: _Pod) -> Iterator[Reason]:
    # Inside its own user namespace an unmasked /proc exposes nothing of the node's.
    if not pod.user_namespace:
        yield from _proc_mount_reasons(pod)


def _check_seccomp_baseline(pod: _Pod) -> Iterator[Reason]:
    for context_path, who, security in pod.security_contexts():
        profile = optional_mapping(security.get("seccompProfile"))
        if profile is not None:
            profile_type = text(profile.get("type"))
            if profile_type not in _CONFINING_PROFILE_TYPES:
                yield _bad_seccomp(RULE_SECCOMP, context_path, who, profile_type)


def _bad_seccomp(rule: str, context_path: str, who: str, profile_type: str) -> Reason:
    return Reason(
        rule=rule,
        path=f"{context_path}.seccompProfile.type",
        message=f"{who} sets the seccomp profile type to {quote(profile_type)}, which leaves "
        "every system call open",
        fix='set seccompProfile.type to "RuntimeDefault" (or "Localhost" with a localhostProfile)',
    )


def _check_sysctls(pod: _Pod) -> Iterator[Reason]:
    for index, entry in enumerate(items(pod.security.get("sysctls"))):
        name = text(fields(entry).get("name"))
        if name not in SAFE_SYSCTLS:
            yield Reason(
                rule=RULE_SYSCTLS,
                path=f"{pod.path}.securityContext.sysctls[{index}].name",
                message=f"the pod sets the sysctl {quote(name)}, which is not known to be "
                "isolated from other pods on the node",
                fix="remove it; baseline allows only " + ", ".join(sorted(SAFE_SYSCTLS)),
            )


def _check_host_probes(pod: _Pod) -> Iterator[Reason]:
    for container in pod.containers:
        handlers = [(probe, fields(container.fields.get(probe))) for probe in _PROBES]
        lifecycle = fields(container.fields.get("lifecycle"))
        handlers += [
            (f"lifecycle.{hook}", fields(lifecycle.get(hook))) for hook in _LIFECYCLE_HANDLERS
        ]
        for where, handler in handlers:
            for kind in _HOST_HANDLERS:
                host = text(fields(handler.get(kind)).get("host"))
                if host:
                    yield Reason(
                        rule=RULE_HOST_PROBES,
                        path=f"{container.path}.{where}.{kind}.host",
                        message=f"{container.label} points its {where} at the host "
                        f"{quote(host)}, so the kubelet would connect from the node to "
                        "wherever it names",
                        fix=f"remove {kind}.host: the kubelet then connects to the pod's own IP",
                    )


# Restricted checks: current pod hardening practice, on top of every baseline check.


def _check_volume_types(pod: _Pod) -> Iterator[Reason]:
    for index, entry in enumerate(items(pod.fields.get("volumes"))):
        volume = fields(entry)
        if isinstance(entry, Mapping) and all(
            value is None for key, value in volume.items() if key != "name"
        ):
            # The API server defaults a volume without a source to an emptyDir before admission
            # runs, so the reference only ever sees it as one.
            continue
        sources = [
            key
            for key, value in volume.items()
            if key != "name" and optional_mapping(value) is not None
        ]
        if not sources:
            yield Reason(
                rule=RULE_VOLUME_TYPES,
                path=f"{pod.path}.volumes[{index}]",
                message=f"{_volume_label(volume, index)} sets no volume source the restricted "
                "level recognises",
                fix="give it one of the sources " + ", ".join(sorted(RESTRICTED_VOLUME_SOURCES)),
            )
            continue
        for source in sources:
            if source not in RESTRICTED_VOLUME_SOURCES:
                yield Reason(
                    rule=RULE_VOLUME_TYPES,
                    path=f"{pod.path}.volumes[{index}].{source}",
                    message=f"{_volume_label(volume, index)} uses the volume type "
                    f"{quote(str(source))}, which the restricted level does not allow",
                    fix="use one of "
                    + ", ".join(sorted(RESTRICTED_VOLUME_SOURCES))
                    + "; other storage goes through a persistentVolumeClaim",
                )


def _volume_label(volume: Mapping[str, Any], index: int) -> str:
    name = text(volume.get("name"))
    return f"volume {quote(name)}" if name else f"volume {index}"


def _check_privilege_escalation(pod: _Pod) -> Iterator[Reason]:
    # Windows has no setuid binaries or no_new_privs, and its pods may not set the field at all.
    if pod.windows:
        return
    for container in pod.containers:
        value = flag(container.security.get("allowPrivilegeEscalation"))
        if value is not False:
            state = "allows" if value else "does not forbid"
            yield Reason(
                rule=RULE_PRIVILEGE_ESCALATION,
                path=f"{container.path}.securityContext.allowPrivilegeEscalation",
                message=f"{container.label} {state} privilege escalation (setuid binaries can "
                "gain more privileges than the process started with)",
                fix="set securityContext.allowPrivilegeEscalation: false",
            )


def _check_run_as_non_root(pod: _Pod) -> Iterator[Reason]:
    # Root in a pod's own user namespace is an unprivileged user on the node.
    if pod.user_namespace:
        return
    pod_value = flag(pod.security.get("runAsNonRoot"))
    pod_field = f"{pod.path}.securityContext.runAsNonRoot"
    if pod_value is False:
        yield Reason(
            rule=RULE_RUN_AS_NON_ROOT,
            path=pod_field,
            message="the pod sets runAsNonRoot: false, allowing its containers to run as root",
            fix=f"set {pod_field}: true",
        )
    for container in pod.containers:
        value = flag(container.security.get("runAsNonRoot"))
        field = f"{container.path}.securityContext.runAsNonRoot"
        if value is False:
            yield Reason(
                rule=RULE_RUN_AS_NON_ROOT,
                path=field,
                message=f"{container.label} sets runAsNonRoot: false, allowing it to run as "
                "root (a container's value overrides the pod's)",
                fix=f"set {field}: true, or remove it and set {pod_field}: true",
            )
        elif value is None and pod_value is not True:
            yield Reason(
                rule=RULE_RUN_AS_NON_ROOT,
                path=field,
                message=f"{container.label} may run as root: neither it nor the pod sets "
                "runAsNonRoot: true",
                fix=f"set {pod_field}: true, or {field}: true",
            )


def _check_run_as_user(pod: _Pod) -> Iterator[Reason]:
    if pod.user_namespace:
        return
    for context_path, who, security in pod.security_contexts():
        if number(security.get("runAsUser")) == 0:
            yield Reason(
                rule=RULE_RUN_AS_USER,
                path=f"{context_path}.runAsUser",
                message=f"{who} sets runAsUser: 0, which runs as root",
                fix="set runAsUser to a non-zero user ID, or remove it and let the image's user "
                "run with runAsNonRoot: true",
            )


def _check_seccomp_restricted(pod: _Pod) -> Iterator[Reason]:
    if pod.windows:
        # Windows has no seccomp, so the requirement is waived, but an explicit bad profile is
        # still refused as baseline refuses it (see the module docstring).
        yield from _check_seccomp_baseline(pod)
        return
    pod_path = f"{pod.path}.securityContext"
    pod_profile = optional_mapping(pod.security.get("seccompProfile"))
    pod_confined = False
    if pod_profile is not None:
        profile_type = text(pod_profile.get("type"))
        pod_confined = profile_type in _CONFINING_PROFILE_TYPES
        if not pod_confined:
            yield _bad_seccomp(RULE_SECCOMP_RESTRICTED, pod_path, "the pod", profile_type)
    for container in pod.containers:
        context_path = f"{container.path}.securityContext"
        profile = optional_mapping(container.security.get("seccompProfile"))
        if profile is not None:
            profile_type = text(profile.get("type"))
            if profile_type not in _CONFINING_PROFILE_TYPES:
                yield _bad_seccomp(
                    RULE_SECCOMP_RESTRICTED, context_path, container.label, profile_type
                )
        elif not pod_confined:
            yield Reason(
                rule=RULE_SECCOMP_RESTRICTED,
                path=f"{context_path}.seccompProfile",
                message=f"{container.label} has no seccomp profile, from itself or from the pod, "
                "so every system call is open to it",
                fix=f'set {pod_path}.seccompProfile.type: "RuntimeDefault" (or on the container)',
            )


def _check_capabilities_restricted(pod: _Pod) -> Iterator[Reason]:
    if pod.windows:
        # Windows has no Linux capabilities; keep refusing what baseline refuses.
        yield from _check_capabilities_baseline(pod)
        return
    for container in pod.containers:
        capabilities_path = f"{container.path}.securityContext.capabilities"
        capabilities = fields(container.security.get("capabilities"))
        if "ALL" not in (text(entry) for entry in items(capabilities.get("drop"))):
            yield Reason(
                rule=RULE_CAPABILITIES_RESTRICTED,
                path=f"{capabilities_path}.drop",
                message=f'{container.label} does not drop "ALL" capabilities, so it keeps the '
                "container runtime's default set",
                fix='set securityContext.capabilities.drop: ["ALL"] and add back only '
                "NET_BIND_SERVICE if it must bind a port below 1024",
            )
        for index, entry in enumerate(items(capabilities.get("add"))):
            capability = text(entry)
            if capability not in RESTRICTED_CAPABILITY_ADDS:
                yield Reason(
                    rule=RULE_CAPABILITIES_RESTRICTED,
                    path=f"{capabilities_path}.add[{index}]",
                    message=f"{container.label} adds the capability {quote(capability)}; the "
                    "restricted level allows adding only NET_BIND_SERVICE",
                    fix="remove it from capabilities.add",
                )


def _check_proc_mount_restricted(pod: _Pod) -> Iterator[Reason]:
    # Unlike baseline, no exception for user namespaces.
    yield from _proc_mount_reasons(pod)


_Check = Callable[[_Pod], Iterator[Reason]]

_BASELINE_CHECKS: Final[tuple[_Check, ...]] = (
    _check_host_process,
    _check_host_namespaces,
    _check_privileged,
    _check_capabilities_baseline,
    _check_host_path_volumes,
    _check_host_ports,
    _check_apparmor,
    _check_selinux,
    _check_proc_mount_baseline,
    _check_seccomp_baseline,
    _check_sysctls,
    _check_host_probes,
)

# The restricted checks that replace a baseline check are strictly stricter than it, so replacing
# rather than adding avoids reporting one field twice.
_RESTRICTED_REPLACEMENTS: Final[Mapping[_Check, _Check]] = {
    _check_capabilities_baseline: _check_capabilities_restricted,
    _check_host_path_volumes: _check_volume_types,
    _check_proc_mount_baseline: _check_proc_mount_restricted,
    _check_seccomp_baseline: _check_seccomp_restricted,
}

_RESTRICTED_CHECKS: Final[tuple[_Check, ...]] = (
    *(_RESTRICTED_REPLACEMENTS.get(check, check) for check in _BASELINE_CHECKS),
    _check_privilege_escalation,
    _check_run_as_non_root,
    _check_run_as_user,
)
