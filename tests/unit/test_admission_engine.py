"""review_object: every admission rule, one table row per case.

Pod cases start from a pod that passes every rule at the strictest settings (restricted Pod
Security, allowed registry, pinned digest, no token, no keys in the app) and change only what the
row is about, so a row fails only for the reason it names. Rows assert the exact set of
(rule, denied) the engine returns, and the path where it matters.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonpatch
import pytest

from aigis.admission.engine import (
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
    RULE_AIWORKLOAD_INVALID,
    RULE_CLUSTER_POLICY_INVALID,
    RULE_IMAGE_DIGEST,
    RULE_IMAGE_REGISTRY,
    RULE_MULTIPLE_COVER,
    RULE_PROVIDER_KEY,
    RULE_RED_TEAM,
    RULE_SHADOW_AI,
    RULE_TOKEN_AUTOMOUNT,
    RULE_WORKLOAD_INVALID,
    RULE_WORKLOAD_NOT_COMPLIANT,
    AdmissionContext,
    Decision,
    covering_workloads,
    policy_bounds,
    review_object,
)
from aigis.admission.images import ImageRef, digest_problem, parse_image, registry_allows
from aigis.admission.mutation import (
    GATEWAY_CONTAINER,
    KEY_PLACEHOLDER,
    OPT_OUT_ANNOTATION,
    InjectionSettings,
    render_pod_patch,
)
from aigis.admission.podsecurity import (
    RULE_HOST_NAMESPACES,
    RULE_HOST_PATH_VOLUMES,
    RULE_PRIVILEGED,
    RULE_RUN_AS_NON_ROOT,
)
from aigis.admission.reasons import Reason
from aigis.admission.shadow import ai_evidence, looks_like_ai
from aigis.admission.templates import pod_template
from aigis.api.aiworkload import AIWorkload
from aigis.api.clusterpolicy import AIClusterPolicySpec
from aigis.egress.compliance import NamedPolicy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NAMESPACE = "apps"
DIGEST = "sha256:" + "a" * 64
IMAGE = f"ghcr.io/acme/bot@{DIGEST}"
GATEWAY_IMAGE = "ghcr.io/aigis/aigis:0.1.0"


# --- builders ------------------------------------------------------------------------------------


def policy(name: str = "org", **spec: Any) -> NamedPolicy:
    return NamedPolicy(name, AIClusterPolicySpec.model_validate(spec, by_alias=True))


STRICT = policy(
    enforcement="Enforce",
    shadowAI="Enforce",
    podSecurity="restricted",
    allowedRegistries=["ghcr.io/acme"],
    requireDigest=True,
)


def workload_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "bot"}},
        "owner": "team-support",
        "purpose": "answers questions about orders",
        "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
        "egress": [{"host": "api.openai.com"}],
        "gateway": {
            "providerKeys": [{"provider": "openai", "secretRef": {"name": "openai", "key": "key"}}]
        },
    }
    spec.update(changes)
    return spec


def workload(name: str = "bot", **changes: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": workload_spec(**changes),
    }


def container(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "app",
        "image": IMAGE,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    base.update(changes)
    return base


def pod_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": [container()],
    }
    spec.update(changes)
    return spec


def pod(
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    **spec_changes: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": "bot-1",
        "namespace": NAMESPACE,
        "labels": dict({"app": "bot"} if labels is None else labels),
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": pod_spec(**spec_changes),
    }


def deployment(**spec_changes: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bot", "namespace": NAMESPACE},
        "spec": {
            "selector": {"matchLabels": {"app": "bot"}},
            "template": {"metadata": {"labels": {"app": "bot"}}, "spec": pod_spec(**spec_changes)},
        },
    }


def vllm_pod(**spec_changes: Any) -> dict[str, Any]:
    spec_changes.setdefault("containers", [container(image="vllm/vllm-openai:v0.6.3")])
    return pod(labels={"app": "llm"}, **spec_changes)


def context(
    workloads: Sequence[Mapping[str, Any]] = (),
    policies: Sequence[NamedPolicy] = (STRICT,),
    *,
    namespace: str | None = NAMESPACE,
    labels: Mapping[str, str] | None = None,
    gateway_image: str | None = None,
) -> AdmissionContext:
    return AdmissionContext(
        namespace=namespace,
        namespace_labels=dict(labels or {"team": "support"}),
        workloads=list(workloads),
        policies=list(policies),
        aigis_namespace="aigis-system",
        now=NOW,
        injection=None if gateway_image is None else InjectionSettings(gateway_image=gateway_image),
    )


def findings(decision: Decision) -> set[tuple[str, bool]]:
    denied = set(decision.denied)
    return {(r.rule, r in denied) for r in decision.reasons}


def rules(decision: Decision) -> set[str]:
    return {r.rule for r in decision.reasons}


# --- templates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "spec_path", "metadata_path"),
    [
        pytest.param(pod(), "spec", "metadata", id="pod-is-its-own-template"),
        pytest.param(deployment(), "spec.template.spec", "spec.template.metadata", id="deployment"),
        *(
            pytest.param(
                {"apiVersion": api, "kind": kind, "spec": {"template": {"spec": {}}}},
                "spec.template.spec",
                "spec.template.metadata",
                id=kind.lower(),
            )
            for api, kind in (
                ("apps/v1", "StatefulSet"),
                ("apps/v1", "DaemonSet"),
                ("apps/v1", "ReplicaSet"),
                ("v1", "ReplicationController"),
                ("batch/v1", "Job"),
            )
        ),
        pytest.param(
            {"apiVersion": "batch/v1", "kind": "CronJob", "spec": {}},
            "spec.jobTemplate.spec.template.spec",
            "spec.jobTemplate.spec.template.metadata",
            id="cronjob-template-under-job-template",
        ),
        pytest.param(
            {"kind": "Deployment"},
            "spec.template.spec",
            "spec.template.metadata",
            id="missing-api-version-read-by-kind",
        ),
    ],
)
def test_pod_template_paths(obj: dict[str, Any], spec_path: str, metadata_path: str) -> None:
    template = pod_template(obj)
    assert template is not None
    assert (template.spec_path, template.metadata_path) == (spec_path, metadata_path)


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param({"apiVersion": "v1", "kind": "Service"}, id="service"),
        pytest.param(
            {"apiVersion": "example.com/v1", "kind": "Deployment"}, id="crd-named-deployment"
        ),
        pytest.param({"apiVersion": "v1", "kind": "Job"}, id="job-in-core-group"),
        pytest.param({"spec": {}}, id="no-kind"),
    ],
)
def test_objects_without_pod_template(obj: dict[str, Any]) -> None:
    assert pod_template(obj) is None
    assert review_object(obj, context()) == Decision(True, (), (), (), None)


def test_template_reads_cronjob_spec() -> None:
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {
            "jobTemplate": {
                "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}}}
            }
        },
    }
    template = pod_template(cronjob)
    assert template is not None
    assert template.labels == {"a": "b"}
    assert template.spec == {"x": 1}


# --- what is never reviewed --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "ctx", "operation"),
    [
        pytest.param(vllm_pod(), context(namespace="kube-system"), "CREATE", id="kube-system"),
        pytest.param(vllm_pod(), context(namespace="kube-public"), "CREATE", id="kube-public"),
        pytest.param(
            vllm_pod(), context(namespace="kube-node-lease"), "CREATE", id="kube-node-lease"
        ),
        pytest.param(vllm_pod(), context(namespace="aigis-system"), "CREATE", id="aigis-namespace"),
        pytest.param(
            workload(egress=[{"host": "https://x.example.com"}]),
            context(namespace="kube-system"),
            "CREATE",
            id="invalid-aiworkload-in-system-namespace",
        ),
        pytest.param(vllm_pod(), context(), "DELETE", id="delete"),
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap"}, context(), "CREATE", id="unknown-kind"
        ),
    ],
)
def test_never_refused(obj: dict[str, Any], ctx: AdmissionContext, operation: str) -> None:
    decision = review_object(obj, ctx, operation=operation)
    assert decision.allowed
    assert decision.reasons == ()


def test_the_same_pod_is_refused_in_an_ordinary_namespace() -> None:
    # The counterpart of test_never_refused: the exemption, not the pod, makes it pass.
    assert not review_object(vllm_pod(), context()).allowed


@pytest.mark.parametrize(
    ("old", "new", "reviewed"),
    [
        pytest.param(vllm_pod(), vllm_pod(), False, id="unchanged-pod-update"),
        pytest.param(
            vllm_pod(),
            {**vllm_pod(), "metadata": {**vllm_pod()["metadata"], "finalizers": []}},
            False,
            id="finalizer-removal",
        ),
        pytest.param(
            vllm_pod(),
            {**vllm_pod(), "metadata": {**vllm_pod()["metadata"], "annotations": {"a": "b"}}},
            False,
            id="pod-annotation-change",
        ),
        pytest.param(
            pod(labels={"app": "web"}), vllm_pod(), True, id="pod-spec-change-is-reviewed"
        ),
        pytest.param(
            vllm_pod(),
            {**vllm_pod(), "metadata": {**vllm_pod()["metadata"], "labels": {"app": "x"}}},
            True,
            id="pod-label-change-is-reviewed",
        ),
        pytest.param(None, vllm_pod(), True, id="update-without-old-object-is-reviewed"),
    ],
)
def test_updates(old: dict[str, Any] | None, new: dict[str, Any], reviewed: bool) -> None:
    decision = review_object(new, context(), operation="UPDATE", old_object=old)
    assert (RULE_SHADOW_AI in rules(decision)) is reviewed


def test_template_annotation_change_is_reviewed() -> None:
    old = deployment(containers=[container(image="vllm/vllm-openai:v1")])
    old["spec"]["template"]["metadata"]["labels"] = {"app": "llm"}
    new = copy.deepcopy(old)
    assert review_object(new, context(), operation="UPDATE", old_object=old).allowed
    new["spec"]["template"]["metadata"]["annotations"] = {"restartedAt": "now"}
    assert not review_object(new, context(), operation="UPDATE", old_object=old).allowed


def test_aiworkload_update_with_unchanged_spec_is_allowed() -> None:
    broken = workload(models=[{"provider": "openai", "name": "gpt-4o"}])
    only_provider = policy(enforcement="Enforce", allowedProviders=["anthropic"])
    ctx = context(policies=[only_provider])
    assert not review_object(broken, ctx).allowed
    relabelled = copy.deepcopy(broken)
    relabelled["metadata"]["annotations"] = {"kopf.zalando.org/last-handled-configuration": "{}"}
    assert review_object(relabelled, ctx, operation="UPDATE", old_object=broken).allowed


# --- shadow AI ---------------------------------------------------------------------------------


def uncovered(**spec_changes: Any) -> dict[str, Any]:
    return pod(labels={"app": "x"}, **spec_changes)


def env(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"containers": [container(env=list(entries))]}


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def image(reference: str) -> dict[str, Any]:
    return {"containers": [container(image=reference)]}


def gpu(resource: str, amount: object = 1) -> dict[str, Any]:
    return {"containers": [container(resources={"limits": {resource: amount}})]}


@pytest.mark.parametrize(
    "spec_changes",
    [
        pytest.param(image("vllm/vllm-openai:v0.6.3"), id="vllm"),
        pytest.param(image("vllm/vllm-cpu:latest"), id="vllm-cpu"),
        pytest.param(image("ghcr.io/huggingface/text-generation-inference:2.4"), id="tgi"),
        pytest.param(image("ghcr.io/huggingface/text-embeddings-inference:1.5"), id="tei"),
        pytest.param(image("ollama/ollama"), id="ollama"),
        pytest.param(image("nvcr.io/nvidia/tritonserver:24.08-py3"), id="triton"),
        pytest.param(image("ghcr.io/ggml-org/llama.cpp:server"), id="llama-cpp"),
        pytest.param(image("localai/localai:latest"), id="localai"),
        pytest.param(image("lmsysorg/sglang:latest"), id="sglang"),
        pytest.param(image("nvcr.io/nim/meta/llama-3.1-8b-instruct:1.1"), id="nvidia-nim"),
        pytest.param(image("kserve/huggingfaceserver:v0.14"), id="kserve"),
        pytest.param(image("seldonio/mlserver:1.6"), id="seldon-mlserver"),
        pytest.param(image("rayproject/ray-ml:2.9"), id="ray-ml"),
        pytest.param(image("tensorflow/serving:2.16"), id="tensorflow-serving"),
        pytest.param(image("ghcr.io/berriai/litellm:main"), id="litellm"),
        pytest.param(image("registry.corp.example/mirror/vllm-openai:v1"), id="mirrored-vllm"),
        pytest.param(env({"name": "OPENAI_API_KEY", "value": "x"}), id="openai-key"),
        pytest.param(env(secret_env("ANTHROPIC_API_KEY", "s", "k")), id="anthropic-key"),
        pytest.param(env({"name": "HF_TOKEN", "value": "x"}), id="hugging-face-token"),
        pytest.param(env({"name": "HUGGING_FACE_HUB_TOKEN", "value": "x"}), id="hf-hub-token"),
        pytest.param(env({"name": "AZURE_OPENAI_API_KEY", "value": "x"}), id="azure-openai-key"),
        pytest.param(env({"name": "AZURE_OPENAI_DEPLOYMENT", "value": "x"}), id="azure-openai-sdk"),
        pytest.param(env({"name": "COHERE_API_KEY", "value": "x"}), id="cohere-key"),
        pytest.param(env({"name": "MISTRAL_API_KEY", "value": "x"}), id="mistral-key"),
        pytest.param(env({"name": "GEMINI_API_KEY", "value": "x"}), id="gemini-key"),
        pytest.param(env({"name": "AWS_BEARER_TOKEN_BEDROCK", "value": "x"}), id="bedrock-token"),
        pytest.param(
            env(secret_env("LLM_KEY", "creds", "OPENAI_API_KEY")), id="key-via-secret-key-name"
        ),
        pytest.param(env({"name": "OPENAI_BASE_URL", "value": "http://x"}), id="sdk-endpoint"),
        pytest.param(gpu("nvidia.com/gpu"), id="nvidia-gpu"),
        pytest.param(gpu("amd.com/gpu", "2"), id="amd-gpu"),
        pytest.param(gpu("nvidia.com/mig-1g.5gb"), id="nvidia-mig"),
        pytest.param(gpu("google.com/tpu"), id="tpu"),
        pytest.param({"nodeSelector": {"cloud.google.com/gke-accelerator": "l4"}}, id="gpu-node"),
        pytest.param({"runtimeClassName": "nvidia"}, id="nvidia-runtime"),
        pytest.param(
            {
                "initContainers": [container(name="fetch", image="ollama/ollama")],
                "containers": [container()],
            },
            id="init-container-counts",
        ),
        pytest.param(
            {
                "containers": [
                    container(
                        image="rayproject/ray:2.9", env=[{"name": "GOOGLE_API_KEY", "value": "x"}]
                    )
                ]
            },
            id="two-weak-signals-of-different-kinds",
        ),
    ],
)
def test_looks_like_ai(spec_changes: dict[str, Any]) -> None:
    obj = uncovered(**spec_changes)
    template = pod_template(obj)
    assert template is not None
    assert looks_like_ai(ai_evidence(template))
    assert findings(review_object(obj, context(policies=[policy(shadowAI="Enforce")]))) == {
        (RULE_SHADOW_AI, True)
    }


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param({"app.kubernetes.io/component": "model-server"}, id="component-model-server"),
        pytest.param({"serving.kserve.io/inferenceservice": "llama"}, id="kserve-label"),
        pytest.param({"seldon-deployment-id": "x"}, id="seldon-label"),
    ],
)
def test_ai_labels(labels: dict[str, str]) -> None:
    decision = review_object(pod(labels=labels), context(policies=[policy(shadowAI="Audit")]))
    assert findings(decision) == {(RULE_SHADOW_AI, False)}


@pytest.mark.parametrize(
    "spec_changes",
    [
        pytest.param(image("nginx:1.27"), id="nginx"),
        pytest.param(image("postgres:16"), id="postgres"),
        pytest.param(image("redis:7"), id="redis"),
        pytest.param(image("bitnami/redis:7.2"), id="bitnami-redis"),
        pytest.param(image("ghcr.io/acme/llm-docs-site:1"), id="ai-word-in-an-ordinary-name"),
        pytest.param(image("rayproject/ray:2.9"), id="general-purpose-ray-alone"),
        pytest.param(env({"name": "GOOGLE_API_KEY", "value": "x"}), id="google-api-key-alone"),
        pytest.param(
            {"containers": [container(envFrom=[{"secretRef": {"name": "openai-creds"}}])]},
            id="secret-named-like-a-provider-alone",
        ),
        pytest.param(gpu("nvidia.com/gpu", 0), id="zero-gpus"),
        pytest.param(gpu("nvidia.com/gpu", "0"), id="zero-gpus-as-string"),
        pytest.param(
            env(
                {"name": "DATABASE_URL", "value": "postgres://x"}, {"name": "API_KEY", "value": "y"}
            ),
            id="ordinary-env",
        ),
        pytest.param(gpu("cpu", "2"), id="cpu-request"),
    ],
)
def test_does_not_look_like_ai(spec_changes: dict[str, Any]) -> None:
    obj = uncovered(**spec_changes)
    assert review_object(obj, context(policies=[policy(shadowAI="Enforce")])).reasons == ()


def test_ordinary_deployments_are_never_flagged() -> None:
    for reference in ("nginx:1.27", "postgres:16", "redis:7", "docker.io/library/busybox"):
        obj = deployment(containers=[{"name": "c", "image": reference}])
        obj["spec"]["template"]["metadata"]["labels"] = {"app": "web"}
        assert review_object(obj, context()).reasons == (), reference


@pytest.mark.parametrize(
    ("policies", "labels", "expected"),
    [
        pytest.param(
            [policy(shadowAI="Enforce")], None, {(RULE_SHADOW_AI, True)}, id="enforce-refuses"
        ),
        pytest.param([policy(shadowAI="Audit")], None, {(RULE_SHADOW_AI, False)}, id="audit-warns"),
        pytest.param([policy(shadowAI="Off")], None, set(), id="off-ignores"),
        pytest.param(
            [policy("a", shadowAI="Audit"), policy("b", shadowAI="Enforce")],
            None,
            {(RULE_SHADOW_AI, True)},
            id="strictest-mode-wins",
        ),
        pytest.param(
            [policy(shadowAI="Enforce", namespaceSelector={"matchLabels": {"team": "ml"}})],
            {"team": "support"},
            set(),
            id="ungoverned-namespace-not-checked",
        ),
        pytest.param([], None, set(), id="no-policy-no-shadow-check"),
    ],
)
def test_shadow_ai_mode(
    policies: list[NamedPolicy], labels: dict[str, str] | None, expected: set[tuple[str, bool]]
) -> None:
    decision = review_object(vllm_pod(), context(policies=policies, labels=labels))
    assert findings(decision) == expected
    assert decision.allowed is not any(deny for _, deny in expected)


def test_shadow_ai_lists_the_evidence() -> None:
    obj = vllm_pod(
        containers=[
            container(image="vllm/vllm-openai:v1", resources={"limits": {"nvidia.com/gpu": 1}})
        ]
    )
    (reason,) = review_object(obj, context(policies=[policy(shadowAI="Enforce")])).denied
    assert reason.path == "metadata.labels"
    assert "vLLM" in reason.message
    assert 'spec.containers[0].resources.limits["nvidia.com/gpu"]' in reason.message
    assert "AIClusterPolicy org" in reason.message


def test_shadow_pods_get_pod_security_at_the_shadow_mode() -> None:
    obj = vllm_pod(
        containers=[container(image="ollama/ollama", securityContext={"privileged": True})]
    )
    audit = review_object(obj, context(policies=[policy(shadowAI="Audit", podSecurity="baseline")]))
    assert audit.allowed
    assert findings(audit) == {(RULE_SHADOW_AI, False), (RULE_PRIVILEGED, False)}


# --- covered pods ----------------------------------------------------------------------------


def test_compliant_pod_is_admitted_without_findings() -> None:
    for obj in (pod(), deployment()):
        decision = review_object(obj, context([workload()]))
        assert decision == Decision(True, (), (), (), "bot")


@pytest.mark.parametrize(
    ("workloads", "policies", "expected"),
    [
        pytest.param(
            [workload(egress=[{"host": "https://api.openai.com/v1"}])],
            [STRICT],
            {(RULE_WORKLOAD_INVALID, True)},
            id="invalid-workload",
        ),
        pytest.param(
            [workload(dataRegions=["eu"])],
            [STRICT],
            {(RULE_WORKLOAD_NOT_COMPLIANT, True)},
            id="egress-outside-own-data-regions",
        ),
        pytest.param(
            [workload()],
            [policy(enforcement="Enforce", allowedProviders=["anthropic"])],
            {(RULE_WORKLOAD_NOT_COMPLIANT, True)},
            id="provider-outside-policy",
        ),
        pytest.param(
            [workload(enforcement="Audit", dataRegions=["eu"])],
            [policy(enforcement="Audit")],
            {(RULE_WORKLOAD_NOT_COMPLIANT, False)},
            id="audit-workload-under-audit-policy-warns",
        ),
        pytest.param(
            [workload(enforcement="Audit", dataRegions=["eu"])],
            [policy(enforcement="Enforce")],
            {(RULE_WORKLOAD_NOT_COMPLIANT, True)},
            id="enforce-policy-overrides-audit-workload",
        ),
        pytest.param(
            [workload(enforcement="Audit", dataRegions=["eu"])],
            [],
            {(RULE_WORKLOAD_NOT_COMPLIANT, False)},
            id="ungoverned-audit-workload-warns",
        ),
        pytest.param(
            [workload("a"), workload("b")],
            [STRICT],
            {(RULE_MULTIPLE_COVER, True)},
            id="two-workloads-cover",
        ),
        pytest.param(
            [workload("a", enforcement="Audit"), workload("b", enforcement="Audit")],
            [policy(enforcement="Audit")],
            {(RULE_MULTIPLE_COVER, False)},
            id="two-audit-workloads-cover",
        ),
    ],
)
def test_declared_workload(
    workloads: list[dict[str, Any]],
    policies: list[NamedPolicy],
    expected: set[tuple[str, bool]],
) -> None:
    decision = review_object(pod(), context(workloads, policies))
    assert findings(decision) == expected


def test_multiple_cover_names_every_workload() -> None:
    decision = review_object(
        pod(),
        context(
            [
                workload("first"),
                workload("second"),
                workload("third", selector={"matchLabels": {"app": "other"}}),
            ]
        ),
    )
    (reason,) = decision.denied
    assert '"first"' in reason.message
    assert '"second"' in reason.message
    assert '"third"' not in reason.message
    assert decision.workload is None


def test_non_compliance_is_explained() -> None:
    decision = review_object(pod(), context([workload(dataRegions=["eu"])]))
    (reason,) = decision.denied
    assert reason.path == "metadata.labels"
    assert "spec.egress[0].host" in reason.message
    assert '"bot"' in reason.message


def test_workload_status_is_not_read() -> None:
    # The engine computes compliance itself: a stale status says nothing either way.
    stale = workload()
    stale["status"] = {"conditions": [{"type": "Compliant", "status": "False"}]}
    assert review_object(pod(), context([stale])).allowed
    unreconciled = workload(dataRegions=["eu"])
    unreconciled["status"] = {"conditions": [{"type": "Compliant", "status": "True"}]}
    assert not review_object(pod(), context([unreconciled])).allowed


def test_ungoverned_namespace_applies_only_the_workloads_own_declaration() -> None:
    """No registry or digest rules without a policy; Pod Security only at the gateway's floor
    (baseline, which a privileged app breaks: it could read the gateway's keys)."""
    obj = pod(
        automountServiceAccountToken=None,
        containers=[container(image="docker.io/x/y:1", securityContext={"privileged": True})],
    )
    decision = review_object(obj, context([workload()], policies=[]))
    assert findings(decision) == {(RULE_TOKEN_AUTOMOUNT, True), (RULE_PRIVILEGED, True)}


# --- images ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "allowed", "expected"),
    [
        pytest.param(IMAGE, ["ghcr.io/acme"], set(), id="allowed-prefix"),
        pytest.param(
            f"ghcr.io/acme-evil/bot@{DIGEST}",
            ["ghcr.io/acme"],
            {RULE_IMAGE_REGISTRY},
            id="prefix-matches-whole-segments",
        ),
        pytest.param(
            f"ghcr.io/acme@{DIGEST}", ["ghcr.io/acme"], set(), id="prefix-equal-to-repository"
        ),
        pytest.param(
            f"nginx@{DIGEST}", ["docker.io/library"], set(), id="short-name-is-docker-hub-library"
        ),
        pytest.param(
            f"nginx@{DIGEST}",
            ["docker.io/acme"],
            {RULE_IMAGE_REGISTRY},
            id="short-name-not-in-other-namespace",
        ),
        pytest.param(
            f"index.docker.io/library/nginx@{DIGEST}",
            ["docker.io"],
            set(),
            id="legacy-docker-hub-name",
        ),
        pytest.param(
            f"acme/bot@{DIGEST}", ["index.docker.io/acme"], set(), id="legacy-name-in-entry"
        ),
        pytest.param(
            f"registry.local:5000/team/app@{DIGEST}",
            ["registry.local:5000/team"],
            set(),
            id="registry-with-port",
        ),
        pytest.param(
            f"registry.local/team/app@{DIGEST}",
            ["registry.local:5000"],
            {RULE_IMAGE_REGISTRY},
            id="port-is-part-of-the-host",
        ),
        pytest.param(
            f"docker.io.evil.example/acme/bot@{DIGEST}",
            ["docker.io"],
            {RULE_IMAGE_REGISTRY},
            id="lookalike-host",
        ),
        pytest.param(f"localhost/app@{DIGEST}", ["localhost"], set(), id="localhost-registry"),
        pytest.param(
            "ghcr.io/acme/bot:1.0", ["ghcr.io/acme"], {RULE_IMAGE_DIGEST}, id="tag-not-digest"
        ),
        pytest.param(
            "ghcr.io/acme/bot", ["ghcr.io/acme"], {RULE_IMAGE_DIGEST}, id="no-tag-no-digest"
        ),
        pytest.param(
            "ghcr.io/acme/bot@sha256:abc", ["ghcr.io/acme"], {RULE_IMAGE_DIGEST}, id="short-digest"
        ),
        pytest.param(
            "ghcr.io/acme/bot@md5:" + "a" * 32,
            ["ghcr.io/acme"],
            {RULE_IMAGE_DIGEST},
            id="unknown-digest-algorithm",
        ),
        pytest.param(
            "ghcr.io/acme/bot@sha512:" + "b" * 128, ["ghcr.io/acme"], set(), id="sha512-digest"
        ),
        pytest.param(
            "Ghcr.io/Acme/Bot", ["ghcr.io/acme"], {RULE_IMAGE_REGISTRY}, id="invalid-reference"
        ),
        pytest.param("", ["ghcr.io/acme"], {RULE_IMAGE_REGISTRY}, id="empty-image"),
    ],
)
def test_image_rules(reference: str, allowed: list[str], expected: set[str]) -> None:
    the_policy = policy(enforcement="Enforce", allowedRegistries=allowed, requireDigest=True)
    obj = pod(containers=[container(image=reference)])
    assert rules(review_object(obj, context([workload()], [the_policy]))) == expected


