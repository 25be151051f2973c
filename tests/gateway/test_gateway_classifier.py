"""The gateway with a workload's ONNX prompt-injection classifier and its data regions.

The classifier is the tiny embedding-bag model of tests/support/onnx_model.py, run for real by
onnxruntime inside the gateway: the word `attack` is all it reacts to, and the built-in signals
never flag "please attack attack", so a block proves the gateway consulted the model.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

from tests.gateway.fake_guardrails import FakePipeline, FakeScanResult
from tests.gateway.harness import make_config, run, running_gateway
from tests.gateway.test_reload import refused_count
from tests.support.onnx_model import build_classifier_dir

from aigis.api.aiworkload import Guardrails, InjectionModelRef, PromptInjectionGuard
from aigis.gateway.config import GatewayConfig
from aigis.gateway.server import GatewayConfigError
from aigis.gateway.state import default_pipeline_factory

CHAT = "/v1/chat/completions"
MODEL_ATTACK = "please attack attack"


def chat(text: str) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


def with_classifier(path: Path, **guard: Any) -> Guardrails:
    return Guardrails(
        prompt_injection=PromptInjectionGuard(
            classifier=InjectionModelRef(path=str(path), timeout_ms=5000), **guard
        )
    )


def test_the_workloads_classifier_blocks_what_the_signals_miss(tmp_path: Path) -> None:
    models = build_classifier_dir(tmp_path / "model")

    async def scenario() -> None:
        async with running_gateway(tmp_path, guardrails=with_classifier(models)) as h:
            status, body = await h.post(CHAT, chat(MODEL_ATTACK))
            assert (status, body["error"]["code"]) == (400, "prompt_injection_blocked")
            assert h.provider.received == []
            record = h.audit_records()[-1]
            assert record["decision"] == "blocked"
            status, _ = await h.post(CHAT, chat("hello world"))
            assert status == 200
            assert len(h.provider.received) == 1

    run(scenario())


def test_without_the_classifier_the_same_prompt_passes(tmp_path: Path) -> None:
    """The control for the test above: the built-in detector alone lets it through."""

    async def scenario() -> None:
        async with running_gateway(tmp_path) as h:
            status, _ = await h.post(CHAT, chat(MODEL_ATTACK))
            assert status == 200

    run(scenario())


def test_a_classifier_that_cannot_be_loaded_names_the_field_and_the_mount(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_gateway(tmp_path, guardrails=with_classifier(tmp_path / "not-mounted")):
            pass

    with pytest.raises(GatewayConfigError) as raised:
        run(scenario())
    message = str(raised.value)
    assert "promptInjection.classifier" in message
    assert "not-mounted/model.onnx not found" in message


def test_a_reload_to_an_unloadable_classifier_keeps_the_working_one(tmp_path: Path) -> None:
    models = build_classifier_dir(tmp_path / "model")

    async def scenario() -> None:
        async with running_gateway(tmp_path, guardrails=with_classifier(models)) as h:
            before = refused_count(h)
            h.write_config(
                make_config(
                    h.provider.port, h.key_dir, guardrails=with_classifier(tmp_path / "gone")
                )
            )
            for _ in range(400):  # the watcher polls every 50 ms
                if refused_count(h) > before:
                    break
                await asyncio.sleep(0.05)
            assert refused_count(h) > before
            status, body = await h.post(CHAT, chat(MODEL_ATTACK))
            assert (status, body["error"]["code"]) == (400, "prompt_injection_blocked")

    run(scenario())


class _WaitingPipeline(FakePipeline):
    """Scans a request only after the test says so, as a slow model would make it wait."""

    def __init__(self, spec: Guardrails, release: threading.Event, waited: list[bool]) -> None:
        super().__init__(spec)
        self._release = release
        self._waited = waited

    def scan(self, text: str, *, direction: str) -> FakeScanResult:
        if direction == "request" and text == "slow":
            self._waited.append(self._release.wait(timeout=20))
        return super().scan(text, direction=direction)


def test_a_scan_that_waits_on_the_model_does_not_stop_other_requests(tmp_path: Path) -> None:
    """With a classifier the request scan runs off the event loop: while one request waits on
    the model, a second request is answered, and only then is the first released. On the loop,
    the second request could not be served and the first would wait out its 20 s."""
    release = threading.Event()
    waited: list[bool] = []

    def factory(config: GatewayConfig) -> _WaitingPipeline:
        return _WaitingPipeline(config.guardrails, release, waited)

    async def scenario() -> None:
        guardrails = with_classifier(tmp_path / "unused")  # the factory never loads it
        async with running_gateway(tmp_path, guardrails=guardrails, pipeline_factory=factory) as h:
            slow = asyncio.create_task(h.post(CHAT, chat("slow")))
            while h.gateway.load()[0] == 0:
                await asyncio.sleep(0.01)
            status, _ = await h.post(CHAT, chat("quick"))
            assert status == 200
            release.set()
            status, _ = await slow
            assert status == 200
            assert waited == [True]

    run(scenario())


@pytest.mark.parametrize(("regions", "found"), [(["in"], False), (["in", "jp"], True)])
def test_phone_formats_follow_the_workloads_data_regions(
    tmp_path: Path, regions: list[str], found: bool
) -> None:
    """The gateway's pipeline reads phone numbers in the formats of the workload's dataRegions:
    a Tokyo number written with dots is one where the data lives in Japan; for a workload whose
    data stays in India the same digits are no valid number."""
    config = make_config(1, tmp_path, data_regions=regions)
    pipeline = default_pipeline_factory(config)
    result = pipeline.scan("call the office on 03.5321.1111 tomorrow", direction="request")
    assert bool(result.findings) is found
