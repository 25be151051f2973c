"""A fake LLM provider: a real aiohttp server on 127.0.0.1 that speaks the providers' wire formats.

Serves the OpenAI routes (`/v1/chat/completions`, `/v1/completions`, `/v1/responses`,
`/v1/embeddings`, `/v1/models`) and Anthropic's `/v1/messages`, as JSON or as server-sent events
when the request says `"stream": true`, with plain text answers or tool calls. What it answers is
set through `FakeProvider.behaviour` (canned text, a tool call, delays, a connection reset before
or during the answer, a malformed event stream, silence until the client gives up, an error
status), and every request it received is kept in `FakeProvider.received` so a test can check
what the gateway actually sent (which key, which redacted text).

Used by the gateway tests and by `bench/gateway.py`; it never opens an outbound connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

Failure = Literal[
    "none", "reset_before_headers", "reset_mid_stream", "malformed_sse", "hang", "status"
]


@dataclass
class ToolCall:
    """A tool call the fake model makes: the tool's name and its JSON arguments as text."""

    name: str
    arguments: str
    call_id: str = "call_fake_1"


@dataclass
class Behaviour:
    """What the fake provider does with the next requests."""

    text: str = "Hello! How can I help you today?"
    tool_call: ToolCall | None = None
    delay_seconds: float = 0.0
    """Wait this long before answering (headers included)."""
    chunk_delay_seconds: float = 0.0
    """Wait this long between streamed events."""
    piece_chars: int = 6
    """Characters of text (or tool arguments) per streamed delta."""
    failure: Failure = "none"
    status: int = 500
    """Status of an error answer when `failure` is "status"."""
    models: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "o3-mini")
    """What `/v1/models` lists."""
    usage: tuple[int, int] = (12, 9)
    """(prompt, completion) tokens reported."""
    raw_stream: tuple[bytes, ...] | None = None
    """For fuzzing: write these pieces as the event stream of a streaming request, as given."""
    raw_body: bytes | None = None
    """For fuzzing: answer a non-streaming request with these bytes as its JSON body."""
    content_encoding: str | None = None
    """Sent as `Content-Encoding` with `raw_body` (which must then be encoded so)."""


