"""The admission webhook through the real kube-apiserver: `kubectl apply` as a user would.

One `aigis webhook` process per module, on 127.0.0.1 with its own CA, registered by URL and
`caBundle` under configuration names unique to this run. Everything is isolated from other
tests sharing the cluster: the webhook's `--scope` label is set only on this module's
namespaces and AIClusterPolicies, and the configurations, policies and namespaces are deleted
at the end. Injected pods would carry the forensics finalizer, which nothing removes in this
cluster, so the AIWorkloads here turn forensics off.

The webhook outage test stops the process, so it comes last.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from tests.integration.conftest import Cluster, stand_in_crd
from tests.support.aigis_processes import AigisProcess, start_webhook

from aigis.admission.mutation import KEY_PLACEHOLDER

RUN = uuid.uuid4().hex[:8]
SCOPE_LABEL = "aigis.dev/admission-test"
MODE_LABEL = "aigis.dev/admission-test-mode"
CONFIGURATION = f"it-admission-{RUN}"
ENFORCE_POLICY = f"it-admission-{RUN}-enforce"
AUDIT_POLICY = f"it-admission-{RUN}-audit"
GATEWAY_IMAGE = "registry.invalid/aigis/aigis:it"
APP_IMAGE = "registry.invalid/shop/support-bot:1.4.2"
MODEL_SERVER_IMAGE = "vllm/vllm-openai:v0.6.0"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


# --- manifests --------------------------------------------------------------------------------


def cluster_policy(name: str, mode: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIClusterPolicy",
        "metadata": {"name": name, "labels": {SCOPE_LABEL: RUN}},
        "spec": {
            "namespaceSelector": {"matchLabels": {SCOPE_LABEL: RUN, MODE_LABEL: mode}},
            **spec,
        },
    }


def aiworkload(name: str = "support-bot", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "owner": "team-support",
            "purpose": "Answers customer questions about orders.",
            "enforcement": "Enforce",
            "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
            "egress": [{"host": "api.openai.com"}],
            "gateway": {
                "providerKeys": [
                    {
                        "provider": "openai",
                        "secretRef": {"name": "openai-api-key", "key": "api-key"},
                    }
                ]
            },
            "forensics": {"captureOnTermination": False},
            **spec,
        },
    }


def deployment(name: str = "support-bot", **container: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    app: dict[str, Any] = {
        "name": "app",
        "image": APP_IMAGE,
        "env": [
            {
                "name": "OPENAI_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": "openai-api-key", "key": "api-key"}},
            }
        ],
    }
    app.update(container)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"automountServiceAccountToken": False, "containers": [app]},
            },
        },
    }


def model_server_pod(name: str = "llm") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "server", "image": MODEL_SERVER_IMAGE}]},
    }


def apply(
    cluster: Cluster, namespace: str | None, *manifests: dict[str, Any], dry_run: bool = False
) -> subprocess.CompletedProcess[str]:
    """`kubectl apply` of several documents in one file; never raises, the caller asserts."""
    args = ["apply", "-f", "-"]
    if namespace is not None:
        args += ["--namespace", namespace]
    if dry_run:
        args.append("--dry-run=server")
    return cluster.kubectl(*args, input=yaml.safe_dump_all(manifests), check=False)


# --- fixtures ---------------------------------------------------------------------------------


def _delete_namespaces(cluster: Cluster, names: list[str]) -> None:
    """Delete this module's namespaces and wait until they are gone.

    Waiting matters: an operator that another test module starts cluster-wide would otherwise
    find this module's AIWorkloads in namespaces still terminating. Pod finalizers are cleared
    first so deletion cannot hang on a controller that does not run here.
    """
    for name in names:
        pods = cluster.kubectl("get", "pods", "-n", name, "-o", "name", check=False).stdout
        for pod in pods.split():
            cluster.kubectl(
                "patch", pod, "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                check=False,
            )  # fmt: skip
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    for name in names:
        cluster.wait_for(
            f"namespace {name} to be deleted",
            lambda name=name: (
                cluster.kubectl("get", "namespace", name, check=False).returncode != 0
            ),
            timeout=120,
        )


@pytest.fixture(scope="module")
def make_namespace(cluster: Cluster) -> Iterator[Callable[[str], str]]:
    """Creates namespaces in this run's scope with a mode label (enforce, audit, none)."""
    created: list[str] = []

    def make(mode: str) -> str:
        name = f"it-adm-{mode}-{uuid.uuid4().hex[:6]}"
        created.append(name)
        cluster.create_namespace(name, {SCOPE_LABEL: RUN, MODE_LABEL: mode})
        return name

    yield make
    _delete_namespaces(cluster, created)


