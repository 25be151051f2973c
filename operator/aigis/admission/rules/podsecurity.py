"""The Pod Security Standards, one registry entry per check of `aigis.admission.podsecurity`.

The checks themselves mirror Kubernetes' built-in PodSecurity admission and live in
`aigis.admission.podsecurity`, under ids of their own (`pod-security/...`); this module registers
them and applies them at the strictest `podSecurity` level of the governing policies. They apply
to every pod an AIWorkload covers, and to undeclared AI pods at the shadow-AI mode, in namespaces
a policy governs. Which level runs which check is `BASELINE_RULES` and `RESTRICTED_RULES` there.

A pod that gets the gateway is held to at least `baseline` even where no policy governs its
namespace: the gateway holds the provider keys and the audit key in its own volumes, and what
baseline forbids (privileged containers, host namespaces, hostPath volumes, added capabilities
such as SYS_PTRACE) is exactly what lets another container of the pod read those files (through
the host's process table or the kubelet's volume directories). A policy can raise the level.
"""

from __future__ import annotations

from typing import Final

from aigis.admission.podsecurity import (
    BASELINE_RULES,
    RESTRICTED_RULES,
    RULE_APPARMOR,
    RULE_CAPABILITIES,
    RULE_CAPABILITIES_RESTRICTED,
    RULE_HOST_NAMESPACES,
    RULE_HOST_PATH_VOLUMES,
    RULE_HOST_PORTS,
    RULE_HOST_PROBES,
    RULE_HOST_PROCESS,
    RULE_PRIVILEGE_ESCALATION,
    RULE_PRIVILEGED,
    RULE_PROC_MOUNT,
    RULE_RUN_AS_NON_ROOT,
    RULE_RUN_AS_USER,
    RULE_SECCOMP,
    RULE_SECCOMP_RESTRICTED,
    RULE_SELINUX,
    RULE_SYSCTLS,
    RULE_VOLUME_TYPES,
    check_pod_security,
)
from aigis.admission.reasons import Reason
from aigis.admission.rules.bounds import PolicyBounds
from aigis.admission.rules.pod import CoveredPod
from aigis.admission.rules.rule import Family, Rule
from aigis.admission.templates import PodTemplate

_FAMILY: Final = "podsecurity"


def pod_security_reasons(template: PodTemplate, bounds: PolicyBounds) -> list[Reason]:
    """The template against the strictest level of the governing policies (none: no policy)."""
    if bounds.pod_security is None:
        return []
    return check_pod_security(
        template.spec,
        template.metadata,
        bounds.pod_security,
        path=template.spec_path,
        inline_containers=template.inline_containers,
    )


GATEWAY_FLOOR: Final = "baseline"
"""The least Pod Security level of a pod that gets the gateway (see the module docstring)."""


def pod_security(pod: CoveredPod) -> list[Reason]:
    """The Pod Security Standards on a covered pod: the governing policies' level, and at least
    `baseline` when the pod gets the gateway."""
    level = pod.bounds.pod_security
    if level is None and (pod.will_inject or pod.injected):
        level = GATEWAY_FLOOR
    if level is None:
        return []
    template = pod.template
    return check_pod_security(
        template.spec,
        template.metadata,
        level,
        path=template.spec_path,
        inline_containers=template.inline_containers,
    )


def _levels(rule_id: str) -> str:
    levels = [
        name
        for name, rules in (("baseline", BASELINE_RULES), ("restricted", RESTRICTED_RULES))
        if rule_id in rules
    ]
    return "Level: " + " and ".join(levels) + "."