def test_image_must_satisfy_every_policy() -> None:
    policies = [
        policy("a", enforcement="Enforce", allowedRegistries=["ghcr.io"]),
        policy("b", enforcement="Enforce", allowedRegistries=["quay.io"]),
    ]
    decision = review_object(pod(), context([workload()], policies))
    (reason,) = decision.denied
    assert (reason.rule, "AIClusterPolicy b" in reason.message) == (RULE_IMAGE_REGISTRY, True)


def test_images_of_every_container_list_are_checked() -> None:
    obj = pod(
        initContainers=[container(name="init", image="quay.io/x/init:1")],
        containers=[container()],
        ephemeralContainers=[container(name="debug", image="busybox")],
    )
    decision = review_object(obj, context([workload()]))
    paths = {r.path for r in decision.reasons if r.rule == RULE_IMAGE_REGISTRY}
    assert paths == {"spec.initContainers[0].image", "spec.ephemeralContainers[0].image"}


@pytest.mark.parametrize(
    ("gateway_image", "image", "exempt"),
    [
        pytest.param(GATEWAY_IMAGE, GATEWAY_IMAGE, True, id="the-rendered-gateway-is-exempt"),
        pytest.param(
            "ghcr.io/other/image:1", GATEWAY_IMAGE, False, id="another-image-than-configured"
        ),
        pytest.param(None, GATEWAY_IMAGE, False, id="no-gateway-configured"),
    ],
)
def test_gateway_sidecar_exemption(gateway_image: str | None, image: str, exempt: bool) -> None:
    """Only the container the injection renders is exempt from the image and key rules: the name
    and the image alone are not enough."""
    obj = pod()
    model = AIWorkload.model_validate(workload(), by_alias=True)
    settings = InjectionSettings(gateway_image=image)
    patch = render_pod_patch(obj, model, settings=settings, config_hash="h", opt_out_allowed=False)
    mutated = jsonpatch.apply_patch(obj, patch)
    decision = review_object(mutated, context([workload()], gateway_image=gateway_image))
    assert (rules(decision) == set()) is exempt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("nginx", ("docker.io", "library/nginx", None, None), id="official-image"),
        pytest.param("nginx:1.27", ("docker.io", "library/nginx", "1.27", None), id="tag"),
        pytest.param(
            "docker.io/nginx", ("docker.io", "library/nginx", None, None), id="explicit-hub"
        ),
        pytest.param("acme/bot", ("docker.io", "acme/bot", None, None), id="hub-namespace"),
        pytest.param("localhost:5000/a/b:c", ("localhost:5000", "a/b", "c", None), id="port"),
        pytest.param(
            "registry:5000",
            ("docker.io", "library/registry", "5000", None),
            id="colon-in-one-segment-is-a-tag",
        ),
        pytest.param(
            "Registry.Example/a", ("registry.example", "a", None, None), id="host-lowercased"
        ),
        pytest.param(
            f"ghcr.io/a/b:1@{DIGEST}", ("ghcr.io", "a/b", "1", DIGEST), id="tag-and-digest"
        ),
        pytest.param("[::1]:5000/a", ("[::1]:5000", "a", None, None), id="ipv6-registry"),
    ],
)
def test_parse_image(text: str, expected: tuple[str, str, str | None, str | None]) -> None:
    parsed = parse_image(text)
    assert isinstance(parsed, ImageRef)
    assert (parsed.registry, parsed.repository, parsed.tag, parsed.digest) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("UPPER", id="upper-case-repository"),
        pytest.param("a//b", id="empty-segment"),
        pytest.param("a:", id="empty-tag"),
        pytest.param("a@", id="empty-digest"),
        pytest.param("a:" + "t" * 200, id="tag-too-long"),
        pytest.param("x" * 5000, id="huge"),
    ],
)
def test_parse_image_refuses(text: str) -> None:
    assert isinstance(parse_image(text), str)


