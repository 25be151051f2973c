"""`aigis rules`: the registered admission rules, as a table, JSON or the Markdown reference."""

from __future__ import annotations

import click

from aigis.admission.rules import FAMILIES
from aigis.admission.rules.reference import render_json, render_markdown, render_table

_RENDERERS = {"table": render_table, "json": render_json, "markdown": render_markdown}


@click.command()
@click.option(
    "--output",
    "-o",
    type=click.Choice(tuple(_RENDERERS)),
    default="table",
    show_default=True,
    help="table: one line per rule; json: every field; markdown: the reference in docs/rules.md.",
)
def rules(output: str) -> None:
    """List every admission rule id: what it checks and how to fix it."""
    click.echo(_RENDERERS[output](FAMILIES), nl=False)
