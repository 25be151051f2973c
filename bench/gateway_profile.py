"""Where the gateway's CPU goes under load: py-spy samples it while vegeta sends one case.

Starts the fake provider and `aigis gateway` exactly as bench/gateway.py does, sends one case at
a fixed open-loop rate, records the gateway with py-spy (native frames off, idle off), writes a
flame graph (SVG) and the collapsed stacks, and prints the functions with the most samples:
by self time (where the CPU is spent) and inclusive (which step costs what).

Run: `uv run --frozen --group bench python bench/gateway_profile.py --case chat-1k --rate 800`.
py-spy needs ptrace rights over the gateway (it is our child, which suffices on most systems).
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("gateway_bench", HERE / "gateway.py")
assert _spec is not None
assert _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
sys.modules["gateway_bench"] = harness
_spec.loader.exec_module(harness)


def top_frames(collapsed: Path, count: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(self, inclusive) sample counts per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = [frame.split(" (")[0] + " " + _where(frame) for frame in stack.split(";")]
        own[frames[-1]] += int(samples)
        for frame in set(frames):
            inclusive[frame] += int(samples)
    return own.most_common(count), inclusive.most_common(count)


def _where(frame: str) -> str:
    """`file.py:line` of a py-spy frame `name (path:line)`, shortened to the file name."""
    inside = frame.partition(" (")[2].rstrip(")")
    path, _, line = inside.rpartition(":")
    return f"({Path(path).name}:{line})" if path else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="chat-1k", help="a case of bench/gateway.py")
    parser.add_argument("--rate", type=float, default=800, help="req/s while sampling")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--out", type=Path, default=Path("gateway-profile"), help="output prefix")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        sys.exit("py-spy is missing: run with `uv run --frozen --group bench`")
    if not harness.VEGETA.exists():
        sys.exit(f"{harness.VEGETA} is missing: run hack/build-control-plane.sh vegeta")
    case = harness.case_named(args.case)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    harness.compile_bytecode(litellm=False)
    with tempfile.TemporaryDirectory(prefix="aigis-profile-") as tmp:
        workdir = Path(tmp)
        upstream_port = harness.free_port()
        with harness.process(
            [sys.executable, str(HERE / "gateway.py"), "--serve-upstream", str(upstream_port)],
            harness.LOAD_CORE,
            upstream_port,
            "fake upstream",
            log=workdir / "upstream.log",
        ):
            port, metrics_port = harness.free_port(), harness.free_port()
            command = [
                sys.executable, "-m", "aigis", "gateway",
                "--config", str(harness.gateway_config(workdir, upstream_port)),
                "--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics_port}",
                "--resolve", "api.openai.com=127.0.0.1", "--log-level", "WARNING",
                *harness.gateway_audit_flags(workdir),
            ]  # fmt: skip
            with harness.process(
                command, harness.GATEWAY_CORE, port, "aigis gateway", log=workdir / "audit.log"
            ) as gateway:
                targets = harness.vegeta_targets(workdir / "targets.json", port, case, "sk-app")
                harness.attack(targets, args.rate, 2, workdir)  # warm-up
                collapsed = args.out.with_suffix(".txt")
                record = [
                    py_spy, "record", "--pid", str(gateway.pid), "--rate", "250",
                    "--duration", str(int(args.seconds)), "--nonblocking",
                ]  # fmt: skip
                recorders = [
                    subprocess.Popen([*record, "--format", "raw", "--output", str(collapsed)]),
                    subprocess.Popen([*record, "--output", str(args.out.with_suffix(".svg"))]),
                ]
                load = threading.Thread(
                    target=harness.attack,
                    args=(targets, args.rate, args.seconds + 1, workdir),
                )
                load.start()
                for recorder in recorders:
                    recorder.wait()
                load.join()
    own, inclusive = top_frames(collapsed, args.top)
    total = sum(int(line.rpartition(" ")[2]) for line in collapsed.read_text().splitlines())
    print(f"\n{total} samples of the gateway at {args.rate:g} req/s of {args.case}")
    for title, rows in (("self", own), ("inclusive", inclusive)):
        print(f"\ntop {args.top} by {title} samples")
        for frame, samples in rows:
            print(f"{100 * samples / total:6.1f}%  {frame}")
    print(f"\nflame graph: {args.out.with_suffix('.svg')}; stacks: {collapsed}")


if __name__ == "__main__":
    main()
