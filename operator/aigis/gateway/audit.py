"""The audit log: one JSON line per request on stdout, each sealed with a keyed MAC and chained.

Every line is `{"seq": N, "prev": MAC, "key_id": ID, ...record..., "mac": MAC}`: `mac` is
HMAC-SHA256, under the workload's audit key (`aigis.gateway.identity`), of the line's exact bytes
without the trailing `,"mac":"..."` member; `prev` is the `mac` of the line before; `seq` counts
up by one across the whole pod, container restarts included; `key_id` (the first 8 hex digits of
the key's SHA-256) says which key sealed it. Editing any byte, removing, duplicating or reordering
lines, or appending one, is detectable by anyone holding the key, and impossible to hide without it.

The first line a gateway process writes is a start record (`"kind": "start"`) naming the pod,
the workload and the `last` seq and MAC the previous container of the same pod persisted (read
from the state directory), so a verifier tells a restart from a truncation. Truncation at the
very end is visible only against an anchor kept elsewhere (the forensics bundle, a shipped copy):
`verify_audit_chain(expected_last=...)`.

The writer persists the chain state once per batch of lines, after the batch is written, never
before: the state may lag behind the log, never run ahead of it. A process killed between the
two leaves up to `AUDIT_BATCH_LINES` lines after the line its state names; the next
container's start record names that older line and continues the chain from it (a fork: those
lines' seqs appear twice). The verifier accepts such a fork only from one of the last
`AUDIT_BATCH_LINES` intact lines, so a crash is not reported as a break, while an edited,
forged, reordered or removed line still is; what a crash costs is that the lines written after
the last persisted state could be cut from the log unnoticed, as the log's very end can.
Without a key file the gateway still runs, sealing with an empty key and saying `keyed: false`;
such a log proves nothing against someone who can write it, and the verifier says so.

What is written about a prompt depends on `promptLogging`: nothing (`None`), its SHA-256
(`Hash`), or the hash and a copy in which every guardrail finding is masked (`Redacted`), whatever
the finding's action, so a PII match the workload only logs is not written in the clear either.
Nothing here ever sees the raw text except to hash or mask it.

Sealing and verifying are pure. `AuditWriter` is the one piece of shell here: the thread that
writes sealed lines out in batches and persists the chain state, so the event loop never waits
on stdout.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from aigis.gateway.identity import PodIdentity

log = logging.getLogger("aigis.gateway")

GENESIS = "0" * 64
"""`prev` of the first line of a pod's log (no line was written before it)."""
MAC_RE = re.compile(r"[0-9a-f]{64}")
STATE_FILE_NAME = "chain.json"
"""The file in `--audit-state-dir` holding the last seq and MAC written."""

MAX_FINDINGS_PER_RECORD = 32
AUDIT_BATCH_LINES = 256
"""The most lines the writer writes between two persists of the chain state: after a crash, how
many lines the state can lag behind the log, so how far back a start record may fork from."""


@dataclass(frozen=True, slots=True)
class Span:
    """Where a finding matched in a text, and what to show instead."""

    start: int
    end: int
    label: str


def mask_spans(text: str, spans: Sequence[Span]) -> str:
    """`text` with each span replaced by `[LABEL]`; overlapping spans are merged."""
    if not spans:
        return text
    pieces: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        end = min(span.end, len(text))
        if span.start < cursor:
            # Overlaps the span just masked: widen that mask instead of adding a label.
            cursor = max(cursor, end)
            continue
        if end <= span.start:
            continue
        pieces.append(text[cursor : span.start])
        pieces.append(f"[{span.label}]")
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def prompt_digest(texts: Iterable[str]) -> str:
    """SHA-256 of a request's texts (messages, tool results, ... in order) joined by newlines."""
    digest = hashlib.sha256()
    for index, text in enumerate(texts):
        if index:
            digest.update(b"\n")
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def key_id(key: bytes | None) -> str | None:
    """Which key sealed a line: the first 8 hex digits of its SHA-256; None when unkeyed."""
    return hashlib.sha256(key).hexdigest()[:8] if key else None


