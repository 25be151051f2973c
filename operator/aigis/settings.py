"""The one settings object of the aigis processes.

Flags and environment variables are read in exactly one place (the CLI, through click's `envvar`),
turned into a frozen `OperatorSettings`, and passed down. Nothing below the CLI reads the
environment, so every component can be tested with plain values.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from aigis.api.errors import FieldError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("plain", "json")
NETWORK_POLICY_MODES = ("Auto", "NetworkPolicy", "Cilium", "Both")
# A pod's listeners must be reachable on its IP by Prometheus and the kubelet.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """How `aigis operator` runs.

    `namespaces` empty means cluster-wide. A port of 0 disables that listener. The defaults suit a
    pod (listen on every interface so Prometheus and the kubelet can reach them); local runs and
    tests pass `127.0.0.1`.
    """

    namespaces: tuple[str, ...] = ()
    metrics_address: str = ALL_INTERFACES
    metrics_port: int = 8080
    health_address: str = ALL_INTERFACES
    health_port: int = 8081
    log_level: str = "INFO"
    log_format: str = "plain"
    peering: str | None = None
    aigis_namespace: str | None = None
    """The namespace aigis runs in; never governed by any AIClusterPolicy."""
    network_policy_mode: str = "Auto"
    """Which egress policies to write: Auto writes NetworkPolicies, plus CiliumNetworkPolicies
    where Cilium's CRDs are installed; NetworkPolicy or Cilium writes only that kind; Both both."""
    refresh_seconds: float = 60.0
    """How often each workload is reconciled again: DNS refresh and a safety net for drift."""
    static_hosts: Path | None = None
    """Resolve declared hosts from this YAML file instead of DNS (air-gapped clusters, tests)."""
    dns_namespace: str = "kube-system"
    dns_labels: tuple[tuple[str, str], ...] = field(default=(("k8s-app", "kube-dns"),))
    """The cluster DNS pods every egress policy must allow."""
    forensics_capture_timeout: float = 120.0
    """A forensic capture still collecting after this many seconds is stored incomplete with
    what it has (the pod's deletion waits for it)."""
    audit_seconds: float = 300.0
    """Seconds between the background audit's full passes (`aigis.controller.audit`); 0 runs one
    at start and then only when an AIWorkload, AIClusterPolicy or namespace's labels change."""

    def problems(self) -> list[FieldError]:
        """Everything wrong with these settings, each naming the flag and the fix."""
        found: list[FieldError] = []
        for flag, address in (
            ("--metrics-address", self.metrics_address),
            ("--health-address", self.health_address),
        ):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                found.append(
                    FieldError(flag, f'"{address}" is not an IP address; write e.g. "127.0.0.1"')
                )
        for flag, port in (
            ("--metrics-port", self.metrics_port),
            ("--health-port", self.health_port),
        ):
            if not 0 <= port <= 65535:
                found.append(
                    FieldError(flag, f"{port} is not a port; use 1-65535, or 0 to disable")
                )
        if (
            self.metrics_port
            and self.metrics_port == self.health_port
            and self.metrics_address == self.health_address
        ):
            found.append(
                FieldError("--health-port", "must differ from --metrics-port; they are two servers")
            )
        if self.log_level.upper() not in LOG_LEVELS:
            found.append(
                FieldError(
                    "--log-level", f'"{self.log_level}" is not one of {", ".join(LOG_LEVELS)}'
                )
            )
        if self.network_policy_mode not in NETWORK_POLICY_MODES:
            found.append(
                FieldError(
                    "--network-policy-mode",
                    f'"{self.network_policy_mode}" is not one of {", ".join(NETWORK_POLICY_MODES)}',
                )
            )
        if not 1 <= self.refresh_seconds <= 86400:
            found.append(FieldError("--refresh-seconds", "must be between 1 and 86400 seconds"))
        if not 1 <= self.forensics_capture_timeout <= 3600:
            found.append(
                FieldError(
                    "--forensics-capture-timeout",
                    "must be between 1 and 3600 seconds; a deleted pod waits this long at most",
                )
            )
        if self.audit_seconds != 0 and not 1 <= self.audit_seconds <= 86400:
            found.append(
                FieldError(
                    "--audit-interval",
                    "must be between 1 and 86400 seconds, or 0 to audit only on changes",
                )
            )
        if self.static_hosts is not None and not self.static_hosts.is_file():
            found.append(
                FieldError("--static-hosts", f"{self.static_hosts} is not a readable file")
            )
        if not self.dns_labels:
            found.append(
                FieldError("--dns-labels", "needs at least one label, e.g. k8s-app=kube-dns")
            )
        if self.log_format not in LOG_FORMATS:
            found.append(
                FieldError("--log-format", f'"{self.log_format}" is not one of plain, json')
            )
        return found
