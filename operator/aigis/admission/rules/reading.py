"""Reading admitted objects as plain data, and quoting what a user wrote in a finding.

Objects come as the API server (or an unvalidated manifest) has them: a value of the wrong type
reads as absent rather than raising, because `aigis scan` reads manifests nobody has validated.
Shared by the engine and every rule family.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from aigis.admission.templates import PodTemplate

EMPTY: Final[Mapping[str, Any]] = {}
CONTAINER_LISTS: Final = ("initContainers", "containers", "ephemeralContainers")
_SHOWN_CHARS: Final = 80
_LISTED: Final = 5


def is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """Whether `value` is a mapping (a JSON object)."""
    # `dict` first: objects from JSON are dicts, and an ABC check costs ten times more. This runs
    # for every AIWorkload of the namespace on every review.
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def mapping_at(value: object, key: str) -> Mapping[str, Any]:
    """`value[key]` if both are mappings, else an empty mapping."""
    if is_mapping(value):
        found = value.get(key)
        if is_mapping(found):
            return found
    return EMPTY


def text_at(value: object, key: str) -> str:
    """`value[key]` if `value` is a mapping and the entry a string, else ""."""
    found = value.get(key) if is_mapping(value) else None
    return found if isinstance(found, str) else ""


def entries(spec: Mapping[str, Any], key: str) -> Sequence[Any]:
    """`spec[key]` if it is a list, else no entries."""
    found = spec.get(key)
    return found if isinstance(found, list) else ()


def name_of(obj: Mapping[str, Any]) -> str | None:
    """`metadata.name`, if it is a string."""
    name = mapping_at(obj, "metadata").get("name")
    return name if isinstance(name, str) else None


def quote(text: str) -> str:
    """A user-supplied string shown safely in a finding: quoted, escaped and cut short."""
    shown = text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
    return json.dumps(shown.encode("utf-8", "backslashreplace").decode("utf-8"), ensure_ascii=False)


def listing(items: Sequence[str]) -> str:
    """The first few items, comma-separated, and how many more there are."""
    shown = ", ".join(items[:_LISTED])
    return shown + (f", and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


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