@dataclass(frozen=True, slots=True)
class ChainState:
    """Where a chain stands: the seq and MAC of the last line written."""

    seq: int
    mac: str

    def as_json(self) -> dict[str, Any]:
        """As the state file and the start record's `last` hold it."""
        return {"seq": self.seq, "mac": self.mac}

    @classmethod
    def from_json(cls, value: Any) -> ChainState | None:
        """The state in `value`, or None when it is not a well-formed one."""
        if not isinstance(value, dict):
            return None
        seq, mac = value.get("seq"), value.get("mac")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            return None
        if not isinstance(mac, str) or not MAC_RE.fullmatch(mac):
            return None
        return cls(seq, mac)


@dataclass(frozen=True, slots=True)
class SealedLine:
    """One line ready to write, and the chain state once it is written."""

    data: bytes
    """The line, with its newline."""
    state: ChainState


def _mac(key: bytes, body: bytes) -> str:
    return hmac.digest(key, body, "sha256").hex()


def _mac_suffix(mac: str) -> bytes:
    return b',"mac":"' + mac.encode() + b'"}'


class AuditChain:
    """Seals records into chained lines; one per gateway process, used from one event loop.

    `key` None seals with an empty key (`key_id` null): chained, but forgeable by anyone.
    `resume` is where the chain stood before this process (from the state directory).
    """

    def __init__(
        self,
        key: bytes | None = None,
        resume: ChainState | None = None,
        *,
        worker: int | None = None,
    ) -> None:
        self._key = key or b""
        self._key_id = key_id(key)
        self._seq = resume.seq + 1 if resume is not None else 0
        self._previous = resume.mac if resume is not None else GENESIS
        # A `--workers` gateway's worker index, in every line's head (before the record), so
        # that even a line a crash cut short names the chain it belongs to (`split_by_worker`).
        self._head: dict[str, Any] = {} if worker is None else {"worker": worker}

    @property
    def keyed(self) -> bool:
        """Whether lines are sealed with a real key."""
        return self._key_id is not None

    def seal(self, record: dict[str, Any]) -> SealedLine:
        """The line for `record`, chained to the line sealed before it."""
        body = orjson.dumps(
            {
                "seq": self._seq,
                "prev": self._previous,
                "key_id": self._key_id,
                **self._head,
                **record,
            }
        )
        mac = _mac(self._key, body)
        sealed = SealedLine(body[:-1] + _mac_suffix(mac) + b"\n", ChainState(self._seq, mac))
        self._previous = mac
        self._seq += 1
        return sealed