def test_registry_allows_and_digest_helpers() -> None:
    parsed = parse_image("ghcr.io/acme/team/app")
    assert isinstance(parsed, ImageRef)
    assert registry_allows(parsed, ["ghcr.io/acme/team"])
    assert not registry_allows(parsed, ["ghcr.io/acme/tea"])
    assert digest_problem(DIGEST) is None
    assert digest_problem("sha256:" + "A" * 64) is not None


# --- provider keys -----------------------------------------------------------------------------

HELD = secret_env("OPENAI_API_KEY", "openai", "key")


def keyed(*entries: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"containers": [container(env=list(entries), **changes)]}


@pytest.mark.parametrize(
    ("workload_changes", "annotations", "policies", "spec_changes", "expected"),
    [
        pytest.param(
            {}, None, [STRICT], keyed(HELD), set(), id="held-key-is-moved-by-the-injection"
        ),
        pytest.param(
            {
                "gateway": {
                    "inject": False,
                    "providerKeys": [
                        {"provider": "openai", "secretRef": {"name": "openai", "key": "key"}}
                    ],
                }
            },
            None,
            [STRICT],
            keyed(HELD),
            {"spec.containers[0].env[0].valueFrom.secretKeyRef"},
            id="held-key-without-gateway",
        ),
        pytest.param(
            {},
            {OPT_OUT_ANNOTATION: "false"},
            [policy(enforcement="Enforce", allowInjectionOptOut=True)],
            keyed(HELD),
            {"spec.containers[0].env[0].valueFrom.secretKeyRef"},
            id="held-key-with-allowed-opt-out",
        ),
        pytest.param(
            {},
            {OPT_OUT_ANNOTATION: "false"},
            [STRICT],
            keyed(HELD),
            set(),
            id="opt-out-ignored-where-not-allowed",
        ),
        pytest.param(
            {},
            None,
            [STRICT],
            {**keyed(HELD), "os": {"name": "windows"}},
            {"spec.containers[0].env[0].valueFrom.secretKeyRef"},
            id="windows-pods-get-no-gateway",
        ),
        pytest.param(
            {},
            None,
            [STRICT],
            keyed(secret_env("OTHER", "openai", "admin-token")),
            {"spec.containers[0].env[0].valueFrom.secretKeyRef"},
            id="other-key-of-the-held-secret",
        ),
        pytest.param(
            {},
            None,
            [STRICT],
            keyed(secret_env("OPENAI_API_KEY", "team-openai", "key")),
            {"spec.containers[0].env[0].valueFrom.secretKeyRef"},
            id="apps-own-provider-key",
        ),
        pytest.param(
            {"gateway": {"inject": False}},
            None,
            [STRICT],
            keyed(secret_env("OPENAI_API_KEY", "team-openai", "key")),
            set(),
            id="own-key-allowed-without-gateway",
        ),
        pytest.param(
            {},
            None,
            [STRICT],
            keyed({"name": "OPENAI_API_KEY", "value": "sk-proj-" + "x1Y2" * 10}),
            {"spec.containers[0].env[0].value"},
            id="literal-key",
        ),
        pytest.param(
            {},
            None,
            [STRICT],
            keyed({"name": "OPENAI_API_KEY", "value": KEY_PLACEHOLDER}),
            set(),
            id="injection-placeholder",
        ),
        pytest.param(
            {},
            None,
            [STRICT],
            keyed({"name": "OPENAI_API_KEY", "value": "<your-key-here>"}),
            set(),
            id="documentation-placeholder",
        ),
        pytest.param(
            {},
            None,
            [STRICT],
            keyed(envFrom=[{"secretRef": {"name": "openai"}}]),
            set(),
            id="env-from-held-secret-is-removed-by-the-injection",
        ),
        pytest.param(
            {
                "gateway": {
                    "inject": False,
                    "providerKeys": [
                        {"provider": "openai", "secretRef": {"name": "openai", "key": "key"}}
                    ],
                }
            },
            None,
            [STRICT],
            keyed(envFrom=[{"secretRef": {"name": "openai"}}]),
            {"spec.containers[0].envFrom[0].secretRef.name"},
            id="env-from-held-secret-without-gateway",
        ),
        pytest.param(
            {},
            None,
            [STRICT],
            {
                "volumes": [{"name": "keys", "secret": {"secretName": "openai"}}],
                "containers": [container(volumeMounts=[{"name": "keys", "mountPath": "/k"}])],
            },
            {"spec.containers[0].volumeMounts[0]"},
            id="held-secret-mounted-as-files",
        ),
        pytest.param(
            {},
            None,
            [STRICT],
            {
                "volumes": [
                    {"name": "p", "projected": {"sources": [{"secret": {"name": "openai"}}]}}
                ],
                "containers": [container(volumeMounts=[{"name": "p", "mountPath": "/k"}])],
            },
            {"spec.containers[0].volumeMounts[0]"},
            id="held-secret-in-projected-volume",
        ),
        pytest.param(
            {},
            None,
            [STRICT],
            {
                "containers": [container()],
                "ephemeralContainers": [container(name="dbg", env=[HELD])],
            },
            {"spec.ephemeralContainers[0].env[0].valueFrom.secretKeyRef"},
            id="ephemeral-containers-are-not-injected",
        ),
    ],
)
def test_provider_keys(
    workload_changes: dict[str, Any],
    annotations: dict[str, str] | None,
    policies: list[NamedPolicy],
    spec_changes: dict[str, Any],
    expected: set[str],
) -> None:
    obj = pod(annotations=annotations, **spec_changes)
    decision = review_object(obj, context([workload(**workload_changes)], policies))
    assert {r.path for r in decision.reasons if r.rule == RULE_PROVIDER_KEY} == expected
    assert rules(decision) <= {RULE_PROVIDER_KEY}


