"""The node's copy of a locally built image follows a rebuild: imported again when its image ID
changed, skipped when the node already holds that ID, and the kubelet then runs the new one."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from tests.realnode.conftest import IMAGES_NAMESPACE as NAMESPACE
from tests.realnode.conftest import ON_REAL_NODE, Kubectl, wait_for

from aigis.devcluster import realnode

PROBE_IMAGE = "localhost/aigis-realnode-probe:test"


def _build_probe(work: Path, text: str) -> str:
    """The busybox image plus /probe.txt holding `text`, tagged PROBE_IMAGE; its image ID."""
    source = work / "probe.txt"
    source.write_text(text + "\n")
    container = _out("buildah", "from", realnode.BUSYBOX_IMAGE)
    try:
        _out("buildah", "copy", "--chmod", "0644", container, str(source), "/probe.txt")
        _out("buildah", "commit", "--quiet", container, PROBE_IMAGE)
    finally:
        subprocess.run(["buildah", "rm", container], check=False, capture_output=True)
    return _out("podman", "image", "inspect", "--format", "{{.Id}}", PROBE_IMAGE)


def _out(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def test_a_rebuilt_image_is_imported_again_and_an_unchanged_one_is_not(
    real_node: realnode.RealNodeLayout, kubectl: Kubectl, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:12]
    first = _build_probe(tmp_path, f"first build {run}")
    second = ""
    try:
        assert realnode.import_image(real_node, PROBE_IMAGE) == first
        assert realnode.import_image(real_node, PROBE_IMAGE) is None
        assert realnode.node_image_id(real_node, PROBE_IMAGE) == first

        second = _build_probe(tmp_path, f"second build {run}")
        assert second != first
        assert realnode.import_image(real_node, PROBE_IMAGE) == second
        assert realnode.node_image_id(real_node, PROBE_IMAGE) == second

        kubectl.run(
            "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=120
        )
        kubectl.run("create", "namespace", NAMESPACE)
        kubectl.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "probe", "namespace": NAMESPACE},
                "spec": {
                    **ON_REAL_NODE,
                    "automountServiceAccountToken": False,
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "probe",
                            "image": PROBE_IMAGE,
                            "imagePullPolicy": "Never",
                            "command": ["cat", "/probe.txt"],
                        }
                    ],
                },
            }
        )
        pod = wait_for(
            "the probe pod to finish",
            lambda: (
                (p := kubectl.json("pod", "probe", "-n", NAMESPACE))["status"].get("phase")
                in ("Succeeded", "Failed")
                and p
            ),
        )
        assert pod["status"]["phase"] == "Succeeded", pod["status"]
        assert pod["status"]["containerStatuses"][0]["imageID"].endswith(second)
        logs = kubectl.run("logs", "-n", NAMESPACE, "probe").stdout
        assert logs.strip() == f"second build {run}"
        kubectl.run("delete", "namespace", NAMESPACE, "--wait=false")
    finally:
        for image_id in (first, second):
            if image_id:
                subprocess.run(["podman", "rmi", "-f", image_id], check=False, capture_output=True)
