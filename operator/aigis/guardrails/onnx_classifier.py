"""An optional transformer prompt-injection classifier: a user's ONNX model and tokenizer.

The workload names a directory (a mounted volume) holding `model.onnx` and a Hugging Face
`tokenizer.json`; nothing is ever downloaded. The model takes `input_ids` (and, if it declares
it, `attention_mask`), int64 `[batch, tokens]`, and returns per row either one probability,
one logit (when `logits` is set), or two class logits (benign, injection).

A prompt longer than `max_tokens` is cut into overlapping windows (`stride` tokens apart) and
scored in batches; the prompt's score is its strongest window, so an instruction at the end of
a long document counts. Inference runs on the classifier's own worker thread and is waited for
at most `timeout` seconds: a slow or failing model raises, and the pipeline turns that into a
`GuardrailError`, so the workload's failureMode decides. `score_async` does the same without
blocking an event loop.

onnxruntime and tokenizers are imported when a classifier is loaded, so the gateway runs
without the `onnx` extra when no workload asks for a model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aigis.api.aiworkload import InjectionModelRef

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


class ClassifierError(Exception):
    """The classifier could not be loaded, failed, or missed its deadline."""


class OnnxInjectionClassifier:
    """A loaded ONNX classifier; implements `aigis.guardrails.InjectionClassifier`."""

    def __init__(
        self,
        directory: str | Path,
        *,
        name: str | None = None,
        max_tokens: int = 512,
        stride: int = 256,
        batch_size: int = 8,
        timeout: float = 0.5,
        logits: bool = False,
    ) -> None:
        if max_tokens < 2 or not 1 <= stride <= max_tokens or batch_size < 1 or timeout <= 0:
            raise ValueError(
                "need max_tokens >= 2, 1 <= stride <= max_tokens, batch_size >= 1, timeout > 0"
            )
        folder = Path(directory)
        model_path, tokenizer_path = folder / MODEL_FILE, folder / TOKENIZER_FILE
        for path in (model_path, tokenizer_path):
            if not path.is_file():
                raise ClassifierError(
                    f"{path} not found: mount a directory holding {MODEL_FILE} and "
                    f"{TOKENIZER_FILE} at {folder}"
                )
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ClassifierError(
                "the ONNX classifier needs onnxruntime and tokenizers: install aigis[onnx]"
            ) from exc
        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises plain Exception on a bad file
            raise ClassifierError(f"{tokenizer_path} is not a tokenizer.json: {exc}") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                str(model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ClassifierError(f"{model_path} is not a usable ONNX model: {exc}") from exc
        inputs = {i.name for i in self._session.get_inputs()}
        if "input_ids" not in inputs:
            raise ClassifierError(f"{model_path} has no input named input_ids (it has {inputs})")
        self._with_mask = "attention_mask" in inputs
        self.name = name or folder.name
        self.max_tokens = max_tokens
        self.stride = stride
        self.batch_size = batch_size
        self.timeout = timeout
        self._logits = logits
        self._pad = self._tokenizer.token_to_id("[PAD]") or 0
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"onnx-{self.name}"
        )

    def windows(self, text: str) -> list[list[int]]:
        """Token ids of `text`, cut into windows of at most `max_tokens`, `stride` apart."""
        ids: list[int] = self._tokenizer.encode(text).ids
        if len(ids) <= self.max_tokens:
            return [ids]
        starts = range(0, len(ids) - self.max_tokens + self.stride, self.stride)
        return [ids[s : s + self.max_tokens] for s in starts]

    def score(self, text: str) -> float:
        """The injection probability of `text`; raises `ClassifierError` after `timeout`."""
        future = self._worker.submit(self.score_now, text)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise ClassifierError(f"no answer within {self.timeout:g} s") from exc

    async def score_async(self, text: str) -> float:
        """`score` for an event loop: the loop keeps serving while the model runs."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._worker, self.score_now, text), self.timeout
            )
        except TimeoutError as exc:
            raise ClassifierError(f"no answer within {self.timeout:g} s") from exc

    def score_now(self, text: str) -> float:
        """The score computed on the calling thread, without a deadline."""
        windows = self.windows(text)
        best = 0.0
        for first in range(0, len(windows), self.batch_size):
            best = max(best, max(self._run(windows[first : first + self.batch_size])))
        return best

    def _run(self, batch: Sequence[Sequence[int]]) -> list[float]:
        width = max(1, max(len(w) for w in batch))
        ids = np.full((len(batch), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, window in enumerate(batch):
            ids[row, : len(window)] = window
            mask[row, : len(window)] = 1
        feed: dict[str, npt.NDArray[np.int64]] = {"input_ids": ids}
        if self._with_mask:
            feed["attention_mask"] = mask
        outputs: list[Any] = self._session.run(None, feed)
        return [self._probability(row) for row in np.asarray(outputs[0], dtype=np.float64)]

    def _probability(self, row: Any) -> float:
        values = np.atleast_1d(row).ravel()
        if values.size == 2:  # (benign, injection) logits
            shifted = np.exp(values - values.max())
            return float(shifted[1] / shifted.sum())
        if values.size != 1:
            raise ClassifierError(f"model output has {values.size} values per row; expected 1 or 2")
        value = float(values[0])
        return 1.0 / (1.0 + math.exp(-value)) if self._logits else value

    def close(self) -> None:
        """Stop the worker thread (a running inference finishes first)."""
        self._worker.shutdown(wait=False, cancel_futures=True)


def load_classifier(ref: InjectionModelRef, *, name: str | None = None) -> OnnxInjectionClassifier:
    """The classifier a workload's `promptInjection.classifier` names, loaded from its mount."""
    return OnnxInjectionClassifier(
        ref.path,
        name=name,
        max_tokens=ref.max_tokens,
        stride=max(1, ref.max_tokens // 2),
        timeout=ref.timeout_ms / 1000,
    )
