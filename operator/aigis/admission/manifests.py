"""AdmissionContexts built from plain lists of objects, as the webhook and `aigis scan` need them.

The webhook holds the cluster's AIWorkloads, AIClusterPolicies and Namespaces in a cache; `aigis
scan` reads them from the manifests it is given. Both turn those objects into the same
`AdmissionContext` here, so the two review every object against the same context and agree.

- Only valid AIClusterPolicies count, as in the operator: an invalid one is ignored (and refused
  on its own by the webhook), never half-applied.
- A namespace's labels are `kubernetes.io/metadata.name: <name>` (the API server sets it on every
  namespace), then the labels of a Namespace object for it if one is given, then any extra labels
  the caller passes (`aigis scan --namespace-labels`).
- Objects without `metadata.namespace` are in `default_namespace`, as `kubectl apply` without
  `-n` would put them.

Pure: no I/O, no clock, no environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from aigis.admission.engine import AdmissionContext
from aigis.admission.mutation import InjectionSettings
from aigis.admission.templates import api_group
from aigis.api.common import GROUP
from aigis.api.validation import parse_cluster_policy_spec
from aigis.egress.compliance import NamedPolicy

NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
DEFAULT_NAMESPACE: Final = "default"
# The cluster-scoped kinds a manifest set may hold next to namespaced objects.
CLUSTER_SCOPED_KINDS: Final = frozenset(
    {
        "AIClusterPolicy",
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "RuntimeClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
)


def expand_lists(objects: Iterable[object]) -> Iterator[Mapping[str, Any]]:
    """Every object, with the items of `kind: List` (what `kubectl get -o yaml` prints) inlined.

    Entries that are not mappings are dropped: they are not Kubernetes objects.
    """
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        items = obj.get("items")
        if obj.get("kind") == "List" and isinstance(items, list):
            yield from expand_lists(items)
        else:
            yield obj


def is_kind(obj: Mapping[str, Any], kind: str) -> bool:
    """Whether `obj` is an aigis resource of `kind` (apiVersion missing or in aigis's group)."""
    group = api_group(obj)
    return obj.get("kind") == kind and (group is None or group == GROUP)


def object_name(obj: Mapping[str, Any]) -> str | None:
    """`metadata.name`, or None when missing (a Pod with only generateName, a bad manifest)."""
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) and name else None


def object_namespace(obj: Mapping[str, Any], default_namespace: str) -> str | None:
    """The namespace `obj` lands in; None for cluster-scoped kinds."""
    if obj.get("kind") in CLUSTER_SCOPED_KINDS:
        return None
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return namespace if isinstance(namespace, str) and namespace else default_namespace


def named_policies(objects: Iterable[Mapping[str, Any]]) -> list[NamedPolicy]:
    """The valid AIClusterPolicies among `objects`; invalid ones are ignored, as by the operator."""
    found: list[NamedPolicy] = []
    for obj in objects:
        if not is_kind(obj, "AIClusterPolicy"):
            continue
        name = object_name(obj)
        spec = obj.get("spec")
        model, errors = parse_cluster_policy_spec({} if spec is None else spec)
        if name is not None and model is not None and not errors:
            found.append(NamedPolicy(name, model))
    return found


@dataclass(frozen=True, slots=True)
class ManifestIndex:
    """A set of objects read once: the context each namespace's objects are reviewed in."""

    workloads: Mapping[str, tuple[Mapping[str, Any], ...]]
    """AIWorkloads by namespace."""
    policies: tuple[NamedPolicy, ...]
    namespace_labels: Mapping[str, Mapping[str, str]]
    """Labels of the Namespace objects among the manifests, by name."""
    default_namespace: str

    def context(
        self,
        namespace: str | None,
        *,
        now: datetime,
        extra_labels: Mapping[str, str] | None = None,
        aigis_namespace: str | None = None,
        injection: InjectionSettings | None = None,
    ) -> AdmissionContext:
        """The context for objects of `namespace` (None: cluster-scoped objects)."""
        labels: dict[str, str] = {}
        if namespace is not None:
            labels[NAMESPACE_NAME_LABEL] = namespace
            labels.update(self.namespace_labels.get(namespace, {}))
            labels.update(extra_labels or {})
        return AdmissionContext(
            namespace=namespace,
            namespace_labels=labels,
            workloads=self.workloads.get(namespace, ()) if namespace is not None else (),
            policies=self.policies,
            aigis_namespace=aigis_namespace,
            now=now,
            injection=injection,
        )


def index_manifests(
    objects: Iterable[Mapping[str, Any]], *, default_namespace: str = DEFAULT_NAMESPACE
) -> ManifestIndex:
    """Index AIWorkloads, AIClusterPolicies and Namespaces of `objects` (Lists expanded)."""
    expanded = list(expand_lists(objects))
    workloads: dict[str, list[Mapping[str, Any]]] = {}
    namespace_labels: dict[str, Mapping[str, str]] = {}
    for obj in expanded:
        if is_kind(obj, "AIWorkload"):
            namespace = object_namespace(obj, default_namespace) or default_namespace
            workloads.setdefault(namespace, []).append(obj)
        elif obj.get("kind") == "Namespace" and api_group(obj) in (None, ""):
            name = object_name(obj)
            metadata = obj.get("metadata")
            labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
            if name is not None and isinstance(labels, Mapping):
                namespace_labels[name] = {
                    k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)
                }
    return ManifestIndex(
        workloads={ns: tuple(items) for ns, items in workloads.items()},
        policies=tuple(named_policies(expanded)),
        namespace_labels=namespace_labels,
        default_namespace=default_namespace,
    )


def context_from_manifests(
    objects: Iterable[Mapping[str, Any]],
    namespace: str | None,
    *,
    now: datetime,
    default_namespace: str = DEFAULT_NAMESPACE,
    namespace_labels: Mapping[str, str] | None = None,
    aigis_namespace: str | None = None,
    injection: InjectionSettings | None = None,
) -> AdmissionContext:
    """The AdmissionContext for an object of `namespace`, from a list of objects (AIWorkloads,
    AIClusterPolicies, Namespaces; anything else is ignored). One call for one review; to review
    many objects, build a `ManifestIndex` once with `index_manifests`."""
    return index_manifests(objects, default_namespace=default_namespace).context(
        namespace,
        now=now,
        extra_labels=namespace_labels,
        aigis_namespace=aigis_namespace,
        injection=injection,
    )
