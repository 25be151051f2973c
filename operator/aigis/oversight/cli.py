"""`aigis discover` and `aigis bom`: the shell around `discover` and `bom`.

Both read manifests (files, directories, charts or stdin, as `aigis scan` does) or, for
`discover` without paths, the cluster of the current kubeconfig: every object of the kinds in
`aigis.admission.templates.TEMPLATE_KINDS` whose API is served there, and every AIWorkload.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from aigis.admission.manifests import is_kind, object_name, object_namespace
from aigis.admission.templates import TEMPLATE_KINDS
from aigis.oversight.bom import BomError, bom_json, render_bom, workload_images
from aigis.oversight.discover import DiscoveredWorkload, discover, draft_aiworkload

EXIT_BAD_INPUT = 2


def _read(paths: Sequence[str]) -> list[Mapping[str, Any]]:
    from aigis.scan import read_documents

    documents, problems = read_documents(paths, sys.stdin)
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    return [d.obj for d in documents]


async def cluster_objects() -> list[Mapping[str, Any]]:
    """Every object of a kind that runs pods, and every AIWorkload, in the current cluster.

    A CRD that is not installed is skipped: its API group is not served.
    """
    from aigis.kube import KubeClient

    found: list[Mapping[str, Any]] = []
    async with KubeClient.from_environment(user_agent="aigis-discover") as kube:
        versions: dict[str, str | None] = {}
        for kind, row in TEMPLATE_KINDS.items():
            for group in sorted(row.groups - {"extensions"}):
                if group not in versions:
                    versions[group] = await _preferred_version(kube, group)
                version = versions[group]
                if version is None:
                    continue
                prefix = "/api/v1" if group == "" else f"/apis/{group}/{version}"
                listing = await kube.request("GET", f"{prefix}/{row.resource}") or {}
                for item in listing.get("items", []):
                    found.append(
                        {
                            "apiVersion": version if not group else f"{group}/{version}",
                            "kind": kind,
                            **item,
                        }
                    )
        if await _preferred_version(kube, "aigis.dev") is not None:
            found.extend(
                {"apiVersion": "aigis.dev/v1alpha1", "kind": "AIWorkload", **w}
                for w in await kube.list_aiworkloads()
            )
    return found


async def _preferred_version(kube: Any, group: str) -> str | None:
    if group == "":
        return "v1"
    served = await kube.request("GET", f"/apis/{group}")
    preferred = (served or {}).get("preferredVersion") or {}
    version = preferred.get("version")
    return version if isinstance(version, str) else None


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
        try:
            objects = asyncio.run(cluster_objects())
        except Exception as exc:
            click.echo(f"error: cannot read the cluster: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
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


@click.command("bom")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one <namespace>-<name>.cdx.json per AIWorkload here instead of printing.",
)
@click.option("--namespace", "-n", default="default", show_default=True)
def bom_command(paths: tuple[str, ...], output_dir: Path | None, namespace: str) -> None:
    """Write a CycloneDX ML-BOM for each AIWorkload among PATHS (files, directories or -).

    Pod templates among the inputs that an AIWorkload covers add their images. Printed as one
    JSON document per line when several, unless --output-dir is given.
    """
    objects = _read(paths)
    workloads = [o for o in objects if is_kind(o, "AIWorkload")]
    if not workloads:
        click.echo("error: no AIWorkload among the inputs", err=True)
        sys.exit(EXIT_BAD_INPUT)
    now = datetime.now(UTC)
    failed = False
    for workload in workloads:
        try:
            bom = render_bom(
                workload,
                images=workload_images(workload, objects, namespace),
                now=now,
                default_namespace=namespace,
            )
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
