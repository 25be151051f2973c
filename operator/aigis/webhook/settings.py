"""How `aigis webhook` runs: one frozen settings object, built from flags in the CLI only.

Like `aigis.settings.OperatorSettings`: nothing below the CLI reads the environment, and
`problems()` names the flag and the fix for every bad value, so the process refuses to start
with a clear message instead of failing later in the middle of a handshake.

Every failure mode is a setting: `enforce_failure_policy` (fail closed in Enforce namespaces, or
open everywhere), `timeout_seconds`, and where the certificates come from (`cert_dir` for
cert-manager, else a Secret aigis manages).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aigis import __version__
from aigis.api.errors import FieldError
from aigis.api.validation import dns_subdomain_problem, label_key_problem, label_value_problem
from aigis.webhook.webhooks import MAX_TIMEOUT_SECONDS

DEFAULT_GATEWAY_IMAGE = f"ghcr.io/aigis-dev/aigis:{__version__}"
FAILURE_POLICIES = ("Fail", "Ignore")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# A pod's listener must be reachable on its IP by the API server, Prometheus and the kubelet.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


def split_listen(value: str) -> tuple[str, int] | None:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) into its parts; None when it is not that."""
    host, colon, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        return None
    return host, int(port)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """How the admission webhook process runs. Defaults suit a pod; tests pass loopback."""

    listen: str = f"{ALL_INTERFACES}:9443"
    """Where the HTTPS server listens for the API server."""
    metrics_listen: str = f"{ALL_INTERFACES}:8080"
    """Where plain-HTTP `/metrics`, `/healthz` and `/readyz` listen; port 0 disables it."""
    webhook_url: str | None = None
    """How the API server reaches the webhook when not through a Service (local clusters,
    tests): `https://IP:PORT`."""
    service_name: str | None = None
    """The Service in front of the webhook pods, in `service_namespace`."""
    service_namespace: str | None = None
    service_port: int = 443
    aigis_namespace: str | None = None
    """aigis's own namespace: never reviewed; holds the certificate Secret."""
    certificate_secret: str = "aigis-webhook-tls"  # noqa: S105 - a Secret's name
    cert_dir: Path | None = None
    """Read tls.crt, tls.key and ca.crt from here (cert-manager) instead of managing a Secret."""
    gateway_image: str = DEFAULT_GATEWAY_IMAGE
    configuration_name: str = "aigis"
    """Name of the Validating- and MutatingWebhookConfiguration aigis keeps."""
    scope: tuple[tuple[str, str], ...] = ()
    """Only namespaces (and AIClusterPolicies) with all these labels are reviewed."""
    timeout_seconds: int = MAX_TIMEOUT_SECONDS
    enforce_failure_policy: str = "Fail"
    """Fail: namespaces governed by an Enforce policy refuse everything while the webhook is
    down. Ignore: aigis fails open everywhere."""
    max_body_bytes: int = 7 * 1024 * 1024
    log_level: str = "INFO"

    def problems(self) -> list[FieldError]:
        """Everything wrong with these settings, each naming the flag and the fix."""
        found: list[FieldError] = []
        for flag, value in (("--listen", self.listen), ("--metrics-listen", self.metrics_listen)):
            if split_listen(value) is None:
                found.append(FieldError(flag, f'"{value}" must be IP:PORT, e.g. 127.0.0.1:9443'))
        found += self._endpoint_problems()
        if self.cert_dir is None:
            if not self.aigis_namespace:
                found.append(
                    FieldError(
                        "--aigis-namespace",
                        "is needed to keep the certificate Secret; or pass --cert-dir",
                    )
                )
            problem = dns_subdomain_problem(self.certificate_secret)
            if problem:
                found.append(FieldError("--certificate-secret", problem))
        elif not self.cert_dir.is_dir():
            found.append(FieldError("--cert-dir", f"{self.cert_dir} is not a directory"))
        problem = dns_subdomain_problem(self.configuration_name)
        if problem or len(self.configuration_name) > 200:
            found.append(
                FieldError(
                    "--configuration-name",
                    problem or "must be at most 200 characters",
                )
            )
        for key, value in self.scope:
            problem = label_key_problem(key) or label_value_problem(value)
            if problem:
                found.append(FieldError("--scope", f"{key}={value}: {problem}"))
        if not 1 <= self.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            found.append(
                FieldError(
                    "--timeout-seconds",
                    f"must be 1-{MAX_TIMEOUT_SECONDS}: the API server waits this long on every "
                    "write it sends to the webhook",
                )
            )
        if self.enforce_failure_policy not in FAILURE_POLICIES:
            found.append(FieldError("--enforce-failure-policy", "must be Fail or Ignore"))
        if not self.gateway_image.strip():
            found.append(FieldError("--gateway-image", "must name the aigis image to inject"))
        if not 64 * 1024 <= self.max_body_bytes <= 64 * 1024 * 1024:
            found.append(FieldError("--max-body-bytes", "must be between 64 KiB and 64 MiB"))
        return found

    def _endpoint_problems(self) -> list[FieldError]:
        if (self.webhook_url is None) == (self.service_name is None):
            return [
                FieldError(
                    "--webhook-url",
                    "give either --webhook-url (https://IP:PORT) or --service-name, not both",
                )
            ]
        if self.webhook_url is not None:
            parts = urlsplit(self.webhook_url)
            if parts.scheme != "https" or not parts.hostname:
                return [
                    FieldError("--webhook-url", f'"{self.webhook_url}" must be https://HOST[:PORT]')
                ]
            if parts.query or parts.fragment or parts.path not in ("", "/"):
                return [
                    FieldError(
                        "--webhook-url",
                        "must have no path, query or fragment; aigis appends /validate and /mutate",
                    )
                ]
            return []
        found = []
        if not _DNS_LABEL.fullmatch(self.service_name or "") or len(self.service_name or "") > 63:
            found.append(FieldError("--service-name", "must be a DNS label, e.g. aigis-webhook"))
        if not self.service_namespace and not self.aigis_namespace:
            found.append(
                FieldError(
                    "--service-namespace",
                    "is needed with --service-name (or set --aigis-namespace)",
                )
            )
        if not 1 <= self.service_port <= 65535:
            found.append(FieldError("--service-port", "must be 1-65535"))
        return found

    @property
    def listen_address(self) -> tuple[str, int]:
        found = split_listen(self.listen)
        assert found is not None, "call problems() first"
        return found

    @property
    def metrics_address(self) -> tuple[str, int]:
        found = split_listen(self.metrics_listen)
        assert found is not None, "call problems() first"
        return found

    @property
    def resolved_service_namespace(self) -> str | None:
        return self.service_namespace or self.aigis_namespace
