"""`aigis gateway`: run the sidecar gateway; `aigis audit verify`: check what it logged.

Flags are read here and nowhere else; they become a `GatewaySettings`. Logs go to stderr so that
stdout carries only the audit log, one sealed, chained JSON line per request.

With `--workers N` this process only supervises: it starts N gateway processes that share the
listening port (SO_REUSEPORT: the kernel spreads connections across them), stops them all on
SIGTERM, and stops the others and exits when one dies, so the container restarts whole. Each
worker keeps its own audit chain (its lines carry `"worker": i`, its state is kept in
`<audit-state-dir>/worker-<i>`) and serves its own metrics on the metrics port plus i. Their
audit lines go to the one stdout whole: a lock shared by the workers is held for each batch of
whole lines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import multiprocessing
import multiprocessing.connection
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from aigis.api.errors import FieldError
from aigis.gateway.audit import MAC_RE, ChainState, split_by_worker, verify_audit_chain
from aigis.gateway.identity import (
    AUDIT_KEY_FLAG,
    AUDIT_STATE_FLAG,
    POD_NAME_ENV,
    POD_NAMESPACE_ENV,
    POD_UID_ENV,
    PodIdentity,
)
from aigis.gateway.overload import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_QUEUE_TIMEOUT_SECONDS,
    OverloadLimits,
)
from aigis.gateway.resolver import StaticResolver
from aigis.gateway.server import GatewayConfigError, GatewaySettings, serve_gateway

log = logging.getLogger("aigis.gateway")


def parse_listen(flag: str, value: str) -> tuple[str, int] | FieldError:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) into its parts, or what is wrong with it."""
    host, colon, port_text = value.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return FieldError(flag, f'"{value}" needs an IP address and a port, e.g. 127.0.0.1:8787')
    if not colon or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        return FieldError(flag, f'"{value}" needs a port 0-65535 after the colon')
    return host, int(port_text)


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    envvar="AIGIS_GATEWAY_CONFIG",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The gateway configuration file (the mounted ConfigMap); reloaded when it changes.",
)
@click.option(
    "--listen",
    default="127.0.0.1:8787",
    envvar="AIGIS_GATEWAY_LISTEN",
    show_default=True,
    help="Address the app connects to (keep it on loopback: it is the pod's own proxy).",
)
@click.option(
    "--metrics-listen",
    default="127.0.0.1:9090",
    envvar="AIGIS_GATEWAY_METRICS_LISTEN",
    show_default=True,
    help="Address of /metrics, /healthz and /readyz (0.0.0.0:PORT so Prometheus can scrape).",
)
@click.option(
    "--resolve",
    "static_hosts",
    multiple=True,
    metavar="HOST=IP",
    help="Resolve HOST to IP from this table instead of DNS (repeatable). When given, names "
    "not in the table fail to resolve: for local runs and benchmarks against loopback.",
)
@click.option(
    "--reload-interval",
    default=2.0,
    type=click.FloatRange(min=0.1, max=300),
    show_default=True,
    help="Seconds between checks of the config and key files for changes.",
)
@click.option(
    "--log-level",
    default="INFO",
    envvar="AIGIS_LOG_LEVEL",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option(
    AUDIT_KEY_FLAG,
    "audit_key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The workload's audit key (its mounted Secret): audit lines are sealed with "
    "HMAC-SHA256 under it. Without it lines are chained but unkeyed (keyed: false).",
)
@click.option(
    AUDIT_STATE_FLAG,
    "audit_state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A directory that outlives the container (an emptyDir): the last audit seq and MAC "
    "are kept there, so the chain continues across restarts.",
)
@click.option("--pod-name", envvar=POD_NAME_ENV, default="", help=f"Env {POD_NAME_ENV}.")
@click.option(
    "--pod-namespace", envvar=POD_NAMESPACE_ENV, default="", help=f"Env {POD_NAMESPACE_ENV}."
)
@click.option("--pod-uid", envvar=POD_UID_ENV, default="", help=f"Env {POD_UID_ENV}.")
@click.option(
    "--max-in-flight",
    default=DEFAULT_MAX_IN_FLIGHT,
    envvar="AIGIS_GATEWAY_MAX_IN_FLIGHT",
    show_default=True,
    type=click.IntRange(min=1),
    help="LLM requests one worker serves at once (a stream counts until it ends); also the "
    "size of its upstream connection pool. Set it above the app's peak of concurrent calls.",
)
@click.option(
    "--max-queued",
    default=None,
    envvar="AIGIS_GATEWAY_MAX_QUEUED",
    type=click.IntRange(min=0),
    help="Requests that may wait for a slot once --max-in-flight are served; past them a "
    "request is refused at once with 503 and Retry-After. Default: --max-in-flight.",
)
@click.option(
    "--queue-timeout",
    default=DEFAULT_QUEUE_TIMEOUT_SECONDS,
    envvar="AIGIS_GATEWAY_QUEUE_TIMEOUT",
    show_default=True,
    type=click.FloatRange(min=0.001, max=60),
    help="Seconds a request may wait before the gateway starts on it (for a slot, and for the "
    "CPU: while the event loop lags this much, new requests are refused at once); past it, 503.",
)
@click.option(
    "--workers",
    default=1,
    envvar="AIGIS_GATEWAY_WORKERS",
    show_default=True,
    type=click.IntRange(min=1, max=64),
    help="Gateway processes sharing the listening port (SO_REUSEPORT); worker i serves its "
    "metrics on the --metrics-listen port plus i. One per CPU core the pod may use.",
)
def gateway(
    config_path: Path,
    listen: str,
    metrics_listen: str,
    static_hosts: tuple[str, ...],
    reload_interval: float,
    log_level: str,
    audit_key_file: Path | None,
    audit_state_dir: Path | None,
    pod_name: str,
    pod_namespace: str,
    pod_uid: str,
    max_in_flight: int,
    max_queued: int | None,
    queue_timeout: float,
    workers: int,
) -> None:
    """Run the AI gateway sidecar: provider keys, allowlists, guardrails, audit log, metrics."""
    started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    app = parse_listen("--listen", listen)
    metrics = parse_listen("--metrics-listen", metrics_listen)
    table = parse_static_hosts(static_hosts)
    problems = [p for p in (app, metrics) if isinstance(p, FieldError)]
    if isinstance(table, FieldError):
        problems.append(table)
    if problems:
        raise click.UsageError("\n".join(str(p) for p in problems))
    assert isinstance(app, tuple)
    assert isinstance(metrics, tuple)
    assert isinstance(table, dict)
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = GatewaySettings(
        config_path=config_path,
        listen_host=app[0],
        listen_port=app[1],
        metrics_host=metrics[0],
        metrics_port=metrics[1],
        reload_interval_seconds=reload_interval,
        audit_key_file=audit_key_file,
        audit_state_dir=audit_state_dir,
        pod=PodIdentity(pod_name, pod_namespace, pod_uid),
        started_at=started_at,
        overload=OverloadLimits(max_in_flight, max_queued, queue_timeout),
    )
    if workers > 1:
        sys.exit(run_workers(settings, table, workers, log_level))
    sys.exit(_serve(settings, table))


def _serve(
    settings: GatewaySettings,
    table: dict[str, str],
    audit_sink: Callable[[bytes], None] | None = None,
) -> int:
    """Serve in this process until SIGTERM; the exit code."""
    import uvloop

    try:
        uvloop.run(_run(settings, StaticResolver(table) if table else None, audit_sink))
    except GatewayConfigError as exc:
        for problem in exc.problems:
            click.echo(f"gateway configuration {settings.config_path}: {problem}", err=True)
        return 2
    return 0


def worker_settings(settings: GatewaySettings, index: int) -> GatewaySettings:
    """What worker `index` of several runs with: the shared port, its own metrics and state."""
    return dataclasses.replace(
        settings,
        worker=index,
        reuse_port=True,
        metrics_port=settings.metrics_port + index if settings.metrics_port else 0,
        audit_state_dir=(
            settings.audit_state_dir / f"worker-{index}"
            if settings.audit_state_dir is not None
            else None
        ),
    )


def run_workers(
    settings: GatewaySettings, table: dict[str, str], workers: int, log_level: str
) -> int:
    """Start `workers` gateway processes and supervise them; the exit code.

    Exits when SIGTERM (or SIGINT) arrives, after every worker has drained and stopped, or as
    soon as one worker exits on its own: the others are stopped too, so that Kubernetes restarts
    the container whole rather than leaving it serving with fewer workers than it was given.
    """
    if settings.metrics_port and settings.metrics_port + workers - 1 > 65535:
        raise click.UsageError("--metrics-listen: the port plus --workers must stay <= 65535")
    context = multiprocessing.get_context("spawn")
    audit_lock = context.Lock()
    processes = [
        context.Process(
            target=_worker_main,
            args=(worker_settings(settings, index), table, log_level, audit_lock),
            name=f"aigis-gateway-worker-{index}",
        )
        for index in range(workers)
    ]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for process in processes:
        if not stopping:  # a SIGTERM during start-up stops the start-up too
            process.start()
    code = 0
    running = [process for process in processes if process.pid is not None]
    while running:
        multiprocessing.connection.wait([process.sentinel for process in running])
        for process in [p for p in running if not p.is_alive()]:
            running.remove(process)
            if not stopping:
                log.error("%s exited with %s; stopping the others", process.name, process.exitcode)
                code = process.exitcode or 1
                stop(signal.SIGTERM, None)
    return code


def _worker_main(
    settings: GatewaySettings, table: dict[str, str], log_level: str, audit_lock: Any
) -> None:
    # SIGINT reaches the whole process group from a terminal: the supervisor decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s %(name)s[worker {settings.worker}]: %(message)s",
    )

    def write_line(line: bytes) -> None:
        with audit_lock:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()

    sys.exit(_serve(settings, table, write_line))


