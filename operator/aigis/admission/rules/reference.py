"""The rule reference, rendered from the registry: Markdown for `docs/rules.md`, JSON and a
table for `aigis rules`. Pure: text in, text out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from aigis.admission.rules.rule import Family, Rule

REGENERATE: Final = "uv run aigis rules --output markdown > docs/rules.md"


def rule_record(entry: Rule) -> dict[str, str | None]:
    """One rule as a JSON object."""
    return {
        "id": entry.id,
        "title": entry.title,
        "checks": entry.checks,
        "fix": entry.fix,
        "family": entry.family,
        "module": entry.module,
        "check": entry.check_name,
    }


def render_json(families: Sequence[Family]) -> str:
    """Every rule as a JSON array, family by family."""
    records = [rule_record(r) for family in families for r in family.rules]
    return json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def render_table(families: Sequence[Family]) -> str:
    """One line per rule: id, family, title."""
    rules = [r for family in families for r in family.rules]
    id_width = max(len("RULE"), *(len(r.id) for r in rules))
    family_width = max(len("FAMILY"), *(len(r.family) for r in rules))
    lines = [f"{'RULE':<{id_width}}  {'FAMILY':<{family_width}}  TITLE"]
    lines += [f"{r.id:<{id_width}}  {r.family:<{family_width}}  {r.title}" for r in rules]
    return "\n".join(lines) + "\n"


def render_markdown(families: Sequence[Family]) -> str:
    """The rule reference as `docs/rules.md` holds it."""
    lines = [
        "# Rule reference",
        "",
        f"<!-- Generated from aigis.admission.rules by `{REGENERATE}`; do not edit by hand. -->",
        "",
        "Every finding aigis reports (webhook refusals and warnings, `aigis scan`) carries one of "
        "these rule ids. Exemptions, dashboards and alerts key on the id, which never changes "
        "once released. Each finding also names the field it is about and a fix for that field; "
        "the fix below is the usual one.",
        "",
        "| Rule | Title | Family |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| [`{r.id}`](#{anchor(r.id)}) | {_cell(r.title)} | {family.title} |"
        for family in families
        for r in family.rules
    ]
    for family in families:
        lines += ["", f"## {family.title}", "", family.summary, "", f"Module: `{family.module}`"]
        for r in family.rules:
            lines += ["", f"### `{r.id}`", "", f"**{r.title}.** {r.checks}", "", f"Fix: {r.fix}"]
            if r.check_name is not None:
                lines += ["", f"Check: `{r.check_name}`"]
    return "\n".join(lines) + "\n"


def anchor(rule_id: str) -> str:
    """The anchor GitHub gives the heading "`rule_id`": lower case, punctuation but - dropped."""
    return "".join(c for c in rule_id.lower() if c.isalnum() or c in "-_")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
