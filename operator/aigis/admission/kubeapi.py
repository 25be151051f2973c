"""The webhook process's Kubernetes client: an aiohttp session from the operator's configuration.

The operator talks to the API server through `aigis.controller.kube.KubeClient` (blocking calls
over the official client's transport). The webhook lives in one event loop and must stream
watches, so it uses an aiohttp session instead, built from the very same kubeconfig-derived
`kubernetes.client.Configuration` (in-cluster first, else the kubeconfig): same server, same CA,
same client certificate or token, and the token is re-read through the configuration's refresh
hook on every request, so projected service-account tokens keep working after they rotate.

Environment proxies are ignored (`trust_env=False`): the API server is always dialled directly.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from kubernetes import client, config

from aigis.controller.kube import APPLY_CONTENT_TYPE, KubeError

JSON = "application/json"
MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024
"""A watch event is one object (etcd caps those at 1.5 MB) in one line; this bounds a broken
stream's memory use."""


class WatchExpiredError(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class AsyncKube:
    """JSON calls and watches against the API server of a `kubernetes.client.Configuration`."""

    def __init__(self, configuration: client.Configuration) -> None:
        self._configuration = configuration
        self._base = configuration.host.rstrip("/")
        self._ssl = _ssl_context(configuration)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_environment(cls) -> AsyncKube:
        """In-cluster config inside a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
        return cls(configuration)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=32),
                trust_env=False,
                json_serialize=lambda value: orjson.dumps(value).decode(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, accept: str = JSON) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": "aigis-webhook"}
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
        timeout: float = 10.0,
    ) -> dict[str, Any] | None:
        """One call; None for 404 on GET and DELETE, `KubeError` for other failures."""
        headers = self._headers(accept)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = orjson.dumps(body)
        async with self.session.request(
            method,
            self._base + path,
            params=dict(query or {}),
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            raw = await response.read()
            if response.status == 404 and method in ("GET", "DELETE"):
                return None
            if not 200 <= response.status < 300:
                raise KubeError(method, path, response.status, raw.decode(errors="replace"))
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
        after a timeout rarely needs a full list. An ERROR event with code 410 raises
        `WatchExpiredError`.
        """
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_seconds + 30)
        async with self.session.get(
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
                        yield _watch_event(line, path)
                if len(buffer) > MAX_WATCH_LINE_BYTES:
                    raise KubeError("GET", path, 0, "a watch event exceeded 16 MiB")
            if buffer.strip():
                yield _watch_event(buffer, path)

    # --- the few typed calls the webhook makes ---------------------------------------------

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.request("GET", _secret_path(namespace, name))

    async def create_secret(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        namespace = manifest["metadata"]["namespace"]
        try:
            return await self.request(
                "POST", f"/api/v1/namespaces/{quote(namespace)}/secrets", body=manifest
            )
        except KubeError as error:
            if error.status == 409:
                return None
            raise

    async def replace_secret(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        meta = manifest["metadata"]
        try:
            return await self.request(
                "PUT", _secret_path(meta["namespace"], meta["name"]), body=manifest
            )
        except KubeError as error:
            if error.status == 409:
                return None
            raise

    async def apply(self, path: str, manifest: Mapping[str, Any], field_manager: str) -> None:
        """Server-side apply, taking over fields another manager changed."""
        await self.request(
            "PATCH",
            path,
            query={"fieldManager": field_manager, "force": "true"},
            body=manifest,
            content_type=APPLY_CONTENT_TYPE,
        )


def _secret_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}"


def _watch_event(line: bytes, path: str) -> dict[str, Any]:
    event = orjson.loads(line)
    if not isinstance(event, dict):
        raise KubeError("GET", path, 0, "a watch event is not an object")
    if event.get("type") == "ERROR":
        status = event.get("object") or {}
        if status.get("code") == 410:
            raise WatchExpiredError(path)
        raise KubeError("GET", path, int(status.get("code") or 0), str(status.get("message")))
    return event


def _ssl_context(configuration: client.Configuration) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    return context
