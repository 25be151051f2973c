"""The admission rules, as a library: one module per family, every rule id registered here.

Each family module (`shadow`, `workload`, `images`, `secrets`, `gateway`, `resources`,
`podsecurity`, `audit`) holds its rule ids, its check functions and a `FAMILY` listing a `Rule`
per id: its title, what it checks, the usual fix and the check that produces it. `FAMILIES`
below is the one place a family is registered; `rule(id)` finds any rule by the id a `Reason`
carries, and the rule reference (`docs/rules.md`, `aigis rules`) is rendered from `all_rules()`.

The engine (`aigis.admission.engine`) decides which checks run on which object and whether a
finding refuses or warns; the checks only find. Everything here but `cli` (the `aigis rules`
command, which prints) is pure: no I/O, clock or environment. Must not import the engine, the
webhook server or the Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from aigis.admission.rules import (
    audit,
    gateway,
    images,
    podsecurity,
    resources,
    secrets,
    shadow,
    workload,
)
from aigis.admission.rules.rule import Family, Rule

FAMILIES: Final[tuple[Family, ...]] = (
    shadow.FAMILY,
    workload.FAMILY,
    images.FAMILY,
    secrets.FAMILY,
    gateway.FAMILY,
    resources.FAMILY,
    podsecurity.FAMILY,
    audit.FAMILY,
)
"""Every family, in the order the rule reference lists them."""


def _index(families: tuple[Family, ...]) -> Mapping[str, Rule]:
    found: dict[str, Rule] = {}
    for family in families:
        for entry in family.rules:
            if entry.id in found:
                raise ValueError(f"rule id {entry.id!r} is registered twice")
            found[entry.id] = entry
    return MappingProxyType(found)


_BY_ID: Final = _index(FAMILIES)


def rule(rule_id: str) -> Rule:
    """The registered rule with this id; KeyError if there is none."""
    return _BY_ID[rule_id]


def is_registered(rule_id: str) -> bool:
    """Whether a rule with this id is registered."""
    return rule_id in _BY_ID


def all_rules() -> tuple[Rule, ...]:
    """Every registered rule, family by family."""
    return tuple(_BY_ID.values())


__all__ = ["FAMILIES", "Family", "Rule", "all_rules", "is_registered", "rule"]
