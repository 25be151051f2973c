"""`aigis scan`: the admission decision for manifests, offline, before they reach a cluster.

A thin shell around the webhook's own engine: it reads files, directories and standard input,
builds the context from the AIWorkload, AIClusterPolicy and Namespace objects among them
(`aigis.admission.manifests`), and calls `review_object` on every object the webhook reviews (pod
templates, AIWorkloads, AIClusterPolicies). Same engine, same context rules, same answer.

There is no operator offline, so an AIWorkload's status cannot say whether it is Compliant. The
engine never reads status anyway: it validates the covering workload and checks it against the
governing policies itself (`evaluate_compliance`), in the cluster as here.

No injection runs offline either (the context has no `InjectionSettings`), so manifests are
reviewed as written, before the gateway is added: an `aigis-gateway` container in a covered pod or
template is someone else's and refused, as the webhook refuses it on a template and on a pod that
is not exactly what the injection renders.

A directory holding `Chart.yaml` is a Helm chart: it is rendered with `helm template` (with the
`--values` files given) and the rendered objects are reviewed, each attributed to the template
file it came from (`# Source:`), at line 1 since rendered lines are not the template's.

Output: a table for people, JSON Lines for scripts, or SARIF 2.1.0 for code-scanning UIs
(`aigis.oversight.sarif`): a result per finding with the file, the object's first line and the
field path.

Exit status: 0 when every object is allowed (warnings included), 1 when one is denied, 2 on bad
input (unreadable path, YAML or JSON that does not parse, with the file and line; a chart that
does not render or no helm to render it). When any input is bad nothing is reviewed: a missing
AIWorkload or policy would make the decisions wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

import click
import yaml

from aigis.admission.engine import Decision, is_reviewed, review_object
from aigis.admission.manifests import (
    DEFAULT_NAMESPACE,
    ManifestIndex,
    expand_lists,
    index_manifests,
    object_name,
    object_namespace,
)
from aigis.admission.reasons import Reason
from aigis.oversight.sarif import Finding, finding_uri, render_sarif

EXIT_DENIED = 1
EXIT_BAD_INPUT = 2
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
CHART_FILE = "Chart.yaml"
HELM_TIMEOUT_SECONDS = 120
_HELM_SOURCE = "# Source: "

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InputError(Exception):
    """Input that cannot be read or parsed: reported with exit status 2 instead of a traceback."""


@dataclass(frozen=True, slots=True)
class Document:
    """One object read from the input, and where (`file:line`)."""

    source: str
    obj: Mapping[str, Any]


def split_source(source: str) -> tuple[str, int]:
    """`file:line` as (file, line); line 1 when the source names no line."""
    name, colon, line = source.rpartition(":")
    if colon and line.isdigit():
        return name, int(line)
    return source, 1


@dataclass(frozen=True, slots=True)
class Review:
    """The decision on one object, with what identifies it in the output."""

    source: str
    kind: str
    namespace: str | None
    name: str
    decision: Decision

    @property
    def file(self) -> str:
        return split_source(self.source)[0]

    @property
    def line(self) -> int:
        """The first line of the object's document."""
        return split_source(self.source)[1]

    @property
    def verdict(self) -> str:
        """allow, warn (allowed with findings) or deny."""
        if not self.decision.allowed:
            return "deny"
        return "warn" if self.decision.reasons else "allow"


# --- reading ------------------------------------------------------------------------------------


