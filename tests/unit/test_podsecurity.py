"""check_pod_security: the Pod Security Standards, check by check, as PodSecurity admission does.

Every case starts from a pod that passes restricted and changes what the row is about, so a row
fails only for the reason it names. Rows assert the exact set of (rule, path) the check returns.
"""

from __future__ import annotations

import copy
import itertools
import random
import re
from typing import Any

import pytest

from aigis.admission.podsecurity import (
    BASELINE_CAPABILITIES,
    BASELINE_RULES,
    RESTRICTED_RULES,
    RESTRICTED_VOLUME_SOURCES,
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
    SAFE_SYSCTLS,
    Level,
    check_pod_security,
)
from aigis.admission.reasons import Reason

# The reference's lists, written out here rather than read from the module, so that dropping an
# entry from the module fails a test.
DEFAULT_CAPABILITIES = (
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
)
SAFE_SYSCTL_NAMES = (
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",  # policy v1.27
    "net.ipv4.tcp_keepalive_time",  # v1.29
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",  # v1.32
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle",  # v1.37
    "net.ipv4.tcp_notsent_lowat",
)
ALLOWED_VOLUME_SOURCES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
DENIED_VOLUME_SOURCES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)

DELETE = object()
C0 = "spec.containers[0]"
SC0 = f"{C0}.securityContext"
APPARMOR_KEY = "container.apparmor.security.beta.kubernetes.io/app"