def test_mutated_pod_passes_the_validating_review() -> None:
    """The injection and the engine agree: a pod after injection has no key and no image finding,
    even where the gateway's registry is not allowed for apps."""
    obj = pod(containers=[container(env=[HELD], envFrom=[{"secretRef": {"name": "openai"}}])])
    model = AIWorkload.model_validate(workload(), by_alias=True)
    settings = InjectionSettings(gateway_image=GATEWAY_IMAGE)
    patch = render_pod_patch(obj, model, settings=settings, config_hash="h", opt_out_allowed=False)
    assert patch, "the injection did nothing: the test would prove nothing"
    mutated = jsonpatch.apply_patch(obj, patch)
    assert [c["name"] for c in mutated["spec"]["initContainers"]] == [GATEWAY_CONTAINER]
    decision = review_object(mutated, context([workload()], gateway_image=GATEWAY_IMAGE))
    assert decision.reasons == ()
    # The unmutated Pod (as `aigis scan` sees it) gets the same answer.
    assert review_object(obj, context([workload()])).reasons == ()


# --- service-account token -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec_changes", "expected"),
    [
        pytest.param({"automountServiceAccountToken": False}, set(), id="explicitly-off"),
        pytest.param(
            {"automountServiceAccountToken": None},
            {"spec.automountServiceAccountToken"},
            id="unset",
        ),
        pytest.param(
            {"automountServiceAccountToken": True}, {"spec.automountServiceAccountToken"}, id="on"
        ),
        pytest.param(
            {"automountServiceAccountToken": "false"},
            {"spec.automountServiceAccountToken"},
            id="string-is-not-false",
        ),
        pytest.param(
            {
                "volumes": [
                    {
                        "name": "t",
                        "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]},
                    }
                ]
            },
            {"spec.volumes[0].projected.sources[0].serviceAccountToken"},
            id="projected-token",
        ),
    ],
)
def test_token_automount(spec_changes: dict[str, Any], expected: set[str]) -> None:
    obj = pod(**spec_changes)
    if spec_changes.get("automountServiceAccountToken", False) is None:
        del obj["spec"]["automountServiceAccountToken"]
    decision = review_object(obj, context([workload()]))
    assert {r.path for r in decision.reasons} == expected
    assert rules(decision) <= {RULE_TOKEN_AUTOMOUNT}


