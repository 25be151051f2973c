"""Prometheus metrics of one gateway process, in a registry of its own, served on a separate port.

With `--workers N` each worker keeps its own registry on its own port (the metrics port plus its
index): Prometheus scrapes each as a target, and no state is shared between processes.

Every label value comes from a bounded set: route labels, decisions and reasons are fixed in
code; guardrail names and finding types come from the engine and are additionally capped; models
are labelled only after they passed the allowlist. No prompt text, host typed by the app, or
model name from user input ever becomes a label.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from aigis.gateway.overload import ConcurrencyGate

_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005,
    0.0075, 0.01, 0.02, 0.05, 0.1,
)  # fmt: skip
_UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,63}")
MAX_FINDING_TYPES = 100
"""Distinct finding types labelled before the rest are counted as `other`."""


class GatewayMetrics:
    """The gateway's metrics; label children are cached so a request costs a few dict lookups."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "aigis_gateway_requests_total",
            "Requests by route and decision (allowed, redacted, blocked, refused, invalid, "
            "error, audited) and reason.",
            ["route", "decision", "reason"],
            registry=self.registry,
        )
        self.findings = Counter(
            "aigis_gateway_guardrail_findings_total",
            "Guardrail findings by guardrail, finding type, action taken and direction.",
            ["guardrail", "type", "action", "direction"],
            registry=self.registry,
        )
        self.guardrail_errors = Counter(
            "aigis_gateway_guardrail_errors_total",
            "Guardrail failures by direction and what followed (refused, passed).",
            ["direction", "outcome"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "aigis_gateway_upstream_seconds",
            "Time from sending a request upstream to having its response headers, by provider.",
            ["provider"],
            buckets=_UPSTREAM_BUCKETS,
            registry=self.registry,
        )
        self.added_seconds = Histogram(
            "aigis_gateway_added_seconds",
            "Latency the gateway itself adds to a request (total minus upstream time), by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "aigis_gateway_tokens_total",
            "Tokens reported by the provider, by allowed model and kind (prompt, completion).",
            ["model", "kind"],
            registry=self.registry,
        )
        self.egress = Counter(
            "aigis_gateway_egress_total",
            "Plain egress (forward proxy and CONNECT) by method and decision.",
            ["method", "decision", "reason"],
            registry=self.registry,
        )
        self.config_reloads = Counter(
            "aigis_gateway_config_reloads_total",
            "Configuration loads by result (applied, refused).",
            ["result"],
            registry=self.registry,
        )
        self.config_generation = Gauge(
            "aigis_gateway_config_generation",
            "How many configurations this gateway process has applied.",
            registry=self.registry,
        )
        self.audit_backpressure = Counter(
            "aigis_gateway_audit_backpressure_total",
            "Times the audit writer fell a full queue behind and requests waited for it.",
            registry=self.registry,
        )
        self.audit_write_errors = Counter(
            "aigis_gateway_audit_write_errors_total",
            "Audit lines that could not be written (each is also logged).",
            registry=self.registry,
        )
        self.shed = Counter(
            "aigis_gateway_shed_total",
            "Requests refused with 503 because the gateway was at capacity, by reason "
            "(queue_full: every slot and queue place taken; queue_timeout: no slot freed in time; "
            "loop_lag: the CPU is saturated, requests already waited past the deadline).",
            ["reason"],
            registry=self.registry,
        )
        for reason in ("queue_full", "queue_timeout", "loop_lag"):
            self.shed.labels(reason)
        self.in_flight = Gauge(
            "aigis_gateway_in_flight_requests",
            "LLM requests being served now (a stream counts until it ends).",
            registry=self.registry,
        )
        self.queued = Gauge(
            "aigis_gateway_queued_requests",
            "LLM requests waiting for a slot now.",
            registry=self.registry,
        )
        self.loop_lag = Gauge(
            "aigis_gateway_event_loop_lag_seconds",
            "How late the event loop last ran a timer: what a request arriving now waits first.",
            registry=self.registry,
        )
        self._finding_types: set[str] = set()

    def watch_gate(self, gate: ConcurrencyGate) -> None:
        """Report the gate's in-flight and queued counts (read at scrape time, free per request)."""
        self.in_flight.set_function(lambda: gate.in_flight)
        self.queued.set_function(lambda: gate.queued)
        self.loop_lag.set_function(lambda: gate.lag.lag)

    def finding_type(self, value: str) -> str:
        """A finding type as a label: well-formed and among the first few seen, else `other`."""
        if value in self._finding_types:
            return value
        if _LABEL_VALUE.fullmatch(value) and len(self._finding_types) < MAX_FINDING_TYPES:
            self._finding_types.add(value)
            return value
        return "other"

    @staticmethod
    def guardrail(value: str) -> str:
        """A guardrail name as a label (the engine's four, or `other`)."""
        known = ("prompt_injection", "pii", "secrets", "deny_pattern", "guardrail_error")
        return value if value in known else "other"
