"""The admission server: AdmissionReview handling, bad input, decisions, injection, events.

The server runs for real on 127.0.0.1 (plain HTTP; one test goes through TLS) over a fixed
`StaticView`, with the real decision engine and injector, and is driven with raw HTTP requests,
so what is asserted is exactly what the API server would receive.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jsonpatch
import orjson
import pytest
from aiohttp import web
from prometheus_client import generate_latest

from aigis.admission.mutation import InjectionSettings
from aigis.api.validation import parse_aiworkload, parse_cluster_policy_spec
from aigis.egress.compliance import NamedPolicy
from aigis.webhook import server as server_module
from aigis.webhook.cache import StaticView
from aigis.webhook.certificates import (
    ReloadableTLS,
    RotationPolicy,
    issue_ca,
    issue_serving_certificate,
    serving_hosts,
)
from aigis.webhook.certificates import ServingMaterial as Material
from aigis.webhook.events import AuditEventRecorder, AuditRecord, render_audit_event
from aigis.webhook.metrics import WebhookMetrics
from aigis.webhook.server import (
    AdmissionServer,
    BadReview,
    ReviewRequest,
    config_hash,
    parse_review,
    review_response,
)
from aigis.webhook.settings import WebhookSettings

GATEWAY_IMAGE = "ghcr.io/aigis-dev/aigis:0.1.0"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


# --- fixtures as data -------------------------------------------------------------------------


def named_policy(name: str, **spec: Any) -> NamedPolicy:
    model, errors = parse_cluster_policy_spec(spec)
    assert model is not None
    assert not errors
    return NamedPolicy(name, model)


POLICIES = [
    named_policy(
        "prod",
        namespaceSelector={"matchLabels": {"env": "prod"}},
        enforcement="Enforce",
        shadowAI="Enforce",
    ),
    named_policy(
        "dev",
        namespaceSelector={"matchLabels": {"env": "dev"}},
        enforcement="Audit",
        shadowAI="Audit",
        allowInjectionOptOut=True,
    ),
]
NAMESPACES = {
    "shop": {"env": "prod", "kubernetes.io/metadata.name": "shop"},
    "lab": {"env": "dev", "kubernetes.io/metadata.name": "lab"},
    "kube-system": {"kubernetes.io/metadata.name": "kube-system"},
}


def support_bot(namespace: str = "shop", version: str = "7") -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {
            "name": "support-bot",
            "namespace": namespace,
            "uid": f"uid-{namespace}",
            "resourceVersion": version,
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "support-bot"}},
            "owner": "team-support",
            "purpose": "Answers customer questions about orders.",
            "enforcement": "Enforce",
            "models": [{"provider": "openai", "name": "gpt-4o-mini"}],
            "egress": [{"host": "api.openai.com"}],
            "gateway": {
                "providerKeys": [
                    {
                        "provider": "openai",
                        "secretRef": {"name": "openai-api-key", "key": "api-key"},
                    }
                ]
            },
        },
    }


def pod_spec(**container: Any) -> dict[str, Any]:
    app = {
        "name": "app",
        "image": "registry.example.com/shop/support-bot:1.4.2",
        "env": [
            {
                "name": "OPENAI_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": "openai-api-key", "key": "api-key"}},
            }
        ],
    }
    app.update(container)
    return {"automountServiceAccountToken": False, "containers": [app]}


def deployment(name: str = "support-bot", **container: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(**container)},
        },
    }


def pod(
    name: str = "support-bot", annotations: Mapping[str, str] | None = None, **container: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "generateName": f"{name}-7d9c-",
        "labels": {"app.kubernetes.io/name": name},
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec(**container)}


MODEL_SERVER = {"image": "vllm/vllm-openai:v0.6.0", "env": []}


def review(
    obj: Mapping[str, Any] | None,
    *,
    operation: str = "CREATE",
    namespace: str | None = "shop",
    old: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    uid: str = "3f1c-uid",
    sub_resource: str | None = None,
) -> dict[str, Any]:
    source = obj or old or {}
    group, _, version = str(source.get("apiVersion", "v1")).rpartition("/")
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": source.get("kind")},
        "resource": {"group": group, "version": version, "resource": "things"},
        "name": source.get("metadata", {}).get("name", ""),
        "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
    }
    if namespace is not None:
        request["namespace"] = namespace
    if sub_resource is not None:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


class LaggingView(StaticView):
    """A cache that has not seen an AIWorkload yet, which the API server already has."""

    def __init__(self, live: Sequence[Mapping[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.live = list(live)
        self.live_reads = 0

    async def read_workloads(self, namespace: str) -> Sequence[Mapping[str, Any]]:
        self.live_reads += 1
        return [w for w in self.live if w["metadata"]["namespace"] == namespace]


def make_server(
    view: Any = None, audit: Callable[[AuditRecord], None] | None = None, **kwargs: Any
) -> tuple[AdmissionServer, WebhookMetrics]:
    metrics = WebhookMetrics()
    server = AdmissionServer(
        view
        if view is not None
        else StaticView(namespaces=NAMESPACES, workloads=[support_bot()], policies=POLICIES),
        injection=InjectionSettings(gateway_image=GATEWAY_IMAGE),
        metrics=metrics,
        aigis_namespace="aigis-system",
        audit=audit,
        clock=lambda: NOW,
        **kwargs,
    )
    return server, metrics


@asynccontextmanager
async def running(
    server: AdmissionServer, ssl_context: Any = None
) -> AsyncIterator[tuple[int, aiohttp.ClientSession]]:
    runner = web.ServerRunner(server.web_server(), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
    port = int(runner.addresses[0][1])
    try:
        async with aiohttp.ClientSession() as session:
            yield port, session
    finally:
        await runner.cleanup()


async def post(
    session: aiohttp.ClientSession, port: int, path: str, body: Any, **kwargs: Any
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = kwargs.pop("headers", {"Content-Type": "application/json"})
    async with session.post(
        f"http://127.0.0.1:{port}{path}", data=data, headers=headers, **kwargs
    ) as response:
        raw = await response.read()
        if response.content_type == "application/json":
            return response.status, orjson.loads(raw)
        return response.status, raw.decode()


def call(server: AdmissionServer, path: str, body: Any) -> dict[str, Any]:
    """POST one review and return `response` of the AdmissionReview answer."""

    async def scenario() -> dict[str, Any]:
        async with running(server) as (port, session):
            status, answer = await post(session, port, path, body)
        assert status == 200, answer
        assert answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["kind"] == "AdmissionReview"
        return dict(answer["response"])

    return asyncio.run(asyncio.wait_for(scenario(), 30))


def patched(obj: Mapping[str, Any], response: Mapping[str, Any]) -> dict[str, Any]:
    assert response["patchType"] == "JSONPatch"
    ops = orjson.loads(base64.b64decode(response["patch"]))
    return dict(jsonpatch.apply_patch(copy.deepcopy(dict(obj)), ops))


# --- parsing ----------------------------------------------------------------------------------


def _with(changes: Mapping[str, Any]) -> bytes:
    body = review(deployment())
    body["request"].update(changes)
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("body", "uid", "fragment"),
    [
        pytest.param(b"{not json", None, "not JSON", id="invalid-json"),
        pytest.param(b"\xff\xfe\x00garbage", None, "not JSON", id="binary"),
        pytest.param(b"[" * 5000 + b"]" * 5000, None, "not JSON", id="too-deep"),
        pytest.param(b"[]", None, "JSON object", id="array"),
        pytest.param(b'"AdmissionReview"', None, "JSON object", id="string"),
        pytest.param(b"{}", None, "no request", id="empty-object"),
        pytest.param(b'{"request": []}', None, "no request", id="request-not-object"),
        pytest.param(b'{"request": {"uid": 7}}', None, "uid", id="uid-not-string"),
        pytest.param(b'{"request": {"uid": ""}}', None, "uid", id="uid-empty"),
        pytest.param(
            orjson.dumps({**review(deployment()), "apiVersion": "admission.k8s.io/v1beta1"}),
            "3f1c-uid",
            "admission.k8s.io/v1",
            id="v1beta1",
        ),
        pytest.param(_with({"kind": "Deployment"}), "3f1c-uid", "request.kind", id="kind-string"),
        pytest.param(_with({"operation": "PATCH"}), "3f1c-uid", "operation", id="operation"),
        pytest.param(_with({"object": [1, 2]}), "3f1c-uid", "request.object", id="object-list"),
        pytest.param(_with({"object": None}), "3f1c-uid", "required", id="create-without-object"),
        pytest.param(_with({"oldObject": "x"}), "3f1c-uid", "oldObject", id="old-object-string"),
        pytest.param(_with({"namespace": 5}), "3f1c-uid", "namespace", id="namespace-number"),
        pytest.param(_with({"dryRun": "yes"}), "3f1c-uid", "dryRun", id="dry-run-string"),
        pytest.param(
            _with({"subResource": ["x"]}), "3f1c-uid", "subResource", id="sub-resource-list"
        ),
    ],
)
def test_parse_review_refuses_bad_input(body: bytes, uid: str | None, fragment: str) -> None:
    parsed = parse_review(body)
    assert isinstance(parsed, BadReview)
    assert parsed.uid == uid
    assert fragment in parsed.message


def test_parse_review_reads_a_real_request() -> None:
    parsed = parse_review(orjson.dumps(review(pod(), dry_run=True)))
    assert isinstance(parsed, ReviewRequest)
    assert (parsed.group, parsed.version, parsed.kind) == ("", "v1", "Pod")
    assert parsed.namespace == "shop"
    assert parsed.dry_run
    assert parsed.object_name == "support-bot-7d9c-"


def test_review_response_shapes() -> None:
    denied = review_response("u", allowed=False, code=403, message="x" * 20000, warnings=["w"] * 50)
    response = denied["response"]
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    assert len(response["status"]["message"]) <= 8192
    assert len(response["warnings"]) == 32
    allowed = review_response("u", allowed=True, patch=[{"op": "add", "path": "/a", "value": 1}])
    assert allowed["response"]["patchType"] == "JSONPatch"
    assert orjson.loads(base64.b64decode(allowed["response"]["patch"])) == [
        {"op": "add", "path": "/a", "value": 1}
    ]
    assert "status" not in allowed["response"]


# --- HTTP bad input ---------------------------------------------------------------------------


async def _raw(port: int, data: bytes, *, close_after: float | None = None) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        pytest.param("GET", "/validate", {}, b"", 405, id="get-validate"),
        pytest.param(
            "PUT", "/mutate", {"Content-Type": "application/json"}, b"{}", 405, id="put-mutate"
        ),
        pytest.param(
            "POST", "/validate", {"Content-Type": "text/plain"}, b"{}", 415, id="text-plain"
        ),
        pytest.param("POST", "/validate", {}, b"{}", 415, id="no-content-type"),
        pytest.param(
            "POST",
            "/validate",
            {"Content-Type": "application/json"},
            b"{nope",
            400,
            id="invalid-json",
        ),
        pytest.param(
            "POST", "/mutate", {"Content-Type": "application/json"}, b"null", 400, id="json-null"
        ),
        pytest.param(
            "POST",
            "/validate",
            {"Content-Type": "application/json"},
            b" " * (2 * 1024 * 1024),
            413,
            id="over-the-limit",
        ),
        pytest.param(
            "POST", "/nowhere", {"Content-Type": "application/json"}, b"{}", 404, id="unknown-path"
        ),
    ],
)
def test_bad_http_requests_get_a_4xx_and_the_server_keeps_serving(
    method: str, path: str, headers: Mapping[str, str], body: bytes, status: int
) -> None:
    server, _ = make_server(max_body_bytes=1024 * 1024)

    async def scenario() -> None:
        async with running(server) as (port, session):
            async with session.request(
                method, f"http://127.0.0.1:{port}{path}", data=body, headers=dict(headers)
            ) as response:
                assert response.status == status
                await response.read()
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
            answer = await post(session, port, "/validate", review(deployment()))
            assert answer[0] == 200

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_huge_chunked_body_is_cut_off() -> None:
    server, _ = make_server(max_body_bytes=64 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 4096

    async def scenario() -> None:
        async with (
            running(server) as (port, session),
            session.post(
                f"http://127.0.0.1:{port}/validate",
                data=chunks(),
                headers={"Content-Type": "application/json"},
            ) as response,
        ):
            assert response.status == 413

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_body_that_never_arrives_times_out_instead_of_hanging() -> None:
    server, _ = make_server(read_timeout_seconds=0.3)

    async def scenario() -> bytes:
        async with running(server) as (port, _session):
            head = (
                b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"apiVersion"'
            )
            return await _raw(port, head)

    answer = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_malformed_review_with_a_uid_gets_a_valid_refusal() -> None:
    body = review(deployment())
    body["request"]["object"] = "not an object"
    response = call(make_server()[0], "/validate", body)
    assert response["uid"] == "3f1c-uid"
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert "request.object" in response["status"]["message"]


def test_an_error_inside_a_decision_answers_500_so_the_failure_policy_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(server_module, "review_object", broken)
    server, metrics = make_server()

    async def scenario() -> None:
        async with running(server) as (port, session):
            status, _ = await post(session, port, "/validate", review(deployment()))
            assert status == 500
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200

    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert b'outcome="error"' in generate_latest(metrics.registry)


def test_health_and_readiness() -> None:
    loaded = False
    server, _ = make_server(tls_ready=lambda: loaded)

    async def scenario() -> list[int]:
        statuses = []
        async with running(server) as (port, session):
            for path in ("/healthz", "/readyz"):
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    statuses.append(response.status)
        return statuses

    assert asyncio.run(scenario()) == [200, 503]
    loaded = True
    assert asyncio.run(scenario()) == [200, 200]


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "namespace", "allowed", "rule"),
    [
        pytest.param(deployment(), "shop", True, None, id="compliant-deployment"),
        pytest.param(
            deployment(securityContext={"privileged": True}),
            "shop",
            False,
            "pod-security/privileged",
            id="privileged-refused-in-enforce",
        ),
        pytest.param(
            deployment("llm", **MODEL_SERVER), "shop", False, "shadow-ai", id="shadow-ai-enforce"
        ),
        pytest.param(deployment("llm", **MODEL_SERVER), "lab", True, None, id="shadow-ai-audit"),
        pytest.param(
            deployment("llm", securityContext={"privileged": True}, **MODEL_SERVER),
            "kube-system",
            True,
            None,
            id="system-namespace-untouched",
        ),
        pytest.param(
            deployment("llm", **MODEL_SERVER),
            "aigis-system",
            True,
            None,
            id="aigis-namespace-untouched",
        ),
        pytest.param(
            {
                **support_bot(),
                "spec": {**support_bot()["spec"], "egress": [{"host": "https://x/"}]},
            },
            "shop",
            False,
            "aiworkload/invalid",
            id="invalid-aiworkload",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}},
            "shop",
            True,
            None,
            id="unknown-kind-allowed",
        ),
    ],
)
def test_validate(obj: Mapping[str, Any], namespace: str, allowed: bool, rule: str | None) -> None:
    response = call(make_server()[0], "/validate", review(obj, namespace=namespace))
    assert response["uid"] == "3f1c-uid"
    assert response["allowed"] is allowed
    if rule is None:
        assert "status" not in response
    else:
        assert response["status"]["code"] == 403
        assert f"[{rule}]" in response["status"]["message"]
        assert "fix:" in response["status"]["message"]


def test_audit_findings_are_warnings_events_and_metrics() -> None:
    records: list[AuditRecord] = []
    server, metrics = make_server(audit=records.append)
    response = call(server, "/validate", review(deployment("llm", **MODEL_SERVER), namespace="lab"))
    assert response["allowed"] is True
    assert any("vLLM" in warning for warning in response["warnings"])
    assert [(r.kind, r.namespace, r.name, r.api_version) for r in records] == [
        ("Deployment", "lab", "llm", "apps/v1")
    ]
    text = generate_latest(metrics.registry).decode()
    assert 'aigis_webhook_audit_decisions_total{kind="Deployment"} 1.0' in text
    assert 'aigis_webhook_findings_total{action="audit",rule="shadow-ai"} 1.0' in text


def test_dry_runs_record_no_events() -> None:
    records: list[AuditRecord] = []
    server, _ = make_server(audit=records.append)
    body = review(deployment("llm", **MODEL_SERVER), namespace="lab", dry_run=True)
    response = call(server, "/validate", body)
    assert response["warnings"]
    assert records == []


@pytest.mark.parametrize(
    ("old", "allowed"),
    [
        pytest.param(
            {
                **deployment(securityContext={"privileged": True}),
                "metadata": {"name": "support-bot", "labels": {"x": "y"}},
            },
            True,
            id="metadata-only-update-allowed",
        ),
        pytest.param(deployment(), False, id="template-change-reviewed"),
    ],
)
def test_updates(old: Mapping[str, Any], allowed: bool) -> None:
    new = deployment(securityContext={"privileged": True})
    response = call(make_server()[0], "/validate", review(new, operation="UPDATE", old=old))
    assert response["allowed"] is allowed


def test_delete_is_allowed_without_a_look() -> None:
    response = call(
        make_server()[0], "/validate", review(None, operation="DELETE", old=deployment())
    )
    assert response["allowed"] is True


def test_a_lagging_cache_is_rechecked_live_before_refusing() -> None:
    llm = support_bot()
    llm["metadata"]["name"] = "llm"
    llm["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": "llm"}}
    llm["spec"]["gateway"] = {"inject": False}
    view = LaggingView([llm], namespaces=NAMESPACES, workloads=[], policies=POLICIES)
    server, metrics = make_server(view)
    obj = deployment("llm", image="vllm/vllm-openai:v0.6.0@sha256:" + "a" * 64, env=[])
    response = call(server, "/validate", review(obj))
    assert view.live_reads == 1
    assert response["allowed"] is True, response
    assert (
        'aigis_webhook_live_reads_total{result="changed"} 1.0'
        in generate_latest(metrics.registry).decode()
    )


def test_refusals_in_quick_succession_read_live_once() -> None:
    view = LaggingView([], namespaces=NAMESPACES, workloads=[], policies=POLICIES)
    now = [100.0]
    server, metrics = make_server(view, monotonic=lambda: now[0])
    body = review(deployment("llm", **MODEL_SERVER))

    async def scenario() -> None:
        async with running(server) as (port, session):
            for _ in range(3):
                status, answer = await post(session, port, "/validate", body)
                assert status == 200
                assert answer["response"]["allowed"] is False
            now[0] += 2.0
            await post(session, port, "/validate", body)

    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert view.live_reads == 2
    text = generate_latest(metrics.registry).decode()
    assert 'aigis_webhook_live_reads_total{result="skipped"} 2.0' in text
    assert 'aigis_webhook_live_reads_total{result="unchanged"} 2.0' in text


def test_no_live_read_for_an_allowed_object() -> None:
    view = LaggingView([], namespaces=NAMESPACES, workloads=[support_bot()], policies=POLICIES)
    response = call(make_server(view)[0], "/validate", review(deployment()))
    assert response["allowed"] is True
    assert view.live_reads == 0


def test_an_unknown_namespace_is_read_live() -> None:
    class Fresh(StaticView):
        async def read_namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
            return {"env": "prod"}

    view = Fresh(namespaces={}, workloads=[], policies=POLICIES)
    response = call(
        make_server(view)[0],
        "/validate",
        review(deployment("llm", **MODEL_SERVER), namespace="new"),
    )
    assert response["allowed"] is False
    assert "shadow-ai" in response["status"]["message"]


# --- mutation ---------------------------------------------------------------------------------


def test_mutate_injects_the_gateway_into_a_covered_pod() -> None:
    obj = pod()
    response = call(make_server()[0], "/mutate", review(obj))
    assert response["allowed"] is True
    result = patched(obj, response)
    gateway = result["spec"]["initContainers"][0]
    assert gateway["name"] == "aigis-gateway"
    assert gateway["restartPolicy"] == "Always"
    assert gateway["image"] == GATEWAY_IMAGE
    app_env = {e["name"]: e for e in result["spec"]["containers"][0]["env"]}
    assert "secretKeyRef" not in str(app_env.get("OPENAI_API_KEY"))
    model, errors = parse_aiworkload(support_bot())
    assert model is not None
    assert not errors
    assert result["metadata"]["annotations"]["aigis.dev/gateway-config-hash"] == config_hash(model)


def test_the_config_hash_is_the_one_the_operator_writes() -> None:
    from aigis.controller.gateway import config_hash as operator_hash
    from aigis.controller.gateway import render_gateway_config_text
    from aigis.egress.networkpolicy import WorkloadRef

    model, _ = parse_aiworkload(support_bot())
    assert model is not None
    fields = WorkloadRef.__dataclass_fields__
    values = {"namespace": "shop", "name": "support-bot", "uid": "uid-shop"}
    ref = WorkloadRef(**{k: v for k, v in values.items() if k in fields})
    text = render_gateway_config_text(ref, model.spec)
    assert config_hash(model) == operator_hash(text) == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("obj", "operation", "namespace"),
    [
        pytest.param(pod(), "UPDATE", "shop", id="pod-update"),
        pytest.param(deployment(), "CREATE", "shop", id="deployment"),
        pytest.param(pod("other"), "CREATE", "shop", id="not-covered"),
        pytest.param(pod(), "CREATE", "kube-system", id="system-namespace"),
        pytest.param(pod(), "CREATE", "elsewhere", id="namespace-without-workloads"),
    ],
)
def test_mutate_leaves_other_requests_alone(
    obj: Mapping[str, Any], operation: str, namespace: str
) -> None:
    view = StaticView(
        namespaces={**NAMESPACES, "elsewhere": {}},
        workloads=[support_bot(), support_bot("kube-system")],
        policies=POLICIES,
    )
    body = review(
        obj, operation=operation, namespace=namespace, old=obj if operation == "UPDATE" else None
    )
    response = call(make_server(view)[0], "/mutate", body)
    assert response == {"uid": "3f1c-uid", "allowed": True}


@pytest.mark.parametrize(
    ("namespace", "injected"),
    [
        pytest.param("lab", False, id="opt-out-where-the-policy-allows-it"),
        pytest.param("shop", True, id="opt-out-ignored-where-it-does-not"),
    ],
)
def test_opt_out_annotation(namespace: str, injected: bool) -> None:
    view = StaticView(
        namespaces=NAMESPACES,
        workloads=[support_bot("lab"), support_bot("shop")],
        policies=POLICIES,
    )
    obj = pod(annotations={"aigis.dev/inject": "false"})
    response = call(make_server(view)[0], "/mutate", review(obj, namespace=namespace))
    assert ("patch" in response) is injected


def test_mutate_reads_live_for_an_ai_pod_the_cache_does_not_cover() -> None:
    view = LaggingView([support_bot()], namespaces=NAMESPACES, workloads=[], policies=POLICIES)
    obj = pod()
    response = call(make_server(view)[0], "/mutate", review(obj))
    assert view.live_reads == 1
    assert patched(obj, response)["spec"]["initContainers"][0]["name"] == "aigis-gateway"


def test_mutate_does_not_read_live_for_an_ordinary_pod() -> None:
    view = LaggingView([], namespaces=NAMESPACES, workloads=[], policies=POLICIES)
    plain = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
    }
    call(make_server(view)[0], "/mutate", review(plain))
    assert view.live_reads == 0


def test_injected_pod_passes_validation_and_mutation_is_idempotent() -> None:
    server, _ = make_server()
    obj = pod()
    first = patched(obj, call(server, "/mutate", review(obj)))
    again = call(server, "/mutate", review(first))
    assert "patch" not in again
    assert call(server, "/validate", review(first))["allowed"] is True


def test_a_pod_arriving_with_the_gateway_is_not_injected_and_keeps_no_key() -> None:
    """A pod that already carries the exact rendered gateway (copied from a running pod) is left
    alone by the injection, so its app still reads the key: validation must refuse it."""
    server, _ = make_server()
    first = patched(pod(), call(server, "/mutate", review(pod())))
    copied = pod()
    copied["spec"]["initContainers"] = first["spec"]["initContainers"]
    copied["spec"]["volumes"] = first["spec"]["volumes"]
    assert "patch" not in call(server, "/mutate", review(copied))
    response = call(server, "/validate", review(copied))
    assert response["allowed"] is False
    assert (
        "[secrets/provider-key-in-app] spec.containers[0].env[0]" in response["status"]["message"]
    )


def running_pod(**container: Any) -> dict[str, Any]:
    """A covered pod as the API server stores it after injection."""
    server, _ = make_server()
    obj = pod(**container)
    obj["metadata"]["name"] = "support-bot-7d9c-x1"
    return patched(obj, call(server, "/mutate", review(obj)))


def debug(old: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    new = copy.deepcopy(dict(old))
    debugger = {"name": "debugger", "image": "busybox:1.36", **fields}
    new["spec"].setdefault("ephemeralContainers", []).append(debugger)
    return new


@pytest.mark.parametrize(
    ("fields", "refused_by"),
    [
        pytest.param({}, None, id="plain-debug-container-allowed"),
        pytest.param(
            {"targetContainerName": "aigis-gateway"},
            "[gateway/debug-target] spec.ephemeralContainers[0].targetContainerName",
            id="targeting-the-gateway-refused",
        ),
        pytest.param(
            {"securityContext": {"privileged": True}},
            "[pod-security/privileged] spec.ephemeralContainers[0].securityContext.privileged",
            id="privileged-refused",
        ),
    ],
)
def test_ephemeral_containers_subresource_is_reviewed(
    fields: dict[str, Any], refused_by: str | None
) -> None:
    # The pod drifted: its app runs privileged, admitted before the policy said otherwise. Only
    # the new debug container is reviewed.
    old = running_pod(securityContext={"privileged": True})
    body = review(
        debug(old, **fields), operation="UPDATE", old=old, sub_resource="ephemeralcontainers"
    )
    server, _ = make_server()
    response = call(server, "/validate", body)
    assert response["allowed"] is (refused_by is None)
    if refused_by is not None:
        assert refused_by in response["status"]["message"]
        assert "spec.containers" not in response["status"]["message"]
    assert "patch" not in call(server, "/mutate", body)


# --- TLS --------------------------------------------------------------------------------------


def test_reviews_over_tls() -> None:
    now = datetime.now(UTC)
    policy = RotationPolicy()
    ca = issue_ca(now, policy)
    serving = issue_serving_certificate(ca, serving_hosts(), now, policy)
    tls = ReloadableTLS()
    tls.load(Material(serving.cert_pem, serving.key_pem, ca.cert_pem))
    server, _ = make_server()

    async def scenario() -> dict[str, Any]:
        import ssl

        client = ssl.create_default_context(cadata=ca.cert_pem.decode())
        async with (
            running(server, tls.context) as (port, session),
            session.post(
                f"https://127.0.0.1:{port}/validate",
                data=orjson.dumps(review(deployment(securityContext={"privileged": True}))),
                headers={"Content-Type": "application/json"},
                ssl=client,
            ) as response,
        ):
            assert response.status == 200
            return dict(orjson.loads(await response.read()))

    answer = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert answer["response"]["allowed"] is False


# --- events -----------------------------------------------------------------------------------


RECORD = AuditRecord("apps/v1", "Deployment", "lab", "llm", ("[shadow-ai] looks like AI",))


def test_render_audit_event() -> None:
    event = render_audit_event(RECORD, NOW, "webhook-0")
    assert event["metadata"] == {"generateName": "llm.", "namespace": "lab"}
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "llm",
        "namespace": "lab",
    }
    assert event["type"] == "Warning"
    assert event["reason"] == "AIPolicyAudit"
    assert "[shadow-ai] looks like AI" in event["message"]
    assert event["firstTimestamp"] == "2026-11-30T12:00:00Z"


def test_events_of_cluster_scoped_objects_go_to_default_and_long_messages_are_capped() -> None:
    record = AuditRecord("aigis.dev/v1alpha1", "AIClusterPolicy", None, "p", ("x" * 5000,))
    event = render_audit_event(record, NOW, "w")
    assert event["metadata"]["namespace"] == "default"
    assert "namespace" not in event["involvedObject"]
    assert len(event["message"]) <= 1024


class FakeEventApi:
    def __init__(self, fail: bool = False) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    async def request(
        self, method: str, path: str, *, body: Any = None, timeout: float = 10.0
    ) -> dict[str, Any] | None:
        if self.fail:
            raise ConnectionError("API server away")
        self.posted.append((path, body))
        return {}


def test_recorder_deduplicates_drops_when_full_and_survives_failures() -> None:
    clock = [NOW]
    metrics = WebhookMetrics()
    api = FakeEventApi()
    recorder = AuditEventRecorder(
        api,
        metrics,
        clock=lambda: clock[0],
        instance="w",
        queue_size=2,
        dedupe_window=timedelta(minutes=10),
    )

    async def scenario() -> None:
        recorder.record(RECORD)
        recorder.record(RECORD)  # deduplicated
        recorder.record(AuditRecord("v1", "Pod", "lab", "a", ("w",)))
        recorder.record(AuditRecord("v1", "Pod", "lab", "b", ("w",)))  # queue full: dropped
        clock[0] = NOW + timedelta(minutes=11)
        task = asyncio.create_task(recorder.run())
        for _ in range(50):
            if len(api.posted) == 2:
                break
            await asyncio.sleep(0.01)
        recorder.record(RECORD)  # the window has passed: recorded again
        for _ in range(50):
            if len(api.posted) == 3:
                break
            await asyncio.sleep(0.01)
        api.fail = True
        recorder.record(AuditRecord("v1", "Pod", "lab", "c", ("w",)))
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert [path for path, _ in api.posted] == ["/api/v1/namespaces/lab/events"] * 3
    text = generate_latest(metrics.registry).decode()
    for result, count in (("sent", 3), ("deduplicated", 1), ("dropped", 1), ("failed", 1)):
        assert f'aigis_webhook_audit_events_total{{result="{result}"}} {count}.0' in text


# --- settings ---------------------------------------------------------------------------------

LOCAL = {"webhook_url": "https://127.0.0.1:9443", "aigis_namespace": "aigis-system"}


@pytest.mark.parametrize(
    ("settings", "flag"),
    [
        pytest.param(
            WebhookSettings(**LOCAL, listen="localhost:9443"), "--listen", id="listen-host"
        ),
        pytest.param(
            WebhookSettings(**LOCAL, metrics_listen="1.2.3.4"),
            "--metrics-listen",
            id="metrics-port",
        ),
        pytest.param(WebhookSettings(aigis_namespace="a"), "--webhook-url", id="no-endpoint"),
        pytest.param(
            WebhookSettings(**LOCAL, service_name="svc"), "--webhook-url", id="both-endpoints"
        ),
        pytest.param(
            WebhookSettings(webhook_url="http://127.0.0.1:9443", aigis_namespace="a"),
            "--webhook-url",
            id="plain-http",
        ),
        pytest.param(
            WebhookSettings(webhook_url="https://127.0.0.1:9443/x?y", aigis_namespace="a"),
            "--webhook-url",
            id="path-and-query",
        ),
        pytest.param(
            WebhookSettings(service_name="Bad_Name", aigis_namespace="a"),
            "--service-name",
            id="service-name",
        ),
        pytest.param(WebhookSettings(service_name="svc"), "--aigis-namespace", id="no-namespace"),
        pytest.param(
            WebhookSettings(**LOCAL, timeout_seconds=10), "--timeout-seconds", id="timeout"
        ),
        pytest.param(
            WebhookSettings(**LOCAL, enforce_failure_policy="Maybe"),
            "--enforce-failure-policy",
            id="failure-policy",
        ),
        pytest.param(WebhookSettings(**LOCAL, scope=(("bad key!", "x"),)), "--scope", id="scope"),
        pytest.param(
            WebhookSettings(**LOCAL, configuration_name="Not_A_Name"),
            "--configuration-name",
            id="configuration-name",
        ),
        pytest.param(WebhookSettings(**LOCAL, gateway_image=" "), "--gateway-image", id="image"),
        pytest.param(WebhookSettings(**LOCAL, max_body_bytes=10), "--max-body-bytes", id="body"),
    ],
)
def test_bad_settings_name_the_flag(settings: WebhookSettings, flag: str) -> None:
    assert flag in [p.path for p in settings.problems()]


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(WebhookSettings(**LOCAL), id="local"),
        pytest.param(
            WebhookSettings(service_name="aigis-webhook", aigis_namespace="aigis-system"),
            id="in-cluster",
        ),
    ],
)
def test_good_settings(settings: WebhookSettings) -> None:
    assert settings.problems() == []


def test_the_command_refuses_bad_flags_before_starting_anything() -> None:
    from click.testing import CliRunner

    from aigis.cli import main

    result = CliRunner().invoke(
        main, ["webhook", "--webhook-url", "http://127.0.0.1:9443", "--scope", "a=b"]
    )
    assert result.exit_code == 2
    assert "--webhook-url" in result.output
    assert "--aigis-namespace" in result.output
