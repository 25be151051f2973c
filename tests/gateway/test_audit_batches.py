"""The audit writer's batches, and what a crash between writing lines and persisting the state
leaves: the next container resumes from the older state, and the log still verifies."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest
from tests.gateway.test_audit import KEY, _start

from aigis.gateway.audit import (
    AUDIT_BATCH_LINES,
    AuditChain,
    AuditWriter,
    ChainState,
    SealedLine,
    read_chain_state,
    verify_audit_chain,
)


def _requests(chain: AuditChain, count: int, first: int = 0) -> list[SealedLine]:
    return [chain.seal({"kind": "request", "n": n}) for n in range(first, first + count)]


def _lines_of(problems: list[object]) -> list[int]:
    return [problem.line for problem in problems]  # type: ignore[attr-defined]


# --- batches --------------------------------------------------------------------------------


def test_queued_lines_go_out_in_one_write_and_one_state_update(tmp_path: Path) -> None:
    entered, release = threading.Event(), threading.Event()
    calls: list[bytes] = []
    state_seen: list[ChainState | None] = []

    def sink(data: bytes) -> None:
        entered.set()
        release.wait()
        state_seen.append(read_chain_state(tmp_path))
        calls.append(data)

    writer = AuditWriter(sink, tmp_path)
    chain = AuditChain(KEY)
    lines = [_start(chain, None), *_requests(chain, 20)]
    writer.write(lines[0])
    entered.wait()  # the writer has taken the first line and is stuck writing it
    for line in lines[1:]:
        writer.write(line)
    release.set()
    writer.close()
    assert b"".join(calls) == b"".join(line.data for line in lines)
    assert len(calls) < len(lines)
    assert all(data.endswith(b"\n") for data in calls)
    # The state is persisted after each batch, never before it is written: while a batch is
    # written the file still names the line before it.
    assert state_seen[0] is None
    assert read_chain_state(tmp_path) == lines[-1].state


def test_a_batch_holds_at_most_batch_lines(tmp_path: Path) -> None:
    release = threading.Event()
    calls: list[bytes] = []

    def sink(data: bytes) -> None:
        release.wait()
        calls.append(data)

    writer = AuditWriter(sink, tmp_path, batch_lines=3)
    chain = AuditChain(KEY)
    lines = _requests(chain, 10)
    for line in lines:
        writer.write(line)
    release.set()
    writer.close()
    assert b"".join(calls) == b"".join(line.data for line in lines)
    assert max(data.count(b"\n") for data in calls) <= 3
    assert read_chain_state(tmp_path) == lines[-1].state


def test_batch_lines_beyond_what_the_verifier_allows_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_lines"):
        AuditWriter(lambda data: None, tmp_path, batch_lines=AUDIT_BATCH_LINES + 1)


def test_the_state_file_is_rewritten_in_place_and_reads_back(tmp_path: Path) -> None:
    (tmp_path / "chain.json").write_bytes(b'{"seq": 1, "mac": "' + b"a" * 64 + b'"}')
    writer = AuditWriter(lambda data: None, tmp_path)
    chain = AuditChain(KEY, ChainState(10**15, "b" * 64))
    line = chain.seal({"kind": "request"})
    writer.write(line)
    writer.close()
    assert read_chain_state(tmp_path) == line.state == ChainState(10**15 + 1, line.state.mac)


# --- a crash between writing a batch and persisting the state ------------------------------


class Container:
    """One gateway container's audit writer over a shared stdout and state directory; `crash`
    makes every later batch reach stdout but not the state file, as a kill between the two
    steps leaves them."""

    def __init__(self, stdout: list[bytes], state_dir: Path) -> None:
        self.crashed = False
        self.state_dir = state_dir
        self._stdout = stdout
        resume = read_chain_state(state_dir)
        self.chain = AuditChain(KEY, resume)
        self.writer = AuditWriter(self._sink, state_dir)
        self.writer.write(_start(self.chain, resume))

    def _sink(self, data: bytes) -> None:
        self._stdout.extend(data.splitlines(keepends=True))
        if self.crashed:
            raise RuntimeError("killed before the state was persisted")

    def requests(self, count: int) -> None:
        for line in _requests(self.chain, count):
            self.writer.write(line)
        self.writer.flush()

    def stop(self) -> None:
        self.writer.close()


def _crash_log(tmp_path: Path, unpersisted: int = 5) -> list[bytes]:
    """A pod whose first container crashed with `unpersisted` lines past its state, restarted."""
    stdout: list[bytes] = []
    first = Container(stdout, tmp_path)
    first.requests(3)
    first.crashed = True
    first.requests(unpersisted)
    first.stop()
    second = Container(stdout, tmp_path)
    second.requests(2)
    second.stop()
    return stdout


def test_a_crash_between_writing_and_persisting_is_no_break(tmp_path: Path) -> None:
    log = _crash_log(tmp_path)
    records = [orjson.loads(line) for line in log]
    restart = [r["kind"] for r in records].index("start", 1)
    assert restart == 9
    # The restart resumes from the last persisted line (seq 3), not the last written (seq 8):
    # the crashed container's lines 4..8 are followed by a second seq 4.
    assert records[restart]["last"] == {"seq": 3, "mac": records[3]["mac"]}
    assert [r["seq"] for r in records] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 4, 5, 6]
    assert verify_audit_chain(log, KEY, from_genesis=True) == []
    assert read_chain_state(tmp_path) == ChainState(6, records[-1]["mac"])


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        pytest.param(lambda ls: [*ls[:6], *ls[7:]], [7], id="line-removed-among-unpersisted"),
        pytest.param(
            lambda ls: [*ls[:6], ls[6].replace(b'"request"', b'"requesT"'), *ls[7:]],
            [7],
            id="unpersisted-line-edited",
        ),
        pytest.param(lambda ls: [*ls[:3], *ls[4:]], [4, 9], id="persisted-line-removed"),
        pytest.param(lambda ls: [*ls[:5], ls[6], ls[5], *ls[7:]], [6, 7, 8], id="reordered"),
        pytest.param(
            lambda ls: [*ls[:9], b"not json\n", *ls[9:]], [10], id="garbage-before-the-restart"
        ),
    ],
)
def test_tampering_around_a_crash_is_still_found(
    tmp_path: Path, tamper: object, broken: list[int]
) -> None:
    log = _crash_log(tmp_path)
    assert _lines_of(verify_audit_chain(tamper(log), KEY)) == broken  # type: ignore[operator]


def test_a_line_cut_short_by_the_crash_is_no_break_but_one_elsewhere_is(tmp_path: Path) -> None:
    log = _crash_log(tmp_path)
    torn = log[8][: len(log[8]) // 2] + b"\n"
    assert verify_audit_chain([*log[:8], torn, *log[9:]], KEY) == []
    assert _lines_of(verify_audit_chain([*log[:5], torn, *log[6:]], KEY)) == [6]
    assert _lines_of(verify_audit_chain([*log[:8], torn], KEY)) == [9]


def test_a_restart_may_not_resume_from_further_back_than_one_batch(tmp_path: Path) -> None:
    chain = AuditChain(KEY)
    lines = [_start(chain, None), *_requests(chain, AUDIT_BATCH_LINES + 2)]
    log = [line.data for line in lines]
    near, far = lines[-AUDIT_BATCH_LINES], lines[-AUDIT_BATCH_LINES - 2]
    for resume, broken in ((near.state, []), (far.state, [len(log) + 1])):
        restarted = AuditChain(KEY, resume)
        assert _lines_of(verify_audit_chain([*log, _start(restarted, resume).data], KEY)) == broken