def parse_static_hosts(entries: tuple[str, ...]) -> dict[str, str] | FieldError:
    """`HOST=IP` entries into a table, or what is wrong with the first bad one."""
    table: dict[str, str] = {}
    for entry in entries:
        host, equals, address = entry.partition("=")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return FieldError(
                "--resolve", f'"{entry}" must be HOST=IP, e.g. api.openai.com=127.0.0.1'
            )
        if not equals or not host:
            return FieldError(
                "--resolve", f'"{entry}" must be HOST=IP, e.g. api.openai.com=127.0.0.1'
            )
        table[host.lower()] = address
    return table


async def _run(
    settings: GatewaySettings,
    resolver: StaticResolver | None,
    audit_sink: Callable[[bytes], None] | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM,) if settings.worker is not None else (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    await serve_gateway(settings, resolver=resolver, audit_sink=audit_sink, stop=stop)


@click.group()
def audit() -> None:
    """Check the gateway's audit log."""


@audit.command()
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The workload's audit key (the hmac-key of Secret aigis-audit-<workload>).",
)
@click.option(
    "--allow-unkeyed",
    is_flag=True,
    help="Check the chain of lines written without a key (they prove nothing on their own).",
)
@click.option(
    "--expect-last",
    metavar="SEQ:MAC",
    default=None,
    help="The seq and MAC the log must end with, from an anchor kept elsewhere: "
    "detects lines removed at the end.",
)
@click.option(
    "--from-genesis",
    is_flag=True,
    help="The log must begin with the pod's first line (seq 0), not be a later segment.",
)
@click.argument("logs", nargs=-1, type=click.Path(allow_dash=True, dir_okay=False, path_type=Path))
def verify(
    key_file: Path | None,
    allow_unkeyed: bool,
    expect_last: str | None,
    from_genesis: bool,
    logs: tuple[Path, ...],
) -> None:
    """Verify audit LOGs (files in order, or - for stdin): MACs, links, seq, restarts.

    Exit 0 when the chain is intact, 1 with one `line N: ...` per finding (N counts lines across
    all LOGs), 2 when the input or the key cannot be used.
    """
    key: bytes | None = None
    if key_file is not None:
        try:
            key = key_file.read_bytes()
        except OSError as exc:
            _bad_input(f"--key-file {key_file}: {exc.strerror}")
        if not key:
            _bad_input(f"--key-file {key_file} is empty")
    elif not allow_unkeyed:
        _bad_input("give --key-file (or --allow-unkeyed to check an unkeyed log's chain only)")
    anchor: ChainState | None = None
    if expect_last is not None:
        seq_text, _, mac = expect_last.partition(":")
        if not seq_text.isdigit() or not MAC_RE.fullmatch(mac):
            _bad_input(f'--expect-last "{expect_last}" must be SEQ:MAC, MAC 64 hex digits')
        anchor = ChainState(int(seq_text), mac)
    try:
        lines = list(_read_lines(logs or (Path("-"),)))
    except OSError as exc:
        _bad_input(f"{exc.filename}: {exc.strerror}")
    if not any(line.strip() for line in lines):
        _bad_input("no audit lines to verify")
    chains = split_by_worker(lines)
    if anchor is not None and len(chains) > 1:
        _bad_input("--expect-last names the end of one chain; these lines hold one per worker")
    problems = sorted(
        (
            problem
            for chain in chains
            for problem in verify_audit_chain(
                chain,
                key,
                allow_unkeyed=allow_unkeyed,
                expected_last=anchor,
                from_genesis=from_genesis,
            )
        ),
        key=lambda problem: problem.line,
    )
    for problem in problems:
        click.echo(str(problem))
    if problems:
        sys.exit(1)
    click.echo(f"intact: {sum(1 for line in lines if line.strip())} lines", err=True)


def _read_lines(logs: tuple[Path, ...]) -> Iterator[bytes]:
    for path in logs:
        if str(path) == "-":
            yield from sys.stdin.buffer
        else:
            with path.open("rb") as handle:
                yield from handle


def _bad_input(message: str) -> NoReturn:
    click.echo(f"aigis audit verify: {message}", err=True)
    sys.exit(2)