# id, title, what it checks, the fix.
_CHECKS: Final = (
    (
        RULE_HOST_PROCESS,
        "Windows HostProcess containers",
        "No container runs as a Windows HostProcess container, directly on the node.",
        "Remove windowsOptions.hostProcess or set it to false.",
    ),
    (
        RULE_HOST_NAMESPACES,
        "Host namespaces",
        "The pod does not share the node's network, process ID or IPC namespace (hostNetwork, "
        "hostPID, hostIPC).",
        "Remove hostNetwork, hostPID and hostIPC, or set them to false.",
    ),
    (
        RULE_PRIVILEGED,
        "Privileged containers",
        "No container runs privileged, which turns off nearly all isolation from the node.",
        "Remove securityContext.privileged or set it to false.",
    ),
    (
        RULE_CAPABILITIES,
        "Added capabilities",
        "Containers add only capabilities in the container runtime's default set.",
        "Remove the capability from securityContext.capabilities.add.",
    ),
    (
        RULE_HOST_PATH_VOLUMES,
        "hostPath volumes",
        "The pod mounts no directory of the node (hostPath volumes). At restricted, "
        "pod-security/volume-types reports them.",
        "Use an emptyDir, configMap, secret or persistentVolumeClaim volume instead.",
    ),
    (
        RULE_HOST_PORTS,
        "Host ports",
        "No container binds a port on the node itself (hostPort other than 0).",
        "Remove hostPort and expose the port through a Service.",
    ),
    (
        RULE_APPARMOR,
        "AppArmor profile",
        "An AppArmor profile, where one is set (field or legacy annotation), confines the "
        "container: RuntimeDefault or Localhost.",
        'Set appArmorProfile.type to "RuntimeDefault" (or "Localhost"), or remove it.',
    ),
    (
        RULE_SELINUX,
        "SELinux options",
        "SELinux options set only a container type, and no custom user or role.",
        "Remove seLinuxOptions.user and .role, and use a container type or none.",
    ),
    (
        RULE_PROC_MOUNT,
        "/proc mount type",
        "Containers keep the default, masked /proc (procMount Default). At baseline a pod in its "
        "own user namespace (hostUsers: false) is exempt.",
        'Remove securityContext.procMount or set it to "Default".',
    ),
    (
        RULE_SECCOMP,
        "Seccomp profile",
        "A seccomp profile, where one is set, confines the container: RuntimeDefault or "
        "Localhost, never Unconfined.",
        'Set seccompProfile.type to "RuntimeDefault" (or "Localhost").',
    ),
    (
        RULE_SYSCTLS,
        "Sysctls",
        "The pod sets only sysctls known to be isolated from other pods on the node.",
        "Remove the sysctl.",
    ),
    (
        RULE_HOST_PROBES,
        "Probes and hooks aimed at a host",
        "Probes and lifecycle handlers set no host, which would make the kubelet connect from "
        "the node to wherever it names.",
        "Remove the handler's host: the kubelet then connects to the pod's own IP.",
    ),
    (
        RULE_VOLUME_TYPES,
        "Volume types",
        "Every volume uses a source the restricted level allows (configMap, csi, downwardAPI, "
        "emptyDir, ephemeral, image, persistentVolumeClaim, projected, secret).",
        "Use an allowed source; other storage goes through a persistentVolumeClaim.",
    ),
    (
        RULE_PRIVILEGE_ESCALATION,
        "Privilege escalation",
        "Every container of a Linux pod sets allowPrivilegeEscalation: false.",
        "Set securityContext.allowPrivilegeEscalation: false on each container.",
    ),
    (
        RULE_RUN_AS_NON_ROOT,
        "Running as non-root",
        "The pod or each container sets runAsNonRoot: true, and none sets it to false (a pod in "
        "its own user namespace is exempt).",
        "Set securityContext.runAsNonRoot: true on the pod.",
    ),
    (
        RULE_RUN_AS_USER,
        "Running as user 0",
        "Neither the pod nor a container sets runAsUser: 0 (a pod in its own user namespace is "
        "exempt).",
        "Set runAsUser to a non-zero user ID, or remove it and set runAsNonRoot: true.",
    ),
    (
        RULE_SECCOMP_RESTRICTED,
        "Seccomp profile required",
        "Every container of a Linux pod has a confining seccomp profile (RuntimeDefault or "
        "Localhost), its own or the pod's.",
        'Set the pod\'s securityContext.seccompProfile.type: "RuntimeDefault".',
    ),
    (
        RULE_CAPABILITIES_RESTRICTED,
        "Capabilities dropped",
        'Every container of a Linux pod drops "ALL" capabilities and adds back at most '
        "NET_BIND_SERVICE.",
        'Set securityContext.capabilities.drop: ["ALL"] and add back only NET_BIND_SERVICE.',
    ),
)


FAMILY: Final = Family(
    name=_FAMILY,
    title="Pod Security Standards",
    summary="Kubernetes' Pod Security Standards, check by check as the built-in PodSecurity "
    "admission runs them, at the strictest podSecurity level (baseline or restricted) of the "
    "governing AIClusterPolicies.",
    rules=tuple(
        Rule(
            id=rule_id,
            title=title,
            checks=f"{checks} {_levels(rule_id)}",
            fix=fix,
            family=_FAMILY,
            check=pod_security,
        )
        for rule_id, title, checks, fix in _CHECKS
    ),
)
