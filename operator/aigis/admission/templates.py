"""Where the pod templates sit in each kind of object that creates pods.

Admission reviews the pod a workload will run as early as possible: on the Deployment (or Job,
CronJob, RayCluster, InferenceService, ...) the user applies, so `kubectl apply` fails with the
reason, rather than later on a Pod a controller creates, where the refusal only shows up in the
controller's events. Reasons point into the object as the user wrote it
(`spec.template.spec.containers[0]`), so the paths here are the paths in the admitted object.

`TEMPLATE_KINDS` is the one table of kinds: the API groups each is served from, its resource
name (for the webhook's rules), where its PodTemplateSpecs are, and where it inlines a bare
PodSpec (KServe). Adding a kind is one row. Paths are dotted; `*` steps into every item of a
list (`workerGroupSpecs[*]`) or every value of a mapping (`pytorchReplicaSpecs.*`), so an object
can hold several templates (a Ray head and its worker groups; a PyTorchJob's Master and Worker).

Objects are read as plain dicts, never trusted: a part that is missing or of the wrong type reads
as empty, so malformed manifests (which `aigis scan` sees before any API server has validated
them) are reviewed as far as they go and never crash the engine.

Pure: no I/O. Must not import the webhook server, the operator or the gateway.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
_EACH: Final = "*"


@dataclass(frozen=True, slots=True)
class TemplateKind:
    """One kind of object that runs pods, and where its pods are described."""

    groups: frozenset[str]
    """The API groups serving it; a kind of the same name from another group is not this one."""
    resource: str
    """Its resource name (plural), as the webhook's rules name it."""
    templates: tuple[str, ...] = ()
    """Paths to PodTemplateSpecs (metadata and spec); "" for a Pod, which is its own template."""
    pod_specs: tuple[str, ...] = ()
    """Paths to inlined PodSpecs; the pods carry the object's own labels."""
    inline_containers: tuple[str, ...] = ()
    """Fields of an inlined PodSpec that each hold one container of the pod outside its
    `containers` list (KServe's `predictor.model`, which its controller turns into the pod's
    main container)."""

    @property
    def native(self) -> bool:
        """Whether Kubernetes itself serves the kind (else it is a CRD that may be missing)."""
        return bool(self.groups & {"", "apps", "batch", "extensions"})


def _kind(
    groups: str,
    resource: str,
    *templates: str,
    pod_specs: tuple[str, ...] = (),
    inline_containers: tuple[str, ...] = (),
) -> TemplateKind:
    return TemplateKind(
        frozenset(groups.split(",")), resource, templates, pod_specs, inline_containers
    )


# KServe's predictor holds its model server as a container of its own: `model`, or one of the
# older per-framework fields.
_KSERVE_PREDICTOR_CONTAINERS = (
    "model", "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface",
    "pmml", "lightgbm", "paddle",
)  # fmt: skip


