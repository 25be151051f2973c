"""Runs a real gateway against the fake provider on 127.0.0.1 for one test.

The gateway's upstreams are the real provider host names (`api.openai.com`, `api.anthropic.com`)
on the fake provider's port, and a static resolver maps those names to 127.0.0.1: the host,
port and region checks run exactly as in a pod, and no packet leaves the machine.

Tests are plain functions that call `run(...)` on a coroutine (no async test plugin needed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson
from tests.gateway.fake_guardrails import FakePipeline
from tests.support.fake_provider import Behaviour, FakeProvider

from aigis.api.aiworkload import Guardrails
from aigis.gateway.config import (
    AllowedModel,
    GatewayConfig,
    HostRule,
    Upstream,
    dump_gateway_config,
)
from aigis.gateway.identity import PodIdentity
from aigis.gateway.inspection import PipelineFactory
from aigis.gateway.overload import OverloadLimits
from aigis.gateway.resolver import StaticResolver
from aigis.gateway.server import Gateway, GatewaySettings, serve_gateway

T = TypeVar("T")

OPENAI_KEY = "sk-gateway-held-openai-key-0001"
ANTHROPIC_KEY = "sk-ant-gateway-held-key-0002"
RESOLVER_TABLE = {
    "api.openai.com": "127.0.0.1",
    "api.anthropic.com": "127.0.0.1",
    "api.mistral.ai": "127.0.0.1",
    "eu.api.openai.com": "127.0.0.1",
    "bedrock-runtime.eu-west-1.amazonaws.com": "127.0.0.1",
    "search.example.com": "127.0.0.1",
    "other.example.org": "127.0.0.1",
}


def real_pipeline_factory() -> PipelineFactory | None:
    """The real engine's factory when `aigis.guardrails` is complete, else None."""
    try:
        import aigis.guardrails  # noqa: F401
    except ImportError:
        return None
    from aigis.gateway.state import default_pipeline_factory

    return default_pipeline_factory


def fake_pipeline_factory(config: GatewayConfig) -> FakePipeline:
    """The test double (same interface as the real engine)."""
    return FakePipeline.from_spec(config.guardrails)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one test scenario on a fresh event loop, with a hard ceiling against hangs."""
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def make_config(provider_port: int, key_dir: Path, **overrides: Any) -> GatewayConfig:
    """A support-bot workload: OpenAI and Anthropic models, both served by the fake provider."""
    values: dict[str, Any] = {
        "namespace": "shop",
        "name": "support-bot",
        "upstreams": [
            Upstream(
                provider="openai",
                base_url=f"http://api.openai.com:{provider_port}/v1",
                wire_format="openai",
                key_header="authorization",
                key_file=str(key_dir / "openai"),
                region="us",
            ),
            Upstream(
                provider="anthropic",
                base_url=f"http://api.anthropic.com:{provider_port}/v1",
                wire_format="anthropic",
                key_header="x-api-key",
                key_file=str(key_dir / "anthropic"),
                region="us",
            ),
        ],
        "allowed_hosts": [
            HostRule(host="api.openai.com", ports=[provider_port], region="us"),
            HostRule(host="api.anthropic.com", ports=[provider_port], region="us"),
            HostRule(host="search.example.com", ports=[provider_port], region="eu"),
        ],
        "models": [
            AllowedModel(provider="openai", name="gpt-4o-mini"),
            AllowedModel(provider="anthropic", name="claude-sonnet-4-5"),
        ],
        "data_regions": ["us", "eu"],
        "guardrails": Guardrails(),
        "upstream_read_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return GatewayConfig(**values)


@dataclass
class Harness:
    """A running gateway, its fake upstream, and what it wrote to the audit log."""

    provider: FakeProvider
    gateway: Gateway
    client: aiohttp.ClientSession
    url: str
    metrics_url: str
    config_path: Path
    key_dir: Path
    audit_lines: list[bytes] = field(default_factory=list)

    @property
    def audit(self) -> list[bytes]:
        """Every audit line written so far (waits for the writer thread to catch up)."""
        self.gateway.flush_audit()
        return self.audit_lines

    def audit_records(self) -> list[dict[str, Any]]:
        """The audit lines as records; the first is the gateway's start record."""
        return [orjson.loads(line) for line in self.audit]

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.client.post(self.url + path, json=body, headers=headers) as response:
            raw = await response.read()
            try:
                return response.status, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return response.status, raw

    async def stream(self, path: str, body: Any) -> tuple[int, list[tuple[str | None, str]]]:
        from tests.support.fake_provider import read_sse

        async with self.client.post(self.url + path, json={**body, "stream": True}) as response:
            return response.status, await read_sse(response.content.iter_any())

    def write_config(self, config: GatewayConfig | str) -> None:
        """Replace the config file the way a ConfigMap update does: a new file, renamed in."""
        text = config if isinstance(config, str) else dump_gateway_config(config)
        staging = self.config_path.with_suffix(".new")
        staging.write_text(text)
        staging.replace(self.config_path)


