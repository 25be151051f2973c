"""The `aigis` command line: one entry point, one subcommand per component.

This is the only place that reads flags and environment variables; each subcommand turns them
into a settings object and hands it to the component.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from aigis import __version__
from aigis.settings import (
    ALL_INTERFACES,
    LOG_FORMATS,
    LOG_LEVELS,
    NETWORK_POLICY_MODES,
    OperatorSettings,
)


def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    """`a=b,c=d` as pairs; a term without `=` is refused with the flag's name."""
    pairs = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = term.partition("=")
        if not sep or not key:
            raise click.BadParameter(f'"{term}" is not key=value', param_hint="--dns-labels")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


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
@click.option(
    "--aigis-namespace",
    default=None,
    envvar=["AIGIS_NAMESPACE", "POD_NAMESPACE"],
    help="The namespace aigis runs in; no AIClusterPolicy ever governs it.",
)
@click.option(
    "--network-policy-mode",
    default="Auto",
    envvar="AIGIS_NETWORK_POLICY_MODE",
    show_default=True,
    type=click.Choice(NETWORK_POLICY_MODES),
    help="Auto: NetworkPolicies, plus CiliumNetworkPolicies (toFQDNs) where Cilium is installed.",
)
@click.option(
    "--refresh-seconds",
    default=60.0,
    type=float,
    envvar="AIGIS_REFRESH_SECONDS",
    show_default=True,
    help="How often every workload is reconciled again (DNS refresh, drift safety net).",
)
@click.option(
    "--audit-interval",
    default=300.0,
    type=float,
    envvar="AIGIS_AUDIT_INTERVAL",
    show_default=True,
    help="Seconds between the background audit's full passes; 0: only at start and on changes "
    "of AIWorkloads, AIClusterPolicies and namespace labels.",
)
@click.option(
    "--static-hosts",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="AIGIS_STATIC_HOSTS",
    help="Resolve declared hosts from this YAML file (host: [addresses]) instead of DNS.",
)
@click.option(
    "--dns-namespace",
    default="kube-system",
    envvar="AIGIS_DNS_NAMESPACE",
    show_default=True,
    help="Namespace of the cluster DNS pods that every egress policy allows.",
)
@click.option(
    "--dns-labels",
    default="k8s-app=kube-dns",
    envvar="AIGIS_DNS_LABELS",
    show_default=True,
    help="Labels of the cluster DNS pods, as key=value[,key=value].",
)
@click.option(
    "--forensics-capture-timeout",
    default=120.0,
    type=float,
    envvar="AIGIS_FORENSICS_CAPTURE_TIMEOUT",
    show_default=True,
    help="Seconds a forensic capture may collect before its bundle is stored incomplete.",
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
    aigis_namespace: str | None,
    network_policy_mode: str,
    refresh_seconds: float,
    audit_interval: float,
    static_hosts: Path | None,
    dns_namespace: str,
    dns_labels: str,
    forensics_capture_timeout: float,
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
        aigis_namespace=aigis_namespace,
        network_policy_mode=network_policy_mode,
        refresh_seconds=refresh_seconds,
        audit_seconds=audit_interval,
        static_hosts=static_hosts,
        dns_namespace=dns_namespace,
        dns_labels=parse_labels(dns_labels),
        forensics_capture_timeout=forensics_capture_timeout,
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


@main.group()
def forensics() -> None:
    """Forensic evidence of AI workloads' pods."""


@forensics.command("release")
@click.argument("pods", nargs=-1)
@click.option(
    "--namespace",
    "-n",
    default=None,
    help="Namespace of the pods. Default: the current kubeconfig context's namespace.",
)
@click.option(
    "--all-namespaces", "-A", is_flag=True, help="Every namespace (pods cannot be named then)."
)
@click.option("--dry-run", is_flag=True, help="Print what would be released; change nothing.")
def forensics_release(
    pods: tuple[str, ...], namespace: str | None, all_namespaces: bool, dry_run: bool
) -> None:
    """Emergency: let terminating pods go that the aigis.dev/forensics finalizer holds.

    For when the operator is down or uninstalled. Only pods already being deleted are
    released (delete a pod first); each gets a Warning Event EvidenceNotCaptured naming who
    released it. Without POD names, every terminating aigis-injected pod in the namespace.
    Exit code 0 when everything asked for is released (or, with --dry-run, would be), 1 when
    some pod could not be, 2 when the cluster cannot be read or the arguments are wrong.
    """
    import asyncio
    from datetime import UTC, datetime

    import aiohttp

    from aigis.admission.mutation import FORENSICS_FINALIZER
    from aigis.controller.forensics import ReleaseOutcome, release_pods
    from aigis.kube import KubeClient, KubeConfigError, KubeError, kubeconfig_namespace

    if all_namespaces and (namespace or pods):
        raise click.UsageError("--all-namespaces takes neither --namespace nor pod names")

    async def release(namespace: str | None) -> list[ReleaseOutcome]:
        async with KubeClient.from_environment(user_agent="aigis-cli") as kube:
            return await release_pods(
                kube, namespace=namespace, names=pods, dry_run=dry_run, now=datetime.now(UTC)
            )

    try:
        if not all_namespaces and namespace is None:
            namespace = kubeconfig_namespace()
        outcomes = asyncio.run(release(namespace))
    except (KubeError, aiohttp.ClientError, OSError, KubeConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for outcome in outcomes:
        click.echo(outcome.line())
    where = "any namespace" if namespace is None else f"namespace {namespace}"
    if not outcomes:
        click.echo(f"no terminating pod in {where} carries the {FORENSICS_FINALIZER} finalizer")
    failed = sum(1 for o in outcomes if not o.ok)
    if failed:
        click.echo(f"{failed} pod(s) not released", err=True)
        sys.exit(1)


_SIGNING_NAMESPACE = click.option(
    "--signing-namespace",
    default=None,
    envvar="AIGIS_NAMESPACE",
    help="Where the public key is published (the operator's --aigis-namespace). Default: the "
    "snapshot's namespace.",
)
_S3_ENDPOINT = click.option(
    "--s3-endpoint",
    default=None,
    envvar="AIGIS_S3_ENDPOINT",
    help="For a snapshot stored in S3: reach its bucket at this URL instead of the endpoint "
    "the snapshot records (e.g. through a port-forward). The keys come from the credentials "
    "Secret the snapshot names, which you need to be allowed to read.",
)


def _run_forensics(work: Any) -> Any:
    """Run one coroutine against the cluster; exit 2 when it cannot be reached or read."""
    import asyncio

    import aiohttp

    from aigis.forensics.storage import StorageError
    from aigis.kube import KubeConfigError, KubeError

    try:
        return asyncio.run(work)
    except (
        KubeError, aiohttp.ClientError, OSError, KubeConfigError, LookupError, StorageError
    ) as exc:  # fmt: skip
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@forensics.command("list")
@click.option("--namespace", "-n", default=None, help="Default: the current context's namespace.")
@click.option("--all-namespaces", "-A", is_flag=True, help="Every namespace.")
def forensics_list(namespace: str | None, all_namespaces: bool) -> None:
    """List ForensicSnapshots: pod, trigger, phase, completeness, size, age."""
    from datetime import UTC, datetime

    from aigis.forensics.commands import list_snapshots, snapshot_row, table
    from aigis.kube import KubeClient, kubeconfig_namespace

    async def listing(namespace: str | None) -> list[Any]:
        async with KubeClient.from_environment(user_agent="aigis-cli") as kube:
            return await list_snapshots(kube, namespace)

    if not all_namespaces and namespace is None:
        namespace = kubeconfig_namespace()
    items = _run_forensics(listing(None if all_namespaces else namespace))
    now = datetime.now(UTC)
    click.echo(table([snapshot_row(s, now) for s in items]))


@forensics.command("export")
@click.argument("name")
@click.option("--namespace", "-n", default=None, help="Default: the current context's namespace.")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the unpacked bundle into (created if missing).",
)
@_SIGNING_NAMESPACE
@_S3_ENDPOINT
def forensics_export(
    name: str,
    namespace: str | None,
    output: Path,
    signing_namespace: str | None,
    s3_endpoint: str | None,
) -> None:
    """Write a snapshot's evidence bundle into a directory, for `aigis forensics verify DIR`."""
    from aigis.forensics.commands import export_snapshot
    from aigis.kube import KubeClient, kubeconfig_namespace

    async def export(namespace: str) -> list[Path]:
        async with KubeClient.from_environment(user_agent="aigis-cli") as kube:
            return await export_snapshot(
                kube, namespace, name, output, signing_namespace, s3_endpoint
            )

    for path in _run_forensics(export(namespace or kubeconfig_namespace())):
        click.echo(f"wrote {path}")


@forensics.command("verify")
@click.argument("target")
@click.option("--namespace", "-n", default=None, help="Default: the current context's namespace.")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="For a directory: the public key (base64) to verify with. Default: its signing-key.pub.",
)
@_SIGNING_NAMESPACE
@_S3_ENDPOINT
def forensics_verify(
    target: str,
    namespace: str | None,
    public_key: Path | None,
    signing_namespace: str | None,
    s3_endpoint: str | None,
) -> None:
    """Verify a snapshot (NAME, in the cluster) or an exported directory (DIR).

    Checks every artifact's SHA-256 and size against the manifest and the manifest's Ed25519
    signature. Prints one line per problem, naming the artifact. Exit code 0 when it verifies,
    1 when it does not, 2 when it cannot be read.
    """
    from aigis.forensics.commands import verify_directory, verify_snapshot
    from aigis.kube import KubeClient, kubeconfig_namespace

    async def verify(namespace: str) -> list[Any]:
        async with KubeClient.from_environment(user_agent="aigis-cli") as kube:
            return await verify_snapshot(kube, namespace, target, signing_namespace, s3_endpoint)

    directory = Path(target)
    if directory.is_dir():
        problems = verify_directory(directory, public_key)
    else:
        problems = _run_forensics(verify(namespace or kubeconfig_namespace()))
    for problem in problems:
        click.echo(f"FAILED {problem}")
    if problems:
        sys.exit(1)
    click.echo(f"verified: {target}: every artifact matches the signed manifest")


def _register_component_commands() -> None:
    """Subcommands defined next to the component they run."""
    from aigis.admission.rules.cli import rules
    from aigis.gateway.cli import audit, gateway
    from aigis.guardrails.cli import guard
    from aigis.oversight.cli import bom_command, discover_command, report_command
    from aigis.scan import scan
    from aigis.webhook.cli import webhook

    main.add_command(gateway)
    main.add_command(guard)
    main.add_command(webhook)
    main.add_command(scan)
    main.add_command(rules)
    main.add_command(audit)
    main.add_command(discover_command)
    main.add_command(bom_command)
    main.add_command(report_command)


_register_component_commands()
