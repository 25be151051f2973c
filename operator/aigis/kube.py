"""aigis's one Kubernetes client, for everything kopf does not read or write for it.

kopf writes the operator's status patches and its own bookkeeping. Everything else goes
through `KubeClient`: the operator's NetworkPolicies, Cilium policies, gateway ConfigMaps,
audit-key Secrets and look-ups; the forensics finalizer and `aigis forensics release`; the
webhook's list+watch cache, its certificate Secret, its Events and its webhook configurations.

Async, over one aiohttp session: the webhook streams watches inside one event loop, and the
operator's handlers are coroutines under kopf. The session is opened on the first call, in the
running event loop, and belongs to that loop: `close()` it (or use `async with`) there, and do
not share a client between loops (`asyncio.run` twice needs two clients).

The official `kubernetes` package is used for one thing only, loading the configuration
(`from_environment`: in-cluster first, else the kubeconfig): server, CA, client certificate or
token. The token is read through the configuration's refresh hook on every request, so projected
service-account tokens keep working after they rotate. Environment proxies are ignored
(`trust_env=False`): the API server is always dialled directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from kubernetes import client, config

from aigis.api.common import LabelSelector

JSON: Final = "application/json"
APPLY_CONTENT_TYPE: Final = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE: Final = "application/merge-patch+json"
JSON_PATCH_CONTENT_TYPE: Final = "application/json-patch+json"
FIELD_MANAGER: Final = "aigis"
MAX_CONCURRENT_CALLS: Final = 32
"""Connections per client. The operator's busiest moments (the refresh loop and a cluster-policy
change, each 16 workloads at a time, plus kopf's own handlers) stay within it; calls beyond it
wait for a free connection inside their timeout."""
MAX_WATCH_LINE_BYTES: Final = 16 * 1024 * 1024
"""A watch event is one object (etcd caps those at 1.5 MB) in one line; this bounds a broken
stream's memory use."""
AIWORKLOADS_PATH: Final = "/apis/aigis.dev/v1alpha1/aiworkloads"

KubeConfigError = config.ConfigException
"""Neither an in-cluster configuration nor a usable kubeconfig was found."""


class KubeError(RuntimeError):
    """The API server refused a request (or sent what no client can read); `status` is its HTTP
    status, 0 when there was none (a broken watch stream)."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: {status} {error_message(body)}")
        self.method = method
        self.path = path
        self.status = status
        self.body = body


class WatchExpiredError(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


# --- pure ---------------------------------------------------------------------------------


def error_message(body: str) -> str:
    """The `message` of a Kubernetes Status body, else the body as it came."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        message = orjson.loads(body).get("message")
        if isinstance(message, str):
            return message
    return body


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


def namespaced_path(prefix: str, namespace: str | None, plural: str, name: str = "") -> str:
    """`prefix/namespaces/NS/PLURAL[/NAME]`, or `prefix/PLURAL` across namespaces (None)."""
    path = f"{prefix}/namespaces/{quote(namespace)}/{plural}" if namespace else f"{prefix}/{plural}"
    return f"{path}/{quote(name)}" if name else path


def _secret_path(namespace: str, name: str = "") -> str:
    return namespaced_path("/api/v1", namespace, "secrets", name)


def _pod_path(namespace: str | None, name: str = "") -> str:
    return namespaced_path("/api/v1", namespace, "pods", name)


def _aiworkload_path(namespace: str, name: str) -> str:
    return namespaced_path("/apis/aigis.dev/v1alpha1", namespace, "aiworkloads", name)


