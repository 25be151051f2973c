"""Plain egress through the gateway: an HTTP forward proxy and `CONNECT` tunnels.

An app that sets `HTTP_PROXY`/`HTTPS_PROXY` to the gateway reaches its other declared hosts
(a vector store, a search API) through it: absolute-URI requests (`GET http://host/path`) are
forwarded, and `CONNECT host:port` opens a byte tunnel for HTTPS. Tunnelled bytes are not
inspected (they are TLS), but the destination still has to be a declared egress host on a
declared port in an allowed data region.

LLM APIs are not plain egress. Every host the endpoint catalogue (`aigis.egress.catalogue`) knows
as an LLM API is judged by what the gateway can do with its provider (docs/gateway.md):
- a provider the gateway speaks (OpenAI-compatible or Anthropic: `PROVIDER_ENDPOINTS` gives it
  a wire format) is always refused here, whichever egress entry or wildcard matches the host:
  the app must call it through the gateway's /v1 routes, where the guardrails run and the keys
  live;
- a provider it cannot speak (signed APIs such as Bedrock and Vertex, and catalogue providers
  aigis has no upstream for) is tunnelled only to a host declared exactly, never through a
  wildcard, is refused under Enforce when a guardrail would block or redact a request (it
  cannot run on that traffic), and is recorded as `uninspected_llm` in the audit line.

The decision is the pure `egress_verdict`; the rest of this module moves bytes.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp import web
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict
from yarl import URL

from aigis.egress.catalogue import lookup_endpoint
from aigis.gateway.config import PROVIDER_ENDPOINTS, GatewayConfig, host_rule_for
from aigis.gateway.exchange import Exchange
from aigis.gateway.inspection import guardrails_acting_on_requests
from aigis.gateway.metrics import GatewayMetrics
from aigis.gateway.policy import Refusal, check_destination, workload_ref
from aigis.gateway.state import GatewayState

_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authorization", "proxy-authenticate",
        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host",
        "content-length",
    }
)  # fmt: skip
_HIGH_WATER = 512 * 1024
_LOW_WATER = 64 * 1024
_DRAIN_POLL_SECONDS = 0.002


@dataclass(frozen=True, slots=True)
class EgressVerdict:
    """What plain egress to one destination may do."""

    refusal: Refusal | None
    """Why it is refused; None when it may go."""
    uninspected_llm: str | None = None
    """The LLM provider whose traffic would pass uninspected (for the audit line)."""


def speaks_provider(provider: str) -> bool:
    """Whether the gateway can serve `provider` on its own routes (it has a wire format)."""
    endpoint = PROVIDER_ENDPOINTS.get(provider)  # type: ignore[call-overload]
    return endpoint is not None and endpoint.wire_format is not None


def egress_verdict(config: GatewayConfig, host: str, port: int) -> EgressVerdict:
    """Whether plain egress (forward or CONNECT) to `host:port` may go, and what to record."""
    name = host.lower().rstrip(".")
    # A configured upstream the catalogue may not know (self-hosted, a base URL override).
    upstream_hosts = {urlsplit(u.base_url).hostname: u.provider for u in config.upstreams}
    provider = lookup_endpoint(name).provider or upstream_hosts.get(name)
    if provider is None:
        return EgressVerdict(check_destination(config, host, port))
    if speaks_provider(provider) or name in upstream_hosts:
        return EgressVerdict(
            Refusal(
                403,
                "use_gateway_route",
                f'"{host}" is an LLM API ({provider}): call it through the gateway\'s /v1 routes '
                "(base URL http://127.0.0.1:<port>/v1), where the guardrails of "
                f"{workload_ref(config)} run, not through the proxy",
            )
        )
    rule = host_rule_for(config.allowed_hosts, name)
    if rule is not None and rule.host.startswith("*."):
        return EgressVerdict(
            Refusal(
                403,
                "llm_host_not_declared",
                f'"{host}" is an LLM API ({provider}) the gateway cannot inspect, matched only by '
                f'the wildcard "{rule.host}" in spec.egress of {workload_ref(config)}; declare '
                "the host itself to reach it uninspected",
            ),
            provider,
        )
    destination = check_destination(config, host, port)
    if destination is not None:
        return EgressVerdict(destination, provider)
    acting = guardrails_acting_on_requests(config.guardrails)
    if acting:
        return EgressVerdict(
            Refusal(
                403,
                "llm_uninspectable",
                f'"{host}" is an LLM API ({provider}) the gateway cannot inspect (its requests '
                f"are signed or in a format it does not speak), and the guardrails "
                f"({', '.join(acting)}) of {workload_ref(config)} would act on its prompts; "
                "use a provider the gateway serves on /v1, or set enforcement: Audit to let it "
                "through uninspected and recorded",
            ),
            provider,
        )
    return EgressVerdict(None, provider)


class EgressProxy:
    """Serves absolute-URI requests and CONNECT for the gateway's app-facing server."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        resolver: AbstractResolver | None,
        metrics: GatewayMetrics,
        record: Callable[[Exchange, GatewayState], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._resolver = resolver or aiohttp.DefaultResolver()
        self._metrics = metrics
        self._record = record
        self._clock = clock

    async def forward(self, request: web.BaseRequest, state: GatewayState) -> web.StreamResponse:
        """Forward one absolute-URI request (plain HTTP) to a declared host."""
        exchange = Exchange("egress_http", request.method, self._clock())
        url = URL(request.raw_path)
        if url.scheme != "http" or not url.host:
            return self._refuse(
                exchange,
                state,
                Refusal(
                    400,
                    "use_connect",
                    "only http:// URLs are forwarded; for https:// use CONNECT (HTTPS_PROXY)",
                ),
            )
        host, port = url.host, url.port or 80
        exchange.destination = f"{host}:{port}"
        verdict = egress_verdict(state.config, host, port)
        exchange.uninspected_llm = verdict.uninspected_llm
        if verdict.refusal is not None:
            if state.config.enforcement == "Enforce":
                return self._refuse(exchange, state, verdict.refusal)
            exchange.audited.append(verdict.refusal.reason)
        headers: CIMultiDict[str] = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in _HOP_BY_HOP
        )
        config = state.config
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=config.upstream_connect_timeout_seconds,
            sock_read=config.upstream_read_timeout_seconds,
        )
        sent = self._clock()
        try:
            upstream = await self._session.request(
                request.method,
                url,
                headers=headers,
                data=request.content if request.body_exists else None,
                timeout=timeout,
                allow_redirects=False,
                auto_decompress=False,
            )
        except Exception as exc:
            exchange.upstream_seconds = self._clock() - sent
            return self._refuse(exchange, state, _connect_failure(exc, exchange.destination))
        exchange.upstream_seconds = self._clock() - sent
        try:
            response = web.StreamResponse(
                status=upstream.status,
                reason=upstream.reason,
                headers=CIMultiDict(
                    (name, value)
                    for name, value in upstream.headers.items()
                    if name.lower() not in _HOP_BY_HOP
                ),
            )
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except (aiohttp.ClientError, TimeoutError, ConnectionResetError):
            exchange.status, exchange.decision, exchange.reason = 502, "error", "upstream_reset"
            self._finish(exchange, state)
            raise
        finally:
            upstream.close()
        exchange.status = upstream.status
        self._finish(exchange, state)
        return response

    async def connect(self, request: web.BaseRequest, state: GatewayState) -> web.StreamResponse:
        """Open a tunnel to `host:port` for an allowed destination."""
        exchange = Exchange("egress_connect", "CONNECT", self._clock())
        host, port = request.url.host, request.url.port
        if not host or port is None or not request.raw_path.endswith(f":{port}"):
            return self._refuse(
                exchange,
                state,
                Refusal(
                    400, "bad_connect", "CONNECT needs host:port, e.g. CONNECT example.com:443"
                ),
            )
        exchange.destination = f"{host}:{port}"
        verdict = egress_verdict(state.config, host, port)
        exchange.uninspected_llm = verdict.uninspected_llm
        if verdict.refusal is not None:
            if state.config.enforcement == "Enforce":
                return self._refuse(exchange, state, verdict.refusal)
            exchange.audited.append(verdict.refusal.reason)
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("the app closed the connection")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sent = self._clock()
        try:
            upstream = await asyncio.wait_for(
                self._open(host, port, transport, done),
                state.config.upstream_connect_timeout_seconds,
            )
        except Exception as exc:
            exchange.upstream_seconds = self._clock() - sent
            return self._refuse(exchange, state, _connect_failure(exc, exchange.destination))
        exchange.upstream_seconds = self._clock() - sent
        response = web.StreamResponse(status=200, reason="Connection Established")
        await response.prepare(request)
        # From here on the connection carries the tunnel: aiohttp hands every further byte from
        # the app to the parser it is given, as it does for an accepted WebSocket upgrade.
        request.protocol.set_parser(_AppToUpstream(upstream))  # type: ignore[arg-type]
        self._finish(exchange, state)
        await done
        return response

    async def _open(
        self, host: str, port: int, app: asyncio.Transport, done: asyncio.Future[None]
    ) -> asyncio.Transport:
        loop = asyncio.get_running_loop()
        addresses = await self._resolver.resolve(host, port, family=socket.AF_UNSPEC)
        error: Exception | None = None
        for address in addresses:
            try:
                transport, _ = await loop.create_connection(
                    lambda: _UpstreamToApp(app, done), address["host"], address["port"]
                )
            except OSError as exc:
                error = exc
                continue
            return transport
        raise error or OSError(f"{host} has no address")

    def _refuse(self, exchange: Exchange, state: GatewayState, refusal: Refusal) -> web.Response:
        exchange.status, exchange.reason = refusal.status, refusal.reason
        exchange.decision = "refused" if refusal.status in (403, 400) else "error"
        self._finish(exchange, state)
        body = {
            "error": {"message": refusal.message, "type": "egress_error", "code": refusal.reason}
        }
        response = web.Response(
            body=orjson.dumps(body),
            status=refusal.status,
            content_type="application/json",
            headers={"x-aigis-reason": refusal.reason},
        )
        response.force_close()
        return response

    def _finish(self, exchange: Exchange, state: GatewayState) -> None:
        if exchange.audited and exchange.decision == "allowed":
            exchange.decision, exchange.reason = "audited", exchange.audited[0]
        self._metrics.egress.labels(
            exchange.method if exchange.method == "CONNECT" else "HTTP",
            exchange.decision,
            exchange.reason or "",
        ).inc()
        self._record(exchange, state)