def start_record(
    *,
    time: str,
    pod: PodIdentity,
    container_started: str,
    workload: dict[str, str],
    keyed: bool,
    last: ChainState | None,
) -> dict[str, Any]:
    """The first record a gateway process writes: who it is and where the chain stood.

    `last` is None for the first container of a pod (the chain starts at `GENESIS`); after a
    restart it is the seq and MAC the previous container wrote last, which must be the line
    right before this one.
    """
    return {
        "kind": "start",
        "time": time,
        "pod": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
        "container_started": container_started,
        "workload": workload,
        "keyed": keyed,
        "last": last.as_json() if last is not None else None,
    }


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """Where the chain breaks: the 1-based line number and what is wrong there."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def verify_audit_chain(
    lines: Iterable[bytes | str],
    key: bytes | None,
    *,
    allow_unkeyed: bool = False,
    expected_last: ChainState | None = None,
    from_genesis: bool = False,
) -> list[ChainProblem]:
    """Every break in a sequence of audit lines; empty when the chain is intact.

    Checks each line's MAC under `key`, that `prev` is the MAC of the line before and `seq` its
    seq plus one, and that a start record's `last` names the line before it. The first line is
    taken as the anchor of a segment unless `from_genesis` demands the pod's very first line.
    A new chain (a start record with `last` null, as a new pod writes) may follow the lines of
    another pod; following lines of the same pod, it means the restart lost the chain state.
    After a crash, a start record may name one of the last `AUDIT_BATCH_LINES` lines instead of
    the line right before it (the state lagged the log; see the module docstring), and a line
    cut short by that crash right before it is no finding. Unkeyed lines (`key_id` null) are
    findings unless `allow_unkeyed`, and then only their chain is checked. `expected_last`,
    from an anchor kept elsewhere, detects a truncated end. Blank lines are skipped but
    counted, so line numbers match the input.
    """
    problems: list[ChainProblem] = []
    given_id = key_id(key)
    previous: ChainState | None = None
    recent: deque[ChainState] = deque(maxlen=AUDIT_BATCH_LINES + 1)
    """The last lines of this chain, any of which a start record may resume from after a crash."""
    cut_short: ChainProblem | None = None
    """An unreadable line that may be the last one a crashed process wrote, until the next line
    says whether a start record resumes right after it."""
    pod_uid: str | None = None
    first = True
    number = 0
    for number, raw in enumerate(lines, start=1):
        line = (raw.encode() if isinstance(raw, str) else raw).rstrip(b"\r\n")
        if not line.strip():
            continue
        found: list[str] = []
        record = _parse(line)
        if record is None:
            if cut_short is not None:
                problems.append(cut_short)
            cut_short = ChainProblem(number, "is not an audit line (not a JSON object)")
            if not line.startswith(b'{"seq":'):
                problems.append(cut_short)
                cut_short, previous = None, None
            first = False
            continue
        resumed = _resumed_after_crash(record, previous, recent)
        if cut_short is not None:
            if resumed is None:
                problems.append(cut_short)
                previous = None
            cut_short = None
        mac = record.get("mac")
        seq = record.get("seq")
        if not isinstance(mac, str) or not MAC_RE.fullmatch(mac):
            found.append('has no "mac": the line was altered or is not from the gateway')
        elif not line.endswith(_mac_suffix(mac)):
            found.append('"mac" is not the last member: the line was altered')
        else:
            found += _check_mac(line, record, mac, key, given_id, allow_unkeyed)
        if not isinstance(seq, int) or isinstance(seq, bool):
            found.append('has no integer "seq"')
            seq = None
        fresh = record.get("kind") == "start" and record.get("last") is None
        if fresh:
            if seq != 0 or record.get("prev") != GENESIS:
                found.append('a start record with "last" null must have seq 0 and prev GENESIS')
            uid = _pod_uid(record)
            if previous is not None and uid and uid == pod_uid:
                found.append(
                    f"pod {uid} restarted without its chain state: lines it wrote before may "
                    "be missing"
                )
            recent.clear()
        elif first and from_genesis:
            found.append("the log does not begin with the pod's first start record")
        elif previous is not None and seq is not None:
            found += _check_link(record, seq, resumed or previous)
        if record.get("kind") == "start":
            pod_uid = _pod_uid(record) or pod_uid
        if found:
            problems.append(ChainProblem(number, "; ".join(found)))
        previous = ChainState(seq, mac) if seq is not None and isinstance(mac, str) else None
        if previous is not None and not found:
            recent.append(previous)
        first = False
    if cut_short is not None:
        problems.append(cut_short)
        previous = None
    if expected_last is not None and previous != expected_last:
        where = f"seq {previous.seq}" if previous is not None else "an unreadable line"
        problems.append(
            ChainProblem(
                number,
                f"the log ends at {where}, the anchor says seq {expected_last.seq} with MAC "
                f"{expected_last.mac[:16]}...: lines after it were removed, or it is not the "
                "log the anchor was taken from",
            )
        )
    return problems


def _resumed_after_crash(
    record: dict[str, Any], previous: ChainState | None, recent: deque[ChainState]
) -> ChainState | None:
    """The line a start record resumes from, when that is one of the last intact lines of the
    chain (the line right before it after a clean stop; an earlier one when the process before
    crashed after writing lines but before persisting the state); None for any other line.

    Only the last `AUDIT_BATCH_LINES` lines qualify: the writer never leaves more unpersisted.
    """
    if record.get("kind") != "start":
        return None
    last = ChainState.from_json(record.get("last"))
    if last is None or last not in recent:
        return None
    if previous is not None and last.seq > previous.seq:
        return None
    return last


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _pod_uid(record: dict[str, Any]) -> str:
    pod = record.get("pod")
    uid = pod.get("uid") if isinstance(pod, dict) else None
    return uid if isinstance(uid, str) else ""


def _check_mac(
    line: bytes,
    record: dict[str, Any],
    mac: str,
    key: bytes | None,
    given_id: str | None,
    allow_unkeyed: bool,
) -> list[str]:
    sealed_with = record.get("key_id")
    if sealed_with is None:
        if not allow_unkeyed:
            return ["is unkeyed (keyed: false), so it proves nothing; --allow-unkeyed checks it"]
        secret = b""
    elif key is None:
        return [f"is sealed with key {sealed_with}, and no key was given"]
    elif sealed_with != given_id:
        return [f"is sealed with key {sealed_with}, not the key given ({given_id})"]
    else:
        secret = key
    body = line[: -len(_mac_suffix(mac))] + b"}"
    if not hmac.compare_digest(_mac(secret, body), mac):
        return ["its MAC does not match: the line was edited, or forged without the key"]
    return []


def _check_link(record: dict[str, Any], seq: int, previous: ChainState) -> list[str]:
    found: list[str] = []
    if seq <= previous.seq:
        found.append(
            f"seq {seq} does not follow seq {previous.seq}: a line is duplicated or reordered"
        )
    elif seq > previous.seq + 1:
        missing = seq - previous.seq - 1
        found.append(f"seq jumps from {previous.seq} to {seq}: {missing} line(s) removed")
    if record.get("prev") != previous.mac:
        found.append(
            '"prev" is not the MAC of the line before: lines were removed, inserted or reordered'
        )
    if record.get("kind") == "start":
        last = ChainState.from_json(record.get("last"))
        if last != previous:
            said = f"seq {last.seq}" if last is not None else "a malformed value"
            found.append(
                f"the start record says the last line before the restart was {said}, but "
                f"the line before it is seq {previous.seq}: lines were removed at the restart"
            )
    return found


# --- writing (shell) ------------------------------------------------------------------------


def read_chain_state(state_dir: Path) -> ChainState | None:
    """The last seq and MAC a previous container of this pod wrote; None when there is none."""
    try:
        data = (state_dir / STATE_FILE_NAME).read_bytes()
        return ChainState.from_json(orjson.loads(data))
    except (OSError, orjson.JSONDecodeError):
        return None


class ChainStateFile:
    """The state file, rewritten in place: one `pwrite` of a fixed-size record per batch.

    Replacing the file (write a new one, rename it in) cost more than writing the lines it
    follows. A write of a few dozen bytes at offset 0 of an open file is not torn by the
    writing process dying (the kernel finishes a write it started), and a record that cannot
    be read anyway is a restart without state, which the verifier reports: it is not silent.
    """

    RECORD_BYTES = 128
    """Room for `{"seq": <20 digits>, "mac": <64 hex>}`, padded with spaces (still valid JSON);
    always the whole record, so it covers whatever shorter record the file held before."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / STATE_FILE_NAME
        self._fd: int | None = None

    def write(self, state: ChainState) -> None:
        """Persist `state` (opening the file on first use)."""
        if self._fd is None:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        record = orjson.dumps(state.as_json()).ljust(self.RECORD_BYTES - 1) + b"\n"
        os.pwrite(self._fd, record, 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


AUDIT_QUEUE_LINES = 4096
"""Sealed lines that may wait for the writer before sealing blocks (back-pressure)."""
AUDIT_LINGER_SECONDS = 0.005
"""How long the writer lets lines gather after writing a batch that did not fill up, so that
under load it wakes up once per batch instead of once per line."""


class AuditWriter:
    """Writes sealed lines from a thread of its own, in order, in batches, and never drops one.

    The event loop only enqueues. The thread takes what is queued (up to `AUDIT_BATCH_LINES`),
    hands it to `sink` in one call (whole lines, in order) and then persists the state of the
    batch's last line; then it lingers `linger_seconds` so the next batch gathers while it
    sleeps (a thread woken for every line costs the event loop more than writing the line).
    When the writer falls `capacity` lines behind (stdout blocked by a stalled log pipeline),
    `write` waits for room, stalling the gateway rather than losing evidence, and
    `on_backpressure` is told so (a metric and a log line). A batch that cannot be written is
    reported through `on_error`; the chain state is persisted only for lines written.
    """

    def __init__(
        self,
        sink: Callable[[bytes], None],
        state_dir: Path | None = None,
        *,
        capacity: int = AUDIT_QUEUE_LINES,
        batch_lines: int = AUDIT_BATCH_LINES,
        linger_seconds: float = AUDIT_LINGER_SECONDS,
        on_backpressure: Callable[[], None] = lambda: None,
        on_error: Callable[[Exception], None] = lambda exc: None,
    ) -> None:
        if not 1 <= batch_lines <= AUDIT_BATCH_LINES:
            raise ValueError(f"batch_lines must be 1 to {AUDIT_BATCH_LINES}, not {batch_lines}")
        self._sink = sink
        self._state = ChainStateFile(state_dir) if state_dir is not None else None
        self._queue: queue.Queue[SealedLine | None] = queue.Queue(capacity)
        self._batch_lines = batch_lines
        self._linger = linger_seconds
        self._on_backpressure = on_backpressure
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name="aigis-audit-writer", daemon=True)
        self._thread.start()

    def write(self, line: SealedLine) -> None:
        """Queue `line`; waits only when the queue is full."""
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._on_backpressure()
            self._queue.put(line)

    def flush(self) -> None:
        """Wait until every queued line is written."""
        self._queue.join()

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                batch = self._take()
                lines = [line for line in batch if line is not None]
                if lines:
                    self._write(lines)
                for _ in batch:
                    self._queue.task_done()
                if len(batch) > len(lines):
                    return
                if len(batch) < self._batch_lines:
                    time.sleep(self._linger)
        finally:
            if self._state is not None:
                self._state.close()

    def _take(self) -> list[SealedLine | None]:
        """The next batch: waits for one line, then takes what else is queued, up to the stop."""
        batch = [self._queue.get()]
        while batch[-1] is not None and len(batch) < self._batch_lines:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, lines: list[SealedLine]) -> None:
        try:
            self._sink(b"".join(line.data for line in lines))
            if self._state is not None:
                self._state.write(lines[-1].state)
        except Exception as exc:  # the thread must outlive one failed write
            self._on_error(exc)