@pytest.fixture(scope="module")
def aigis_namespace(make_namespace: Callable[[str], str]) -> str:
    """aigis's own namespace for the webhook. It carries the scope and enforce labels on
    purpose: the webhook must leave it alone all the same."""
    return make_namespace("enforce")


@pytest.fixture(scope="module")
def webhook(
    cluster: Cluster,
    crds_installed: None,
    aigis_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AigisProcess]:
    """`aigis webhook` on loopback, registered by URL, with one Enforce and one Audit policy."""
    for policy in (
        cluster_policy(ENFORCE_POLICY, "enforce", enforcement="Enforce", shadowAI="Enforce"),
        cluster_policy(AUDIT_POLICY, "audit", enforcement="Audit", shadowAI="Audit"),
    ):
        cluster.apply(policy)
    running = start_webhook(
        cluster.kubeconfig,
        tmp_path_factory.mktemp("webhook") / "webhook.log",
        aigis_namespace=aigis_namespace,
        configuration_name=CONFIGURATION,
        scope=f"{SCOPE_LABEL}={RUN}",
        gateway_image=GATEWAY_IMAGE,
    )
    try:
        cluster.wait_for("the webhook to be ready", running.ready)
        cluster.wait_for("the Fail entry of the Enforce policy", lambda: _fail_entries(cluster))
        yield running
    finally:
        running.stop()
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            cluster.kubectl("delete", kind, CONFIGURATION, "--ignore-not-found", check=False)
        for name in (ENFORCE_POLICY, AUDIT_POLICY):
            cluster.kubectl("delete", "aiclusterpolicy", name, "--ignore-not-found", check=False)
        running.assert_clean_log()


def _fail_entries(cluster: Cluster) -> list[str]:
    found = cluster.kubectl(
        "get", "validatingwebhookconfiguration", CONFIGURATION, "-o", "json", check=False
    )
    if found.returncode != 0:
        return []
    return [w["name"] for w in json.loads(found.stdout)["webhooks"] if w["failurePolicy"] == "Fail"]


@pytest.fixture(scope="module")
def enforce_ns(
    webhook: AigisProcess, cluster: Cluster, make_namespace: Callable[[str], str]
) -> str:
    name = make_namespace("enforce")
    # Wait until the API server calls the webhook for this namespace and it refuses shadow AI.
    cluster.wait_for(
        "the webhook to refuse shadow AI in the Enforce namespace",
        lambda: "shadow-ai" in apply(cluster, name, model_server_pod(), dry_run=True).stderr,
    )
    return name


@pytest.fixture(scope="module")
def audit_ns(webhook: AigisProcess, cluster: Cluster, make_namespace: Callable[[str], str]) -> str:
    name = make_namespace("audit")
    cluster.wait_for(
        "the webhook to warn about shadow AI in the Audit namespace",
        lambda: "Warning:" in apply(cluster, name, model_server_pod(), dry_run=True).stderr,
    )
    return name


# --- tests ------------------------------------------------------------------------------------


