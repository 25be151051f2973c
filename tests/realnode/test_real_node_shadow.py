"""Shadow AI on the real node: an undeclared model server is refused where a policy enforces
and runs, with a warning, where a policy audits.

The pod is a busybox container dressed as a model server (a model name and a vLLM setting in
its environment, as `aigis scan` shows), so the admitted one really starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.realnode.conftest import (
    ON_REAL_NODE,
    SCOPE_LABEL,
    Kubectl,
    running_pod,
    wait_for,
)

from aigis.devcluster import realnode

MODE_LABEL = "aigis.dev/realnode-shadow"
NAMESPACES = {"Enforce": "realnode-shadow-enforce", "Audit": "realnode-shadow-audit"}


def model_server(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "llm", "namespace": namespace, "labels": {"app": "llm"}},
        "spec": {
            **ON_REAL_NODE,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "server",
                    "image": realnode.BUSYBOX_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", "echo model server up; sleep 3600"],
                    "env": [
                        {"name": "MODEL_ID", "value": "meta-llama/Llama-3.1-8B-Instruct"},
                        {"name": "VLLM_PORT", "value": "8000"},
                    ],
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def shadow_namespaces(kubectl: Kubectl, aigis: None) -> Iterator[dict[str, str]]:
    """One namespace per mode, each governed by an AIClusterPolicy with that shadowAI mode."""
    for mode, namespace in NAMESPACES.items():
        kubectl.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=true",
                    timeout=120)  # fmt: skip
        kubectl.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": namespace,
                        "labels": {SCOPE_LABEL: "yes", MODE_LABEL: mode.lower()},
                    },
                },
                {
                    "apiVersion": "aigis.dev/v1alpha1",
                    "kind": "AIClusterPolicy",
                    "metadata": {"name": f"realnode-shadow-{mode.lower()}"},
                    "spec": {
                        "namespaceSelector": {"matchLabels": {MODE_LABEL: mode.lower()}},
                        "enforcement": mode,
                        "shadowAI": mode,
                    },
                },
            ]
        )
        wait_for(
            f"ServiceAccount {namespace}/default",
            lambda n=namespace: (
                kubectl.run("get", "serviceaccount", "default", "-n", n, check=False).returncode
                == 0
            ),
        )
    try:
        yield NAMESPACES
    finally:
        for mode, namespace in NAMESPACES.items():
            kubectl.run("delete", "aiclusterpolicy", f"realnode-shadow-{mode.lower()}",
                        "--ignore-not-found", check=False)  # fmt: skip
            kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def test_an_undeclared_model_server_is_refused_where_a_policy_enforces(
    kubectl: Kubectl, shadow_namespaces: dict[str, str]
) -> None:
    namespace = shadow_namespaces["Enforce"]

    def refused() -> str | None:
        # The webhook re-renders its configuration when the policy appears: retry until the
        # API server sends this namespace's pods to it.
        result = kubectl.run("apply", "-f", "-", stdin=_json(model_server(namespace)), check=False)
        return result.stderr if result.returncode != 0 else _undo(kubectl, namespace)

    stderr = wait_for("the Enforce policy to refuse the model server", refused, timeout=60)
    assert "[shadow-ai]" in stderr
    assert "meta-llama/Llama-3.1-8B-Instruct" in stderr
    assert kubectl.run("get", "pod", "llm", "-n", namespace, check=False).returncode != 0


def test_an_undeclared_model_server_runs_with_a_warning_where_a_policy_audits(
    kubectl: Kubectl, shadow_namespaces: dict[str, str]
) -> None:
    namespace = shadow_namespaces["Audit"]

    def warned() -> str | None:
        result = kubectl.run("apply", "-f", "-", stdin=_json(model_server(namespace)))
        if "shadow-ai" in result.stderr:
            return result.stderr
        kubectl.run("delete", "pod", "llm", "-n", namespace, "--wait=true", check=False)
        return None

    stderr = wait_for("the Audit policy to warn about the model server", warned, timeout=60)
    assert "Warning:" in stderr
    pod = running_pod(kubectl, namespace, "app=llm")
    assert pod["spec"]["nodeName"]
    assert "model server up" in kubectl.run("logs", "-n", namespace, "llm").stdout


def _json(manifest: dict[str, Any]) -> str:
    import json

    return json.dumps(manifest)


def _undo(kubectl: Kubectl, namespace: str) -> None:
    """Admitted before the webhook knew the policy: delete it and let the caller retry."""
    kubectl.run("delete", "pod", "llm", "-n", namespace, "--wait=true", check=False)
    return None
