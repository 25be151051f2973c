"""`BackgroundAudit` against a fake API server: what a pass writes, and what it leaves alone."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aigis.controller.audit import AuditSettings, BackgroundAudit, summary_changed
from aigis.kube import KubeError

NOW = datetime(2026, 12, 1, tzinfo=UTC)
REPORTS = "/apis/wgpolicyk8s.io/v1alpha2/policyreports"


def report_path(ns: str) -> str:
    return f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{ns}/policyreports/aigis-audit"


class FakeCluster:
    """Lists served from `lists` (path -> items); records every write."""

    def __init__(self, lists: dict[str, list[dict[str, Any]]], *, crd: bool = True) -> None:
        self.lists = lists
        self.crd = crd
        self.reports: dict[str, dict[str, Any]] = {}
        self.applied: list[str] = []
        self.deleted: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.statuses: list[tuple[str, str, dict[str, Any]]] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        **_: Any,
    ) -> dict[str, Any] | None:
        if method == "POST" and path.endswith("/events"):
            self.events.append(body)
            return body
        if method == "DELETE":
            self.deleted.append(path)
            self.reports.pop(path, None)
            return {}
        if path == REPORTS:
            return {"items": [copy.deepcopy(r) for r in self.reports.values()]}
        if path in self.reports:
            return copy.deepcopy(self.reports[path])
        if path.startswith("/apis/") and path.count("/") == 2:
            group = path.split("/")[2]
            return {"preferredVersion": {"version": "v1alpha1" if group == "aigis.dev" else "v1"}}
        if path in self.lists:
            return {"items": copy.deepcopy(self.lists[path]), "metadata": {}}
        return None

    async def apply(self, path: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
        self.applied.append(path)
        self.reports[path] = copy.deepcopy(dict(manifest))
        return dict(manifest)

    async def crd_installed(self, name: str) -> bool:
        return self.crd

    async def patch_aiworkload_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.statuses.append((namespace, name, dict(status)))
        for item in self.lists["/apis/aigis.dev/v1alpha1/aiworkloads"]:
            if item["metadata"]["name"] == name and item["metadata"]["namespace"] == namespace:
                item.setdefault("status", {}).update(copy.deepcopy(dict(status)))


def cluster_with(shadow: bool = True, *, crd: bool = True) -> FakeCluster:
    labels = {"aigis.dev/governed": "true"}
    container: dict[str, Any] = {"name": "s", "image": "nginx:1.27"}
    if shadow:
        container = {
            "name": "s",
            "image": "vllm/vllm-openai:v0.6.3",
            "args": ["--model", "meta-llama/Llama-3.1-8B"],
        }
    return FakeCluster(
        {
            "/api/v1/namespaces": [
                {"metadata": {"name": "team-a", "labels": labels}},
                {"metadata": {"name": "team-b", "labels": {}}},
            ],
            "/apis/aigis.dev/v1alpha1/aiclusterpolicies": [
                {
                    "metadata": {"name": "org"},
                    "spec": {"namespaceSelector": {"matchLabels": labels}, "shadowAI": "Enforce"},
                }
            ],
            "/apis/aigis.dev/v1alpha1/aiworkloads": [
                {
                    "metadata": {"name": "bot", "namespace": "team-a", "uid": "w1"},
                    "spec": {
                        "selector": {"matchLabels": {"app": "bot"}},
                        "owner": "t",
                        "purpose": "p",
                    },
                }
            ],
            "/apis/apps/v1/deployments": [
                {
                    "metadata": {"name": "llm", "namespace": "team-a", "uid": "d1"},
                    "spec": {
                        "template": {
                            "metadata": {"labels": {"app": "llm"}},
                            "spec": {"containers": [container]},
                        }
                    },
                }
            ],
        },
        crd=crd,
    )


def run(audit: BackgroundAudit, namespaces: list[str] | None = None) -> None:
    asyncio.run(audit.run_pass(namespaces))


def make(kube: FakeCluster, **settings: Any) -> BackgroundAudit:
    clock = iter(NOW + timedelta(minutes=i) for i in range(100))
    return BackgroundAudit(
        kube,  # type: ignore[arg-type]
        AuditSettings(**settings),
        clock=lambda: next(clock),
        instance="test",
    )


def test_a_pass_writes_the_report_status_and_one_event() -> None:
    kube = cluster_with()
    audit = make(kube)
    run(audit)
    assert kube.applied == [report_path("team-a")]  # team-b is not governed
    report = kube.reports[report_path("team-a")]
    assert report["summary"]["fail"] == 1
    assert report["results"][0]["rule"] == "shadow-ai"
    ((ns, name, status),) = kube.statuses
    assert (ns, name) == ("team-a", "bot")
    assert status["audit"]["objects"] == 0
    (event,) = kube.events
    assert event["involvedObject"]["name"] == "llm"
    assert event["reason"] == "AIPolicyAuditFinding"
    assert "shadow-ai" in event["message"]


def test_an_unchanged_pass_writes_nothing() -> None:
    kube = cluster_with()
    audit = make(kube)
    run(audit)
    run(audit)
    assert len(kube.applied) == 1
    assert len(kube.statuses) == 1
    assert len(kube.events) == 1


def test_after_a_restart_known_findings_make_no_event() -> None:
    kube = cluster_with()
    run(make(kube))
    run(make(kube))  # a new operator: the stored report says what was announced
    assert len(kube.events) == 1


def test_a_fixed_workload_clears_the_report() -> None:
    kube = cluster_with()
    audit = make(kube)
    run(audit)
    kube.lists["/apis/apps/v1/deployments"] = cluster_with(shadow=False).lists[
        "/apis/apps/v1/deployments"
    ]
    run(audit)
    report = kube.reports[report_path("team-a")]
    assert report["results"] == []
    assert report["summary"]["pass"] == 2  # the Deployment and the AIWorkload
    assert len(kube.events) == 1


def test_a_namespace_no_longer_governed_loses_its_report() -> None:
    kube = cluster_with()
    audit = make(kube)
    run(audit)
    kube.lists["/apis/aigis.dev/v1alpha1/aiclusterpolicies"] = []
    kube.lists["/apis/aigis.dev/v1alpha1/aiworkloads"] = []
    run(audit)
    assert kube.deleted == [report_path("team-a")]


def test_without_the_crd_the_rest_is_written_and_it_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = cluster_with(crd=False)
    audit = make(kube)
    run(audit)
    run(audit)
    assert kube.applied == []
    assert len(kube.events) == 1
    assert len(kube.statuses) == 1
    assert sum("PolicyReport CRD" in r.message for r in caplog.records) == 1


def test_events_are_capped_per_pass() -> None:
    kube = cluster_with()
    deployments = kube.lists["/apis/apps/v1/deployments"]
    for i in range(5):
        extra = copy.deepcopy(deployments[0])
        extra["metadata"].update(name=f"llm-{i}", uid=f"d-{i}")
        deployments.append(extra)
    run(make(kube, max_events=2))
    assert len(kube.events) == 2
    assert kube.reports[report_path("team-a")]["summary"]["fail"] == 6


def test_requests_are_merged() -> None:
    audit = make(cluster_with())
    audit._pending_all = False  # past the first pass
    audit.workload_seen("team-a", "bot", 1, deleted=False)
    audit.workload_seen("team-a", "bot", 1, deleted=False)  # a status write: same generation
    assert audit._pending == {"team-a"}
    audit._pending.clear()
    audit.workload_seen("team-a", "bot", 1, deleted=False)
    assert audit._pending == set()
    audit.namespace_seen("team-b", {"x": "1"}, deleted=False)  # first sight: nothing to do
    audit.namespace_seen("team-b", {"x": "2"}, deleted=False)
    assert audit._pending == {"team-b"}
    audit.policy_seen("org", 3, deleted=False)
    assert audit._pending_all


def test_summary_changed_ignores_the_time() -> None:
    summary = {"objects": 1}
    assert not summary_changed({"objects": 1, "lastChangeTime": "2026-01-01T00:00:00Z"}, summary)
    assert summary_changed({"objects": 2}, summary)
    assert summary_changed(None, summary)


def test_a_failed_write_does_not_stop_the_pass() -> None:
    kube = cluster_with()

    async def refuse(path: str, manifest: Mapping[str, Any]) -> None:
        raise KubeError("PATCH", path, 422, "{}")

    kube.apply = refuse  # type: ignore[method-assign,assignment]
    run(make(kube))
    assert len(kube.statuses) == 1
    assert len(kube.events) == 1
