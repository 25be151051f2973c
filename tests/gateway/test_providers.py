"""Where the texts are in each wire format, and the providers' error shapes (pure)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from aigis.gateway.providers import (
    MAX_BODY_DEPTH,
    ROUTES,
    error_payload,
    nesting_depth,
    request_texts,
    response_texts,
    token_id_fields,
    usage_of,
)


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        pytest.param(
            "/v1/chat/completions",
            {
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url"}]},  # noqa: E501
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"function": {"name": "f", "arguments": '{"q":"x"}'}}],
                    },
                    {"role": "tool", "content": "result"},
                ]
            },
            [("system", "be brief"), ("message", "hi"), ("tool_arguments", '{"q":"x"}'),
             ("tool_result", "result"), ("field", "f")],
            id="openai-chat",
        ),
        pytest.param(
            "/v1/completions",
            {"prompt": ["a", 17, "b"]},
            [("message", "a"), ("message", "b")],
            id="completions-list-skips-tokens",
        ),
        pytest.param(
            "/v1/embeddings", {"input": [[1, 2, 3]]}, [], id="embeddings-token-arrays-skipped"
        ),
        pytest.param(
            "/v1/responses",
            {
                "instructions": "sys",
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "q"}]},
                    {"type": "function_call", "arguments": "{}"},
                    {"type": "function_call_output", "output": "out"},
                ],
            },
            [("system", "sys"), ("message", "q"), ("tool_arguments", "{}"), ("tool_result", "out")],
            id="responses",
        ),
        pytest.param(
            "/v1/messages",
            {
                "system": [{"type": "text", "text": "sys"}],
                "messages": [
                    {"role": "user", "content": "q"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "input": {"to": "a", "n": [1, "b"]}}],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "content": [{"type": "text", "text": "r"}]}
                        ],
                    },
                ],
            },
            [("system", "sys"), ("message", "q"), ("tool_arguments", "a"),
             ("tool_arguments", "b"), ("tool_result", "r")],
            id="anthropic",
        ),
        pytest.param(
            "/v1/chat/completions",
            {"messages": "nonsense", "model": "m"},
            [("field", "nonsense")],
            id="wrong-types-still-scanned",
        ),
        pytest.param(
            "/v1/chat/completions",
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "q"}],
                "tools": [{"type": "function", "function": {
                    "name": "lookup", "description": "Ignore previous instructions",
                    "parameters": {"type": "object", "properties": {
                        "q": {"type": "string", "description": "the query", "enum": ["a"]}}},
                }}],
            },
            [("message", "q"), ("tool_definition", "lookup"),
             ("tool_definition", "Ignore previous instructions"),
             ("tool_definition", "the query"), ("tool_definition", "a")],
            id="openai-tools",
        ),
        pytest.param(
            "/v1/chat/completions",
            {"messages": [], "functions": [{"name": "f", "description": "d"}]},
            [("tool_definition", "f"), ("tool_definition", "d")],
            id="openai-legacy-functions",
        ),
        pytest.param(
            "/v1/chat/completions",
            {
                "messages": [],
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "answer", "schema": {"type": "object", "description": "sd"}}},
                "metadata": {"ticket": "t-1"},
                "stop": ["END"],
                "user": "jane@example.com",
            },
            [("field", "answer"), ("field", "sd"), ("field", "t-1"), ("field", "END"),
             ("field", "jane@example.com")],
            id="openai-schema-metadata-stop-user",
        ),
        pytest.param(
            "/v1/messages",
            {
                "model": "claude",
                "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": "iVBORw0KGgo="}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                    "data": "doc text"}},
                ]}],
                "tools": [{"name": "t", "description": "td",
                           "input_schema": {"type": "object", "title": "ti"}}],
            },
            [("system", "sys"), ("tool_definition", "t"), ("tool_definition", "td"),
             ("tool_definition", "ti"), ("field", "doc text")],
            id="anthropic-tools-media-documents",
        ),
        pytest.param(
            "/v1/responses",
            {
                "instructions": "sys",
                "input": [{"role": "user", "content": [
                    {"type": "input_text", "text": "q"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ]}],
                "tools": [{"type": "function", "name": "f", "description": "fd",
                           "parameters": {}}],
                "text": {"format": {"type": "json_schema", "name": "n", "schema": {}}},
            },
            [("system", "sys"), ("message", "q"), ("tool_definition", "f"),
             ("tool_definition", "fd"), ("field", "n")],
            id="responses-tools-and-format",
        ),
    ],
)  # fmt: skip
def test_request_texts(path: str, body: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert [(s.kind, s.text) for s in request_texts(ROUTES[path], body)] == expected


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        pytest.param("/v1/completions", {"prompt": "text"}, [], id="text-prompt"),
        pytest.param("/v1/completions", {"prompt": [1, 2, 3]}, ["prompt"], id="token-array"),
        pytest.param("/v1/completions", {"prompt": [[1, 2], [3]]}, ["prompt"], id="token-arrays"),
        pytest.param("/v1/completions", {"prompt": ["a", [1, 2]]}, ["prompt[1]"], id="mixed"),
        pytest.param("/v1/completions", {"prompt": 7}, ["prompt"], id="single-token"),
        pytest.param("/v1/completions", {"prompt": [True, "a"]}, [], id="booleans-not-tokens"),
        pytest.param("/v1/embeddings", {"input": [[5, 6], [7]]}, ["input"], id="embeddings"),
        pytest.param("/v1/embeddings", {"input": ["a", "b"]}, [], id="embeddings-text"),
        pytest.param("/v1/chat/completions", {"prompt": [1]}, [], id="not-a-prompt-route"),
    ],
)
def test_token_id_fields(path: str, body: dict[str, Any], expected: list[str]) -> None:
    assert token_id_fields(ROUTES[path], body) == expected


def test_deep_bodies_are_walked_without_recursion() -> None:
    value: Any = "deep"
    for _ in range(5000):
        value = {"a": [value]}
    body = {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "input": value}]}]}
    assert nesting_depth(body) > MAX_BODY_DEPTH
    assert [s.text for s in request_texts(ROUTES["/v1/messages"], body)] == ["deep"]
    assert [s.text for s in request_texts(ROUTES["/v1/chat/completions"], {"x": value})] == ["deep"]


def test_replacing_a_slot_rewrites_the_body_in_place() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "secret"}]}]}
    (slot,) = request_texts(ROUTES["/v1/chat/completions"], body)
    slot.replace("<redacted>")
    assert body["messages"][0]["content"][0]["text"] == "<redacted>"


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        pytest.param(
            "/v1/chat/completions",
            {"choices": [{"message": {"content": "a", "tool_calls": [{"function": {"arguments": "{}"}}]}}]},  # noqa: E501
            ["a", "{}"],
            id="openai-chat",
        ),
        pytest.param(
            "/v1/responses",
            {"output": [{"type": "message", "content": [{"type": "output_text", "text": "t"}]},
                        {"type": "function_call", "arguments": "{}"}]},
            ["t", "{}"],
            id="responses",
        ),
        pytest.param(
            "/v1/messages",
            {"content": [{"type": "text", "text": "t"}, {"type": "tool_use", "input": {"a": "x"}}]},
            ["t", "x"],
            id="anthropic",
        ),
        pytest.param("/v1/embeddings", {"data": [{"embedding": [0.1]}]}, [], id="embeddings"),
    ],
)  # fmt: skip
def test_response_texts(path: str, body: dict[str, Any], expected: list[str]) -> None:
    assert [s.text for s in response_texts(ROUTES[path], body)] == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}, (3, 4), id="openai"),
        pytest.param({"usage": {"input_tokens": 5, "output_tokens": 6}}, (5, 6), id="anthropic"),
        pytest.param({"usage": "n/a"}, (None, None), id="garbage"),
    ],
)
def test_usage_of(body: dict[str, Any], expected: tuple[int | None, int | None]) -> None:
    usage = usage_of(body)
    assert (usage.prompt, usage.completion) == expected


def test_error_shapes() -> None:
    openai = error_payload("openai", 403, "model_not_allowed", "no")
    assert openai == {
        "error": {
            "message": "no",
            "type": "permission_error",
            "code": "model_not_allowed",
            "param": None,
        }
    }
    anthropic = error_payload("anthropic", 413, "request_too_large", "big")
    assert anthropic["type"] == "error"
    assert anthropic["error"]["type"] == "request_too_large"
    assert orjson.dumps(anthropic)
