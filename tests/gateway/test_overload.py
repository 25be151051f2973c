"""Load shedding: past its bounds the gateway refuses at once, and serves normally right after.

Overload is made deterministic with tiny limits and a slow fake provider: the test waits until
the gateway reports the requests it holds (in flight, queued) before sending the next ones, so
no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.gateway.harness import Harness, run, running_gateway
from tests.support.fake_provider import Behaviour, read_sse

from aigis.gateway.audit import verify_audit_chain
from aigis.gateway.overload import ConcurrencyGate, LoopLag, OverloadLimits

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


def chat(text: str = "What are your opening hours?", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


def anthropic(text: str = "What are your opening hours?") -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
    }


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the servers until `condition` holds (the scenario's ceiling ends a hang)."""
    while not condition():
        await asyncio.sleep(0.005)


async def post(h: Harness, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
    async with h.client.post(h.url + path, json=body) as response:
        return response.status, dict(response.headers), orjson.loads(await response.read())


async def metric(h: Harness, name: str, labels: dict[str, str] | None = None) -> float | None:
    async with h.client.get(h.metrics_url + "/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == (labels or {}):
                return float(sample.value)
    return None


# --- the gate alone -----------------------------------------------------------------------


def test_gate_admits_up_to_its_limit_queues_up_to_its_bound_and_refuses_the_rest() -> None:
    async def scenario() -> None:
        gate = ConcurrencyGate(OverloadLimits(2, 1, queue_timeout_seconds=30))
        assert await gate.enter() is None
        assert await gate.enter() is None
        waiting = asyncio.create_task(gate.enter())
        await until(lambda: gate.queued == 1)
        assert await gate.enter() == "queue_full"
        gate.leave()  # the slot goes to the waiter, not back to the pool
        assert await waiting is None
        assert (gate.in_flight, gate.queued) == (2, 0)
        gate.leave()
        gate.leave()
        assert (gate.in_flight, gate.queued) == (0, 0)

    run(scenario())


def test_gate_hands_freed_slots_to_waiters_first_come_first_served() -> None:
    async def scenario() -> None:
        gate = ConcurrencyGate(OverloadLimits(1, 3, queue_timeout_seconds=30))
        assert await gate.enter() is None
        admitted: list[int] = []

        async def wait(index: int) -> None:
            assert await gate.enter() is None
            admitted.append(index)

        tasks = []
        for index in range(3):
            tasks.append(asyncio.create_task(wait(index)))
            await until(lambda: gate.queued == len(tasks))
        for count in range(1, 4):
            gate.leave()  # the holder of the slot leaves; the oldest waiter gets it
            await until(lambda: len(admitted) == count)  # noqa: B023
        await asyncio.gather(*tasks)
        assert admitted == [0, 1, 2]

    run(scenario())


def test_gate_sheds_a_waiter_at_its_deadline_and_keeps_no_backlog() -> None:
    async def scenario() -> None:
        gate = ConcurrencyGate(OverloadLimits(1, 5, queue_timeout_seconds=0.01))
        assert await gate.enter() is None
        assert await gate.enter() == "queue_timeout"
        assert (gate.in_flight, gate.queued) == (1, 0)
        gate.leave()
        assert await gate.enter() is None

    run(scenario())


def test_gate_gives_back_the_slot_of_a_waiter_cancelled_as_it_was_admitted() -> None:
    async def scenario() -> None:
        gate = ConcurrencyGate(OverloadLimits(1, 1, queue_timeout_seconds=30))
        assert await gate.enter() is None
        waiting = asyncio.create_task(gate.enter())
        await until(lambda: gate.queued == 1)
        gate.leave()  # hands the slot to the waiter ...
        waiting.cancel()  # ... which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert (gate.in_flight, gate.queued) == (0, 0)

    run(scenario())


def test_gate_forgets_a_waiter_cancelled_while_queued() -> None:
    async def scenario() -> None:
        gate = ConcurrencyGate(OverloadLimits(1, 1, queue_timeout_seconds=30))
        assert await gate.enter() is None
        waiting = asyncio.create_task(gate.enter())
        await until(lambda: gate.queued == 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert (gate.in_flight, gate.queued) == (1, 0)
        gate.leave()
        assert gate.in_flight == 0

    run(scenario())


def test_gate_sheds_at_once_while_the_loop_lags_past_the_deadline() -> None:
    async def scenario() -> None:
        lag = LoopLag()  # not started: the test sets what it measured
        gate = ConcurrencyGate(OverloadLimits(4, 4, queue_timeout_seconds=0.5), lag)
        lag.lag = 0.6
        assert await gate.enter() == "loop_lag"
        assert (gate.in_flight, gate.queued) == (0, 0)
        lag.lag = 0.01
        assert await gate.enter() is None

    run(scenario())


def test_loop_lag_sees_a_blocked_loop() -> None:
    async def scenario() -> float:
        lag = LoopLag(interval=0.01)
        lag.start()
        for _ in range(2):  # twice: one stall alone is not a saturated loop
            time.sleep(0.1)  # the loop is blocked past the timer: it runs at least 0.09 s late
            ticks = lag.last_sample
            while lag.last_sample == ticks:
                await asyncio.sleep(0)  # the overdue timer runs first
        lag.stop()
        return lag.lag

    assert run(scenario()) >= 0.09


def test_the_queue_bound_defaults_to_the_in_flight_bound() -> None:
    assert OverloadLimits(max_in_flight=7).queue_limit == 7
    assert OverloadLimits(max_in_flight=7, max_queued=0).queue_limit == 0


# --- the gateway under a burst ------------------------------------------------------------


def test_a_burst_past_the_bounds_is_shed_with_503_and_the_gateway_recovers_at_once(
    tmp_path: Path,
) -> None:
    """2 in flight + 1 queued are served; the 3 after them are refused at once."""

    async def scenario() -> None:
        limits = OverloadLimits(2, 1, queue_timeout_seconds=30, shed_on_loop_lag=False)
        async with running_gateway(
            tmp_path, overload=limits, behaviour=Behaviour(delay_seconds=1.0)
        ) as h:
            held = [asyncio.create_task(post(h, CHAT, chat())) for _ in range(2)]
            await until(lambda: h.gateway.load() == (2, 0))
            held.append(asyncio.create_task(post(h, CHAT, chat())))
            await until(lambda: h.gateway.load() == (2, 1))
            assert await metric(h, "aigis_gateway_in_flight_requests") == 2
            assert await metric(h, "aigis_gateway_queued_requests") == 1

            shed = await asyncio.gather(*(post(h, CHAT, chat()) for _ in range(3)))
            for status, headers, body in shed:
                assert status == 503
                assert headers["Retry-After"] == "1"
                assert headers["x-aigis-reason"] == "overloaded"
                assert body["error"]["code"] == "overloaded"
                assert body["error"]["type"] == "service_unavailable"
            assert len(h.provider.received) == 2  # nothing shed reached the provider

            assert [status for status, _, _ in await asyncio.gather(*held)] == [200, 200, 200]
            assert h.gateway.load() == (0, 0)
            assert await metric(h, "aigis_gateway_shed_total", {"reason": "queue_full"}) == 3
            assert await metric(h, "aigis_gateway_shed_total", {"reason": "queue_timeout"}) == 0

            # Right after the burst: no backlog, every request is served.
            h.provider.behaviour = Behaviour()
            after = await asyncio.gather(*(post(h, CHAT, chat()) for _ in range(3)))
            assert [status for status, _, _ in after] == [200, 200, 200]

            records = h.audit_records()[1:]
            refused = [r for r in records if r["reason"] == "overloaded"]
            assert len(refused) == 3
            assert all(r["status"] == 503 and r["decision"] == "refused" for r in refused)
            assert all(r["route"] == "chat_completions" for r in refused)
            assert sum(r["decision"] == "allowed" for r in records) == 6
            assert verify_audit_chain(h.audit, None, allow_unkeyed=True) == []

    run(scenario())


def test_a_request_that_waits_past_the_deadline_is_shed_in_the_anthropic_shape(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        limits = OverloadLimits(1, 4, queue_timeout_seconds=0.05, shed_on_loop_lag=False)
        async with running_gateway(
            tmp_path, overload=limits, behaviour=Behaviour(delay_seconds=1.0)
        ) as h:
            held = asyncio.create_task(post(h, MESSAGES, anthropic()))
            await until(lambda: h.gateway.load() == (1, 0))
            status, headers, body = await post(h, MESSAGES, anthropic())
            assert status == 503
            assert headers["Retry-After"] == "1"
            assert body["type"] == "error"
            assert body["error"]["type"] == "overloaded_error"
            assert body["error"]["reason"] == "overloaded"
            assert h.gateway.load() == (1, 0)  # the expired waiter left the queue
            assert await metric(h, "aigis_gateway_shed_total", {"reason": "queue_timeout"}) == 1
            assert (await held)[0] == 200
            h.provider.behaviour = Behaviour()
            assert (await post(h, MESSAGES, anthropic()))[0] == 200

    run(scenario())


def test_a_stream_holds_its_slot_until_its_last_event(tmp_path: Path) -> None:
    async def scenario() -> None:
        limits = OverloadLimits(1, 0, shed_on_loop_lag=False)
        slow_stream = Behaviour(text="word " * 40, piece_chars=10, chunk_delay_seconds=0.02)
        async with running_gateway(tmp_path, overload=limits, behaviour=slow_stream) as h:
            async with h.client.post(h.url + CHAT, json=chat(stream=True)) as streaming:
                assert streaming.status == 200
                await streaming.content.readany()  # the stream has begun
                status, _, body = await post(h, CHAT, chat())
                assert status == 503
                assert body["error"]["code"] == "overloaded"
                events = await read_sse(streaming.content.iter_any())
                assert events[-1][1] == "[DONE]"
            await until(lambda: h.gateway.load() == (0, 0))
            h.provider.behaviour = Behaviour()
            assert (await post(h, CHAT, chat()))[0] == 200

    run(scenario())


def test_health_readiness_and_metrics_answer_while_the_gateway_sheds(tmp_path: Path) -> None:
    async def scenario() -> None:
        limits = OverloadLimits(1, 0, shed_on_loop_lag=False)
        async with running_gateway(
            tmp_path, overload=limits, behaviour=Behaviour(delay_seconds=1.0)
        ) as h:
            held = asyncio.create_task(post(h, CHAT, chat()))
            await until(lambda: h.gateway.load() == (1, 0))
            assert (await post(h, CHAT, chat()))[0] == 503
            for path in ("/healthz", "/readyz", "/metrics"):
                async with h.client.get(h.metrics_url + path) as response:
                    assert response.status == 200
            assert (await held)[0] == 200

    run(scenario())


def test_audit_mode_sheds_too_since_capacity_is_not_a_policy(tmp_path: Path) -> None:
    async def scenario() -> None:
        limits = OverloadLimits(1, 0, shed_on_loop_lag=False)
        async with running_gateway(
            tmp_path,
            overload=limits,
            behaviour=Behaviour(delay_seconds=1.0),
            enforcement="Audit",
        ) as h:
            held = asyncio.create_task(post(h, CHAT, chat()))
            await until(lambda: h.gateway.load() == (1, 0))
            assert (await post(h, CHAT, chat()))[0] == 503
            assert (await held)[0] == 200
            assert h.audit_records()[-2]["reason"] == "overloaded"

    run(scenario())
