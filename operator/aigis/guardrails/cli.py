"""`aigis guard`: run a workload's guardrails over prompts offline, as the gateway would.

A thin shell: it reads the configuration and the inputs, calls the very pipeline the gateway
sidecar runs (`GuardrailPipeline.scan`), and prints one verdict per input line. Exit status 0
when nothing was blocked, 1 when something was, 2 when the configuration or an input is bad.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import click
import yaml

from aigis.api.aiworkload import Guardrails
from aigis.api.validation import parse_guardrails
from aigis.guardrails.findings import Direction, ScanResult
from aigis.guardrails.injection import SIGNAL_WEIGHTS
from aigis.guardrails.onnx_classifier import ClassifierError, load_classifier
from aigis.guardrails.pipeline import GuardrailPipeline

EXIT_BLOCKED = 1
EXIT_BAD_INPUT = 2
_PREVIEW_CHARS = 100


class InputError(Exception):
    """A configuration or input problem to report (with exit status 2) instead of a traceback."""


@dataclass(frozen=True, slots=True)
class InputLine:
    """One prompt to check, and where it came from (`file:line`)."""

    where: str
    text: str


def load_guardrails(path: Path) -> Guardrails:
    """The guardrails in an AIWorkload manifest (`spec.guardrails`) or a `guardrails:` file."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except OSError as exc:
        raise InputError(f"{path}: cannot read the config: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from exc
    if len(documents) != 1 or not isinstance(documents[0], Mapping):
        raise InputError(
            f"{path}: expected one YAML document: an AIWorkload manifest or a mapping with a "
            "top-level guardrails: key"
        )
    document = documents[0]
    if document.get("kind") == "AIWorkload" or "spec" in document:
        spec = document.get("spec")
        if not isinstance(spec, Mapping):
            raise InputError(f"{path}: spec: must be a mapping holding the AIWorkload's spec")
        data, where = spec.get("guardrails", {}), "spec.guardrails"
    elif "guardrails" in document:
        data, where = document["guardrails"], "guardrails"
    else:
        raise InputError(
            f"{path}: found neither an AIWorkload manifest nor a top-level guardrails: key"
        )
    if data is None:
        data = {}
    guardrails, errors = parse_guardrails(data, where)
    if errors or guardrails is None:
        raise InputError("\n".join(f"{path}: {error}" for error in errors))
    return guardrails


def read_inputs(sources: tuple[str, ...], stdin: TextIO) -> Iterator[InputLine | InputError]:
    """Every non-blank line of every source; a JSON object line contributes its `text`."""
    for source in sources:
        name = "<stdin>" if source == "-" else source
        try:
            if source == "-":
                lines = stdin.read().splitlines()
            else:
                lines = Path(source).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            yield InputError(f"{name}: cannot read: {exc.strerror or exc}")
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{name}:{number}"
            text = _line_text(line)
            if isinstance(text, InputError):
                yield InputError(f"{where}: {text}")
            else:
                yield InputLine(where, text)


def _line_text(line: str) -> str | InputError:
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line
    try:
        record: Any = json.loads(stripped)
    except json.JSONDecodeError:
        return line  # a prompt that happens to start with a brace
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return InputError('a JSON line needs a "text" string holding the prompt')
    return str(record["text"])


def verdict(result: ScanResult, text: str) -> str:
    """One word for the table: BLOCK, REDACT, LOG (found, let through) or PASS."""
    if result.blocked:
        return "BLOCK"
    if result.redacted != text:
        return "REDACT"
    return "LOG" if result.findings else "PASS"


def as_json(line: InputLine, result: ScanResult) -> str:
    """The JSON object printed for one input line."""
    return json.dumps(
        {
            "input": line.where,
            "blocked": result.blocked,
            "injection_score": result.injection_score,
            "injection_signals": list(result.injection_signals),
            "findings": [
                {
                    "guardrail": f.guardrail,
                    "type": f.type,
                    "start": f.start,
                    "end": f.end,
                    "action": f.action,
                }
                for f in result.findings
            ],
            "redacted": result.redacted,
        },
        ensure_ascii=False,
    )


def as_row(line: InputLine, result: ScanResult) -> str:
    """The table row for one input line (the redacted text under it when it changed)."""
    parts = []
    for f in result.findings:
        if f.type == "INJECTION":
            signals = sorted(
                (s for s in result.injection_signals if s in SIGNAL_WEIGHTS),
                key=lambda s: -SIGNAL_WEIGHTS[s],
            )
            parts.append(f"{f.guardrail}({', '.join(signals)})")
        else:
            parts.append(f"{f.guardrail}:{f.type}@{f.start}-{f.end}")
    shown = verdict(result, line.text)
    row = f"{line.where:<24} {shown:<7} {result.injection_score:>9.2f}  {'; '.join(parts) or '-'}"
    if result.redacted != line.text:
        preview = result.redacted.replace("\n", " ")
        if len(preview) > _PREVIEW_CHARS:
            preview = preview[: _PREVIEW_CHARS - 1] + "…"
        row += f"\n{'':<24} -> {preview}"
    return row


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="AIWorkload manifest (its spec.guardrails is used) or YAML with a top-level "
    "guardrails: mapping. Default: the default guardrails.",
)
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or one JSON object per input line.",
)
@click.option(
    "--direction",
    type=click.Choice(["request", "response"]),
    default="request",
    show_default=True,
    help="Check the lines as prompts sent to the model, or as its answers.",
)
@click.argument("inputs", nargs=-1, required=True)
def guard(
    config_path: Path | None, output: str, direction: Direction, inputs: tuple[str, ...]
) -> None:
    """Check prompts with a workload's guardrails, offline, as the gateway would.

    INPUT is a file (or - for standard input) with one prompt per line, or JSON lines with a
    "text" field. Exit status: 0 nothing blocked, 1 something blocked, 2 bad config or input.
    """
    try:
        guardrails = load_guardrails(config_path) if config_path else Guardrails()
        wanted = guardrails.prompt_injection.active_classifier
        classifier = load_classifier(wanted) if wanted is not None else None
        pipeline = GuardrailPipeline.from_spec(guardrails, classifier=classifier)
    except (InputError, ValueError, ClassifierError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    blocked = bad = 0
    counts = {"BLOCK": 0, "REDACT": 0, "LOG": 0, "PASS": 0}
    if output == "table":
        click.echo(f"{'INPUT':<24} {'VERDICT':<7} {'INJECTION':>9}  FINDINGS")
    for item in read_inputs(inputs, sys.stdin):
        if isinstance(item, InputError):
            click.echo(f"error: {item}", err=True)
            bad += 1
            continue
        result = pipeline.scan(item.text, direction=direction)
        blocked += result.blocked
        counts[verdict(result, item.text)] += 1
        click.echo(as_json(item, result) if output == "json" else as_row(item, result))
    if output == "table":
        summary = ", ".join(f"{n} {word.lower()}" for word, n in counts.items() if n)
        click.echo(f"{sum(counts.values())} checked: {summary or 'nothing'}")
    if bad:
        sys.exit(EXIT_BAD_INPUT)
    if blocked:
        sys.exit(EXIT_BLOCKED)
