"""Reading a cluster for oversight: every object that runs pods, and what judges them.

`read_inventory` is the shell that `aigis discover`, `aigis bom`, `aigis report` and the
operator's background audit read the cluster with; the pure cores (`discover`, `audit`, ...)
take its `Inventory.objects`.

The shared interface:
- `Inventory.objects`: every object of a kind in `aigis.admission.templates.TEMPLATE_KINDS`
  (Pods included) whose API is served, plus AIWorkloads, AIClusterPolicies and Namespaces; each
  with `apiVersion` and `kind` set, in that order (kinds in table order).
- `Inventory.unreadable`: one line per thing that could not be read, e.g.
  `pods in namespace "team-b": forbidden`; the read goes on without it.
- `read_inventory(kube, *, namespaces=None)`: the whole cluster, or only `namespaces` (then
  Namespaces are read one by one, and AIClusterPolicies still cluster-wide).

Decisions (and why):
- Lists are paged (`limit` 500), so a cluster with 10,000 pods never arrives in one response.
- A kind whose API group (or resource) is not served is skipped silently: a CRD that is not
  installed holds nothing to review.
- A 403 on a cluster-wide list falls back to one list per namespace (RBAC may grant a Role per
  namespace); what stays forbidden is recorded, once per namespace and kind. Other failures are
  recorded too, and the rest is read: a report that says which part it could not see is worth
  more than none.
- Objects are trimmed: `metadata.managedFields` is dropped from every object, and a Pod's status
  keeps only `phase` and the `name`, `image` and `imageID` of its container statuses. That is
  all any core reads, and it keeps the inventory of a large cluster small in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from aigis.admission.templates import TEMPLATE_KINDS
from aigis.api.common import GROUP
from aigis.kube import KubeError, error_message, namespaced_path

PAGE_SIZE: Final = 500
AIGIS_VERSION: Final = "v1alpha1"
_STATUS_LISTS: Final = ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses")
_STATUS_FIELDS: Final = ("name", "image", "imageID")


class ApiClient(Protocol):
    """The one call of `aigis.kube.KubeClient` the inventory needs."""

    async def request(
        self, method: str, path: str, *, query: Mapping[str, str] | None = ...
    ) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Resource:
    """One kind to list: where it is served and whether it lives in namespaces."""

    kind: str
    group: str
    resource: str
    namespaced: bool = True


@dataclass(frozen=True)
class Inventory:
    """What `read_inventory` read, and what it could not."""

    objects: list[Mapping[str, Any]]
    unreadable: list[str] = field(default_factory=list)


def inventory_resources() -> list[Resource]:
    """Every kind the inventory lists: the kinds that run pods, then aigis's and Namespaces."""
    found = [
        Resource(kind, group, row.resource)
        for kind, row in TEMPLATE_KINDS.items()
        for group in sorted(row.groups - {"extensions"})
    ]
    found.append(Resource("AIWorkload", GROUP, "aiworkloads"))
    found.append(Resource("AIClusterPolicy", GROUP, "aiclusterpolicies", namespaced=False))
    found.append(Resource("Namespace", "", "namespaces", namespaced=False))
    return found


