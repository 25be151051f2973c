"""Added latency and throughput of the aigis gateway, side by side with LiteLLM's proxy.

Measured the way public AI-gateway benchmarks do it: the same load is sent directly to a fake
upstream and through each gateway, and the gateway's cost is the difference in latency
percentiles (p50, p99) at concurrency 1, plus the highest request rate it sustains with p99 under
20 ms. The gateway under test runs pinned to CPU core 0; the load generator and the fake upstream
run pinned to core 1, so they never compete with it. aigis runs with every default guardrail on
(prompt injection, PII redaction, secrets), its audit log written to a file.

Everything stays on 127.0.0.1: the gateway resolves the provider host through a static table
(`--resolve`), and LiteLLM is pointed at the fake upstream with its cost-map download,
telemetry and callbacks off, and with an unreachable loopback proxy as a safety net for any
other outbound call it might try.

Run: `uv run python bench/gateway.py` (add `--skip-litellm` to measure aigis alone). It prints a
table and whether each target is met. Not collected by pytest; numbers vary by machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

GATEWAY_CORE = 0
LOAD_CORE = 1
P99_CEILING_MS = 20.0
SYSTEM_PROMPT = (
    "You are the support assistant of an online shop. Answer questions about orders, "
    "deliveries, returns and refunds politely and briefly. If you do not know the answer, say "
    "so and offer to hand the conversation to a human colleague. Never invent order numbers, "
    "prices or delivery dates; quote only what the tools return. Keep answers under 120 words "
    "and use the customer's language. Do not discuss topics unrelated to the shop."
)
USER_PROMPT = (
    "Hello, I ordered a pair of running shoes last Tuesday and the tracking page still says the "
    "parcel is being prepared. Could you tell me when it will ship, and whether I can still "
    "change the size from 42 to 43 before it leaves the warehouse? Thanks a lot for your help."
)


# --- load generator -------------------------------------------------------------------------


class _Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends a fixed request and awaits each answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        status = self._complete()
        if status and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed by the server"))

    def _complete(self) -> int:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return 0
        head = bytes(self._buffer[:end]).lower()
        status = int(head[9:12])
        marker = head.find(b"content-length:")
        if marker >= 0:
            length = int(
                head[
                    marker + 15 : head.find(b"\r\n", marker)
                    if head.find(b"\r\n", marker) > 0
                    else None
                ]
            )
            if len(self._buffer) < end + 4 + length:
                return 0
            del self._buffer[: end + 4 + length]
            return status
        if b"transfer-encoding: chunked" in head:
            tail = self._buffer.find(b"\r\n0\r\n\r\n", end)
            if tail < 0:
                return 0
            del self._buffer[: tail + 7]
            return status
        raise RuntimeError("answer without Content-Length or chunked encoding")

    async def send(self, request: bytes) -> int:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._waiter


def build_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Run:
    """Latencies (ms) and the rate achieved by one load phase."""

    latencies: list[float]
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def load(
    port: int, request: bytes, concurrency: int, *, count: int | None, seconds: float | None
) -> Run:
    """Send `request` on `concurrency` connections until `count` answers or `seconds` passed."""
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(concurrency):
        _, client = await loop.create_connection(_Client, "127.0.0.1", port)
        clients.append(client)
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else float("inf")

    async def worker(client: _Client) -> None:
        nonlocal errors
        while time.perf_counter() < deadline and (count is None or len(latencies) < count):
            sent = time.perf_counter()
            status = await client.send(request)
            latencies.append((time.perf_counter() - sent) * 1000)
            if status != 200:
                errors += 1

    await asyncio.gather(*(worker(client) for client in clients))
    elapsed = time.perf_counter() - started
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    return Run(latencies, elapsed, errors)


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: int) -> Callable[[], None]:
    """Runs in the child before exec: pin it to one core."""
    return lambda: os.sched_setaffinity(0, {core})


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float, name: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {seconds:.0f} s")


@contextlib.contextmanager
def process(
    command: list[str],
    core: int,
    port: int,
    name: str,
    *,
    env: dict[str, str] | None = None,
    log: Path,
    timeout: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        child = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=pinned(core),
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        try:
            wait_for_port(port, child, timeout, name)
            yield child
        except RuntimeError:
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def serve_upstream(port: int) -> None:
    """The fake provider alone (runs in its own process, pinned by the parent)."""
    import uvloop

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.fake_provider import FakeProvider

    async def main() -> None:
        provider = FakeProvider(record=False)
        await provider.start(port=port)
        await asyncio.Event().wait()

    uvloop.run(main())


def gateway_config(workdir: Path, upstream_port: int) -> Path:
    from aigis.api.aiworkload import Guardrails
    from aigis.gateway.config import (
        AllowedModel,
        GatewayConfig,
        HostRule,
        Upstream,
        dump_gateway_config,
    )

    key = workdir / "openai-key"
    key.write_text("sk-bench-upstream-key")
    config = GatewayConfig(
        namespace="bench",
        name="support-bot",
        upstreams=[
            Upstream(
                provider="openai",
                base_url=f"http://api.openai.com:{upstream_port}/v1",
                wire_format="openai",
                key_file=str(key),
                region="us",
            )
        ],
        allowed_hosts=[HostRule(host="api.openai.com", ports=[upstream_port], region="us")],
        models=[AllowedModel(provider="openai", name="gpt-4o-mini")],
        data_regions=["us", "eu"],
        guardrails=Guardrails(),
    )
    path = workdir / "gateway.json"
    path.write_text(dump_gateway_config(config))
    return path


LITELLM_MASTER_KEY = "sk-bench-" + os.urandom(16).hex()


def litellm_config(workdir: Path, upstream_port: int) -> Path:
    config = {
        "model_list": [
            {
                "model_name": "gpt-4o-mini",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                    "api_key": "sk-bench-upstream-key",
                },
            }
        ],
        "litellm_settings": {
            "telemetry": False,
            "callbacks": [],
            "success_callback": [],
            "failure_callback": [],
            "set_verbose": False,
            "turn_off_message_logging": True,
            "drop_params": True,
        },
        "general_settings": {"disable_spend_logs": True, "master_key": LITELLM_MASTER_KEY},
    }
    path = workdir / "litellm.yaml"
    path.write_text(json.dumps(config))
    return path


LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
    # Any outbound call LiteLLM still tries goes to a closed loopback port, never the internet.
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    # A venv of its own: a `uv sync` of the shared one (which drops the bench group) cannot
    # remove LiteLLM in the middle of a run.
    "UV_PROJECT_ENVIRONMENT": str(Path.home() / ".cache" / "aigis" / "bench-venv"),
}


# --- measurement ----------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    single: Run
    baseline: Run
    """Direct requests interleaved with `single`."""
    best_rate: float
    best_p99: float
    best_concurrency: int
    sweep: list[tuple[int, Run]]


async def paired(
    direct: tuple[int, bytes], target: tuple[int, bytes], count: int
) -> tuple[Run, Run]:
    """Alternate one request direct and one through the target, `count` times each.

    Both series then share every disturbance of the machine (other processes, frequency
    changes), so their difference is the target's own cost.
    """
    loop = asyncio.get_running_loop()
    runs = []
    for port, request in (direct, target):
        _, client = await loop.create_connection(_Client, "127.0.0.1", port)
        runs.append((client, request, Run([], 0.0, 0)))
    started = time.perf_counter()
    for _ in range(count):
        for client, request, run in runs:
            sent = time.perf_counter()
            status = await client.send(request)
            run.latencies.append((time.perf_counter() - sent) * 1000)
            run.errors += status != 200
    elapsed = time.perf_counter() - started
    for client, _, run in runs:
        run.seconds = elapsed
        if client.transport is not None:
            client.transport.close()
    return runs[0][2], runs[1][2]


async def measure(
    name: str, port: int, request: bytes, args: argparse.Namespace, direct: tuple[int, bytes]
) -> Result:
    check = await load(port, request, 1, count=3, seconds=None)
    if check.errors:
        raise RuntimeError(f"{name}: the check requests did not get 200 answers")
    await load(port, request, 1, count=args.warmup, seconds=None)
    requests = args.requests if name != "litellm" else max(300, args.requests // 4)
    baseline, single = await paired(direct, (port, request), requests)
    sweep: list[tuple[int, Run]] = []
    best = (0.0, float("nan"), 0)
    over = 0
    for concurrency in args.concurrency:
        await load(port, request, concurrency, count=None, seconds=0.3)
        run = await load(port, request, concurrency, count=None, seconds=args.seconds)
        sweep.append((concurrency, run))
        p99 = run.percentile(0.99)
        p50 = run.percentile(0.5)
        print(
            f"  {name:<8} c={concurrency:<4} {run.rate:8.0f} req/s  p50 {p50:7.2f} ms"
            f"  p99 {p99:7.2f} ms  errors {run.errors}",
            flush=True,
        )
        if p99 < P99_CEILING_MS and run.errors == 0 and run.rate > best[0]:
            best = (run.rate, p99, concurrency)
        over = over + 1 if p99 >= P99_CEILING_MS else 0
        if over >= 2:
            break
    return Result(name, single, baseline, best[0], best[1], best[2], sweep)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def added(result: Result, fraction: float) -> float:
    """Latency the target adds at a percentile, against the direct requests interleaved with it."""
    return result.single.percentile(fraction) - result.baseline.percentile(fraction)


def peak_rate(result: Result) -> float:
    return max((run.rate for _, run in result.sweep), default=0.0)


def report(results: dict[str, Result]) -> None:
    print()
    header = (
        f"{'target':<8}|{'c=1 p50':>9}|{'c=1 p99':>9}|{'direct p50':>11}|{'direct p99':>11}"
        f"|{'added p50':>10}|{'added p99':>10}|{'req/s, p99<20ms':>16}|{'at p99':>8}"
        f"|{'peak req/s':>11}"
    )
    print(header)
    print("-" * len(header))
    for result in results.values():
        within = f"{result.best_rate:.0f}" if result.best_rate else "none"
        at = f"{result.best_p99:.2f}" if result.best_rate else "-"
        print(
            f"{result.name:<8}|{result.single.percentile(0.5):9.3f}|{result.single.percentile(0.99):9.3f}"
            f"|{result.baseline.percentile(0.5):11.3f}|{result.baseline.percentile(0.99):11.3f}"
            f"|{added(result, 0.5):10.3f}|{added(result, 0.99):10.3f}|{within:>16}|{at:>8}"
            f"|{peak_rate(result):11.0f}"
        )
    print("(latencies in ms; 'added' is against direct requests interleaved with the target's)")
    aigis = results["aigis"]
    a50, a99 = added(aigis, 0.5), added(aigis, 0.99)
    print()
    print("aigis targets:")
    print(f"  added p50 < 0.5 ms at c=1:        {a50:7.3f} ms   {verdict(a50 < 0.5)}")
    print(f"  added p99 < 2 ms at c=1:          {a99:7.3f} ms   {verdict(a99 < 2.0)}")
    print(
        f"  >= 2,000 req/s with p99 < 20 ms:  {aigis.best_rate:7.0f}       "
        f"{verdict(aigis.best_rate >= 2000)}"
    )
    if "litellm" in results:
        lite = results["litellm"]
        l99 = added(lite, 0.99)
        ratio = a99 / l99 if l99 > 0 else float("inf")
        # LiteLLM may never keep p99 under 20 ms: compare with its peak rate then, which
        # favours LiteLLM.
        lite_rate = lite.best_rate or peak_rate(lite)
        speed = aigis.best_rate / lite_rate if lite_rate else float("inf")
        print(
            f"  added p99 <= 1/5 of LiteLLM's:    {a99:7.3f} vs {l99:.3f} ms ({ratio:.3f}x)   "
            f"{verdict(ratio <= 0.2)}"
        )
        print(
            f"  >= 3x LiteLLM's req/s:            {aigis.best_rate:7.0f} vs {lite_rate:.0f} "
            f"({speed:.1f}x)   {verdict(speed >= 3)}"
        )


async def run_all(args: argparse.Namespace, workdir: Path) -> dict[str, Result]:
    import orjson

    body = orjson.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": USER_PROMPT},
            ],
            "max_tokens": 200,
        }
    )
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-app-not-used"}
    results: dict[str, Result] = {}
    upstream_port, gateway_port, metrics_port, litellm_port = (free_port() for _ in range(4))
    path = "/v1/chat/completions"
    with process(
        [sys.executable, __file__, "--serve-upstream", str(upstream_port)],
        LOAD_CORE,
        upstream_port,
        "fake upstream",
        log=workdir / "upstream.log",
    ):
        direct = (upstream_port, build_request(upstream_port, path, body, headers))
        results["direct"] = await measure("direct", *direct, args, direct)
        config = gateway_config(workdir, upstream_port)
        command = [
            sys.executable, "-m", "aigis", "gateway", "--config", str(config),
            "--listen", f"127.0.0.1:{gateway_port}",
            "--metrics-listen", f"127.0.0.1:{metrics_port}",
            "--resolve", "api.openai.com=127.0.0.1", "--log-level", "WARNING",
        ]  # fmt: skip
        with process(
            command, GATEWAY_CORE, gateway_port, "aigis gateway", log=workdir / "audit.log"
        ):
            request = build_request(gateway_port, path, body, headers)
            results["aigis"] = await measure("aigis", gateway_port, request, args, direct)
        if not args.skip_litellm:
            command = [
                "uv", "run", "--group", "bench", "litellm",
                "--config", str(litellm_config(workdir, upstream_port)),
                "--host", "127.0.0.1", "--port", str(litellm_port), "--num_workers", "1",
            ]  # fmt: skip
            with process(
                command,
                GATEWAY_CORE,
                litellm_port,
                "litellm",
                env=LITELLM_ENV,
                log=workdir / "litellm.log",
                timeout=300,
            ):
                litellm_headers = {**headers, "Authorization": f"Bearer {LITELLM_MASTER_KEY}"}
                request = build_request(litellm_port, path, body, litellm_headers)
                results["litellm"] = await measure("litellm", litellm_port, request, args, direct)
            outbound = [
                line
                for line in (workdir / "litellm.log").read_text(errors="replace").splitlines()
                if "ConnectError" in line or "fetch" in line.lower()
            ]
            if outbound:
                print("LiteLLM tried to reach something outside this machine:", *outbound[:5])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--skip-litellm", action="store_true", help="measure aigis alone")
    parser.add_argument("--requests", type=int, default=3000, help="requests at concurrency 1")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up requests per target")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each sweep step")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[2, 4, 8, 16, 32, 64, 128],
        help="concurrency levels of the throughput sweep, comma-separated",
    )
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("the benchmark needs two CPU cores (gateway on one, load on the other)")
    os.sched_setaffinity(0, {LOAD_CORE})
    import uvloop

    with tempfile.TemporaryDirectory(prefix="aigis-bench-") as workdir:
        results = uvloop.run(run_all(args, Path(workdir)))
    report(results)


if __name__ == "__main__":
    main()
