"""Configuration reload: a new ConfigMap version applies without dropping connections; a broken
one is refused and the running configuration stays."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.gateway.harness import Harness, make_config, run, running_gateway
from tests.support.fake_provider import Behaviour, read_sse

from aigis.gateway.config import AllowedModel

CHAT = "/v1/chat/completions"


def chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


async def wait_for(condition: object, seconds: float = 3.0) -> None:
    assert callable(condition)
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def refused_count(h: Harness) -> float:
    registry = h.gateway.metrics.registry
    value = registry.get_sample_value("aigis_gateway_config_reloads_total", {"result": "refused"})
    return value or 0.0


def with_models(h: Harness, *names: str) -> str:
    from aigis.gateway.config import dump_gateway_config

    config = make_config(
        h.provider.port,
        h.key_dir,
        models=[AllowedModel(provider="openai", name=name) for name in names],
    )
    return dump_gateway_config(config)


def test_valid_change_applies_and_streams_in_flight_finish(tmp_path: Path) -> None:
    async def scenario() -> None:
        behaviour = Behaviour(text="a fairly long answer " * 5, chunk_delay_seconds=0.02)
        async with running_gateway(tmp_path, behaviour=behaviour) as h:
            assert (await h.post(CHAT, chat("gpt-4o")))[0] == 403
            async with h.client.post(
                h.url + CHAT, json={**chat("gpt-4o-mini"), "stream": True}
            ) as r:
                h.write_config(with_models(h, "gpt-4o-mini", "gpt-4o"))
                await wait_for(lambda: h.gateway.state.generation == 2)
                events = await read_sse(r.content.iter_any())
            assert events[-1] == (None, "[DONE]")
            assert (await h.post(CHAT, chat("gpt-4o")))[0] == 200

    run(scenario())


def test_invalid_change_is_refused_and_the_old_config_keeps_serving(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_gateway(tmp_path) as h:
            for broken in (
                "namespace: [unclosed",
                '{"namespace": "shop"}',
                with_models(h, "gpt-4o").replace('"dataRegions"', '"dataRegionz"'),
            ):
                before = refused_count(h)
                h.write_config(broken)
                await wait_for(lambda before=before: refused_count(h) > before)
                assert h.gateway.state.generation == 1
                assert (await h.post(CHAT, chat("gpt-4o-mini")))[0] == 200
            h.write_config(with_models(h, "gpt-4o"))
            await wait_for(lambda: h.gateway.state.generation == 2)
            assert (await h.post(CHAT, chat("gpt-4o-mini")))[0] == 403

    run(scenario())


def test_rotated_provider_key_is_picked_up(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_gateway(tmp_path) as h:
            staging = h.key_dir / "openai.new"
            staging.write_text("sk-rotated-key-0003")
            staging.replace(h.key_dir / "openai")
            await wait_for(lambda: h.gateway.state.generation == 2)
            await h.post(CHAT, chat("gpt-4o-mini"))
            assert h.provider.received[-1].headers["Authorization"] == "Bearer sk-rotated-key-0003"
            assert "sk-rotated-key-0003" not in repr(h.gateway.state)

    run(scenario())
