"""Plain egress through the gateway: CONNECT tunnels and the HTTP forward proxy, over real TCP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from tests.gateway.harness import run, running_gateway

from aigis.api.aiworkload import Guardrails, PiiGuard, PromptInjectionGuard, SecretsGuard
from aigis.gateway.config import HostRule

ACTIVE: dict[int, int] = {}
"""Echo server port -> connections it is still serving."""


async def _echo_server() -> tuple[asyncio.Server, int]:
    """A TCP server standing in for a TLS destination: it echoes what it gets, prefixed."""
    port = 0

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ACTIVE[port] = ACTIVE.get(port, 0) + 1
        try:
            while data := await reader.read(65536):
                writer.write(b"echo:" + data)
                await writer.drain()
        finally:
            ACTIVE[port] -= 1
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port


async def _connect(gateway_url: str, authority: str) -> tuple[bytes, asyncio.StreamReader, Any]:
    host, port = gateway_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    return head, reader, writer


def test_connect_to_a_declared_host_tunnels_bytes_both_ways(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, port = await _echo_server()
        hosts = [HostRule(host="search.example.com", ports=[port], region="eu")]
        async with running_gateway(tmp_path, allowed_hosts=hosts) as h:
            head, reader, writer = await _connect(h.url, f"search.example.com:{port}")
            assert head.startswith(b"HTTP/1.1 200")
            for message in (b"hello", b"x" * 200_000):
                writer.write(message)
                expected = len(message) + 5
                received = b""
                while len(received) < expected:
                    received += await reader.read(65536)
                assert received.startswith(b"echo:")
            writer.close()
            await writer.wait_closed()
            record = h.audit_records()[-1]
            assert (record["route"], record["decision"]) == ("egress_connect", "allowed")
            assert record["destination"] == f"search.example.com:{port}"
        server.close()

    run(scenario())


@pytest.mark.parametrize(
    ("authority", "reason"),
    [
        pytest.param("other.example.org:{port}", "host_not_allowed", id="undeclared-host"),
        pytest.param("search.example.com:1", "port_not_allowed", id="undeclared-port"),
        pytest.param("127.0.0.1:{port}", "host_not_allowed", id="ip-literal"),
        pytest.param("api.openai.com:{port}", "use_gateway_route", id="llm-provider-host"),
    ],
)
def test_connect_to_other_destinations_is_refused(
    tmp_path: Path, authority: str, reason: str
) -> None:
    async def scenario() -> None:
        server, port = await _echo_server()
        hosts = [
            HostRule(host="search.example.com", ports=[port], region="eu"),
            HostRule(host="api.openai.com", ports=[port], region="us"),
        ]
        async with running_gateway(tmp_path, allowed_hosts=hosts) as h:
            head, reader, writer = await _connect(h.url, authority.format(port=port))
            assert head.startswith(b"HTTP/1.1 403")
            body = await reader.read()
            assert orjson.loads(body)["error"]["code"] == reason
            writer.close()
            assert h.audit_records()[-1]["decision"] == "refused"
        server.close()

    run(scenario())


def test_connect_outside_the_data_regions_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, port = await _echo_server()
        hosts = [HostRule(host="search.example.com", ports=[port], region="cn")]
        async with running_gateway(tmp_path, allowed_hosts=hosts) as h:
            head, reader, writer = await _connect(h.url, f"search.example.com:{port}")
            assert head.startswith(b"HTTP/1.1 403")
            assert orjson.loads(await reader.read())["error"]["code"] == "region_not_allowed"
            writer.close()
        server.close()

    run(scenario())


def test_connect_tunnel_closes_when_the_app_leaves(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, port = await _echo_server()
        hosts = [HostRule(host="search.example.com", ports=[port], region="eu")]
        async with running_gateway(tmp_path, allowed_hosts=hosts) as h:
            for _ in range(5):
                _, reader, writer = await _connect(h.url, f"search.example.com:{port}")
                writer.write(b"ping")
                await reader.read(100)
                writer.close()
                await writer.wait_closed()
            for _ in range(100):
                if ACTIVE.get(port) == 0:
                    break
                await asyncio.sleep(0.01)
            assert ACTIVE[port] == 0
        server.close()

    run(scenario())


def test_forward_proxy_passes_plain_http_to_declared_hosts_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        async def hello(request: web.BaseRequest) -> web.Response:
            return web.json_response({"path": request.path_qs, "via": request.headers.get("Host")})

        runner = web.ServerRunner(web.Server(hello))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        hosts = [HostRule(host="search.example.com", ports=[port], region="eu")]
        async with running_gateway(tmp_path, allowed_hosts=hosts) as h:
            url = f"http://search.example.com:{port}/docs?q=refunds"
            async with h.client.get(url, proxy=h.url) as response:
                assert response.status == 200
                assert (await response.json())["path"] == "/docs?q=refunds"
            async with h.client.get(f"http://other.example.org:{port}/", proxy=h.url) as response:
                assert response.status == 403
                assert (await response.json())["error"]["code"] == "host_not_allowed"
            records = h.audit_records()
            assert [r["decision"] for r in records[-2:]] == ["allowed", "refused"]
            assert all("q=refunds" not in orjson.dumps(r).decode() for r in records)
        await runner.cleanup()

    run(scenario())


# --- LLM APIs are not plain egress ---------------------------------------------------------------

BEDROCK = "bedrock-runtime.eu-west-1.amazonaws.com"
LOG_ONLY = Guardrails(
    prompt_injection=PromptInjectionGuard(action="Log"),
    pii=PiiGuard(action="Log"),
    secrets=SecretsGuard(action="Log"),
)


async def _refused(h: Any, authority: str) -> str:
    head, reader, writer = await _connect(h.url, authority)
    assert head.startswith(b"HTTP/1.1 403")
    body = orjson.loads(await reader.read())
    writer.close()
    return str(body["error"]["code"])


@pytest.mark.parametrize(
    ("wildcard", "host"),
    [
        pytest.param("*.api.openai.com", "eu.api.openai.com", id="openai-eu-under-wildcard"),
        pytest.param("*.mistral.ai", "api.mistral.ai", id="mistral-not-an-upstream"),
    ],
)
def test_connect_to_a_provider_the_gateway_speaks_is_refused_under_any_rule(
    tmp_path: Path, wildcard: str, host: str
) -> None:
    async def scenario() -> None:
        server, port = await _echo_server()
        hosts = [HostRule(host=wildcard, ports=[port], region="eu")]
        async with running_gateway(tmp_path, allowed_hosts=hosts, guardrails=LOG_ONLY) as h:
            assert await _refused(h, f"{host}:{port}") == "use_gateway_route"
            url = f"http://{host}:{port}/v1/chat/completions"
            async with h.client.post(url, json={}, proxy=h.url) as response:
                assert response.status == 403
                answer = await response.json()
            assert answer["error"]["code"] == "use_gateway_route"
            assert "/v1 routes" in answer["error"]["message"]
            assert ACTIVE.get(port, 0) == 0
        server.close()

    run(scenario())


def test_connect_to_bedrock_declared_exactly_is_tunnelled_and_recorded(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, port = await _echo_server()
        hosts = [HostRule(host=BEDROCK, ports=[port], region="eu")]
        async with running_gateway(tmp_path, allowed_hosts=hosts, guardrails=LOG_ONLY) as h:
            head, reader, writer = await _connect(h.url, f"{BEDROCK}:{port}")
            assert head.startswith(b"HTTP/1.1 200")
            writer.write(b"signed request")
            assert await reader.read(100) == b"echo:signed request"
            writer.close()
            record = h.audit_records()[-1]
            assert (record["decision"], record["uninspected_llm"]) == ("allowed", "bedrock")
        server.close()

    run(scenario())


def test_connect_to_bedrock_through_a_wildcard_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, port = await _echo_server()
        hosts = [HostRule(host="*.eu-west-1.amazonaws.com", ports=[port], region="eu")]
        async with running_gateway(tmp_path, allowed_hosts=hosts, guardrails=LOG_ONLY) as h:
            assert await _refused(h, f"{BEDROCK}:{port}") == "llm_host_not_declared"
            assert h.audit_records()[-1]["uninspected_llm"] == "bedrock"
        server.close()

    run(scenario())


def test_connect_to_bedrock_is_refused_when_guardrails_would_act(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, port = await _echo_server()
        hosts = [HostRule(host=BEDROCK, ports=[port], region="eu")]
        async with running_gateway(tmp_path, allowed_hosts=hosts) as h:
            assert await _refused(h, f"{BEDROCK}:{port}") == "llm_uninspectable"
        async with running_gateway(tmp_path, allowed_hosts=hosts, enforcement="Audit") as h:
            head, _, writer = await _connect(h.url, f"{BEDROCK}:{port}")
            assert head.startswith(b"HTTP/1.1 200")
            writer.close()
            record = h.audit_records()[-1]
            assert (record["decision"], record["reason"]) == ("audited", "llm_uninspectable")
            assert record["uninspected_llm"] == "bedrock"
        server.close()

    run(scenario())
