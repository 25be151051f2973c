"""Oversight: what AI runs where, and reports about it for people and tools.

- `sarif`: admission findings as a SARIF 2.1.0 log, for code-scanning UIs (`aigis scan -o sarif`).
- `discover`: which workloads look like AI, declared or not, with the evidence, and a draft
  AIWorkload in Audit mode for each undeclared one (`aigis discover`).
- `bom`: a CycloneDX ML-BOM per AIWorkload: its models, images and the hosts it may reach
  (`aigis bom`).
- `report`: the compliance report (inventory, compliance, violations, guardrail coverage,
  forensic readiness, the NIST AI RMF / ISO/IEC 42001 controls mapping in `controls.yaml`, a
  board view) as Markdown, HTML or JSON (`aigis report`).

- `inventory`: reads a cluster (every kind that runs pods, AIWorkloads, AIClusterPolicies,
  Namespaces), paged and trimmed, naming what it may not read; the shell the others share.
- `audit`: the background audit's core: the admission engine on what runs now, plus audit-only
  findings (`audit/gateway-missing`); `policyreport` renders its results as wg-policy
  PolicyReports (the operator's `aigis.controller.audit` writes them).

Every module but `inventory` and `cli` is pure: plain objects in, plain objects out; no I/O,
clock or environment. `inventory` and `cli` are the thin shell that reads files or the cluster
and prints. Must not import
the webhook server, the operator's handlers or the gateway.
"""
