"""RE2 building blocks shared by every detector: options, word boundaries, and pattern sets.

Every pattern the engine runs is RE2, so matching is linear in the text whatever the pattern or
the input (no catastrophic backtracking). A detector with many patterns compiles them into one
`re2.Set`, which answers "which patterns occur" in a single pass over the text; only the few
patterns that occur are then run again to find where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import re2

# Sets with many alternations need more than RE2's default 8 MiB for their DFA, or RE2 would
# give up on long texts; this bounds the memory one compiled set may use.
SET_MAX_MEM = 64 << 20


def re2_options(*, case_sensitive: bool = True) -> re2.Options:
    """RE2 options with error logging off (RE2 would otherwise write to stderr)."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    options.max_mem = SET_MAX_MEM
    return options


def compile_re2(pattern: str) -> re2._Regexp:
    """Compile one RE2 pattern, raising `re2.error` with RE2's reason when it is not valid."""
    return re2.compile(pattern, options=re2_options())


def compile_set(patterns: Sequence[str]) -> re2.Set:
    """Compile patterns into one unanchored RE2 set: `Match` returns the indices that occur."""
    pattern_set = re2.Set.SearchSet(re2_options())
    for pattern in patterns:
        pattern_set.Add(pattern)
    pattern_set.Compile()
    return pattern_set


@dataclass(frozen=True, slots=True)
class Recognizer:
    """One kind of value a detector recognises, e.g. an email address or a GitHub token.

    `group` names the capture group whose span is the value (0: the whole match), so context
    such as `aws_secret_access_key=` can be required without being redacted. `check` judges
    what a pattern cannot (checksums, number ranges, lengths that depend on a country code): it
    gets the candidate and returns the span of the value inside it, or None to reject it.
    `priority` decides between overlapping recognisers: the higher one wins (a specific token
    format over a generic assignment).
    """

    type: str
    pattern: str
    group: int = 0
    check: Callable[[str], tuple[int, int] | None] | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Span:
    """Where a recogniser found a value."""

    recognizer: Recognizer
    start: int
    end: int


class RecognizerSet:
    """Many recognisers compiled once: one RE2 set pass, then only the patterns that hit."""

    __slots__ = ("_compiled", "_recognizers", "_set")

    def __init__(self, recognizers: Sequence[Recognizer]) -> None:
        self._recognizers = tuple(recognizers)
        self._compiled = tuple(compile_re2(r.pattern) for r in self._recognizers)
        self._set = compile_set([r.pattern for r in self._recognizers]) if recognizers else None

    @property
    def recognizers(self) -> tuple[Recognizer, ...]:
        """The recognisers, in the order given."""
        return self._recognizers

    def find(self, text: str) -> Iterator[Span]:
        """Every validated value in `text`, recogniser by recogniser."""
        if self._set is None:
            return
        # Match on the UTF-8 bytes, encoded once: handing RE2's wrapper a str makes it encode
        # and re-map offsets on every call. Byte offsets are character offsets in ASCII text.
        data = text.encode("utf-8")
        to_chars = _identity if len(data) == len(text) else _CharOffsets(data)
        for index in sorted(self._set.Match(data) or ()):
            recognizer = self._recognizers[index]
            for match in self._compiled[index].finditer(data):
                byte_start, byte_end = match.span(recognizer.group)
                if byte_start < 0 or byte_start == byte_end:
                    continue
                start, end = to_chars(byte_start), to_chars(byte_end)
                if recognizer.check is not None:
                    inner = recognizer.check(text[start:end])
                    if inner is None:
                        continue
                    start, end = start + inner[0], start + inner[1]
                yield Span(recognizer, start, end)


def _identity(offset: int) -> int:
    return offset


class _CharOffsets:
    """Byte offset -> character offset in one UTF-8 text (only built when it has non-ASCII)."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __call__(self, offset: int) -> int:
        return len(self._data[:offset].decode("utf-8", errors="ignore"))


def whole(predicate: Callable[[str], bool]) -> Callable[[str], tuple[int, int] | None]:
    """A `Recognizer.check` that keeps the whole candidate when `predicate` holds."""

    def check(candidate: str) -> tuple[int, int] | None:
        return (0, len(candidate)) if predicate(candidate) else None

    return check


def valid_unicode(text: str) -> str:
    """`text` with lone surrogates (possible in decoded JSON) replaced by U+FFFD, one for one,
    so offsets stay valid and RE2 gets valid UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text
