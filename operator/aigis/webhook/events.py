"""Kubernetes Events for audit decisions, written off the request path.

An object admitted with warnings (Audit mode) gets a `Warning` Event, so `kubectl describe` and
event exporters show what aigis would have refused. The server only puts a record on a bounded
queue and returns; a single writer task posts the Events. When the queue is full the record is
dropped and counted: admission latency never waits on Event writes, and a flood of audited pods
cannot grow memory without bound. The same object with the same findings is recorded at most
once per `dedupe_window` (a ReplicaSet creating pods in a crash loop makes one Event, not
thousands), and never for a dry run (the webhook declares `sideEffects: None`).

`render_audit_event` is pure; `AuditEventRecorder` is the shell.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from aigis.events import Involved, Reporter, render_event
from aigis.webhook.metrics import WebhookMetrics

log = logging.getLogger("aigis.webhook.events")

EVENT_REASON = "AIPolicyAudit"
REPORTING_COMPONENT = "aigis.dev/admission-webhook"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An object admitted with warnings: which object, and what aigis found."""

    api_version: str
    kind: str
    namespace: str | None
    name: str
    """The object's name, or its generateName when the API server has not named it yet."""
    warnings: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str, str, tuple[str, ...]]:
        return (self.kind, self.namespace or "", self.name, self.api_version, self.warnings)


def render_audit_event(record: AuditRecord, now: datetime, instance: str) -> dict[str, Any]:
    """A core/v1 `Warning` Event about `record`'s object."""
    return render_event(
        Involved(record.api_version, record.kind, record.name, record.namespace),
        reason=EVENT_REASON,
        message="admitted in Audit mode; would be refused: " + "; ".join(record.warnings),
        reporter=Reporter("aigis-webhook", REPORTING_COMPONENT, instance),
        now=now,
    )


class EventApi(Protocol):
    async def request(
        self, method: str, path: str, *, body: Any = None, timeout: float = 10.0
    ) -> dict[str, Any] | None: ...


class AuditEventRecorder:
    """Queues audit records and writes them as Events from one background task."""

    def __init__(
        self,
        api: EventApi,
        metrics: WebhookMetrics,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        instance: str | None = None,
        queue_size: int = 1000,
        dedupe_window: timedelta = timedelta(minutes=10),
        dedupe_capacity: int = 4096,
    ) -> None:
        self._api = api
        self._metrics = metrics
        self._clock = clock
        self._instance = instance or socket.gethostname()
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(maxsize=queue_size)
        self._window = dedupe_window
        self._capacity = dedupe_capacity
        self._recent: OrderedDict[tuple[str, str, str, str, tuple[str, ...]], datetime] = (
            OrderedDict()
        )

    def record(self, record: AuditRecord) -> None:
        """Queue `record` unless an identical one was queued recently; never blocks."""
        now = self._clock()
        seen = self._recent.get(record.key)
        if seen is not None and now - seen < self._window:
            self._metrics.events.labels("deduplicated").inc()
            return
        self._recent[record.key] = now
        self._recent.move_to_end(record.key)
        while len(self._recent) > self._capacity:
            self._recent.popitem(last=False)
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._metrics.events.labels("dropped").inc()

    async def run(self) -> None:
        """Write queued Events until cancelled; a failed write is logged and counted."""
        while True:
            record = await self._queue.get()
            event = render_audit_event(record, self._clock(), self._instance)
            namespace = event["metadata"]["namespace"]
            try:
                await self._api.request(
                    "POST", f"/api/v1/namespaces/{quote(namespace)}/events", body=event
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._metrics.events.labels("failed").inc()
                log.warning("could not record an audit Event in %s: %s", namespace, error)
            else:
                self._metrics.events.labels("sent").inc()
