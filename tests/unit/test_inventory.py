"""`read_inventory` against a fake API server: paging, missing CRDs, 403 fallback, trimming."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aigis.kube import KubeError
from aigis.oversight.inventory import Inventory, read_inventory, trim


class FakeApi:
    """Serves lists from a table of path -> items; `forbidden` paths answer 403."""

    def __init__(
        self,
        lists: Mapping[str, list[dict[str, Any]]],
        *,
        groups: Mapping[str, str],
        forbidden: set[str] = frozenset(),  # type: ignore[assignment]
        page: int = 2,
    ) -> None:
        self.lists = lists
        self.groups = groups
        self.forbidden = forbidden
        self.page = page
        self.calls: list[str] = []

    async def request(
        self, method: str, path: str, *, query: Mapping[str, str] | None = None
    ) -> dict[str, Any] | None:
        self.calls.append(path)
        if path in self.forbidden:
            raise KubeError(method, path, 403, '{"message": "forbidden"}')
        if path.startswith("/apis/") and path.count("/") == 2:
            group = path.split("/")[2]
            version = self.groups.get(group)
            return {"preferredVersion": {"version": version}} if version else None
        if path not in self.lists:
            return None
        start = int((query or {}).get("continue") or 0)
        items = self.lists[path][start : start + self.page]
        more = start + self.page < len(self.lists[path])
        return {"items": items, "metadata": {"continue": str(start + self.page) if more else ""}}


def named(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "managedFields": [{"manager": "kubectl"}]}
    if namespace:
        metadata["namespace"] = namespace
    return {"metadata": metadata, **extra}


def read(api: FakeApi, namespaces: list[str] | None = None) -> Inventory:
    return asyncio.run(read_inventory(api, namespaces=namespaces))


def test_reads_every_served_kind_page_by_page() -> None:
    api = FakeApi(
        {
            "/api/v1/pods": [named(f"p{i}", "a") for i in range(5)],
            "/apis/apps/v1/deployments": [named("d", "a")],
            "/apis/aigis.dev/v1alpha1/aiworkloads": [named("w", "a")],
            "/api/v1/namespaces": [named("a")],
        },
        groups={"apps": "v1", "batch": "v1", "aigis.dev": "v1alpha1"},
    )
    inventory = read(api)
    kinds = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in inventory.objects]
    assert kinds == [
        *(("v1", "Pod", f"p{i}") for i in range(5)),
        ("apps/v1", "Deployment", "d"),
        ("aigis.dev/v1alpha1", "AIWorkload", "w"),
        ("v1", "Namespace", "a"),
    ]
    assert inventory.unreadable == []
    assert api.calls.count("/api/v1/pods") == 3  # five pods, two a page
    # CRDs that are not installed are skipped without a list call or a complaint.
    assert not any(c.startswith("/apis/ray.io/") and c != "/apis/ray.io" for c in api.calls)
    assert all("managedFields" not in o["metadata"] for o in inventory.objects)


def test_forbidden_cluster_wide_list_falls_back_to_namespaces() -> None:
    api = FakeApi(
        {
            "/api/v1/namespaces": [named("team-a"), named("team-b")],
            "/api/v1/namespaces/team-a/pods": [named("p", "team-a")],
        },
        groups={},
        forbidden={"/api/v1/pods", "/api/v1/namespaces/team-b/pods"},
    )
    inventory = read(api)
    assert [o["metadata"]["name"] for o in inventory.objects if o["kind"] == "Pod"] == ["p"]
    assert inventory.unreadable == ['pods in namespace "team-b": forbidden']


def test_only_the_namespaces_asked_for() -> None:
    api = FakeApi(
        {
            "/api/v1/namespaces/team-a/pods": [named("p", "team-a")],
            "/api/v1/pods": [named("elsewhere", "x")],
        },
        groups={},
        forbidden={"/api/v1/namespaces/team-a"},
    )
    inventory = read(api, ["team-a"])
    assert [o["metadata"]["name"] for o in inventory.objects] == ["p"]
    assert "/api/v1/pods" not in api.calls
    assert inventory.unreadable == ['namespaces "team-a": forbidden']


def test_cluster_scoped_forbidden_is_recorded() -> None:
    api = FakeApi(
        {},
        groups={"aigis.dev": "v1alpha1"},
        forbidden={"/apis/aigis.dev/v1alpha1/aiclusterpolicies"},
    )
    assert read(api).unreadable == ["aiclusterpolicies: forbidden"]


def test_pod_status_is_trimmed_to_what_the_cores_read() -> None:
    pod = {
        "metadata": {"name": "p", "managedFields": []},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready"}],
            "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "x@sha256:1", "ready": True}
            ],
        },
    }
    trimmed = trim(pod, "v1", "Pod")
    assert trimmed["status"] == {
        "phase": "Running",
        "containerStatuses": [{"name": "app", "image": "x", "imageID": "x@sha256:1"}],
    }
    assert trimmed["metadata"] == {"name": "p"}
    assert (trimmed["apiVersion"], trimmed["kind"]) == ("v1", "Pod")
