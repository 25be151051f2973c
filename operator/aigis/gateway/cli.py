"""`aigis gateway`: run the sidecar gateway from its mounted configuration file.

Flags are read here and nowhere else; they become a `GatewaySettings`. Logs go to stderr so that
stdout carries only the audit log, one chained JSON line per request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import sys
from pathlib import Path

import click

from aigis.api.errors import FieldError
from aigis.gateway.resolver import StaticResolver
from aigis.gateway.server import GatewayConfigError, GatewaySettings, serve_gateway


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
def gateway(
    config_path: Path,
    listen: str,
    metrics_listen: str,
    static_hosts: tuple[str, ...],
    reload_interval: float,
    log_level: str,
) -> None:
    """Run the AI gateway sidecar: provider keys, allowlists, guardrails, audit log, metrics."""
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
    )
    try:
        import uvloop

        uvloop.run(_run(settings, StaticResolver(table) if table else None))
    except GatewayConfigError as exc:
        for problem in exc.problems:
            click.echo(f"gateway configuration {config_path}: {problem}", err=True)
        sys.exit(2)


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


async def _run(settings: GatewaySettings, resolver: StaticResolver | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve_gateway(settings, resolver=resolver, stop=stop)
