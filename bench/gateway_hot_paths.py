"""Two of the gateway's hot paths on their own: the audit writer and the SSE parser.

- Audit: the process CPU per audit line (seal, hand-off to the writer thread, write to
  /dev/null, chain state kept in a temporary directory) with lines arriving at a steady rate,
  as requests produce them, minus the same loop sealing without writing. The writer wakes once
  per batch, not once per line; what a wake-up costs shows at moderate rates.
- SSE: the time to split a 200-event answer (~90 bytes per event) into events, with LF and
  CRLF separators, arriving in one piece, one event per read, and 16-byte pieces.

Run: `uv run --frozen python bench/gateway_hot_paths.py`. Numbers vary by machine and load.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from aigis.gateway.audit import AuditChain, AuditWriter
from aigis.gateway.sse import SSEParser

RECORD = {
    "kind": "request",
    "time": "2026-12-06T15:00:00.000+00:00",
    "workload": {"namespace": "shop", "name": "support-bot"},
    "route": "chat_completions",
    "model": "gpt-4o-mini",
    "status": 200,
    "decision": "allowed",
    "guardrails": {"prompt_injection": "pass", "pii": "pass"},
    "findings": [],
    "latency_ms": {"total": 1.2, "upstream": 0.8},
    "prompt_sha256": "ab" * 32,
}


def audit_cpu_per_line(rate: int, seconds: float, *, write: bool) -> float:
    """Process CPU seconds per line, lines sealed (and written when `write`) at `rate`/s."""
    null = open(os.devnull, "wb")  # noqa: SIM115 - closed below, after the writer

    def sink(data: bytes) -> None:
        null.write(data)
        null.flush()

    writer = AuditWriter(sink, Path(tempfile.mkdtemp(prefix="aigis-audit-bench-")))
    chain = AuditChain(b"k" * 32)
    count = int(rate * seconds)
    gap = 1 / rate
    cpu = time.process_time()
    start = time.perf_counter()
    for index in range(count):
        line = chain.seal(RECORD)
        if write:
            writer.write(line)
        due = start + (index + 1) * gap
        while (left := due - time.perf_counter()) > 0:
            time.sleep(left)
    writer.close()
    null.close()
    return (time.process_time() - cpu) / count


def sse_stream(newline: bytes, events: int = 200) -> bytes:
    return b"".join(
        b'data: {"choices":[{"delta":{"content":"piece %d of the answer"}}]}' % i
        + newline
        + newline
        for i in range(events)
    )


def sse_microseconds(chunks: list[bytes], repeat: int = 300) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        parser = SSEParser()
        for chunk in chunks:
            parser.feed(chunk)
        parser.close()
    return (time.perf_counter() - start) / repeat * 1e6


def main() -> None:
    print("audit writer: process CPU per line (sealing excluded)")
    for rate in (600, 2000):
        baseline = audit_cpu_per_line(rate, 3, write=False)
        written = audit_cpu_per_line(rate, 3, write=True)
        print(f"  {rate:>5} lines/s: {(written - baseline) * 1e6:6.1f} µs per line")
    print("SSE parser: a 200-event answer")
    for name, newline in (("LF", b"\n"), ("CRLF", b"\r\n")):
        stream = sse_stream(newline)
        step = len(stream) // 200
        for shape, chunks in (
            ("one piece", [stream]),
            ("one event per read", [stream[i : i + step] for i in range(0, len(stream), step)]),
            ("16-byte pieces", [stream[i : i + 16] for i in range(0, len(stream), 16)]),
        ):
            print(f"  {name:<4} {shape:<20} {sse_microseconds(chunks):7.0f} µs per answer")


if __name__ == "__main__":
    main()