def test_registered_configurations_exclude_the_system_namespaces_and_fail_open_by_default(
    cluster: Cluster, webhook: AigisProcess, aigis_namespace: str
) -> None:
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        configuration = cluster.get_json(kind, CONFIGURATION)
        ours = 0
        for entry in configuration["webhooks"]:
            assert entry["sideEffects"] == "None"
            assert entry["timeoutSeconds"] <= 5
            assert entry["clientConfig"]["url"].startswith(f"https://127.0.0.1:{webhook.port}/")
            if "namespaceSelector" not in entry or not entry["namespaceSelector"]:
                assert entry["rules"][0]["scope"] == "Cluster"
                continue
            expressions = entry["namespaceSelector"]["matchExpressions"]
            excluded = next(
                e["values"] for e in expressions if e["key"] == "kubernetes.io/metadata.name"
            )
            assert set(excluded) == {*SYSTEM_NAMESPACES, aigis_namespace}
            assert {"key": SCOPE_LABEL, "operator": "In", "values": [RUN]} in expressions
            # Fail entries come from Enforce policies; others' (on a shared cluster) are
            # harmless here, since the scope requirement above limits them to this run.
            if entry["failurePolicy"] == "Fail":
                assert entry["name"].startswith("enforce-")
            if entry["name"].startswith(f"enforce-{ENFORCE_POLICY}."):
                ours += 1
                assert entry["failurePolicy"] == "Fail"
                assert entry["namespaceSelector"]["matchLabels"] == {
                    SCOPE_LABEL: RUN,
                    MODE_LABEL: "enforce",
                }
        assert ours >= 1, f"no fail-closed entry for {ENFORCE_POLICY} in {kind}"
        if kind == "mutatingwebhookconfiguration":
            assert {e["reinvocationPolicy"] for e in configuration["webhooks"]} == {"IfNeeded"}


def test_certificates_are_kept_in_a_secret_and_trusted_by_the_configuration(
    cluster: Cluster, webhook: AigisProcess, aigis_namespace: str
) -> None:
    secret = cluster.get_json("secret", "aigis-webhook-tls", "-n", aigis_namespace)
    assert secret["type"] == "kubernetes.io/tls"
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
    configuration = cluster.get_json("validatingwebhookconfiguration", CONFIGURATION)
    assert {e["clientConfig"]["caBundle"] for e in configuration["webhooks"]} == {
        secret["data"]["ca.crt"]
    }
    metrics = webhook.metrics()
    assert 'aigis_webhook_certificate_expiry_timestamp_seconds{certificate="serving"}' in metrics
    assert 'aigis_webhook_certificate_expiry_timestamp_seconds{certificate="ca"}' in metrics
    assert base64.b64decode(secret["data"]["ca.crt"]).startswith(b"-----BEGIN CERTIFICATE-----")


def test_a_non_compliant_deployment_is_refused_with_the_reason(
    cluster: Cluster, enforce_ns: str
) -> None:
    result = apply(
        cluster,
        enforce_ns,
        aiworkload(),
        deployment(securityContext={"privileged": True}),
    )
    assert result.returncode != 0
    assert "denied the request" in result.stderr
    assert "[pod-security/privileged]" in result.stderr
    assert "spec.template.spec.containers[0].securityContext.privileged" in result.stderr
    found = cluster.kubectl("get", "deployment", "support-bot", "-n", enforce_ns, check=False)
    assert found.returncode != 0


