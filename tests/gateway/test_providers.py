"""Where the texts are in each wire format, and the providers' error shapes (pure)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from aigis.gateway.providers import (
    ROUTES,
    error_payload,
    request_texts,
    response_texts,
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
             ("tool_result", "result")],
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
        pytest.param("/v1/chat/completions", {"messages": "nonsense"}, [], id="wrong-types"),
    ],
)  # fmt: skip
def test_request_texts(path: str, body: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert [(s.kind, s.text) for s in request_texts(ROUTES[path], body)] == expected


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
