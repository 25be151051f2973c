"""The operator's Kubernetes client for the objects kopf does not write for it.

One small surface over the official client's transport (authentication, TLS, kubeconfig or
in-cluster config): JSON in, JSON out, paths spelled out. Status and kopf's own bookkeeping go
through kopf; NetworkPolicies, Cilium policies and look-ups go through here. Every method is
blocking; the async handlers call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from kubernetes import client, config

from aigis.api.common import LabelSelector

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE = "application/merge-patch+json"
FIELD_MANAGER = "aigis"


class KubeError(RuntimeError):
    """The API server refused a request; `status` is its HTTP status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        message = body
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(body).get("message", body)
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status


def selector_query(selector: LabelSelector) -> str:
    """A label selector in the `labelSelector=` query syntax."""
    terms = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for requirement in selector.match_expressions or ():
        values = ",".join(sorted(requirement.values or ()))
        terms.append(
            {
                "In": f"{requirement.key} in ({values})",
                "NotIn": f"{requirement.key} notin ({values})",
                "Exists": requirement.key,
                "DoesNotExist": f"!{requirement.key}",
            }[requirement.operator]
        )
    return ",".join(terms)


def object_path(manifest: Mapping[str, Any]) -> str:
    """The REST path of a namespaced object from its apiVersion, kind, name and namespace."""
    api_version = manifest["apiVersion"]
    plural = {
        "NetworkPolicy": "networkpolicies",
        "CiliumNetworkPolicy": "ciliumnetworkpolicies",
        "ConfigMap": "configmaps",
    }[manifest["kind"]]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    meta = manifest["metadata"]
    return f"{base}/namespaces/{quote(meta['namespace'])}/{plural}/{quote(meta['name'])}"


class KubeClient:
    """Blocking JSON calls to the API server the kubeconfig (or the pod) points at."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = api_client

    @classmethod
    def from_environment(cls) -> KubeClient:
        """In-cluster config inside a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
        # Reconciles call in from a thread pool; one pooled connection per worker thread.
        configuration.connection_pool_maxsize = 32
        return cls(client.ApiClient(configuration))

    def close(self) -> None:
        self._api.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any] | None:
        """One call; None for 404 on GET and DELETE, `KubeError` for other failures."""
        if query:
            path = f"{path}?{urlencode(query)}"
        _, url, headers, _, _ = self._api.param_serialize(
            method,
            path,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        if body is not None:
            headers["Content-Type"] = content_type
        response = self._api.call_api(
            method,
            url,
            header_params=headers,
            body=body,
            _request_timeout=30,
        )
        data = response.read()
        text = data.decode() if isinstance(data, bytes) else str(data or "")
        if response.status == 404 and method in ("GET", "DELETE"):
            return None
        if not 200 <= response.status < 300:
            raise KubeError(method, path, response.status, text)
        return dict(json.loads(text)) if text else {}

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """Server-side apply as field manager `aigis`, taking over fields others changed."""
        return self.request(
            "PATCH",
            object_path(manifest),
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=manifest,
            content_type=APPLY_CONTENT_TYPE,
        )

    def delete(self, manifest: Mapping[str, Any]) -> None:
        self.request("DELETE", object_path(manifest))

    def service_selector(self, namespace: str, name: str) -> dict[str, str] | None:
        """The pod selector of a Service, or None when it is missing or has none."""
        service = self.request(
            "GET", f"/api/v1/namespaces/{quote(namespace)}/services/{quote(name)}"
        )
        selector = (service or {}).get("spec", {}).get("selector")
        return dict(selector) if selector else None

    def count_pods(self, namespace: str, selector: LabelSelector) -> int:
        """How many pods in `namespace` the selector matches (metadata only, paged by 500)."""
        total, token = 0, ""
        while True:
            query = {"labelSelector": selector_query(selector), "limit": "500"}
            if token:
                query["continue"] = token
            page = (
                self.request("GET", f"/api/v1/namespaces/{quote(namespace)}/pods", query=query)
                or {}
            )
            total += len(page.get("items", []))
            token = page.get("metadata", {}).get("continue", "")
            if not token:
                return total

    def crd_installed(self, name: str) -> bool:
        return (
            self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            is not None
        )

    def list_aiworkloads(self) -> list[dict[str, Any]]:
        found = self.request("GET", "/apis/aigis.dev/v1alpha1/aiworkloads") or {}
        return list(found.get("items", []))

    def annotate_aiworkload(
        self, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None:
        self.request(
            "PATCH",
            f"/apis/aigis.dev/v1alpha1/namespaces/{quote(namespace)}/aiworkloads/{quote(name)}",
            body={"metadata": {"annotations": dict(annotations)}},
            content_type=MERGE_CONTENT_TYPE,
        )

    def patch_aiworkload_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch the status subresource (lists such as conditions are replaced whole)."""
        self.request(
            "PATCH",
            f"/apis/aigis.dev/v1alpha1/namespaces/{quote(namespace)}/aiworkloads/{quote(name)}"
            "/status",
            body={"status": dict(status)},
            content_type=MERGE_CONTENT_TYPE,
        )

    def remove_pod_finalizer(
        self, namespace: str, name: str, finalizers: list[str], finalizer: str
    ) -> None:
        """Drop one finalizer, only if the list is still what the caller saw (a JSON Patch
        `test`), so a finalizer another controller added meanwhile is never lost."""
        try:
            self.request(
                "PATCH",
                f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}",
                body=[
                    {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
                    {
                        "op": "replace",
                        "path": "/metadata/finalizers",
                        "value": [f for f in finalizers if f != finalizer],
                    },
                ],
                content_type="application/json-patch+json",
            )
        except KubeError as exc:
            if exc.status not in (404, 409, 422):  # gone, or changed: the next event retries
                raise
