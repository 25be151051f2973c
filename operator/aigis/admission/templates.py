"""Where the pod template sits in each kind of object that creates pods.

Admission reviews the pod a workload will run as early as possible: on the Deployment (or Job,
CronJob, ...) the user applies, so `kubectl apply` fails with the reason, rather than later on a Pod
a controller creates, where the refusal only shows up in the controller's events. Reasons point
into the object as the user wrote it (`spec.template.spec.containers[0]`), so the paths here are
the paths in the admitted object.

Objects are read as plain dicts, never trusted: a part that is missing or of the wrong type reads
as empty, so malformed manifests (which `aigis scan` sees before any API server has validated
them) are reviewed as far as they go and never crash the engine.

Pure: no I/O. Must not import the webhook server, the operator or the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})

# kind -> (API groups it is served from, keys leading from the object to the PodTemplateSpec).
# A kind of the same name from another API group (a CRD called Deployment) is not a pod template.
_TEMPLATE_PATHS: Final[Mapping[str, tuple[frozenset[str], tuple[str, ...]]]] = MappingProxyType(
    {
        "Pod": (frozenset({""}), ()),
        "ReplicationController": (frozenset({""}), ("spec", "template")),
        "Deployment": (frozenset({"apps", "extensions"}), ("spec", "template")),
        "ReplicaSet": (frozenset({"apps", "extensions"}), ("spec", "template")),
        "DaemonSet": (frozenset({"apps", "extensions"}), ("spec", "template")),
        "StatefulSet": (frozenset({"apps"}), ("spec", "template")),
        "Job": (frozenset({"batch"}), ("spec", "template")),
        "CronJob": (frozenset({"batch"}), ("spec", "jobTemplate", "spec", "template")),
    }
)
POD_KINDS: Final = frozenset(_TEMPLATE_PATHS)
"""Kinds whose objects carry a pod template (a Pod is its own template)."""


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


def pod_template(obj: Mapping[str, Any]) -> PodTemplate | None:
    """The pod template of a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
    ReplicationController, Job or CronJob; None for any other object.

    An object without apiVersion is read by its kind alone: a manifest missing it is still worth
    reviewing in CI (the API server would refuse it anyway).
    """
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in _TEMPLATE_PATHS:
        return None
    groups, keys = _TEMPLATE_PATHS[kind]
    group = api_group(obj)
    if group is not None and group not in groups:
        return None
    node: Any = obj
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    template = node if isinstance(node, Mapping) else _EMPTY
    prefix = ".".join(keys)
    spec = template.get("spec")
    metadata = template.get("metadata")
    return PodTemplate(
        metadata=metadata if isinstance(metadata, Mapping) else _EMPTY,
        spec=spec if isinstance(spec, Mapping) else _EMPTY,
        spec_path=f"{prefix}.spec" if prefix else "spec",
        metadata_path=f"{prefix}.metadata" if prefix else "metadata",
        is_pod=kind == "Pod",
    )
