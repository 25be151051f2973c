"""The wire formats the gateway speaks: OpenAI-compatible APIs and Anthropic Messages.

Owns where the text lives in each request and response body (message texts, system prompts,
tool-call arguments, tool results), which field names the model and the output-token limit, where
the token counts are, and what an error looks like in each provider's own shape. The gateway
scans and redacts through `TextSlot`s, so it never needs to know a body's layout itself.

Pure: plain dicts in, plain values out. Streaming events are handled in `aigis.gateway.streaming`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from aigis.gateway.config import WireFormat

TextKind = Literal["message", "system", "tool_result", "tool_arguments", "input"]


@dataclass(frozen=True, slots=True)
class Route:
    """One API route the gateway serves."""

    path: str
    """The path the app calls, e.g. `/v1/chat/completions`."""
    label: str
    """The route's name in metrics and audit records (a fixed, bounded set)."""
    wire_format: WireFormat
    """Which provider format the route speaks."""
    method: str
    """The HTTP method the route takes."""
    upstream_suffix: str
    """Path appended to the upstream's base URL."""
    has_body: bool = True
    """Whether the request carries a JSON body with a model (False for `GET /v1/models`)."""


ROUTES: dict[str, Route] = {
    route.path: route
    for route in (
        Route("/v1/chat/completions", "chat_completions", "openai", "POST", "/chat/completions"),
        Route("/v1/completions", "completions", "openai", "POST", "/completions"),
        Route("/v1/responses", "responses", "openai", "POST", "/responses"),
        Route("/v1/embeddings", "embeddings", "openai", "POST", "/embeddings"),
        Route("/v1/models", "models", "openai", "GET", "/models", has_body=False),
        Route("/v1/messages", "messages", "anthropic", "POST", "/messages"),
    )
}
"""Path -> route. Paths are matched exactly (a trailing slash is tolerated by the server)."""

MAX_TOKEN_FIELDS: dict[str, tuple[str, ...]] = {
    "chat_completions": ("max_tokens", "max_completion_tokens"),
    "completions": ("max_tokens",),
    "responses": ("max_output_tokens",),
    "messages": ("max_tokens",),
}
"""Route label -> the request fields that cap the tokens a model may generate."""


@dataclass(slots=True)
class TextSlot:
    """One string inside a parsed body, and where to write its redacted form back."""

    container: dict[str, Any] | list[Any]
    key: str | int
    kind: TextKind
    text: str

    def replace(self, text: str) -> None:
        """Write `text` where the original string was."""
        self.container[self.key] = text  # type: ignore[index]


# --- requests -------------------------------------------------------------------------------


def request_texts(route: Route, body: dict[str, Any]) -> list[TextSlot]:
    """Every text of a request body the guardrails must see, in document order."""
    slots: list[TextSlot] = []
    label = route.label
    if label == "chat_completions":
        for message in _dicts(body.get("messages")):
            role = message.get("role")
            kind: TextKind = (
                "tool_result"
                if role in ("tool", "function")
                else "system"
                if role in ("system", "developer")
                else "message"
            )
            _content_slots(message, "content", kind, slots)
            _openai_tool_call_slots(message, slots)
    elif label == "completions":
        _strings(body, "prompt", "message", slots)
        _strings(body, "suffix", "message", slots)
    elif label == "embeddings":
        _strings(body, "input", "input", slots)
    elif label == "responses":
        _str_slot(body, "instructions", "system", slots)
        _responses_input_slots(body, slots)
    elif label == "messages":
        _anthropic_system_slots(body, slots)
        for message in _dicts(body.get("messages")):
            _anthropic_content_slots(message, slots)
    return slots


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item


def _str_slot(container: dict[str, Any], key: str, kind: TextKind, out: list[TextSlot]) -> None:
    value = container.get(key)
    if isinstance(value, str) and value:
        out.append(TextSlot(container, key, kind, value))