@dataclass(frozen=True)
class Received:
    """One request as the provider saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeProvider:
    """Start with `await provider.start()`; `base_url` is then `http://127.0.0.1:<port>`."""

    behaviour: Behaviour = field(default_factory=Behaviour)
    record: bool = True
    received: list[Received] = field(default_factory=list)
    _runner: web.ServerRunner | None = None
    port: int = 0

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
    ) -> str:
        """Listen on `host:port` (0 picks a free port), over TLS with `ssl_context`; the base
        URL (plain HTTP's; a TLS caller names the host its certificate is for)."""
        server = web.Server(self._handle, access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        address = self._runner.addresses[0]
        self.port = int(address[1])
        return self.base_url

    @property
    def base_url(self) -> str:
        """Where the provider listens."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        """Client connections currently open to this server."""
        if self._runner is None or self._runner.server is None:
            return 0
        return len(self._runner.server.connections)

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- serving ----------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        behaviour = self.behaviour
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return _json({"error": {"message": "fake provider: body is not JSON"}}, 400)
        if self.record:
            self.received.append(
                Received(request.method, request.path, dict(request.headers), body)
            )
        if behaviour.delay_seconds:
            await asyncio.sleep(behaviour.delay_seconds)
        if behaviour.failure == "hang":
            await asyncio.sleep(3600)
        if behaviour.failure == "reset_before_headers":
            _reset(request)
            return web.Response()
        if behaviour.failure == "status":
            return _json(
                {"error": {"message": "fake upstream failure", "type": "server_error"}},
                behaviour.status,
            )
        path = request.path
        if path == "/v1/models":
            models = [{"id": m, "object": "model", "owned_by": "fake"} for m in behaviour.models]
            return _json({"object": "list", "data": models})
        if not isinstance(body, dict):
            return _json({"error": {"message": "fake provider: JSON object expected"}}, 400)
        model = str(body.get("model", "unknown"))
        if body.get("stream") is True and behaviour.raw_stream is not None:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for piece in behaviour.raw_stream:
                await response.write(piece)
            await response.write_eof()
            return response
        if behaviour.raw_body is not None:
            encoding = behaviour.content_encoding
            return web.Response(
                body=behaviour.raw_body,
                content_type="application/json",
                headers={"Content-Encoding": encoding} if encoding else None,
            )
        if body.get("stream") is True and path != "/v1/embeddings":
            events = _STREAMS.get(path)
            if events is None:
                return _json({"error": {"message": f"fake provider: no route {path}"}}, 404)
            return await self._stream(request, events(behaviour, model, body))
        answer = _ANSWERS.get(path)
        if answer is None:
            return _json({"error": {"message": f"fake provider: no route {path}"}}, 404)
        return _json(answer(behaviour, model, body))

    async def _stream(
        self, request: web.BaseRequest, events: Iterator[tuple[str | None, Any]]
    ) -> web.StreamResponse:
        behaviour = self.behaviour
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for sent, (name, data) in enumerate(events):
            if behaviour.failure == "reset_mid_stream" and sent == 2:
                _reset(request)
                return response
            if behaviour.failure == "malformed_sse" and sent == 2:
                await response.write(b"data: {this is not json\n\n")
            payload = data if isinstance(data, bytes) else orjson.dumps(data)
            head = b"event: " + name.encode() + b"\n" if name else b""
            await response.write(head + b"data: " + payload + b"\n\n")
            if behaviour.chunk_delay_seconds:
                await asyncio.sleep(behaviour.chunk_delay_seconds)
        await response.write_eof()
        return response


def _reset(request: web.BaseRequest) -> None:
    if request.transport is not None:
        request.transport.abort()


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _usage_openai(behaviour: Behaviour) -> dict[str, int]:
    prompt, completion = behaviour.usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _usage_anthropic(behaviour: Behaviour) -> dict[str, int]:
    prompt, completion = behaviour.usage
    return {"input_tokens": prompt, "output_tokens": completion}


# --- non-streaming answers ------------------------------------------------------------------


def _chat(behaviour: Behaviour, model: str, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": behaviour.text, "refusal": None}
    finish = "stop"
    if behaviour.tool_call is not None:
        call = behaviour.tool_call
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
        ]
        finish = "tool_calls"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage_openai(behaviour),
    }


def _completion(behaviour: Behaviour, model: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "cmpl-fake",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": behaviour.text, "finish_reason": "stop"}],
        "usage": _usage_openai(behaviour),
    }


def _response_output(behaviour: Behaviour) -> list[dict[str, Any]]:
    if behaviour.tool_call is not None:
        call = behaviour.tool_call
        return [
            {
                "type": "function_call",
                "id": "fc_fake",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
        ]
    return [
        {
            "type": "message",
            "id": "msg_fake",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": behaviour.text, "annotations": []}],
        }
    ]


def _response(behaviour: Behaviour, model: str, body: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = behaviour.usage
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "output": _response_output(behaviour),
        "usage": {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _embeddings(behaviour: Behaviour, model: str, body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("input")
    count = len(inputs) if isinstance(inputs, list) else 1
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.01, -0.02, 0.03]}
            for i in range(count)
        ],
        "model": model,
        "usage": {"prompt_tokens": behaviour.usage[0], "total_tokens": behaviour.usage[0]},
    }


def _message(behaviour: Behaviour, model: str, body: dict[str, Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": behaviour.text}]
    stop = "end_turn"
    if behaviour.tool_call is not None:
        call = behaviour.tool_call
        content = [
            {
                "type": "tool_use",
                "id": "toolu_fake",
                "name": call.name,
                "input": orjson.loads(call.arguments),
            }
        ]
        stop = "tool_use"
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage_anthropic(behaviour),
    }


_ANSWERS = {
    "/v1/chat/completions": _chat,
    "/v1/completions": _completion,
    "/v1/responses": _response,
    "/v1/embeddings": _embeddings,
    "/v1/messages": _message,
}

# --- streams --------------------------------------------------------------------------------

Event = tuple[str | None, Any]


def _chat_stream(behaviour: Behaviour, model: str, body: dict[str, Any]) -> Iterator[Event]:
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Event:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return None, {**base, "choices": [choice]}

    yield chunk({"role": "assistant", "content": ""})
    if behaviour.tool_call is not None:
        call = behaviour.tool_call
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": call.call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        for piece in _pieces(call.arguments, behaviour.piece_chars):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls")
    else:
        for piece in _pieces(behaviour.text, behaviour.piece_chars):
            yield chunk({"content": piece})
        yield chunk({}, "stop")
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        yield None, {**base, "choices": [], "usage": _usage_openai(behaviour)}
    yield None, b"[DONE]"


def _completion_stream(behaviour: Behaviour, model: str, body: dict[str, Any]) -> Iterator[Event]:
    base = {"id": "cmpl-fake", "object": "text_completion", "model": model}
    for piece in _pieces(behaviour.text, behaviour.piece_chars):
        yield None, {**base, "choices": [{"index": 0, "text": piece, "finish_reason": None}]}
    yield None, {**base, "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}
    yield None, b"[DONE]"


def _responses_stream(behaviour: Behaviour, model: str, body: dict[str, Any]) -> Iterator[Event]:
    sequence = iter(range(1_000_000))
    final = _response(behaviour, model, body)
    started = {**final, "status": "in_progress", "output": [], "usage": None}

    def event(kind: str, **fields: Any) -> Event:
        return kind, {"type": kind, "sequence_number": next(sequence), **fields}

    yield event("response.created", response=started)
    item = _response_output(behaviour)[0]
    if item["type"] == "function_call":
        yield event("response.output_item.added", output_index=0, item={**item, "arguments": ""})
        for piece in _pieces(item["arguments"], behaviour.piece_chars):
            yield event(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=0,
                delta=piece,
            )
        yield event(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=0,
            arguments=item["arguments"],
        )
    else:
        empty_part = {"type": "output_text", "text": "", "annotations": []}
        yield event("response.output_item.added", output_index=0, item={**item, "content": []})
        yield event(
            "response.content_part.added",
            item_id=item["id"],
            output_index=0,
            content_index=0,
            part=empty_part,
        )
        for piece in _pieces(behaviour.text, behaviour.piece_chars):
            yield event(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=0,
                content_index=0,
                delta=piece,
            )
        yield event(
            "response.output_text.done",
            item_id=item["id"],
            output_index=0,
            content_index=0,
            text=behaviour.text,
        )
        yield event(
            "response.content_part.done",
            item_id=item["id"],
            output_index=0,
            content_index=0,
            part={**empty_part, "text": behaviour.text},
        )
    yield event("response.output_item.done", output_index=0, item=item)
    yield event("response.completed", response=final)


def _messages_stream(behaviour: Behaviour, model: str, body: dict[str, Any]) -> Iterator[Event]:
    final = _message(behaviour, model, body)
    start = {
        **final,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": behaviour.usage[0], "output_tokens": 1},
    }
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    if behaviour.tool_call is not None:
        call = behaviour.tool_call
        block = {"type": "tool_use", "id": "toolu_fake", "name": call.name, "input": {}}
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        for piece in _pieces(call.arguments, behaviour.piece_chars):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    else:
        block = {"type": "text", "text": ""}
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        for piece in _pieces(behaviour.text, behaviour.piece_chars):
            delta = {"type": "text_delta", "text": piece}
            yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": final["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": behaviour.usage[1]},
        },
    )
    yield "message_stop", {"type": "message_stop"}


_STREAMS = {
    "/v1/chat/completions": _chat_stream,
    "/v1/completions": _completion_stream,
    "/v1/responses": _responses_stream,
    "/v1/messages": _messages_stream,
}


async def read_sse(chunks: AsyncIterator[bytes]) -> list[tuple[str | None, str]]:
    """Collect (event name, data) pairs from an SSE byte stream, for tests' assertions."""
    buffer = b""
    events: list[tuple[str | None, str]] = []
    async for chunk in chunks:
        buffer += chunk
    for block in buffer.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not block.strip():
            continue
        name: str | None = None
        data: list[str] = []
        for line in block.decode().split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        events.append((name, "\n".join(data)))
    return events