def manifest_files(path: Path) -> list[Path]:
    """The manifest files under `path` (itself if a file), in a stable order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or directory")
    found: list[Path] = []
    for root, dirs, files in os.walk(path, onerror=_raise, followlinks=False):
        dirs.sort()
        found.extend(Path(root, f) for f in sorted(files) if f.endswith(MANIFEST_SUFFIXES))
    return found


def _raise(error: OSError) -> None:
    raise InputError(f"{error.filename}: cannot read: {error.strerror or error}")


def parse_documents(text: str, name: str, *, as_json: bool = False) -> list[Document]:
    """The objects in one input: YAML documents (or one JSON value), `kind: List` expanded."""
    if as_json:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
        return _documents(value, f"{name}:1")
    documents: list[Document] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            where = f"{name}:{node.start_mark.line + 1}"
            documents.extend(_documents(loader.construct_document(node), where))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "?"
        problem = exc.problem or exc.context or "cannot be parsed"
        raise InputError(f"{name}:{position}: not valid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{name}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return documents


def _documents(value: object, where: str) -> list[Document]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise InputError(
            f"{where}: a document must be a Kubernetes object (a mapping with apiVersion and "
            f"kind); found a {type(value).__name__}"
        )
    return [Document(where, obj) for obj in expand_lists([value])]


ChartRenderer = Callable[[Path], str]
"""Renders a Helm chart directory to the YAML stream `helm template` prints."""


def is_chart(path: Path) -> bool:
    """Whether `path` is a Helm chart directory (it holds Chart.yaml)."""
    return path.is_dir() and (path / CHART_FILE).is_file()


def chart_documents(rendered: str, chart: Path) -> list[Document]:
    """The objects `helm template` rendered from `chart`, each attributed to its template file.

    helm starts each document with `# Source: <chart name>/templates/x.yaml`; the chart name
    is replaced by the chart's directory, so the file is the one in the repository.
    """
    documents = parse_documents(rendered, f"helm template {chart}")
    sources: dict[int, str] = {}
    current = str(chart / CHART_FILE)
    for number, line in enumerate(rendered.splitlines(), start=1):
        if line.startswith(_HELM_SOURCE):
            _, _, inside = line[len(_HELM_SOURCE) :].strip().partition("/")
            current = str(chart / inside) if inside else current
        sources[number] = current
    attributed = []
    for document in documents:
        start = split_source(document.source)[1]
        attributed.append(Document(f"{sources.get(start, current)}:1", document.obj))
    return attributed


def helm_renderer(helm: str | None, values: Sequence[Path]) -> ChartRenderer:
    """`helm template` with `--values` files, as a ChartRenderer; InputError when helm is missing
    or the chart does not render."""

    def render(chart: Path) -> str:
        binary = find_helm(helm)
        if binary is None:
            raise InputError(
                f"{chart}: is a Helm chart; rendering it needs helm: install helm or pass "
                "--helm PATH"
            )
        argv = [binary, "template", chart.resolve().name, str(chart)]
        for path in values:
            argv += ["--values", str(path)]
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=HELM_TIMEOUT_SECONDS, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InputError(f"{chart}: helm template failed: {exc}") from exc
        if result.returncode != 0:
            raise InputError(f"{chart}: helm template failed: {result.stderr.strip()}")
        return result.stdout

    return render


def find_helm(helm: str | None) -> str | None:
    """The helm binary: `helm` as given, else aigis's own (~/.cache/aigis/bin), else PATH's."""
    if helm is not None:
        return helm if Path(helm).is_file() else shutil.which(helm)
    cached = Path.home() / ".cache" / "aigis" / "bin" / "helm"
    return str(cached) if cached.is_file() else shutil.which("helm")


def read_documents(
    sources: Sequence[str], stdin: TextIO, *, render_chart: ChartRenderer | None = None
) -> tuple[list[Document], list[str]]:
    """Every object of every source, and every problem found reading them."""
    documents: list[Document] = []
    problems: list[str] = []
    for source in sources:
        try:
            if source == STDIN:
                documents.extend(parse_documents(stdin.read(), "<stdin>"))
                continue
            if is_chart(Path(source)):
                renderer = render_chart or helm_renderer(None, ())
                documents.extend(chart_documents(renderer(Path(source)), Path(source)))
                continue
            for path in manifest_files(Path(source)):
                try:
                    text = path.read_bytes().decode("utf-8")
                except OSError as exc:
                    raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
                except UnicodeDecodeError as exc:
                    raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
                documents.extend(parse_documents(text, str(path), as_json=path.suffix == ".json"))
        except InputError as exc:
            problems.append(str(exc))
    return documents, problems


# --- reviewing ------------------------------------------------------------------------------------


def review_documents(
    documents: Sequence[Document],
    *,
    now: datetime,
    default_namespace: str = DEFAULT_NAMESPACE,
    namespace_labels: Mapping[str, str] | None = None,
    aigis_namespace: str | None = None,
) -> list[Review]:
    """The decision on every object the webhook would review, in input order."""
    index: ManifestIndex = index_manifests(
        (d.obj for d in documents), default_namespace=default_namespace
    )
    reviews: list[Review] = []
    for document in documents:
        obj = document.obj
        if not is_reviewed(obj):
            continue
        namespace = object_namespace(obj, default_namespace)
        ctx = index.context(
            namespace, now=now, extra_labels=namespace_labels, aigis_namespace=aigis_namespace
        )
        reviews.append(
            Review(
                source=document.source,
                kind=str(obj.get("kind")),
                namespace=namespace,
                name=object_name(obj) or "<unnamed>",
                decision=review_object(obj, ctx),
            )
        )
    return reviews


# --- printing ---------------------------------------------------------------------------------


def _reason_json(reason: Reason) -> dict[str, str]:
    return {"rule": reason.rule, "path": reason.path, "message": reason.message, "fix": reason.fix}


def as_json(review: Review) -> str:
    """The JSON object printed for one object (one per line)."""
    return json.dumps(
        {
            "kind": review.kind,
            "namespace": review.namespace,
            "name": review.name,
            "decision": review.verdict,
            "reasons": [_reason_json(r) for r in review.decision.reasons],
            "source": review.source,
        },
        ensure_ascii=False,
    )


def as_rows(review: Review) -> Iterator[str]:
    """The table row for one object, then one indented line per reason and its fix."""
    yield (
        f"{review.verdict.upper():<6} {review.kind:<22} {review.namespace or '-':<20} "
        f"{review.name:<32} {review.source}"
    )
    denied = {id(r) for r in review.decision.denied}
    for reason in review.decision.reasons:
        mark = "deny" if id(reason) in denied else "warn"
        yield f"    {mark} [{reason.rule}] {reason.path}: {reason.message}"
        yield f"         fix: {reason.fix}"


def sarif_findings(reviews: Sequence[Review], root: str | None = None) -> list[Finding]:
    """Every finding of every review, for `aigis.oversight.sarif`."""
    findings: list[Finding] = []
    for review in reviews:
        denied = {id(r) for r in review.decision.denied}
        where = f"{review.namespace}/{review.name}" if review.namespace else review.name
        for reason in review.decision.reasons:
            findings.append(
                Finding(
                    rule=reason.rule,
                    level="error" if id(reason) in denied else "warning",
                    message=reason.message,
                    fix=reason.fix,
                    uri=finding_uri(review.file, root),
                    line=review.line,
                    path=reason.path,
                    object_name=f"{review.kind} {where}",
                )
            )
    return findings


def as_sarif(reviews: Sequence[Review], root: str | None = None) -> str:
    """The SARIF 2.1.0 log of every finding."""
    from aigis import __version__

    log = render_sarif(sarif_findings(reviews, root), version=__version__)
    return json.dumps(log, indent=2, ensure_ascii=False)


def parse_now(text: str | None) -> datetime:
    """`--now`: an ISO date or date-time (UTC when no zone is given); the current time if None."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise click.BadParameter(
                f"{text!r} is not an ISO date or date-time, e.g. 2026-03-31 or "
                "2026-03-31T12:00:00Z",
                param_hint="--now",
            ) from exc
        moment = datetime(day.year, day.month, day.day)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_label_list(text: str | None) -> dict[str, str]:
    """`--namespace-labels a=b,c=d` as a mapping; a term without `=` is refused."""
    labels: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in (text or "").split(","))):
        key, separator, value = term.partition("=")
        if not separator or not key.strip():
            raise click.BadParameter(f'"{term}" is not key=value', param_hint="--namespace-labels")
        labels[key.strip()] = value.strip()
    return labels


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", "sarif"]),
    default="table",
    show_default=True,
    help="A table for people, one JSON object per reviewed object (JSON Lines), or a SARIF "
    "2.1.0 log for code-scanning UIs.",
)
@click.option(
    "--namespace",
    "-n",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="Namespace of objects that do not name one, as kubectl apply without -n.",
)
@click.option(
    "--namespace-labels",
    default=None,
    help="Labels every namespace carries, as key=value[,key=value], for the policies' "
    "namespaceSelectors (Namespace objects among the inputs add their own).",
)
@click.option(
    "--now",
    default=None,
    help="Review as of this ISO date or date-time (red-team freshness), for reproducible "
    "results. Default: the current time.",
)
@click.option(
    "--aigis-namespace",
    default=None,
    help="The namespace aigis runs in: never governed, as in the cluster.",
)
@click.option(
    "--helm",
    "helm",
    default=None,
    help="The helm binary that renders chart directories. Default: ~/.cache/aigis/bin/helm, "
    "else helm on PATH.",
)
@click.option(
    "--values",
    "-f",
    "values",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A values file for the charts among the inputs (repeatable, as helm's --values).",
)
def scan(
    paths: tuple[str, ...],
    output: str,
    namespace: str,
    namespace_labels: str | None,
    now: str | None,
    aigis_namespace: str | None,
    helm: str | None,
    values: tuple[Path, ...],
) -> None:
    """Review manifests as the admission webhook would, offline (for CI).

    PATH is a file, a directory (its *.yaml, *.yml and *.json files, recursively), a Helm chart
    directory (rendered with helm template) or - for standard input. AIWorkload,
    AIClusterPolicy and Namespace objects among the inputs are the context the other objects
    are reviewed in. Exit status: 0 everything allowed (warnings
    included), 1 something denied, 2 bad input.
    """
    moment = parse_now(now)
    extra_labels = parse_label_list(namespace_labels)
    documents, problems = read_documents(paths, sys.stdin, render_chart=helm_renderer(helm, values))
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        click.echo("error: nothing was reviewed; fix the input first", err=True)
        sys.exit(EXIT_BAD_INPUT)
    reviews = review_documents(
        documents,
        now=moment,
        default_namespace=namespace,
        namespace_labels=extra_labels,
        aigis_namespace=aigis_namespace,
    )
    if output == "json":
        for review in reviews:
            click.echo(as_json(review))
    elif output == "sarif":
        click.echo(as_sarif(reviews, os.getcwd()))
    else:
        click.echo(f"{'RESULT':<6} {'KIND':<22} {'NAMESPACE':<20} {'NAME':<32} SOURCE")
        for review in reviews:
            for row in as_rows(review):
                click.echo(row)
        counts = {v: sum(r.verdict == v for r in reviews) for v in ("deny", "warn", "allow")}
        summary = ", ".join(f"{n} {word}" for word, n in counts.items() if n)
        click.echo(f"{len(reviews)} reviewed: {summary or 'nothing to review'}")
    if any(not r.decision.allowed for r in reviews):
        sys.exit(EXIT_DENIED)
