"""The webhook's cache: list then watch, re-list after 410 Gone and after errors, policy changes.

Driven by a scripted fake of the API server's list and watch calls, so every path (a watch that
ends, one that expires, one that fails, a resource that is not served) is exercised without
timing assumptions: the test waits for the state it expects, with a hard ceiling against hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
from prometheus_client import generate_latest

from aigis.kube import KubeError, WatchExpiredError
from aigis.webhook.cache import (
    AICLUSTERPOLICIES_PATH,
    AIWORKLOADS_PATH,
    NAMESPACES_PATH,
    AdmissionCache,
    slim,
    valid_policies,
)
from aigis.webhook.metrics import WebhookMetrics


def workload(name: str, namespace: str = "shop", version: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": version,
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                "team": "support",
            },
        },
        "spec": {"owner": "x"},
    }


def policy(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": "1"}, "spec": spec}


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": "1", "labels": labels}}


class FakeApi:
    """Lists from `lists`; each watch of a path plays the next script in `watches[path]`.

    A script is a list of events, or an exception to raise, ending the watch; when no script
    is left the watch waits forever (until the test ends).
    """

    def __init__(self) -> None:
        self.lists: dict[str, list[dict[str, Any]] | None] = {
            AIWORKLOADS_PATH: [],
            AICLUSTERPOLICIES_PATH: [],
            NAMESPACES_PATH: [],
        }
        self.watches: dict[str, list[list[dict[str, Any]] | Exception]] = {}
        self.list_calls: dict[str, int] = {}
        self.watch_versions: dict[str, list[str]] = {}

        self.relists: dict[str, list[dict[str, Any]]] = {}
        """What lists return from the second call on, when set."""

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        self.list_calls[path] = self.list_calls.get(path, 0) + 1
        items = self.lists.get(path)
        if self.list_calls[path] > 1 and path in self.relists:
            items = self.relists[path]
        if items is None:
            return None
        return {"metadata": {"resourceVersion": "100"}, "items": list(items)}

    async def watch(
        self, path: str, resource_version: str, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        self.watch_versions.setdefault(path, []).append(resource_version)
        scripts = self.watches.get(path) or []
        if not scripts:
            await asyncio.Event().wait()
        script = scripts.pop(0)
        if isinstance(script, Exception):
            raise script
        for event in script:
            yield event


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def run(scenario: Callable[[], Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), 30))


def test_lists_then_applies_watch_events() -> None:
    api = FakeApi()
    api.lists[AIWORKLOADS_PATH] = [workload("a"), workload("b", "lab")]
    api.lists[NAMESPACES_PATH] = [namespace("shop", env="prod")]
    api.watches[AIWORKLOADS_PATH] = [
        [
            {"type": "ADDED", "object": workload("c", version="101")},
            {"type": "MODIFIED", "object": workload("a", version="102")},
            {"type": "DELETED", "object": workload("b", "lab", version="103")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}},
        ]
    ]
    api.watches[NAMESPACES_PATH] = [[{"type": "MODIFIED", "object": namespace("shop", env="dev")}]]
    metrics = WebhookMetrics()
    cache = AdmissionCache(api, metrics)  # type: ignore[arg-type]

    async def scenario() -> None:
        cache.start()
        await cache.wait_synced()
        assert cache.ready()
        await until(
            lambda: [w["metadata"]["name"] for w in cache.workloads("shop")] == ["a", "c"],
            "the watch events applied",
        )
        assert cache.workloads("lab") == ()
        assert cache.workloads("shop")[0]["metadata"]["resourceVersion"] == "102"
        await until(lambda: cache.namespace_labels("shop") == {"env": "dev"}, "labels updated")
        assert cache.namespace_labels("nowhere") is None
        # The watch ended normally: resumed from the last version seen (the bookmark's).
        await until(lambda: "150" in api.watch_versions[AIWORKLOADS_PATH], "re-watch from 150")
        assert api.list_calls[AIWORKLOADS_PATH] == 1
        await cache.stop()

    run(scenario)
    assert (
        'aigis_webhook_cache_objects{resource="aiworkloads"} 2.0'
        in generate_latest(metrics.registry).decode()
    )


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        pytest.param(WatchExpiredError(AIWORKLOADS_PATH), "expired", id="410-gone"),
        pytest.param(KubeError("GET", AIWORKLOADS_PATH, 500, "boom"), "error", id="server-error"),
        pytest.param(ConnectionResetError("reset"), "error", id="connection-reset"),
    ],
)
def test_relists_after_a_watch_fails(failure: Exception, reason: str) -> None:
    api = FakeApi()
    api.lists[AIWORKLOADS_PATH] = [workload("a")]
    api.watches[AIWORKLOADS_PATH] = [failure]
    metrics = WebhookMetrics()
    cache = AdmissionCache(api, metrics)  # type: ignore[arg-type]

    api.relists[AIWORKLOADS_PATH] = [workload("a"), workload("new")]

    async def scenario() -> None:
        cache.start()
        await until(lambda: len(cache.workloads("shop")) == 2, "the re-list")
        await cache.stop()

    run(scenario)
    assert api.list_calls[AIWORKLOADS_PATH] == 2
    text = generate_latest(metrics.registry).decode()
    assert (
        f'aigis_webhook_cache_relists_total{{reason="{reason}",resource="aiworkloads"}} 1.0' in text
    )


def test_an_unserved_resource_never_counts_as_synced() -> None:
    api = FakeApi()
    api.lists[AICLUSTERPOLICIES_PATH] = None
    cache = AdmissionCache(api, WebhookMetrics())  # type: ignore[arg-type]

    async def scenario() -> None:
        cache.start()
        await asyncio.sleep(0.2)
        assert not cache.ready()
        await cache.stop()

    run(scenario)


def test_policy_changes_are_announced_only_when_the_valid_set_changes() -> None:
    api = FakeApi()
    api.lists[AICLUSTERPOLICIES_PATH] = [policy("p", enforcement="Enforce")]
    api.watches[AICLUSTERPOLICIES_PATH] = [
        [
            # A status write (same spec): nothing to announce.
            {"type": "MODIFIED", "object": {**policy("p", enforcement="Enforce"), "status": {}}},
            # An invalid policy applies nowhere: nothing to announce either.
            {"type": "ADDED", "object": policy("bad", allowedRegions=["atlantis"])},
            {"type": "ADDED", "object": policy("q", shadowAI="Enforce")},
        ]
    ]
    changes: list[int] = []
    cache = AdmissionCache(api, WebhookMetrics(), on_policies_changed=lambda: changes.append(1))  # type: ignore[arg-type]

    async def scenario() -> None:
        cache.start()
        await cache.wait_synced()
        await until(lambda: [p.name for p in cache.policies()] == ["p", "q"], "q added")
        await cache.stop()

    run(scenario)
    assert len(changes) == 2  # the first list, then q


def test_slim_drops_managed_fields_and_last_applied_only() -> None:
    slimmed = slim(workload("a"))
    assert "managedFields" not in slimmed["metadata"]
    assert slimmed["metadata"]["annotations"] == {"team": "support"}
    assert slimmed["spec"] == {"owner": "x"}


def test_valid_policies_leave_invalid_ones_out() -> None:
    found = valid_policies(
        {
            "b": policy("b", enforcement="Enforce"),
            "a": policy("a", shadowAI="Sometimes"),
            "c": policy("c"),
        }
    )
    assert [p.name for p in found] == ["b", "c"]


class LiveApi(FakeApi):
    def __init__(self, found: Mapping[str, Any] | None) -> None:
        super().__init__()
        self.found = found
        self.paths: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        self.paths.append((path, str(kwargs.get("accept", ""))))
        return dict(self.found) if self.found is not None else None


def test_live_reads() -> None:
    api = LiveApi({"items": [workload("z"), workload("a")], "metadata": {"labels": {"x": "1"}}})
    cache = AdmissionCache(api, WebhookMetrics())  # type: ignore[arg-type]

    async def scenario() -> None:
        items = await cache.read_workloads("shop")
        assert [w["metadata"]["name"] for w in items] == ["a", "z"]
        assert "managedFields" not in items[0]["metadata"]
        assert await cache.read_namespace_labels("shop") == {"x": "1"}
        api.found = None
        assert await cache.read_namespace_labels("gone") is None

    run(scenario)
    assert api.paths[0][0] == "/apis/aigis.dev/v1alpha1/namespaces/shop/aiworkloads"
    assert api.paths[1][0] == "/api/v1/namespaces/shop"
    assert "PartialObjectMetadata" in api.paths[1][1]
