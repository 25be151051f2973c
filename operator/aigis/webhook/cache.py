"""What the webhook needs to decide, held in memory: AIWorkloads, AIClusterPolicies, namespaces.

An admission review must be answered in milliseconds, so the webhook never calls the API server
on the common path. `AdmissionCache` lists and then watches the three resources (AIWorkloads with
their status, AIClusterPolicies, and namespaces as metadata only), re-listing after a 410 Gone and
backing off after errors, and exposes them through `AdmissionView`.

A cache can lag behind the API server by the time a watch event takes to arrive. That matters in
one direction only: `kubectl apply -f app.yaml` with an AIWorkload and a Deployment creates both
within milliseconds, and a lagging cache would refuse the Deployment as shadow AI. So before it
refuses, the server asks `read_workloads` / `read_namespace_labels` for the live objects, once.
A namespace the cache has not seen yet is read live as well.

`StaticView` serves a fixed snapshot with the same interface, for benchmarks and tests.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from aigis.api.validation import parse_cluster_policy_spec
from aigis.egress.compliance import NamedPolicy
from aigis.kube import AIWORKLOADS_PATH, KubeClient, KubeError, WatchExpiredError
from aigis.webhook.metrics import WebhookMetrics

log = logging.getLogger("aigis.webhook.cache")

AICLUSTERPOLICIES_PATH = "/apis/aigis.dev/v1alpha1/aiclusterpolicies"
NAMESPACES_PATH = "/api/v1/namespaces"
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
_METADATA_ITEM = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
LIVE_READ_TIMEOUT_SECONDS = 1.5
"""A live read happens inside an admission call whose whole budget is at most 5 s."""


class AdmissionView(Protocol):
    """What the admission server reads to decide: a cache, or a fixed snapshot."""

    def ready(self) -> bool:
        """Whether every resource has been listed at least once."""

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        """The labels of a namespace; None when it is not known (yet)."""

    def workloads(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        """The AIWorkloads of a namespace, status included."""

    def policies(self) -> Sequence[NamedPolicy]:
        """Every valid AIClusterPolicy."""

    async def read_namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        """The labels from the API server; None when the namespace does not exist."""

    async def read_workloads(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        """The AIWorkloads of a namespace from the API server; raises when it cannot say."""


def valid_policies(items: Mapping[str, Mapping[str, Any]]) -> tuple[NamedPolicy, ...]:
    """The AIClusterPolicies whose spec is valid, by name; invalid ones are left out.

    An invalid policy is reported by the operator on its status and refused by the webhook on
    write; here it must not half-apply, so it does not apply at all.
    """
    found = []
    for name in sorted(items):
        model, errors = parse_cluster_policy_spec(items[name].get("spec") or {})
        if model is not None and not errors:
            found.append(NamedPolicy(name, model))
    return tuple(found)


def slim(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object without what admission never reads and what costs most memory."""
    result = dict(obj)
    metadata = dict(result.get("metadata") or {})
    metadata.pop("managedFields", None)
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
        metadata["annotations"] = {k: v for k, v in annotations.items() if k != _LAST_APPLIED}
    result["metadata"] = metadata
    return result


