"""Kubeconfig files for the admin user and the control-plane components.

The data is embedded (not referenced by path) so a kubeconfig can be copied elsewhere and still
work, and so it never depends on the working directory of whoever reads it.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from aigis.devcluster.pki import PkiFiles

CLUSTER_NAME = "aigis-dev"


def render_kubeconfig(server: str, pki: PkiFiles, cert_stem: str, user: str) -> dict[str, Any]:
    """A single-context kubeconfig authenticating with the client certificate ``cert_stem``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _b64(pki.ca_cert),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(pki.cert(cert_stem)),
                    "client-key-data": _b64(pki.key(cert_stem)),
                },
            }
        ],
        "contexts": [
            {
                "name": f"{user}@{CLUSTER_NAME}",
                "context": {"cluster": CLUSTER_NAME, "user": user},
            }
        ],
        "current-context": f"{user}@{CLUSTER_NAME}",
    }


def write_kubeconfig(path: Path, server: str, pki: PkiFiles, cert_stem: str, user: str) -> Path:
    """Write a kubeconfig readable by the owner only (it contains a private key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    content = yaml.safe_dump(render_kubeconfig(server, pki, cert_stem, user), sort_keys=False)
    path.write_text(content)
    return path


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")