def _strings(container: dict[str, Any], key: str, kind: TextKind, out: list[TextSlot]) -> None:
    """A field that is a string or a list of strings (token-id arrays are skipped)."""
    value = container.get(key)
    if isinstance(value, str):
        if value:
            out.append(TextSlot(container, key, kind, value))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str) and item:
                out.append(TextSlot(value, index, kind, item))


def _content_slots(message: dict[str, Any], key: str, kind: TextKind, out: list[TextSlot]) -> None:
    """OpenAI content: a string, or a list of parts of which the text parts carry `text`."""
    content = message.get(key)
    if isinstance(content, str):
        if content:
            out.append(TextSlot(message, key, kind, content))
        return
    for part in _dicts(content):
        _str_slot(part, "text", kind, out)
        _str_slot(part, "refusal", kind, out)


def _openai_tool_call_slots(message: dict[str, Any], out: list[TextSlot]) -> None:
    for call in _dicts(message.get("tool_calls")):
        function = call.get("function")
        if isinstance(function, dict):
            _str_slot(function, "arguments", "tool_arguments", out)
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        _str_slot(legacy, "arguments", "tool_arguments", out)


def _responses_input_slots(body: dict[str, Any], out: list[TextSlot]) -> None:
    value = body.get("input")
    if isinstance(value, str):
        _str_slot(body, "input", "message", out)
        return
    for item in _dicts(value):
        item_type = item.get("type")
        if item_type in ("function_call_output", "custom_tool_call_output"):
            _content_slots(item, "output", "tool_result", out)
        elif item_type in ("function_call", "custom_tool_call"):
            _str_slot(item, "arguments", "tool_arguments", out)
            _str_slot(item, "input", "tool_arguments", out)
        else:
            role = item.get("role")
            kind: TextKind = "system" if role in ("system", "developer") else "message"
            _content_slots(item, "content", kind, out)


def _anthropic_system_slots(body: dict[str, Any], out: list[TextSlot]) -> None:
    system = body.get("system")
    if isinstance(system, str):
        _str_slot(body, "system", "system", out)
    for block in _dicts(system):
        _str_slot(block, "text", "system", out)


def _anthropic_content_slots(message: dict[str, Any], out: list[TextSlot]) -> None:
    content = message.get("content")
    if isinstance(content, str):
        _str_slot(message, "content", "message", out)
        return
    for block in _dicts(content):
        block_type = block.get("type")
        if block_type == "text":
            _str_slot(block, "text", "message", out)
        elif block_type == "tool_result":
            inner = block.get("content")
            if isinstance(inner, str):
                _str_slot(block, "content", "tool_result", out)
            for part in _dicts(inner):
                _str_slot(part, "text", "tool_result", out)
        elif block_type == "tool_use":
            json_leaf_slots(block, "input", "tool_arguments", out)


def json_leaf_slots(
    container: dict[str, Any] | list[Any], key: str | int, kind: TextKind, out: list[TextSlot]
) -> None:
    """Every string inside a JSON value (Anthropic tool inputs are objects, not strings)."""
    value = container[key]  # type: ignore[index]
    if isinstance(value, str):
        if value:
            out.append(TextSlot(container, key, kind, value))
    elif isinstance(value, dict):
        for child in value:
            json_leaf_slots(value, child, kind, out)
    elif isinstance(value, list):
        for index in range(len(value)):
            json_leaf_slots(value, index, kind, out)


# --- responses ------------------------------------------------------------------------------


def response_texts(route: Route, body: dict[str, Any]) -> list[TextSlot]:
    """Every text of a (non-streaming) response body the guardrails must see."""
    slots: list[TextSlot] = []
    label = route.label
    if label == "chat_completions":
        for choice in _dicts(body.get("choices")):
            message = choice.get("message")
            if isinstance(message, dict):
                _content_slots(message, "content", "message", slots)
                _str_slot(message, "refusal", "message", slots)
                _openai_tool_call_slots(message, slots)
    elif label == "completions":
        for choice in _dicts(body.get("choices")):
            _str_slot(choice, "text", "message", slots)
    elif label == "responses":
        responses_output_slots(body, slots)
    elif label == "messages":
        anthropic_block_slots(body.get("content"), slots)
    return slots


