"""The chains of a `--workers` gateway, told apart even where a crash cut a line short.

Two workers interleave their lines on one stdout; worker 1 dies in the middle of a line and
starts again from its persisted state. `split_by_worker` must put the cut line into worker 1's
chain (its head names the worker), where the verifier accepts a cut line right before the start
record that resumes; in worker 0's chain it would be a break. The forensic capture's verdict
uses the same split.
"""

from __future__ import annotations

from typing import Any

from aigis.forensics.capture import audit_verdict
from aigis.gateway.audit import (
    AuditChain,
    ChainState,
    split_by_worker,
    start_record,
    verify_audit_chain,
)
from aigis.gateway.identity import PodIdentity

KEY = bytes(range(32))
POD = PodIdentity("bot-1", "shop", "uid-1")


def start(chain: AuditChain, last: ChainState | None) -> bytes:
    record = start_record(
        time="2026-12-06T16:00:00.000+00:00",
        pod=POD,
        container_started="2026-12-06T16:00:00Z",
        workload={"namespace": "shop", "name": "bot"},
        keyed=True,
        last=last,
    )
    return chain.seal(record).data


def request(chain: AuditChain, n: int) -> tuple[bytes, ChainState]:
    sealed = chain.seal({"kind": "request", "n": n, "padding": "x" * 200})
    return sealed.data, sealed.state


def two_workers_and_a_crash() -> list[bytes]:
    zero, one = AuditChain(KEY, worker=0), AuditChain(KEY, worker=1)
    lines = [start(zero, None), start(one, None)]
    persisted: ChainState | None = None
    for n in range(3):
        line, _ = request(zero, n)
        lines.append(line)
        line, persisted = request(one, n)
        lines.append(line)
    torn, _ = request(one, 99)
    lines.append(torn[: len(torn) // 2])  # worker 1 dies while writing this line
    line, _ = request(zero, 3)
    lines.append(line)
    again = AuditChain(KEY, persisted, worker=1)  # restarted from its state file
    lines.append(start(again, persisted))
    line, _ = request(again, 4)
    lines.append(line)
    return lines


def test_each_worker_chain_verifies_with_the_cut_line_in_its_own_chain() -> None:
    lines = two_workers_and_a_crash()
    chains = split_by_worker(lines)
    assert len(chains) == 2
    cut = next(i for i, line in enumerate(lines) if not line.endswith(b"\n"))
    assert chains[1][cut] == lines[cut]
    assert chains[0][cut] == b""
    for chain in chains:
        assert verify_audit_chain(chain, KEY, from_genesis=True) == []


def test_a_workers_line_names_its_worker_in_its_head() -> None:
    line = AuditChain(KEY, worker=3).seal({"kind": "request"}).data
    assert line.index(b'"worker":3') < line.index(b'"kind"')


def test_the_forensic_verdict_reads_each_workers_chain() -> None:
    lines = [line for line in two_workers_and_a_crash() if line.endswith(b"\n")]
    log: Any = b"".join(lines)
    assert audit_verdict(log, KEY) == f"intact: {len(lines)} audit line(s) verified"
    assert audit_verdict(log, bytes(32)).startswith("broken:")
