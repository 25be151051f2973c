"""Guarding a streamed (SSE) answer as it passes: text deltas and tool-call argument deltas.

Each text channel of a stream (a choice's content, one tool call's arguments, one Anthropic
content block, one Responses API output part) gets its own streaming scanner, which may hold back
the tail of what it has seen until it knows no match spans the next piece. Events are rewritten
with the text the scanner releases; when a channel ends, what it still holds is flushed into the
stream before the event that ends it. A block raises `StreamBlockedError`: the shell then ends the
stream with an error event in the provider's shape (`stream_error_event`).

Events that carry whole texts instead of deltas (Responses API `*.done` and `response.completed`
events) are scanned whole, so redacted text cannot reappear in a summary event.

Pure apart from calling the pipeline it is given.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from aigis.api.aiworkload import FailureMode
from aigis.gateway.inspection import Inspection, PipelineLike, StreamScannerLike, inspect_slots
from aigis.gateway.providers import (
    Route,
    TextKind,
    TextSlot,
    TokenUsage,
    anthropic_block_slots,
    error_payload,
    responses_item_slots,
    responses_output_slots,
    usage_of,
)
from aigis.gateway.sse import MalformedStreamError, SSEEvent, format_event


class StreamBlockedError(Exception):
    """A guardrail blocked the stream (or failed under FailClosed)."""

    def __init__(self, guardrail: str) -> None:
        super().__init__(guardrail)
        self.guardrail = guardrail


ChannelKey = tuple[Any, ...]


class StreamGuard:
    """Scans one streamed answer; subclasses know one provider's event layout.

    `on_event` returns the bytes to send on for one upstream event; `on_end` the bytes still owed
    when the upstream closed without its final marker. Both may raise `StreamBlockedError`, and
    `MalformedStreamError` for events that are not what the provider's format promises.
    """

    def __init__(
        self, route: Route, pipeline: PipelineLike, failure_mode: FailureMode, enforce: bool
    ) -> None:
        self.route = route
        self.inspection = Inspection("response")
        self.usage = TokenUsage()
        self._pipeline = pipeline
        self._failure_mode = failure_mode
        self._enforce = enforce
        self._scanners: dict[ChannelKey, StreamScannerLike | None] = {}
        self._kinds: dict[ChannelKey, TextKind] = {}
        self._released: dict[ChannelKey, list[str]] = {}

    def on_event(self, event: SSEEvent) -> list[bytes]:
        """Bytes to forward for one upstream event."""
        raise NotImplementedError

    def on_end(self) -> list[bytes]:
        """Bytes still owed when the upstream ended the stream."""
        return []

    # --- channels ---------------------------------------------------------------------------

    def feed(self, key: ChannelKey, text: str, kind: TextKind) -> str:
        """Scan a piece of one channel; the text that may be sent now."""
        if key not in self._scanners:
            self._scanners[key] = self._pipeline.stream(direction="response")
            self._kinds[key] = kind
            self._released[key] = []
        scanner = self._scanners[key]
        if scanner is None:
            return self._keep(key, text)
        self.inspection.scanned_texts += 1
        try:
            step = scanner.feed(text)
        except Exception as exc:  # a detector failure is a guardrail failure
            return self._scanner_failed(key, exc, text)
        return self._keep(key, self._apply(step, kind, text))

    def finish(self, key: ChannelKey) -> str:
        """End one channel; the text its scanner still held."""
        scanner = self._scanners.get(key)
        if scanner is None:
            return ""
        self._scanners[key] = None
        try:
            step = scanner.finish()
        except Exception as exc:  # a detector failure is a guardrail failure
            return self._scanner_failed(key, exc, "")
        return self._keep(key, self._apply(step, self._kinds[key], ""))

    def open_channels(self, prefix: ChannelKey = ()) -> list[ChannelKey]:
        """Channels (whose key starts with `prefix`) whose scanner still runs."""
        return [
            key
            for key, scanner in self._scanners.items()
            if scanner is not None and key[: len(prefix)] == prefix
        ]

    def released_text(self, key: ChannelKey) -> str | None:
        """Everything a channel has let through so far; None for a channel never seen."""
        parts = self._released.get(key)
        return None if parts is None else "".join(parts)

    def _keep(self, key: ChannelKey, text: str) -> str:
        self._released[key].append(text)
        return text

    def _apply(self, step: Any, kind: TextKind, original: str) -> str:
        if step.findings:
            self.inspection.record(step.findings, kind)
        if step.blocked:
            self.inspection.note_block(step.findings, kind)
            if self._enforce:
                raise StreamBlockedError(self.inspection.blocked_by or "guardrail")
        if not self._enforce:
            # Audit mode changes nothing: the original piece goes on, scanned but untouched.
            return original
        if step.release != original:
            self.inspection.redacted = True
        released: str = step.release
        return released

    def _scanner_failed(self, key: ChannelKey, exc: Exception, text: str) -> str:
        self.inspection.guardrail_error = f"{type(exc).__name__}: {exc}"[:200]
        self._scanners[key] = None
        if self._failure_mode == "FailClosed":
            self.inspection.blocked_by = "guardrail_error"
            self.inspection.blocked_kind = self._kinds[key]
            if self._enforce:
                raise StreamBlockedError("guardrail_error") from exc
        return self._keep(key, text)

    def scan_whole(self, slots: list[TextSlot], *, record: bool = True) -> None:
        """Scan texts that arrive whole inside an event; redact them in place.

        `record` False is for summary events that repeat text already scanned as deltas: they are
        scanned again (a redaction must not reappear in them) without counting findings twice.
        """
        if not slots:
            return
        result = inspect_slots(
            self._pipeline,
            slots,
            "response",
            failure_mode=self._failure_mode,
            enforce=self._enforce,
        )
        if record or result.blocked_by is not None:
            self.inspection.findings.extend(result.findings)
        self.inspection.scanned_texts += result.scanned_texts
        self.inspection.redacted |= result.redacted
        if result.guardrail_error is not None:
            self.inspection.guardrail_error = result.guardrail_error
        if result.blocked_by is not None and self.inspection.blocked_by is None:
            self.inspection.blocked_by = result.blocked_by
            self.inspection.blocked_kind = result.blocked_kind
            if self._enforce:
                raise StreamBlockedError(result.blocked_by)


def _load(event: SSEEvent) -> dict[str, Any]:
    try:
        value = orjson.loads(event.data)
    except orjson.JSONDecodeError as exc:
        raise MalformedStreamError(f"an event's data is not JSON: {event.data[:60]!r}") from exc
    if not isinstance(value, dict):
        raise MalformedStreamError(f"an event's data is not a JSON object: {event.data[:60]!r}")
    return value


def _dump(event: SSEEvent, value: dict[str, Any]) -> bytes:
    return format_event(orjson.dumps(value), event.name)


class OpenAIChatStream(StreamGuard):
    """`/v1/chat/completions` and `/v1/completions` chunks: `choices[].delta` (or `.text`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._template: dict[str, Any] | None = None

    def on_event(self, event: SSEEvent) -> list[bytes]:
        if event.data.strip() == "[DONE]":
            return [*self._flush_all(), format_event("[DONE]", event.name)]
        chunk = _load(event)
        if "error" in chunk:
            return [_dump(event, chunk)]
        self.usage.merge(usage_of(chunk))
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return [_dump(event, chunk)]
        self._template = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
        for choice in choices:
            if isinstance(choice, dict):
                self._on_choice(choice)
        return [_dump(event, chunk)]

    def _on_choice(self, choice: dict[str, Any]) -> None:
        index = choice.get("index", 0)
        if isinstance(choice.get("text"), str):  # legacy completions
            choice["text"] = self.feed(("text", index), choice["text"], "message")
        delta = choice.get("delta")
        if isinstance(delta, dict):
            for field in ("content", "refusal"):
                if isinstance(delta.get(field), str):
                    delta[field] = self.feed((field, index), delta[field], "message")
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    function = call.get("function") if isinstance(call, dict) else None
                    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                        key = ("tool", index, call.get("index", 0))
                        function["arguments"] = self.feed(
                            key, function["arguments"], "tool_arguments"
                        )
        if choice.get("finish_reason") is not None:
            self._flush_choice(index, choice)

    def _flush_choice(self, index: Any, choice: dict[str, Any]) -> None:
        for key in self.open_channels():
            if key[0] == "tool" and key[1] == index:
                rest = self.finish(key)
                if rest:
                    delta = choice.setdefault("delta", {})
                    calls = delta.setdefault("tool_calls", [])
                    entry = next(
                        (c for c in calls if isinstance(c, dict) and c.get("index") == key[2]),
                        None,
                    )
                    if entry is None:
                        entry = {"index": key[2], "function": {"arguments": ""}}
                        calls.append(entry)
                    function = entry.setdefault("function", {})
                    function["arguments"] = function.get("arguments", "") + rest
            elif key[1] == index:
                rest = self.finish(key)
                if rest:
                    if key[0] == "text":
                        choice["text"] = choice.get("text", "") + rest
                    else:
                        delta = choice.setdefault("delta", {})
                        delta[key[0]] = (delta.get(key[0]) or "") + rest

    def _flush_all(self) -> list[bytes]:
        indices = dict.fromkeys(key[1] for key in self.open_channels())
        if not indices:
            return []
        choices: list[dict[str, Any]] = []
        for index in indices:
            choice: dict[str, Any] = {"index": index, "delta": {}, "finish_reason": None}
            self._flush_choice(index, choice)
            if not choice["delta"]:
                del choice["delta"]
            choices.append(choice)
        chunk = {**(self._template or {}), "choices": choices}
        return [format_event(orjson.dumps(chunk))]

    def on_end(self) -> list[bytes]:
        return self._flush_all()


class AnthropicStream(StreamGuard):
    """`/v1/messages` events: `content_block_delta` text and `input_json_delta` pieces."""

    _DELTA_FIELDS = {"text_delta": "text", "input_json_delta": "partial_json"}

    def on_event(self, event: SSEEvent) -> list[bytes]:
        message = _load(event)
        kind = message.get("type")
        if kind == "message_start" and isinstance(message.get("message"), dict):
            self.usage.merge(usage_of(message["message"]))
            slots: list[TextSlot] = []
            anthropic_block_slots(message["message"].get("content"), slots)
            self.scan_whole(slots)
        elif kind == "message_delta":
            self.usage.merge(usage_of(message))
        elif kind == "content_block_start" and isinstance(message.get("content_block"), dict):
            slots = []
            anthropic_block_slots([message["content_block"]], slots)
            self.scan_whole(slots)
        elif kind == "content_block_delta":
            delta = message.get("delta")
            if isinstance(delta, dict):
                field = self._DELTA_FIELDS.get(str(delta.get("type")))
                if field is not None and isinstance(delta.get(field), str):
                    text_kind: TextKind = "message" if field == "text" else "tool_arguments"
                    key = ("block", message.get("index", 0), str(delta.get("type")))
                    delta[field] = self.feed(key, delta[field], text_kind)
        elif kind == "content_block_stop":
            return [*self._flush(message.get("index", 0)), _dump(event, message)]
        return [_dump(event, message)]

    def _flush(self, index: Any) -> list[bytes]:
        out: list[bytes] = []
        for key in self.open_channels(("block", index)):
            rest = self.finish(key)
            if rest:
                delta_type = key[2]
                delta = {"type": delta_type, self._DELTA_FIELDS[delta_type]: rest}
                body = {"type": "content_block_delta", "index": index, "delta": delta}
                out.append(format_event(orjson.dumps(body), "content_block_delta"))
        return out

    def on_end(self) -> list[bytes]:
        indices = dict.fromkeys(key[1] for key in self.open_channels())
        return [piece for index in indices for piece in self._flush(index)]


class ResponsesStream(StreamGuard):
    """`/v1/responses` events: typed deltas, and `*.done` events that repeat the whole text."""

    _DELTAS: dict[str, tuple[str, TextKind]] = {
        "response.output_text.delta": ("text", "message"),
        "response.refusal.delta": ("refusal", "message"),
        "response.function_call_arguments.delta": ("arguments", "tool_arguments"),
    }
    _DONES = {
        "response.output_text.done": ("response.output_text.delta", "text"),
        "response.refusal.done": ("response.refusal.delta", "refusal"),
        "response.function_call_arguments.done": (
            "response.function_call_arguments.delta",
            "arguments",
        ),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inserted = 0
        self._sequence = 0
        self._seen_deltas = False

    def on_event(self, event: SSEEvent) -> list[bytes]:
        message = _load(event)
        kind = str(message.get("type"))
        out: list[bytes] = []
        if kind in self._DELTAS and isinstance(message.get("delta"), str):
            self._seen_deltas = True
            channel, text_kind = self._DELTAS[kind]
            message["delta"] = self.feed(self._key(channel, message), message["delta"], text_kind)
        elif kind in self._DONES:
            delta_type, field = self._DONES[kind]
            channel = self._DELTAS[delta_type][0]
            key = self._key(channel, message)
            rest = self.finish(key)
            if rest:
                extra = copy.copy(message)
                extra.pop(field, None)
                extra["type"] = delta_type
                extra["delta"] = rest
                out.append(self._emit(delta_type, extra, synthetic=True))
            released = self.released_text(key)
            if released is not None and self._enforce:
                message[field] = released
            else:
                slots: list[TextSlot] = []
                if isinstance(message.get(field), str):
                    slots.append(TextSlot(message, field, "message", message[field]))
                self.scan_whole(slots, record=released is None)
        else:
            self._scan_embedded(message)
        out.append(self._emit(event.name, message))
        return out

    def _key(self, channel: str, message: dict[str, Any]) -> ChannelKey:
        return (channel, message.get("item_id"), message.get("content_index", 0))

    def _scan_embedded(self, message: dict[str, Any]) -> None:
        slots: list[TextSlot] = []
        if isinstance(message.get("response"), dict):
            self.usage.merge(usage_of(message["response"]))
            responses_output_slots(message["response"], slots)
        if isinstance(message.get("item"), dict):
            responses_item_slots(message["item"], slots)
        part = message.get("part")
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            slots.append(TextSlot(part, "text", "message", part["text"]))
        # Items and parts that close a stream repeat what the deltas carried.
        self.scan_whole(slots, record=not self._seen_deltas)

    def _emit(self, name: str | None, message: dict[str, Any], synthetic: bool = False) -> bytes:
        # Each inserted flush event shifts every later sequence number by one.
        if isinstance(message.get("sequence_number"), int):
            message["sequence_number"] += self._inserted
            self._sequence = message["sequence_number"]
        if synthetic:
            self._inserted += 1
        return format_event(orjson.dumps(message), name)

    @property
    def next_sequence_number(self) -> int:
        """The sequence number an event appended now should carry."""
        return self._sequence + 1


def stream_guard_for(
    route: Route, pipeline: PipelineLike, failure_mode: FailureMode, enforce: bool
) -> StreamGuard:
    """The stream guard that knows `route`'s event layout."""
    if route.label == "messages":
        return AnthropicStream(route, pipeline, failure_mode, enforce)
    if route.label == "responses":
        return ResponsesStream(route, pipeline, failure_mode, enforce)
    return OpenAIChatStream(route, pipeline, failure_mode, enforce)


def stream_error_event(guard: StreamGuard | None, route: Route, reason: str, message: str) -> bytes:
    """The event that ends a stream with an error, in the shape the provider's SDKs understand."""
    if route.label == "messages":
        return format_event(orjson.dumps(error_payload("anthropic", 400, reason, message)), "error")
    if route.label == "responses":
        sequence = guard.next_sequence_number if isinstance(guard, ResponsesStream) else 0
        body = {
            "type": "error",
            "code": reason,
            "message": message,
            "param": None,
            "sequence_number": sequence,
        }
        return format_event(orjson.dumps(body), "error")
    return format_event(orjson.dumps(error_payload("openai", 400, reason, message)))
