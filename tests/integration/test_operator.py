"""The operator against the real API server: AIWorkloads go in with kubectl, status comes out."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from tests.support.aigis_processes import AigisProcess

VALID = {
    "selector": {"matchLabels": {"app": "support-bot"}},
    "owner": "team-support",
    "purpose": "Answers customer questions about orders",
    "dataRegions": ["eu"],
    "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
    "egress": [{"host": "eu.api.openai.com", "ports": [{"port": 443}]}],
}


def manifest(name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


@pytest.fixture(scope="module")
def operator(start_operator: Callable[..., AigisProcess]) -> AigisProcess:
    return start_operator()


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll until `probe` returns something truthy; fail with `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}; last seen: {last!r}")


def get_aiw(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "aiw", name, "-n", namespace, "-o", "json").stdout
    return dict(json.loads(out))


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return dict(c)
    return None


def reconciled(cluster: Any, namespace: str, name: str) -> Callable[[], dict[str, Any] | None]:
    """A probe that returns the object once status reflects its current generation."""

    def probe() -> dict[str, Any] | None:
        obj = get_aiw(cluster, namespace, name)
        done = obj.get("status", {}).get("observedGeneration") == obj["metadata"]["generation"]
        return obj if done else None

    return probe


def test_valid_workload_becomes_ready(cluster: Any, namespace: str, operator: AigisProcess) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("bot", VALID))
    obj = wait_for("status of bot", reconciled(cluster, namespace, "bot"))
    ready = condition(obj, "Ready")
    assert ready is not None
    assert ready["status"] == "True"
    assert ready["observedGeneration"] == obj["metadata"]["generation"]
    invalid = condition(obj, "Invalid")
    assert invalid is not None
    assert invalid["status"] == "False"
    assert obj["status"]["violations"] == []
    # Defaults from the schema are stored, so the object says what will be enforced.
    assert obj["spec"]["enforcement"] == "Enforce"
    # Printer columns come from the generated CRD.
    table = cluster.kubectl("get", "aiw", "bot", "-n", namespace).stdout
    assert table.split("\n")[0].split()[:4] == ["NAME", "ENFORCEMENT", "READY", "REASON"]
    assert table.split("\n")[1].split()[:3] == ["bot", "Enforce", "True"]


def test_semantic_error_becomes_invalid_condition_naming_the_field(
    cluster: Any, namespace: str, operator: AigisProcess
) -> None:
    spec = {**VALID, "egress": [{"host": "https://api.openai.com/v1", "ports": [{"port": 443}]}]}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("url-host", spec))
    obj = wait_for("status of url-host", reconciled(cluster, namespace, "url-host"))
    invalid = condition(obj, "Invalid")
    ready = condition(obj, "Ready")
    assert invalid is not None
    assert ready is not None
    assert invalid["status"] == "True"
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidSpec"
    assert "spec.egress[0].host" in invalid["message"]
    assert "api.openai.com" in invalid["message"]
    paths = [v["path"] for v in obj["status"]["violations"]]
    assert paths == ["spec.egress[0].host"]


def test_fixing_the_spec_makes_it_ready_again(
    cluster: Any, namespace: str, operator: AigisProcess
) -> None:
    bad = {**VALID, "dataRegions": ["eu", "atlantis"]}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("regions", bad))
    first = wait_for("status of regions", reconciled(cluster, namespace, "regions"))
    assert condition(first, "Invalid")["status"] == "True"  # type: ignore[index]
    assert [v["path"] for v in first["status"]["violations"]] == ["spec.dataRegions[1]"]

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("regions", VALID))
    second = wait_for("status of regions after the fix", reconciled(cluster, namespace, "regions"))
    assert second["metadata"]["generation"] == first["metadata"]["generation"] + 1
    assert condition(second, "Ready")["status"] == "True"  # type: ignore[index]
    assert second["status"]["violations"] == []
    events = cluster.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        "involvedObject.name=regions",
        "-o",
        "jsonpath={.items[*].reason}",
    ).stdout.split()
    assert "InvalidSpec" in events


@pytest.mark.parametrize(
    ("spec_change", "expected"),
    [
        pytest.param({"enforcement": "Sometimes"}, "spec.enforcement", id="enum"),
        pytest.param(
            {"egress": [{"host": "api.openai.com", "cidr": "10.0.0.0/8"}]},
            "spec.egress[0]",
            id="egress-needs-exactly-one-target",
        ),
        pytest.param({"owner": None}, "spec.owner", id="owner-required"),
        pytest.param(
            {"egress": [{"host": "api.openai.com", "ports": [{"port": 70000}]}]},
            "spec.egress[0].ports[0].port",
            id="port-range",
        ),
    ],
)
def test_schema_refuses_what_it_can_say(
    cluster: Any, namespace: str, crds_installed: None, spec_change: dict[str, Any], expected: str
) -> None:
    spec = {k: v for k, v in {**VALID, **spec_change}.items() if v is not None}
    result = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=manifest("refused", spec), check=False
    )
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr


def test_operator_survives_bad_input_and_counts_it(
    cluster: Any, namespace: str, operator: AigisProcess
) -> None:
    junk = {
        **VALID,
        "guardrails": {"denyPatterns": [{"name": "x", "pattern": "(unclosed"}]},
        "selector": {"matchLabels": {"bad key!": "v"}},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("junk", junk))
    obj = wait_for("status of junk", reconciled(cluster, namespace, "junk"))
    paths = {v["path"] for v in obj["status"]["violations"]}
    assert "spec.guardrails.denyPatterns[0].pattern" in paths
    assert any(p.startswith("spec.selector.matchLabels") for p in paths)

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("after-junk", VALID))
    after = wait_for("status of after-junk", reconciled(cluster, namespace, "after-junk"))
    assert condition(after, "Ready")["status"] == "True"  # type: ignore[index]
    assert operator.process.poll() is None
    text = operator.metrics()
    assert 'aigis_reconcile_total{resource="aiworkloads",result="invalid"}' in text
    assert 'aigis_reconcile_total{resource="aiworkloads",result="ready"}' in text
