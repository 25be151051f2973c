"""Reading admitted objects as plain data, and quoting what a user wrote in a finding.

Objects come as the API server (or an unvalidated manifest) has them: a value of the wrong type
reads as absent (an empty mapping, no entries, "" or None) rather than raising, because `aigis
scan` reads manifests nobody has validated and a review must never crash on them. One set of
readers for the engine, every rule family, the Pod Security checks and shadow-AI detection. (The
injection reads strictly instead: a patch computed from a misread pod could apply to the wrong
element, so `aigis.admission.mutation` refuses to patch what has the wrong type.)

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeGuard

EMPTY: Final[Mapping[str, Any]] = {}
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


def fields(value: object) -> Mapping[str, Any]:
    """`value` if it is a mapping, else an empty mapping."""
    return value if is_mapping(value) else EMPTY


def optional_mapping(value: object) -> Mapping[str, Any] | None:
    """`value` if it is a mapping, else None."""
    return value if is_mapping(value) else None


def items(value: object) -> Sequence[Any]:
    """`value` if it is a list, else no items."""
    return value if isinstance(value, list | tuple) else ()


def text(value: object) -> str:
    """`value` if it is a string, else ""."""
    return value if isinstance(value, str) else ""


def flag(value: object) -> bool | None:
    """`value` if it is a boolean, else None."""
    return value if isinstance(value, bool) else None


def number(value: object) -> int | None:
    """`value` if it is an integer (booleans are not), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