def test_a_declared_token_need_allows_the_mount() -> None:
    obj = pod(automountServiceAccountToken=True)
    declared = workload()
    declared["spec"]["serviceAccountToken"] = True
    assert RULE_TOKEN_AUTOMOUNT in rules(review_object(obj, context([workload()])))
    assert RULE_TOKEN_AUTOMOUNT not in rules(review_object(obj, context([declared])))


# --- red team ------------------------------------------------------------------------------------


def days_ago(days: int) -> str:
    return (NOW.date() - timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("max_age", "assurance", "stale"),
    [
        pytest.param(90, {"lastRedTeam": days_ago(50)}, False, id="fresh"),
        pytest.param(90, {"lastRedTeam": days_ago(90)}, False, id="exactly-at-the-limit"),
        pytest.param(90, {"lastRedTeam": days_ago(91)}, True, id="one-day-too-old"),
        pytest.param(90, None, True, id="no-attestation"),
        pytest.param(
            90,
            {"requiredFreshnessDays": 30, "lastRedTeam": days_ago(50)},
            True,
            id="workloads-own-stricter-limit",
        ),
        pytest.param(
            None,
            {"requiredFreshnessDays": 30, "lastRedTeam": days_ago(50)},
            True,
            id="own-limit-without-policy-limit",
        ),
        pytest.param(None, {"lastRedTeam": days_ago(5000)}, False, id="no-requirement"),
        pytest.param(90, {"lastRedTeam": days_ago(-1)}, False, id="tomorrow-within-time-zones"),
        pytest.param(90, {"lastRedTeam": days_ago(-30)}, True, id="future-date"),
    ],
)
def test_red_team_freshness(
    max_age: int | None, assurance: dict[str, Any] | None, stale: bool
) -> None:
    the_policy = policy(enforcement="Enforce", redTeamMaxAgeDays=max_age)
    changes = {} if assurance is None else {"assurance": assurance}
    decision = review_object(pod(), context([workload(**changes)], [the_policy]))
    assert findings(decision) == ({(RULE_RED_TEAM, True)} if stale else set())


def test_red_team_strictest_policy_is_named() -> None:
    policies = [
        policy("lax", redTeamMaxAgeDays=365),
        policy("tight", enforcement="Enforce", redTeamMaxAgeDays=30),
    ]
    decision = review_object(
        pod(), context([workload(assurance={"lastRedTeam": days_ago(60)})], policies)
    )
    (reason,) = decision.denied
    assert "AIClusterPolicy tight" in reason.message
    assert "60 days old" in reason.message


def test_red_team_on_the_aiworkload_itself_only_warns() -> None:
    the_policy = policy(enforcement="Enforce", redTeamMaxAgeDays=30)
    decision = review_object(
        workload(assurance={"lastRedTeam": days_ago(60)}), context([], [the_policy])
    )
    assert decision.allowed
    assert findings(decision) == {(RULE_RED_TEAM, False)}
    assert decision.reasons[0].path == "spec.assurance.lastRedTeam"


# --- Pod Security Standards --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("levels", "spec_changes", "expected"),
    [
        pytest.param(
            ["baseline"],
            {"containers": [container(securityContext={"privileged": True})]},
            {RULE_PRIVILEGED},
            id="baseline-refuses-privileged",
        ),
        pytest.param(
            ["baseline"],
            {"containers": [container(securityContext={})]},
            set(),
            id="baseline-allows-root",
        ),
        pytest.param(
            ["restricted"],
            {
                "containers": [
                    container(
                        securityContext={
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"},
                        }
                    )
                ]
            },
            {RULE_RUN_AS_NON_ROOT},
            id="restricted-requires-non-root",
        ),
        pytest.param(
            ["baseline", "restricted"],
            {
                "containers": [
                    container(
                        securityContext={
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"},
                        }
                    )
                ]
            },
            {RULE_RUN_AS_NON_ROOT},
            id="strictest-level-wins",
        ),
        pytest.param(
            ["privileged"],
            {"containers": [container(securityContext={"privileged": True})]},
            set(),
            id="privileged-level-checks-nothing",
        ),
    ],
)
def test_pod_security_level(
    levels: list[str], spec_changes: dict[str, Any], expected: set[str]
) -> None:
    policies = [
        policy(f"p{i}", enforcement="Enforce", podSecurity=level) for i, level in enumerate(levels)
    ]
    decision = review_object(pod(**spec_changes), context([workload()], policies))
    assert rules(decision) == expected
    assert decision.allowed is not expected


def test_pod_security_paths_point_into_the_template() -> None:
    obj = deployment(containers=[container(securityContext={"privileged": True})])
    (reason,) = review_object(obj, context([workload()], [policy(enforcement="Enforce")])).denied
    assert reason.path == "spec.template.spec.containers[0].securityContext.privileged"


def test_policy_bounds_default_level_is_baseline() -> None:
    assert policy_bounds([policy()]).pod_security == "baseline"
    assert policy_bounds([]).pod_security is None
    assert not policy_bounds([]).injection_opt_out_allowed
    assert not policy_bounds(
        [policy("a", allowInjectionOptOut=True), policy("b")]
    ).injection_opt_out_allowed


# --- AIWorkload and AIClusterPolicy objects ----------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "policies", "expected"),
    [
        pytest.param(workload(), [STRICT], set(), id="valid-workload"),
        pytest.param(
            workload(egress=[{"host": "https://api.openai.com/v1"}]),
            [],
            {(RULE_AIWORKLOAD_INVALID, True)},
            id="invalid-workload-refused-anywhere",
        ),
        pytest.param(
            {**workload(), "spec": None},
            [],
            {(RULE_AIWORKLOAD_INVALID, True)},
            id="workload-without-spec",
        ),
        pytest.param(
            workload(),
            [policy(enforcement="Enforce", allowedProviders=["anthropic"])],
            {("aiworkload/policy-provider", True)},
            id="provider-outside-enforced-policy",
        ),
        pytest.param(
            workload(),
            [policy(enforcement="Audit", allowedProviders=["anthropic"])],
            {("aiworkload/policy-provider", False)},
            id="provider-outside-audit-policy-warns",
        ),
        pytest.param(
            workload(),
            [policy(enforcement="Enforce", allowedRegions=["eu"])],
            {("aiworkload/policy-region", True)},
            id="region-outside-enforced-policy",
        ),
        pytest.param(
            workload(),
            [policy(enforcement="Enforce", allowedHosts=["api.anthropic.com"])],
            {("aiworkload/policy-host", True)},
            id="host-outside-enforced-policy",
        ),
        pytest.param(
            workload(dataRegions=["eu"]),
            [policy(enforcement="Audit")],
            {("aiworkload/data-region", False)},
            id="own-data-region-breach-warns-without-enforce-policy",
        ),
        pytest.param(
            workload(),
            [
                policy(
                    enforcement="Enforce",
                    allowedProviders=["anthropic"],
                    namespaceSelector={"matchLabels": {"team": "ml"}},
                )
            ],
            set(),
            id="policy-of-other-namespaces",
        ),
    ],
)
def test_aiworkload_review(
    obj: dict[str, Any], policies: list[NamedPolicy], expected: set[tuple[str, bool]]
) -> None:
    assert findings(review_object(obj, context([], policies))) == expected