def finalizer_removal(finalizers: list[str], finalizer: str) -> list[dict[str, Any]]:
    """A JSON Patch dropping `finalizer`, refused unless the list is still `finalizers`."""
    return [
        {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
        {
            "op": "replace",
            "path": "/metadata/finalizers",
            "value": [f for f in finalizers if f != finalizer],
        },
    ]


def watch_event(line: bytes, path: str) -> dict[str, Any]:
    """One line of a watch stream; an ERROR event raises (410: `WatchExpiredError`)."""
    event = orjson.loads(line)
    if not isinstance(event, dict):
        raise KubeError("GET", path, 0, "a watch event is not an object")
    if event.get("type") == "ERROR":
        status = event.get("object") or {}
        if status.get("code") == 410:
            raise WatchExpiredError(path)
        raise KubeError("GET", path, int(status.get("code") or 0), str(status.get("message")))
    return event


# --- shell ----------------------------------------------------------------------------------


class KubeClient:
    """JSON calls and watches against the API server of a `kubernetes.client.Configuration`."""

    def __init__(
        self,
        configuration: client.Configuration,
        *,
        user_agent: str = "aigis",
        timeout: float = 30.0,
    ) -> None:
        self._configuration = configuration
        self._base = str(configuration.host).rstrip("/")
        self._ssl = _ssl_context(configuration)
        self._user_agent = user_agent
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_environment(cls, *, user_agent: str = "aigis", timeout: float = 30.0) -> KubeClient:
        """In-cluster config inside a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config).

        Blocking (it reads files and may run a kubeconfig's credential plugin); `KubeConfigError`
        when there is neither. `timeout` is each call's default, in seconds.
        """
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
        return cls(configuration, user_agent=user_agent, timeout=timeout)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=MAX_CONCURRENT_CALLS),
                trust_env=False,
            )
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a KubeClient is used only in the event loop of its first call")
        return self._session

    async def close(self) -> None:
        """Close the session (in the loop that opened it); a later call opens a new one."""
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._loop = None

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": self._user_agent}
        # Read on every call: the refresh hook re-reads a rotated service-account token.
        bearer = self._configuration.auth_settings().get("BearerToken")
        if bearer is not None and bearer.get("value"):
            headers[str(bearer["key"])] = str(bearer["value"])
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = JSON,
        accept: str = JSON,
        timeout: float | None = None,
    ) -> dict[str, Any] | None:
        """One call; None for 404 on GET and DELETE, `KubeError` for other failures.

        `timeout` (default: the client's) bounds the whole call, waiting for a connection
        included.
        """
        headers = self._headers(accept)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = orjson.dumps(body)
        async with self._session_here().request(
            method,
            self._base + path,
            params=dict(query or {}),
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout or self._timeout),
        ) as response:
            raw = await response.read()
            if response.status == 404 and method in ("GET", "DELETE"):
                return None
            if not 200 <= response.status < 300:
                shown = f"{path}?{urlencode(query)}" if query else path
                raise KubeError(method, shown, response.status, raw.decode(errors="replace"))
            return dict(orjson.loads(raw)) if raw else {}

    async def watch(
        self,
        path: str,
        resource_version: str,
        *,
        accept: str = JSON,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch from `resource_version` until the server ends it.

        Bookmarks are asked for, so a quiet resource still advances the version and a re-watch
        after a timeout rarely needs a full list. A 410 Gone (as the response or as an ERROR
        event) raises `WatchExpiredError`.
        """
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_seconds + 30)
        async with self._session_here().get(
            self._base + path, params=query, headers=self._headers(accept), timeout=timeout
        ) as response:
            if response.status == 410:
                raise WatchExpiredError(path)
            if response.status != 200:
                raw = await response.read()
                raise KubeError("GET", path, response.status, raw.decode(errors="replace"))
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, _, buffer = buffer.partition(b"\n")
                    if line.strip():
                        yield watch_event(line, path)
                if len(buffer) > MAX_WATCH_LINE_BYTES:
                    raise KubeError("GET", path, 0, "a watch event exceeded 16 MiB")
            if buffer.strip():
                yield watch_event(buffer, path)

    async def apply(
        self, path: str, manifest: Mapping[str, Any], field_manager: str = FIELD_MANAGER
    ) -> dict[str, Any] | None:
        """Server-side apply at `path`, taking over fields another manager changed."""
        return await self.request(
            "PATCH",
            path,
            query={"fieldManager": field_manager, "force": "true"},
            body=manifest,
            content_type=APPLY_CONTENT_TYPE,
        )

    async def delete(self, manifest: Mapping[str, Any]) -> None:
        """Delete the object `manifest` names (see `object_path`); gone already is fine."""
        await self.request("DELETE", object_path(manifest))

    # --- the operator's calls ---------------------------------------------------------------

    async def service_selector(self, namespace: str, name: str) -> dict[str, str] | None:
        """The pod selector of a Service, or None when it is missing or has none."""
        service = await self.request("GET", namespaced_path("/api/v1", namespace, "services", name))
        selector = (service or {}).get("spec", {}).get("selector")
        return dict(selector) if selector else None

    async def count_pods(self, namespace: str, selector: LabelSelector) -> int:
        """How many pods in `namespace` the selector matches (paged by 500)."""
        total, token = 0, ""
        while True:
            query = {"labelSelector": selector_query(selector), "limit": "500"}
            if token:
                query["continue"] = token
            page = await self.request("GET", _pod_path(namespace), query=query) or {}
            total += len(page.get("items", []))
            token = page.get("metadata", {}).get("continue", "")
            if not token:
                return total

    async def crd_installed(self, name: str) -> bool:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{quote(name)}"
        return await self.request("GET", path) is not None

    async def get_aiworkload(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.request("GET", _aiworkload_path(namespace, name))

    async def list_aiworkloads(self) -> list[dict[str, Any]]:
        found = await self.request("GET", AIWORKLOADS_PATH) or {}
        return list(found.get("items", []))

    async def annotate_aiworkload(
        self, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None:
        await self.request(
            "PATCH",
            _aiworkload_path(namespace, name),
            body={"metadata": {"annotations": dict(annotations)}},
            content_type=MERGE_CONTENT_TYPE,
        )

    async def patch_aiworkload_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """Merge-patch the status subresource (lists such as conditions are replaced whole)."""
        await self.request(
            "PATCH",
            _aiworkload_path(namespace, name) + "/status",
            body={"status": dict(status)},
            content_type=MERGE_CONTENT_TYPE,
        )

    async def remove_pod_finalizer(
        self, namespace: str, name: str, finalizers: list[str], finalizer: str
    ) -> None:
        """Drop one finalizer, only if the list is still what the caller saw (a JSON Patch
        `test`), so a finalizer another controller added meanwhile is never lost."""
        try:
            await self.request(
                "PATCH",
                _pod_path(namespace, name),
                body=finalizer_removal(finalizers, finalizer),
                content_type=JSON_PATCH_CONTENT_TYPE,
            )
        except KubeError as exc:
            if exc.status not in (404, 409, 422):  # gone, or changed: the next event retries
                raise

    # --- the webhook's calls ----------------------------------------------------------------

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.request("GET", _secret_path(namespace, name))

    async def create_secret(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create; None when it already exists (another replica was first)."""
        try:
            return await self.request(
                "POST", _secret_path(manifest["metadata"]["namespace"]), body=manifest
            )
        except KubeError as error:
            if error.status == 409:
                return None
            raise

    async def replace_secret(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """Replace at `metadata.resourceVersion`; None when that version is no longer current."""
        meta = manifest["metadata"]
        try:
            return await self.request(
                "PUT", _secret_path(meta["namespace"], meta["name"]), body=manifest
            )
        except KubeError as error:
            if error.status == 409:
                return None
            raise

    # --- forensics' calls -------------------------------------------------------------------

    async def pod_log(
        self,
        namespace: str,
        name: str,
        container: str,
        sink: Callable[[bytes], None],
        *,
        previous: bool = False,
        follow: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Stream one container's log (as text bytes, not JSON) into `sink`, chunk by chunk, so
        the caller decides how much to keep; `KubeError` when the API server cannot serve it
        (404 included: no such pod or container, no previous instance). With `follow` the
        stream stays open until the container exits (or `timeout`)."""
        path = _pod_path(namespace, name) + "/log"
        query = {"container": container}
        if previous:
            query["previous"] = "true"
        if follow:
            query["follow"] = "true"
        async with self._session_here().get(
            self._base + path,
            params=query,
            headers=self._headers("*/*"),
            timeout=aiohttp.ClientTimeout(total=timeout or self._timeout),
        ) as response:
            if response.status != 200:
                raw = await response.read()
                raise KubeError("GET", path, response.status, raw.decode(errors="replace"))
            async for chunk in response.content.iter_any():
                sink(chunk)


def kubeconfig_namespace() -> str:
    """The current kubeconfig context's namespace, "default" when it names none (or there is
    no kubeconfig), as kubectl does."""
    try:
        _, context = config.list_kube_config_contexts()
    except config.ConfigException:
        context = {}
    return str((context or {}).get("context", {}).get("namespace") or "default")


def _ssl_context(configuration: client.Configuration) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    return context
