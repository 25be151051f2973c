"""The Helm chart against the real API server: server-side validation, install, and aigis
running under exactly the RBAC the chart grants.

`helm install` puts the chart into a namespace of its own (its pods are KWOK-simulated, so no
image is pulled). The operator and the webhook then run as local processes with the identity of
the chart's ServiceAccounts (tokens from `kubectl create token`) through a small scenario: the
webhook registers itself by URL, refuses shadow AI and injects the gateway; the operator
reconciles an AIWorkload, writes its NetworkPolicy and lets a deleted injected pod go. A
permission the chart lacks shows up as a refused call in a log or a step that never happens,
and fails the test.

Isolation from other tests on the same cluster: a unique release name (so unique ClusterRoles),
webhook configuration name and `--scope` label, and an operator scoped to this module's
namespace.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from tests.integration.conftest import Cluster, stand_in_crd
from tests.support.aigis_processes import AigisProcess, free_ports, start_operator, start_webhook

from aigis.admission.templates import TEMPLATE_KINDS

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "aigis"
RUN = uuid.uuid4().hex[:8]
RELEASE = f"it-chart-{RUN}"
RELEASE_NS = f"it-chart-{RUN}"
CONFIGURATION = f"it-chart-{RUN}"
SCOPE_LABEL = "aigis.dev/chart-test"
POLICY = f"it-chart-{RUN}"
GATEWAY_IMAGE = "registry.invalid/aigis/aigis:chart-it"
COMBINATIONS = {
    "defaults": "",
    "cert-manager": "certManager.enabled=true",
    "monitoring": "monitoring.serviceMonitor.enabled=true,monitoring.podMonitor.enabled=true,"
    "monitoring.prometheusRule.enabled=true,monitoring.dashboards.enabled=true",
    "one-replica": "webhook.replicas=1,operator.forensics.checkpoint=true",
}
# Stand-ins for the CRDs of the Prometheus Operator and cert-manager, which this cluster does
# not run: enough for the API server to accept (and scope-check) the chart's objects of those
# kinds in a server-side dry run. Served for this module only (`Cluster.stand_in_crds`).
STAND_IN_CRDS = [
    stand_in_crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
    stand_in_crd("monitoring.coreos.com", "PodMonitor", "podmonitors"),
    stand_in_crd("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
    stand_in_crd("cert-manager.io", "Certificate", "certificates"),
    stand_in_crd("cert-manager.io", "Issuer", "issuers"),
]
_REFUSED = re.compile(r"forbidden|\b403\b", re.IGNORECASE)
# The PolicyReport CRD is kept on uninstall and owned by whichever release installed it first, so
# each release here leaves it alone (policyReports.installCRD=false) and it is applied as a
# cluster without Kyverno would apply it; the rendered template is validated below.
POLICYREPORT_CRD = CHART / "files" / "policyreports.wgpolicyk8s.io.yaml"


def helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [str(cluster.layout.binary("helm")), "--kubeconfig", cluster.kubeconfig, *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def stand_ins(cluster: Cluster) -> Iterator[None]:
    with cluster.stand_in_crds(*STAND_IN_CRDS):
        yield


@pytest.fixture(scope="module")
def release(cluster: Cluster, crds_installed: None) -> Iterator[str]:
    """The chart installed into its own namespace; uninstalled (and the namespace deleted)
    afterwards."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(POLICYREPORT_CRD))
    cluster.kubectl("wait", "--for=condition=Established", "-f", str(POLICYREPORT_CRD))
    result = helm(
        cluster, "install", RELEASE, str(CHART), "--namespace", RELEASE_NS, "--create-namespace",
        "--set", f"webhook.configurationName={CONFIGURATION},webhook.scope={SCOPE_LABEL}={RUN}",
        "--set", f"gateway.image.repository={GATEWAY_IMAGE.rsplit(':', 1)[0]}",
        "--set", f"gateway.image.tag={GATEWAY_IMAGE.rsplit(':', 1)[1]}",
        "--set", "policyReports.installCRD=false",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    assert "STATUS: deployed" in result.stdout
    try:
        yield RELEASE_NS
    finally:
        helm(cluster, "uninstall", RELEASE, "--namespace", RELEASE_NS, check=False)
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            cluster.kubectl("delete", kind, CONFIGURATION, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "namespace", RELEASE_NS, "--wait=false", check=False)


@pytest.mark.parametrize("name", COMBINATIONS)
def test_rendered_chart_passes_server_side_validation(
    cluster: Cluster, release: str, stand_ins: None, name: str
) -> None:
    args = ["template", f"dry-{RUN}", str(CHART), "--namespace", release]
    if COMBINATIONS[name]:
        args += ["--set", COMBINATIONS[name]]
    rendered = helm(cluster, *args).stdout
    result = cluster.kubectl(
        "apply", "--dry-run=server", "--namespace", release, "-f", "-", input=rendered, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    assert result.stdout.count("(server dry run)") == sum(
        1 for d in yaml.safe_load_all(rendered) if d
    ), (kinds, result.stdout)


def test_the_install_runs_its_deployments(cluster: Cluster, release: str) -> None:
    deployments = cluster.get_json("deployments", "-n", release)["items"]
    ready = {d["metadata"]["name"]: d["status"].get("readyReplicas") for d in deployments}
    assert ready == {f"{RELEASE}-aigis-operator": 1, f"{RELEASE}-aigis-webhook": 2}
    assert cluster.get_json("pdb", "-n", release)["items"]


# --- aigis under the chart's identities ----------------------------------------------------


class RecordingProxy:
    """Plain HTTP on 127.0.0.1 in front of the API server, for one process: forwards every call
    (watches streamed) and records what was asked and what was refused, so the test can tell
    which of the chart's RBAC rules the process used and which it lacked."""

    def __init__(self, upstream: str, ca_file: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.ca_file = ca_file
        self.calls: list[tuple[str, str, bool, bool]] = []
        self.refused: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    def start(self) -> str:
        ready = threading.Event()

        async def serve() -> None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None),
                connector=aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=self.ca_file)),
            )
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._forward)
            self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop)
        assert ready.wait(10), "the recording proxy did not start"
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def close() -> None:
            await self._session.close()  # ends the watches still streaming
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        watch = request.query.get("watch") in ("1", "true")
        apply = request.content_type == "application/apply-patch+yaml"
        self.calls.append((request.method, request.path, watch, apply))
        skip = {"host", "content-length", "transfer-encoding", "connection"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        body = await request.read()
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body or None
        ) as upstream:
            if upstream.status == 403:
                self.refused.append(f"{request.method} {request.path_qs}")
            drop = skip | {"content-encoding"}
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in drop},
            )
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                pass  # the process closed a watch: normal at shutdown
            return response

    def used(self) -> set[tuple[str, str, str]]:
        """(apiGroup, resource[/subresource], verb) of every resource call, as RBAC sees it."""
        found = set()
        for method, path, watch, apply in self.calls:
            parts = path.strip("/").split("/")
            if parts[0] == "api" and len(parts) > 2:
                group, rest = "", parts[2:]
            elif parts[0] == "apis" and len(parts) > 3:
                group, rest = parts[1], parts[3:]
            else:
                continue  # discovery, /version, /healthz
            if rest[0] == "namespaces" and len(rest) > 2:
                rest = rest[2:]
            name = rest[1] if len(rest) > 1 else None
            resource = "/".join(rest[0:1] + rest[2:3])
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
            if method == "GET":
                verb = "watch" if watch else ("get" if name else "list")
            elif method == "DELETE":
                verb = "delete" if name else "deletecollection"
            if verb:
                found.add((group, resource, verb))
            if apply:  # server-side apply of an absent object is authorized as create
                found.add((group, resource, "create"))
        return found


