"""``python -m aigis.devcluster up|down|status|kubeconfig``: the local control plane from a shell.

Typical use::

    python -m aigis.devcluster up
    kubectl --kubeconfig "$(python -m aigis.devcluster kubeconfig)" get nodes
    python -m aigis.devcluster down
"""

from __future__ import annotations

import sys

import click

from aigis.devcluster.build import BuildError
from aigis.devcluster.cluster import ClusterError, down, status, up
from aigis.devcluster.layout import Layout


@click.group()
def main() -> None:
    """Local Kubernetes control plane (etcd, apiserver, KCM, scheduler, kwok) on 127.0.0.1."""


@main.command("up")
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds to wait for each component (default 120, or AIGIS_CLUSTER_TIMEOUT).",
)
def up_command(timeout: float | None) -> None:
    """Start the cluster, or confirm that it already runs. Builds missing binaries first."""
    try:
        up(timeout=timeout)
    except (ClusterError, BuildError, ValueError) as error:
        raise click.ClickException(str(error)) from error


@main.command("down")
def down_command() -> None:
    """Stop every component and delete the cluster state (the binaries stay)."""
    try:
        down()
    except (ClusterError, ValueError) as error:
        raise click.ClickException(str(error)) from error


@main.command("status")
def status_command() -> None:
    """Report each component and readiness condition; exit 1 unless all are healthy."""
    try:
        current = status()
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo(current.describe())
    sys.exit(0 if current.healthy else 1)


@main.command("kubeconfig")
def kubeconfig_command() -> None:
    """Print the admin kubeconfig path (also when the cluster is down)."""
    try:
        click.echo(Layout.from_env().kubeconfig)
    except ValueError as error:
        raise click.ClickException(str(error)) from error


@main.group("real-node")
def real_node() -> None:
    """A second local cluster with a real node: containerd, runc, kubelet (docs/real-node.md)."""


@real_node.command("up")
@click.option("--timeout", type=float, default=None, help="Seconds to wait for each component.")
def real_node_up(timeout: float | None) -> None:
    """Start the real-node cluster (root; builds the kubelet and kube-router when missing)."""
    from aigis.devcluster import realnode

    try:
        realnode.up(timeout=timeout)
    except (ClusterError, BuildError, realnode.RealNodeError, ValueError) as error:
        raise click.ClickException(str(error)) from error


@real_node.command("down")
def real_node_down() -> None:
    """Stop the real node, its pods and its control plane; remove their state."""
    from aigis.devcluster import realnode

    try:
        realnode.down()
    except (ClusterError, realnode.RealNodeError, ValueError) as error:
        raise click.ClickException(str(error)) from error


@real_node.command("status")
def real_node_status() -> None:
    """Report the control plane and the node; exit 1 unless all are healthy."""
    from aigis.devcluster import realnode

    control_plane, node = realnode.status()
    click.echo(control_plane.describe())
    click.echo(
        "\n".join(f"node: {problem}" for problem in node) or f"node {realnode.NODE_NAME}: Ready"
    )
    sys.exit(0 if control_plane.healthy and not node else 1)


@real_node.command("packages")
def real_node_packages() -> None:
    """Print the Debian packages the real node needs, one a line (CI installs the missing)."""
    from aigis.devcluster import realnode

    click.echo("\n".join(realnode.HOST_PACKAGES))


@real_node.command("kubeconfig")
def real_node_kubeconfig() -> None:
    """Print the real-node cluster's admin kubeconfig path."""
    from aigis.devcluster import realnode

    click.echo(realnode.RealNodeLayout.from_env().kubeconfig)


if __name__ == "__main__":
    main()
