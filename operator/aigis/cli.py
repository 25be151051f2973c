"""The `aigis` command line: one entry point, one subcommand per component.

This is the only place that reads flags and environment variables; each subcommand turns them
into a settings object and hands it to the component.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from aigis import __version__
from aigis.settings import ALL_INTERFACES, LOG_FORMATS, LOG_LEVELS, OperatorSettings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aigis")
def main() -> None:
    """aigis secures AI workloads on Kubernetes."""


@main.command()
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    envvar="AIGIS_NAMESPACES",
    help="Watch only this namespace (repeatable). Default: the whole cluster. "
    "Env AIGIS_NAMESPACES (space-separated).",
)
@click.option(
    "--metrics-address",
    default=ALL_INTERFACES,
    envvar="AIGIS_METRICS_ADDRESS",
    show_default=True,
    help="Address of the Prometheus /metrics server.",
)
@click.option(
    "--metrics-port",
    default=8080,
    type=int,
    envvar="AIGIS_METRICS_PORT",
    show_default=True,
    help="Port of the /metrics server; 0 disables it.",
)
@click.option(
    "--health-address",
    default=ALL_INTERFACES,
    envvar="AIGIS_HEALTH_ADDRESS",
    show_default=True,
    help="Address of the /healthz liveness endpoint.",
)
@click.option(
    "--health-port",
    default=8081,
    type=int,
    envvar="AIGIS_HEALTH_PORT",
    show_default=True,
    help="Port of the /healthz endpoint; 0 disables it.",
)
@click.option(
    "--log-level",
    default="INFO",
    envvar="AIGIS_LOG_LEVEL",
    show_default=True,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
)
@click.option(
    "--log-format",
    default="plain",
    envvar="AIGIS_LOG_FORMAT",
    show_default=True,
    type=click.Choice(LOG_FORMATS),
)
@click.option(
    "--peering",
    default=None,
    envvar="AIGIS_PEERING",
    help="kopf peering object for several replicas; default: standalone (one replica).",
)
def operator(
    namespaces: tuple[str, ...],
    metrics_address: str,
    metrics_port: int,
    health_address: str,
    health_port: int,
    log_level: str,
    log_format: str,
    peering: str | None,
) -> None:
    """Run the operator against the cluster of the current kubeconfig (or in-cluster config)."""
    settings = OperatorSettings(
        namespaces=namespaces,
        metrics_address=metrics_address,
        metrics_port=metrics_port,
        health_address=health_address,
        health_port=health_port,
        log_level=log_level.upper(),
        log_format=log_format,
        peering=peering,
    )
    if problems := settings.problems():
        raise click.UsageError("\n".join(str(p) for p in problems))
    from aigis.controller.run import run_operator

    run_operator(settings)


@main.command()
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one YAML file per CRD into this directory instead of printing them.",
)
def crds(output_dir: Path | None) -> None:
    """Print (or write) the CustomResourceDefinitions generated from aigis's models."""
    from aigis.crdgen import render_crds, write_crds

    if output_dir is None:
        yaml.safe_dump_all(render_crds(), sys.stdout, sort_keys=False)
        return
    for path in write_crds(output_dir):
        click.echo(f"wrote {path}")