def trim(obj: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """`obj` with apiVersion and kind set, trimmed as the module docstring says."""
    trimmed: dict[str, Any] = {**obj, "apiVersion": api_version, "kind": kind}
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping) and "managedFields" in metadata:
        trimmed["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    status = obj.get("status")
    if kind == "Pod" and isinstance(status, Mapping):
        kept: dict[str, Any] = {}
        if "phase" in status:
            kept["phase"] = status["phase"]
        for name in _STATUS_LISTS:
            items = status.get(name)
            if isinstance(items, list):
                kept[name] = [
                    {k: i[k] for k in _STATUS_FIELDS if k in i}
                    for i in items
                    if isinstance(i, Mapping)
                ]
        trimmed["status"] = kept
    return trimmed


async def read_inventory(
    kube: ApiClient,
    *,
    namespaces: Sequence[str] | None = None,
    extra: Sequence[Resource] = (),
) -> Inventory:
    """Every object oversight reads, from the whole cluster or from `namespaces` only; `extra`
    kinds (the report's ForensicSnapshots, say) are read the same way, after them."""
    reader = _Reader(kube, list(namespaces) if namespaces else None)
    for resource in (*inventory_resources(), *extra):
        await reader.read(resource)
    return Inventory(objects=reader.objects, unreadable=reader.unreadable)


class _Reader:
    def __init__(self, kube: ApiClient, namespaces: list[str] | None) -> None:
        self.kube = kube
        self.only = namespaces
        self.objects: list[Mapping[str, Any]] = []
        self.unreadable: list[str] = []
        self._versions: dict[str, str | None] = {}
        self._all_namespaces: list[str] | None = None

    async def read(self, resource: Resource) -> None:
        version = await self._version(resource.group)
        if version is None:
            return
        api_version = f"{resource.group}/{version}" if resource.group else version
        prefix = f"/apis/{api_version}" if resource.group else "/api/v1"
        if resource.kind == "Namespace" and self.only is not None:
            for name in self.only:
                await self._get_one(prefix, resource, name, api_version)
            return
        if not resource.namespaced or self.only is None:
            try:
                await self._list(f"{prefix}/{resource.resource}", resource, api_version)
                return
            except KubeError as exc:
                if exc.status != 403 or not resource.namespaced:
                    self._record(resource, None, exc)
                    return
        for namespace in await self._namespaces():
            path = namespaced_path(prefix, namespace, resource.resource)
            try:
                await self._list(path, resource, api_version)
            except KubeError as exc:
                self._record(resource, namespace, exc)

    async def _namespaces(self) -> list[str]:
        """The namespaces to list one by one: the ones asked for, else every namespace."""
        if self.only is not None:
            return self.only
        if self._all_namespaces is None:
            names: list[str] = []
            try:
                items = await self._pages("/api/v1/namespaces")
                names = [
                    str(i["metadata"]["name"])
                    for i in items
                    if isinstance(i.get("metadata"), Mapping) and i["metadata"].get("name")
                ]
            except KubeError as exc:
                self._record(Resource("Namespace", "", "namespaces", namespaced=False), None, exc)
            self._all_namespaces = names
        return self._all_namespaces

    async def _version(self, group: str) -> str | None:
        if group == "":
            return "v1"
        if group not in self._versions:
            try:
                served = await self.kube.request("GET", f"/apis/{group}")
            except KubeError as exc:
                self.unreadable.append(f"API group {group}: {_why(exc)}")
                served = None
            preferred = (served or {}).get("preferredVersion") or {}
            version = preferred.get("version")
            self._versions[group] = version if isinstance(version, str) else None
        return self._versions[group]

    async def _list(self, path: str, resource: Resource, api_version: str) -> None:
        items = await self._pages(path)
        self.objects.extend(trim(i, api_version, resource.kind) for i in items)

    async def _pages(self, path: str) -> list[Mapping[str, Any]]:
        """Every item of a list, page by page; a resource that is not served lists nothing."""
        found: list[Mapping[str, Any]] = []
        token = ""
        while True:
            query = {"limit": str(PAGE_SIZE)}
            if token:
                query["continue"] = token
            page = await self.kube.request("GET", path, query=query)
            if page is None:
                return found
            found.extend(i for i in page.get("items") or () if isinstance(i, Mapping))
            token = str((page.get("metadata") or {}).get("continue") or "")
            if not token:
                return found

    async def _get_one(self, prefix: str, resource: Resource, name: str, api_version: str) -> None:
        try:
            obj = await self.kube.request("GET", f"{prefix}/{resource.resource}/{name}")
        except KubeError as exc:
            self._record(resource, None, exc, name=name)
            return
        if obj is not None:
            self.objects.append(trim(obj, api_version, resource.kind))

    def _record(
        self, resource: Resource, namespace: str | None, exc: KubeError, *, name: str = ""
    ) -> None:
        what = f'{resource.resource} "{name}"' if name else resource.resource
        where = f' in namespace "{namespace}"' if namespace else ""
        self.unreadable.append(f"{what}{where}: {_why(exc)}")


def _why(exc: KubeError) -> str:
    if exc.status == 403:
        return "forbidden"
    return f"{exc.status} {error_message(exc.body)}".strip()
