"""Generate the chart's Grafana dashboards (charts/aigis/dashboards/*.json) from the tables below.

Run `uv run --frozen python hack/dashboards.py` after changing a panel; a unit test fails when the
JSON files and this script disagree, and another when a query names a metric aigis does not
export. Label names in the queries other than aigis's own (`namespace`, `pod`, `workload`) are
the target labels the chart's ServiceMonitor and PodMonitor give every series.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "charts" / "aigis" / "dashboards"

# (title, unit, [(query, legend)]); each row of a dashboard is rendered as one panel.
Panel = tuple[str, str, list[tuple[str, str]]]

DASHBOARDS: dict[str, tuple[str, list[Panel]]] = {
    "overview": (
        "aigis / Overview",
        [
            (
                "AIWorkloads by state",
                "short",
                [("sum by (state) (aigis_aiworkloads)", "{{state}}")],
            ),
            (
                "Egress policies in force",
                "short",
                [("sum by (kind) (aigis_managed_network_policies)", "{{kind}}")],
            ),
            (
                "Admission decisions",
                "reqps",
                [("sum by (outcome) (rate(aigis_webhook_reviews_total[5m]))", "{{outcome}}")],
            ),
            (
                "Gateway requests by decision",
                "reqps",
                [("sum by (decision) (rate(aigis_gateway_requests_total[5m]))", "{{decision}}")],
            ),
            (
                "Shadow AI findings",
                "short",
                [
                    (
                        "sum by (action) "
                        '(increase(aigis_webhook_findings_total{rule="shadow-ai"}[1h]))',
                        "{{action}}",
                    )
                ],
            ),
            (
                "Pods held for forensics",
                "short",
                [("max(aigis_forensics_pods_held)", "held")],
            ),
            (
                "Background audit findings (running workloads)",
                "short",
                [("sum by (rule, result) (aigis_audit_findings)", "{{rule}} {{result}}")],
            ),
        ],
    ),
    "admission": (
        "aigis / Admission",
        [
            (
                "Reviews by kind and outcome",
                "reqps",
                [
                    (
                        "sum by (kind, outcome) (rate(aigis_webhook_reviews_total[5m]))",
                        "{{kind}} {{outcome}}",
                    )
                ],
            ),
            (
                "Review latency p50 / p99",
                "s",
                [
                    (
                        "histogram_quantile(0.5, sum by (le, webhook) "
                        "(rate(aigis_webhook_review_duration_seconds_bucket[5m])))",
                        "p50 {{webhook}}",
                    ),
                    (
                        "histogram_quantile(0.99, sum by (le, webhook) "
                        "(rate(aigis_webhook_review_duration_seconds_bucket[5m])))",
                        "p99 {{webhook}}",
                    ),
                ],
            ),
            (
                "Findings by rule",
                "short",
                [
                    (
                        "sum by (rule, action) (increase(aigis_webhook_findings_total[1h]))",
                        "{{rule}} {{action}}",
                    )
                ],
            ),
            (
                "Audit decisions and their Events",
                "short",
                [
                    (
                        "sum by (kind) (increase(aigis_webhook_audit_decisions_total[1h]))",
                        "{{kind}}",
                    ),
                    (
                        "sum by (result) (increase(aigis_webhook_audit_events_total[1h]))",
                        "events {{result}}",
                    ),
                ],
            ),
            (
                "Certificate expiry",
                "s",
                [
                    (
                        "min by (certificate) "
                        "(aigis_webhook_certificate_expiry_timestamp_seconds) - time()",
                        "{{certificate}}",
                    )
                ],
            ),
            (
                "Cache and configuration",
                "short",
                [
                    ("sum by (resource) (aigis_webhook_cache_objects)", "cached {{resource}}"),
                    (
                        "sum by (result) (aigis_webhook_configuration_applies_total)",
                        "applies {{result}}",
                    ),
                ],
            ),
        ],
    ),
    "gateway": (
        "aigis / Gateway and guardrails",
        [
            (
                "Requests by route and decision",
                "reqps",
                [
                    (
                        "sum by (route, decision) (rate(aigis_gateway_requests_total[5m]))",
                        "{{route}} {{decision}}",
                    )
                ],
            ),
            (
                "Guardrail findings",
                "short",
                [
                    (
                        "sum by (guardrail, action, direction) "
                        "(increase(aigis_gateway_guardrail_findings_total[1h]))",
                        "{{guardrail}} {{action}} {{direction}}",
                    )
                ],
            ),
            (
                "Added latency p99",
                "s",
                [
                    (
                        "histogram_quantile(0.99, sum by (le, route) "
                        "(rate(aigis_gateway_added_seconds_bucket[5m])))",
                        "{{route}}",
                    )
                ],
            ),
            (
                "Upstream latency p90",
                "s",
                [
                    (
                        "histogram_quantile(0.9, sum by (le, provider) "
                        "(rate(aigis_gateway_upstream_seconds_bucket[5m])))",
                        "{{provider}}",
                    )
                ],
            ),
            (
                "Tokens by model",
                "short",
                [
                    (
                        "sum by (model, kind) (increase(aigis_gateway_tokens_total[1h]))",
                        "{{model}} {{kind}}",
                    )
                ],
            ),
            (
                "Configuration and audit health",
                "short",
                [
                    ("sum by (result) (aigis_gateway_config_reloads_total)", "reloads {{result}}"),
                    ("sum(aigis_gateway_audit_write_errors_total)", "audit write errors"),
                    ("sum(aigis_gateway_guardrail_errors_total)", "guardrail errors"),
                ],
            ),
        ],
    ),
    "egress": (
        "aigis / Egress",
        [
            (
                "Policies in force by kind",
                "short",
                [("sum by (kind) (aigis_managed_network_policies)", "{{kind}}")],
            ),
            (
                "Drift repairs",
                "short",
                [("sum by (kind) (increase(aigis_drift_repairs_total[1h]))", "{{kind}}")],
            ),
            (
                "Reconciles by result",
                "ops",
                [
                    (
                        "sum by (resource, result) (rate(aigis_reconcile_total[5m]))",
                        "{{resource}} {{result}}",
                    )
                ],
            ),
            (
                "Reconcile duration p99",
                "s",
                [
                    (
                        "histogram_quantile(0.99, sum by (le, resource) "
                        "(rate(aigis_reconcile_duration_seconds_bucket[5m])))",
                        "{{resource}}",
                    )
                ],
            ),
            (
                "DNS look-up failures",
                "short",
                [("sum(increase(aigis_dns_resolve_failures_total[1h]))", "failures")],
            ),
            (
                "Gateway plain egress by decision",
                "reqps",
                [
                    (
                        "sum by (method, decision) (rate(aigis_gateway_egress_total[5m]))",
                        "{{method}} {{decision}}",
                    )
                ],
            ),
        ],
    ),
}


def panel(index: int, title: str, unit: str, queries: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend}
            for n, (expr, legend) in enumerate(queries)
        ],
    }


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    return {
        "uid": f"aigis-{uid}",
        "title": title,
        "tags": ["aigis"],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Data source",
                }
            ]
        },
        "panels": [panel(n, *p) for n, p in enumerate(panels)],
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{uid}.json": json.dumps(dashboard(uid, title, panels), indent=2) + "\n"
        for uid, (title, panels) in DASHBOARDS.items()
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
    print(f"wrote {len(DASHBOARDS)} dashboards to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
