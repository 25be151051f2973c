"""The learned prompt-injection model: a logistic regression over hashed n-grams and signals.

Trained by `make train-guardrails` (`hack/train_guardrails.py`, with `aigis.guardrails.training`)
and shipped as `injection_model.bin` next to this module. Scoring is a numpy gather and sum:
the weights of the text's n-gram buckets, divided by the square root of their count, plus the
learned weight of each explainable signal that fired, plus a bias, through a sigmoid. A text
longer than one window is scored window by window (half-overlapping) and its strongest window
counts, so an instruction buried in a long document is not diluted by the document.

Whether the n-gram part is used is decided by held-out data: `bits` 0 means a model over the
signals alone (see `aigis.guardrails.training.NGRAM_BITS` for why the shipped model is one).

The bias is set so that a score of 0.5 is the operating point chosen on held-out sources (see
docs/guardrails.md); a workload that wants to be stricter lowers its threshold.

File format (little-endian): the 8 bytes `AIGISLM1`, a uint32 header length, a JSON header
(sorted keys: bits, bias, feature_version, signals, window, training facts), then 2**bits
float16 weights (none when bits is 0: a model over the signals alone).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from aigis.guardrails.features import FEATURE_VERSION, MAX_BYTES, hash_ngrams, prepare

MAGIC = b"AIGISLM1"
MODEL_FILE = "injection_model.bin"


@dataclass(frozen=True)
class LinearInjectionModel:
    """Weights of the learned detector; `score` is pure and safe to share between threads."""

    bits: int
    weights: npt.NDArray[np.float32]
    bias: float
    signal_weights: Mapping[str, float]
    """Learned correction per signal, added to `prior_weight` times the hand-set prior."""
    prior_weight: float = 0.0
    window: int = MAX_BYTES
    facts: Mapping[str, Any] = field(default_factory=dict)
    """Provenance and held-out figures recorded by the training run (for docs and `--check`)."""

    def text_logit(self, text: str) -> float:
        """The n-gram part of the logit: the strongest window of `text` (0 without n-grams)."""
        if self.bits == 0:
            return 0.0
        data = prepare(text)
        if len(data) <= self.window:
            return self._window_logit(data)
        step = self.window // 2
        starts = range(0, len(data) - step, step)
        return max(self._window_logit(data[s : s + self.window]) for s in starts)

    def _window_logit(self, data: bytes) -> float:
        buckets = hash_ngrams(data, self.bits)
        if buckets.size == 0:
            return 0.0
        return float(self.weights[buckets].sum(dtype=np.float64)) / math.sqrt(buckets.size)

    def logit(self, text: str, signals: Iterable[str]) -> float:
        """Log-odds that `text` (with these signals fired) is an injection."""
        names = tuple(signals)
        evidence = sum(self.signal_weights.get(name, 0.0) for name in names)
        prior = self.prior_weight * prior_logit(names) if names else 0.0
        return self.bias + self.text_logit(text) + evidence + prior

    def score(self, text: str, signals: Iterable[str]) -> float:
        """Probability-like score (0..1); 0.5 is the shipped operating point. A model over the
        signals alone scores 0 when no signal fired: it has no evidence then."""
        names = tuple(signals)
        if self.bits == 0 and not names:
            return 0.0
        return sigmoid(self.logit(text, names))


def prior_logit(signals: Iterable[str]) -> float:
    """The hand-set weights' noisy-or score of these signals, as a logit (clipped to +-9)."""
    from aigis.guardrails.injection import SIGNAL_WEIGHTS, combine

    score = min(max(combine(SIGNAL_WEIGHTS[name] for name in signals), 1e-4), 1 - 1e-4)
    return math.log(score / (1 - score))


def sigmoid(logit: float) -> float:
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    odds = math.exp(logit)
    return odds / (1.0 + odds)


def serialize(model: LinearInjectionModel) -> bytes:
    """The model as a byte string that is identical for identical weights (stable floats)."""
    header = {
        "bias": _stable(model.bias),
        "bits": model.bits,
        "facts": dict(model.facts),
        "feature_version": FEATURE_VERSION,
        "prior_weight": _stable(model.prior_weight),
        "signals": {name: _stable(w) for name, w in sorted(model.signal_weights.items())},
        "window": model.window,
    }
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    weights = np.asarray(model.weights, dtype="<f2").tobytes()
    return MAGIC + struct.pack("<I", len(encoded)) + encoded + weights


def parse(data: bytes) -> LinearInjectionModel:
    """A model from `serialize`'s bytes; `ValueError` says what is wrong with a bad file."""
    if data[:8] != MAGIC:
        raise ValueError("not an aigis injection model (bad magic bytes)")
    (length,) = struct.unpack("<I", data[8:12])
    header = json.loads(data[12 : 12 + length])
    if header["feature_version"] != FEATURE_VERSION:
        raise ValueError(
            f"model was trained on features v{header['feature_version']}, "
            f"this aigis computes v{FEATURE_VERSION}; run `make train-guardrails`"
        )
    bits = int(header["bits"])
    raw = data[12 + length :]
    expected = (1 << bits) if bits else 0
    if len(raw) != 2 * expected:
        raise ValueError(f"expected {expected} float16 weights, found {len(raw) // 2}")
    weights = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    return LinearInjectionModel(
        bits=bits,
        weights=weights,
        bias=float(header["bias"]),
        signal_weights={k: float(v) for k, v in header["signals"].items()},
        prior_weight=float(header.get("prior_weight", 0.0)),
        window=int(header["window"]),
        facts=header["facts"],
    )


def _stable(value: float) -> float:
    """Rounded so that the text written is the same wherever the last bits differ."""
    return round(float(value), 5)


_DEFAULT: LinearInjectionModel | None = None


def default_model() -> LinearInjectionModel:
    """The shipped model, read from the package on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = parse(resources.files(__package__).joinpath(MODEL_FILE).read_bytes())
    return _DEFAULT
