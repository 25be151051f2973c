"""Training and honest evaluation of the learned prompt-injection model (build time only).

Used by `hack/train_guardrails.py` (`make train-guardrails`) and `bench/guardrails_loso.py`
(`make bench`); the gateway never imports it. scikit-learn and scipy (the `train` dependency
group) are imported inside the functions that need them.

Reproducible by construction: rows are de-duplicated and sorted by SHA-256 of their text, the
solver is liblinear (single-threaded, deterministic for a fixed random_state), the weights are
stored as float16 and every float in the header is rounded, so the same data and pinned versions
give the same file, byte for byte.

The operating point is chosen on held-out data: every row is scored by a model trained without
its source (leave-one-source-out), and the shipped model's bias is shifted so that 0.5 is the
score at which at most `TARGET_FPR` of held-out benign prompts and at most `TARGET_ROLE_PLAY_FPR`
of held-out benign role-play prompts are flagged.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aigis.guardrails.features import MAX_BYTES, hash_ngrams, prepare
from aigis.guardrails.injection import SIGNAL_WEIGHTS, InjectionDetector
from aigis.guardrails.learned import LinearInjectionModel, prior_logit

NGRAM_BITS = 0
"""Hashed n-gram buckets of the shipped model, as a power of two; 0 for none. Leave-one-
source-out (bench/guardrails_loso.py) showed n-grams (2**18 buckets, byte 3/5-grams, word 1/2-
grams, any of four normalisations and C from 0.03 to 4) learn each source's style: pooled recall
at 5 % FPR fell from 0.32 with the signals alone to 0.23-0.31, and the worst source's false
positives rose from 8 % to 12-23 %. So the shipped model weighs the signals only; the n-gram
code stays for the benchmark and for the next attempt."""
NGRAM_BENCH_BITS = 18
C = 1.0
SEED = 0
TARGET_FPR = 0.02
TARGET_ROLE_PLAY_FPR = 0.05

ROLE_PLAY = re.compile(
    r"(?i)\b(?:act(?:ing)? (?:as|like)|you are now|you're now|pretend(?:ing)? (?:to be|you|that)|"
    r"role[- ]?play|imagine (?:you are|you're|that you)|play the (?:role|part)|"
    r"take on the role|assume the role|in the role of|from now on,? you)\b"
)
"""The documented rule for a role-play prompt: a benign row matching this is counted in the
role-play false-positive rate (act as, you are now, pretend, role-play, imagine you are, ...)."""


@dataclass(frozen=True, slots=True)
class Row:
    text: str
    attack: bool
    source: str
    """The repository the row comes from (`owner/name`), the unit left out in evaluation."""


def load_rows(paths: Iterable[Path]) -> list[Row]:
    """Labelled rows of the JSONL files, de-duplicated by text, sorted by its SHA-256."""
    by_digest: dict[str, Row] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            record = json.loads(line)
            text = record["text"]
            digest = hashlib.sha256(text.encode()).hexdigest()
            source = record["source"].split(":", 1)[0]
            by_digest.setdefault(digest, Row(text, record["label"] == "injection", source))
    return [by_digest[d] for d in sorted(by_digest)]


def is_role_play(row: Row) -> bool:
    return not row.attack and ROLE_PLAY.search(row.text) is not None


def signal_names() -> list[str]:
    """The signal columns, after the n-gram buckets; the last column is the hand-set prior."""
    return sorted(SIGNAL_WEIGHTS)


def featurize(rows: Sequence[Row], bits: int = NGRAM_BITS) -> Any:
    """A CSR matrix: n-gram bucket counts over sqrt(total), then one 0/1 column per signal."""
    from scipy.sparse import csr_matrix

    detector = InjectionDetector()
    names = signal_names()
    width = (1 << bits) if bits else 0
    column = {name: width + i for i, name in enumerate(names)}
    prior_column = width + len(names)
    indptr = [0]
    indices: list[npt.NDArray[np.int64]] = []
    values: list[npt.NDArray[np.float64]] = []
    for row in rows:
        if bits:
            buckets = hash_ngrams(prepare(row.text)[:MAX_BYTES], bits)
        else:
            buckets = np.zeros(0, dtype=np.uint64)
        unique, counts = np.unique(buckets.astype(np.int64), return_counts=True)
        signals = detector.assess(row.text).signals
        fired = sorted(column[s] for s in signals)
        scale = 1.0 / math.sqrt(buckets.size) if buckets.size else 0.0
        prior = prior_logit(signals)
        indices.append(np.concatenate([unique, np.asarray([*fired, prior_column], dtype=np.int64)]))
        values.append(np.concatenate([counts * scale, np.ones(len(fired)), [prior]]))
        indptr.append(indptr[-1] + unique.size + len(fired) + 1)
    return csr_matrix(
        (np.concatenate(values), np.concatenate(indices), np.asarray(indptr)),
        shape=(len(rows), width + len(names) + 1),
    )


def sample_weights(rows: Sequence[Row]) -> npt.NDArray[np.float64]:
    """Each (source, label) group weighs the square root of its size, and both labels weigh the
    same in total, so neither a large source nor the larger class dominates."""
    groups = Counter((r.source, r.attack) for r in rows)
    raw = np.array([1.0 / math.sqrt(groups[(r.source, r.attack)]) for r in rows])
    attack = np.array([r.attack for r in rows])
    raw[attack] /= raw[attack].sum()
    raw[~attack] /= raw[~attack].sum()
    return raw * len(rows) / 2


def fit(matrix: Any, rows: Sequence[Row]) -> tuple[npt.NDArray[np.float64], float]:
    """Coefficients and intercept of the logistic regression on these rows.

    The last column is the hand-set prior (`prior_logit`); each signal's own column learns a
    correction to it, so a signal the data never shows keeps its hand-set weight. The prior
    may only raise a score: should it get a negative weight it is dropped and the model
    refitted.
    """
    from sklearn.linear_model import LogisticRegression

    labels = np.array([r.attack for r in rows], dtype=np.int64)
    weights = sample_weights(rows)
    first_signal = matrix.shape[1] - 1
    kept = np.ones(matrix.shape[1], dtype=bool)
    while True:
        model = LogisticRegression(
            solver="liblinear", C=C, random_state=SEED, intercept_scaling=10.0, max_iter=1000
        )
        model.fit(matrix[:, np.flatnonzero(kept)], labels, sample_weight=weights)
        coef = np.zeros(matrix.shape[1])
        coef[kept] = model.coef_[0]
        negative = np.flatnonzero(coef[first_signal:] < 0) + first_signal
        if negative.size == 0:
            return coef, float(model.intercept_[0])
        kept[negative] = False


def out_of_source_logits(matrix: Any, rows: Sequence[Row]) -> npt.NDArray[np.float64]:
    """Each row's logit from a model trained on every source but its own."""
    sources = np.array([r.source for r in rows])
    logits = np.zeros(len(rows))
    for source in sorted(set(sources)):
        held = sources == source
        train_index = np.flatnonzero(~held)
        coef, intercept = fit(matrix[train_index], [rows[int(i)] for i in train_index])
        logits[held] = matrix[np.flatnonzero(held)] @ coef + intercept
    return logits


