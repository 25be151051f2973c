"""The audit log: the keyed chain, restarts, the writer thread and `aigis audit verify`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from tests.gateway.harness import run, running_gateway

from aigis.cli import main
from aigis.gateway.audit import (
    GENESIS,
    AuditChain,
    AuditWriter,
    ChainState,
    SealedLine,
    key_id,
    read_chain_state,
    start_record,
    verify_audit_chain,
)
from aigis.gateway.identity import PodIdentity

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
POD = PodIdentity("bot-1", "shop", "uid-1")


def _start(chain: AuditChain, last: ChainState | None, pod: PodIdentity = POD) -> SealedLine:
    record = start_record(
        time="2026-01-01T00:00:00.000+00:00",
        pod=pod,
        container_started="2026-01-01T00:00:00.000+00:00",
        workload={"namespace": "shop", "name": "bot"},
        keyed=chain.keyed,
        last=last,
    )
    return chain.seal(record)


def _log(count: int, key: bytes | None = KEY) -> list[bytes]:
    """A pod's first container: a start record and `count` request lines."""
    chain = AuditChain(key)
    lines = [_start(chain, None).data]
    lines += [chain.seal({"kind": "request", "n": n}).data for n in range(count)]
    return lines


def _lines_of(problems: list[Any]) -> list[int]:
    return [problem.line for problem in problems]


def test_line_format_is_seq_prev_key_id_record_mac() -> None:
    chain = AuditChain(KEY)
    first = orjson.loads(_start(chain, None).data)
    second = orjson.loads(chain.seal({"kind": "request"}).data)
    assert list(first)[:3] == ["seq", "prev", "key_id"]
    assert list(first)[-1] == "mac"
    assert (first["seq"], first["prev"], first["key_id"]) == (0, GENESIS, key_id(KEY))
    assert (second["seq"], second["prev"]) == (1, first["mac"])
    assert first["keyed"] is True
    assert first["pod"] == {"name": "bot-1", "namespace": "shop", "uid": "uid-1"}


def test_an_intact_log_verifies() -> None:
    assert verify_audit_chain(_log(4), KEY, from_genesis=True) == []


def _edit(line: bytes) -> bytes:
    return line.replace(b'"n":1', b'"n":9')


def _forge(line: bytes) -> bytes:
    """What a forger without the key can do: edit, and seal with a key of their own."""
    record = orjson.loads(line)
    del record["mac"]
    record["n"] = 9
    body = orjson.dumps(record)
    mac = hmac.new(b"a guess", body, hashlib.sha256).hexdigest()
    return body[:-1] + b',"mac":"' + mac.encode() + b'"}\n'


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        pytest.param(lambda ls: [*ls[:2], _edit(ls[2]), *ls[3:]], [3], id="edited-byte"),
        pytest.param(lambda ls: [*ls[:2], _forge(ls[2]), *ls[3:]], [3, 4], id="forged-mac"),
        pytest.param(lambda ls: [*ls[:2], *ls[3:]], [3], id="removed"),
        pytest.param(lambda ls: [*ls[:2], ls[3], ls[2], *ls[4:]], [3, 4, 5], id="reordered"),
        pytest.param(lambda ls: [*ls[:3], ls[2], *ls[3:]], [4], id="duplicated"),
        pytest.param(lambda ls: [*ls, ls[-1].replace(b'"n":3', b'"n":4')], [6], id="appended"),
        pytest.param(lambda ls: [b"not json", *ls[1:]], [1], id="garbage-line"),
        pytest.param(
            lambda ls: [*ls[:2], ls[2].replace(b"}\n", b',"x":1}\n'), *ls[3:]],
            [3],
            id="member-after-mac",
        ),
    ],
)
def test_tampering_is_found_at_the_line_it_happened(tamper: Any, broken: list[int]) -> None:
    lines = _log(4)
    assert _lines_of(verify_audit_chain(tamper(lines), KEY)) == broken


def test_the_wrong_key_breaks_every_line() -> None:
    problems = verify_audit_chain(_log(2), OTHER_KEY)
    assert _lines_of(problems) == [1, 2, 3]
    assert f"sealed with key {key_id(KEY)}" in problems[0].message


def test_an_unkeyed_log_is_not_verifiable_unless_allowed() -> None:
    lines = _log(2, key=None)
    assert orjson.loads(lines[0])["keyed"] is False
    assert _lines_of(verify_audit_chain(lines, KEY)) == [1, 2, 3]
    assert verify_audit_chain(lines, None, allow_unkeyed=True) == []
    assert _lines_of(verify_audit_chain([*lines[:1], *lines[2:]], None, allow_unkeyed=True)) == [2]


def test_truncation_at_the_end_is_found_against_an_anchor() -> None:
    lines = _log(4)
    anchor = ChainState(orjson.loads(lines[-1])["seq"], orjson.loads(lines[-1])["mac"])
    assert verify_audit_chain(lines, KEY, expected_last=anchor) == []
    assert _lines_of(verify_audit_chain(lines[:-2], KEY, expected_last=anchor)) == [3]
    assert verify_audit_chain(lines[:-2], KEY) == []


def test_a_segment_verifies_unless_the_log_must_start_at_genesis() -> None:
    lines = _log(4)
    assert verify_audit_chain(lines[2:], KEY) == []
    assert _lines_of(verify_audit_chain(lines[2:], KEY, from_genesis=True)) == [1]


