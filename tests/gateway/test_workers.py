"""`aigis gateway --workers 2`: two processes on one port, each with its own audit chain.

Runs the real command in a subprocess against the fake provider on 127.0.0.1. The kernel
spreads new connections over the workers (SO_REUSEPORT), so the test opens a fresh connection
per request until both workers have answered, then checks each worker's chain on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import orjson
from click.testing import CliRunner
from tests.gateway.harness import OPENAI_KEY, make_config, run
from tests.support.fake_provider import FakeProvider

from aigis.gateway.audit import read_chain_state, split_by_worker, verify_audit_chain
from aigis.gateway.cli import audit
from aigis.gateway.config import dump_gateway_config

AUDIT_KEY = bytes(range(32))
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "opening hours?"}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    while True:
        assert process.returncode is None, "the gateway exited before listening"
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)


def workers_in(log: Path) -> set[int]:
    """The workers whose request lines are in the log so far."""
    return {
        record["worker"]
        for record in map(orjson.loads, log.read_bytes().splitlines())
        if record["kind"] == "request"
    }


def test_two_workers_share_the_port_and_keep_one_verifiable_chain_each(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"

    async def scenario() -> None:
        provider = FakeProvider(record=False)
        await provider.start()
        keys = tmp_path / "keys"
        keys.mkdir()
        (keys / "openai").write_text(OPENAI_KEY)
        (keys / "anthropic").write_text("unused")
        config = tmp_path / "gateway.json"
        config.write_text(dump_gateway_config(make_config(provider.port, keys)))
        (tmp_path / "audit-key").write_bytes(AUDIT_KEY)
        port = free_port()
        command = [
            sys.executable, "-m", "aigis", "gateway", "--config", str(config),
            "--listen", f"127.0.0.1:{port}", "--metrics-listen", "127.0.0.1:0",
            "--resolve", "api.openai.com=127.0.0.1", "--workers", "2",
            "--audit-key-file", str(tmp_path / "audit-key"),
            "--audit-state-dir", str(tmp_path / "state"), "--log-level", "WARNING",
        ]  # fmt: skip
        with log.open("wb") as stdout:
            gateway = await asyncio.create_subprocess_exec(
                *command, stdout=stdout, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
        try:
            await wait_listening(port, gateway)
            # A new connection per request, so the kernel picks a worker each time.
            connector = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(connector=connector) as client:
                for _ in range(20):
                    for _ in range(20):
                        url = f"http://127.0.0.1:{port}/v1/chat/completions"
                        async with client.post(url, json=CHAT) as response:
                            assert response.status == 200
                    if len(workers_in(log)) == 2:
                        break
            assert workers_in(log) == {0, 1}
        finally:
            gateway.send_signal(signal.SIGTERM)
            assert await gateway.wait() == 0
            await provider.close()

    run(scenario())
    lines = log.read_bytes().splitlines(keepends=True)
    records = [orjson.loads(line) for line in lines]
    starts = [r for r in records if r["kind"] == "start"]
    assert sorted(r["worker"] for r in starts) == [0, 1]
    assert {r["worker"] for r in records if r["kind"] == "request"} == {0, 1}
    chains = split_by_worker(lines)
    assert len(chains) == 2
    for chain in chains:
        assert verify_audit_chain(chain, AUDIT_KEY, from_genesis=True) == []
    for index in (0, 1):
        last = max(r["seq"] for r in records if r["worker"] == index)
        state = read_chain_state(tmp_path / "state" / f"worker-{index}")
        assert state is not None
        assert state.seq == last
    key_file = tmp_path / "audit-key"
    result = CliRunner().invoke(audit, ["verify", "--key-file", str(key_file), str(log)])
    assert result.exit_code == 0, result.output

    # A line moved from one worker's chain to the other's is caught: `worker` is sealed.
    moved = next(i for i, r in enumerate(records) if r["kind"] == "request" and r["worker"] == 0)
    lines[moved] = lines[moved].replace(b'"worker":0', b'"worker":1')
    tampered = tmp_path / "tampered.log"
    tampered.write_bytes(b"".join(lines))
    result = CliRunner().invoke(audit, ["verify", "--key-file", str(key_file), str(tampered)])
    assert result.exit_code == 1
    assert f"line {moved + 1}:" in result.output
