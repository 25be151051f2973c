"""An operator limited to some namespaces re-reconciles only the AIWorkloads in them.

A policy change makes the operator annotate AIWorkloads so kopf reconciles them again. An operator
started with `--namespace` must leave other namespaces' workloads alone: another operator (or
nobody) owns them, and patching them can fail on webhooks that are not its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aigis.controller.enforcer import WorkloadEnforcer
from aigis.settings import OperatorSettings


class FakeKube:
    def __init__(self, namespaces: list[str]) -> None:
        self.workloads = [{"metadata": {"namespace": ns, "name": f"w-{ns}"}} for ns in namespaces]
        self.annotated: list[str] = []

    async def list_aiworkloads(self) -> list[dict[str, Any]]:
        return self.workloads

    async def annotate_aiworkload(self, namespace: str, name: str, _: Any) -> None:
        self.annotated.append(namespace)


@pytest.mark.parametrize(
    ("watched", "touched"),
    [
        pytest.param((), ["team-a", "team-b", "other"], id="cluster-wide-touches-all"),
        pytest.param(("team-a",), ["team-a"], id="one-namespace"),
        pytest.param(("team-*",), ["team-a", "team-b"], id="a-pattern"),
    ],
)
def test_touch_workloads_stays_in_the_watched_namespaces(
    watched: tuple[str, ...], touched: list[str]
) -> None:
    kube = FakeKube(["team-a", "team-b", "other"])
    enforcer = WorkloadEnforcer(
        kube,  # type: ignore[arg-type]
        OperatorSettings(namespaces=watched),
        clock=lambda: 0.0,
    )
    asyncio.run(enforcer.touch_workloads("aigis.dev/policy-revision", "1"))
    assert sorted(kube.annotated) == sorted(touched)
