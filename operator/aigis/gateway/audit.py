"""The audit log: one JSON line per request on stdout, each chained to the one before.

Each line carries `prev_sha256`, the SHA-256 of the previous line's exact bytes (the first line of
a gateway process carries `GENESIS`, and `seq` restarts at 0), so deleting, reordering or editing
a line breaks the chain at the next line; `verify_audit_chain` finds where. The last line is only
as safe as the place the log is shipped to: the forensics bundle hashes and signs the whole trail.

What is written about a prompt depends on `promptLogging`: nothing (`None`), its SHA-256
(`Hash`), or the hash and a copy in which every guardrail finding is masked (`Redacted`), whatever
the finding's action, so a PII match the workload only logs is not written in the clear either.
Nothing here ever sees the raw text except to hash or mask it.

Pure: the shell passes the time and writes the bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64
"""`prev_sha256` of the first line a gateway process writes."""

MAX_FINDINGS_PER_RECORD = 32


@dataclass(frozen=True, slots=True)
class Span:
    """Where a finding matched in a text, and what to show instead."""

    start: int
    end: int
    label: str


def mask_spans(text: str, spans: Sequence[Span]) -> str:
    """`text` with each span replaced by `[LABEL]`; overlapping spans are merged."""
    if not spans:
        return text
    pieces: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        end = min(span.end, len(text))
        if span.start < cursor:
            # Overlaps the span just masked: widen that mask instead of adding a label.
            cursor = max(cursor, end)
            continue
        if end <= span.start:
            continue
        pieces.append(text[cursor : span.start])
        pieces.append(f"[{span.label}]")
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def prompt_digest(texts: Iterable[str]) -> str:
    """SHA-256 of a request's texts (messages, tool results, ... in order) joined by newlines."""
    digest = hashlib.sha256()
    for index, text in enumerate(texts):
        if index:
            digest.update(b"\n")
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class AuditChain:
    """Seals records into chained lines; one per gateway process, used from one event loop."""

    def __init__(self, previous: str = GENESIS) -> None:
        self._previous = previous
        self._seq = 0

    def seal(self, record: dict[str, Any]) -> bytes:
        """The line (with its newline) for `record`, chained to the line sealed before it."""
        line = orjson.dumps({"seq": self._seq, "prev_sha256": self._previous, **record})
        self._previous = hashlib.sha256(line).hexdigest()
        self._seq += 1
        return line + b"\n"


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """Where the chain breaks: the 1-based line number and what is wrong there."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def verify_audit_chain(
    lines: Iterable[bytes | str], *, first_previous: str = GENESIS
) -> list[ChainProblem]:
    """Every break in a sequence of audit lines; empty when the chain is intact.

    `first_previous` is what the first line must point at: `GENESIS` for a log from a process's
    start, or the hash of the line before when checking a later segment.
    """
    problems: list[ChainProblem] = []
    expected = first_previous
    for number, raw in enumerate(lines, start=1):
        line = (raw.encode() if isinstance(raw, str) else raw).rstrip(b"\r\n")
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            problems.append(ChainProblem(number, "is not JSON: the line was altered or truncated"))
            expected = hashlib.sha256(line).hexdigest()
            continue
        previous = record.get("prev_sha256") if isinstance(record, dict) else None
        if previous != expected:
            problems.append(
                ChainProblem(
                    number,
                    f"prev_sha256 is {previous!r}, expected {expected}: the line before it was "
                    "changed, removed or reordered",
                )
            )
        expected = hashlib.sha256(line).hexdigest()
    return problems
