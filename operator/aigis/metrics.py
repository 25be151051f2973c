"""Prometheus metrics of the operator.

Label values come from small fixed sets (resource kind, result), never from object names or user
text, so the number of series stays bounded however many workloads a cluster has.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "aigis_reconcile_total",
    "Reconciles of aigis resources, by resource and result (ready, invalid, error).",
    ["resource", "result"],
)
RECONCILE_SECONDS = Histogram(
    "aigis_reconcile_duration_seconds",
    "Time spent in one reconcile of an aigis resource.",
    ["resource"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
WORKLOADS = Gauge(
    "aigis_aiworkloads",
    "AIWorkloads this operator has seen, by state (compliant, noncompliant, invalid).",
    ["state"],
)
MANAGED_POLICIES = Gauge(
    "aigis_managed_network_policies",
    "Egress policies this operator keeps in force, by kind.",
    ["kind"],
)
DRIFT_REPAIRS = Counter(
    "aigis_drift_repairs_total",
    "Generated policies put back after someone changed or deleted them, by kind.",
    ["kind"],
)
RESOLVE_FAILURES = Counter(
    "aigis_dns_resolve_failures_total",
    "Failed look-ups of declared egress hosts (the last good addresses stay in force).",
)
FORENSICS_PODS_HELD = Gauge(
    "aigis_forensics_pods_held",
    "Pods past their deletion time that the aigis.dev/forensics finalizer still holds in "
    "Terminating, from the operator's last periodic list.",
)
FORENSICS_OLDEST_HELD_SECONDS = Gauge(
    "aigis_forensics_oldest_held_seconds",
    "How long the longest-held of those pods has been past its deletion time; 0 when none is.",
)
FORENSICS_RELEASES = Counter(
    "aigis_forensics_releases_total",
    "Forensics finalizers the operator removed, by reason (the reason of the Event it recorded).",
    ["reason"],
)
# The series exist from the start, so `increase()` over them works before the first release.
FORENSICS_RELEASES.labels(reason="EvidenceNotCaptured")
FORENSICS_RELEASES.labels(reason="EvidenceCaptured")
FORENSICS_RELEASES.labels(reason="EvidenceIncomplete")
FORENSICS_CAPTURES = Counter(
    "aigis_forensics_captures_total",
    "Forensic captures, by trigger (Termination, OnDemand) and outcome (complete, incomplete: "
    "stored with reasons; failed: nothing stored).",
    ["trigger", "outcome"],
)
FORENSICS_CAPTURE_SECONDS = Histogram(
    "aigis_forensics_capture_duration_seconds",
    "Time from the start of a capture to its bundle stored (or given up), by trigger.",
    ["trigger"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
FORENSICS_BYTES_STORED = Counter(
    "aigis_forensics_bytes_stored_total",
    "Bytes of evidence bundles stored, by storage backend.",
    ["backend"],
)
FORENSICS_EXPIRED = Counter(
    "aigis_forensics_snapshots_expired_total",
    "ForensicSnapshots deleted with their bytes because their retention ended.",
)
for _trigger in ("Termination", "OnDemand"):
    for _outcome in ("complete", "incomplete", "failed"):
        FORENSICS_CAPTURES.labels(trigger=_trigger, outcome=_outcome)

# --- background audit (aigis.controller.audit) ---

AUDIT_FINDINGS = Gauge(
    "aigis_audit_findings",
    "Findings of the background audit, from the latest pass over each namespace, by rule and "
    "result (fail: admission would refuse the object today; warn: it would warn).",
    ["rule", "result"],
)
AUDIT_OBJECTS = Gauge(
    "aigis_audit_objects_reviewed",
    "Objects (top-level workloads and AIWorkloads) the latest audit passes reviewed.",
)
AUDIT_PASS_SECONDS = Histogram(
    "aigis_audit_pass_duration_seconds",
    "Time of one audit pass: reading the cluster, judging it and writing the results.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
AUDIT_UNREADABLE = Gauge(
    "aigis_audit_unreadable",
    "What the latest audit pass could not read (namespaces or kinds it is forbidden to list).",
)
AUDIT_LAST_PASS = Gauge(
    "aigis_audit_last_pass_timestamp_seconds",
    "When the latest audit pass ended (Unix time).",
)
