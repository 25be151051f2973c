"""The optional ONNX classifier, run for real on a tiny model and tokenizer built here
(tests/support/onnx_model.py: an embedding bag whose scores can be computed by hand)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
tokenizers = pytest.importorskip("tokenizers")

from tests.support.onnx_model import (  # noqa: E402
    VOCAB,
    build_classifier_dir,
    expected_score,
)

from aigis.api.aiworkload import Guardrails  # noqa: E402
from aigis.guardrails import GuardrailError, GuardrailPipeline, InjectionClassifier  # noqa: E402
from aigis.guardrails.onnx_classifier import (  # noqa: E402
    ClassifierError,
    OnnxInjectionClassifier,
    load_classifier,
)


def expected(tokens: int, attacks: int) -> float:
    del tokens
    return expected_score(attacks)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_classifier_dir(tmp_path_factory.mktemp("classifier"))


def classifier(folder: Path, **options: Any) -> OnnxInjectionClassifier:
    return OnnxInjectionClassifier(folder, name="tiny", **options)


def test_loads_and_scores_like_the_hand_computed_model(model_dir: Path) -> None:
    model = classifier(model_dir)
    assert isinstance(model, InjectionClassifier)
    assert model.score("hello world") == pytest.approx(expected(2, 0), rel=1e-5)
    assert model.score("please attack") == pytest.approx(expected(2, 1), rel=1e-5)
    assert model.score("attack attack world") == pytest.approx(expected(3, 2), rel=1e-5)


def test_padding_in_a_batch_does_not_change_a_score(model_dir: Path) -> None:
    """Windows of different lengths share a batch; the mask keeps padding out of the sum."""
    one_by_one = classifier(model_dir, max_tokens=4, stride=4, batch_size=1)
    batched = classifier(model_dir, max_tokens=4, stride=4, batch_size=3)
    text = "hello world hello world hello world hello world attack attack world"
    assert len(batched.windows(text)) == 3
    assert batched.score(text) == pytest.approx(one_by_one.score(text), rel=1e-6)
    assert batched.score(text) == pytest.approx(expected(4, 2), rel=1e-5)


def test_long_prompt_is_scored_in_sliding_windows_not_truncated(model_dir: Path) -> None:
    model = classifier(model_dir, max_tokens=8, stride=4, batch_size=2)
    text = " ".join(["hello"] * 50 + ["attack"])
    windows = model.windows(text)
    assert all(len(w) <= 8 for w in windows)
    assert windows[-1][-1] == VOCAB["attack"]  # the end of the prompt is in a window
    assert model.score(text) == pytest.approx(expected(8, 1), rel=1e-5)


def test_overlapping_windows_cover_every_token(model_dir: Path) -> None:
    model = classifier(model_dir, max_tokens=5, stride=3)
    text = " ".join(f"{'hello' if i % 2 else 'world'}" for i in range(17))
    covered = sum(len(w) for w in model.windows(text))
    assert covered >= 17
    assert len(model.windows("hello world")) == 1


def test_pipeline_takes_the_classifier_score_when_it_is_higher(model_dir: Path) -> None:
    pipeline = GuardrailPipeline.from_spec(Guardrails(), classifier=classifier(model_dir))
    result = pipeline.scan("attack attack attack", direction="request")
    assert result.blocked
    assert "classifier:tiny" in result.injection_signals


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        pytest.param("model.onnx", "model.onnx not found", id="missing-model"),
        pytest.param("tokenizer.json", "tokenizer.json not found", id="missing-tokenizer"),
    ],
)
def test_missing_files_are_named(
    model_dir: Path, tmp_path: Path, missing: str, message: str
) -> None:
    for name in ("model.onnx", "tokenizer.json"):
        if name != missing:
            (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    with pytest.raises(ClassifierError, match=message):
        classifier(tmp_path)


def test_a_corrupt_model_is_refused_at_load(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not a protobuf")
    (tmp_path / "tokenizer.json").write_bytes((model_dir / "tokenizer.json").read_bytes())
    with pytest.raises(ClassifierError, match="not a usable ONNX model"):
        classifier(tmp_path)


class _BlockedSession:
    """Stands in for the ONNX session and waits until the test lets it go."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def run(self, *_: object) -> list[Any]:
        self.release.wait()
        return [[[0.9]]]


def test_a_missed_deadline_is_a_guardrail_error_for_the_failure_mode(model_dir: Path) -> None:
    model = classifier(model_dir, timeout=0.05)
    release = threading.Event()
    model._session = _BlockedSession(release)  # type: ignore[assignment]
    pipeline = GuardrailPipeline.from_spec(Guardrails(), classifier=model)
    try:
        with pytest.raises(GuardrailError, match="no answer within"):
            pipeline.scan("hello world", direction="request")
    finally:
        release.set()
        model.close()


def test_async_scoring_keeps_the_deadline(model_dir: Path) -> None:
    model = classifier(model_dir, timeout=0.05)
    release = threading.Event()
    model._session = _BlockedSession(release)  # type: ignore[assignment]
    try:
        with pytest.raises(ClassifierError, match="no answer within"):
            asyncio.run(model.score_async("hello"))
    finally:
        release.set()
        model.close()
    fresh = classifier(model_dir)
    assert asyncio.run(fresh.score_async("attack")) == pytest.approx(expected(1, 1), rel=1e-5)


def test_a_model_with_the_wrong_output_shape_fails_the_scan(model_dir: Path) -> None:
    model = classifier(model_dir)

    class _ThreeOutputs:
        def run(self, *_: object) -> list[Any]:
            return [[[0.1, 0.2, 0.3]]]

    model._session = _ThreeOutputs()  # type: ignore[assignment]
    pipeline = GuardrailPipeline.from_spec(Guardrails(), classifier=model)
    with pytest.raises(GuardrailError, match="expected 1 or 2"):
        pipeline.scan("hello", direction="request")


def test_a_workload_names_the_mounted_classifier(model_dir: Path) -> None:
    guardrails = Guardrails.model_validate(
        {"promptInjection": {"classifier": {"path": str(model_dir), "maxTokens": 8}}}
    )
    ref = guardrails.prompt_injection.classifier
    assert ref is not None
    model = load_classifier(ref, name="mounted")
    assert (model.max_tokens, model.stride, model.timeout) == (8, 4, 0.2)
    assert model.score("attack") == pytest.approx(expected(1, 1), rel=1e-5)


def test_a_relative_classifier_path_is_refused() -> None:
    with pytest.raises(ValueError, match="path"):
        Guardrails.model_validate({"promptInjection": {"classifier": {"path": "models/x"}}})
