"""A minimal HTTP(S) client for health checks and the few API calls ``up`` makes.

``http.client`` is used instead of urllib or the kubernetes client on purpose: it never consults
``HTTPS_PROXY``/``NO_PROXY`` (a proxy would turn a loopback call into a non-loopback connection)
and it costs nothing to import, which keeps ``up`` on an already running cluster fast.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def tls_context(
    ca: Path, client_cert: Path | None = None, client_key: Path | None = None
) -> ssl.SSLContext:
    """A verifying TLS context that trusts only ``ca`` and optionally presents a client cert."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    if client_cert is not None:
        context.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
    return context


@dataclass(frozen=True)
class LoopbackEndpoint:
    """A server on a loopback address; refuses to be pointed anywhere else."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"refusing to connect to non-loopback address {self.host}")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> Response:
        """Send one request; raises ``OSError`` if the server cannot be reached."""
        connection = self._connect(timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            return Response(status=response.status, body=response.read())
        except http.client.HTTPException as error:
            raise OSError(f"{method} {path}: {error!r}") from error
        finally:
            connection.close()

    def get(self, path: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Response:
        return self.request("GET", path, timeout=timeout)

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.tls is None:
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.tls)
