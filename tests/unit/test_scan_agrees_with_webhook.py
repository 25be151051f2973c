"""`aigis scan` and the admission webhook give the same decision on the same manifests.

The scan side is the CLI's JSON output; the webhook side is the real admission server over HTTP
on 127.0.0.1, fed the same AIWorkloads, AIClusterPolicies and Namespaces, and driven the way the
API server drives it: a Pod goes through `/mutate`, gets its patch applied, then `/validate`.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from typing import Any

import jsonpatch
import orjson
from click.testing import CliRunner
from tests.unit.test_admission_server import NOW, post, review, running

from aigis.admission.manifests import (
    expand_lists,
    index_manifests,
    is_kind,
    object_name,
    object_namespace,
)
from aigis.admission.mutation import InjectionSettings
from aigis.cli import main
from aigis.scan import read_documents
from aigis.webhook.cache import StaticView
from aigis.webhook.metrics import WebhookMetrics
from aigis.webhook.server import AdmissionServer

SCAN_DATA = Path(__file__).resolve().parents[1] / "data" / "scan"
GATEWAY_IMAGE = "ghcr.io/aigis-dev/aigis:0.1.0"


def scan_decisions() -> dict[tuple[str, str | None, str], str]:
    result = CliRunner().invoke(
        main, ["scan", "--output", "json", "--now", NOW.isoformat(), str(SCAN_DATA)]
    )
    assert result.exit_code in (0, 1), result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    return {(r["kind"], r["namespace"], r["name"]): r["decision"] for r in rows}


def webhook_view(objects: list[dict[str, Any]]) -> StaticView:
    index = index_manifests(objects)
    namespaces: dict[str, dict[str, str]] = {}
    workloads = []
    for obj in objects:
        namespace = object_namespace(obj, index.default_namespace)
        if namespace is not None:
            labels = dict(index.namespace_labels.get(namespace, {}))
            namespaces[namespace] = {**labels, "kubernetes.io/metadata.name": namespace}
        if is_kind(obj, "AIWorkload"):
            workloads.append({**obj, "metadata": {**obj["metadata"], "namespace": namespace}})
    return StaticView(namespaces=namespaces, workloads=workloads, policies=index.policies)


def webhook_decision(server: AdmissionServer, obj: dict[str, Any], namespace: str | None) -> str:
    async def scenario() -> str:
        async with running(server) as (port, session):
            candidate = obj
            if obj.get("kind") == "Pod":
                status, answer = await post(
                    session, port, "/mutate", review(obj, namespace=namespace)
                )
                assert status == 200, answer
                patch = answer["response"].get("patch")
                if patch:
                    ops = orjson.loads(base64.b64decode(patch))
                    candidate = jsonpatch.apply_patch(obj, ops)
            status, answer = await post(
                session, port, "/validate", review(candidate, namespace=namespace)
            )
            assert status == 200, answer
            response = answer["response"]
            if not response["allowed"]:
                return "deny"
            return "warn" if response.get("warnings") else "allow"

    return asyncio.run(asyncio.wait_for(scenario(), 30))


def test_scan_and_webhook_agree_on_every_manifest() -> None:
    documents, problems = read_documents([str(SCAN_DATA)], io.StringIO())
    assert not problems
    objects = list(expand_lists(d.obj for d in documents))
    expected = scan_decisions()
    # The set covers every outcome, so agreement is not trivially "allow" everywhere.
    assert set(expected.values()) == {"allow", "warn", "deny"}
    server = AdmissionServer(
        webhook_view(objects),
        injection=InjectionSettings(gateway_image=GATEWAY_IMAGE),
        metrics=WebhookMetrics(),
        aigis_namespace=None,
        clock=lambda: NOW,
    )
    compared = 0
    for obj in objects:
        namespace = object_namespace(obj, "default")
        key = (str(obj.get("kind")), namespace, object_name(obj) or "<unnamed>")
        if key not in expected:
            continue
        assert webhook_decision(server, obj, namespace) == expected[key], key
        compared += 1
    assert compared == len(expected)