class StaticView:
    """A fixed snapshot: the same answers every time, no API server."""

    def __init__(
        self,
        *,
        namespaces: Mapping[str, Mapping[str, str]] | None = None,
        workloads: Sequence[Mapping[str, Any]] = (),
        policies: Sequence[NamedPolicy] = (),
    ) -> None:
        self._namespaces = {k: dict(v) for k, v in (namespaces or {}).items()}
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for workload in workloads:
            grouped.setdefault(workload["metadata"].get("namespace", ""), []).append(workload)
        self._workloads = {k: tuple(v) for k, v in grouped.items()}
        self._policies = tuple(policies)

    def ready(self) -> bool:
        return True

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        return self._namespaces.get(namespace)

    def workloads(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        return self._workloads.get(namespace, ())

    def policies(self) -> Sequence[NamedPolicy]:
        return self._policies

    async def read_namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        return self.namespace_labels(namespace)

    async def read_workloads(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        return self.workloads(namespace)


class Reflector:
    """Lists one resource, then watches it, forever; tells its owner about every change.

    `reset` receives the whole list (after the first list and every re-list), `apply` one watch
    event. A 410 Gone re-lists at once; any other failure waits with exponential backoff and
    jitter (0.5 s up to 30 s) before re-listing.
    """

    def __init__(
        self,
        kube: KubeClient,
        name: str,
        path: str,
        *,
        reset: Callable[[list[dict[str, Any]]], None],
        apply: Callable[[str, dict[str, Any]], None],
        metrics: WebhookMetrics,
        metadata_only: bool = False,
        watch_timeout_seconds: int = 300,
    ) -> None:
        self._kube = kube
        self.name = name
        self._path = path
        self._reset = reset
        self._apply = apply
        self._metrics = metrics
        self._list_accept = _METADATA_LIST if metadata_only else "application/json"
        self._watch_accept = _METADATA_ITEM if metadata_only else "application/json"
        self._watch_timeout = watch_timeout_seconds
        self.synced = asyncio.Event()

    async def run(self) -> None:
        delay = 0.5
        first = True
        while True:
            try:
                version = await self._list()
                if not first:
                    log.info("re-listed %s", self.name)
                first = False
                delay = 0.5
                while True:
                    version = await self._watch(version)
            except asyncio.CancelledError:
                raise
            except WatchExpiredError:
                self._metrics.cache_relists.labels(self.name, "expired").inc()
            except Exception as error:
                self._metrics.cache_relists.labels(self.name, "error").inc()
                log.warning("watching %s failed (%s); retrying in %.1fs", self.name, error, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 30.0)

    async def _list(self) -> str:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = {"limit": "500"}
            if token:
                query["continue"] = token
            page = await self._kube.request(
                "GET", self._path, query=query, accept=self._list_accept, timeout=60
            )
            if page is None:
                # Not an empty list: the resource itself is missing (CRDs not installed), and
                # an empty cache must not pass for a synced one.
                raise KubeError("GET", self._path, 404, "the resource is not served")
            items += [slim(item) for item in page.get("items") or []]
            metadata = page.get("metadata") or {}
            token = metadata.get("continue") or ""
            if not token:
                self._reset(items)
                self.synced.set()
                return str(metadata.get("resourceVersion") or "")

    async def _watch(self, version: str) -> str:
        """One watch until the server closes it; the version to resume from."""
        async for event in self._kube.watch(
            self._path, version, accept=self._watch_accept, timeout_seconds=self._watch_timeout
        ):
            kind = event.get("type", "")
            obj = event.get("object") or {}
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self._apply(kind, slim(obj))
        return version


class AdmissionCache:
    """AIWorkloads, AIClusterPolicies and namespace labels, kept current by list+watch.

    `on_policies_changed` is called (in the event loop, so it must not block) whenever the set of
    valid policies changes, so the webhook configurations can be rendered again.
    """

    def __init__(
        self,
        kube: KubeClient,
        metrics: WebhookMetrics,
        *,
        on_policies_changed: Callable[[], None] | None = None,
    ) -> None:
        self._kube = kube
        self._metrics = metrics
        self._on_policies_changed = on_policies_changed
        self._workloads: dict[str, dict[str, dict[str, Any]]] = {}
        self._workload_lists: dict[str, tuple[dict[str, Any], ...]] = {}
        self._namespaces: dict[str, dict[str, str]] = {}
        self._policy_objects: dict[str, dict[str, Any]] = {}
        self._policies: tuple[NamedPolicy, ...] = ()
        self._reflectors = [
            Reflector(
                kube,
                "aiworkloads",
                AIWORKLOADS_PATH,
                reset=self._reset_workloads,
                apply=self._apply_workload,
                metrics=metrics,
            ),
            Reflector(
                kube,
                "aiclusterpolicies",
                AICLUSTERPOLICIES_PATH,
                reset=self._reset_policies,
                apply=self._apply_policy,
                metrics=metrics,
            ),
            Reflector(
                kube,
                "namespaces",
                NAMESPACES_PATH,
                reset=self._reset_namespaces,
                apply=self._apply_namespace,
                metrics=metrics,
                metadata_only=True,
            ),
        ]
        self._tasks: list[asyncio.Task[None]] = []

    # --- running --------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(r.run(), name=f"watch {r.name}") for r in self._reflectors
        ]

    async def wait_synced(self) -> None:
        await asyncio.gather(*(r.synced.wait() for r in self._reflectors))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- AdmissionView ----------------------------------------------------------------------

    def ready(self) -> bool:
        return all(r.synced.is_set() for r in self._reflectors)

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        return self._namespaces.get(namespace)

    def workloads(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        found = self._workload_lists.get(namespace)
        if found is None:
            found = tuple(
                self._workloads.get(namespace, {})[name]
                for name in sorted(self._workloads.get(namespace, {}))
            )
            self._workload_lists[namespace] = found
        return found

    def policies(self) -> Sequence[NamedPolicy]:
        return self._policies

    async def read_namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        found = await self._kube.request(
            "GET",
            f"{NAMESPACES_PATH}/{quote(namespace)}",
            accept=_METADATA_ITEM,
            timeout=LIVE_READ_TIMEOUT_SECONDS,
        )
        if found is None:
            return None
        return dict((found.get("metadata") or {}).get("labels") or {})

    async def read_workloads(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        found = await self._kube.request(
            "GET",
            f"/apis/aigis.dev/v1alpha1/namespaces/{quote(namespace)}/aiworkloads",
            timeout=LIVE_READ_TIMEOUT_SECONDS,
        )
        items = [slim(item) for item in (found or {}).get("items") or []]
        return sorted(items, key=lambda w: str(w["metadata"].get("name")))

    # --- updates from the reflectors ------------------------------------------------------

    def _reset_workloads(self, items: list[dict[str, Any]]) -> None:
        self._workloads = {}
        for item in items:
            self._store_workload(item)
        self._workload_lists = {}
        self._metrics.cache_objects.labels("aiworkloads").set(len(items))

    def _apply_workload(self, kind: str, obj: dict[str, Any]) -> None:
        metadata = obj.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "")
        if kind == "DELETED":
            self._workloads.get(namespace, {}).pop(str(metadata.get("name")), None)
        else:
            self._store_workload(obj)
        self._workload_lists.pop(namespace, None)
        self._metrics.cache_objects.labels("aiworkloads").set(
            sum(len(v) for v in self._workloads.values())
        )

    def _store_workload(self, obj: dict[str, Any]) -> None:
        metadata = obj.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "")
        self._workloads.setdefault(namespace, {})[str(metadata.get("name"))] = obj

    def _reset_namespaces(self, items: list[dict[str, Any]]) -> None:
        self._namespaces = {
            str(item["metadata"].get("name")): dict(item["metadata"].get("labels") or {})
            for item in items
        }
        self._metrics.cache_objects.labels("namespaces").set(len(self._namespaces))

    def _apply_namespace(self, kind: str, obj: dict[str, Any]) -> None:
        metadata = obj.get("metadata") or {}
        name = str(metadata.get("name"))
        if kind == "DELETED":
            self._namespaces.pop(name, None)
            self._workloads.pop(name, None)
            self._workload_lists.pop(name, None)
        else:
            self._namespaces[name] = dict(metadata.get("labels") or {})
        self._metrics.cache_objects.labels("namespaces").set(len(self._namespaces))

    def _reset_policies(self, items: list[dict[str, Any]]) -> None:
        self._policy_objects = {str(item["metadata"].get("name")): item for item in items}
        self._policies_updated()

    def _apply_policy(self, kind: str, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name"))
        if kind == "DELETED":
            self._policy_objects.pop(name, None)
        else:
            self._policy_objects[name] = obj
        self._policies_updated()

    def _policies_updated(self) -> None:
        policies = valid_policies(self._policy_objects)
        self._metrics.cache_objects.labels("aiclusterpolicies").set(len(self._policy_objects))
        if policies == self._policies:
            return
        self._policies = policies
        if self._on_policies_changed is not None:
            self._on_policies_changed()