def _restarted(before: list[bytes], pod: PodIdentity = POD) -> list[bytes]:
    last = orjson.loads(before[-1])
    resume = ChainState(last["seq"], last["mac"])
    chain = AuditChain(KEY, resume)
    return [_start(chain, resume, pod).data, chain.seal({"kind": "request", "n": 99}).data]


def test_a_restart_continues_the_chain_and_verifies() -> None:
    first = _log(3)
    second = _restarted(first)
    assert orjson.loads(second[0])["seq"] == orjson.loads(first[-1])["seq"] + 1
    assert verify_audit_chain([*first, *second], KEY, from_genesis=True) == []


def test_lines_removed_before_a_restart_are_found() -> None:
    first = _log(3)
    second = _restarted(first)
    problems = verify_audit_chain([*first[:-1], *second], KEY)
    assert _lines_of(problems) == [4]
    assert "the start record says the last line before the restart was seq 3" in str(problems[0])


def test_a_restart_that_lost_its_state_is_found_but_a_new_pod_is_not() -> None:
    first = _log(2)
    same_pod = _log(1)
    assert _lines_of(verify_audit_chain([*first, *same_pod], KEY)) == [4]
    other = AuditChain(KEY)
    new_pod = [_start(other, None, PodIdentity("bot-2", "shop", "uid-2")).data]
    assert verify_audit_chain([*first, *new_pod], KEY) == []


# --- the writer -----------------------------------------------------------------------------


def test_writer_applies_back_pressure_and_drops_nothing(tmp_path: Path) -> None:
    release = threading.Event()
    written: list[bytes] = []
    pressure: list[int] = []

    def slow_sink(line: bytes) -> None:
        release.wait()
        written.append(line)

    writer = AuditWriter(
        slow_sink, tmp_path, capacity=2, on_backpressure=lambda: pressure.append(1)
    )
    chain = AuditChain(KEY)
    lines = [chain.seal({"n": n}) for n in range(6)]
    producer = threading.Thread(target=lambda: [writer.write(line) for line in lines])
    producer.start()
    while not pressure:
        release.wait(0.001)
    release.set()
    producer.join()
    writer.close()
    assert b"".join(written) == b"".join(line.data for line in lines)
    assert read_chain_state(tmp_path) == lines[-1].state


def test_a_stalled_audit_sink_does_not_stall_requests(tmp_path: Path) -> None:
    release = threading.Event()
    audit: list[bytes] = []

    class StalledSink(list[bytes]):
        def extend(self, lines: Iterable[bytes]) -> None:
            release.wait()
            audit.extend(lines)

    async def scenario() -> None:
        async with running_gateway(tmp_path, audit=StalledSink()) as h:
            try:
                status, _ = await asyncio.wait_for(
                    h.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []}), 30
                )
                assert status == 200
                assert audit == []
            finally:
                release.set()
            h.gateway.flush_audit()
            assert [orjson.loads(line)["kind"] for line in audit] == ["start", "request"]

    run(scenario())


# --- restarts through the real gateway ----------------------------------------------------------


def test_gateway_restart_resumes_the_chain_from_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    log: list[bytes] = []

    async def container(n: int) -> None:
        async with running_gateway(tmp_path, audit_key=KEY, audit_state_dir=state, audit=log) as h:
            await h.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [], "n": n})

    run(container(1))
    run(container(2))
    records = [orjson.loads(line) for line in log]
    assert [r["kind"] for r in records] == ["start", "request", "start", "request"]
    assert [r["seq"] for r in records] == [0, 1, 2, 3]
    assert records[0]["last"] is None
    assert records[2]["last"] == {"seq": 1, "mac": records[1]["mac"]}
    assert records[2]["pod"]["uid"]
    assert records[2]["keyed"] is True
    assert verify_audit_chain(log, KEY, from_genesis=True) == []
    assert _lines_of(verify_audit_chain([*log[:1], *log[2:]], KEY)) == [2]


# --- aigis audit verify ---------------------------------------------------------------------------


def _verify(tmp_path: Path, lines: list[bytes], *args: str) -> tuple[int, str]:
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines))
    key = tmp_path / "key"
    key.write_bytes(KEY)
    result = CliRunner().invoke(main, ["audit", "verify", "--key-file", str(key), *args, str(log)])
    return result.exit_code, result.output


def test_cli_verify_exit_codes(tmp_path: Path) -> None:
    lines = _log(3)
    assert _verify(tmp_path, lines)[0] == 0
    code, output = _verify(tmp_path, [*lines[:2], *lines[3:]])
    assert code == 1
    assert output.startswith("line 3: ")
    unkeyed = _log(1, key=None)
    assert _verify(tmp_path, unkeyed)[0] == 1
    assert _verify(tmp_path, unkeyed, "--allow-unkeyed")[0] == 0
    last = orjson.loads(lines[-1])
    anchor = f"{last['seq']}:{last['mac']}"
    assert _verify(tmp_path, lines, "--expect-last", anchor)[0] == 0
    assert _verify(tmp_path, lines[:-1], "--expect-last", anchor)[0] == 1
    assert _verify(tmp_path, lines, "--expect-last", "3:nothex")[0] == 2
    assert _verify(tmp_path, [])[0] == 2
    result = CliRunner().invoke(main, ["audit", "verify", str(tmp_path / "audit.log")])
    assert result.exit_code == 2
    missing = CliRunner().invoke(main, ["audit", "verify", "--key-file", str(tmp_path / "nope")])
    assert missing.exit_code == 2
