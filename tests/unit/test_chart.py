"""The Helm chart (charts/aigis) rendered offline: lint, values combinations, what it promises.

Needs the helm binary the control-plane build caches (`make control-plane`); promtool comes from
Debian's `prometheus` package (.ci/run installs it). Server-side validation and the install under
the chart's own RBAC are in tests/integration/test_chart_install.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "aigis"
HELM = Path(os.environ.get("AIGIS_CACHE", Path.home() / ".cache" / "aigis")) / "bin" / "helm"
KUBE_VERSION = "1.36.3"
MONITORING = (
    "monitoring.serviceMonitor.enabled=true,monitoring.podMonitor.enabled=true,"
    "monitoring.prometheusRule.enabled=true,monitoring.dashboards.enabled=true"
)
# name -> --set string; every combination is linted and rendered, and validated server-side
# in the integration test.
COMBINATIONS: dict[str, str] = {
    "defaults": "",
    "cert-manager": "certManager.enabled=true",
    "cert-manager-cluster-issuer": "certManager.enabled=true,certManager.issuerRef.name=ca,"
    "certManager.issuerRef.kind=ClusterIssuer",
    "monitoring": MONITORING,
    "one-replica": "webhook.replicas=1",
    "scoped": "operator.watchNamespaces={a,b},webhook.scope=team=ai,gateway.image.tag=9.9.9",
}

needs_helm = pytest.mark.skipif(
    not HELM.is_file(), reason=f"{HELM} is missing: `make control-plane` builds it"
)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, check=False, timeout=60
    )


def render(sets: str = "", *extra: str) -> list[dict[str, Any]]:
    args = ["template", "aigis", str(CHART), "--namespace", "aigis-system"]
    args += ["--kube-version", KUBE_VERSION, *extra]
    if sets:
        args += ["--set", sets]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def find(docs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


def test_chart_crds_are_the_generated_crds() -> None:
    """One source: charts/aigis/crds/ is a byte-for-byte copy of crds/ (`cp crds/*.yaml
    charts/aigis/crds/` after `make crds`)."""
    generated = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    charted = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert generated
    assert charted == generated


@needs_helm
@pytest.mark.parametrize("name", COMBINATIONS)
def test_helm_lint_passes(name: str) -> None:
    args = ["lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION]
    if COMBINATIONS[name]:
        args += ["--set", COMBINATIONS[name]]
    result = helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_helm
@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ("operator.replicas=2", "/operator/replicas"),
        ("webhook.timeoutSeconds=9", "/webhook/timeoutSeconds"),
        ("webhook.enforceFailurePolicy=Maybe", "/webhook/enforceFailurePolicy"),
        ("webhook.replica=3", "additional properties 'replica'"),
        ("image.digest=latest", "/image/digest"),
        ("operator.audit.intervalSeconds=-1", "/operator/audit/intervalSeconds"),
        ("policyReports.installCRD=maybe", "/policyReports/installCRD"),
    ],
)
def test_the_schema_refuses_wrong_values(sets: str, message: str) -> None:
    result = helm("template", "aigis", str(CHART), "--set", sets)
    assert result.returncode != 0
    assert message in result.stderr


@needs_helm
def test_webhook_is_highly_available_and_locked_down() -> None:
    docs = render()
    deploy = find(docs, "Deployment", "-webhook")
    spec = deploy["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert find(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert spec["affinity"]["podAntiAffinity"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]
    _assert_locked_down(spec)
    service = find(docs, "Service", "-webhook")
    assert service["spec"]["ports"][0]["port"] == 443
    assert f"--service-name={service['metadata']['name']}" in container["args"]


@needs_helm
def test_operator_is_one_replica_replaced_with_recreate() -> None:
    docs = render()
    deploy = find(docs, "Deployment", "-operator")
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert not any(a.startswith("--peering") for a in deploy["spec"]["template"]["spec"]
                   ["containers"][0]["args"])  # fmt: skip
    _assert_locked_down(deploy["spec"]["template"]["spec"])


def _grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@needs_helm
def test_the_operator_may_read_everything_the_audit_reads() -> None:
    """The background audit lists every kind of `inventory_resources()` (the kinds that run pods
    in TEMPLATE_KINDS, aigis's own, Namespaces) and writes PolicyReports: the chart must grant
    exactly that, whatever row is added to the table."""
    from aigis.oversight.inventory import inventory_resources

    grants = _grants(find(render(), "ClusterRole", "-operator"))
    missing = {
        (r.group, r.resource, "list")
        for r in inventory_resources()
        if (r.group, r.resource, "list") not in grants
    }
    assert missing == set(), "add these to templates/operator-rbac.yaml"
    for verb in ("get", "list", "create", "patch", "delete"):
        assert ("wgpolicyk8s.io", "policyreports", verb) in grants


@needs_helm
def test_the_audit_interval_reaches_the_operator() -> None:
    deploy = find(render("operator.audit.intervalSeconds=0"), "Deployment", "-operator")
    assert "--audit-interval=0" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]


@needs_helm
def test_the_policyreport_crd_is_installed_unless_told_not_to() -> None:
    crd = find(render(), "CustomResourceDefinition")
    source = yaml.safe_load((CHART / "files" / "policyreports.wgpolicyk8s.io.yaml").read_text())
    assert crd["spec"] == source["spec"]
    assert crd["metadata"]["name"] == "policyreports.wgpolicyk8s.io"
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    kinds = [d["kind"] for d in render("policyReports.installCRD=false")]
    assert "CustomResourceDefinition" not in kinds


def _assert_locked_down(spec: dict[str, Any]) -> None:
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in spec["volumes"]


@needs_helm
@pytest.mark.parametrize("name", COMBINATIONS)
def test_rbac_has_no_wildcards(name: str) -> None:
    for doc in render(COMBINATIONS[name]):
        if doc["kind"] in ("ClusterRole", "Role"):
            for rule in doc["rules"]:
                for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert "*" not in rule.get(key, []), (doc["metadata"]["name"], rule)


@needs_helm
def test_the_chart_renders_no_webhook_configuration() -> None:
    """The webhook process applies its configurations itself (CA bundle, failure policies)."""
    kinds = {d["kind"] for d in render(MONITORING)}
    assert not kinds & {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}


@needs_helm
def test_the_injected_gateway_runs_the_chart_image_unless_told_otherwise() -> None:
    def gateway_image(sets: str) -> str:
        args = find(render(sets), "Deployment", "-webhook")["spec"]["template"]["spec"][
            "containers"
        ][0]["args"]
        return next(a.split("=", 1)[1] for a in args if a.startswith("--gateway-image="))

    assert gateway_image("image.tag=1.2.3") == "ghcr.io/aigis-dev/aigis:1.2.3"
    digest = "sha256:" + "a" * 64
    assert gateway_image(f"image.digest={digest}") == f"ghcr.io/aigis-dev/aigis@{digest}"
    assert gateway_image("gateway.image.repository=r.example/gw,gateway.image.tag=v2") == (
        "r.example/gw:v2"
    )


@needs_helm
def test_cert_manager_replaces_the_self_managed_secret() -> None:
    docs = render(COMBINATIONS["cert-manager"])
    spec = find(docs, "Deployment", "-webhook")["spec"]["template"]["spec"]
    args = spec["containers"][0]["args"]
    assert "--cert-dir=/etc/aigis/tls" in args
    certificate = find(docs, "Certificate", "-webhook")
    assert {"name": "tls", "secret": {"secretName": certificate["spec"]["secretName"]}} in spec[
        "volumes"
    ]
    assert "aigis-webhook.aigis-system.svc" in certificate["spec"]["dnsNames"]
    # no Role over Secrets: cert-manager writes them
    assert not [d for d in docs if d["kind"] == "Role"]
    default = render()
    assert not [d for d in default if d["kind"] in ("Certificate", "Issuer")]
    assert find(default, "Role")["rules"][0]["resourceNames"] == ["aigis-webhook-tls"]


@needs_helm
def test_monitoring_objects_only_by_value() -> None:
    kinds = [d["kind"] for d in render()]
    assert not {"ServiceMonitor", "PodMonitor", "PrometheusRule"} & set(kinds)
    docs = render(MONITORING)
    pod_monitor = find(docs, "PodMonitor")
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "aigis-metrics"
    assert pod_monitor["spec"]["namespaceSelector"] == {"any": True}
    dashboards = [d for d in docs if d["kind"] == "ConfigMap" and "-dashboard-" in
                  d["metadata"]["name"]]  # fmt: skip
    assert {d["metadata"]["name"].rsplit("-", 1)[1] for d in dashboards} == {
        "overview", "admission", "gateway", "egress",
    }  # fmt: skip
    for configmap in dashboards:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        (text,) = configmap["data"].values()
        assert json.loads(text)["panels"]


def test_dashboards_are_generated_from_hack_dashboards_py() -> None:
    sys.path.insert(0, str(REPO / "hack"))
    try:
        import dashboards
    finally:
        sys.path.remove(str(REPO / "hack"))
    on_disk = {p.name: p.read_text() for p in (CHART / "dashboards").glob("*.json")}
    assert on_disk == dashboards.render(), "run: uv run --frozen python hack/dashboards.py"


def exported_metric_names() -> set[str]:
    """Every series name aigis's three registries can expose."""
    from prometheus_client import REGISTRY

    import aigis.metrics  # noqa: F401  (registers the operator's metrics)
    from aigis.gateway.metrics import GatewayMetrics
    from aigis.webhook.metrics import WebhookMetrics

    names: set[str] = set()
    for registry in (REGISTRY, WebhookMetrics().registry, GatewayMetrics().registry):
        for family in registry.collect():
            if not family.name.startswith("aigis_"):
                continue
            suffixes = {
                "counter": ("_total",),
                "histogram": ("_bucket", "_count", "_sum"),
            }.get(family.type, ("",))
            names.update(family.name + s for s in suffixes)
    return names


_METRIC = re.compile(r"\baigis_[a-z0-9_]+")


@needs_helm
def test_every_dashboard_and_alert_query_names_a_metric_aigis_exports() -> None:
    exported = exported_metric_names()
    queries: list[str] = []
    for path in (CHART / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            queries += [t["expr"] for t in panel["targets"]]
    rule = find(render(MONITORING), "PrometheusRule")
    queries += [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert len(queries) > 30
    used = {m for q in queries for m in _METRIC.findall(q)}
    assert used
    assert used <= exported, sorted(used - exported)


@needs_helm
@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool: apt-get install prometheus")
def test_alert_rules_pass_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    rule = find(render(MONITORING), "PrometheusRule")
    (tmp_path / "full.yaml").write_text(yaml.safe_dump(rule["spec"]))
    check = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "full.yaml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    tests_file = REPO / "tests" / "chart" / "alerts_test.yaml"
    tested = [t["name"] for t in yaml.safe_load(tests_file.read_text())["tests"]]
    assert sorted(tested) == sorted(alerts), "one promtool test per alert"
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            r.pop("annotations", None)
    (tmp_path / "aigis-alerts.yaml").write_text(yaml.safe_dump(rule["spec"]))
    shutil.copy(tests_file, tmp_path / "alerts_test.yaml")
    result = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yaml"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _value_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys of values.yaml; maps documented as a whole (resources, labels) stay whole."""
    keys = []
    for key, value in values.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value and key not in ("resources", "labels"):
            keys += _value_keys(value, dotted)
        else:
            keys.append(dotted)
    return keys


def test_the_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", readme, re.M))
    keys = set(_value_keys(values))
    assert keys - documented == set(), "document these in charts/aigis/README.md"
    assert documented - keys == set(), "the README documents values that do not exist"
