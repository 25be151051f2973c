"""The containers and volumes of a pod template, as the rule families read them.

Built on `aigis.admission.reading` (wrong types read as absent). Shared by the engine and every
rule family.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aigis.admission.reading import EMPTY, entries, mapping_at, text_at
from aigis.admission.templates import PodTemplate

CONTAINER_LISTS: Final = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class Container:
    """One container, init container or ephemeral container of a pod template."""

    path: str
    list_name: str
    fields: Mapping[str, Any]


def containers(template: PodTemplate, skip: str | None = None) -> Iterator[Container]:
    """Every container of the template, except the one at `skip` (aigis's gateway sidecar)."""
    for list_name in CONTAINER_LISTS:
        for index, entry in enumerate(entries(template.spec, list_name)):
            path = f"{template.spec_path}.{list_name}[{index}]"
            if path != skip:
                fields = entry if isinstance(entry, Mapping) else EMPTY
                yield Container(path, list_name, fields)
    for path, fields in template.inline_containers:
        yield Container(path, "containers", fields)


def volumes_exposing(template: PodTemplate, secrets: set[str]) -> dict[str, str]:
    """Volume name -> the Secret of `secrets` it exposes as files, for the pod's volumes."""
    exposing: dict[str, str] = {}
    volumes = template.spec.get("volumes")
    for volume in volumes if isinstance(volumes, list) else ():
        name = text_at(volume, "name")
        found = text_at(mapping_at(volume, "secret"), "secretName")
        if found not in secrets:
            found = ""
            sources = mapping_at(volume, "projected").get("sources")
            for source in sources if isinstance(sources, list) else ():
                candidate = text_at(mapping_at(source, "secret"), "name")
                if candidate in secrets:
                    found = candidate
                    break
        if name and found:
            exposing[name] = found
    return exposing