def _connect_failure(exc: Exception, destination: str | None) -> Refusal:
    if isinstance(exc, TimeoutError):
        return Refusal(504, "upstream_timeout", f"connecting to {destination} timed out")
    return Refusal(502, "upstream_unreachable", f"cannot connect to {destination}")


class _UpstreamToApp(asyncio.Protocol):
    """The destination side of a tunnel: what arrives is written to the app's connection."""

    def __init__(self, app: asyncio.Transport, done: asyncio.Future[None]) -> None:
        self._app = app
        self._done = done
        self._transport: asyncio.Transport | None = None
        self._waiting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._app.is_closing():
            return
        self._app.write(data)
        if self._app.get_write_buffer_size() > _HIGH_WATER and not self._waiting:
            # The app reads slower than the destination sends: stop reading until it catches up.
            assert self._transport is not None
            self._transport.pause_reading()
            self._waiting = True
            asyncio.get_running_loop().create_task(self._resume_when_drained())

    async def _resume_when_drained(self) -> None:
        while not self._app.is_closing() and self._app.get_write_buffer_size() > _LOW_WATER:
            await asyncio.sleep(_DRAIN_POLL_SECONDS)
        self._waiting = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def eof_received(self) -> bool | None:
        if not self._app.is_closing() and self._app.can_write_eof():
            self._app.write_eof()
        return None

    def pause_writing(self) -> None:
        # The destination reads slower than the app sends.
        if not self._app.is_closing():
            self._app.pause_reading()

    def resume_writing(self) -> None:
        if not self._app.is_closing():
            self._app.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._app.close()
        if not self._done.done():
            self._done.set_result(None)


class _AppToUpstream:
    """The app side of a tunnel, in the shape of aiohttp's payload parser."""

    def __init__(self, upstream: asyncio.Transport) -> None:
        self._upstream = upstream

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if not self._upstream.is_closing():
            self._upstream.write(data)
        return False, b""

    def feed_eof(self) -> None:
        # aiohttp calls this when the app's connection is gone: nothing more can be answered.
        self._upstream.close()
