"""Which workloads run AI, declared or not, and a draft declaration for each undeclared one.

`discover` looks at every object that runs pods (`aigis.admission.templates.TEMPLATE_KINDS`:
Kubernetes' own kinds and the AI-native ones) with the shadow-AI evidence of admission
(`aigis.admission.shadow`), so what `aigis discover` reports is exactly what the webhook would
call AI. Objects a controller owns (the ReplicaSets of a Deployment, the Pods of a ReplicaSet)
are skipped: their owner is reported, once.

For each undeclared one, `draft_aiworkload` writes an AIWorkload in Audit mode whose selector is
the pod template's labels: applying it declares the workload without refusing or changing
anything (the gateway is not injected until someone turns it on), and its status then says what
a real declaration must add. Owner and purpose are placeholders for a person to fill in.

Pure: objects in, findings and drafts out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from aigis.admission.engine import covering_workloads
from aigis.admission.manifests import is_kind, object_name, object_namespace
from aigis.admission.shadow import Evidence, ai_evidence, ai_score, looks_like_ai
from aigis.admission.templates import PodTemplate, pod_templates
from aigis.api.common import GROUP

DRAFT_OWNER: Final = "unassigned"
DRAFT_ANNOTATION: Final = "aigis.dev/discovered-from"
_MAX_NAME: Final = 63
_NAME_CHARACTERS = re.compile(r"[^a-z0-9-]+")
_MAX_PURPOSE_EVIDENCE: Final = 3


@dataclass(frozen=True, slots=True)
class DiscoveredWorkload:
    """One object that runs AI, with the evidence and the AIWorkloads declaring it."""

    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    """The labels of its (first AI) pod template: what a declaration's selector matches."""
    evidence: tuple[Evidence, ...]
    score: int
    declared_by: tuple[str, ...]
    """The AIWorkloads covering every AI template of it; empty when undeclared."""

    @property
    def declared(self) -> bool:
        return bool(self.declared_by)


def is_controlled(obj: Mapping[str, Any]) -> bool:
    """Whether a controller owns `obj` (a Pod of a ReplicaSet, a Job of a CronJob)."""
    metadata = obj.get("metadata")
    owners = metadata.get("ownerReferences") if isinstance(metadata, Mapping) else None
    return isinstance(owners, list) and any(
        isinstance(o, Mapping) and o.get("controller") is True for o in owners
    )


def discover(
    objects: Iterable[Mapping[str, Any]], *, default_namespace: str = "default"
) -> list[DiscoveredWorkload]:
    """Every object among `objects` that looks like AI, with its evidence, in input order."""
    listed = list(objects)
    workloads: dict[str, list[Mapping[str, Any]]] = {}
    for obj in listed:
        if is_kind(obj, "AIWorkload"):
            namespace = object_namespace(obj, default_namespace) or default_namespace
            workloads.setdefault(namespace, []).append(obj)
    found: list[DiscoveredWorkload] = []
    for obj in listed:
        if is_controlled(obj):
            continue
        ai_templates = [t for t in pod_templates(obj) if looks_like_ai(ai_evidence(t))]
        if not ai_templates:
            continue
        namespace = object_namespace(obj, default_namespace) or default_namespace
        evidence = tuple(e for t in ai_templates for e in ai_evidence(t))
        found.append(
            DiscoveredWorkload(
                kind=str(obj.get("kind")),
                namespace=namespace,
                name=object_name(obj) or "<unnamed>",
                labels=_selector_labels(ai_templates) or _controller_labels(obj),
                evidence=evidence,
                score=max(ai_score(ai_evidence(t)) for t in ai_templates),
                declared_by=_declared_by(ai_templates, workloads.get(namespace, [])),
            )
        )
    return found


def draft_aiworkload(found: DiscoveredWorkload) -> dict[str, Any] | None:
    """An AIWorkload in Audit mode declaring `found`, for a person to complete and apply; None
    when its pods carry no label to select them by (a KServe ServingRuntime is a template for
    other objects' pods): a selector must then be written by hand."""
    if not found.labels:
        return None
    shown = "; ".join(e.detail for e in found.evidence[:_MAX_PURPOSE_EVIDENCE])
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {
            "name": draft_name(found.name),
            "namespace": found.namespace,
            "annotations": {DRAFT_ANNOTATION: f"{found.kind}/{found.name}"},
        },
        "spec": {
            "selector": {"matchLabels": dict(found.labels)},
            "owner": DRAFT_OWNER,
            "purpose": f"Draft by aigis discover for {found.kind} {found.name}; say what it is "
            f"for. Evidence: {shown}"[:1000],
            "enforcement": "Audit",
            "gateway": {"inject": False},
        },
    }


def draft_name(name: str) -> str:
    """A valid object name for the draft of the object called `name`."""
    cleaned = _NAME_CHARACTERS.sub("-", name.lower()).strip("-") or "workload"
    return cleaned[:_MAX_NAME].rstrip("-")


def _selector_labels(templates: Sequence[PodTemplate]) -> Mapping[str, str]:
    for template in templates:
        if template.labels:
            return dict(template.labels)
    return {}


# Labels controllers of AI-native kinds put on every pod they create, for objects whose
# templates carry none: kind -> label key whose value is the object's name.
CONTROLLER_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "InferenceService": "serving.kserve.io/inferenceservice",
        "LLMInferenceService": "app.kubernetes.io/name",
        "RayCluster": "ray.io/cluster",
        "RayService": "ray.io/originated-from-cr-name",
        "RayJob": "ray.io/originated-from-cr-name",
        "MPIJob": "training.kubeflow.org/job-name",
        "XGBoostJob": "training.kubeflow.org/job-name",
        "PaddleJob": "training.kubeflow.org/job-name",
        "JAXJob": "training.kubeflow.org/job-name",
        "Notebook": "notebook-name",
        "LeaderWorkerSet": "leaderworkerset.sigs.k8s.io/name",
        "JobSet": "jobset.sigs.k8s.io/jobset-name",
        "PyTorchJob": "training.kubeflow.org/job-name",
        "TFJob": "training.kubeflow.org/job-name",
    }
)


def _controller_labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    key = CONTROLLER_LABELS.get(str(obj.get("kind")))
    name = object_name(obj)
    return {key: name} if key is not None and name is not None else {}


def _declared_by(
    templates: Sequence[PodTemplate], workloads: Sequence[Mapping[str, Any]]
) -> tuple[str, ...]:
    names: list[str] = []
    for template in templates:
        covering = covering_workloads(template.labels, workloads)
        if not covering:
            return ()
        names.extend(object_name(w) or "?" for w in covering if object_name(w) not in names)
    return tuple(names)