_WORKER_IN_HEAD = re.compile(
    rb'^\{"seq":\d+,"prev":"[0-9a-f]{64}","key_id":(?:null|"[^"]*"),"worker":(\d+)[,}]'
)
"""The head `AuditChain.seal` writes for a worker: what is left of a line a crash cut short."""


def split_by_worker(lines: list[bytes]) -> list[list[bytes]]:
    """The chain of each worker of a `--workers` gateway, apart (one chain without workers).

    Each chain keeps every line's position (the other chains' lines become blank lines, which
    the verifier skips but counts), so findings name lines of the input as given. A line that
    names no worker (from a gateway running alone, or not an audit line) goes with the first. A
    line a crash cut short is read for the worker its head names (`AuditChain` writes it before
    the record), so the verifier of that worker's chain sees it right before the worker's next
    start record, where a cut line is expected.
    """
    owners: list[int | None] = []
    for line in lines:
        try:
            record = orjson.loads(line) if line.strip() else None
        except orjson.JSONDecodeError:
            head = _WORKER_IN_HEAD.match(line)
            record = {"worker": int(head.group(1))} if head else None
        worker = record.get("worker") if isinstance(record, dict) else None
        owners.append(worker if isinstance(worker, int) and not isinstance(worker, bool) else None)
    workers = sorted({owner for owner in owners if owner is not None})
    if not workers:
        return [lines]
    groups: list[set[int | None]] = [{None, workers[0]}]
    groups += [{worker} for worker in workers[1:]]
    return [
        [line if owner in group else b"" for line, owner in zip(lines, owners, strict=True)]
        for group in groups
    ]
