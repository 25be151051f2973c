"""An AI bill of materials: a CycloneDX ML-BOM for each AIWorkload.

What an auditor asks of an AI workload, from its declaration and the pods it covers: the models
it may call (provider, name, digest of the weights and where they come from, for self-hosted
ones), the container images its pods and model servers run (with their digests when pinned),
and the providers and hosts it may reach (declared egress, gateway upstreams, and each
provider's default API host when nothing else is declared). The workload itself is the BOM's
metadata component; everything else depends on it.

CycloneDX 1.6 through cyclonedx-python-lib, which also ships the JSON schema the tests validate
against. Pure: objects in, a `Bom` (and its JSON) out; the time and serial number are inputs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.contact import OrganizationalEntity
from cyclonedx.model.service import Service
from cyclonedx.output.json import JsonV1Dot6

from aigis.admission.engine import covering_workloads
from aigis.admission.images import ImageRef, parse_image
from aigis.admission.manifests import is_kind, object_name, object_namespace
from aigis.admission.templates import pod_templates
from aigis.api.aiworkload import AIWorkloadSpec
from aigis.api.validation import parse_aiworkload_spec
from aigis.egress.catalogue import default_upstream

_PROPERTY: Final = "aigis:"
_NAMESPACE_UUID: Final = uuid.UUID("6d7f6f3e-9a34-4b0e-9f1b-1f6a2c7e0b51")
_CONTAINER_LISTS: Final = ("initContainers", "containers")


class BomError(ValueError):
    """An AIWorkload that cannot be described: its spec is not valid."""


def workload_images(
    workload: Mapping[str, Any], objects: Iterable[Mapping[str, Any]], default_namespace: str
) -> list[str]:
    """The images of every container in the pod templates `workload` covers among `objects`."""
    namespace = object_namespace(workload, default_namespace)
    images: list[str] = []
    for obj in objects:
        if object_namespace(obj, default_namespace) != namespace:
            continue
        for template in pod_templates(obj):
            if not covering_workloads(template.labels, [workload]):
                continue
            for key in _CONTAINER_LISTS:
                containers = template.spec.get(key)
                for container in containers if isinstance(containers, list) else ():
                    image = container.get("image") if isinstance(container, Mapping) else None
                    if isinstance(image, str) and image not in images:
                        images.append(image)
    return images


def render_bom(
    workload: Mapping[str, Any],
    *,
    images: Sequence[str] = (),
    now: datetime,
    default_namespace: str = "default",
) -> Bom:
    """The ML-BOM of one AIWorkload object; `images` are those of the pods it covers."""
    if not is_kind(workload, "AIWorkload"):
        raise BomError("not an AIWorkload")
    name = object_name(workload) or "unnamed"
    namespace = object_namespace(workload, default_namespace) or default_namespace
    spec = workload.get("spec")
    model, errors = parse_aiworkload_spec(spec if isinstance(spec, Mapping) else {})
    if model is None or errors:
        shown = "; ".join(str(e) for e in errors[:3])
        raise BomError(f"AIWorkload {namespace}/{name} is not valid: {shown}")
    serial = uuid.uuid5(_NAMESPACE_UUID, f"{namespace}/{name}/{now.isoformat()}")
    bom = Bom(serial_number=serial)
    bom.metadata.timestamp = now
    subject = Component(
        type=ComponentType.APPLICATION,
        name=name,
        group=namespace,
        bom_ref=f"aiworkload:{namespace}/{name}",
        description=model.purpose,
        properties=_workload_properties(model),
    )
    bom.metadata.component = subject
    parts: list[Component] = []
    for index, ref in enumerate(model.models):
        parts.append(_model_component(ref, index))
        if ref.image is not None and ref.image not in images:
            images = [*images, ref.image]
    parts.extend(_image_component(image) for image in images)
    for part in parts:
        bom.components.add(part)
    services = _services(model)
    for service in services:
        bom.services.add(service)
    bom.register_dependency(subject, [*parts, *services])
    return bom


def bom_json(bom: Bom) -> str:
    """The BOM as CycloneDX 1.6 JSON."""
    return str(JsonV1Dot6(bom).output_as_string(indent=2))


def _workload_properties(model: AIWorkloadSpec) -> list[Property]:
    properties = [
        Property(name=f"{_PROPERTY}owner", value=model.owner),
        Property(name=f"{_PROPERTY}enforcement", value=model.enforcement),
    ]
    properties += [Property(name=f"{_PROPERTY}dataRegion", value=r) for r in model.data_regions]
    return properties


def _model_component(ref: Any, index: int) -> Component:
    hashes = []
    if ref.digest and ref.digest.startswith("sha256:"):
        hashes.append(
            HashType(alg=HashAlgorithm.SHA_256, content=ref.digest.removeprefix("sha256:"))
        )
    references = []
    if ref.source:
        references.append(
            ExternalReference(
                type=ExternalReferenceType.DISTRIBUTION, url=XsUri(_source_url(ref.source))
            )
        )
    return Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=ref.name,
        group=ref.provider,
        version=ref.digest,
        bom_ref=f"model:{index}:{ref.provider}/{ref.name}",
        supplier=OrganizationalEntity(name=ref.provider),
        hashes=hashes,
        external_references=references,
        properties=[Property(name=f"{_PROPERTY}provider", value=ref.provider)],
    )


def _source_url(source: str) -> str:
    """`hf://org/model` as the page it names; other sources as written."""
    if source.startswith("hf://"):
        return "https://huggingface.co/" + source.removeprefix("hf://")
    return source


def _image_component(image: str) -> Component:
    parsed = parse_image(image)
    hashes = []
    version = None
    name = image
    if isinstance(parsed, ImageRef):
        name = f"{parsed.registry}/{parsed.repository}"
        version = parsed.digest or parsed.tag
        if parsed.digest and parsed.digest.startswith("sha256:"):
            hashes.append(
                HashType(alg=HashAlgorithm.SHA_256, content=parsed.digest.removeprefix("sha256:"))
            )
    return Component(
        type=ComponentType.CONTAINER,
        name=name,
        version=version,
        bom_ref=f"image:{image}",
        hashes=hashes,
        properties=[Property(name=f"{_PROPERTY}pinned", value=str(bool(hashes)).lower())],
    )


def _services(model: AIWorkloadSpec) -> list[Service]:
    """Every host the workload may reach, with the provider serving it where known."""
    hosts: dict[str, str | None] = {}
    for rule in model.egress:
        if rule.host:
            hosts.setdefault(rule.host, None)
    for upstream in model.gateway.upstreams:
        host = upstream.base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        hosts[host] = upstream.provider
    for ref in model.models:
        if ref.provider == "self-hosted":
            continue
        if not any(provider == ref.provider for provider in hosts.values()):
            default = default_upstream(ref.provider)
            if default is not None:
                hosts.setdefault(default, ref.provider)
    services = []
    for host, provider in hosts.items():
        services.append(
            Service(
                name=host,
                bom_ref=f"host:{host}",
                provider=OrganizationalEntity(name=provider) if provider else None,
                endpoints=[XsUri(f"https://{host}")] if "*" not in host else None,
                x_trust_boundary=True,
            )
        )
    return services