def test_a_compliant_deployment_runs_with_the_gateway_injected(
    cluster: Cluster, enforce_ns: str
) -> None:
    # The AIWorkload and its Deployment in one apply: the webhook must not miss the workload
    # it has not seen through its watch yet.
    name = "chat"
    result = apply(cluster, enforce_ns, aiworkload(name), deployment(name))
    assert result.returncode == 0, result.stderr

    def running_pod() -> dict[str, Any] | None:
        pods = cluster.get_json("pods", "-n", enforce_ns, "-l", f"app.kubernetes.io/name={name}")
        for pod in pods["items"]:
            if pod.get("status", {}).get("phase") == "Running":
                return dict(pod)
        return None

    pod = cluster.wait_for("a Running pod of the compliant Deployment", running_pod)
    gateway = pod["spec"]["initContainers"][0]
    assert gateway["name"] == "aigis-gateway"
    assert gateway["restartPolicy"] == "Always"
    assert gateway["image"] == GATEWAY_IMAGE
    app = next(c for c in pod["spec"]["containers"] if c["name"] == "app")
    key = next(e for e in app.get("env", []) if e["name"] == "OPENAI_API_KEY")
    assert "valueFrom" not in key, "the provider key must not reach the app container"
    assert key["value"] == KEY_PLACEHOLDER
    # The key goes to the gateway instead, as a file from the Secret.
    projected = [
        source["secret"]
        for volume in pod["spec"]["volumes"]
        for source in volume.get("projected", {}).get("sources", [])
        if "secret" in source
    ]
    assert {"name": "openai-api-key", "items": [{"key": "api-key", "path": "openai"}]} in projected
    assert pod["metadata"]["annotations"]["aigis.dev/injected"] == "true"


def test_an_undeclared_model_server_is_refused_in_enforce(
    cluster: Cluster, enforce_ns: str
) -> None:
    result = apply(cluster, enforce_ns, model_server_pod())
    assert result.returncode != 0
    assert "[shadow-ai]" in result.stderr
    assert "vLLM" in result.stderr


RAY_CRD = stand_in_crd("ray.io", "RayCluster", "rayclusters")
"""A stand-in for KubeRay's CRD (only its name and group matter here)."""


def test_an_undeclared_ray_cluster_serving_a_model_is_refused_in_enforce(
    cluster: Cluster, enforce_ns: str
) -> None:
    """AI-native kinds reach the webhook too: the API server sends ray.io objects because the
    validating rules name them, and the engine reads the pod templates inside."""
    head = {"spec": {"containers": [{"name": "head", "image": "vllm/vllm-openai:v0.6.0"}]}}
    ray = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "llm"},
        "spec": {"headGroupSpec": {"template": head}},
    }
    with cluster.stand_in_crds(RAY_CRD):
        result = cluster.wait_for(
            "the API server to send RayClusters to the webhook",
            lambda: (r := apply(cluster, enforce_ns, ray, dry_run=True)).returncode != 0 and r,
        )
    assert "[shadow-ai]" in result.stderr
    assert "spec.headGroupSpec.template" in result.stderr


def test_an_undeclared_model_server_is_warned_and_recorded_in_audit(
    cluster: Cluster, audit_ns: str, webhook: AigisProcess
) -> None:
    result = apply(cluster, audit_ns, model_server_pod("llm-audit"))
    assert result.returncode == 0, result.stderr
    assert "Warning:" in result.stderr
    assert "shadow-ai" in result.stderr

    def audit_event() -> dict[str, Any] | None:
        events = cluster.get_json("events", "-n", audit_ns)["items"]
        for event in events:
            if (
                event.get("reason") == "AIPolicyAudit"
                and event["involvedObject"].get("name") == "llm-audit"
            ):
                return dict(event)
        return None

    event = cluster.wait_for("an audit Event", audit_event)
    assert event["type"] == "Warning"
    assert "vLLM" in event["message"]
    assert 'aigis_webhook_audit_decisions_total{kind="Pod"}' in webhook.metrics()


def test_ephemeral_containers_are_reviewed_through_the_subresource(
    cluster: Cluster, enforce_ns: str
) -> None:
    """`kubectl debug` writes pods/ephemeralcontainers: the webhook must see it (issue 13 item 2).
    A debug container sharing the gateway's processes, or a privileged one, is refused; a plain
    one is admitted, and the pod is not injected again."""
    name = "debuggee"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [{"name": "app", "image": APP_IMAGE}],
        },
    }
    result = apply(cluster, enforce_ns, aiworkload(name), pod)
    assert result.returncode == 0, result.stderr

    def debug(container: str, *flags: str) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl(
            "debug", name, "-n", enforce_ns, "--image", "busybox:1.36", "-c", container, *flags,
            check=False,
        )  # fmt: skip

    targeted = debug("peek", "--target", "aigis-gateway")
    assert targeted.returncode != 0
    assert "[gateway/debug-target]" in targeted.stderr
    privileged = debug("root", "--profile", "sysadmin")
    assert privileged.returncode != 0
    assert "[pod-security/privileged]" in privileged.stderr
    plain = debug("look", "--profile", "baseline")
    assert plain.returncode == 0, plain.stderr
    stored = cluster.get_json("pod", name, "-n", enforce_ns)
    assert [c["name"] for c in stored["spec"]["ephemeralContainers"]] == ["look"]
    assert [c["name"] for c in stored["spec"]["initContainers"]] == ["aigis-gateway"]


