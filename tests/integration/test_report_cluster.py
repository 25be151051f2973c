"""`aigis report` against the local control plane.

A namespace holds a compliant workload (declared, Enforce, its pod admitted by the running
webhook with the gateway injected, its AIWorkload Ready and Compliant by the running operator)
and a non-compliant one (declared in Audit mode, its pods keep a ServiceAccount token the
declaration does not allow: admitted with a warning); another holds an undeclared vLLM server
(shadow AI). The report is rendered in Markdown, HTML and JSON and names each correctly; the HTML
renders in headless Chromium without a console error.

Then a user that may read only two of three namespaces (a ServiceAccount bound to `view` and to
reading aigis's resources and the AI-native kinds there, authenticated with a token from the
TokenRequest API) asks for all three: the third is listed as not readable, and the rest is
reported.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from tests.integration.conftest import TEST_NAMESPACE_LABEL, Cluster
from tests.support.aigis_processes import (
    AigisProcess,
    run_aigis,
    start_operator,
    start_webhook,
)
from tests.support.chromium import png_distinct_bytes, png_size, render_page

from aigis.admission.mutation import GATEWAY_CONTAINER
from aigis.oversight.inventory import inventory_resources

RUN = uuid.uuid4().hex[:8]
SCOPE_LABEL = "aigis.dev/report-test"
CONFIGURATION = f"it-report-{RUN}"
GATEWAY_IMAGE = "registry.example.com/ai/aigis@sha256:" + "cd" * 32
APP_IMAGE = "registry.example.com/team/bot@sha256:" + "ef" * 32
GOVERNED = f"it-report-a-{RUN}"
SHADOW = f"it-report-b-{RUN}"
HIDDEN = f"it-report-c-{RUN}"
AIGIS = f"it-report-aigis-{RUN}"
READER_ROLE = f"it-report-reader-{RUN}"


def aiworkload(name: str, enforcement: str) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name, "namespace": GOVERNED},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "owner": "team-support",
            "purpose": f"{name}: answers customer questions",
            "enforcement": enforcement,
            "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
            "egress": [{"host": "api.openai.com"}],
        },
    }


def deployment(
    name: str, namespace: str, container: dict[str, Any], *, token: bool = False
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"automountServiceAccountToken": token, "containers": [container]},
            },
        },
    }


BOT = {"name": "app", "image": APP_IMAGE}
LEGACY = {"name": "app", "image": APP_IMAGE, "env": [{"name": "LLM_MODEL", "value": "gpt-4o"}]}
VLLM = {
    "name": "server",
    "image": "vllm/vllm-openai:v0.6.0",
    "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct"],
}


@dataclass
class Scene:
    reader_kubeconfig: Path


def _conditions(cluster: Cluster, name: str) -> set[tuple[str, str]]:
    found = cluster.kubectl("get", "aiworkload", name, "-n", GOVERNED, "-o", "json", check=False)
    if found.returncode != 0:
        return set()
    status = json.loads(found.stdout).get("status") or {}
    return {(c["type"], c["status"]) for c in status.get("conditions") or ()}


def _wait_compliant(cluster: Cluster, name: str) -> None:
    cluster.wait_for(
        f"AIWorkload {name} Ready and Compliant",
        lambda: _conditions(cluster, name) >= {("Ready", "True"), ("Compliant", "True")},
        timeout=90,
    )


def _running_pod(cluster: Cluster, namespace: str, app: str) -> dict[str, Any] | None:
    for pod in cluster.get_json("pods", "-n", namespace, "-l", f"app={app}")["items"]:
        if pod.get("status", {}).get("phase") == "Running":
            return dict(pod)
    return None


def _reader_kubeconfig(cluster: Cluster, directory: Path) -> Path:
    """A ServiceAccount in GOVERNED that may read GOVERNED and SHADOW only, as a kubeconfig
    holding a token from the TokenRequest API."""
    cluster.kubectl("create", "serviceaccount", "reader", "-n", GOVERNED)
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": READER_ROLE},
            "rules": [
                {
                    "apiGroups": ["aigis.dev"],
                    "resources": ["aiworkloads", "forensicsnapshots"],
                    "verbs": ["get", "list"],
                },
                # `view` has no rules for the AI-native kinds (KubeRay, KServe, ...); an earlier
                # test may have left one of their CRDs served in the shared cluster.
                *(
                    {"apiGroups": [r.group], "resources": [r.resource], "verbs": ["get", "list"]}
                    for r in inventory_resources()
                    if r.group not in ("", "apps", "batch", "aigis.dev")
                ),
            ],
        }
    )
    subject = {"kind": "ServiceAccount", "name": "reader", "namespace": GOVERNED}
    for namespace in (GOVERNED, SHADOW):
        for role in ("view", READER_ROLE):
            cluster.apply(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": f"reader-{role}", "namespace": namespace},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": role,
                    },
                    "subjects": [subject],
                }
            )
    token = cluster.kubectl(
        "create", "token", "reader", "-n", GOVERNED, "--duration", "1h"
    ).stdout.strip()
    assert token.count(".") == 2, "expected a JWT from the TokenRequest API"
    path = directory / "reader.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "dev",
                        "cluster": {
                            "server": cluster.server,
                            "certificate-authority": cluster.ca_file,
                        },
                    }
                ],
                "users": [{"name": "reader", "user": {"token": token}}],
                "contexts": [{"name": "reader", "context": {"cluster": "dev", "user": "reader"}}],
                "current-context": "reader",
            }
        )
    )
    # The binding is in force once the API server says so.
    cluster.wait_for(
        "the reader's RoleBindings",
        lambda: (
            cluster.kubectl(
                "get", "deployments", "-n", SHADOW, check=False, kubeconfig=str(path)
            ).returncode
            == 0
        ),
    )
    return path


@pytest.fixture(scope="module")
def scene(
    cluster: Cluster,
    crds_installed: None,
    static_hosts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scene]:
    """The three workloads applied with the webhook and the operator running."""
    logs = tmp_path_factory.mktemp("report")
    labels = {TEST_NAMESPACE_LABEL: "true", SCOPE_LABEL: RUN}
    for namespace in (GOVERNED, SHADOW, HIDDEN):
        cluster.create_namespace(namespace, labels)
    cluster.kubectl("create", "namespace", AIGIS, check=False)
    # Right after the CRDs are (re)applied their storage may still answer 429; the operator
    # would log that as an error.
    cluster.wait_for(
        "aigis's resources to be served",
        lambda: (
            cluster.kubectl(
                "get", "aiworkloads,forensicsnapshots", "-n", GOVERNED, check=False
            ).returncode
            == 0
        ),
    )
    processes: list[AigisProcess] = []
    try:
        processes.append(
            start_webhook(
                cluster.kubeconfig,
                logs / "webhook.log",
                aigis_namespace=AIGIS,
                configuration_name=CONFIGURATION,
                scope=f"{SCOPE_LABEL}={RUN}",
                gateway_image=GATEWAY_IMAGE,
            )
        )
        processes.append(
            start_operator(
                cluster.kubeconfig,
                logs / "operator.log",
                extra=[
                    *("--namespace", GOVERNED),
                    *("--static-hosts", str(static_hosts), "--refresh-seconds", "5"),
                ],
            )
        )
        cluster.wait_for("the webhook", processes[0].ready)
        cluster.wait_for(
            "the webhook configurations",
            lambda: (
                cluster.kubectl(
                    "get", "mutatingwebhookconfiguration", CONFIGURATION, check=False
                ).returncode
                == 0
            ),
        )
        for name, enforcement in (("bot", "Enforce"), ("legacy", "Audit")):
            cluster.apply(aiworkload(name, enforcement))
            _wait_compliant(cluster, name)
        cluster.apply(deployment("bot", GOVERNED, BOT))
        applied = cluster.kubectl(
            "apply", "-f", "-", input=json.dumps(deployment("legacy", GOVERNED, LEGACY, token=True))
        )
        assert "serviceaccount/token-automount" in applied.stderr, applied.stderr
        cluster.apply(deployment("llm", SHADOW, VLLM))
        cluster.apply(deployment("hidden-llm", HIDDEN, VLLM))
        pod = cluster.wait_for(
            "the injected bot pod", lambda: _running_pod(cluster, GOVERNED, "bot"), timeout=90
        )
        names = [c["name"] for c in pod["spec"].get("initContainers", [])]
        assert GATEWAY_CONTAINER in names, names
        cluster.wait_for(
            "the legacy pod", lambda: _running_pod(cluster, GOVERNED, "legacy"), timeout=90
        )
        yield Scene(_reader_kubeconfig(cluster, logs))
    finally:
        for process in processes:
            process.stop()
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            cluster.kubectl("delete", kind, CONFIGURATION, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "clusterrole", READER_ROLE, "--ignore-not-found", check=False)
        # Injected pods carry the forensics finalizer, which the (stopped) operator would release.
        for pod in cluster.get_json("pods", "-n", GOVERNED)["items"]:
            if pod["metadata"].get("finalizers"):
                cluster.kubectl(
                    "patch", "pod", pod["metadata"]["name"], f"--namespace={GOVERNED}",
                    "--type=json", '--patch=[{"op":"remove","path":"/metadata/finalizers"}]',
                    check=False,
                )  # fmt: skip
        for namespace in (GOVERNED, SHADOW, HIDDEN, AIGIS):
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        for process in processes:
            process.assert_clean_log()


def report(kubeconfig: str | Path, *args: str) -> str:
    result = run_aigis(kubeconfig, "report", *args, timeout=180)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_report_names_compliant_non_compliant_and_shadow_workloads(
    cluster: Cluster, scene: Scene, tmp_path: Path
) -> None:
    data = json.loads(report(cluster.kubeconfig, "--output", "json", "-n", GOVERNED, "-n", SHADOW))
    states = {(w["namespace"], w["name"]): w["state"] for w in data["workloads"]}
    assert states == {
        (GOVERNED, "bot"): "compliant",
        (GOVERNED, "legacy"): "non-compliant",
        (SHADOW, "llm"): "shadow",
    }
    assert data["unreadable"] == []
    (guard,) = [g for g in data["guardrails"] if g["name"] == "bot"]
    assert (guard["pods"], guard["podsInjected"]) == (1, 1)
    rules = {(v["object"], v["rule"]) for v in data["violations"]}
    assert ("Deployment/legacy", "serviceaccount/token-automount") in rules
    declarations = {d["name"]: d for d in data["declarations"]}
    assert declarations["bot"]["compliant"] == "True"
    assert declarations["bot"]["networkPolicy"] == "True"

    markdown = report(cluster.kubeconfig, "-n", GOVERNED, "-n", SHADOW)
    assert f"| compliant | Deployment | {GOVERNED} | bot | bot |" in markdown
    assert f"| non-compliant | Deployment | {GOVERNED} | legacy | legacy |" in markdown
    assert f"| shadow | Deployment | {SHADOW} | llm | - |" in markdown

    page = tmp_path / "report.html"
    report(cluster.kubeconfig, "-n", GOVERNED, "-n", SHADOW, "-o", str(page))
    html = page.read_text()
    for needle in ("compliant</span>", "non-compliant</span>", "shadow</span>", SHADOW):
        assert needle in html, needle
    seen = render_page(
        page,
        tmp_path / "profile",
        width=1280,
        height=900,
        queries={"rows": "document.querySelectorAll('tbody tr').length"},
    )
    assert seen.errors == []
    assert seen.requests == [page.resolve().as_uri()]
    assert seen.facts["rows"] > 5
    assert png_size(seen.screenshot) == (1280, 900)
    assert png_distinct_bytes(seen.screenshot) > 64


def test_a_namespace_the_user_may_not_read_is_listed_and_the_rest_reported(
    scene: Scene,
) -> None:
    data = json.loads(
        report(
            scene.reader_kubeconfig,
            "--output",
            "json",
            "-n",
            GOVERNED,
            "-n",
            SHADOW,
            "-n",
            HIDDEN,
        )
    )
    hidden = [u for u in data["unreadable"] if f'in namespace "{HIDDEN}"' in u]
    assert any(u.startswith("deployments ") and u.endswith("forbidden") for u in hidden), data[
        "unreadable"
    ]
    assert not any(f'namespace "{GOVERNED}"' in u or f'namespace "{SHADOW}"' in u
                   for u in data["unreadable"]), "\n".join(data["unreadable"])  # fmt: skip
    states = {(w["namespace"], w["name"]): w["state"] for w in data["workloads"]}
    assert states[(GOVERNED, "bot")] == "compliant"
    assert states[(SHADOW, "llm")] == "shadow"
    assert not any(namespace == HIDDEN for namespace, _ in states)
    markdown = report(scene.reader_kubeconfig, "-n", GOVERNED, "-n", HIDDEN)
    assert "**Not covered**" in markdown
    assert HIDDEN in markdown


def test_bom_of_the_live_cluster_lists_each_aiworkload_with_its_images(
    cluster: Cluster, scene: Scene
) -> None:
    result = run_aigis(cluster.kubeconfig, "bom", "-n", GOVERNED)
    assert result.returncode == 0, result.stderr
    boms = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    for text in result.stdout.splitlines():
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    by_name = {b["metadata"]["component"]["name"]: b for b in boms}
    assert set(by_name) == {"bot", "legacy"}
    images = {c["name"]: c for c in by_name["bot"]["components"] if c["type"] == "container"}
    app = images["registry.example.com/team/bot"]
    assert app["hashes"] == [{"alg": "SHA-256", "content": "ef" * 32}]
    assert "registry.example.com/ai/aigis" in images  # the injected gateway of its running pod
