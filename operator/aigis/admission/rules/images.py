"""Container images: from a registry the policies allow, and pinned by digest where required.

Parsing image references and matching registries is `aigis.admission.images`; this module turns
its answers into findings. Every container is checked (init, app and ephemeral), except aigis's
own gateway sidecar once the review has found it. An image reference that does not parse is
reported under whichever rule asked (the registry rule first), since neither can be checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from aigis.admission.images import ImageRef, digest_problem, parse_image, registry_allows
from aigis.admission.reading import listing, quote
from aigis.admission.reasons import Reason
from aigis.admission.rules.containers import containers
from aigis.admission.rules.pod import CoveredPod
from aigis.admission.rules.rule import Family, Rule

RULE_IMAGE_REGISTRY: Final = "image/registry"
RULE_IMAGE_DIGEST: Final = "image/digest"

_FAMILY: Final = "images"


def image_sources(pod: CoveredPod) -> Iterator[Reason]:
    """Each container's image against every registry restriction and digest requirement."""
    bounds = pod.bounds
    if not bounds.registries and not bounds.digest_required_by:
        return
    for container in containers(pod.template, pod.gateway.path):
        path = f"{container.path}.image"
        image = container.fields.get("image")
        text = image if isinstance(image, str) else ""
        parsed = parse_image(text)
        if not isinstance(parsed, ImageRef):
            rule = RULE_IMAGE_REGISTRY if bounds.registries else RULE_IMAGE_DIGEST
            yield Reason(
                rule=rule,
                path=path,
                message=f"{quote(text)} {parsed}, so aigis cannot tell where it comes from",
                fix="write a valid image reference, e.g. registry.example.com/team/app@sha256:...",
            )
            continue
        for policy in bounds.registries:
            allowed = policy.spec.allowed_registries
            if not registry_allows(parsed, allowed):
                yield Reason(
                    rule=RULE_IMAGE_REGISTRY,
                    path=path,
                    message=f"{quote(text)} comes from {parsed.name}, which AIClusterPolicy "
                    f"{policy.name} does not allow (allowed: {listing(allowed)})",
                    fix="use an image from an allowed registry, or ask the platform team to add "
                    "its registry to spec.allowedRegistries",
                )
        if bounds.digest_required_by:
            problem = digest_problem(parsed.digest)
            if problem is not None:
                yield Reason(
                    rule=RULE_IMAGE_DIGEST,
                    path=path,
                    message=f"{quote(text)} {problem}, and AIClusterPolicy "
                    f"{bounds.digest_required_by[0]} sets requireDigest: a tag can be moved to "
                    "other content after review",
                    fix=f"pin it by digest: {parsed.name}@sha256:<64 hex digits> "
                    "(the digest the registry reports for the reviewed image)",
                )


FAMILY: Final = Family(
    name=_FAMILY,
    title="Images",
    summary="Where the containers of an AIWorkload's pods come from, as the governing "
    "AIClusterPolicies restrict it (allowedRegistries, requireDigest).",
    rules=(
        Rule(
            id=RULE_IMAGE_REGISTRY,
            title="Image from a registry the policy does not allow",
            checks="Each container's image comes from a registry every governing policy with "
            "spec.allowedRegistries allows, and is a valid image reference.",
            fix="Use an image from an allowed registry, or ask the platform team to add its "
            "registry to spec.allowedRegistries.",
            family=_FAMILY,
            check=image_sources,
        ),
        Rule(
            id=RULE_IMAGE_DIGEST,
            title="Image not pinned by digest",
            checks="Where a governing policy sets requireDigest, each container's image is "
            "pinned by a well-formed sha256 digest: a tag can be moved to other content after "
            "review.",
            fix="Pin the image by the digest the registry reports for the reviewed image "
            "(registry/name@sha256:<64 hex digits>).",
            family=_FAMILY,
            check=image_sources,
        ),
    ),
)