def test_invalid_aiworkload_names_the_field_and_the_fix() -> None:
    decision = review_object(workload(egress=[{"host": "https://api.openai.com/v1"}]), context())
    (reason,) = decision.denied
    assert reason.path == "spec.egress[0].host"
    assert reason.fix == 'write "api.openai.com"'
    assert "is a URL" in reason.message


def cluster_policy(spec: object) -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIClusterPolicy",
        "metadata": {"name": "org"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        pytest.param(
            {"allowedRegistries": ["https://ghcr.io"]}, "spec.allowedRegistries[0]", id="url"
        ),
        pytest.param(
            {"allowedRegistries": ["myorg"]},
            "spec.allowedRegistries[0]",
            id="hub-namespace-without-host",
        ),
        pytest.param(
            {"allowedRegistries": ["ghcr.io/"]}, "spec.allowedRegistries[0]", id="trailing-slash"
        ),
        pytest.param(
            {"allowedRegistries": ["GHCR.io/acme"]},
            "spec.allowedRegistries[0]",
            id="upper-case-host",
        ),
        pytest.param(
            {"allowedRegistries": ["ghcr.io/acme/app:1"]}, "spec.allowedRegistries[0]", id="tag"
        ),
        pytest.param(
            {"allowedRegistries": ["ghcr.io/*"]}, "spec.allowedRegistries[0]", id="wildcard"
        ),
        pytest.param(
            {"allowedRegistries": [f"ghcr.io/a@{DIGEST}"]}, "spec.allowedRegistries[0]", id="digest"
        ),
        pytest.param(
            {"allowedRegistries": ["ghcr.io", "ghcr.io"]},
            "spec.allowedRegistries[1]",
            id="duplicate",
        ),
        pytest.param({"allowedRegistries": [""]}, "spec.allowedRegistries[0]", id="empty"),
        pytest.param({"podSecurity": "strict"}, "spec.podSecurity", id="unknown-level"),
        pytest.param({"requireDigest": "yes"}, "spec.requireDigest", id="digest-flag-not-boolean"),
        pytest.param({"redTeamMaxAgeDays": 0}, "spec.redTeamMaxAgeDays", id="zero-days"),
        pytest.param(
            {"allowInjectionOptOut": 1}, "spec.allowInjectionOptOut", id="opt-out-not-boolean"
        ),
        pytest.param([], "spec", id="spec-not-a-mapping"),
    ],
)
def test_invalid_cluster_policy(spec: object, path: str) -> None:
    decision = review_object(cluster_policy(spec), context(namespace=None))
    assert not decision.allowed
    assert {(r.rule, r.path) for r in decision.denied} == {(RULE_CLUSTER_POLICY_INVALID, path)}


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(None, id="no-spec"),
        pytest.param({}, id="empty-spec"),
        pytest.param(
            {
                "allowedRegistries": [
                    "ghcr.io/acme",
                    "registry.local:5000",
                    "localhost",
                    "docker.io/library",
                    "[::1]:5000/x",
                ],
                "requireDigest": True,
                "podSecurity": "restricted",
                "allowInjectionOptOut": True,
                "redTeamMaxAgeDays": 90,
            },
            id="every-new-field",
        ),
    ],
)
def test_valid_cluster_policy(spec: object) -> None:
    assert review_object(cluster_policy(spec), context(namespace=None)).reasons == ()


# --- covering ------------------------------------------------------------------------------------


def selecting(selector: object) -> dict[str, Any]:
    return {"metadata": {"name": "w"}, "spec": {"selector": selector}}


@pytest.mark.parametrize(
    ("selector", "labels", "covers"),
    [
        pytest.param(
            {"matchLabels": {"app": "bot"}}, {"app": "bot", "x": "y"}, True, id="match-labels"
        ),
        pytest.param(
            {"matchLabels": {"app": "bot"}}, {"app": "web"}, False, id="match-labels-differ"
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "bot"]}]},
            {"app": "bot"},
            True,
            id="in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["bot"]}]},
            {"app": "bot"},
            False,
            id="not-in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["bot"]}]},
            {},
            True,
            id="not-in-absent-key",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
            {"app": ""},
            True,
            id="exists",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]},
            {"app": "x"},
            False,
            id="does-not-exist",
        ),
        pytest.param(
            {
                "matchLabels": {"app": "bot"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            },
            {"app": "bot"},
            False,
            id="all-requirements-must-hold",
        ),
        pytest.param({}, {"app": "bot"}, False, id="empty-selector-covers-nothing"),
        pytest.param({"matchLabels": []}, {"app": "bot"}, False, id="malformed-match-labels"),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "Like"}]},
            {"app": "bot"},
            False,
            id="unknown-operator",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "In"}]},
            {"app": "bot"},
            False,
            id="in-without-values",
        ),
        pytest.param("app=bot", {"app": "bot"}, False, id="selector-not-a-mapping"),
    ],
)
def test_covering_workloads(selector: object, labels: dict[str, str], covers: bool) -> None:
    assert bool(covering_workloads(labels, [selecting(selector)])) is covers


# --- decisions ---------------------------------------------------------------------------------


def test_message_lists_every_refusal_with_its_fix() -> None:
    obj = pod(automountServiceAccountToken=True, containers=[container(image="ghcr.io/acme/bot:1")])
    decision = review_object(obj, context([workload()]))
    message = decision.message()
    assert len(decision.denied) == 2
    for reason in decision.denied:
        assert f"[{reason.rule}] {reason.path}: {reason.message}; fix: {reason.fix}" in message


def test_warnings_are_short_and_few() -> None:
    many = [container(name=f"c{i}", image=f"quay.io/{'x' * 200}/app{i}:1") for i in range(30)]
    the_policy = policy(allowedRegistries=["ghcr.io"], requireDigest=True)
    audit = workload(enforcement="Audit")
    decision = review_object(pod(containers=many), context([audit], [the_policy]))
    assert decision.allowed
    assert len(decision.reasons) > MAX_WARNINGS
    assert len(decision.warnings) == MAX_WARNINGS
    assert all(len(w) <= MAX_WARNING_CHARS for w in decision.warnings)
    assert decision.warnings[0].startswith(f"{RULE_IMAGE_REGISTRY} spec.containers[0].image: ")
    assert "more" in decision.warnings[-1]


def test_warnings_carry_no_control_characters() -> None:
    obj = pod(containers=[container(image="quay.io/x/y:1\n\x1b[31m")])
    audit = workload(enforcement="Audit")
    decision = review_object(obj, context([audit], [policy(allowedRegistries=["ghcr.io"])]))
    assert decision.warnings
    assert not any(c in w for w in decision.warnings for c in "\n\x1b")


# --- bad input -----------------------------------------------------------------------------------

JUNK: tuple[object, ...] = (
    None,
    0,
    -1,
    2**70,
    1.5,
    True,
    "",
    "x",
    [],
    [None],
    {},
    {"a": None},
    ["x", 3],
)


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(
            {"kind": "Pod", "apiVersion": "v1", "spec": junk, "metadata": junk}, id=f"pod-parts-{i}"
        )
        for i, junk in enumerate(JUNK)
    ]
    + [
        pytest.param(
            {"kind": "AIWorkload", "apiVersion": "aigis.dev/v1alpha1", "spec": junk},
            id=f"aiworkload-spec-{i}",
        )
        for i, junk in enumerate(JUNK)
    ]
    + [
        pytest.param(
            {"kind": "AIClusterPolicy", "apiVersion": "aigis.dev/v1alpha1", "spec": junk},
            id=f"policy-spec-{i}",
        )
        for i, junk in enumerate(JUNK)
    ],
)
def test_malformed_objects_do_not_crash(obj: dict[str, Any]) -> None:
    for workloads in ([], [workload()], [{"spec": junk} for junk in JUNK]):
        decision = review_object(obj, context(workloads))
        assert isinstance(decision, Decision)


