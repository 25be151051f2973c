"""The gateway's HTTP shell: receive an app's request, decide, forward, guard the answer, record.

One aiohttp low-level server (no router: six exact paths and two proxy forms are matched by a
dict and two prefix tests, which is cheaper per request), one pooled aiohttp client session
upstream with an injectable resolver, and a second small server for `/metrics`, `/healthz` and
`/readyz`. Decisions come from the pure modules (`policy`, `inspection`, `streaming`); this module
only moves bytes, measures time and writes the audit line and metrics for every request, refused
ones included.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import generate_latest

from aigis.api.errors import FieldError
from aigis.gateway.audit import (
    AuditChain,
    AuditWriter,
    ChainState,
    prompt_digest,
    read_chain_state,
    start_record,
)
from aigis.gateway.config import GatewayConfig
from aigis.gateway.exchange import Exchange
from aigis.gateway.forward_proxy import EgressProxy
from aigis.gateway.identity import AUDIT_KEY_FLAG, PodIdentity
from aigis.gateway.inspection import (
    UNSCANNED,
    Inspection,
    PipelineFactory,
    guardrail_decisions,
    guardrails_acting_on_requests,
    inspect_slots,
)
from aigis.gateway.metrics import GatewayMetrics
from aigis.gateway.overload import ConcurrencyGate, OverloadLimits, ShedReason
from aigis.gateway.policy import (
    Refusal,
    Target,
    body_limit,
    body_too_large,
    check_max_tokens,
    choose_target,
    workload_ref,
)
from aigis.gateway.providers import (
    MAX_BODY_DEPTH,
    ROUTES,
    Route,
    TextSlot,
    error_body,
    nesting_depth,
    request_texts,
    requested_model,
    response_texts,
    token_id_fields,
    usage_of,
    wants_stream,
)
from aigis.gateway.sse import MalformedStreamError, SSEParser
from aigis.gateway.state import (
    ConfigWatcher,
    GatewayState,
    default_pipeline_factory,
    load_gateway_state,
)
from aigis.gateway.streaming import (
    StreamBlockedError,
    StreamGuard,
    stream_error_event,
    stream_guard_for,
)
from aigis.httpbody import read_capped

log = logging.getLogger("aigis.gateway")

MAX_UPSTREAM_BODY_BYTES = 64 * 1024 * 1024
"""Largest non-streaming upstream answer the gateway buffers to scan."""

# Headers the app must not pass upstream: its own credentials (the gateway holds the keys),
# hop-by-hop headers, and what the client session sets itself.
_DROP_REQUEST_HEADERS = frozenset(
    {
        "authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie",
        "host", "content-length", "transfer-encoding", "connection", "keep-alive",
        "proxy-authorization", "proxy-connection", "te", "trailer", "upgrade", "expect",
        "accept-encoding", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
    }
)  # fmt: skip
_DROP_RESPONSE_HEADERS = frozenset(
    {
        "content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive",
        "set-cookie", "te", "trailer", "upgrade", "proxy-authenticate", "server", "date",
    }
)  # fmt: skip
ANTHROPIC_VERSION = "2023-06-01"
LISTEN_BACKLOG = 4096
"""Connections the kernel completes before the gateway accepts them (capped by the kernel's
net.core.somaxconn, 4096 by default). A full accept queue drops new connections' handshakes,
which clients retry after 1, 3, 7 s: under a burst that, not the gateway, makes them time out."""
_RETRY_SOON = {"Retry-After": "1"}
"""A shed request may be retried after a second: the queue holds nothing older than that."""


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """How `aigis gateway` runs: built by the CLI, the only place flags are read."""

    config_path: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 8787
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9090
    reload_interval_seconds: float = 2.0
    audit_key_file: Path | None = None
    """The workload's audit key (`--audit-key-file`); None seals lines unkeyed."""
    audit_state_dir: Path | None = None
    """Where the last seq and MAC are kept across container restarts; None keeps none."""
    pod: PodIdentity = field(default_factory=PodIdentity)
    started_at: str | None = None
    """When the container's process started (ISO 8601); None: when serving began."""
    overload: OverloadLimits = field(default_factory=OverloadLimits)
    worker: int | None = None
    """This process's index among `--workers` processes; None when it serves alone."""
    reuse_port: bool = False
    """Bind the app-facing port with SO_REUSEPORT, so several workers share it."""