def responses_output_slots(response: dict[str, Any], out: list[TextSlot]) -> None:
    """Texts of a Responses API `response` object: its output items."""
    for item in _dicts(response.get("output")):
        responses_item_slots(item, out)


def responses_item_slots(item: dict[str, Any], out: list[TextSlot]) -> None:
    """Texts of one Responses API output item (message, function call, reasoning summary)."""
    item_type = item.get("type")
    if item_type == "message":
        for part in _dicts(item.get("content")):
            _str_slot(part, "text", "message", out)
            _str_slot(part, "refusal", "message", out)
    elif item_type in ("function_call", "custom_tool_call"):
        _str_slot(item, "arguments", "tool_arguments", out)
        _str_slot(item, "input", "tool_arguments", out)
    elif item_type == "reasoning":
        for part in _dicts(item.get("summary")):
            _str_slot(part, "text", "message", out)


def anthropic_block_slots(content: Any, out: list[TextSlot]) -> None:
    """Texts of Anthropic response content blocks (text and tool_use inputs)."""
    for block in _dicts(content):
        block_type = block.get("type")
        if block_type == "text":
            _str_slot(block, "text", "message", out)
        elif block_type == "tool_use" and "input" in block:
            json_leaf_slots(block, "input", "tool_arguments", out)


# --- fields ---------------------------------------------------------------------------------


def requested_model(body: dict[str, Any]) -> str | None:
    """The model a request names, or None when it names none (or not as a string)."""
    model = body.get("model")
    return model if isinstance(model, str) and model else None


def requested_max_tokens(route: Route, body: dict[str, Any]) -> tuple[str, int] | None:
    """The largest output-token cap the request asks for, with the field that asks for it."""
    largest: tuple[str, int] | None = None
    for field in MAX_TOKEN_FIELDS.get(route.label, ()):
        value = body.get(field)
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if largest is None or value > largest[1]:
            largest = (field, value)
    return largest


def wants_stream(body: dict[str, Any]) -> bool:
    """Whether the request asks for a server-sent-event stream."""
    return body.get("stream") is True


@dataclass(slots=True)
class TokenUsage:
    """Token counts a provider reported; None when it did not say."""

    prompt: int | None = None
    completion: int | None = None

    def merge(self, other: TokenUsage) -> None:
        """Take the counts `other` knows (streams report them in pieces)."""
        if other.prompt is not None:
            self.prompt = other.prompt
        if other.completion is not None:
            self.completion = other.completion


def usage_of(body: dict[str, Any]) -> TokenUsage:
    """Token counts from a response body or event (`usage` in either provider's naming)."""
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return TokenUsage()
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    return TokenUsage(
        prompt if isinstance(prompt, int) else None,
        completion if isinstance(completion, int) else None,
    )


# --- errors ---------------------------------------------------------------------------------

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}


def error_payload(
    wire_format: WireFormat, status: int, reason: str, message: str
) -> dict[str, Any]:
    """An error in the provider's own shape; `reason` is aigis's machine-readable code."""
    if wire_format == "anthropic":
        return {
            "type": "error",
            "error": {
                "type": _ANTHROPIC_TYPES.get(status, "api_error"),
                "message": message,
                "reason": reason,
            },
        }
    return {
        "error": {
            "message": message,
            "type": _OPENAI_TYPES.get(status, "server_error"),
            "code": reason,
            "param": None,
        }
    }


def error_body(wire_format: WireFormat, status: int, reason: str, message: str) -> bytes:
    """`error_payload` serialised."""
    return orjson.dumps(error_payload(wire_format, status, reason, message))
