"""`spec.gateway.workers`: the injected gateway runs N processes, each with its metrics port,
and the chart's PodMonitor scrapes every one of them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from tests.unit.test_chart import HELM, helm
from tests.unit.test_mutation import SETTINGS, app_container, gateway_of, inject, pod, workload

from aigis.admission.mutation import gateway_differences, metrics_port_name, render_gateway
from aigis.api.aiworkload import MAX_GATEWAY_WORKERS


def with_workers(workers: int) -> Any:
    return workload(
        gateway={
            "workers": workers,
            "providerKeys": [
                {"provider": "openai", "secretRef": {"name": "llm-keys", "key": "openai"}}
            ],
        }
    )


def test_one_worker_is_the_default_and_adds_no_flag() -> None:
    gateway = gateway_of(inject(pod()))
    assert "--workers" not in gateway["command"]
    assert [(p["name"], p["containerPort"]) for p in gateway["ports"]] == [
        ("aigis-metrics", SETTINGS.metrics_port)
    ]


def test_workers_get_the_flag_and_a_metrics_port_each() -> None:
    target = with_workers(3)
    patched = inject(pod(), target)
    gateway = gateway_of(patched)
    assert gateway["command"][-2:] == ["--workers", "3"]
    base = SETTINGS.metrics_port
    assert [(p["name"], p["containerPort"]) for p in gateway["ports"]] == [
        ("aigis-metrics", base),
        ("aigis-metrics-1", base + 1),
        ("aigis-metrics-2", base + 2),
    ]
    expected = render_gateway("support-bot", target.spec, SETTINGS)
    assert gateway_differences(gateway, patched["spec"]["volumes"], expected) == []


def test_a_pod_claiming_a_worker_port_name_keeps_it_and_the_gateway_ports_go_unnamed() -> None:
    app = app_container(ports=[{"name": "aigis-metrics-1", "containerPort": 9000}])
    target = with_workers(2)
    patched = inject(pod(spec={"containers": [app]}), target)
    gateway = gateway_of(patched)
    assert all("name" not in port for port in gateway["ports"])
    expected = render_gateway("support-bot", target.spec, SETTINGS)
    assert "ports" not in gateway_differences(gateway, patched["spec"]["volumes"], expected)


def test_a_gateway_with_fewer_workers_than_declared_is_not_aigis_s() -> None:
    declared = with_workers(4)
    patched = inject(pod(), with_workers(1))
    expected = render_gateway("support-bot", declared.spec, SETTINGS)
    assert gateway_differences(gateway_of(patched), patched["spec"]["volumes"], expected) != []


@pytest.mark.parametrize("workers", [0, MAX_GATEWAY_WORKERS + 1])
def test_worker_counts_outside_the_range_are_refused(workers: int) -> None:
    with pytest.raises(ValueError, match="workers"):
        with_workers(workers)


def test_every_worker_port_name_fits_kubernetes_limit() -> None:
    assert all(len(metrics_port_name(i)) <= 15 for i in range(MAX_GATEWAY_WORKERS))


@pytest.mark.skipif(not HELM.is_file(), reason=f"{HELM} is missing: `make control-plane`")
def test_the_pod_monitor_scrapes_every_worker_port() -> None:
    rendered = helm(
        "template", "aigis", "charts/aigis", "--set", "monitoring.podMonitor.enabled=true",
        "--show-only", "templates/podmonitor.yaml",
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    monitor = yaml.safe_load(rendered.stdout)
    ports = [endpoint["port"] for endpoint in monitor["spec"]["podMetricsEndpoints"]]
    assert ports == [metrics_port_name(i) for i in range(MAX_GATEWAY_WORKERS)]
