"""`aigis discover`, `aigis bom` and `aigis report`: the shell around the oversight cores.

Each reads manifests (files, directories, charts or stdin, as `aigis scan` does) or, without
paths, the cluster of the current kubeconfig through `aigis.oversight.inventory.read_inventory`
(every object of the kinds in `aigis.admission.templates.TEMPLATE_KINDS` whose API is served
there, Pods included, AIWorkloads, AIClusterPolicies and Namespaces; `report` adds the
ForensicSnapshots). What could not be read is listed (`report` puts it in the report) and the
rest is used.

Exit status: 0 done, 2 bad input (a manifest that does not parse, for `discover` and `bom`; a
cluster that cannot be reached at all). `report` does not stop on an unreadable manifest or
namespace: it lists it under "not covered", with the file and line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import click
import yaml

from aigis.admission.engine import covering_workloads
from aigis.admission.manifests import is_kind, object_name, object_namespace
from aigis.admission.templates import pod_template
from aigis.api.common import GROUP
from aigis.oversight.bom import BomError, bom_json, render_bom, workload_images
from aigis.oversight.discover import DiscoveredWorkload, discover, draft_aiworkload
from aigis.oversight.inventory import Inventory, Resource, read_inventory

EXIT_BAD_INPUT = 2
REPORT_FORMATS: Final = ("markdown", "html", "json")
_SUFFIX_FORMATS: Final = {".md": "markdown", ".html": "html", ".htm": "html", ".json": "json"}


def _documents(paths: Sequence[str]) -> tuple[list[Mapping[str, Any]], list[str]]:
    """Every object among `paths` (scan's readers), and every problem (file and line); a
    directory is read file by file so that one bad file does not hide the others."""
    from aigis.scan import InputError, is_chart, manifest_files, read_documents

    sources: list[str] = []
    problems: list[str] = []
    for path in paths:
        if path == "-" or not Path(path).is_dir() or is_chart(Path(path)):
            sources.append(path)
            continue
        try:
            sources.extend(str(f) for f in manifest_files(Path(path)))
        except InputError as exc:
            problems.append(str(exc))
    documents, found = read_documents(sources, sys.stdin)
    return [d.obj for d in documents], [*problems, *found]


def _read(paths: Sequence[str]) -> list[Mapping[str, Any]]:
    objects, problems = _documents(paths)
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    return objects


SNAPSHOTS: Final = Resource("ForensicSnapshot", GROUP, "forensicsnapshots")
"""What the report reads besides the inventory: the evidence ForensicSnapshots hold."""


async def read_cluster(
    *, namespaces: Sequence[str] = (), snapshots: bool = False, user_agent: str
) -> Inventory:
    """The inventory of the current kubeconfig's cluster (`read_inventory`), and with
    `snapshots` its ForensicSnapshots too, read the same way (what stays forbidden is listed
    in `unreadable`)."""
    from aigis.kube import KubeClient

    async with KubeClient.from_environment(user_agent=user_agent) as kube:
        return await read_inventory(
            kube, namespaces=list(namespaces) or None, extra=[SNAPSHOTS] if snapshots else []
        )


def _cluster(*, namespaces: Sequence[str] = (), snapshots: bool = False) -> Inventory:
    """`read_cluster`, exiting with status 2 and the reason when the cluster cannot be read."""
    try:
        return asyncio.run(
            read_cluster(namespaces=namespaces, snapshots=snapshots, user_agent="aigis-cli")
        )
    except Exception as exc:
        click.echo(f"error: cannot read the cluster: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


def _row(found: DiscoveredWorkload) -> str:
    state = "declared" if found.declared else "UNDECLARED"
    by = ",".join(found.declared_by) or "-"
    return f"{state:<10} {found.kind:<20} {found.namespace:<20} {found.name:<32} {by}"


@click.command("discover")
@click.argument("paths", nargs=-1)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table with the evidence, or one JSON object per workload.",
)
@click.option(
    "--drafts",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write a draft AIWorkload (Audit mode) for each undeclared workload into this directory.",
)
def discover_command(paths: tuple[str, ...], output: str, drafts: Path | None) -> None:
    """List every workload that looks like AI, declared or not, with the evidence.

    PATHS are manifests as for `aigis scan`; without them, the cluster of the current
    kubeconfig is read. Each undeclared workload gets a draft AIWorkload in Audit mode (with
    --drafts, one file each; else printed after the list in table mode).
    """
    if paths:
        objects = _read(paths)
    else:
        inventory = _cluster()
        for problem in inventory.unreadable:
            click.echo(f"warning: not read: {problem}", err=True)
        objects = inventory.objects
    found = discover(objects)
    undeclared = [f for f in found if not f.declared]
    if output == "json":
        for item in found:
            record = {
                "kind": item.kind,
                "namespace": item.namespace,
                "name": item.name,
                "declared": item.declared,
                "declaredBy": list(item.declared_by),
                "score": item.score,
                "evidence": [
                    {"kind": e.kind, "path": e.path, "detail": e.detail} for e in item.evidence
                ],
                "draft": None if item.declared else draft_aiworkload(item),
            }
            click.echo(json.dumps(record, ensure_ascii=False))
    else:
        click.echo(f"{'STATE':<10} {'KIND':<20} {'NAMESPACE':<20} {'NAME':<32} DECLARED-BY")
        for item in found:
            click.echo(_row(item))
            for evidence in item.evidence:
                click.echo(f"    {evidence.detail} ({evidence.path})")
        click.echo(f"{len(found)} AI workloads: {len(undeclared)} undeclared")
    if drafts is not None:
        drafts.mkdir(parents=True, exist_ok=True)
        for item in undeclared:
            draft = draft_aiworkload(item)
            if draft is None:
                click.echo(f"no draft for {item.kind} {item.name}: no pod labels", err=True)
                continue
            path = drafts / f"{item.namespace}-{draft['metadata']['name']}.yaml"
            path.write_text(yaml.safe_dump(draft, sort_keys=False), encoding="utf-8")
            click.echo(f"wrote {path}", err=True)
    elif output == "table" and undeclared:
        click.echo("---")
        click.echo(
            yaml.safe_dump_all(
                [d for d in map(draft_aiworkload, undeclared) if d is not None], sort_keys=False
            ),
            nl=False,
        )


def running_images(workload: Mapping[str, Any], objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """The images the running pods `workload` covers run, by digest where the kubelet reports
    one (`status.containerStatuses[].imageID`, e.g. `docker.io/library/nginx@sha256:...`), else
    as their spec names them."""
    namespace = object_namespace(workload, "default")
    images: list[str] = []
    for obj in objects:
        if obj.get("kind") != "Pod" or object_namespace(obj, "default") != namespace:
            continue
        template = pod_template(obj)
        if template is None or not covering_workloads(template.labels, [workload]):
            continue
        status = obj.get("status")
        digests = {}
        for key in ("initContainerStatuses", "containerStatuses"):
            items = status.get(key) if isinstance(status, Mapping) else None
            for item in items if isinstance(items, list) else ():
                image_id = str(item.get("imageID") or "") if isinstance(item, Mapping) else ""
                if "@sha256:" in image_id:
                    digests[item.get("name")] = image_id.split("://", 1)[-1]
        for key in ("initContainers", "containers"):
            containers = template.spec.get(key)
            for container in containers if isinstance(containers, list) else ():
                if not isinstance(container, Mapping):
                    continue
                image = digests.get(container.get("name")) or container.get("image")
                if isinstance(image, str) and image not in images:
                    images.append(image)
    return images


@click.command("bom")
@click.argument("paths", nargs=-1)
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one <namespace>-<name>.cdx.json per AIWorkload here instead of printing.",
)
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Manifests: the namespace of objects that name none (default: default). Cluster: "
    "read only this namespace (repeatable).",
)
def bom_command(
    paths: tuple[str, ...], output_dir: Path | None, namespaces: tuple[str, ...]
) -> None:
    """Write a CycloneDX ML-BOM for each AIWorkload among PATHS (files, directories or -), or,
    without PATHS, in the cluster of the current kubeconfig.

    Pod templates among the inputs that an AIWorkload covers add their images; in the cluster,
    so do its running pods, by the digest the kubelet resolved. Printed as one JSON document per
    line when several, unless --output-dir is given.
    """
    namespace = namespaces[0] if paths and namespaces else "default"
    if paths:
        objects = _read(paths)
    else:
        inventory = _cluster(namespaces=namespaces)
        for problem in inventory.unreadable:
            click.echo(f"warning: not read: {problem}", err=True)
        objects = inventory.objects
    workloads = [o for o in objects if is_kind(o, "AIWorkload")]
    if not workloads:
        click.echo("error: no AIWorkload among the inputs", err=True)
        sys.exit(EXIT_BAD_INPUT)
    now = datetime.now(UTC)
    failed = False
    for workload in workloads:
        images = workload_images(workload, objects, namespace)
        if not paths:
            images += [i for i in running_images(workload, objects) if i not in images]
        try:
            bom = render_bom(workload, images=images, now=now, default_namespace=namespace)
        except BomError as exc:
            click.echo(f"error: {exc}", err=True)
            failed = True
            continue
        text = bom_json(bom)
        if output_dir is None:
            click.echo(text if len(workloads) == 1 else json.dumps(json.loads(text)))
            continue
        output_dir.mkdir(parents=True, exist_ok=True)
        where = object_namespace(workload, namespace) or namespace
        path = output_dir / f"{where}-{object_name(workload) or 'unnamed'}.cdx.json"
        path.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {path}", err=True)
    if failed:
        sys.exit(EXIT_BAD_INPUT)


@click.command("report")
@click.argument("paths", nargs=-1)
@click.option(
    "--output",
    "output_format",
    type=click.Choice(REPORT_FORMATS),
    default=None,
    help="Markdown, one self-contained HTML page, or JSON. Default: from the -o file's suffix "
    "(.md, .html, .json), else markdown.",
)
@click.option(
    "-o",
    "--output-file",
    "output_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to this file instead of standard output.",
)
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Report on this namespace only (repeatable). Default: the whole cluster (or every "
    "object among PATHS).",
)
@click.option(
    "--aigis-namespace",
    default=None,
    envvar="AIGIS_NAMESPACE",
    help="The namespace aigis runs in: never governed, so never audited.",
)
@click.option(
    "--now",
    default=None,
    help="Judge as of this ISO date or date-time (red-team freshness); default: now.",
)
def report_command(
    paths: tuple[str, ...],
    output_format: str | None,
    output_file: Path | None,
    namespaces: tuple[str, ...],
    aigis_namespace: str | None,
    now: str | None,
) -> None:
    """Write the compliance report: AI inventory, compliance per workload, open violations,
    guardrail coverage, forensic readiness, the NIST AI RMF / ISO/IEC 42001 controls mapping
    with this cluster's evidence, and a one-page board view.

    Without PATHS, the cluster of the current kubeconfig is read; namespaces or kinds it may
    not read are listed in the report, which covers the rest. With PATHS (as for `aigis scan`),
    the manifests are reported on; one that does not parse is listed with its file and line.
    """
    from aigis.oversight.report import build_report, render_html, render_json, render_markdown
    from aigis.scan import parse_now

    moment = parse_now(now)
    chosen = output_format or _SUFFIX_FORMATS.get(
        output_file.suffix.lower() if output_file else "", "markdown"
    )
    if paths:
        objects, unreadable = _documents(paths)
        if namespaces:
            objects = [o for o in objects if object_namespace(o, "default") in (None, *namespaces)]
        scope = "manifests " + ", ".join(paths)
    else:
        inventory = _cluster(namespaces=namespaces, snapshots=True)
        objects, unreadable = inventory.objects, inventory.unreadable
        scope = "namespaces " + ", ".join(namespaces) if namespaces else "the whole cluster"
    for problem in unreadable:
        click.echo(f"warning: not covered: {problem}", err=True)
    report = build_report(
        objects, now=moment, unreadable=unreadable, scope=scope, aigis_namespace=aigis_namespace
    )
    render = {"markdown": render_markdown, "html": render_html, "json": render_json}[chosen]
    text = render(report)
    if output_file is None:
        click.echo(text, nl=False)
        return
    output_file.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output_file} ({chosen})", err=True)
