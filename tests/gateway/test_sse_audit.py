"""Event-stream parsing and masking for the audit log (pure); the chain is in test_audit.py."""

from __future__ import annotations

import random

import pytest

from aigis.gateway.audit import Span, mask_spans
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


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_any_split_of_a_stream_gives_the_same_events(newline: bytes) -> None:
    """The parser searches each byte once and keeps partial events across chunks; wherever the
    chunks are cut (inside a separator too), the events are those of the whole stream."""
    events = [
        b"event: delta" + newline + b'data: {"text": "piece ' + str(i).encode() + b'"}'
        for i in range(40)
    ]
    stream = b"".join(e + newline + newline for e in events) + b"data: [DONE]" + newline
    whole = SSEParser()
    expected = whole.feed(stream) + whole.close()
    assert len(expected) == 41
    rng = random.Random(11)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 60)))
        parser = SSEParser()
        got = []
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            got.extend(parser.feed(stream[a:b]))
        got.extend(parser.close())
        assert got == expected


def _stream_of(newline: bytes, count: int) -> tuple[bytes, list[SSEEvent]]:
    """A stream of `count` small events (with a comment and a multi-line one) and its events."""
    blocks: list[bytes] = [b": keep-alive"]
    expected: list[SSEEvent] = []
    for i in range(count):
        text = f'{{"delta": "p{i}"}}'
        if i % 7 == 3:
            blocks.append(
                b"event: delta" + newline + b"data: " + text.encode() + newline + b"data: +"
            )
            expected.append(SSEEvent("delta", text + "\n+"))
        else:
            blocks.append(b"data: " + text.encode())
            expected.append(SSEEvent(None, text))
    return b"".join(block + newline + newline for block in blocks), expected


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_a_stream_cut_at_every_byte_position_gives_the_same_events(newline: bytes) -> None:
    stream, expected = _stream_of(newline, 12)
    for cut in range(len(stream) + 1):
        parser = SSEParser()
        got = parser.feed(stream[:cut]) + parser.feed(stream[cut:]) + parser.close()
        assert got == expected, f"cut at byte {cut}"


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_many_tiny_chunks_give_the_same_events(newline: bytes, size: int) -> None:
    stream, expected = _stream_of(newline, 200)
    parser = SSEParser()
    got = [e for i in range(0, len(stream), size) for e in parser.feed(stream[i : i + size])]
    assert got + parser.close() == expected


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_many_events_in_one_chunk_are_all_found(newline: bytes) -> None:
    """One read often holds a whole answer: every boundary in it is found, in order, once."""
    stream, expected = _stream_of(newline, 500)
    parser = SSEParser()
    assert parser.feed(stream) + parser.close() == expected
