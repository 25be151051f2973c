"""`aigis discover` against the local control plane: an undeclared model server is found, its
draft AIWorkload applies cleanly, and once applied the server counts as declared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from tests.integration.conftest import Cluster
from tests.support.aigis_processes import run_aigis


def discover(cluster: Cluster, *args: str) -> list[dict[str, Any]]:
    result = run_aigis(cluster.kubeconfig, "discover", "-o", "json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_an_undeclared_model_server_is_found_and_its_draft_applies(
    cluster: Cluster, crds_installed: None, namespace: str, tmp_path: Path
) -> None:
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "llm", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": {"app": "llm"}},
                "template": {
                    "metadata": {"labels": {"app": "llm"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "server",
                                "image": "vllm/vllm-openai:v0.6.0",
                                "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct"],
                            }
                        ]
                    },
                },
            },
        }
    )
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    found = [r for r in discover(cluster, "--drafts", str(drafts)) if r["namespace"] == namespace]
    assert [(r["kind"], r["name"], r["declared"]) for r in found] == [("Deployment", "llm", False)]
    assert found[0]["evidence"], found[0]
    (draft_file,) = [
        f
        for f in drafts.glob("*.yaml")
        if yaml.safe_load(f.read_text())["metadata"].get("namespace") == namespace
    ]
    draft = yaml.safe_load(draft_file.read_text())
    assert draft["spec"]["enforcement"] == "Audit"
    cluster.kubectl("apply", "-f", str(draft_file))
    name = draft["metadata"]["name"]
    cluster.kubectl("get", "aiworkload", name, "-n", namespace)

    found = [
        r for r in discover(cluster) if r["namespace"] == namespace and r["kind"] != "AIWorkload"
    ]
    assert [(r["name"], r["declared"]) for r in found] == [("llm", True)]