def threshold_at(benign_logits: npt.NDArray[np.float64], fpr: float) -> float:
    """The smallest logit that flags at most `fpr` of these benign rows."""
    if benign_logits.size == 0:
        return math.inf
    ordered = np.sort(benign_logits)[::-1]
    allowed = math.floor(fpr * ordered.size)
    return float(np.nextafter(ordered[allowed], math.inf)) if allowed < ordered.size else -math.inf


def operating_point(logits: npt.NDArray[np.float64], rows: Sequence[Row]) -> float:
    """The held-out logit above which a text is flagged (see the module docstring)."""
    benign = np.array([not r.attack for r in rows])
    role_play = np.array([is_role_play(r) for r in rows])
    return max(
        threshold_at(logits[benign], TARGET_FPR),
        threshold_at(logits[role_play], TARGET_ROLE_PLAY_FPR),
    )


def train(rows: Sequence[Row], facts: dict[str, Any]) -> LinearInjectionModel:
    """The shippable model: fitted on all rows, bias shifted to the held-out operating point."""
    matrix = featurize(rows)
    point = operating_point(out_of_source_logits(matrix, rows), rows)
    coef, intercept = fit(matrix, rows)
    size = (1 << NGRAM_BITS) if NGRAM_BITS else 0
    names = signal_names()
    signals = {name: float(coef[size + i]) for i, name in enumerate(names)}
    return LinearInjectionModel(
        bits=NGRAM_BITS,
        prior_weight=float(coef[size + len(names)]),
        weights=coef[:size].astype(np.float16).astype(np.float32),
        bias=intercept - point,
        signal_weights=signals,
        facts={**facts, "rows": len(rows), "held_out_threshold_logit": round(point, 5)},
    )
