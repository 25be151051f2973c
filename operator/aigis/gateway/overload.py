"""Load shedding: bounded requests in flight, a short bounded queue, a fast refusal past both.

Past its capacity a server that accepts everything only gets slower for everyone: requests pile
up inside it, each waits behind the backlog, clients time out on work the server still does, and
after the burst the backlog takes as long to drain as it took to build. The gateway instead admits
at most `max_in_flight` LLM requests at once (a stream counts until its last byte is sent), lets
at most `max_queued` more wait, each for at most `queue_timeout_seconds`, and refuses the rest at
once (`503` with `Retry-After`), which costs a fraction of serving them. When the load drops
there is nothing to drain: the queue only ever holds requests younger than its deadline.

A freed slot is handed to the oldest waiter directly (first in, first out), so a request arriving
while others wait cannot overtake them.

Slots bound the memory and upstream connections held; they do not see a saturated CPU. When the
process cannot keep up, requests wait before the gateway ever sees them: in the event loop's
queue of ready work, behind every request that arrived earlier. That wait is the loop's lag,
which `LoopLag` samples. The deadline counts it: a request is shed at once while the loop lags
more than `queue_timeout_seconds`, and a queued request waits only what is left of it. A shed
costs a fraction of a served request, so shedding returns the CPU to the requests admitted.

Shell code on one event loop (no locks): the decisions about what a refusal looks like stay in
the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Literal

ShedReason = Literal["queue_full", "queue_timeout", "loop_lag"]

DEFAULT_MAX_IN_FLIGHT = 256
"""Requests one gateway process serves at once by default (its upstream pool has as many
connections, so no request waits hidden inside the HTTP client)."""
DEFAULT_QUEUE_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class OverloadLimits:
    """How much one gateway process takes on before it refuses (`--max-in-flight` and co.)."""

    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_queued: int | None = None
    """None: as many as `max_in_flight` (a burst twice the concurrency is absorbed)."""
    queue_timeout_seconds: float = DEFAULT_QUEUE_TIMEOUT_SECONDS
    shed_on_loop_lag: bool = True
    """Count the event loop's lag in the deadline (off only in tests that pause the loop)."""

    @property
    def queue_limit(self) -> int:
        """The queue's bound, derived from `max_in_flight` unless given."""
        return self.max_in_flight if self.max_queued is None else self.max_queued


class LoopLag:
    """How late the event loop runs what is due: sampled every `interval` seconds by a timer.

    A timer set for `t` runs once the loop has worked through everything ready before it, so
    how late it ran is what a request arriving then waited before its handler ran. `lag` is the
    smaller of the last two samples: a saturated loop is late every time, while one stall (a
    collection, a configuration compiled) is over once it is measured and must not shed the
    requests after it.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.lag = 0.0
        self.last_sample = 0.0
        """How late the last timer ran."""
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Begin sampling (inside the serving event loop)."""
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + self.interval, self._tick, loop)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None:
            return
        now = loop.time()
        sample = max(0.0, now - self._timer.when())
        self.lag, self.last_sample = min(sample, self.last_sample), sample
        self._timer = loop.call_at(now + self.interval, self._tick, loop)


class ConcurrencyGate:
    """Admits up to `limit` holders at once, queues up to `queue_limit` more for a while."""

    def __init__(self, limits: OverloadLimits, lag: LoopLag | None = None) -> None:
        self.limit = limits.max_in_flight
        self.queue_limit = limits.queue_limit
        self.queue_timeout = limits.queue_timeout_seconds
        self.in_flight = 0
        self.lag = lag or LoopLag()
        self._shed_on_lag = limits.shed_on_loop_lag
        self._waiters: deque[asyncio.Future[bool]] = deque()

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now."""
        return len(self._waiters)

    async def enter(self) -> ShedReason | None:
        """Take a slot (None), waiting at most `queue_timeout`; or why the request is shed.

        A caller that gets None must call `leave` exactly once when it is done.
        """
        waited = self.lag.lag if self._shed_on_lag else 0.0
        if waited >= self.queue_timeout:
            return "loop_lag"
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return None
        if len(self._waiters) >= self.queue_limit:
            return "queue_full"
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(self.queue_timeout - waited, self._expire, waiter)
        try:
            admitted = await waiter
        except asyncio.CancelledError:
            # Cancelled after a slot was handed over but before this task resumed: pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.leave()
            else:
                self._discard(waiter)
            raise
        finally:
            timer.cancel()
        return None if admitted else "queue_timeout"

    def leave(self) -> None:
        """Give a slot back: to the oldest waiter if any, else to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # the slot changes hands; in_flight stays the same
                return
        self.in_flight -= 1

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            self._discard(waiter)
            waiter.set_result(False)

    def _discard(self, waiter: asyncio.Future[bool]) -> None:
        with contextlib.suppress(ValueError):  # already handed a slot or expired
            self._waiters.remove(waiter)
