"""A gateway rendered from a declaration calls the host that declaration (and its egress) allow.

The README's support-bot declares OpenAI's EU endpoint; its gateway must forward to
`eu.api.openai.com`, not OpenAI's global default. The rendered config is run against the fake
provider: only the scheme and port are changed to reach it, never the host, which a static
resolver maps to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tests.gateway import harness
from tests.gateway.harness import OPENAI_KEY, run, running_gateway

from aigis.api.aiworkload import AIWorkload
from aigis.gateway.config import GatewayConfig, render_gateway_config
from aigis.gateway.policy import check_upstream

EXAMPLE = Path(__file__).parents[2] / "examples" / "support-bot.yaml"


def readme_example(key_dir: Path) -> GatewayConfig:
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"]["namespace"] = "support"
    workload = AIWorkload.model_validate(manifest, by_alias=True)
    return render_gateway_config(workload, key_dir=str(key_dir))


def test_the_readme_example_renders_its_eu_host_as_the_upstream(tmp_path: Path) -> None:
    config = readme_example(tmp_path)
    [upstream] = config.upstreams
    assert upstream.base_url == "https://eu.api.openai.com/v1"
    assert upstream.region == "eu"
    assert check_upstream(config, upstream) is None


def test_the_readme_example_gateway_forwards_to_the_eu_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(harness.RESOLVER_TABLE, "eu.api.openai.com", "127.0.0.1")
    rendered = readme_example(tmp_path / "keys")

    async def scenario() -> None:
        async with running_gateway(tmp_path, data_regions=rendered.data_regions) as h:
            port = h.provider.port
            [upstream] = rendered.upstreams
            assert upstream.base_url.startswith("https://eu.api.openai.com/")
            reachable = upstream.model_copy(
                update={"base_url": upstream.base_url.replace("https://", "http://", 1)
                        .replace("eu.api.openai.com", f"eu.api.openai.com:{port}", 1)}
            )  # fmt: skip
            hosts = [rule.model_copy(update={"ports": [port]}) for rule in rendered.allowed_hosts]
            h.write_config(
                rendered.model_copy(
                    update={
                        "upstreams": [reachable],
                        "allowed_hosts": hosts,
                        "upstream_read_timeout_seconds": 5.0,
                    }
                )
            )
            await wait_for(lambda: h.gateway.state.generation == 2)
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hours?"}]}
            status, answer = await h.post("/v1/chat/completions", body)
            assert status == 200, answer
            sent = h.provider.received[-1]
            assert sent.path == "/v1/chat/completions"
            assert sent.headers["Host"] == f"eu.api.openai.com:{port}"
            assert sent.headers["Authorization"] == f"Bearer {OPENAI_KEY}"

    run(scenario())


async def wait_for(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    """Until `condition` holds (the harness reloads its config on a short interval)."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the gateway did not load the new config")
