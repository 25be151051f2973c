"""Guardrails on text that arrives in chunks: streamed answers (and streamed requests).

A model streams its answer a few characters at a time, so an email address or an API key is
usually split across chunks. The scanner therefore never releases the last part of what it has
received (at least `holdback` characters, and never the middle of a word or of a value it has
found): the held tail is scanned again together with the next chunk, so a value split across
chunks is still recognised and redacted whole. Tokens stay consistent for the whole stream:
the same address is `<EMAIL_1>` in the first chunk and the last.

Once a Block finding appears, nothing more is released; the gateway ends the stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aigis.guardrails.findings import INJECTION_TYPE, Direction, Finding, GuardrailError, StreamStep
from aigis.guardrails.patterns import valid_unicode
from aigis.guardrails.redaction import Region, TokenBook, redact

if TYPE_CHECKING:
    from aigis.guardrails.pipeline import GuardrailPipeline

DEFAULT_STREAM_HOLDBACK = 128
"""Characters a stream scanner keeps back at least, so a value split across chunks is seen
whole before any of it is released (longer than any fixed-format value it recognises)."""
DEFAULT_STREAM_MAX_HOLD = 64 * 1024
"""Characters a stream scanner holds at most while waiting for a long token to end."""
STREAM_INJECTION_WINDOW = 4096
"""Characters of a request stream the injection detector looks at on each step."""

_WHITESPACE = " \t\r\n"


class StreamScanner:
    """Scans one stream. Not thread-safe: one scanner per stream, fed in order."""

    __slots__ = (
        "_blocked",
        "_book",
        "_direction",
        "_finished",
        "_injection_reported",
        "_offset",
        "_pending",
        "_pipeline",
        "_score",
        "_seen_tail",
    )

    def __init__(self, pipeline: GuardrailPipeline, direction: Direction) -> None:
        self._pipeline = pipeline
        self._direction = direction
        self._pending = ""
        self._offset = 0
        self._book = TokenBook()
        self._blocked = False
        self._finished = False
        self._score = 0.0
        self._seen_tail = ""
        self._injection_reported = False

    def feed(self, chunk: str) -> StreamStep:
        """Take the next chunk; return what can be passed on now (possibly nothing)."""
        if self._finished:
            raise RuntimeError("the stream is finished; start a new scanner for a new stream")
        if not isinstance(chunk, str):
            raise TypeError(f"chunk must be a str, not {type(chunk).__name__}")
        if self._blocked:
            return StreamStep("", True, (), self._score)
        self._pending += chunk
        return self._step(final=False)

    def finish(self) -> StreamStep:
        """The stream ended: release (redacted) whatever is still held."""
        if self._finished:
            raise RuntimeError("finish() was already called for this stream")
        self._finished = True
        if self._blocked:
            return StreamStep("", True, (), self._score)
        return self._step(final=True)

    def _step(self, *, final: bool) -> StreamStep:
        text = valid_unicode(self._pending)
        try:
            hits = self._pipeline.span_hits(text, self._direction)
            injection = self._injection_finding(text)
        except GuardrailError:
            raise
        except Exception as exc:  # a detector bug must reach the gateway as a guardrail failure
            raise GuardrailError(f"guardrail scan failed: {type(exc).__name__}: {exc}") from exc
        blocking = [h.finding for h in hits if h.finding.action == "Block"]
        if injection is not None and injection.action == "Block":
            blocking.insert(0, injection)
        if blocking:
            self._blocked = True
            self._pending = ""
            return StreamStep("", True, tuple(self._shift(f) for f in blocking), self._score)
        cut = (
            len(text)
            if final
            else self._cut(text, [(h.finding.start, h.finding.end) for h in hits])
        )
        released_hits = [h for h in hits if h.finding.end <= cut]
        regions = [
            Region(h.finding.start, h.finding.end, h.finding.type, h.priority)
            for h in released_hits
            if h.finding.action == "Redact"
        ]
        release = redact(text[:cut], regions, self._book)
        findings = [self._shift(h.finding) for h in released_hits]
        if injection is not None and not self._injection_reported:
            self._injection_reported = True
            findings.insert(0, injection)
        self._seen_tail = (self._seen_tail + text[:cut])[-STREAM_INJECTION_WINDOW:]
        self._pending = text[cut:]
        self._offset += cut
        return StreamStep(release, False, tuple(findings), self._score)

    def _cut(self, text: str, spans: list[tuple[int, int]]) -> int:
        """Where to stop releasing: `holdback` before the end, at a word boundary, never inside
        (or just before the continuation of) a value found."""
        holdback = self._pipeline.holdback
        cut = len(text) - holdback
        if cut <= 0:
            return 0
        boundary = max(text.rfind(c, 0, cut + 1) for c in _WHITESPACE)
        if boundary > 0:
            cut = boundary
        elif len(text) <= self._pipeline.max_hold:
            return 0  # one long token so far (a key, a JWT): wait for its end
        changed = True
        while changed:
            changed = False
            for start, end in spans:
                if start < cut < end or (end >= len(text) and start < cut):
                    cut = start
                    changed = True
        return max(cut, 0)

    def _injection_finding(self, text: str) -> Finding | None:
        if self._direction != "request" or not self._pipeline.injection_applies:
            return None
        window = (self._seen_tail + text)[-STREAM_INJECTION_WINDOW:]
        score, _ = self._pipeline.injection_score(window, self._direction)
        self._score = max(self._score, score)
        end = self._offset + len(text)
        return self._pipeline.injection_finding(self._score, 0, end)

    def _shift(self, finding: Finding) -> Finding:
        if finding.type == INJECTION_TYPE:
            return finding
        return Finding(
            finding.guardrail,
            finding.type,
            finding.start + self._offset,
            finding.end + self._offset,
            finding.action,
        )