class Gateway:
    """The proxy. `state` is swapped whole on reload; handlers read it once per request."""

    def __init__(
        self,
        state: GatewayState,
        *,
        resolver: AbstractResolver | None = None,
        metrics: GatewayMetrics | None = None,
        audit_sink: Callable[[bytes], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        audit_key: bytes | None = None,
        audit_state_dir: Path | None = None,
        audit_resume: ChainState | None = None,
        overload: OverloadLimits | None = None,
        worker: int | None = None,
    ) -> None:
        self.state = state
        self.metrics = metrics or GatewayMetrics()
        limits = overload or OverloadLimits()
        self._gate = ConcurrencyGate(limits)
        self.metrics.watch_gate(self._gate)
        self._worker = worker
        self._resolver = resolver
        self._chain = AuditChain(audit_key, audit_resume, worker=worker)
        self._audit = AuditWriter(
            audit_sink or _write_stdout,
            audit_state_dir,
            on_backpressure=self._audit_backpressure,
            on_error=self._audit_error,
        )
        self._clock = clock
        # One upstream connection per admitted request at most: requests past the gate's bound
        # are refused, never left waiting for a connection inside the client.
        self._connection_limit = limits.max_in_flight
        self._session: aiohttp.ClientSession | None = None
        self._egress: EgressProxy | None = None
        self.metrics.config_generation.set(state.generation)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the upstream connection pool (must run inside the serving event loop)."""
        self._gate.lag.start()
        connector = aiohttp.TCPConnector(
            limit=self._connection_limit,
            limit_per_host=0,
            resolver=self._resolver,
            ttl_dns_cache=30,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            json_serialize=lambda value: orjson.dumps(value).decode(),
        )
        self._egress = EgressProxy(self._session, self._resolver, self.metrics, self._record)

    async def close(self) -> None:
        """Close the upstream pool, and write out every audit line still queued."""
        self._gate.lag.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await asyncio.to_thread(self._audit.close)

    def flush_audit(self) -> None:
        """Wait until every audit line sealed so far is written (for tests and shutdown)."""
        self._audit.flush()

    def write_start_record(
        self, pod: PodIdentity, container_started: str, last: ChainState | None
    ) -> None:
        """Seal the start record: the first line this process writes."""
        config = self.state.config
        record = start_record(
            time=datetime.now(UTC).isoformat(timespec="milliseconds"),
            pod=pod,
            container_started=container_started,
            workload={"namespace": config.namespace, "name": config.name},
            keyed=self._chain.keyed,
            last=last,
        )
        self._audit.write(self._chain.seal(record))

    def _audit_backpressure(self) -> None:
        self.metrics.audit_backpressure.inc()
        log.warning("the audit log is not keeping up: requests wait until it drains")

    def _audit_error(self, exc: Exception) -> None:
        self.metrics.audit_write_errors.inc()
        log.error("an audit line could not be written: %s", exc)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The upstream session (after `start`)."""
        if self._session is None:
            raise RuntimeError("Gateway.start() has not run")
        return self._session

    def upstream_connections(self) -> tuple[int, int]:
        """(in use, idle) upstream connections, to check that none leak."""
        connector = self.session.connector
        if not isinstance(connector, aiohttp.TCPConnector):
            return (0, 0)
        # aiohttp has no public counter of pooled connections; these are its own bookkeeping.
        in_use = len(connector._acquired)
        idle = sum(len(conns) for conns in connector._conns.values())
        return in_use, idle

    def load(self) -> tuple[int, int]:
        """(in flight, queued) LLM requests now."""
        return self._gate.in_flight, self._gate.queued

    def apply_state(self, state: GatewayState) -> None:
        """Swap in a new configuration; requests in flight keep the one they started with."""
        self.state = state
        self.metrics.config_reloads.labels("applied").inc()
        self.metrics.config_generation.set(state.generation)
        log.info(
            "gateway configuration %d applied for %s",
            state.generation,
            workload_ref(state.config),
        )

    def refuse_state(self, problems: list[FieldError]) -> None:
        """Log why a new configuration was refused; the old one keeps serving."""
        self.metrics.config_reloads.labels("refused").inc()
        for problem in problems:
            log.error("new gateway configuration refused, keeping the current one: %s", problem)

    # --- dispatch -------------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """The single entry point of the app-facing server."""
        state = self.state
        if request.method == "CONNECT":
            assert self._egress is not None
            return await self._egress.connect(request, state)
        if request.raw_path.startswith(("http://", "https://")):
            assert self._egress is not None
            return await self._egress.forward(request, state)
        path = request.path
        route = ROUTES.get(path) or ROUTES.get(path.rstrip("/"))
        exchange = Exchange(route.label if route else "unknown", request.method, self._clock())
        if route is None:
            exchange.wire_format = "anthropic" if path.startswith("/v1/messages") else "openai"
            known = ", ".join(ROUTES)
            return self._refuse(
                exchange,
                state,
                Refusal(
                    404, "unknown_route", f'no route "{path[:200]}"; the gateway serves {known}'
                ),
                "invalid",
            )
        exchange.wire_format = route.wire_format
        shed = await self._gate.enter()
        if shed is not None:
            return self._shed(exchange, state, shed)
        try:
            return await self._serve_route(request, route, state, exchange)
        except ConnectionResetError:
            exchange.decision, exchange.reason, exchange.status = "error", "client_closed", 499
            self._record(exchange, state)
            raise
        finally:
            self._gate.leave()

    def _shed(self, exchange: Exchange, state: GatewayState, reason: ShedReason) -> web.Response:
        """Refuse a request the gateway has no capacity for, at once and cheaply.

        In Audit mode too: this protects the gateway, it is not a policy of the workload. The
        body is left unread; aiohttp discards it (or closes the connection when it is large).
        """
        self.metrics.shed.labels(reason).inc()
        gate = self._gate
        bound = {
            "queue_full": f"{gate.limit} requests in flight and {gate.queue_limit} waiting",
            "queue_timeout": f"no slot freed within {gate.queue_timeout:g} s",
            "loop_lag": f"requests wait over {gate.queue_timeout:g} s for the CPU",
        }[reason]
        refusal = Refusal(503, "overloaded", f"the gateway is at capacity ({bound}); retry shortly")
        return self._refuse(exchange, state, refusal, "refused", headers=_RETRY_SOON)

    async def _serve_route(
        self, request: web.BaseRequest, route: Route, state: GatewayState, exchange: Exchange
    ) -> web.StreamResponse:
        config = state.config
        enforce = config.enforcement == "Enforce"
        if request.method != route.method:
            return self._refuse(
                exchange,
                state,
                Refusal(
                    405,
                    "method_not_allowed",
                    f"{route.path} takes {route.method}, not {request.method[:20]}",
                ),
                "invalid",
                headers={"Allow": route.method},
            )
        if state.bucket is not None:
            wait = state.bucket.take(self._clock())
            if wait > 0:
                refusal = Refusal(
                    429,
                    "rate_limited",
                    f"more than spec.guardrails.limits.requestsPerMinute "
                    f"({state.bucket.per_minute}) of {workload_ref(config)}; retry in "
                    f"{wait:.1f} s",
                )
                if enforce:
                    return self._refuse(
                        exchange,
                        state,
                        refusal,
                        "refused",
                        headers={"Retry-After": str(max(1, math.ceil(wait)))},
                    )
                exchange.audited.append(refusal.reason)

        body: dict[str, Any] = {}
        raw = b""
        if route.has_body:
            read = await self._read_json(request, exchange, state)
            if isinstance(read, web.StreamResponse):
                return read
            raw, body = read
        model = requested_model(body) if route.has_body else None
        exchange.stream = wants_stream(body)
        target = choose_target(config, route, model)
        if isinstance(target, Refusal):
            # Without an allowed model there is no upstream to send to, in Audit mode too.
            return self._refuse(exchange, state, target, "refused")
        exchange.model = target.model.name if target.model is not None else None
        exchange.provider = target.upstream.provider
        for check in (
            state.upstream_check(target.upstream),
            check_max_tokens(config, route, body),
        ):
            if check is not None:
                outcome = self._policy_refusal(exchange, state, check)
                if outcome is not None:
                    return outcome

        if route.has_body:
            unreadable = self._check_token_ids(route, body, exchange, state)
            if unreadable is not None:
                return unreadable
            slots = request_texts(route, body)
            if state.offload_scans:  # a model may take tens of ms: keep the loop serving
                raw = await asyncio.to_thread(
                    self._guard_request, route, body, raw, slots, exchange, state
                )
            else:
                raw = self._guard_request(route, body, raw, slots, exchange, state)
            inspection = exchange.request
            if inspection is not None and inspection.blocked_by is not None and enforce:
                return self._refuse(
                    exchange,
                    state,
                    _block_refusal(inspection, "request"),
                    _block_decision(inspection),
                )
        return await self._forward(request, route, target, raw, exchange, state)

    def _check_token_ids(
        self, route: Route, body: dict[str, Any], exchange: Exchange, state: GatewayState
    ) -> web.StreamResponse | None:
        """Refuse a prompt given as token ids when a guardrail would have acted on its text."""
        fields = token_id_fields(route, body)
        if not fields:
            return None
        exchange.unscanned = fields
        acting = guardrails_acting_on_requests(state.config.guardrails)
        if not acting:
            return None
        named = ", ".join(fields[:8]) + (" ..." if len(fields) > 8 else "")
        refusal = Refusal(
            400,
            "uninspectable_input",
            f"{named} is given as token ids, which the guardrails ({', '.join(acting)}) of "
            f"{workload_ref(state.config)} cannot read; send the prompt as text",
        )
        return self._policy_refusal(exchange, state, refusal)

    def _policy_refusal(
        self, exchange: Exchange, state: GatewayState, refusal: Refusal
    ) -> web.StreamResponse | None:
        """Refuse under Enforce; under Audit record the reason and let the request go on."""
        if state.config.enforcement == "Enforce" or refusal.status >= 500:
            return self._refuse(exchange, state, refusal, "refused")
        exchange.audited.append(refusal.reason)
        return None

    async def _read_json(
        self, request: web.BaseRequest, exchange: Exchange, state: GatewayState
    ) -> tuple[bytes, dict[str, Any]] | web.StreamResponse:
        config = state.config
        content_type = request.content_type
        if content_type != "application/json":
            return self._refuse(
                exchange,
                state,
                Refusal(
                    415,
                    "unsupported_content_type",
                    f'the body is "{content_type[:100]}"; send JSON with '
                    '"Content-Type: application/json"',
                ),
                "invalid",
            )
        limit, source = body_limit(config)
        cap = config.body_cap_bytes
        declared = request.content_length
        if declared is not None and declared > cap:
            return self._refuse(
                exchange,
                state,
                body_too_large(config, declared, cap, "the gateway's bodyCapBytes"),
                "invalid",
                close=True,
            )
        raw = await read_capped(request.content, request.content_length, cap)
        if raw is None:
            return self._refuse(
                exchange,
                state,
                body_too_large(config, cap + 1, cap, "the gateway's bodyCapBytes"),
                "invalid",
                close=True,
            )
        if len(raw) > limit:
            refusal = body_too_large(config, len(raw), limit, source)
            outcome = self._policy_refusal(exchange, state, refusal)
            if outcome is not None:
                return outcome
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return self._refuse(
                exchange,
                state,
                Refusal(400, "invalid_json", f"the body is not valid JSON: {exc}"),
                "invalid",
            )
        if not isinstance(body, dict):
            return self._refuse(
                exchange,
                state,
                Refusal(400, "invalid_body", "the body must be a JSON object"),
                "invalid",
            )
        if nesting_depth(body) > MAX_BODY_DEPTH:
            return self._refuse(
                exchange,
                state,
                Refusal(
                    400,
                    "invalid_body",
                    f"the body nests arrays and objects more than {MAX_BODY_DEPTH} levels deep",
                ),
                "invalid",
            )
        return raw, body

    def _guard_request(
        self,
        route: Route,
        body: dict[str, Any],
        raw: bytes,
        slots: list[TextSlot],
        exchange: Exchange,
        state: GatewayState,
    ) -> bytes:
        """Scan the request's texts; the bytes to send upstream (re-serialised when redacted)."""
        guardrails = state.config.guardrails
        logging_mode = guardrails.prompt_logging
        if logging_mode != "None":
            exchange.prompt_sha256 = prompt_digest(slot.text for slot in slots)
        enforce = state.config.enforcement == "Enforce"
        inspection = inspect_slots(
            state.pipeline,
            slots,
            "request",
            failure_mode=guardrails.failure_mode,
            enforce=enforce,
            mask=logging_mode == "Redacted",
        )
        exchange.request = inspection
        if logging_mode == "Redacted":
            masked = inspection.masked_texts
            exchange.prompt_redacted = masked + [UNSCANNED] * (len(slots) - len(masked))
        if inspection.guardrail_error is not None:
            outcome = "refused" if inspection.blocked_by == "guardrail_error" else "passed"
            self.metrics.guardrail_errors.labels("request", outcome).inc()
        if inspection.blocked_by is not None and not enforce:
            exchange.audited.append(f"{inspection.blocked_by}_blocked")
        if inspection.redacted and enforce and inspection.blocked_by is None:
            return orjson.dumps(body)
        return raw

    # --- upstream -------------------------------------------------------------------------

    def _upstream_headers(
        self, request: web.BaseRequest, target: Target, state: GatewayState
    ) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in request.headers.items():
            if name.lower() not in _DROP_REQUEST_HEADERS:
                headers.add(name, value)
        upstream = target.upstream
        key = state.keys.get(upstream.provider)
        if key is not None:
            if upstream.key_header == "authorization":
                headers["Authorization"] = f"Bearer {key}"
            else:
                headers[upstream.key_header] = key
        if upstream.wire_format == "anthropic" and "anthropic-version" not in headers:
            headers["anthropic-version"] = ANTHROPIC_VERSION
        return headers

    async def _forward(
        self,
        request: web.BaseRequest,
        route: Route,
        target: Target,
        raw: bytes,
        exchange: Exchange,
        state: GatewayState,
    ) -> web.StreamResponse:
        config = state.config
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=config.upstream_connect_timeout_seconds,
            sock_read=config.upstream_read_timeout_seconds,
        )
        headers = self._upstream_headers(request, target, state)
        sent = self._clock()
        try:
            upstream = await self.session.request(
                route.method,
                target.url,
                data=raw if route.has_body else None,
                params=request.rel_url.query if not route.has_body else None,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except Exception as exc:
            exchange.upstream_seconds = self._clock() - sent
            return self._refuse(exchange, state, _upstream_failure(exc, target), "error")
        exchange.upstream_seconds = self._clock() - sent
        self.metrics.upstream_seconds.labels(target.upstream.provider).observe(
            exchange.upstream_seconds
        )
        try:
            if exchange.stream and upstream.content_type == "text/event-stream":
                return await self._relay_stream(request, route, upstream, exchange, state)
            return await self._relay_body(route, upstream, exchange, state, sent)
        finally:
            upstream.close()

    async def _relay_body(
        self,
        route: Route,
        upstream: aiohttp.ClientResponse,
        exchange: Exchange,
        state: GatewayState,
        sent: float,
    ) -> web.StreamResponse:
        config = state.config
        target_label = exchange.provider or "upstream"
        try:
            raw = await read_capped(
                upstream.content, upstream.content_length, MAX_UPSTREAM_BODY_BYTES
            )
        except Exception as exc:
            exchange.upstream_seconds = self._clock() - sent
            return self._refuse(
                exchange, state, _upstream_failure(exc, None, target_label), "error"
            )
        exchange.upstream_seconds = self._clock() - sent
        if raw is None:
            return self._refuse(
                exchange,
                state,
                Refusal(
                    502,
                    "upstream_too_large",
                    f"the {target_label} answer exceeds {MAX_UPSTREAM_BODY_BYTES} bytes",
                ),
                "error",
            )
        headers = _response_headers(upstream.headers)
        exchange.status = upstream.status
        if upstream.status >= 400:
            exchange.decision = "error"
            exchange.reason = f"upstream_status_{upstream.status // 100}xx"
            self._record(exchange, state)
            return web.Response(body=raw, status=upstream.status, headers=headers)
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return self._refuse(
                exchange,
                state,
                Refusal(
                    502, "upstream_malformed", f"the {target_label} answer is not a JSON object"
                ),
                "error",
            )
        exchange.usage = usage_of(body)
        changed = False
        if route.label == "models":
            changed = _filter_models(body, config)
        slots = response_texts(route, body)
        if slots:
            enforce = config.enforcement == "Enforce"
            inspection = inspect_slots(
                state.pipeline,
                slots,
                "response",
                failure_mode=config.guardrails.failure_mode,
                enforce=enforce,
            )
            exchange.response = inspection
            if inspection.guardrail_error is not None:
                outcome = "refused" if inspection.blocked_by == "guardrail_error" else "passed"
                self.metrics.guardrail_errors.labels("response", outcome).inc()
            if inspection.blocked_by is not None:
                if enforce:
                    return self._refuse(
                        exchange,
                        state,
                        _block_refusal(inspection, "response"),
                        _block_decision(inspection),
                    )
                exchange.audited.append(f"{inspection.blocked_by}_blocked")
            changed = changed or (inspection.redacted and enforce)
        if changed:
            raw = orjson.dumps(body)
        self._finish_decision(exchange)
        self._record(exchange, state)
        return web.Response(body=raw, status=upstream.status, headers=headers)

    async def _relay_stream(
        self,
        request: web.BaseRequest,
        route: Route,
        upstream: aiohttp.ClientResponse,
        exchange: Exchange,
        state: GatewayState,
    ) -> web.StreamResponse:
        config = state.config
        guard = stream_guard_for(
            route,
            state.pipeline,
            config.guardrails.failure_mode,
            config.enforcement == "Enforce",
        )
        parser = SSEParser()
        response: web.StreamResponse | None = None
        exchange.status = upstream.status

        async def send(pieces: list[bytes]) -> None:
            nonlocal response
            if not pieces:
                return
            try:
                if response is None:
                    response = web.StreamResponse(
                        status=upstream.status, headers=_response_headers(upstream.headers)
                    )
                    await response.prepare(request)
                await response.write(b"".join(pieces))
            except ConnectionResetError as exc:
                raise _ClientGoneError from exc

        failure: tuple[str, str, str] | None = None
        try:
            async for chunk in upstream.content.iter_any():
                # One write for all the events a chunk completes, not one per event: a fast
                # upstream sends dozens per chunk, and each write is a system call.
                cleared: list[bytes] = []
                try:
                    for event in parser.feed(chunk):
                        cleared += guard.on_event(event)
                except (StreamBlockedError, MalformedStreamError):
                    await send(cleared)  # what was cleared before the event that stopped it
                    raise
                await send(cleared)
            pieces = [piece for event in parser.close() for piece in guard.on_event(event)]
            await send(pieces + guard.on_end())
        except _ClientGoneError:
            failure = ("error", "client_closed", "the app closed the connection")
        except StreamBlockedError:
            refusal = _block_refusal(guard.inspection, "response")
            failure = (_block_decision(guard.inspection), refusal.reason, refusal.message)
        except MalformedStreamError as exc:
            failure = (
                "error",
                "upstream_malformed_stream",
                f"the upstream stream is malformed: {exc}",
            )
        except TimeoutError:
            failure = (
                "error",
                "upstream_timeout",
                "the upstream stopped sending before the answer was complete "
                "(upstreamReadTimeoutSeconds)",
            )
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
            failure = ("error", "upstream_reset", "the upstream connection broke mid-stream")
        exchange.response = guard.inspection
        exchange.usage = guard.usage
        if guard.inspection.guardrail_error is not None:
            outcome = "refused" if guard.inspection.blocked_by == "guardrail_error" else "passed"
            self.metrics.guardrail_errors.labels("response", outcome).inc()
        if guard.inspection.blocked_by is not None and config.enforcement != "Enforce":
            exchange.audited.append(f"{guard.inspection.blocked_by}_blocked")
        if failure is not None:
            decision, reason, message = failure
            if response is None:
                status = 403 if decision == "blocked" else 502
                status = 504 if reason == "upstream_timeout" else status
                status = 503 if reason == "guardrail_error" else status
                return self._refuse(exchange, state, Refusal(status, reason, message), decision)
            exchange.decision, exchange.reason = decision, reason
            if reason == "client_closed":
                exchange.status = 499
                self._record(exchange, state)
                return response
            try:
                await response.write(_stream_error(guard, route, reason, message))
            except ConnectionResetError:
                self._record(exchange, state)
                return response
        else:
            self._finish_decision(exchange)
        if response is None:
            response = web.StreamResponse(
                status=upstream.status, headers=_response_headers(upstream.headers)
            )
            await response.prepare(request)
        await response.write_eof()
        self._record(exchange, state)
        return response

    # --- outcomes -------------------------------------------------------------------------

    def _finish_decision(self, exchange: Exchange) -> None:
        if exchange.audited:
            exchange.decision, exchange.reason = "audited", exchange.audited[0]
        elif any(
            inspection is not None and inspection.redacted
            for inspection in (exchange.request, exchange.response)
        ):
            exchange.decision = "redacted"

    def _refuse(
        self,
        exchange: Exchange,
        state: GatewayState,
        refusal: Refusal,
        decision: str,
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> web.Response:
        exchange.status, exchange.decision, exchange.reason = (
            refusal.status,
            decision,
            refusal.reason,
        )
        self._record(exchange, state)
        response = web.Response(
            body=error_body(exchange.wire_format, refusal.status, refusal.reason, refusal.message),
            status=refusal.status,
            content_type="application/json",
            headers={"x-aigis-reason": refusal.reason, **(headers or {})},
        )
        if close:
            response.force_close()
        return response

    def _record(self, exchange: Exchange, state: GatewayState) -> None:
        """Write the audit line and update the metrics for one finished request."""
        config = state.config
        total = self._clock() - exchange.started
        added = max(0.0, total - exchange.upstream_seconds)
        metrics = self.metrics
        metrics.requests.labels(exchange.route, exchange.decision, exchange.reason or "").inc()
        if exchange.upstream_seconds and not exchange.stream:
            metrics.added_seconds.labels(exchange.route).observe(added)
        decisions: dict[str, dict[str, str]] = {}
        findings: list[dict[str, str]] = []
        for inspection in (exchange.request, exchange.response):
            if inspection is None:
                continue
            decisions[inspection.direction] = guardrail_decisions(inspection, config.guardrails)
            for finding in inspection.findings:
                metrics.findings.labels(
                    metrics.guardrail(finding.guardrail),
                    metrics.finding_type(finding.type),
                    finding.action,
                    finding.direction,
                ).inc()
                if len(findings) < 32:
                    findings.append(
                        {
                            "guardrail": finding.guardrail,
                            "type": finding.type,
                            "action": finding.action,
                            "direction": finding.direction,
                            "in": finding.kind,
                        }
                    )
        if exchange.model is not None:
            for kind, count in (
                ("prompt", exchange.usage.prompt),
                ("completion", exchange.usage.completion),
            ):
                if count:
                    metrics.tokens.labels(exchange.model, kind).inc(count)
        record: dict[str, Any] = {
            "kind": "request",
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "workload": {"namespace": config.namespace, "name": config.name},
            "enforcement": config.enforcement,
            "route": exchange.route,
            "method": exchange.method[:16],
            "model": exchange.model,
            "provider": exchange.provider,
            "stream": exchange.stream,
            "status": exchange.status,
            "decision": exchange.decision,
            "reason": exchange.reason,
            "guardrails": decisions,
            "findings": findings,
            "latency_ms": {
                "total": round(total * 1000, 3),
                "upstream": round(exchange.upstream_seconds * 1000, 3),
                # A stream's upstream time is its time to headers: the rest is not the gateway's.
                "gateway": None if exchange.stream else round(added * 1000, 3),
            },
            "tokens": {"prompt": exchange.usage.prompt, "completion": exchange.usage.completion},
        }
        if exchange.audited:
            record["audited"] = exchange.audited
        if exchange.destination is not None:
            record["destination"] = exchange.destination
        if exchange.uninspected_llm is not None:
            record["uninspected_llm"] = exchange.uninspected_llm
        if exchange.unscanned:
            record["unscanned"] = exchange.unscanned[:32]
        if exchange.request is not None:
            record["injection_score"] = round(exchange.request.injection_score, 3)
        if exchange.prompt_sha256 is not None:
            record["prompt_sha256"] = exchange.prompt_sha256
        if exchange.prompt_redacted is not None:
            record["prompt_redacted"] = exchange.prompt_redacted
        self._audit.write(self._chain.seal(record))


# --- helpers ------------------------------------------------------------------------------


def _write_stdout(line: bytes) -> None:
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()


def _response_headers(upstream_headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream_headers.items():
        if name.lower() not in _DROP_RESPONSE_HEADERS:
            headers.add(name, value)
    return headers


def _upstream_failure(exc: Exception, target: Target | None, name: str | None = None) -> Refusal:
    where = name or (target.upstream.provider if target is not None else "upstream")
    if isinstance(exc, TimeoutError):
        return Refusal(
            504,
            "upstream_timeout",
            f"{where} did not answer in time (upstreamConnectTimeoutSeconds / "
            "upstreamReadTimeoutSeconds)",
        )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Refusal(502, "upstream_unresolvable", f"the host of {where} does not resolve")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Refusal(502, "upstream_unreachable", f"cannot connect to {where}: {exc.strerror}")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return Refusal(502, "upstream_reset", f"{where} closed the connection mid-answer")
    if isinstance(exc, aiohttp.ClientError):
        return Refusal(
            502, "upstream_error", f"the request to {where} failed: {type(exc).__name__}"
        )
    raise exc


def _block_refusal(inspection: Inspection, direction: str) -> Refusal:
    guardrail = inspection.blocked_by or "guardrail"
    where = {
        "tool_result": "a tool result",
        "tool_arguments": "tool-call arguments",
        "system": "the system prompt",
        "input": "the input",
        "tool_definition": "a tool definition",
        "field": "a request field",
    }.get(inspection.blocked_kind or "", "a message")
    if guardrail == "guardrail_error":
        return Refusal(
            503,
            "guardrail_error",
            f"a guardrail failed while scanning the {direction} ({inspection.guardrail_error}); "
            "failureMode is FailClosed, so nothing was forwarded",
        )
    subject = "the request" if direction == "request" else "the model's answer"
    return Refusal(
        400 if direction == "request" else 403,
        f"{guardrail}_blocked",
        f"{subject} was blocked by the {guardrail} guardrail (found in {where})",
    )


class _ClientGoneError(Exception):
    """The app closed its connection while the answer was streaming."""


def _block_decision(inspection: Inspection) -> str:
    return "error" if inspection.blocked_by == "guardrail_error" else "blocked"


def _stream_error(guard: StreamGuard, route: Route, reason: str, message: str) -> bytes:
    return stream_error_event(guard, route, reason, message)


def _filter_models(body: dict[str, Any], config: GatewayConfig) -> bool:
    """Keep only allowed models in a `/v1/models` listing; whether anything was removed."""
    data = body.get("data")
    if not isinstance(data, list):
        return False
    allowed = {model.name for model in config.models}
    kept = [item for item in data if isinstance(item, dict) and item.get("id") in allowed]
    body["data"] = kept
    return len(kept) != len(data)


# --- running ------------------------------------------------------------------------------


async def serve_gateway(
    settings: GatewaySettings,
    *,
    pipeline_factory: PipelineFactory = default_pipeline_factory,
    resolver: AbstractResolver | None = None,
    audit_sink: Callable[[bytes], None] | None = None,
    ready: Callable[[Gateway, int, int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the gateway until `stop` is set (or the task is cancelled).

    `ready` is called with the gateway and the two bound ports once both servers listen (port 0
    picks free ones), so tests and benchmarks can find them.
    """
    started_at = settings.started_at or datetime.now(UTC).isoformat(timespec="milliseconds")
    loaded = load_gateway_state(settings.config_path, pipeline_factory, now=time.monotonic())
    if isinstance(loaded, list):
        raise GatewayConfigError(loaded)
    audit_key = read_audit_key(settings.audit_key_file)
    if isinstance(audit_key, FieldError):
        raise GatewayConfigError([audit_key])
    if audit_key is None:
        log.warning(
            "no %s: audit lines are chained but not keyed (keyed: false in the start record)",
            AUDIT_KEY_FLAG,
        )
    state_dir = settings.audit_state_dir
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
    resume = read_chain_state(state_dir) if state_dir is not None else None
    gateway = Gateway(
        loaded,
        resolver=resolver,
        audit_sink=audit_sink,
        audit_key=audit_key,
        audit_state_dir=state_dir,
        audit_resume=resume,
        overload=settings.overload,
        worker=settings.worker,
    )
    gateway.write_start_record(settings.pod, started_at, resume)
    await gateway.start()
    watcher = ConfigWatcher(
        settings.config_path,
        pipeline_factory,
        current=lambda: gateway.state,
        apply=gateway.apply_state,
        refused=gateway.refuse_state,
        clock=time.monotonic,
        interval_seconds=settings.reload_interval_seconds,
    )
    app_runner = web.ServerRunner(
        web.Server(gateway.handle, access_log=None), handle_signals=False, shutdown_timeout=10
    )
    metrics_runner = web.ServerRunner(
        web.Server(_metrics_handler(gateway), access_log=None), handle_signals=False
    )
    await app_runner.setup()
    await metrics_runner.setup()
    watch_task: asyncio.Task[None] | None = None
    try:
        app_site = web.TCPSite(
            app_runner,
            settings.listen_host,
            settings.listen_port,
            backlog=LISTEN_BACKLOG,
            reuse_port=settings.reuse_port or None,
        )
        await app_site.start()
        metrics_site = web.TCPSite(metrics_runner, settings.metrics_host, settings.metrics_port)
        await metrics_site.start()
        ports = (_bound_port(app_runner), _bound_port(metrics_runner))
        log.info(
            "gateway for %s listening on %s:%d, metrics on %s:%d",
            workload_ref(loaded.config),
            settings.listen_host,
            ports[0],
            settings.metrics_host,
            ports[1],
        )
        watch_task = asyncio.create_task(watcher.run())
        # Everything built so far lives as long as the process: keep it out of the collector's
        # scans, so a full collection under load does not stall requests for milliseconds.
        gc.collect()
        gc.freeze()
        if ready is not None:
            ready(gateway, *ports)
        await (stop or asyncio.Event()).wait()
    finally:
        if watch_task is not None:
            watch_task.cancel()
        await app_runner.cleanup()
        await metrics_runner.cleanup()
        await gateway.close()


def read_audit_key(path: Path | None) -> bytes | FieldError | None:
    """The audit key in `path` (its raw bytes), None without a path, or why it is unusable."""
    if path is None:
        return None
    try:
        key = path.read_bytes()
    except OSError as exc:
        return FieldError(AUDIT_KEY_FLAG, f"cannot read {path}: {exc.strerror}")
    if len(key) < 16:
        return FieldError(
            AUDIT_KEY_FLAG,
            f"{path} holds {len(key)} bytes; an audit key needs at least 16 (the operator's "
            "Secret holds 32 random bytes)",
        )
    return key


class GatewayConfigError(Exception):
    """The configuration the gateway was started with is invalid."""

    def __init__(self, problems: list[FieldError]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def _bound_port(runner: web.BaseRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the server has no TCP address")


def _metrics_handler(gateway: Gateway) -> Callable[[web.BaseRequest], Any]:
    async def handle(request: web.BaseRequest) -> web.Response:
        if request.path == "/metrics":
            return web.Response(
                body=generate_latest(gateway.metrics.registry),
                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
            )
        if request.path in ("/healthz", "/readyz"):
            return web.Response(text="ok\n")
        return web.Response(status=404, text="not found: /metrics, /healthz, /readyz\n")

    return handle