def test_an_invalid_aiworkload_is_refused_with_the_field(cluster: Cluster, enforce_ns: str) -> None:
    invalid = aiworkload("bad", egress=[{"host": "https://api.openai.com/v1"}])
    result = apply(cluster, enforce_ns, invalid)
    assert result.returncode != 0
    assert "spec.egress[0].host" in result.stderr
    assert "aiworkload/invalid" in result.stderr


def test_an_invalid_cluster_policy_is_refused(cluster: Cluster, webhook: AigisProcess) -> None:
    bad = cluster_policy(f"it-admission-{RUN}-bad", "none", allowedRegions=["atlantis"])
    result = apply(cluster, None, bad)
    assert result.returncode != 0, "an invalid policy must not be stored"
    assert "spec.allowedRegions[0]" in result.stderr


@pytest.mark.parametrize("system", SYSTEM_NAMESPACES)
def test_system_namespaces_are_never_touched(
    cluster: Cluster, webhook: AigisProcess, enforce_ns: str, system: str
) -> None:
    """Even labelled into this run's Enforce scope, a system namespace is left alone.

    The labels are this run's own (no other webhook selects them) and are removed at once; the
    pod is only a server-side dry run, which still goes through admission.
    """
    labels = [f"{SCOPE_LABEL}={RUN}", f"{MODE_LABEL}=enforce"]
    pod = model_server_pod("aigis-admission-test")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    cluster.kubectl("label", "namespace", system, *labels, "--overwrite")
    try:
        # The same pod is refused in an ordinary namespace with the same labels...
        assert apply(cluster, enforce_ns, pod, dry_run=True).returncode != 0
        # ...and admitted, unmutated, in the system namespace.
        result = apply(cluster, system, pod, dry_run=True)
        assert result.returncode == 0, result.stderr
        assert "Warning" not in result.stderr
    finally:
        cluster.kubectl("label", "namespace", system, f"{SCOPE_LABEL}-", f"{MODE_LABEL}-")
    created = cluster.kubectl(
        "create", "-f", "-", "-n", system, "--dry-run=server", "-o", "json",
        input=json.dumps(model_server_pod("aigis-admission-test")),
    )  # fmt: skip
    assert "initContainers" not in json.loads(created.stdout)["spec"]


def test_aigis_own_namespace_is_never_touched(
    cluster: Cluster, webhook: AigisProcess, aigis_namespace: str
) -> None:
    result = apply(cluster, aigis_namespace, model_server_pod(), dry_run=True)
    assert result.returncode == 0, result.stderr


def test_outage_fails_open_outside_enforce_namespaces(
    cluster: Cluster,
    webhook: AigisProcess,
    enforce_ns: str,
    audit_ns: str,
    make_namespace: Callable[[str], str],
) -> None:
    """Last: stops the webhook. Pods are still admitted where no Enforce policy governs."""
    plain = make_namespace("none")
    webhook.stop()
    webhook.assert_clean_log()
    for namespace in (audit_ns, plain):
        result = apply(cluster, namespace, model_server_pod("while-down"), dry_run=True)
        assert result.returncode == 0, result.stderr
    refused = apply(cluster, enforce_ns, deployment("while-down"), dry_run=True)
    assert refused.returncode != 0
    assert "failed calling webhook" in refused.stderr
