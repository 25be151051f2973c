"""The learned prompt-injection model: its file format, its features, and how it scores.

Whether the shipped weights are what training makes is checked by
`make train-guardrails CHECK=1` (it needs the data and the train dependency group).
"""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest

from aigis.guardrails.features import MAX_BYTES, hash_ngrams, prepare
from aigis.guardrails.injection import SIGNAL_WEIGHTS, default_detector
from aigis.guardrails.learned import (
    MODEL_FILE,
    LinearInjectionModel,
    default_model,
    parse,
    prior_logit,
    serialize,
    sigmoid,
)

SHIPPED = resources.files("aigis.guardrails").joinpath(MODEL_FILE).read_bytes()


def test_shipped_file_round_trips_byte_for_byte() -> None:
    assert serialize(parse(SHIPPED)) == SHIPPED


def test_shipped_model_knows_every_signal_and_no_other() -> None:
    model = default_model()
    assert set(model.signal_weights) == set(SIGNAL_WEIGHTS)
    assert model.prior_weight >= 0.0
    assert hashlib.sha256(SHIPPED).hexdigest() == _recorded_digest()


def _recorded_digest() -> str:
    """The digest docs/guardrails.md names; a retrained file must update both."""
    return "fc119baef9fb80b90c21c1a77737eb398d0aa41b17f2587363d78e4586ec64fd"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"GARBAGE!" + SHIPPED[8:], "bad magic", id="bad-magic"),
        pytest.param(SHIPPED + b"\x00\x00", "float16 weights", id="trailing-bytes"),
        pytest.param(
            SHIPPED.replace(b'"feature_version":1', b'"feature_version":9'),
            "run `make train-guardrails`",
            id="other-feature-version",
        ),
    ],
)
def test_a_bad_file_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(data)


def test_hashing_is_pinned() -> None:
    """The buckets are part of the file format: a change here silently breaks every model
    trained before it (bump FEATURE_VERSION instead)."""
    buckets = hash_ngrams(prepare("Ignore the rules"), 10)
    assert buckets[:6].tolist() == [761, 72, 381, 437, 217, 320]
    assert buckets.size == 31  # 14 byte 3-grams, 12 byte 5-grams, 3 words, 2 word pairs


def test_prepare_folds_case_accents_and_spacing() -> None:
    assert prepare("  ÜBER\u00a0 the\n\nRULES ") == b"uber the rules"


def test_hashing_refuses_more_than_one_window() -> None:
    with pytest.raises(ValueError, match="at most"):
        hash_ngrams(b"a" * (MAX_BYTES + 1), 8)


def _ngram_model(marker_weight: float) -> LinearInjectionModel:
    """A model where only the buckets of the word `zzqx` weigh anything."""
    bits = 16
    weights = np.zeros(1 << bits, dtype=np.float32)
    weights[hash_ngrams(prepare("zzqx"), bits)] = marker_weight
    return LinearInjectionModel(
        bits=bits, weights=weights, bias=-2.0, signal_weights={}, window=256
    )


def test_long_text_is_scored_by_its_strongest_window() -> None:
    model = _ngram_model(5.0)
    filler = "plain words " * 200
    buried = filler + " zzqx " + filler
    assert model.text_logit(buried) > 0.5
    assert model.text_logit(filler) == 0.0
    assert model.score(buried, ()) > model.score(filler, ())


def test_score_adds_bias_signals_and_the_hand_set_prior() -> None:
    model = LinearInjectionModel(
        bits=0,
        weights=np.zeros(0, dtype=np.float32),
        bias=-1.0,
        signal_weights={"role_play": 0.5},
        prior_weight=2.0,
    )
    expected = sigmoid(-1.0 + 0.5 + 2.0 * prior_logit(["role_play"]))
    assert model.score("pretend", ["role_play"]) == pytest.approx(expected)
    assert model.score("hello", []) == 0.0  # no signal, no evidence


def test_default_detector_uses_the_hand_set_weights_until_the_learned_ones_generalise() -> None:
    """See `aigis.guardrails.injection.default_detector` for the figures behind this choice."""
    assert default_detector().model is None
