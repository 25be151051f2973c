"""Server-sent events: splitting an upstream byte stream into events, and writing events back.

The parser is incremental (bytes arrive in arbitrary pieces) and bounded: an event larger
than `max_event_bytes`, or one that is not UTF-8, raises `MalformedStreamError` instead of
growing a buffer until the gateway runs out of memory. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024


class MalformedStreamError(ValueError):
    """The upstream sent something that is not a well-formed event stream."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One event: its `event:` name (None when absent) and its `data:` lines joined by newlines."""

    name: str | None
    data: str


class SSEParser:
    """Turns stream bytes into events; call `feed` per received piece, `close` at the end."""

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()
        self._max_event_bytes = max_event_bytes
        self._scanned = 0
        """Bytes of the buffer already searched for a boundary (a boundary can straddle the
        end of the searched part by at most 3 bytes)."""
        self._crlf = False
        """Whether the stream has carried a carriage return: only then is `\r\n\r\n` looked for."""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by `chunk`, in order.

        Linear in the bytes received: each separator is searched for from where the last event
        ended, and a separator's position (or its absence) is kept until the search passes it,
        so no byte is searched twice for one separator, whatever the number of events or chunks.
        (Searching both anew after every event made a CRLF stream quadratic: `\n\n` was looked
        for to the end of the buffer each time.) Consumed events leave the buffer in one cut.
        """
        buffer = self._buffer
        buffer += chunk
        self._crlf = self._crlf or b"\r" in chunk
        events: list[SSEEvent] = []
        search = max(0, self._scanned - 3)
        lf = buffer.find(b"\n\n", search)
        crlf = buffer.find(b"\r\n\r\n", search) if self._crlf else -1
        start = 0
        while lf >= 0 or crlf >= 0:
            if crlf >= 0 and (lf < 0 or crlf < lf):
                end, after = crlf, crlf + 4
            else:
                end, after = lf, lf + 2
            event = _parse_block(bytes(buffer[start:end]))
            if event is not None:
                events.append(event)
            start = after
            if 0 <= lf < after:
                lf = buffer.find(b"\n\n", after)
            if 0 <= crlf < after:
                crlf = buffer.find(b"\r\n\r\n", after)
        if start:
            del buffer[:start]
        self._scanned = len(buffer)
        if len(buffer) > self._max_event_bytes:
            raise MalformedStreamError(
                f"an event exceeds {self._max_event_bytes} bytes without a blank line ending it"
            )
        return events

    def close(self) -> list[SSEEvent]:
        """The last event when the stream ended without its blank line; fails on a torn event."""
        rest = bytes(self._buffer).strip(b"\r\n")
        self._buffer.clear()
        self._scanned = 0
        if not rest:
            return []
        event = _parse_block(rest)
        return [event] if event is not None else []


def _parse_block(block: bytes) -> SSEEvent | None:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedStreamError(
            f"an event is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from exc
    name: str | None = None
    data: list[str] = []
    for line in text.splitlines():
        if not line or line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if not colon:
            raise MalformedStreamError(f"a line of an event has no field name: {line[:60]!r}")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field not in ("id", "retry"):
            raise MalformedStreamError(f"an event has an unknown field {field[:40]!r}")
    if not data and name is None:
        return None
    return SSEEvent(name, "\n".join(data))


def format_event(data: str | bytes, name: str | None = None) -> bytes:
    """One event on the wire; multi-line data becomes several `data:` lines."""
    raw = data if isinstance(data, bytes) else data.encode()
    head = b"event: " + name.encode() + b"\n" if name else b""
    if b"\n" not in raw:
        return head + b"data: " + raw + b"\n\n"
    return head + b"".join(b"data: " + line + b"\n" for line in raw.split(b"\n")) + b"\n"