_RAY_CLUSTER = ("headGroupSpec.template", "workerGroupSpecs[*].template")
# kind -> where its pods are. Kubernetes' own kinds first, then AI-native CRDs.
TEMPLATE_KINDS: Final[Mapping[str, TemplateKind]] = MappingProxyType(
    {
        "Pod": _kind("", "pods", ""),
        "ReplicationController": _kind("", "replicationcontrollers", "spec.template"),
        "Deployment": _kind("apps,extensions", "deployments", "spec.template"),
        "ReplicaSet": _kind("apps,extensions", "replicasets", "spec.template"),
        "DaemonSet": _kind("apps,extensions", "daemonsets", "spec.template"),
        "StatefulSet": _kind("apps", "statefulsets", "spec.template"),
        "Job": _kind("batch", "jobs", "spec.template"),
        "CronJob": _kind("batch", "cronjobs", "spec.jobTemplate.spec.template"),
        "LeaderWorkerSet": _kind(
            "leaderworkerset.x-k8s.io",
            "leaderworkersets",
            "spec.leaderWorkerTemplate.leaderTemplate",
            "spec.leaderWorkerTemplate.workerTemplate",
        ),
        "JobSet": _kind(
            "jobset.x-k8s.io", "jobsets", "spec.replicatedJobs[*].template.spec.template"
        ),
        "RayCluster": _kind("ray.io", "rayclusters", *(f"spec.{p}" for p in _RAY_CLUSTER)),
        "RayService": _kind(
            "ray.io", "rayservices", *(f"spec.rayClusterConfig.{p}" for p in _RAY_CLUSTER)
        ),
        "RayJob": _kind(
            "ray.io",
            "rayjobs",
            *(f"spec.rayClusterSpec.{p}" for p in _RAY_CLUSTER),
            "spec.submitterPodTemplate",
        ),
        "InferenceService": _kind(
            "serving.kserve.io",
            "inferenceservices",
            pod_specs=("spec.predictor", "spec.transformer", "spec.explainer"),
            inline_containers=_KSERVE_PREDICTOR_CONTAINERS,
        ),
        "ServingRuntime": _kind("serving.kserve.io", "servingruntimes", pod_specs=("spec",)),
        "LLMInferenceService": _kind(
            "serving.kserve.io",
            "llminferenceservices",
            pod_specs=(
                "spec.template",
                "spec.worker",
                "spec.prefill.template",
                "spec.prefill.worker",
            ),
        ),
        "PyTorchJob": _kind("kubeflow.org", "pytorchjobs", "spec.pytorchReplicaSpecs.*.template"),
        "TFJob": _kind("kubeflow.org", "tfjobs", "spec.tfReplicaSpecs.*.template"),
        "MPIJob": _kind("kubeflow.org", "mpijobs", "spec.mpiReplicaSpecs.*.template"),
        "XGBoostJob": _kind("kubeflow.org", "xgboostjobs", "spec.xgbReplicaSpecs.*.template"),
        "PaddleJob": _kind("kubeflow.org", "paddlejobs", "spec.paddleReplicaSpecs.*.template"),
        "JAXJob": _kind("kubeflow.org", "jaxjobs", "spec.jaxReplicaSpecs.*.template"),
        "Notebook": _kind("kubeflow.org", "notebooks", "spec.template"),
    }
)
POD_KINDS: Final = frozenset(TEMPLATE_KINDS)
"""Kinds whose objects carry pod templates (a Pod is its own template)."""
CORE_POD_KINDS: Final = frozenset(k for k, row in TEMPLATE_KINDS.items() if row.native)
"""The kinds Kubernetes itself serves, each with exactly one template."""


@dataclass(frozen=True, slots=True)
class PodTemplate:
    """The pod an object will run: its metadata and spec, and where they are in the object."""

    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]
    spec_path: str
    """Path of the PodSpec in the object: `spec` for a Pod, `spec.template.spec` otherwise."""
    metadata_path: str
    """Path of the pod's metadata: `metadata` for a Pod, `spec.template.metadata` otherwise."""
    is_pod: bool = False
    """Whether the object is a Pod itself rather than an object holding a template: only Pods
    are ever mutated, so only a Pod can hold what the injection added."""
    kind: str = "Pod"
    """The kind of the object holding the template (`Deployment`, `RayCluster`, ...)."""
    inline_containers: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    """Containers the object holds outside the spec's lists, with their paths (KServe's
    `spec.predictor.model`): reviewed as the pod's containers."""

    @property
    def labels(self) -> Mapping[str, str]:
        """The pod's labels, keeping only string values (anything else is not a label)."""
        labels = self.metadata.get("labels")
        if not isinstance(labels, Mapping):
            return _EMPTY
        return {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}

    @property
    def annotations(self) -> Mapping[str, Any]:
        annotations = self.metadata.get("annotations")
        return annotations if isinstance(annotations, Mapping) else _EMPTY