def test_random_corruption_never_crashes() -> None:
    """Replace random nodes of a rich Deployment with junk, many times: the engine must answer."""
    rich = deployment(
        initContainers=[
            container(name="i", env=[HELD], resources={"limits": {"nvidia.com/gpu": 1}})
        ],
        containers=[
            container(
                env=[HELD, {"name": "OPENAI_API_KEY", "value": "sk-x"}],
                envFrom=[{"secretRef": {"name": "openai"}}],
                volumeMounts=[{"name": "v", "mountPath": "/v"}],
                ports=[{"containerPort": 80, "hostPort": 80}],
            )
        ],
        volumes=[
            {"name": "v", "secret": {"secretName": "openai"}},
            {"name": "h", "hostPath": {"path": "/"}},
        ],
        nodeSelector={"nvidia.com/gpu.present": "true"},
    )
    rich["spec"]["template"]["metadata"]["annotations"] = {OPT_OUT_ANNOTATION: "false"}
    ctx = context(
        [workload(assurance={"lastRedTeam": "2020-01-01"})],
        [STRICT, policy("b", redTeamMaxAgeDays=5, allowInjectionOptOut=True)],
    )
    generator = random.Random(4)
    for _ in range(1500):
        corrupted = copy.deepcopy(rich)
        for _ in range(generator.randint(1, 3)):
            _corrupt(corrupted, generator)
        assert isinstance(review_object(corrupted, ctx), Decision)


def _corrupt(node: Any, generator: random.Random) -> None:
    while True:
        if isinstance(node, dict) and node:
            key = generator.choice(list(node))
            child = node[key]
            if generator.random() < 0.3 or not isinstance(child, dict | list) or not child:
                node[key] = generator.choice(JUNK)
                return
            node = child
        elif isinstance(node, list) and node:
            index = generator.randrange(len(node))
            child = node[index]
            if generator.random() < 0.3 or not isinstance(child, dict | list) or not child:
                node[index] = generator.choice(JUNK)
                return
            node = child
        else:
            return


def test_reason_values_are_plain_strings() -> None:
    decision = review_object(vllm_pod(), context())
    for reason in decision.reasons:
        assert isinstance(reason, Reason)
        assert all(
            isinstance(v, str) and v for v in (reason.rule, reason.path, reason.message, reason.fix)
        )


def test_now_is_a_parameter() -> None:
    the_policy = policy(enforcement="Enforce", redTeamMaxAgeDays=30)
    attested = workload(assurance={"lastRedTeam": "2026-01-01"})
    early = AdmissionContext(
        NAMESPACE, {}, [attested], [the_policy], None, datetime(2026, 1, 15, tzinfo=UTC)
    )
    late = AdmissionContext(
        NAMESPACE, {}, [attested], [the_policy], None, datetime(2026, 3, 15, tzinfo=UTC)
    )
    assert review_object(pod(), early).allowed
    assert not review_object(pod(), late).allowed


def test_a_fake_gateway_container_does_not_hide_provider_keys() -> None:
    """The injection skips pods that already have an `aigis-gateway` container; one that is not
    aigis's image must not make the engine believe the keys were moved out of the app."""
    impostor = {
        "name": GATEWAY_CONTAINER,
        "image": "attacker.example/sidecar:1",
        "restartPolicy": "Always",
    }
    obj = pod(containers=[container(env=[HELD])])
    obj["spec"]["initContainers"] = [impostor]
    decision = review_object(obj, context([workload()], gateway_image=GATEWAY_IMAGE))
    rules = {r.rule for r in decision.reasons}
    assert "secrets/provider-key-in-app" in rules


# --- the gateway is aigis's alone (issue 13 item 1) ----------------------------------------------

RULE_GATEWAY_IMPOSTOR = "gateway/impostor"
RULE_GATEWAY_VOLUME = "gateway/volume-in-app"
RULE_GATEWAY_DEBUG_TARGET = "gateway/debug-target"
RULE_SHARE_PROCESS_NAMESPACE = "gateway/share-process-namespace"
WEBHOOK_SETTINGS = InjectionSettings(gateway_image=GATEWAY_IMAGE)


def injected(obj: dict[str, Any] | None = None) -> dict[str, Any]:
    """`obj` (by default a pod whose app reads the held key) after the real injection."""
    original = obj if obj is not None else pod(containers=[container(env=[HELD])])
    model = AIWorkload.model_validate(workload(), by_alias=True)
    patch = render_pod_patch(
        original, model, settings=WEBHOOK_SETTINGS, config_hash="h", opt_out_allowed=False
    )
    assert patch, "the injection did nothing: the test would prove nothing"
    result: dict[str, Any] = jsonpatch.apply_patch(original, patch)
    return result


def rendered_gateway() -> dict[str, Any]:
    gateway: dict[str, Any] = copy.deepcopy(injected()["spec"]["initContainers"][0])
    assert gateway["name"] == GATEWAY_CONTAINER
    return gateway


def in_webhook() -> AdmissionContext:
    return context([workload()], gateway_image=GATEWAY_IMAGE)


def test_a_self_declared_gateway_does_not_hide_provider_keys() -> None:
    """The attack: the real image under the gateway's name, running something else. The injection
    skips the pod, so the app keeps the key; the engine must neither believe the key moved nor
    accept the container."""
    impostor = rendered_gateway()
    impostor["command"] = ["sleep", "infinity"]
    obj = pod(containers=[container(env=[HELD])], initContainers=[impostor])
    decision = review_object(obj, in_webhook())
    assert not decision.allowed
    assert {RULE_GATEWAY_IMPOSTOR, RULE_PROVIDER_KEY} <= rules(decision)
    assert "spec.containers[0].env[0].valueFrom.secretKeyRef" in {r.path for r in decision.denied}


def _tamper(gateway: dict[str, Any], change: str) -> None:
    if change == "command":
        gateway["command"] = ["sh", "-c", "cat /var/run/aigis/provider-keys/* > /shared/k"]
    elif change == "args":
        gateway["args"] = ["--log-level", "debug"]
    elif change == "ld-preload":
        gateway["env"] = [*gateway.get("env", []), {"name": "LD_PRELOAD", "value": "/x/evil.so"}]
    elif change == "env-from":
        gateway["envFrom"] = [{"configMapRef": {"name": "evil"}}]
    elif change == "image":
        gateway["image"] = IMAGE
    elif change == "security":
        gateway["securityContext"] = {**gateway["securityContext"], "runAsUser": 0}
    elif change == "host-port":
        gateway["ports"] = [{**gateway["ports"][0], "hostPort": 15091}]
    elif change == "restart-policy":
        del gateway["restartPolicy"]
    elif change == "exec-probe":
        gateway["startupProbe"] = {"exec": {"command": ["sh", "-c", "cp -r /var/run /shared"]}}
    elif change == "post-start":
        gateway["lifecycle"] = {"postStart": {"exec": {"command": ["sh", "-c", "id"]}}}
    elif change == "read-write-keys":
        gateway["volumeMounts"] = [{**m, "readOnly": False} for m in gateway["volumeMounts"]]
    elif change == "extra-mount":
        gateway["volumeMounts"] = [
            *gateway["volumeMounts"],
            {"name": "scratch", "mountPath": "/usr/lib/python3"},
        ]
    else:
        raise AssertionError(change)


@pytest.mark.parametrize(
    "change",
    [
        "command",
        "args",
        "ld-preload",
        "env-from",
        "image",
        "security",
        "host-port",
        "restart-policy",
        "exec-probe",
        "post-start",
        "read-write-keys",
        "extra-mount",
    ],
)
def test_a_gateway_that_differs_from_the_rendered_one_is_refused(change: str) -> None:
    obj = injected()
    obj["spec"]["volumes"].append({"name": "scratch", "emptyDir": {}})
    _tamper(obj["spec"]["initContainers"][0], change)
    decision = review_object(obj, in_webhook())
    assert not decision.allowed
    impostors = [r for r in decision.denied if r.rule == RULE_GATEWAY_IMPOSTOR]
    assert [r.path for r in impostors] == ["spec.initContainers[0]"]


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("containers", id="gateway-as-an-app-container"),
        pytest.param("ephemeralContainers", id="second-gateway-as-ephemeral-container"),
        pytest.param("initContainers", id="second-gateway-as-init-container"),
    ],
)
def test_a_gateway_outside_its_place_is_refused(where: str) -> None:
    obj = injected()
    gateway = rendered_gateway()
    if where == "containers":
        obj["spec"]["initContainers"].pop(0)
    obj["spec"].setdefault(where, []).append(gateway)
    decision = review_object(obj, in_webhook())
    assert not decision.allowed
    assert RULE_GATEWAY_IMPOSTOR in rules(decision)


def test_a_copied_rendered_gateway_does_not_make_keys_count_as_moved() -> None:
    """A pod that arrives with the exact gateway (copied from a running pod) is not injected, so
    its app still reads the key: that must be a finding, though the gateway itself is fine."""
    obj = pod(containers=[container(env=[HELD])], initContainers=[rendered_gateway()])
    obj["spec"]["volumes"] = injected()["spec"]["volumes"]
    decision = review_object(obj, in_webhook())
    assert not decision.allowed
    assert RULE_PROVIDER_KEY in rules(decision)


@pytest.mark.parametrize(
    "gateway_image",
    [
        pytest.param(GATEWAY_IMAGE, id="in-the-webhook"),
        pytest.param(None, id="in-aigis-scan"),
    ],
)
def test_a_template_carrying_the_gateway_is_refused(gateway_image: str | None) -> None:
    """Templates are never injected: a gateway in one is the user's, whatever it looks like."""
    obj = deployment(initContainers=[rendered_gateway()])
    decision = review_object(obj, context([workload()], gateway_image=gateway_image))
    assert not decision.allowed
    (reason,) = [r for r in decision.denied if r.rule == RULE_GATEWAY_IMPOSTOR]
    assert reason.path == "spec.template.spec.initContainers[0]"
    assert "aigis injects" in reason.fix


