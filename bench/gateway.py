"""The aigis gateway's cost and its conduct past capacity, beside a bare floor and LiteLLM.

Open-loop, as production traffic is: vegeta sends requests at a fixed rate whatever the target's
speed (a closed-loop client slows down with a slow target and hides its queueing). Targets, in
one run, on the same fake provider and the same cases:

- `direct`: the fake provider itself, the baseline every "added" latency is measured against;
- `floor`: a bare aiohttp pass-through (bench/gateway_floor.py): JSON in and out, nothing else;
- `aigis`: `aigis gateway` with its default guardrails (prompt injection, PII, secrets), its
  audit log keyed, chained and written to a file, its chain state kept as in a pod;
- `litellm`: LiteLLM's proxy, when it starts (`--skip-litellm` to leave it out).

Cases: chats of about 1 KB and 8 KB, answers streamed as 20 and as 200 events, and a tool call;
every answer is a realistic few hundred characters. Per target and case: latency at a modest
rate (`--rate` for `--duration` s: equal sample sizes for every target), then a rate sweep for the
highest rate served in full with p99 under 20 ms. Then, for each gateway, an overload step
(`--overload-rate`, past its capacity) and a recovery check right after it at a low rate: a
gateway that sheds load refuses fast (503) and serves the recovery requests at once; one that
queues times out, and its backlog delays the recovery.

Fairness: the gateway under test runs pinned to CPU core 0; vegeta and the fake provider share
core 1. Bytecode is compiled before anything starts. Every target gets the same requests with an
`Authorization` header and holds its own upstream key. Everything stays on 127.0.0.1: aigis
resolves the provider host through `--resolve`, LiteLLM runs with its cost-map download and
telemetry off, with a closed loopback port as its proxy, and its log is checked for outbound
attempts.

Needs vegeta: `hack/build-control-plane.sh vegeta` (cached in $AIGIS_CACHE/bin). Run:
`uv run --frozen python bench/gateway.py` (`--help` for a shorter run). Prints ratios first,
then absolute numbers. Not collected by pytest; numbers vary by machine and load.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_CORE = 0
LOAD_CORE = 1
P99_CEILING_MS = 20.0
VEGETA = Path(os.environ.get("AIGIS_CACHE", Path.home() / ".cache" / "aigis")) / "bin" / "vegeta"
APP_KEY = "sk-app-placeholder-key"
UPSTREAM_KEY = "sk-bench-upstream-key"

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
EARLIER_TURN = (
    "Earlier: the customer asked about the returns window for sale items and was told that "
    "items bought in the summer sale can be returned within 30 days, unworn and with their "
    "labels, and that the refund goes back to the original payment method within five working "
    "days of the parcel arriving at the warehouse. "
)
ANSWER = (
    "Thank you for your message! Your order of running shoes is being packed at our warehouse "
    "and is scheduled to ship tomorrow morning; you will receive an e-mail with the tracking "
    "number as soon as the carrier collects the parcel. Because the order has not left the "
    "warehouse yet, I can still change the size for you: I have noted size 43 instead of 42, "
    "and the price stays the same. If the new size does not fit, you can return the shoes "
    "within 30 days free of charge. Is there anything else I can help you with today?"
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look up an order by its number and return its status and items.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_number": {"type": "string", "description": "The order number"},
                    "include_items": {"type": "boolean"},
                },
                "required": ["order_number"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "change_size",
            "description": "Change the size of an item in an order that has not shipped.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_number": {"type": "string"},
                    "item": {"type": "string"},
                    "size": {"type": "string"},
                },
                "required": ["order_number", "item", "size"],
            },
        },
    },
]
TOOL_ARGUMENTS = json.dumps(
    {
        "order_number": "A-2026-118734",
        "item": "Trail running shoe, model Ridge 3, colour slate blue",
        "size": "43",
        "note": "customer asked on chat; order not yet shipped; keep the same price and delivery",
    }
)


@dataclass(frozen=True)
class Case:
    """One kind of request: the model name routes it to its behaviour in the fake provider."""

    name: str
    body: dict[str, Any]
    answer: dict[str, Any]
    """Keyword arguments of the fake provider's `Behaviour` for this case."""

    @property
    def model(self) -> str:
        return str(self.body["model"])


