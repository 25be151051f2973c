"""Errors as values: every complaint about user input names the field and says how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of a resource.

    `path` is written the way a user would find the field in YAML (`spec.egress[2].host`), so the
    message can be acted on without reading aigis's source.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"