def test_aigis_scan_refuses_a_pod_manifest_with_a_gateway() -> None:
    decision = review_object(injected(), context([workload()]))
    assert RULE_GATEWAY_IMPOSTOR in {r.rule for r in decision.denied}


# --- shareProcessNamespace (issue 13 item 3) ------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "workload_changes", "refused"),
    [
        pytest.param(
            deployment(shareProcessNamespace=True), {}, True, id="template-that-gets-the-gateway"
        ),
        pytest.param(pod(shareProcessNamespace=True), {}, True, id="pod-that-gets-the-gateway"),
        pytest.param(
            deployment(shareProcessNamespace=True),
            {
                "gateway": {
                    "inject": False,
                    "providerKeys": [
                        {"provider": "openai", "secretRef": {"name": "openai", "key": "key"}}
                    ],
                }
            },
            False,
            id="no-gateway-nothing-to-protect",
        ),
        pytest.param(deployment(shareProcessNamespace=False), {}, False, id="explicitly-off"),
    ],
)
def test_share_process_namespace_with_the_gateway_is_refused(
    obj: dict[str, Any], workload_changes: dict[str, Any], refused: bool
) -> None:
    decision = review_object(obj, context([workload(**workload_changes)]))
    found = [r for r in decision.denied if r.rule == RULE_SHARE_PROCESS_NAMESPACE]
    assert bool(found) is refused
    if refused:
        spec_path = "spec" if obj["kind"] == "Pod" else "spec.template.spec"
        assert [r.path for r in found] == [f"{spec_path}.shareProcessNamespace"]
        assert "shareProcessNamespace" in found[0].fix


def test_share_process_namespace_on_an_injected_pod_is_refused_in_the_webhook() -> None:
    obj = injected(pod(containers=[container()], shareProcessNamespace=True))
    decision = review_object(obj, in_webhook())
    assert [r.path for r in decision.denied] == ["spec.shareProcessNamespace"]


# --- baseline for every pod that gets the gateway -----------------------------------------------


@pytest.mark.parametrize(
    ("spec_changes", "rule"),
    [
        pytest.param({"hostPID": True}, RULE_HOST_NAMESPACES, id="host-pid-sees-the-gateway"),
        pytest.param(
            {"containers": [container(securityContext={"privileged": True})]},
            RULE_PRIVILEGED,
            id="privileged-app-reads-the-node",
        ),
        pytest.param(
            {
                "containers": [container(volumeMounts=[{"name": "kubelet", "mountPath": "/k"}])],
                "volumes": [{"name": "kubelet", "hostPath": {"path": "/var/lib/kubelet"}}],
            },
            RULE_HOST_PATH_VOLUMES,
            id="host-path-to-the-kubelets-volumes",
        ),
    ],
)
def test_a_pod_that_gets_the_gateway_meets_baseline_without_any_policy(
    spec_changes: dict[str, Any], rule: str
) -> None:
    """No policy governs the namespace, so no Pod Security level is set; the gateway's keys still
    need baseline: each of these lets the app read another container's files."""
    ungoverned = context([workload(enforcement="Enforce")], policies=())
    decision = review_object(deployment(**spec_changes), ungoverned)
    assert rule in {r.rule for r in decision.denied}
    without_gateway = context(
        [workload(enforcement="Enforce", gateway={"inject": False})], policies=()
    )
    decision = review_object(deployment(**spec_changes), without_gateway)
    assert rule not in {r.rule for r in decision.reasons}


# --- volumes of the gateway (issue 13 items 4 and 5) ----------------------------------------------


def test_an_app_mounting_the_audit_key_is_refused_whatever_the_volume_is_called() -> None:
    obj = pod(
        containers=[container(volumeMounts=[{"name": "logs", "mountPath": "/k"}])],
        volumes=[{"name": "logs", "secret": {"secretName": "aigis-audit-bot"}}],
    )
    for ctx in (context([workload()]), in_webhook()):
        decision = review_object(obj, ctx)
        assert [(r.rule, r.path) for r in decision.denied] == [
            (RULE_GATEWAY_VOLUME, "spec.containers[0].volumeMounts[0]")
        ]


@pytest.mark.parametrize("volume", ["aigis-audit-key", "aigis-audit-state", "aigis-provider-keys"])
def test_an_app_sharing_a_volume_of_the_injected_gateway_is_refused(volume: str) -> None:
    obj = injected()
    names = {v["name"] for v in obj["spec"]["volumes"]}
    assert volume in names
    obj["spec"]["containers"][0]["volumeMounts"] = [{"name": volume, "mountPath": "/x"}]
    decision = review_object(obj, in_webhook())
    assert not decision.allowed
    assert {r.path for r in decision.denied} == {"spec.containers[0].volumeMounts[0]"}


def test_an_app_mounting_a_volume_only_the_injection_would_create_is_refused() -> None:
    """The volume does not exist in the manifest; the injection must not be the one to add it,
    and the review says so before the API server's vaguer "not found"."""
    obj = pod(
        containers=[container(volumeMounts=[{"name": "aigis-provider-keys", "mountPath": "/k"}])]
    )
    for candidate, ctx in ((obj, context([workload()])), (injected(obj), in_webhook())):
        decision = review_object(candidate, ctx)
        assert [(r.rule, r.path) for r in decision.denied] == [
            (RULE_GATEWAY_VOLUME, "spec.containers[0].volumeMounts[0]")
        ]


# --- ephemeral containers (issue 13 item 2) -------------------------------------------------------


def debugged(old: dict[str, Any], *debug: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(old)
    new["spec"].setdefault("ephemeralContainers", []).extend(debug)
    return new


def debug_container(**changes: Any) -> dict[str, Any]:
    return container(**{"name": "debugger", "image": f"ghcr.io/acme/debug@{DIGEST}", **changes})


def review_debug(old: dict[str, Any], new: dict[str, Any]) -> Decision:
    return review_object(
        new, in_webhook(), operation="UPDATE", old_object=old, subresource="ephemeralcontainers"
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, set(), id="a-hardened-debug-container-is-allowed"),
        pytest.param(
            {"securityContext": {**container()["securityContext"], "privileged": True}},
            {("pod-security/privileged", "spec.ephemeralContainers[0].securityContext.privileged")},
            id="privileged",
        ),
        pytest.param(
            {"env": [HELD]},
            {(RULE_PROVIDER_KEY, "spec.ephemeralContainers[0].env[0].valueFrom.secretKeyRef")},
            id="reads-the-key-secret",
        ),
        pytest.param(
            {"envFrom": [{"secretRef": {"name": "openai"}}]},
            {(RULE_PROVIDER_KEY, "spec.ephemeralContainers[0].envFrom[0].secretRef.name")},
            id="loads-the-key-secret",
        ),
        pytest.param(
            {"volumeMounts": [{"name": "aigis-provider-keys", "mountPath": "/k"}]},
            {(RULE_PROVIDER_KEY, "spec.ephemeralContainers[0].volumeMounts[0]")},
            id="mounts-the-keys-volume",
        ),
        pytest.param(
            {"volumeMounts": [{"name": "aigis-audit-key", "mountPath": "/k"}]},
            {(RULE_GATEWAY_VOLUME, "spec.ephemeralContainers[0].volumeMounts[0]")},
            id="mounts-the-audit-key-volume",
        ),
        pytest.param(
            {"image": "busybox:1.36"},
            {
                (RULE_IMAGE_REGISTRY, "spec.ephemeralContainers[0].image"),
                (RULE_IMAGE_DIGEST, "spec.ephemeralContainers[0].image"),
            },
            id="image-rules",
        ),
        pytest.param(
            {"targetContainerName": GATEWAY_CONTAINER},
            {(RULE_GATEWAY_DEBUG_TARGET, "spec.ephemeralContainers[0].targetContainerName")},
            id="targets-the-gateway",
        ),
        pytest.param(
            {"name": GATEWAY_CONTAINER},
            {(RULE_GATEWAY_IMPOSTOR, "spec.ephemeralContainers[0]")},
            id="named-like-the-gateway",
        ),
    ],
)
def test_a_new_ephemeral_container_is_reviewed(
    changes: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    old = injected()
    decision = review_debug(old, debugged(old, debug_container(**changes)))
    assert {(r.rule, r.path) for r in decision.denied} == expected
    assert decision.allowed is not expected


def test_debugging_a_pod_is_not_refused_for_older_drift() -> None:
    """The pod was admitted before the policy tightened (its app image is from a registry no
    longer allowed, and an earlier debug container is privileged): only the new container is
    reviewed."""
    old = injected(pod(containers=[container(image="quay.io/acme/bot:1")]))
    old = debugged(old, debug_container(name="earlier", securityContext={"privileged": True}))
    decision = review_debug(old, debugged(old, debug_container()))
    assert decision.allowed
    assert decision.reasons == ()
    refused = review_debug(old, debugged(old, debug_container(image="busybox")))
    assert {r.path for r in refused.denied} == {"spec.ephemeralContainers[1].image"}
