"""Hashed n-gram features of a text, the input of the learned prompt-injection model.

One definition serves training (`hack/train_guardrails.py`) and scanning, so the model sees at
run time exactly the features it was trained on. A text is normalised as the signals see it
(accents folded, look-alike characters unified, lower case, runs of white space as one space),
then cut into byte 3- and 5-grams and word 1- and 2-grams. Each n-gram is hashed with a
polynomial hash over its UTF-8 bytes, computed for all n-grams at once with numpy (prefix sums
modulo 2**64), and folded into `2**bits` buckets. No Python loop runs per character, which keeps
a 2 KB prompt in the tens of microseconds.

Pure: no I/O, no state; the same text gives the same buckets on every machine.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aigis.guardrails.injection import normalize

_BASE = np.uint64(0x100000001B3)  # odd, so it has an inverse modulo 2**64
_BASE_INVERSE = np.uint64(pow(0x100000001B3, -1, 1 << 64))
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits are well mixed
_PAIR = np.uint64(0xC2B2AE3D27D4EB4F)
_CHAR_NGRAMS = (3, 5)
_SALTS = {"char3": 0x51, "char5": 0x53, "word": 0x77, "pair": 0x79}

FEATURE_VERSION = 1
"""Bumped whenever the features change; a weights file names the version it was trained on."""

Buckets = npt.NDArray[np.uint64]


def prepare(text: str) -> bytes:
    """The normalised bytes the n-grams are taken from."""
    return " ".join(normalize(text).lower().split()).encode("utf-8", "replace")


MAX_BYTES = 8192
"""Longest text hashed at once; the model scores longer texts window by window."""


def _powers(base: np.uint64, count: int) -> npt.NDArray[np.uint64]:
    powers = np.full(count, base, dtype=np.uint64)
    powers[0] = 1
    return np.cumprod(powers, dtype=np.uint64)


_POWER = _powers(_BASE, MAX_BYTES + 1)
_INVERSE = _powers(_BASE_INVERSE, MAX_BYTES + 1)


def hash_ngrams(data: bytes, bits: int) -> Buckets:
    """Buckets (0 .. 2**bits - 1) of the byte and word n-grams of prepared `data`, with repeats."""
    size = len(data)
    if size > MAX_BYTES:
        raise ValueError(f"hash at most {MAX_BYTES} bytes at once, not {size}")
    if size == 0:
        return np.zeros(0, dtype=np.uint64)
    raw = np.frombuffer(data, dtype=np.uint8)
    values = raw.astype(np.uint64) + np.uint64(1)
    power, inverse = _POWER, _INVERSE
    prefix = np.zeros(size + 1, dtype=np.uint64)
    np.cumsum(values * power[:size], out=prefix[1:])
    shift = np.uint64(64 - bits)
    parts: list[Buckets] = []

    def span_hash(starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> Buckets:
        # (prefix[end] - prefix[start]) / BASE**start: the hash of the bytes alone, wherever
        # they stand in the text.
        return (prefix[ends] - prefix[starts]) * inverse[starts]

    def fold(hashes: Buckets, salt: str) -> Buckets:
        return ((hashes + np.uint64(_SALTS[salt])) * _MIX) >> shift

    for n in _CHAR_NGRAMS:
        if size >= n:
            starts = np.arange(size - n + 1, dtype=np.int64)
            parts.append(fold(span_hash(starts, starts + n), f"char{n}"))
    # Words: runs of letters and digits (any non-ASCII byte counts as a letter).
    letter = ((raw >= 97) & (raw <= 122)) | ((raw >= 48) & (raw <= 57)) | (raw >= 128) | (raw == 95)
    edges = np.diff(np.concatenate(([False], letter, [False])).astype(np.int8))
    word_starts = np.flatnonzero(edges == 1).astype(np.int64)
    word_ends = np.flatnonzero(edges == -1).astype(np.int64)
    if word_starts.size:
        words = span_hash(word_starts, word_ends)
        parts.append(fold(words, "word"))
        if words.size > 1:
            parts.append(fold(words[:-1] * _PAIR + words[1:], "pair"))
    return np.concatenate(parts)
