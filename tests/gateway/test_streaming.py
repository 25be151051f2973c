"""Guarding streamed answers event by event (pure, with the test double of the engine)."""

from __future__ import annotations

import orjson
import pytest
from tests.gateway.fake_guardrails import FakePipeline

from aigis.api.aiworkload import Guardrails
from aigis.gateway.providers import ROUTES
from aigis.gateway.sse import MalformedStreamError, SSEEvent, SSEParser
from aigis.gateway.streaming import StreamBlockedError, stream_guard_for

PIPELINE = FakePipeline.from_spec(Guardrails())


def chat_chunk(content: str | None = None, finish: str | None = None, **delta: object) -> SSEEvent:
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return SSEEvent(None, orjson.dumps({"id": "c", "choices": [choice]}).decode())


def replay(path: str, events: list[SSEEvent], *, enforce: bool = True) -> str:
    guard = stream_guard_for(ROUTES[path], PIPELINE, "FailClosed", enforce)
    out = b"".join(piece for event in events for piece in guard.on_event(event))
    out += b"".join(guard.on_end())
    parts = []
    for event in SSEParser().feed(out):
        if event.data == "[DONE]":
            continue
        value = orjson.loads(event.data)
        for choice in value.get("choices", []):
            delta = choice.get("delta", {})
            parts.append(delta.get("content") or "")
            parts += [c["function"]["arguments"] for c in delta.get("tool_calls", [])]
    return "".join(parts)


def test_email_split_over_many_chunks_is_redacted() -> None:
    text = "write to jane.doe@example.com soon, thanks"
    events = [chat_chunk(text[i : i + 2]) for i in range(0, len(text), 2)]
    events += [chat_chunk(finish="stop"), SSEEvent(None, "[DONE]")]
    assert replay("/v1/chat/completions", events) == "write to <EMAIL_1> soon, thanks"


def test_audit_mode_passes_the_stream_unchanged() -> None:
    text = "write to jane.doe@example.com soon"
    events = [chat_chunk(text[i : i + 4]) for i in range(0, len(text), 4)]
    assert replay("/v1/chat/completions", events, enforce=False) == text


def test_held_back_text_is_flushed_when_upstream_ends_without_done() -> None:
    assert replay("/v1/chat/completions", [chat_chunk("short answer")]) == "short answer"


def test_tool_call_arguments_remainder_lands_in_the_finishing_chunk() -> None:
    arguments = '{"to": "jane.doe@example.com", "body": "hello"}'
    events = [
        chat_chunk(tool_calls=[{"index": 0, "function": {"arguments": arguments[i : i + 5]}}])
        for i in range(0, len(arguments), 5)
    ]
    events.append(chat_chunk(finish="tool_calls"))
    assert replay("/v1/chat/completions", events) == '{"to": "<EMAIL_1>", "body": "hello"}'


def test_a_block_raises_and_stops_the_stream() -> None:
    guard = stream_guard_for(ROUTES["/v1/chat/completions"], PIPELINE, "FailClosed", True)
    guard.on_event(chat_chunk("my key: sk-abcdefghij"))
    with pytest.raises(StreamBlockedError):
        guard.on_event(chat_chunk("klmnopqrstuvwxyz"))
    assert guard.inspection.blocked_by == "secrets"


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(SSEEvent(None, "{nope"), id="not-json"),
        pytest.param(SSEEvent(None, "[1]"), id="not-an-object"),
    ],
)
def test_malformed_events_are_reported(event: SSEEvent) -> None:
    guard = stream_guard_for(ROUTES["/v1/messages"], PIPELINE, "FailClosed", True)
    with pytest.raises(MalformedStreamError):
        guard.on_event(event)


def test_anthropic_flush_comes_before_block_stop() -> None:
    guard = stream_guard_for(ROUTES["/v1/messages"], PIPELINE, "FailClosed", True)
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "hello there"},
    }
    out = guard.on_event(SSEEvent("content_block_delta", orjson.dumps(delta).decode()))
    out += guard.on_event(SSEEvent("content_block_stop", '{"type":"content_block_stop","index":0}'))
    names = [event.name for event in SSEParser().feed(b"".join(out))]
    assert names == ["content_block_delta", "content_block_delta", "content_block_stop"]
    texts = [
        orjson.loads(e.data)["delta"]["text"]
        for e in SSEParser().feed(b"".join(out))
        if e.name == "content_block_delta"
    ]
    assert "".join(texts) == "hello there"


def test_responses_sequence_numbers_stay_increasing_with_inserted_events() -> None:
    guard = stream_guard_for(ROUTES["/v1/responses"], PIPELINE, "FailClosed", True)
    events = [
        {
            "type": "response.output_text.delta",
            "sequence_number": 1,
            "item_id": "m",
            "delta": "hi there",
        },
        {
            "type": "response.output_text.done",
            "sequence_number": 2,
            "item_id": "m",
            "text": "hi there",
        },
        {"type": "response.completed", "sequence_number": 3, "response": {"output": []}},
    ]
    out = b"".join(
        piece
        for event in events
        for piece in guard.on_event(SSEEvent(str(event["type"]), orjson.dumps(event).decode()))
    )
    numbers = [orjson.loads(e.data)["sequence_number"] for e in SSEParser().feed(out)]
    assert numbers == sorted(set(numbers))
    assert len(numbers) == 4
