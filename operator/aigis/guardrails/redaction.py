"""Replacing found values with stable tokens, so redacted text stays usable.

A model that reads "write to <EMAIL_1>, cc <EMAIL_2>, and again <EMAIL_1>" still understands
the message; the same value gets the same token within one scan or one stream (a `TokenBook`),
and different values get different numbers. Overlapping findings (a phone-like run inside an
IBAN, a password inside a connection string) are merged into one region named after the most
specific finding, so no fragment of a value is left behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Region:
    """A stretch of text to replace, the type its token is named for, and how sure that is."""

    start: int
    end: int
    type: str
    priority: int


class TokenBook:
    """Hands out `<TYPE_n>` tokens: one per distinct (type, value), numbered per type."""

    __slots__ = ("_counts", "_tokens")

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def token(self, type_: str, value: str) -> str:
        """The token for `value` of `type_`, the same one every time it is asked again."""
        key = (type_, value)
        token = self._tokens.get(key)
        if token is None:
            label = type_.upper().replace("-", "_")
            count = self._counts.get(label, 0) + 1
            self._counts[label] = count
            token = f"<{label}_{count}>"
            self._tokens[key] = token
        return token


def merge_regions(regions: Sequence[Region]) -> list[Region]:
    """Overlapping regions merged into one, named after the highest-priority (then longest) one."""
    ordered = sorted(regions, key=lambda r: (r.start, -r.end))
    merged: list[Region] = []
    for region in ordered:
        if merged and region.start < merged[-1].end:
            last = merged[-1]
            winner = max(last, region, key=lambda r: (r.priority, r.end - r.start))
            merged[-1] = Region(last.start, max(last.end, region.end), winner.type, winner.priority)
        else:
            merged.append(region)
    return merged


def redact(text: str, regions: Sequence[Region], book: TokenBook) -> str:
    """`text` with each (merged) region replaced by its token; `text` itself when none."""
    if not regions:
        return text
    pieces: list[str] = []
    position = 0
    for region in merge_regions(regions):
        pieces.append(text[position : region.start])
        pieces.append(book.token(region.type, text[region.start : region.end]))
        position = region.end
    pieces.append(text[position:])
    return "".join(pieces)
