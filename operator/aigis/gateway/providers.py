"""The wire formats the gateway speaks: OpenAI-compatible APIs and Anthropic Messages.

Owns where the text lives in each request and response body (message texts, system prompts,
tool-call arguments, tool results, tool definitions), which field names the model and the
output-token limit, where the token counts are, and what an error looks like in each provider's
own shape. The gateway scans and redacts through `TextSlot`s, so it never needs to know a body's
layout itself.

A request is scanned whole: after the fields whose kind is known (messages, system prompts, tool
calls and results, tool definitions), every other string value in the body is scanned too, as a
`field` (a `response_format` schema, `metadata`, stop sequences, fields a provider adds next
year). Only `STRUCTURAL_KEYS` (identifiers and enumerations such as `model`, `role`, `type`) and
inline binary media (`data:` URLs, base64 `data`) are left out; object keys are not scanned.
Prompts given as token ids cannot be scanned at all: `token_id_fields` names them.

Pure: plain dicts in, plain values out. Streaming events are handled in `aigis.gateway.streaming`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from aigis.gateway.config import WireFormat

TextKind = Literal[
    "message", "system", "tool_result", "tool_arguments", "tool_definition", "input", "field"
]

STRUCTURAL_KEYS = frozenset(
    {
        "model", "role", "type", "id", "object", "tool_call_id", "tool_use_id", "call_id",
        "previous_response_id", "encoding_format", "media_type", "detail", "service_tier",
        "reasoning_effort", "truncation", "tool_choice",
    }
)  # fmt: skip
"""Keys whose string values are identifiers or enumerations the provider checks, not text a
model reads; scanning them would only let a deny pattern such as `system` match every request."""
MEDIA_KEYS = frozenset({"data", "file_data"})
"""Keys of inline base64 media (Anthropic `source.data`, `input_audio.data`, `file_data`),
except in an object of `"type": "text"`."""
MAX_BODY_DEPTH = 128
"""Deepest nesting of a request body the gateway accepts: deeper bodies cannot be re-serialised
after a redaction (orjson stops at 255 levels) and no provider's schema needs them."""


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
    """Every text of a request body the guardrails must see.

    The fields of known kind come first, in document order, then tool definitions, then every
    other string value of the body (see the module docstring for the few that are left out).
    """
    slots = _known_request_texts(route, body)
    covered = {(id(slot.container), slot.key) for slot in slots}
    tools: list[str] = [key for key in ("tools", "functions") if key in body]
    _remaining_strings(body, tools, "tool_definition", slots, covered)
    _remaining_strings(body, list(body), "field", slots, covered)
    return slots


def _known_request_texts(route: Route, body: dict[str, Any]) -> list[TextSlot]:
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


_Frame = tuple[dict[str, Any] | list[Any], str | int, str, dict[str, Any]]
"""Where a string may sit: its container, its key there, the key it is under, its object."""


def _remaining_strings(
    body: dict[str, Any],
    keys: list[str],
    kind: TextKind,
    out: list[TextSlot],
    covered: set[tuple[int, str | int]],
) -> None:
    """Add every string under `body[key]` for each of `keys` not yet `covered`, in order.

    Iterative, so a deeply nested body cannot exhaust the interpreter's stack. `name` is the
    key a string sits under (for an array item, the array's key), `owner` the object holding it.
    """
    stack: list[_Frame] = [(body, key, key, body) for key in reversed(keys)]
    while stack:
        container, key, name, owner = stack.pop()
        value = container[key]  # type: ignore[index]
        if isinstance(value, str):
            place = (id(container), key)
            if value and place not in covered and not _exempt(name, value, owner):
                out.append(TextSlot(container, key, kind, value))
                covered.add(place)
        elif isinstance(value, dict):
            stack.extend((value, child, child, value) for child in reversed(list(value)))
        elif isinstance(value, list):
            stack.extend((value, index, name, owner) for index in reversed(range(len(value))))


def _exempt(name: str, value: str, owner: dict[str, Any]) -> bool:
    """Whether a string is structure or binary media rather than text a model reads."""
    if name in STRUCTURAL_KEYS:
        return True
    if name in MEDIA_KEYS and owner.get("type") != "text":
        # Anthropic's plain-text document source is {"type": "text", "data": ...}: text.
        return True
    return value.startswith("data:") and ";base64," in value[:200]


def token_id_fields(route: Route, body: dict[str, Any]) -> list[str]:
    """The fields of a request that carry prompts as token ids, which no guardrail can read.

    `/v1/completions` `prompt` and `/v1/embeddings` `input` accept an array of token ids or an
    array of such arrays; each is named with its path, e.g. `prompt` or `input[2]`.
    """
    field = {"completions": "prompt", "embeddings": "input"}.get(route.label)
    if field is None:
        return []
    value = body.get(field)
    if _is_token(value):
        return [field]
    if not isinstance(value, list):
        return []
    carries_tokens = [
        _is_token(item) or (isinstance(item, list) and any(_is_token(t) for t in item))
        for item in value
    ]
    if value and all(carries_tokens):
        return [field]
    return [f"{field}[{index}]" for index, tokens in enumerate(carries_tokens) if tokens]


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def nesting_depth(value: Any, limit: int = MAX_BODY_DEPTH) -> int:
    """How deeply `value` nests arrays and objects; counting stops past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


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
    """Every string inside a JSON value (Anthropic tool inputs are objects, not strings).

    Iterative, in document order, so a deeply nested value cannot exhaust the stack.
    """
    stack: list[tuple[dict[str, Any] | list[Any], str | int]] = [(container, key)]
    while stack:
        holder, name = stack.pop()
        value = holder[name]  # type: ignore[index]
        if isinstance(value, str):
            if value:
                out.append(TextSlot(holder, name, kind, value))
        elif isinstance(value, dict):
            stack.extend((value, child) for child in reversed(list(value)))
        elif isinstance(value, list):
            stack.extend((value, index) for index in reversed(range(len(value))))


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
