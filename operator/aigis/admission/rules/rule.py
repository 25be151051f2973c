"""What a rule is: its stable id, what it checks, the fix, and where its check lives.

A `Rule` is metadata about one finding id, the value every `Reason` carries in `rule`. The
registry (`aigis.admission.rules`) holds one per id; the rule reference (`docs/rules.md`,
`aigis rules`) is rendered from it, and exemptions, dashboards and alerts key on the id.

Pure data: no imports of the engine or of any rule family, so every family can import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

PACKAGE = "aigis.admission.rules"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule id and what a user needs to know about it."""

    id: str
    """Stable: renaming one breaks every exemption, dashboard and alert keyed on it."""
    title: str
    """A few words, as a heading."""
    checks: str
    """What it checks, in one or two sentences."""
    fix: str
    """The usual fix; each finding also carries a fix for the field it names."""
    family: str
    """The family the rule belongs to: the module `aigis.admission.rules.<family>` registers it."""
    check: Callable[..., object] | None = None
    """The function that produces the rule's findings, where there is one to point at."""

    @property
    def module(self) -> str:
        """The module that registers the rule."""
        return f"{PACKAGE}.{self.family}"

    @property
    def check_name(self) -> str | None:
        """The check function's qualified name (`module.function`), for a reader to open."""
        if self.check is None:
            return None
        return f"{self.check.__module__}.{self.check.__qualname__}"


@dataclass(frozen=True, slots=True)
class Family:
    """The rules of one module, with what they have in common."""

    name: str
    """The module's name under `aigis.admission.rules`."""
    title: str
    summary: str
    """What the family covers, in a sentence or two (the rule reference prints it)."""
    rules: tuple[Rule, ...]

    @property
    def module(self) -> str:
        """The module that registers the family's rules."""
        return f"{PACKAGE}.{self.name}"

    def __post_init__(self) -> None:
        strays = [r.id for r in self.rules if r.family != self.name]
        if strays:
            raise ValueError(f"rules {strays} name another family than {self.name!r}")
