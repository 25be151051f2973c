"""Configuration for kwok, the controller that plays kubelet for a simulated node.

kwok v0.8.0 refuses to start without Stage definitions. It ships its standard stages (node
initialize, node heartbeat with lease, pod ready/complete/delete) in its Go module, and
``hack/build-control-plane.sh`` copies them to ``$AIGIS_CACHE/kwok/stages``; they are concatenated
here with our own ClusterLogs so ``kubectl logs`` on a simulated pod returns a few fixed lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aigis.devcluster.layout import LOOPBACK, NODE_NAME

# The stages kwokctl itself installs for a cluster; kept in the order node first, then pods.
REQUIRED_STAGE_FILES = (
    "node-initialize.yaml",
    "node-heartbeat-with-lease.yaml",
    "pod-ready.yaml",
    "pod-complete.yaml",
    "pod-delete.yaml",
)

NODE_ANNOTATION_SELECTOR = "kwok.x-k8s.io/node=fake"

# Room for the 1,000-object benchmarks with plenty to spare. kwok's node-initialize stage keeps
# whatever allocatable/capacity the Node was created with (it only defaults empty ones).
NODE_POD_CAPACITY = "10000"

# CRI log format: timestamp, stream, P(artial)/F(ull) tag, content.
SIMULATED_LOG_LINES = (
    "2026-01-01T00:00:00Z stdout F simulated by kwok",
    "2026-01-01T00:00:01Z stdout F this pod runs on a fake node of the aigis dev cluster",
)


def missing_stage_files(stages_dir: Path) -> list[str]:
    """The required stage files not present in ``stages_dir``."""
    return [name for name in REQUIRED_STAGE_FILES if not (stages_dir / name).is_file()]


def write_kwok_config(stages_dir: Path, config_file: Path, logs_file: Path) -> Path:
    """Write kwok's ``--config``: the standard stages plus a ClusterLogs for every pod."""
    logs_file.parent.mkdir(parents=True, exist_ok=True)
    logs_file.write_text("\n".join(SIMULATED_LOG_LINES) + "\n")
    documents = [(stages_dir / name).read_text().strip() for name in REQUIRED_STAGE_FILES]
    documents.append(yaml.safe_dump(cluster_logs(logs_file), sort_keys=False).strip())
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text("\n---\n".join(documents) + "\n")
    return config_file


def cluster_logs(logs_file: Path) -> dict[str, Any]:
    """A ClusterLogs without selector or container names: it applies to every container."""
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterLogs",
        "metadata": {"name": "aigis-simulated-logs"},
        "spec": {"logs": [{"logsFile": str(logs_file), "previousLogsFile": str(logs_file)}]},
    }


def node_manifest(name: str = NODE_NAME) -> dict[str, Any]:
    """The simulated Node. Its only address is 127.0.0.1, so ``kubectl logs`` stays on loopback.

    The status is set at creation (the API server keeps a Node's status on create, as kubelets rely
    on) so the allocatable pod count and the addresses are ours, not kwok's defaults.
    """
    resources = {"cpu": "1000", "memory": "1Ti", "pods": NODE_POD_CAPACITY}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {},
        "status": {
            # Both address types must be present: kwok's node-initialize stage otherwise renders an
            # empty `addresses:` that wipes them. The Hostname is "localhost" (as kwokctl does) so
            # even a client preferring Hostname stays on loopback without a real DNS lookup.
            "addresses": [
                {"type": "InternalIP", "address": LOOPBACK},
                {"type": "Hostname", "address": "localhost"},
            ],
            "allocatable": resources,
            "capacity": resources,
        },
    }