@asynccontextmanager
async def running_gateway(
    tmp_path: Path,
    *,
    behaviour: Behaviour | None = None,
    pipeline_factory: PipelineFactory | Callable[[GatewayConfig], Any] | None = None,
    reload_interval: float = 0.05,
    audit_key: bytes | None = None,
    audit_state_dir: Path | None = None,
    audit: list[bytes] | None = None,
    overload: OverloadLimits | None = None,
    **config_overrides: Any,
) -> AsyncIterator[Harness]:
    """Start the fake provider and a gateway configured for it; stop both afterwards."""
    provider = FakeProvider(behaviour=behaviour or Behaviour())
    await provider.start()
    key_dir = tmp_path / "keys"
    key_dir.mkdir(exist_ok=True)
    (key_dir / "openai").write_text(OPENAI_KEY + "\n")
    (key_dir / "anthropic").write_text(ANTHROPIC_KEY)
    config = make_config(provider.port, key_dir, **config_overrides)
    config_path = tmp_path / "gateway.json"
    config_path.write_text(dump_gateway_config(config))
    audit = [] if audit is None else audit
    key_file = None
    if audit_key is not None:
        key_file = tmp_path / "audit-key"
        key_file.write_bytes(audit_key)
    started: asyncio.Future[tuple[Gateway, int, int]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    settings = GatewaySettings(
        config_path=config_path,
        listen_port=0,
        metrics_port=0,
        reload_interval_seconds=reload_interval,
        audit_key_file=key_file,
        audit_state_dir=audit_state_dir,
        pod=PodIdentity("support-bot-7d9f", "shop", "0c0ffee0-1111-2222-3333-444455556666"),
        # Tests pause and resume their event loop (and share it with the fake provider): its
        # lag says nothing about the gateway's load there. Tests of the lag turn it on.
        overload=overload or OverloadLimits(shed_on_loop_lag=False),
    )
    factory = pipeline_factory or real_pipeline_factory() or fake_pipeline_factory
    task = asyncio.create_task(
        serve_gateway(
            settings,
            pipeline_factory=factory,  # type: ignore[arg-type]
            resolver=StaticResolver(RESOLVER_TABLE),
            # The writer hands over batches of whole lines; keep one line per item.
            audit_sink=lambda data: audit.extend(data.splitlines(keepends=True)),
            ready=lambda gateway, port, metrics: started.set_result((gateway, port, metrics)),
            stop=stop,
        )
    )
    done, _ = await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        await provider.close()
        task.result()
    gateway, port, metrics_port = started.result()
    try:
        async with aiohttp.ClientSession() as client:
            yield Harness(
                provider=provider,
                gateway=gateway,
                client=client,
                url=f"http://127.0.0.1:{port}",
                metrics_url=f"http://127.0.0.1:{metrics_port}",
                config_path=config_path,
                key_dir=key_dir,
                audit_lines=audit,
            )
    finally:
        stop.set()
        await task
        await provider.close()