def restricted_container(name: str = "app") -> dict[str, Any]:
    return {
        "name": name,
        "image": "registry.example.com/app:1.0",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def restricted_pod() -> dict[str, Any]:
    """A pod template that passes restricted: every row changes only what it is about."""
    return {"metadata": {"annotations": {}}, "spec": {"containers": [restricted_container()]}}


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def edit(pod: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` (`spec.containers[0].securityContext.privileged`) in `pod`, creating parents."""
    keys: list[str | int] = [name if name else int(index) for name, index in _TOKEN.findall(path)]
    node: Any = pod
    for key, following in itertools.pairwise(keys):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(key, int):
            while len(node) <= key:
                node.append(copy.deepcopy(empty))
            node = node[key]
        else:
            node = node.setdefault(key, empty)
    last = keys[-1]
    if value is DELETE:
        del node[last]
    elif isinstance(last, int):
        while len(node) <= last:
            node.append(None)
        node[last] = value
    else:
        node[last] = value


def pod_with(*edits: tuple[str, Any]) -> dict[str, Any]:
    pod = restricted_pod()
    for path, value in edits:
        edit(pod, path, value)
    return pod


def found(pod: dict[str, Any], level: Level, path: str = "spec") -> set[tuple[str, str]]:
    reasons = check_pod_security(pod["spec"], pod.get("metadata"), level, path=path)
    return {(reason.rule, reason.path) for reason in reasons}


def windows_pod(*edits: tuple[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Edits turning the restricted pod into a Windows pod that sets no Linux-only field."""
    return (
        ("spec.os", {"name": "windows"}),
        ("spec.securityContext.runAsNonRoot", True),
        (SC0, {}),
        *edits,
    )


# Each row: edits applied to the restricted pod, and the (rule, path) pairs baseline returns.
BASELINE_CASES = [
    # HostProcess
    pytest.param(
        [("spec.securityContext.windowsOptions.hostProcess", True)],
        {(RULE_HOST_PROCESS, "spec.securityContext.windowsOptions.hostProcess")},
        id="host-process-denied-on-pod",
    ),
    pytest.param(
        [(f"{SC0}.windowsOptions.hostProcess", True)],
        {(RULE_HOST_PROCESS, f"{SC0}.windowsOptions.hostProcess")},
        id="host-process-denied-on-container",
    ),
    pytest.param(
        [
            ("spec.initContainers", [restricted_container("setup")]),
            ("spec.initContainers[0].securityContext.windowsOptions.hostProcess", True),
        ],
        {
            (
                RULE_HOST_PROCESS,
                "spec.initContainers[0].securityContext.windowsOptions.hostProcess",
            )
        },
        id="host-process-denied-on-init-container",
    ),
    pytest.param(
        [("spec.securityContext.windowsOptions.hostProcess", False)],
        set(),
        id="host-process-false-allowed",
    ),
    # Host namespaces
    pytest.param(
        [("spec.hostNetwork", True)],
        {(RULE_HOST_NAMESPACES, "spec.hostNetwork")},
        id="host-namespaces-denies-host-network",
    ),
    pytest.param(
        [("spec.hostPID", True)],
        {(RULE_HOST_NAMESPACES, "spec.hostPID")},
        id="host-namespaces-denies-host-pid",
    ),
    pytest.param(
        [("spec.hostIPC", True)],
        {(RULE_HOST_NAMESPACES, "spec.hostIPC")},
        id="host-namespaces-denies-host-ipc",
    ),
    pytest.param(
        [("spec.hostNetwork", False), ("spec.hostPID", False), ("spec.hostIPC", False)],
        set(),
        id="host-namespaces-false-allowed",
    ),
    # Privileged
    pytest.param(
        [(f"{SC0}.privileged", True)],
        {(RULE_PRIVILEGED, f"{SC0}.privileged")},
        id="privileged-denied-on-container",
    ),
    pytest.param(
        [
            ("spec.initContainers", [restricted_container("setup")]),
            ("spec.initContainers[0].securityContext.privileged", True),
        ],
        {(RULE_PRIVILEGED, "spec.initContainers[0].securityContext.privileged")},
        id="privileged-denied-on-init-container",
    ),
    pytest.param(
        [
            ("spec.ephemeralContainers", [restricted_container("debug")]),
            ("spec.ephemeralContainers[0].securityContext.privileged", True),
        ],
        {(RULE_PRIVILEGED, "spec.ephemeralContainers[0].securityContext.privileged")},
        id="privileged-denied-on-ephemeral-container",
    ),
    pytest.param(
        [(f"{SC0}.privileged", False)],
        set(),
        id="privileged-false-allowed",
    ),
    # Capabilities (baseline)
    *[
        pytest.param(
            [(f"{SC0}.capabilities.add", [capability])],
            set(),
            id=f"capabilities-default-set-allows-{capability}",
        )
        for capability in DEFAULT_CAPABILITIES
    ],
    pytest.param(
        [(f"{SC0}.capabilities.add", ["NET_RAW"])],
        {(RULE_CAPABILITIES, f"{SC0}.capabilities.add[0]")},
        id="capabilities-denies-net-raw",
    ),
    pytest.param(
        [(f"{SC0}.capabilities.add", ["CHOWN", "SYS_ADMIN"])],
        {(RULE_CAPABILITIES, f"{SC0}.capabilities.add[1]")},
        id="capabilities-denies-sys-admin-and-names-its-index",
    ),
    pytest.param(
        [(f"{SC0}.capabilities.add", ["CAP_CHOWN", "chown"])],
        {
            (RULE_CAPABILITIES, f"{SC0}.capabilities.add[0]"),
            (RULE_CAPABILITIES, f"{SC0}.capabilities.add[1]"),
        },
        id="capabilities-names-match-exactly",
    ),
    # hostPath volumes
    pytest.param(
        [("spec.volumes", [{"name": "node", "hostPath": {"path": "/etc"}}])],
        {(RULE_HOST_PATH_VOLUMES, "spec.volumes[0].hostPath")},
        id="host-path-volume-denied",
    ),
    pytest.param(
        [("spec.volumes", [{"name": "scratch", "emptyDir": {}}, {"name": "nfs", "nfs": {}}])],
        set(),
        id="host-path-volumes-other-types-left-to-restricted",
    ),
    # Host ports
    pytest.param(
        [(f"{C0}.ports", [{"containerPort": 8080, "hostPort": 8080}])],
        {(RULE_HOST_PORTS, f"{C0}.ports[0].hostPort")},
        id="host-ports-denies-non-zero",
    ),
    pytest.param(
        [(f"{C0}.ports", [{"containerPort": 80}, {"containerPort": 8080, "hostPort": 0}])],
        set(),
        id="host-ports-zero-or-unset-allowed",
    ),
    pytest.param(
        [
            ("spec.initContainers", [restricted_container("setup")]),
            ("spec.initContainers[0].ports", [{"containerPort": 53, "hostPort": 53}]),
        ],
        {(RULE_HOST_PORTS, "spec.initContainers[0].ports[0].hostPort")},
        id="host-ports-denied-on-init-container",
    ),
    # AppArmor
    pytest.param(
        [("spec.securityContext.appArmorProfile", {"type": "Unconfined"})],
        {(RULE_APPARMOR, "spec.securityContext.appArmorProfile.type")},
        id="apparmor-unconfined-denied-on-pod",
    ),
    pytest.param(
        [(f"{SC0}.appArmorProfile", {"type": "Unconfined"})],
        {(RULE_APPARMOR, f"{SC0}.appArmorProfile.type")},
        id="apparmor-unconfined-denied-on-container",
    ),
    pytest.param(
        [(f"{SC0}.appArmorProfile", {})],
        {(RULE_APPARMOR, f"{SC0}.appArmorProfile.type")},
        id="apparmor-profile-without-type-denied",
    ),
    pytest.param(
        [("spec.securityContext.appArmorProfile", {"type": "RuntimeDefault"})],
        set(),
        id="apparmor-runtime-default-allowed",
    ),
    pytest.param(
        [(f"{SC0}.appArmorProfile", {"type": "Localhost", "localhostProfile": "k8s-app"})],
        set(),
        id="apparmor-localhost-profile-allowed",
    ),
    pytest.param(
        [("metadata.annotations", {APPARMOR_KEY: "runtime/default", "team": "ml"})],
        set(),
        id="apparmor-annotation-runtime-default-allowed",
    ),
    pytest.param(
        [("metadata.annotations", {APPARMOR_KEY: "localhost/k8s-app"})],
        set(),
        id="apparmor-annotation-localhost-allowed",
    ),
    pytest.param(
        [("metadata.annotations", {APPARMOR_KEY: ""})],
        set(),
        id="apparmor-annotation-empty-allowed",
    ),
    pytest.param(
        [("metadata.annotations", {APPARMOR_KEY: "unconfined"})],
        {(RULE_APPARMOR, f"metadata.annotations[{APPARMOR_KEY}]")},
        id="apparmor-annotation-unconfined-denied",
    ),
    pytest.param(
        [("metadata.annotations", {APPARMOR_KEY: "bogus", "other.example.com/x": "unconfined"})],
        {(RULE_APPARMOR, f"metadata.annotations[{APPARMOR_KEY}]")},
        id="apparmor-annotation-unknown-value-denied-other-keys-ignored",
    ),
    # SELinux
    *[
        pytest.param(
            [("spec.securityContext.seLinuxOptions", {"type": selinux_type, "level": "s0:c1"})],
            set(),
            id=f"selinux-type-{selinux_type}-allowed",
        )
        for selinux_type in ("container_t", "container_init_t", "container_kvm_t")
    ],
    pytest.param(
        [(f"{SC0}.seLinuxOptions", {"type": "container_engine_t"})],
        set(),
        id="selinux-container-engine-type-allowed",
    ),
    pytest.param(
        [("spec.securityContext.seLinuxOptions", {"type": "spc_t"})],
        {(RULE_SELINUX, "spec.securityContext.seLinuxOptions.type")},
        id="selinux-spc-type-denied-on-pod",
    ),
    pytest.param(
        [(f"{SC0}.seLinuxOptions", {"type": "unconfined_t"})],
        {(RULE_SELINUX, f"{SC0}.seLinuxOptions.type")},
        id="selinux-other-type-denied-on-container",
    ),
    pytest.param(
        [(f"{SC0}.seLinuxOptions", {"user": "system_u", "role": "system_r"})],
        {
            (RULE_SELINUX, f"{SC0}.seLinuxOptions.user"),
            (RULE_SELINUX, f"{SC0}.seLinuxOptions.role"),
        },
        id="selinux-user-and-role-denied",
    ),
    # /proc mount
    pytest.param(
        [(f"{SC0}.procMount", "Unmasked")],
        {(RULE_PROC_MOUNT, f"{SC0}.procMount")},
        id="proc-mount-unmasked-denied",
    ),
    pytest.param(
        [(f"{SC0}.procMount", "Unmasked"), ("spec.hostUsers", True)],
        {(RULE_PROC_MOUNT, f"{SC0}.procMount")},
        id="proc-mount-unmasked-denied-with-host-users",
    ),
    pytest.param(
        [(f"{SC0}.procMount", "Default")],
        set(),
        id="proc-mount-default-allowed",
    ),
    pytest.param(
        [(f"{SC0}.procMount", "Unmasked"), ("spec.hostUsers", False)],
        set(),
        id="proc-mount-unmasked-allowed-in-user-namespace",
    ),
    # Seccomp (baseline)
    pytest.param(
        [("spec.securityContext.seccompProfile", {"type": "Unconfined"})],
        {(RULE_SECCOMP, "spec.securityContext.seccompProfile.type")},
        id="seccomp-unconfined-denied-on-pod",
    ),
    pytest.param(
        [(f"{SC0}.seccompProfile", {"type": "Unconfined"})],
        {(RULE_SECCOMP, f"{SC0}.seccompProfile.type")},
        id="seccomp-unconfined-denied-on-container",
    ),
    pytest.param(
        [(f"{SC0}.seccompProfile", {})],
        {(RULE_SECCOMP, f"{SC0}.seccompProfile.type")},
        id="seccomp-profile-without-type-denied",
    ),
    pytest.param(
        [(f"{SC0}.seccompProfile", {"type": "Localhost", "localhostProfile": "p.json"})],
        set(),
        id="seccomp-localhost-allowed",
    ),
    # Sysctls
    *[
        pytest.param(
            [("spec.securityContext.sysctls", [{"name": name, "value": "1"}])],
            set(),
            id=f"sysctls-safe-{name}-allowed",
        )
        for name in SAFE_SYSCTL_NAMES
    ],
    pytest.param(
        [("spec.securityContext.sysctls", [{"name": "kernel.msgmax", "value": "65536"}])],
        {(RULE_SYSCTLS, "spec.securityContext.sysctls[0].name")},
        id="sysctls-kernel-msgmax-denied",
    ),
    pytest.param(
        [
            (
                "spec.securityContext.sysctls",
                [
                    {"name": "net.ipv4.tcp_syncookies", "value": "1"},
                    {"name": "net.core.somaxconn", "value": "1024"},
                ],
            )
        ],
        {(RULE_SYSCTLS, "spec.securityContext.sysctls[1].name")},
        id="sysctls-denied-entry-named-by-index",
    ),
    pytest.param(
        [("spec.securityContext.sysctls", [{"name": "net/ipv4/tcp_syncookies", "value": "1"}])],
        {(RULE_SYSCTLS, "spec.securityContext.sysctls[0].name")},
        id="sysctls-names-match-exactly",
    ),
    # Host in probes and lifecycle handlers
    pytest.param(
        [(f"{C0}.livenessProbe", {"httpGet": {"host": "10.0.0.1", "port": 80}})],
        {(RULE_HOST_PROBES, f"{C0}.livenessProbe.httpGet.host")},
        id="host-probes-liveness-http-host-denied",
    ),
    pytest.param(
        [(f"{C0}.readinessProbe", {"tcpSocket": {"host": "metadata.internal", "port": 80}})],
        {(RULE_HOST_PROBES, f"{C0}.readinessProbe.tcpSocket.host")},
        id="host-probes-readiness-tcp-host-denied",
    ),
    pytest.param(
        [(f"{C0}.startupProbe", {"httpGet": {"host": "169.254.169.254", "port": 80}})],
        {(RULE_HOST_PROBES, f"{C0}.startupProbe.httpGet.host")},
        id="host-probes-startup-http-host-denied",
    ),
    pytest.param(
        [(f"{C0}.lifecycle.postStart", {"httpGet": {"host": "10.0.0.1", "port": 80}})],
        {(RULE_HOST_PROBES, f"{C0}.lifecycle.postStart.httpGet.host")},
        id="host-probes-post-start-http-host-denied",
    ),
    pytest.param(
        [(f"{C0}.lifecycle.preStop", {"tcpSocket": {"host": "10.0.0.1", "port": 80}})],
        {(RULE_HOST_PROBES, f"{C0}.lifecycle.preStop.tcpSocket.host")},
        id="host-probes-pre-stop-tcp-host-denied",
    ),
    pytest.param(
        [
            (f"{C0}.livenessProbe", {"httpGet": {"host": "", "port": 80}}),
            (f"{C0}.readinessProbe", {"tcpSocket": {"port": 80}}),
        ],
        set(),
        id="host-probes-empty-or-unset-host-allowed",
    ),
    # Windows pods get no exemption from baseline
    pytest.param(
        windows_pod((f"{SC0}.windowsOptions.hostProcess", True)),
        {(RULE_HOST_PROCESS, f"{SC0}.windowsOptions.hostProcess")},
        id="windows-pod-host-process-still-denied",
    ),
]


@pytest.mark.parametrize(("edits", "expected"), BASELINE_CASES)
def test_baseline(edits: list[tuple[str, Any]], expected: set[tuple[str, str]]) -> None:
    assert found(pod_with(*edits), "baseline") == expected


# The rule a baseline violation is reported under at restricted, where a restricted check replaces
# the baseline one.
RESTRICTED_RULE_FOR = {
    RULE_CAPABILITIES: RULE_CAPABILITIES_RESTRICTED,
    RULE_HOST_PATH_VOLUMES: RULE_VOLUME_TYPES,
    RULE_SECCOMP: RULE_SECCOMP_RESTRICTED,
}


@pytest.mark.parametrize(("edits", "expected"), BASELINE_CASES)
def test_restricted_includes_every_baseline_check(
    edits: list[tuple[str, Any]], expected: set[tuple[str, str]]
) -> None:
    restricted = found(pod_with(*edits), "restricted")
    windows = ("spec.os", {"name": "windows"}) in edits
    for rule, path in expected:
        rule_at_restricted = rule if windows else RESTRICTED_RULE_FOR.get(rule, rule)
        assert (rule_at_restricted, path) in restricted


RESTRICTED_CASES = [
    pytest.param([], set(), id="restricted-pod-allowed"),
    # Volume types
    *[
        pytest.param(
            [("spec.volumes", [{"name": "v", source: {}}])],
            set(),
            id=f"volume-types-{source}-allowed",
        )
        for source in ALLOWED_VOLUME_SOURCES
    ],
    *[
        pytest.param(
            [("spec.volumes", [{"name": "v", source: {}}])],
            {(RULE_VOLUME_TYPES, f"spec.volumes[0].{source}")},
            id=f"volume-types-{source}-denied",
        )
        for source in DENIED_VOLUME_SOURCES
    ],
    # The API server defaults a volume without a source to an emptyDir before any admission
    # runs, so the reference never sees one: it is an emptyDir (issue 13 item 12).
    pytest.param(
        [("spec.volumes", [{"name": "v"}])],
        set(),
        id="volume-types-volume-without-source-is-an-empty-dir-allowed",
    ),
    pytest.param(
        [("spec.volumes", [{"name": "v", "emptyDir": None}])],
        set(),
        id="volume-types-null-source-is-no-source-so-an-empty-dir-allowed",
    ),
    pytest.param(
        [("spec.volumes", [{"name": "v", "hostPath": "/etc"}])],
        {(RULE_VOLUME_TYPES, "spec.volumes[0]")},
        id="volume-types-source-of-the-wrong-type-is-not-defaulted-denied",
    ),
    pytest.param(
        [("spec.volumes", [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}])],
        {(RULE_VOLUME_TYPES, "spec.volumes[0].hostPath")},
        id="volume-types-denied-source-beside-allowed-one-denied",
    ),
    pytest.param(
        [("spec.volumes", [{"name": "a", "secret": {}}, {"name": "b", "nfs": {}}])],
        {(RULE_VOLUME_TYPES, "spec.volumes[1].nfs")},
        id="volume-types-names-the-offending-volume",
    ),
    # Privilege escalation
    pytest.param(
        [(f"{SC0}.allowPrivilegeEscalation", DELETE)],
        {(RULE_PRIVILEGE_ESCALATION, f"{SC0}.allowPrivilegeEscalation")},
        id="privilege-escalation-unset-denied",
    ),
    pytest.param(
        [(f"{SC0}.allowPrivilegeEscalation", True)],
        {(RULE_PRIVILEGE_ESCALATION, f"{SC0}.allowPrivilegeEscalation")},
        id="privilege-escalation-true-denied",
    ),
    pytest.param(
        [
            (f"{C0}.securityContext", DELETE),
            ("spec.securityContext.runAsNonRoot", True),
            ("spec.securityContext.seccompProfile.type", "RuntimeDefault"),
        ],
        {
            (RULE_PRIVILEGE_ESCALATION, f"{SC0}.allowPrivilegeEscalation"),
            (RULE_CAPABILITIES_RESTRICTED, f"{SC0}.capabilities.drop"),
        },
        id="privilege-escalation-container-without-security-context-denied",
    ),
    pytest.param(
        [
            ("spec.initContainers", [restricted_container("setup")]),
            ("spec.initContainers[0].securityContext.allowPrivilegeEscalation", DELETE),
        ],
        {
            (
                RULE_PRIVILEGE_ESCALATION,
                "spec.initContainers[0].securityContext.allowPrivilegeEscalation",
            )
        },
        id="privilege-escalation-init-container-denied",
    ),
    pytest.param(
        [
            ("spec.ephemeralContainers", [restricted_container("debug")]),
            ("spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation", DELETE),
        ],
        {
            (
                RULE_PRIVILEGE_ESCALATION,
                "spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation",
            )
        },
        id="privilege-escalation-ephemeral-container-denied",
    ),
    pytest.param(
        [("spec.os", {"name": "linux"}), (f"{SC0}.allowPrivilegeEscalation", DELETE)],
        {(RULE_PRIVILEGE_ESCALATION, f"{SC0}.allowPrivilegeEscalation")},
        id="privilege-escalation-linux-pod-denied",
    ),
    # Running as non-root
    pytest.param(
        [("spec.securityContext.runAsNonRoot", True), (f"{SC0}.runAsNonRoot", DELETE)],
        set(),
        id="run-as-non-root-pod-level-covers-container",
    ),
    pytest.param(
        [(f"{SC0}.runAsNonRoot", DELETE)],
        {(RULE_RUN_AS_NON_ROOT, f"{SC0}.runAsNonRoot")},
        id="run-as-non-root-unset-everywhere-denied",
    ),
    pytest.param(
        [("spec.securityContext.runAsNonRoot", True), (f"{SC0}.runAsNonRoot", False)],
        {(RULE_RUN_AS_NON_ROOT, f"{SC0}.runAsNonRoot")},
        id="run-as-non-root-container-false-overrides-pod-true",
    ),
    pytest.param(
        [("spec.securityContext.runAsNonRoot", False)],
        {(RULE_RUN_AS_NON_ROOT, "spec.securityContext.runAsNonRoot")},
        id="run-as-non-root-pod-false-denied-even-if-containers-true",
    ),
    pytest.param(
        [("spec.securityContext.runAsNonRoot", False), (f"{SC0}.runAsNonRoot", DELETE)],
        {
            (RULE_RUN_AS_NON_ROOT, "spec.securityContext.runAsNonRoot"),
            (RULE_RUN_AS_NON_ROOT, f"{SC0}.runAsNonRoot"),
        },
        id="run-as-non-root-pod-false-leaves-container-unset",
    ),
    pytest.param(
        [
            ("spec.securityContext.runAsNonRoot", True),
            ("spec.ephemeralContainers", [restricted_container("debug")]),
            ("spec.ephemeralContainers[0].securityContext.runAsNonRoot", False),
        ],
        {(RULE_RUN_AS_NON_ROOT, "spec.ephemeralContainers[0].securityContext.runAsNonRoot")},
        id="run-as-non-root-ephemeral-container-false-denied",
    ),
    pytest.param(
        [
            ("spec.initContainers", [restricted_container("setup")]),
            ("spec.initContainers[0].securityContext.runAsNonRoot", DELETE),
        ],
        {(RULE_RUN_AS_NON_ROOT, "spec.initContainers[0].securityContext.runAsNonRoot")},
        id="run-as-non-root-init-container-unset-denied",
    ),
    pytest.param(
        [("spec.hostUsers", False), (f"{SC0}.runAsNonRoot", False)],
        set(),
        id="run-as-non-root-relaxed-in-user-namespace",
    ),
    pytest.param(
        [("spec.hostUsers", True), (f"{SC0}.runAsNonRoot", DELETE)],
        {(RULE_RUN_AS_NON_ROOT, f"{SC0}.runAsNonRoot")},
        id="run-as-non-root-host-users-true-not-relaxed",
    ),
    # runAsUser
    pytest.param(
        [(f"{SC0}.runAsUser", 0)],
        {(RULE_RUN_AS_USER, f"{SC0}.runAsUser")},
        id="run-as-user-zero-denied-on-container",
    ),
    pytest.param(
        [("spec.securityContext.runAsUser", 0), (f"{SC0}.runAsUser", 1000)],
        {(RULE_RUN_AS_USER, "spec.securityContext.runAsUser")},
        id="run-as-user-zero-denied-on-pod-even-if-overridden",
    ),
    pytest.param(
        [("spec.securityContext.runAsUser", 1000), (f"{SC0}.runAsUser", 65534)],
        set(),
        id="run-as-user-non-zero-allowed",
    ),
    pytest.param(
        [("spec.hostUsers", False), (f"{SC0}.runAsUser", 0), (f"{SC0}.runAsNonRoot", DELETE)],
        set(),
        id="run-as-user-zero-relaxed-in-user-namespace",
    ),
    # Seccomp (restricted)
    pytest.param(
        [
            ("spec.securityContext.seccompProfile", {"type": "RuntimeDefault"}),
            (f"{SC0}.seccompProfile", DELETE),
        ],
        set(),
        id="seccomp-restricted-pod-level-covers-container",
    ),
    pytest.param(
        [
            ("spec.securityContext.seccompProfile", {"type": "Localhost", "localhostProfile": "x"}),
            (f"{SC0}.seccompProfile", DELETE),
        ],
        set(),
        id="seccomp-restricted-pod-localhost-allowed",
    ),
    pytest.param(
        [(f"{SC0}.seccompProfile", {"type": "Localhost", "localhostProfile": "p.json"})],
        set(),
        id="seccomp-restricted-container-localhost-allowed",
    ),
    pytest.param(
        [(f"{SC0}.seccompProfile", DELETE)],
        {(RULE_SECCOMP_RESTRICTED, f"{SC0}.seccompProfile")},
        id="seccomp-restricted-unset-everywhere-denied",
    ),
    pytest.param(
        [
            ("spec.securityContext.seccompProfile", {"type": "RuntimeDefault"}),
            (f"{SC0}.seccompProfile", {"type": "Unconfined"}),
        ],
        {(RULE_SECCOMP_RESTRICTED, f"{SC0}.seccompProfile.type")},
        id="seccomp-restricted-container-unconfined-overrides-pod",
    ),
    pytest.param(
        [
            ("spec.securityContext.seccompProfile", {"type": "Unconfined"}),
            (f"{SC0}.seccompProfile", DELETE),
        ],
        {
            (RULE_SECCOMP_RESTRICTED, "spec.securityContext.seccompProfile.type"),
            (RULE_SECCOMP_RESTRICTED, f"{SC0}.seccompProfile"),
        },
        id="seccomp-restricted-pod-unconfined-covers-nothing",
    ),
    # Capabilities (restricted)
    pytest.param(
        [(f"{SC0}.capabilities", DELETE)],
        {(RULE_CAPABILITIES_RESTRICTED, f"{SC0}.capabilities.drop")},
        id="capabilities-restricted-missing-drop-denied",
    ),
    pytest.param(
        [(f"{SC0}.capabilities.drop", [])],
        {(RULE_CAPABILITIES_RESTRICTED, f"{SC0}.capabilities.drop")},
        id="capabilities-restricted-empty-drop-denied",
    ),
    pytest.param(
        [(f"{SC0}.capabilities.drop", ["all", "NET_RAW"])],
        {(RULE_CAPABILITIES_RESTRICTED, f"{SC0}.capabilities.drop")},
        id="capabilities-restricted-drop-all-is-case-sensitive",
    ),
    pytest.param(
        [(f"{SC0}.capabilities.add", ["NET_BIND_SERVICE"])],
        set(),
        id="capabilities-restricted-net-bind-service-allowed",
    ),
    pytest.param(
        [(f"{SC0}.capabilities.add", ["NET_BIND_SERVICE", "CHOWN"])],
        {(RULE_CAPABILITIES_RESTRICTED, f"{SC0}.capabilities.add[1]")},
        id="capabilities-restricted-denies-default-set-beyond-net-bind-service",
    ),
    pytest.param(
        [
            ("spec.initContainers", [restricted_container("setup")]),
            ("spec.initContainers[0].securityContext.capabilities", {"drop": ["NET_RAW"]}),
        ],
        {
            (
                RULE_CAPABILITIES_RESTRICTED,
                "spec.initContainers[0].securityContext.capabilities.drop",
            )
        },
        id="capabilities-restricted-init-container-denied",
    ),
    # /proc mount at restricted: no user-namespace exception
    pytest.param(
        [(f"{SC0}.procMount", "Unmasked"), ("spec.hostUsers", False)],
        {(RULE_PROC_MOUNT, f"{SC0}.procMount")},
        id="proc-mount-unmasked-denied-in-user-namespace-at-restricted",
    ),
    # hostPath at restricted is a volume type, reported once
    pytest.param(
        [("spec.volumes", [{"name": "node", "hostPath": {"path": "/"}}])],
        {(RULE_VOLUME_TYPES, "spec.volumes[0].hostPath")},
        id="volume-types-reports-host-path-once",
    ),
    # Windows pods
    pytest.param(
        windows_pod(),
        set(),
        id="windows-pod-exempt-from-linux-only-requirements",
    ),
    pytest.param(
        windows_pod(("spec.securityContext.runAsNonRoot", DELETE)),
        {(RULE_RUN_AS_NON_ROOT, f"{SC0}.runAsNonRoot")},
        id="windows-pod-still-needs-run-as-non-root",
    ),
    pytest.param(
        windows_pod((f"{SC0}.runAsUser", 0)),
        {(RULE_RUN_AS_USER, f"{SC0}.runAsUser")},
        id="windows-pod-still-denies-run-as-user-zero",
    ),
    pytest.param(
        windows_pod(("spec.volumes", [{"name": "v", "hostPath": {}}])),
        {(RULE_VOLUME_TYPES, "spec.volumes[0].hostPath")},
        id="windows-pod-still-denies-volume-types",
    ),
    pytest.param(
        windows_pod((f"{SC0}.seccompProfile", {"type": "Unconfined"})),
        {(RULE_SECCOMP, f"{SC0}.seccompProfile.type")},
        id="windows-pod-explicit-unconfined-seccomp-still-denied",
    ),
    pytest.param(
        windows_pod((f"{SC0}.capabilities", {"add": ["SYS_ADMIN"]})),
        {(RULE_CAPABILITIES, f"{SC0}.capabilities.add[0]")},
        id="windows-pod-explicit-capability-still-denied",
    ),
]


@pytest.mark.parametrize(("edits", "expected"), RESTRICTED_CASES)
def test_restricted(edits: list[tuple[str, Any]], expected: set[tuple[str, str]]) -> None:
    assert found(pod_with(*edits), "restricted") == expected


def everything_wrong() -> dict[str, Any]:
    """A pod template that breaks every rule of both levels."""
    bad_container = {
        "name": "app",
        "ports": [{"containerPort": 80, "hostPort": 80}],
        "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}},
        "securityContext": {
            "privileged": True,
            "allowPrivilegeEscalation": True,
            "capabilities": {"add": ["SYS_ADMIN"]},
            "procMount": "Unmasked",
            "runAsUser": 0,
            "seLinuxOptions": {"type": "spc_t"},
            "appArmorProfile": {"type": "Unconfined"},
            "seccompProfile": {"type": "Unconfined"},
            "windowsOptions": {"hostProcess": True},
        },
    }
    return {
        "metadata": {"annotations": {APPARMOR_KEY: "unconfined"}},
        "spec": {
            "hostNetwork": True,
            "securityContext": {"runAsNonRoot": False, "sysctls": [{"name": "kernel.msgmax"}]},
            "volumes": [{"name": "node", "hostPath": {"path": "/"}}],
            "containers": [bad_container],
        },
    }


@pytest.mark.parametrize(
    ("level", "rules"),
    [
        pytest.param("privileged", set(), id="privileged-level-allows-everything"),
        pytest.param("baseline", BASELINE_RULES, id="baseline-reports-every-baseline-rule"),
        pytest.param("restricted", RESTRICTED_RULES, id="restricted-reports-every-restricted-rule"),
    ],
)
def test_each_level_reports_its_rules(level: Level, rules: frozenset[str]) -> None:
    """Linux and Windows pods together reach every rule of the level, and no other rule."""
    linux = everything_wrong()
    windows = everything_wrong()
    windows["spec"]["os"] = {"name": "windows"}
    reasons = [
        *check_pod_security(linux["spec"], linux["metadata"], level),
        *check_pod_security(windows["spec"], windows["metadata"], level),
    ]
    assert {reason.rule for reason in reasons} == rules


def test_every_reason_says_what_and_how() -> None:
    pod = everything_wrong()
    reasons = check_pod_security(pod["spec"], pod["metadata"], "restricted")
    for reason in reasons:
        assert reason.message.strip(), reason
        assert reason.fix.strip(), reason
        assert str(reason).startswith(f"{reason.path}: ")
    assert any('container "app"' in reason.message for reason in reasons)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(
            "spec",
            {
                (RULE_PRIVILEGED, "spec.containers[0].securityContext.privileged"),
                (RULE_APPARMOR, f"metadata.annotations[{APPARMOR_KEY}]"),
            },
            id="paths-for-a-pod",
        ),
        pytest.param(
            "spec.template.spec",
            {
                (RULE_PRIVILEGED, "spec.template.spec.containers[0].securityContext.privileged"),
                (RULE_APPARMOR, f"spec.template.metadata.annotations[{APPARMOR_KEY}]"),
            },
            id="paths-for-a-deployment",
        ),
        pytest.param(
            "spec.jobTemplate.spec.template.spec",
            {
                (
                    RULE_PRIVILEGED,
                    "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged",
                ),
                (
                    RULE_APPARMOR,
                    f"spec.jobTemplate.spec.template.metadata.annotations[{APPARMOR_KEY}]",
                ),
            },
            id="paths-for-a-cronjob",
        ),
    ],
)
def test_paths_point_into_the_admitted_object(path: str, expected: set[tuple[str, str]]) -> None:
    pod = pod_with(
        (f"{SC0}.privileged", True), ("metadata.annotations", {APPARMOR_KEY: "unconfined"})
    )
    assert found(pod, "baseline", path=path) == expected


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        pytest.param(BASELINE_CAPABILITIES, DEFAULT_CAPABILITIES, id="capabilities-list-exact"),
        pytest.param(SAFE_SYSCTLS, SAFE_SYSCTL_NAMES, id="sysctls-list-exact"),
        pytest.param(RESTRICTED_VOLUME_SOURCES, ALLOWED_VOLUME_SOURCES, id="volume-list-exact"),
    ],
)
def test_published_allow_lists_allow_nothing_more(
    published: frozenset[str], expected: tuple[str, ...]
) -> None:
    """The module's lists are documentation too: they hold exactly the reference's entries."""
    assert published == frozenset(expected)


def test_unknown_level_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown Pod Security Standards level"):
        check_pod_security({}, None, "strict")  # type: ignore[arg-type]


def test_input_is_not_modified() -> None:
    pod = everything_wrong()
    before = copy.deepcopy(pod)
    check_pod_security(pod["spec"], pod["metadata"], "restricted")
    assert pod == before


@pytest.mark.parametrize(
    ("spec", "metadata", "expected"),
    [
        pytest.param(None, None, set(), id="malformed-spec-none-reads-as-empty"),
        pytest.param({"containers": "app"}, None, set(), id="malformed-containers-string-ignored"),
        pytest.param(
            {"hostNetwork": "true", "hostPID": 1}, None, set(), id="malformed-flags-read-unset"
        ),
        pytest.param(
            {"securityContext": {"runAsNonRoot": True}, "containers": [None]},
            None,
            {
                (RULE_PRIVILEGE_ESCALATION, f"{SC0}.allowPrivilegeEscalation"),
                (RULE_SECCOMP_RESTRICTED, f"{SC0}.seccompProfile"),
                (RULE_CAPABILITIES_RESTRICTED, f"{SC0}.capabilities.drop"),
            },
            id="malformed-container-entry-sets-nothing",
        ),
        pytest.param(
            {"volumes": ["scratch"], "securityContext": {"sysctls": [None]}},
            {"annotations": ["not", "a", "map"]},
            {
                (RULE_VOLUME_TYPES, "spec.volumes[0]"),
                (RULE_SYSCTLS, "spec.securityContext.sysctls[0].name"),
            },
            id="malformed-list-entries-are-zero-values",
        ),
        pytest.param(
            {
                "securityContext": {"runAsNonRoot": True, "seccompProfile": "RuntimeDefault"},
                "containers": [
                    {
                        "name": 7,
                        "securityContext": {
                            "allowPrivilegeEscalation": "false",
                            "capabilities": {"drop": "ALL"},
                            "runAsUser": "0",
                        },
                    }
                ],
            },
            None,
            {
                (RULE_PRIVILEGE_ESCALATION, f"{SC0}.allowPrivilegeEscalation"),
                (RULE_SECCOMP_RESTRICTED, f"{SC0}.seccompProfile"),
                (RULE_CAPABILITIES_RESTRICTED, f"{SC0}.capabilities.drop"),
            },
            id="malformed-wrong-types-never-count-as-compliant",
        ),
    ],
)
def test_malformed_input_reads_as_not_set(
    spec: Any, metadata: Any, expected: set[tuple[str, str]]
) -> None:
    reasons = check_pod_security(spec, metadata, "restricted")
    assert {(reason.rule, reason.path) for reason in reasons} == expected


_JUNK: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1.5,
    float("nan"),
    "",
    "ALL",
    "Unconfined",
    "windows",
    "x" * 500,
    [],
    {},
    [None],
    {"": None},
    {1: "non-string key"},
    ("tuple",),
    b"bytes",
    object(),
]


def _mutate(node: Any, rng: random.Random, depth: int = 0) -> Any:
    """Replace random parts of `node` with junk, keeping the rest, so every check sees oddities."""
    if rng.random() < 0.15:
        return copy.deepcopy(rng.choice(_JUNK)) if rng.random() < 0.9 else rng.choice(_JUNK)
    if isinstance(node, dict):
        mutated = {key: _mutate(value, rng, depth + 1) for key, value in node.items()}
        if rng.random() < 0.2:
            mutated[rng.choice(["type", "name", "host", "add", "drop", "hostPath"])] = rng.choice(
                _JUNK
            )
        return mutated
    if isinstance(node, list):
        return [_mutate(item, rng, depth + 1) for item in node] + (
            [rng.choice(_JUNK)] if rng.random() < 0.2 else []
        )
    return node


def _random_tree(rng: random.Random, depth: int = 0) -> Any:
    if depth > 4 or rng.random() < 0.3:
        return rng.choice(_JUNK)
    keys = ["containers", "initContainers", "securityContext", "volumes", "os", "hostUsers"]
    keys += ["capabilities", "seccompProfile", "appArmorProfile", "seLinuxOptions", "sysctls"]
    if rng.random() < 0.5:
        return [_random_tree(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(keys): _random_tree(rng, depth + 1) for _ in range(rng.randint(0, 4))}


LEVELS: tuple[Level, ...] = ("privileged", "baseline", "restricted")


@pytest.mark.parametrize("seed", range(20))
def test_property_random_and_malformed_input_never_raises(seed: int) -> None:
    rng = random.Random(seed)
    templates = [everything_wrong(), restricted_pod(), pod_with(*windows_pod())]
    for _ in range(100):
        if rng.random() < 0.7:
            pod = _mutate(rng.choice(templates), rng)
            spec, metadata = (
                (pod.get("spec"), pod.get("metadata")) if isinstance(pod, dict) else (pod, pod)
            )
        else:
            spec, metadata = _random_tree(rng), _random_tree(rng)
        results = {level: check_pod_security(spec, metadata, level) for level in LEVELS}
        for reasons in results.values():
            assert isinstance(reasons, list)
            assert all(isinstance(reason, Reason) for reason in reasons)
            assert all(reason.path.startswith(("spec", "metadata")) for reason in reasons)
        assert results["privileged"] == []
        # Restricted never admits what baseline refuses.
        assert bool(results["restricted"]) or not results["baseline"]