def api_group(obj: Mapping[str, Any]) -> str | None:
    """The API group of `obj` (`""` for the core group), or None when apiVersion is missing."""
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str):
        return None
    group, slash, _ = api_version.rpartition("/")
    return group if slash else ""


def template_kind(obj: Mapping[str, Any]) -> TemplateKind | None:
    """The row of `TEMPLATE_KINDS` for `obj`, or None when it runs no pods aigis knows of.

    An object without apiVersion is read by its kind alone: a manifest missing it is still worth
    reviewing in CI (the API server would refuse it anyway).
    """
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return None
    row = TEMPLATE_KINDS.get(kind)
    if row is None:
        return None
    group = api_group(obj)
    return row if group is None or group in row.groups else None


def pod_templates(obj: Mapping[str, Any]) -> tuple[PodTemplate, ...]:
    """Every pod template of `obj`, in table order; empty for kinds that run no pods.

    A Pod or a core kind always yields one template (empty when the manifest lacks it, so it is
    still reviewed); a CRD yields one per template that is present.
    """
    row = template_kind(obj)
    if row is None:
        return ()
    kind = str(obj.get("kind"))
    found: list[PodTemplate] = []
    for path in row.templates:
        for where, node in _walk(obj, path, keep_missing=row.native):
            found.append(_from_template(node, where, kind))
    metadata = obj.get("metadata")
    for path in row.pod_specs:
        for where, node in _walk(obj, path, keep_missing=False):
            inline = tuple(
                (f"{where}.{name}", node[name])
                for name in row.inline_containers
                if isinstance(node.get(name), Mapping)
            )
            found.append(
                PodTemplate(
                    metadata=metadata if isinstance(metadata, Mapping) else _EMPTY,
                    spec=node,
                    spec_path=where,
                    metadata_path="metadata",
                    kind=kind,
                    inline_containers=inline,
                )
            )
    return tuple(found)


def pod_template(obj: Mapping[str, Any]) -> PodTemplate | None:
    """The one pod template of a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
    ReplicationController, Job or CronJob; None for any other object (`pod_templates` reads
    the AI-native kinds, which may hold several)."""
    row = template_kind(obj)
    if row is None or not row.native:
        return None
    templates = pod_templates(obj)
    return templates[0] if templates else None


def _from_template(node: Mapping[str, Any], where: str, kind: str) -> PodTemplate:
    spec = node.get("spec")
    metadata = node.get("metadata")
    return PodTemplate(
        metadata=metadata if isinstance(metadata, Mapping) else _EMPTY,
        spec=spec if isinstance(spec, Mapping) else _EMPTY,
        spec_path=f"{where}.spec" if where else "spec",
        metadata_path=f"{where}.metadata" if where else "metadata",
        is_pod=kind == "Pod",
        kind=kind,
    )


def _steps(path: str) -> list[str]:
    return [s for s in path.replace("[*]", "." + _EACH).split(".") if s]


def _walk(
    obj: Mapping[str, Any], path: str, *, keep_missing: bool
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path in the object, mapping) for every node `path` leads to; a missing node is skipped,
    or read as empty when `keep_missing` (a core kind's one template)."""
    nodes: list[tuple[str, Any]] = [("", obj)]
    for step in _steps(path):
        following: list[tuple[str, Any]] = []
        for where, node in nodes:
            if step != _EACH:
                value = node.get(step) if isinstance(node, Mapping) else None
                following.append((f"{where}.{step}" if where else step, value))
            elif isinstance(node, list):
                following.extend((f"{where}[{i}]", item) for i, item in enumerate(node))
            elif isinstance(node, Mapping):
                following.extend((f"{where}.{k}", v) for k, v in node.items() if isinstance(k, str))
        nodes = following
    for where, node in nodes:
        if isinstance(node, Mapping):
            yield where, node
        elif keep_missing:
            yield where, _EMPTY
