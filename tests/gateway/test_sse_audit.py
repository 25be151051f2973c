"""Event-stream parsing and the audit chain (pure)."""

from __future__ import annotations

import orjson
import pytest

from aigis.gateway.audit import GENESIS, AuditChain, Span, mask_spans, verify_audit_chain
from aigis.gateway.sse import MalformedStreamError, SSEEvent, SSEParser, format_event


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        pytest.param([b"data: a\n\n"], [SSEEvent(None, "a")], id="one-event"),
        pytest.param(
            [b"event: x\nda", b"ta: 1\n", b"\nevent: y\ndata: 2\n\n"],
            [SSEEvent("x", "1"), SSEEvent("y", "2")],
            id="split-anywhere",
        ),
        pytest.param([b"data: a\r\n\r\n"], [SSEEvent(None, "a")], id="crlf"),
        pytest.param([b"data: a\ndata: b\n\n"], [SSEEvent(None, "a\nb")], id="multi-line-data"),
        pytest.param([b": keep-alive\n\n", b"data: x\n\n"], [SSEEvent(None, "x")], id="comment"),
        pytest.param([b"id: 7\nretry: 10\ndata: x\n\n"], [SSEEvent(None, "x")], id="id-retry"),
        pytest.param([b"data: tail"], [SSEEvent(None, "tail")], id="unterminated-last-event"),
    ],
)
def test_sse_parser(pieces: list[bytes], expected: list[SSEEvent]) -> None:
    parser = SSEParser()
    events = [event for piece in pieces for event in parser.feed(piece)]
    assert events + parser.close() == expected


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"data: \xff\xfe\n\n", id="not-utf8"),
        pytest.param(b"just some words\n\n", id="no-field-name"),
        pytest.param(b"bogus: 1\n\n", id="unknown-field"),
        pytest.param(b"data: " + b"x" * 2000, id="event-too-large"),
    ],
)
def test_sse_parser_refuses_malformed_streams(stream: bytes) -> None:
    parser = SSEParser(max_event_bytes=1024)

    def parse_all() -> list[SSEEvent]:
        return parser.feed(stream) + parser.close()

    with pytest.raises(MalformedStreamError):
        parse_all()


def test_format_event_round_trips() -> None:
    raw = format_event("line1\nline2", "message_delta")
    assert SSEParser().feed(raw) == [SSEEvent("message_delta", "line1\nline2")]


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        pytest.param([], "mail a@b.io now", id="nothing"),
        pytest.param([Span(5, 11, "EMAIL")], "mail [EMAIL] now", id="one"),
        pytest.param([Span(5, 11, "EMAIL"), Span(7, 15, "X")], "mail [EMAIL]", id="overlap-merged"),
        pytest.param([Span(12, 15, "A"), Span(0, 4, "B")], "[B] a@b.io [A]", id="unordered"),
    ],
)
def test_mask_spans(spans: list[Span], expected: str) -> None:
    assert mask_spans("mail a@b.io now", spans) == expected


def test_chain_detects_edit_removal_and_reordering() -> None:
    chain = AuditChain()
    lines = [chain.seal({"n": n}) for n in range(4)]
    assert orjson.loads(lines[0])["prev_sha256"] == GENESIS
    assert verify_audit_chain(lines) == []
    edited = [*lines]
    edited[1] = lines[1].replace(b'"n":1', b'"n":9')
    assert [p.line for p in verify_audit_chain(edited)] == [3]
    assert [p.line for p in verify_audit_chain([lines[0], lines[2], lines[3]])] == [2]
    assert [p.line for p in verify_audit_chain([lines[1], lines[0], *lines[2:]])] == [1, 2, 3]
    assert [p.line for p in verify_audit_chain([b"garbage", *lines[1:]])] == [1, 2]


def test_chain_verifies_a_later_segment_from_its_anchor() -> None:
    import hashlib

    chain = AuditChain()
    lines = [chain.seal({"n": n}) for n in range(3)]
    anchor = hashlib.sha256(lines[0].rstrip(b"\n")).hexdigest()
    assert verify_audit_chain(lines[1:], first_previous=anchor) == []
    assert verify_audit_chain(lines[1:]) != []
