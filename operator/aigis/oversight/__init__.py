"""Oversight: what AI runs where, and reports about it for people and tools.

- `sarif`: admission findings as a SARIF 2.1.0 log, for code-scanning UIs (`aigis scan -o sarif`).
- `discover`: which workloads look like AI, declared or not, with the evidence, and a draft
  AIWorkload in Audit mode for each undeclared one (`aigis discover`).
- `bom`: a CycloneDX ML-BOM per AIWorkload: its models, images and the hosts it may reach
  (`aigis bom`).

Every module but `cli` is pure: plain objects in, plain objects out; no I/O, clock or
environment. `cli` is the thin shell that reads files or the cluster and prints. Must not import
the webhook server, the operator's handlers or the gateway.
"""