def granted(cluster: Cluster, release: str, component: str) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every rule the installed chart gives `component`."""
    name = f"{RELEASE}-aigis-{component}"
    roles = [cluster.get_json("clusterrole", name)]
    found = cluster.kubectl("get", "role", f"{name}-certificates", "-n", release, "-o", "json",
                            check=False)  # fmt: skip
    if found.returncode == 0:
        roles.append(json.loads(found.stdout))
    return {
        (group, resource, verb)
        for role in roles
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# The kinds of TEMPLATE_KINDS from CRDs this cluster does not serve.
AI_NATIVE_RESOURCES = [
    (group, row.resource)
    for row in TEMPLATE_KINDS.values()
    if not row.native
    for group in sorted(row.groups)
]

# Rules the scenario does not exercise, and why they stay. A rule unused here and missing from
# this table fails the test: either the scenario should use it or the chart should drop it.
KNOWN_UNUSED: dict[str, dict[tuple[str, str, str], str]] = {
    "operator": {
        **{
            ("cilium.io", "ciliumnetworkpolicies", v): "Cilium is not installed here"
            for v in ("get", "list", "watch", "create", "patch", "delete")
        },
        ("networking.k8s.io", "networkpolicies", "delete"): "a workload switched to Audit",
        ("networking.k8s.io", "networkpolicies", "get"): "read before a repair",
        ("", "configmaps", "delete"): "gateway config of a removed workload",
        ("", "configmaps", "get"): "the forensics signing public key",
        ("", "secrets", "delete"): "audit key of a removed workload, expired evidence",
        ("", "secrets", "get"): "audit key / signing key already present",
        ("", "secrets", "patch"): "evidence bundles (server-side apply)",
        ("", "services", "get"): "egress to an in-cluster service",
        ("", "namespaces", "get"): "kopf reads a namespace by name",
        ("", "events", "list"): "a captured pod's Events",
        ("", "pods/log", "get"): "container logs in a bundle (KWOK has none)",
        ("aigis.dev", "forensicsnapshots", "delete"): "expired snapshots",
        ("aigis.dev", "forensicsnapshots", "get"): "an OnDemand snapshot",
        ("aigis.dev", "forensicsnapshots", "patch"): "kopf annotations on a snapshot",
        ("aigis.dev", "aiclusterpolicies", "get"): "kopf reads one by name",
        ("aigis.dev", "aiclusterpolicies", "patch"): "kopf's annotations on a policy changed live",
        ("aigis.dev", "aiclusterpolicies/status", "get"): "kopf reads status",
        ("aigis.dev", "aiworkloads/status", "get"): "kopf reads status",
        ("aigis.dev", "forensicsnapshots/status", "get"): "kopf reads status",
        ("aigis.dev", "forensicsnapshots/status", "patch"): "an OnDemand capture's result",
        ("", "pods", "get"): "re-read of a pod before capture",
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"): "kopf's CRD scanning",
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"): "kopf's CRD scanning",
        **{
            (group, resource, "list"): "AI-native kinds the audit lists where their CRD is served"
            for group, resource in AI_NATIVE_RESOURCES
        },
        ("wgpolicyk8s.io", "policyreports", "list"): "a cluster-wide operator lists the reports",
        ("wgpolicyk8s.io", "policyreports", "delete"): "a namespace no longer governed",
    },
    "webhook": {
        ("", "events", "create"): "Audit decisions (this scenario enforces)",
        ("", "secrets", "update"): "certificate renewal",
        ("aigis.dev", "aiworkloads", "get"): "live read of one workload",
        ("aigis.dev", "aiclusterpolicies", "get"): "live read of one policy",
        ("", "namespaces", "get"): "live read of a namespace before a refusal",
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "get"): "read back",
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get"): "read back",
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch"): "re-apply",
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch"): "re-apply",
    },
}


def token_kubeconfig(
    cluster: Cluster, namespace: str, account: str, path: Path, server: str
) -> Path:
    token = cluster.kubectl(
        "create", "token", account, "--namespace", namespace, "--duration", "2h"
    ).stdout.strip()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "local",
                        "cluster": {"server": server},
                    }
                ],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": account,
                        "context": {"cluster": "local", "user": account, "namespace": namespace},
                    }
                ],
                "current-context": account,
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def app_namespace(cluster: Cluster, release: str) -> Iterator[str]:
    name = f"it-chart-app-{RUN}"
    cluster.create_namespace(name, {SCOPE_LABEL: RUN})
    cluster.apply(
        {
            "apiVersion": "aigis.dev/v1alpha1",
            "kind": "AIClusterPolicy",
            "metadata": {"name": POLICY, "labels": {SCOPE_LABEL: RUN}},
            "spec": {
                "namespaceSelector": {"matchLabels": {SCOPE_LABEL: RUN}},
                "enforcement": "Enforce",
                "shadowAI": "Enforce",
            },
        }
    )
    try:
        yield name
    finally:
        pods = cluster.kubectl("get", "pods", "-n", name, "-o", "name", check=False).stdout
        for pod in pods.split():
            cluster.kubectl(
                "patch", pod, "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                check=False,
            )  # fmt: skip
        cluster.kubectl("delete", "aiclusterpolicy", POLICY, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def processes(
    cluster: Cluster,
    release: str,
    app_namespace: str,
    static_hosts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[AigisProcess, RecordingProxy]]]:
    """The webhook and the operator, each with its chart ServiceAccount's token, each talking to
    the API server through a recording proxy of its own."""
    tmp = tmp_path_factory.mktemp("chart-identities")
    proxies = {
        name: RecordingProxy(cluster.server, cluster.ca_file) for name in ("webhook", "operator")
    }
    servers = {name: proxy.start() for name, proxy in proxies.items()}
    webhook_sa, operator_sa = f"{RELEASE}-aigis-webhook", f"{RELEASE}-aigis-operator"
    port, metrics_port, operator_metrics, operator_health = free_ports(4)
    webhook = start_webhook(
        token_kubeconfig(
            cluster, release, webhook_sa, tmp / "webhook.kubeconfig", servers["webhook"]
        ),
        tmp / "webhook.log",
        port=port,
        metrics_port=metrics_port,
        aigis_namespace=release,
        configuration_name=CONFIGURATION,
        scope=f"{SCOPE_LABEL}={RUN}",
        gateway_image=GATEWAY_IMAGE,
    )
    operator = start_operator(
        token_kubeconfig(
            cluster, release, operator_sa, tmp / "operator.kubeconfig", servers["operator"]
        ),
        tmp / "operator.log",
        metrics_port=operator_metrics,
        health_port=operator_health,
        extra=[
            *("--namespace", app_namespace, "--aigis-namespace", release),
            *("--static-hosts", str(static_hosts), "--refresh-seconds", "2"),
        ],
    )
    try:
        cluster.wait_for("the webhook (chart identity) to be ready", webhook.ready, timeout=90)
        cluster.wait_for("the operator (chart identity) to serve metrics", operator.metrics_or_none)
        yield {
            "webhook": (webhook, proxies["webhook"]),
            "operator": (operator, proxies["operator"]),
        }
    finally:
        webhook.stop()
        operator.stop()
        for proxy in proxies.values():
            proxy.stop()
        webhook.assert_clean_log()
        operator.assert_clean_log()


def _apply(cluster: Cluster, namespace: str, *docs: dict[str, Any], dry_run: bool = False) -> Any:
    args = ["apply", "-n", namespace, "-f", "-"] + (["--dry-run=server"] if dry_run else [])
    return cluster.kubectl(*args, input=yaml.safe_dump_all(docs), check=False)


def test_aigis_runs_a_scenario_under_the_chart_rbac(
    cluster: Cluster,
    release: str,
    app_namespace: str,
    processes: dict[str, tuple[AigisProcess, RecordingProxy]],
) -> None:
    operator, _ = processes["operator"]
    ns = app_namespace
    # The webhook kept its certificate Secret and registered its configurations.
    assert cluster.get_json("secret", "aigis-webhook-tls", "-n", release)["data"]["ca.crt"]
    cluster.get_json("mutatingwebhookconfiguration", CONFIGURATION)

    shadow = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "llm", "labels": {"app": "llm"}},
        "spec": {"containers": [{"name": "server", "image": "vllm/vllm-openai:v0.6.0"}]},
    }
    cluster.wait_for(
        "the webhook to refuse shadow AI",
        lambda: "shadow-ai" in _apply(cluster, ns, shadow, dry_run=True).stderr,
    )

    name = "support-bot"
    labels = {"app.kubernetes.io/name": name}
    workload = {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
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
        },
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "openai-api-key"},
        "stringData": {"api-key": "sk-test"},
    }
    app = {
        "name": "app",
        "image": "registry.invalid/shop/support-bot:1.4.2",
        "env": [
            {
                "name": "OPENAI_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": "openai-api-key", "key": "api-key"}},
            }
        ],
    }
    deployment = {
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
    result = _apply(cluster, ns, secret, workload, deployment)
    assert result.returncode == 0, result.stderr

    def ready() -> bool:
        operator.alive()
        found = cluster.get_json("aiw", name, "-n", ns)
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in found.get("status", {}).get("conditions", [])
        )

    cluster.wait_for("the AIWorkload to be Ready (operator, chart identity)", ready)
    cluster.wait_for(
        "the NetworkPolicy",
        lambda: (
            cluster.kubectl(
                "get", "networkpolicy", f"aigis-{name}", "-n", ns, check=False
            ).returncode
            == 0
        ),
    )

    def running_pod() -> dict[str, Any] | None:
        pods = cluster.get_json("pods", "-n", ns, "-l", f"app.kubernetes.io/name={name}")
        running = [p for p in pods["items"] if p.get("status", {}).get("phase") == "Running"]
        return running[0] if running else None

    pod = cluster.wait_for("a Running injected pod", running_pod)
    assert pod["spec"]["initContainers"][0]["image"] == GATEWAY_IMAGE

    # The background audit judged the namespace under the chart's RBAC: the workload's
    # status.audit and the namespace's PolicyReport (the Deployment is compliant).
    def audited() -> dict[str, Any] | None:
        operator.alive()
        found = cluster.get_json("aiw", name, "-n", ns).get("status", {}).get("audit")
        return found if found and found.get("objects") == 1 else None

    audit = cluster.wait_for("status.audit (operator, chart identity)", audited)
    assert (audit["allowed"], audit["denied"]) == (1, 0), audit
    report = cluster.get_json("policyreports.wgpolicyk8s.io", "aigis-audit", "-n", ns)
    assert report["summary"]["pass"] >= 1
    assert report["summary"]["fail"] == 0

    # The forensics finalizer is released by the operator (pods patch, events create).
    cluster.kubectl("scale", "deployment", name, "-n", ns, "--replicas=0")
    pod_name = pod["metadata"]["name"]
    cluster.wait_for(
        "the injected pod to be released and gone",
        lambda: cluster.kubectl("get", "pod", pod_name, "-n", ns, check=False).returncode != 0,
        timeout=90,
    )

    refused = {
        component: proxy.refused
        + [line for line in p.log.read_text().splitlines() if _REFUSED.search(line)]
        for component, (p, proxy) in processes.items()
    }
    assert refused == {"webhook": [], "operator": []}, json.dumps(refused, indent=2)


def test_every_granted_permission_is_used_or_explained(
    cluster: Cluster,
    release: str,
    processes: dict[str, tuple[AigisProcess, RecordingProxy]],
) -> None:
    """Runs after the scenario (same module): what the chart grants minus what the processes
    asked for must be in KNOWN_UNUSED, with its reason. Prints the unused rules."""
    report = {}
    for component, (_, proxy) in processes.items():
        unused = granted(cluster, release, component) - proxy.used()
        report[component] = sorted(unused)
        print(f"\n{component}: granted but unused in the scenario:")
        for group, resource, verb in sorted(unused):
            reason = KNOWN_UNUSED[component].get((group, resource, verb), "UNEXPLAINED")
            print(f"  {group or 'core'}/{resource} {verb}: {reason}")
    unexplained = {
        component: [r for r in rules if r not in KNOWN_UNUSED[component]]
        for component, rules in report.items()
    }
    assert unexplained == {"webhook": [], "operator": []}