def _messages(history_bytes: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    while sum(len(m["content"]) for m in messages) < history_bytes:
        messages.append({"role": "user", "content": EARLIER_TURN})
        messages.append({"role": "assistant", "content": ANSWER[:300]})
    messages.append({"role": "user", "content": USER_PROMPT})
    return messages


CASES = [
    Case(
        "chat-1k",
        {"model": "bench-chat-1k", "messages": _messages(0), "max_tokens": 200},
        {"text": ANSWER},
    ),
    Case(
        "chat-8k",
        {"model": "bench-chat-8k", "messages": _messages(7000), "max_tokens": 200},
        {"text": ANSWER},
    ),
    Case(
        "sse-20",
        {"model": "bench-sse-20", "messages": _messages(0), "max_tokens": 200, "stream": True},
        {"text": ANSWER, "piece_chars": -(-len(ANSWER) // 20)},
    ),
    Case(
        "sse-200",
        {"model": "bench-sse-200", "messages": _messages(0), "max_tokens": 200, "stream": True},
        {"text": ANSWER, "piece_chars": -(-len(ANSWER) // 200)},
    ),
    Case(
        "tool-call",
        {"model": "bench-tool", "messages": _messages(0), "tools": TOOLS, "max_tokens": 200},
        {"tool_call": ("change_size", TOOL_ARGUMENTS)},
    ),
]


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
    """The fake provider, one behaviour per case chosen by the request's model (own process)."""
    import asyncio

    import orjson
    import uvloop
    from aiohttp import web

    sys.path.insert(0, str(ROOT))
    from tests.support.fake_provider import Behaviour, FakeProvider, ToolCall

    providers: dict[str, FakeProvider] = {}
    for case in CASES:
        answer = dict(case.answer)
        if "tool_call" in answer:
            answer["tool_call"] = ToolCall(*answer["tool_call"])
        providers[case.model] = FakeProvider(behaviour=Behaviour(**answer), record=False)

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        model = orjson.loads(await request.read()).get("model")  # read() is cached for the next
        provider = providers.get(model) or providers[CASES[0].model]
        return await provider._handle(request)  # the fake provider's own request handler

    async def main() -> None:
        runner = web.ServerRunner(web.Server(handle, access_log=None), handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    uvloop.run(main())


def gateway_audit_flags(workdir: Path) -> list[str]:
    """A keyed audit chain with its state directory, as every pod's gateway has."""
    key = workdir / "audit-key"
    key.write_bytes(os.urandom(32))
    return ["--audit-key-file", str(key), "--audit-state-dir", str(workdir / "audit-state")]


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
    key.write_text(UPSTREAM_KEY)
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
        models=[AllowedModel(provider="openai", name=case.model) for case in CASES],
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
                "model_name": case.model,
                "litellm_params": {
                    "model": f"openai/{case.model}",
                    "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                    "api_key": UPSTREAM_KEY,
                },
            }
            for case in CASES
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
LITELLM_RUN = ["uv", "run", "--frozen", "--group", "bench"]


def compile_bytecode(litellm: bool) -> None:
    """Compile every module the targets import first, so no target pays for it while measured."""
    import sysconfig

    paths = [ROOT / "operator", ROOT / "bench", ROOT / "tests", sysconfig.get_paths()["purelib"]]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *map(str, paths)],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    if litellm:
        subprocess.run(
            [*LITELLM_RUN, "python", "-c", "import compileall, litellm, os; "
             "compileall.compile_dir(os.path.dirname(litellm.__file__), quiet=1, workers=0)"],
            env={**os.environ, **LITELLM_ENV},
            check=False,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip


# --- load -----------------------------------------------------------------------------------


@dataclass
class Attack:
    """What vegeta measured for one rate and duration (latencies in ms)."""

    rate: float
    requests: int
    p50: float
    p99: float
    max: float
    statuses: dict[str, int]
    throughput: float
    sent_rate: float
    """The rate vegeta achieved: below `rate`, the load core (not the target) was the limit."""
    errors: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return self.statuses.get(status, 0)

    @property
    def served(self) -> float:
        """Share of requests answered 200."""
        return self.count("200") / self.requests if self.requests else 0.0

    @property
    def within_ceiling(self) -> bool:
        return self.served == 1.0 and self.p99 < P99_CEILING_MS


def vegeta_targets(path: Path, port: int, case: Case, key: str) -> Path:
    target = {
        "method": "POST",
        "url": f"http://127.0.0.1:{port}/v1/chat/completions",
        "body": base64.b64encode(json.dumps(case.body).encode()).decode(),
        "header": {"Content-Type": ["application/json"], "Authorization": [f"Bearer {key}"]},
    }
    path.write_text(json.dumps(target) + "\n")
    return path


def attack(targets: Path, rate: float, seconds: float, workdir: Path) -> Attack:
    """One open-loop attack at `rate` req/s for `seconds`, pinned to the load core."""
    results = workdir / "results.bin"
    command = [
        str(VEGETA), "attack", f"-targets={targets}", "-format=json", f"-rate={rate:g}/s",
        f"-duration={seconds:g}s", "-timeout=10s", f"-output={results}",
    ]  # fmt: skip
    subprocess.run(command, check=True, preexec_fn=pinned(LOAD_CORE))
    report = subprocess.run(
        [str(VEGETA), "report", "-type=json", str(results)],
        check=True,
        capture_output=True,
        preexec_fn=pinned(LOAD_CORE),
    )
    data = json.loads(report.stdout)
    latencies = data["latencies"]
    return Attack(
        rate=rate,
        requests=int(data["requests"]),
        p50=latencies["50th"] / 1e6,
        p99=latencies["99th"] / 1e6,
        max=latencies["max"] / 1e6,
        statuses={str(k): int(v) for k, v in (data.get("status_codes") or {}).items()},
        throughput=float(data["throughput"]),
        sent_rate=float(data["rate"]),
        errors=sorted(set(data.get("errors") or []))[:3],
    )


@dataclass
class CaseResult:
    latency: Attack
    best: Attack | None = None
    """The highest rate of the sweep served in full with p99 under the ceiling."""
    sweep: list[Attack] = field(default_factory=list)


@dataclass
class TargetResult:
    name: str
    cases: dict[str, CaseResult] = field(default_factory=dict)
    overload: Attack | None = None
    recovery: Attack | None = None
    listen_overflows: int = 0
    """Handshakes the kernel dropped during the overload step (the accept queue was full)."""


def measure(
    name: str, port: int, key: str, args: argparse.Namespace, workdir: Path
) -> TargetResult:
    result = TargetResult(name)
    for case in CASES:
        if case.name not in args.cases:
            continue
        targets = vegeta_targets(workdir / f"{name}-{case.name}.json", port, case, key)
        if not drained(targets, workdir):
            print(f"  {name:<8} {case.name:<9} left out: still behind after 60 s", flush=True)
            continue
        check = attack(targets, 20, 0.25, workdir)
        if check.served < 1.0:
            print(f"  {name:<8} {case.name:<9} left out: {check.statuses} {check.errors}")
            continue
        attack(targets, args.rate, 1.0, workdir)  # warm-up
        latency = attack(targets, args.rate, args.duration, workdir)
        outcome = CaseResult(latency)
        print(
            f"  {name:<8} {case.name:<9} {args.rate:>5.0f}/s  p50 {latency.p50:7.2f} ms  "
            f"p99 {latency.p99:7.2f} ms  served {latency.served:.4f}",
            flush=True,
        )
        if name != "direct":
            misses = 0
            for rate in args.rates:
                step = attack(targets, rate, args.step_seconds, workdir)
                outcome.sweep.append(step)
                print(
                    f"  {name:<8} {case.name:<9} {rate:>5.0f}/s  p50 {step.p50:7.2f} ms  "
                    f"p99 {step.p99:7.2f} ms  served {step.served:.4f}",
                    flush=True,
                )
                if step.within_ceiling:
                    outcome.best, misses = step, 0
                else:
                    misses += 1
                    if misses >= 2:
                        break
                time.sleep(args.settle)
                drained(targets, workdir)
        result.cases[case.name] = outcome
    if name != "direct" and not args.skip_overload:
        targets = vegeta_targets(
            workdir / f"{name}-overload.json", port, case_named("chat-1k"), key
        )
        drained(targets, workdir)
        overflows = listen_overflows()
        result.overload = attack(targets, args.overload_rate, args.overload_seconds, workdir)
        result.listen_overflows = listen_overflows() - overflows
        # Right after the burst, at a rate far below capacity: served at once, or still behind.
        result.recovery = attack(targets, args.rate, 2.0, workdir)
        for label, run in (("overload", result.overload), ("recovery", result.recovery)):
            print(
                f"  {name:<8} {label:<9} {run.rate:>5.0f}/s  p50 {run.p50:7.2f} ms  "
                f"p99 {run.p99:7.2f} ms  statuses {run.statuses}",
                flush=True,
            )
    return result


def listen_overflows() -> int:
    """The kernel's count of connections dropped on a full accept queue (all sockets)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True))["ListenOverflows"])
    return 0


def drained(targets: Path, workdir: Path, seconds: float = 60) -> bool:
    """Wait until the target answers at once again (a target that queues may still be working
    through a sweep step's backlog), so that no step pays for the one before it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe = attack(targets, 10, 0.3, workdir)
        if probe.served == 1.0 and probe.max < 100:
            return True
        time.sleep(1)
    return False


def case_named(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


# --- report ---------------------------------------------------------------------------------


def added(results: dict[str, TargetResult], target: str, case: str, which: str) -> float:
    """Latency `target` adds over direct calls at the same rate (ms); NaN when not measured."""
    mine, direct = results[target].cases.get(case), results["direct"].cases.get(case)
    if mine is None or direct is None:
        return math.nan
    return float(getattr(mine.latency, which) - getattr(direct.latency, which))


def best_rate(results: dict[str, TargetResult], target: str, case: str) -> float:
    outcome = results[target].cases.get(case)
    if outcome is None:
        return math.nan
    return outcome.best.rate if outcome.best is not None else 0.0


def ratio(a: float, b: float) -> str:
    """a / b; "-" when either is missing or not positive (noise made an "added" negative)."""
    return f"{a / b:.2f}x" if a > 0 and b > 0 else "-"


def report(results: dict[str, TargetResult], args: argparse.Namespace) -> None:
    gateways = [name for name in ("floor", "aigis", "litellm") if name in results]
    cases = [case.name for case in CASES if case.name in args.cases]
    others = [name for name in ("floor", "litellm") if name in results]

    def overloaded(target: str, case: str) -> bool:
        """Its latency step was not served in full: its "latency" is queueing, not a ratio."""
        outcome = results[target].cases.get(case)
        return outcome is not None and outcome.latency.served < 1.0

    def vs(case: str, other: str) -> str:
        if overloaded(other, case) or overloaded("aigis", case):
            who = other if overloaded(other, case) else "aigis"
            cell = f"{who[:5]} over"
            rate = ratio(best_rate(results, "aigis", case), best_rate(results, other, case))
            return f"|{cell:>9}|{cell:>9}|{rate:>9}"
        return (
            f"|{ratio(added(results, 'aigis', case, 'p50'), added(results, other, case, 'p50')):>9}"
            f"|{ratio(added(results, 'aigis', case, 'p99'), added(results, other, case, 'p99')):>9}"
            f"|{ratio(best_rate(results, 'aigis', case), best_rate(results, other, case)):>9}"
        )

    if "aigis" in results:
        print("\nratios: aigis over floor, then over LiteLLM (added latency is over direct calls;")
        print("rate is the best rate served in full with p99 under the ceiling; 'X over': X did")
        print(f"not serve the {args.rate:g} req/s latency step in full: no latency to compare)")
        header = f"{'case':<10}"
        for other in others:
            header += f"|{'p50 ' + other[:5]:>9}|{'p99 ' + other[:5]:>9}|{'rate':>9}"
        print(header)
        print("-" * len(header))
        for case in cases:
            print(f"{case:<10}" + "".join(vs(case, other) for other in others))
    print(f"\nabsolute (ms at {args.rate:g} req/s, {args.duration:g} s each; best rate with every")
    print(f"request served and p99 < {P99_CEILING_MS:g} ms, from the sweep {args.rates})")
    header = f"{'target':<8}|{'case':<10}|{'p50':>8}|{'p99':>8}|{'added p50':>10}|{'added p99':>10}"
    header += f"|{'best req/s':>11}"
    print(header)
    print("-" * len(header))
    for name in ("direct", *gateways):
        for case in cases:
            if case not in results[name].cases:
                print(f"{name:<8}|{case:<10}| not measured")
                continue
            run = results[name].cases[case].latency
            extra = f"|{'':>10}|{'':>10}|{'':>11}"
            if name != "direct":
                a50, a99 = added(results, name, case, "p50"), added(results, name, case, "p99")
                extra = f"|{a50:10.3f}|{a99:10.3f}|{best_rate(results, name, case):11.0f}"
            short = f"  (served {run.served:.1%}: overloaded)" if run.served < 1.0 else ""
            print(f"{name:<8}|{case:<10}|{run.p50:8.3f}|{run.p99:8.3f}{extra}{short}")
    if any(results[name].overload for name in gateways):
        print(
            f"\noverload: {args.overload_rate:g} req/s of chat-1k for {args.overload_seconds:g} s,"
            f" then {args.rate:g} req/s for 2 s (recovery); timeouts at 10 s count as status 0;"
            " 'sent' below the rate asked means the load core was the limit, not the target;"
            " 'dropped' counts handshakes the kernel dropped on a full accept queue"
        )
        header = f"{'target':<8}|{'sent/s':>7}|{'200':>7}|{'503':>7}|{'other':>7}|{'timeout':>8}"
        header += f"|{'dropped':>8}|{'p99 ms':>9}"
        header += f"|{'recovery served':>16}|{'recovery p99':>13}"
        print(header)
        print("-" * len(header))
        for name in gateways:
            over, rec = results[name].overload, results[name].recovery
            if over is None or rec is None:
                continue
            other = over.requests - over.count("200") - over.count("503") - over.count("0")
            print(
                f"{name:<8}|{over.sent_rate:7.0f}|{over.count('200'):7d}|{over.count('503'):7d}"
                f"|{other:7d}|{over.count('0'):8d}|{results[name].listen_overflows:8d}"
                f"|{over.p99:9.1f}|{rec.served:16.4f}|{rec.p99:13.2f}"
            )


# --- running --------------------------------------------------------------------------------


def run_all(args: argparse.Namespace, workdir: Path) -> dict[str, TargetResult]:
    results: dict[str, TargetResult] = {}
    # Each port is picked right before its server starts: the overload steps open thousands of
    # client connections, whose local ports may take a port picked earlier.
    upstream_port = free_port()
    with process(
        [sys.executable, __file__, "--serve-upstream", str(upstream_port)],
        LOAD_CORE,
        upstream_port,
        "fake upstream",
        log=workdir / "upstream.log",
    ):
        if "direct" in args.targets:
            results["direct"] = measure("direct", upstream_port, UPSTREAM_KEY, args, workdir)
        if "floor" in args.targets:
            floor_port = free_port()
            command = [
                sys.executable, str(ROOT / "bench" / "gateway_floor.py"),
                "--listen", f"127.0.0.1:{floor_port}",
                "--upstream", f"http://127.0.0.1:{upstream_port}",
            ]  # fmt: skip
            with process(command, GATEWAY_CORE, floor_port, "floor", log=workdir / "floor.log"):
                results["floor"] = measure("floor", floor_port, APP_KEY, args, workdir)
        if "aigis" in args.targets:
            gateway_port, metrics_port = free_port(), free_port()
            command = [
                sys.executable, "-m", "aigis", "gateway",
                "--config", str(gateway_config(workdir, upstream_port)),
                "--listen", f"127.0.0.1:{gateway_port}",
                "--metrics-listen", f"127.0.0.1:{metrics_port}",
                "--resolve", "api.openai.com=127.0.0.1", "--log-level", "WARNING",
                *gateway_audit_flags(workdir), *args.aigis_args,
            ]  # fmt: skip
            with process(
                command, GATEWAY_CORE, gateway_port, "aigis gateway", log=workdir / "audit.log"
            ):
                results["aigis"] = measure("aigis", gateway_port, APP_KEY, args, workdir)
        if "litellm" in args.targets and not args.skip_litellm:
            litellm_port = free_port()
            command = [
                *LITELLM_RUN, "litellm",
                "--config", str(litellm_config(workdir, upstream_port)),
                "--host", "127.0.0.1", "--port", str(litellm_port), "--num_workers", "1",
            ]  # fmt: skip
            try:
                with process(
                    command,
                    GATEWAY_CORE,
                    litellm_port,
                    "litellm",
                    env=LITELLM_ENV,
                    log=workdir / "litellm.log",
                    timeout=300,
                ):
                    results["litellm"] = measure(
                        "litellm", litellm_port, LITELLM_MASTER_KEY, args, workdir
                    )
            except RuntimeError as exc:
                print(f"LiteLLM left out: {exc}", file=sys.stderr)
            outbound = [
                line
                for line in (workdir / "litellm.log").read_text(errors="replace").splitlines()
                if "ConnectError" in line or "fetch" in line.lower() or "127.0.0.1:9" in line
            ]
            if outbound:
                print("LiteLLM tried to reach something outside this machine:", *outbound[:5])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--skip-litellm", action="store_true", help="leave LiteLLM out")
    parser.add_argument("--skip-overload", action="store_true", help="no overload step")
    names = [case.name for case in CASES]
    parser.add_argument(
        "--cases", type=lambda text: text.split(","), default=names, help=",".join(names)
    )
    parser.add_argument(
        "--targets",
        type=lambda text: text.split(","),
        default=["direct", "floor", "aigis", "litellm"],
        help="direct,floor,aigis,litellm (direct is needed for added latency)",
    )
    parser.add_argument("--rate", type=float, default=200, help="req/s of the latency step")
    parser.add_argument("--duration", type=float, default=10, help="seconds of the latency step")
    parser.add_argument(
        "--rates",
        type=lambda text: [float(part) for part in text.split(",")],
        default=[500, 1000, 1500, 2000, 3000, 4000, 5000],
        help="req/s of the sweep, comma-separated",
    )
    parser.add_argument("--step-seconds", type=float, default=5, help="seconds per sweep step")
    parser.add_argument("--settle", type=float, default=1, help="seconds between sweep steps")
    parser.add_argument("--overload-rate", type=float, default=3000, help="req/s past capacity")
    parser.add_argument("--overload-seconds", type=float, default=10)
    parser.add_argument(
        "--aigis-args",
        type=lambda text: text.split(),
        default=[],
        help='extra flags for `aigis gateway`, e.g. "--max-in-flight 64"',
    )
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    if not VEGETA.exists():
        sys.exit(f"{VEGETA} is missing: run hack/build-control-plane.sh vegeta")
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("the benchmark needs two CPU cores (gateway on one, load on the other)")
    if "direct" not in args.targets:
        args.targets.insert(0, "direct")
    os.sched_setaffinity(0, {LOAD_CORE})
    compile_bytecode(litellm="litellm" in args.targets and not args.skip_litellm)
    with tempfile.TemporaryDirectory(prefix="aigis-bench-") as workdir:
        results = run_all(args, Path(workdir))
    report(results, args)


if __name__ == "__main__":
    main()
