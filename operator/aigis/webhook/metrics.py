"""Prometheus metrics of the admission webhook, in a registry of its own.

Label values come from bounded sets: the webhook path, the object kind (the kinds aigis governs,
else `other`), the outcome, and rule ids, which are fixed in the engine's code and additionally
capped. Object names, namespaces and messages never become labels.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from aigis.admission.templates import TEMPLATE_KINDS

GOVERNED_KINDS = frozenset({*TEMPLATE_KINDS, "AIWorkload", "AIClusterPolicy"})
"""Kinds that are their own label value (a fixed set: every kind that runs pods, from the one
table of them, and aigis's own); anything else is `other`."""
_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
_RULE = re.compile(r"[A-Za-z0-9_./:-]{1,80}")
MAX_RULES = 200
"""Distinct rule ids labelled before the rest are counted as `other`."""


class WebhookMetrics:
    """The webhook's metrics; `observe_*` helpers keep label hygiene in one place."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reviews = Counter(
            "aigis_webhook_reviews_total",
            "AdmissionReviews answered, by webhook (validate, mutate), object kind and outcome "
            "(allowed, warned, denied, patched, skipped, invalid, error).",
            ["webhook", "kind", "outcome"],
            registry=self.registry,
        )
        self.review_seconds = Histogram(
            "aigis_webhook_review_duration_seconds",
            "Time from reading a review's body to having its answer, by webhook.",
            ["webhook"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.audit_decisions = Counter(
            "aigis_webhook_audit_decisions_total",
            "Objects admitted with warnings (Audit mode), by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.findings = Counter(
            "aigis_webhook_findings_total",
            "Findings in answered reviews, by rule and action (deny, audit).",
            ["rule", "action"],
            registry=self.registry,
        )
        self.live_reads = Counter(
            "aigis_webhook_live_reads_total",
            "Namespaces re-read from the API server before a refusal, by result (changed: the "
            "cache was behind; unchanged; skipped: read moments ago and found current; failed).",
            ["result"],
            registry=self.registry,
        )
        self.events = Counter(
            "aigis_webhook_audit_events_total",
            "Kubernetes Events for audit decisions, by result (sent, deduplicated, dropped, "
            "failed).",
            ["result"],
            registry=self.registry,
        )
        self.certificate_expiry = Gauge(
            "aigis_webhook_certificate_expiry_timestamp_seconds",
            "When the webhook's certificates expire (Unix time), by certificate (serving, ca).",
            ["certificate"],
            registry=self.registry,
        )
        self.certificate_rotations = Counter(
            "aigis_webhook_certificate_rotations_total",
            "Certificates this process issued anew, by certificate (serving, ca).",
            ["certificate"],
            registry=self.registry,
        )
        self.cache_objects = Gauge(
            "aigis_webhook_cache_objects",
            "Objects in the webhook's cache, by resource.",
            ["resource"],
            registry=self.registry,
        )
        self.cache_relists = Counter(
            "aigis_webhook_cache_relists_total",
            "Full lists of a resource after the first, by resource and reason (expired, error).",
            ["resource", "reason"],
            registry=self.registry,
        )
        self.configuration_applies = Counter(
            "aigis_webhook_configuration_applies_total",
            "Server-side applies of the webhook configurations, by result (applied, failed).",
            ["result"],
            registry=self.registry,
        )
        self._rules: set[str] = set()

    def kind_label(self, kind: str) -> str:
        return kind if kind in GOVERNED_KINDS else "other"

    def rule_label(self, rule: str) -> str:
        if rule in self._rules:
            return rule
        if not _RULE.fullmatch(rule) or len(self._rules) >= MAX_RULES:
            return "other"
        self._rules.add(rule)
        return rule
