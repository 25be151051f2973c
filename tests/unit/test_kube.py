"""aigis's Kubernetes client: the pure parts table by table, then the wire against a local server.

The local server (plain HTTP on 127.0.0.1) records what the client sends, so content types, the
per-request token, 404 handling and the watch stream's framing are checked without a cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from kubernetes import client

from aigis.api.common import LabelSelector
from aigis.kube import (
    APPLY_CONTENT_TYPE,
    JSON_PATCH_CONTENT_TYPE,
    MERGE_CONTENT_TYPE,
    KubeClient,
    KubeError,
    WatchExpiredError,
    error_message,
    finalizer_removal,
    namespaced_path,
    object_path,
    selector_query,
    watch_event,
)

# --- pure -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param({}, "", id="empty-selects-everything"),
        pytest.param({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2", id="labels-sorted"),
        pytest.param(
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]},
            "tier in (api,web)",
            id="in-values-sorted",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
            "tier notin (db)",
            id="not-in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, "gpu", id="exists"
        ),
        pytest.param(
            {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]},
            "!gpu",
            id="does-not-exist",
        ),
        pytest.param(
            {
                "matchLabels": {"app": "bot"},
                "matchExpressions": [{"key": "gpu", "operator": "Exists"}],
            },
            "app=bot,gpu",
            id="labels-then-expressions",
        ),
    ],
)
def test_selector_query(selector: dict[str, Any], expected: str) -> None:
    assert selector_query(LabelSelector.model_validate(selector)) == expected


def _manifest(api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"namespace": namespace, "name": name},
    }


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        pytest.param(
            _manifest("networking.k8s.io/v1", "NetworkPolicy", "shop", "aigis-bot"),
            "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/aigis-bot",
            id="group-api",
        ),
        pytest.param(
            _manifest("cilium.io/v2", "CiliumNetworkPolicy", "shop", "aigis-bot"),
            "/apis/cilium.io/v2/namespaces/shop/ciliumnetworkpolicies/aigis-bot",
            id="cilium",
        ),
        pytest.param(
            _manifest("v1", "ConfigMap", "shop", "bot-gateway"),
            "/api/v1/namespaces/shop/configmaps/bot-gateway",
            id="core-api",
        ),
    ],
)
def test_object_path(manifest: dict[str, Any], expected: str) -> None:
    assert object_path(manifest) == expected


def test_object_path_refuses_a_kind_it_does_not_know() -> None:
    with pytest.raises(KeyError):
        object_path(_manifest("v1", "Pod", "shop", "bot"))


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        pytest.param("shop", "", "/api/v1/namespaces/shop/pods", id="collection"),
        pytest.param("shop", "bot-1", "/api/v1/namespaces/shop/pods/bot-1", id="object"),
        pytest.param(None, "", "/api/v1/pods", id="all-namespaces"),
        pytest.param("a b", "c d", "/api/v1/namespaces/a%20b/pods/c%20d", id="quoted"),
    ],
)
def test_namespaced_path(namespace: str | None, name: str, expected: str) -> None:
    assert namespaced_path("/api/v1", namespace, "pods", name) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            '{"kind":"Status","message":"pods \\"x\\" not found","code":404}',
            'GET /api/v1/x: 404 pods "x" not found',
            id="status-message",
        ),
        pytest.param("upstream broke", "GET /api/v1/x: 404 upstream broke", id="plain-text"),
        pytest.param('{"code":404}', 'GET /api/v1/x: 404 {"code":404}', id="no-message"),
        pytest.param("[1, 2]", "GET /api/v1/x: 404 [1, 2]", id="not-an-object"),
        pytest.param("", "GET /api/v1/x: 404 ", id="empty"),
    ],
)
def test_error_text(body: str, expected: str) -> None:
    error = KubeError("GET", "/api/v1/x", 404, body)
    assert str(error) == expected
    assert (error.method, error.path, error.status, error.body) == ("GET", "/api/v1/x", 404, body)


def test_error_message_prefers_the_status_message() -> None:
    assert error_message('{"message": "denied"}') == "denied"


def test_finalizer_removal_tests_the_list_it_saw() -> None:
    assert finalizer_removal(["a", "aigis.dev/forensics", "b"], "aigis.dev/forensics") == [
        {"op": "test", "path": "/metadata/finalizers", "value": ["a", "aigis.dev/forensics", "b"]},
        {"op": "replace", "path": "/metadata/finalizers", "value": ["a", "b"]},
    ]


@pytest.mark.parametrize(
    ("line", "raised"),
    [
        pytest.param(
            b'{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old"}}',
            WatchExpiredError,
            id="410-expired",
        ),
        pytest.param(
            b'{"type":"ERROR","object":{"kind":"Status","code":500,"message":"boom"}}',
            KubeError,
            id="other-error",
        ),
        pytest.param(b"[1]", KubeError, id="not-an-object"),
    ],
)
def test_watch_event_errors(line: bytes, raised: type[Exception]) -> None:
    with pytest.raises(raised):
        watch_event(line, "/api/v1/namespaces")


def test_watch_event_passes_other_events() -> None:
    event = watch_event(b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}', "/p")
    assert event == {"type": "ADDED", "object": {"metadata": {"name": "a"}}}


# --- the wire, against a local server ---------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def _client(base: str, tokens: list[str]) -> KubeClient:
    configuration = client.Configuration(host=base)
    configuration.api_key["authorization"] = "stale"
    configuration.api_key_prefix["authorization"] = "Bearer"

    def refresh(config: client.Configuration) -> None:
        config.api_key["authorization"] = tokens.pop(0)

    configuration.refresh_api_key_hook = refresh
    return KubeClient(configuration, user_agent="aigis-test")


def test_requests_carry_a_fresh_token_and_the_right_content_types() -> None:
    seen: list[tuple[str, str, str, str, str, bytes]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.append(
            (
                request.method,
                request.path_qs,
                request.headers.get("Authorization", ""),
                request.headers.get("Content-Type", ""),
                request.headers.get("User-Agent", ""),
                body,
            )
        )
        if request.path.endswith("/missing"):
            return web.json_response({"kind": "Status", "message": "gone"}, status=404)
        return web.json_response({"ok": True})

    async def scenario() -> None:
        runner, base = await _serve(handler)
        kube = _client(base, ["one", "two", "three", "four"])
        try:
            assert await kube.request("GET", "/api/v1/namespaces/a/pods/missing") is None
            manifest = _manifest("v1", "ConfigMap", "a", "c")
            assert await kube.apply(object_path(manifest), manifest) == {"ok": True}
            await kube.annotate_aiworkload("a", "w", {"k": "v"})
            await kube.remove_pod_finalizer("a", "p", ["f"], "f")
        finally:
            await kube.close()
            await runner.cleanup()

    asyncio.run(scenario())
    methods = [(s[0], s[1], s[2], s[3]) for s in seen]
    assert methods == [
        ("GET", "/api/v1/namespaces/a/pods/missing", "Bearer one", ""),
        (
            "PATCH",
            "/api/v1/namespaces/a/configmaps/c?fieldManager=aigis&force=true",
            "Bearer two",
            APPLY_CONTENT_TYPE,
        ),
        (
            "PATCH",
            "/apis/aigis.dev/v1alpha1/namespaces/a/aiworkloads/w",
            "Bearer three",
            MERGE_CONTENT_TYPE,
        ),
        ("PATCH", "/api/v1/namespaces/a/pods/p", "Bearer four", JSON_PATCH_CONTENT_TYPE),
    ]
    assert {s[4] for s in seen} == {"aigis-test"}
    assert orjson.loads(seen[3][5])[0] == {
        "op": "test",
        "path": "/metadata/finalizers",
        "value": ["f"],
    }


@pytest.mark.parametrize(
    ("method", "status", "outcome"),
    [
        pytest.param("DELETE", 404, None, id="delete-missing-is-none"),
        pytest.param("POST", 404, 404, id="post-404-raises"),
        pytest.param("GET", 403, 403, id="forbidden-raises"),
        pytest.param("PATCH", 422, 422, id="invalid-raises"),
    ],
)
def test_status_handling(method: str, status: int, outcome: int | None) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"kind": "Status", "message": "no", "code": status}, status=status)

    async def scenario() -> dict[str, Any] | None:
        runner, base = await _serve(handler)
        kube = _client(base, ["t"] * 4)
        try:
            return await kube.request(method, "/api/v1/x", body={} if method != "GET" else None)
        finally:
            await kube.close()
            await runner.cleanup()

    if outcome is None:
        assert asyncio.run(scenario()) is None
        return
    with pytest.raises(KubeError) as raised:
        asyncio.run(scenario())
    assert raised.value.status == outcome
    assert str(raised.value) == f"{method} /api/v1/x: {outcome} no"


def test_a_removed_finalizer_that_changed_meanwhile_is_not_an_error() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "test failed"}, status=422)

    async def scenario() -> None:
        runner, base = await _serve(handler)
        kube = _client(base, ["t"])
        try:
            await kube.remove_pod_finalizer("a", "p", ["f", "g"], "f")
        finally:
            await kube.close()
            await runner.cleanup()

    asyncio.run(scenario())


def _stream(*chunks: bytes, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.query["watch"] == "1"
        assert request.query["allowWatchBookmarks"] == "true"
        response = web.StreamResponse(status=status)
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response

    return handler


async def _events(handler: Handler) -> list[dict[str, Any]]:
    runner, base = await _serve(handler)
    kube = _client(base, ["t"] * 2)
    try:
        events: AsyncIterator[dict[str, Any]] = kube.watch("/api/v1/namespaces", "7")
        return [event async for event in events]
    finally:
        await kube.close()
        await runner.cleanup()


def test_watch_splits_lines_across_chunks() -> None:
    handler = _stream(
        b'{"type":"ADDED","object":{"a":1}}\n{"type":"MOD', b'IFIED","object":{}}\n\n'
    )
    events = asyncio.run(_events(handler))
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]


def test_watch_gone_raises_expired() -> None:
    with pytest.raises(WatchExpiredError):
        asyncio.run(_events(_stream(status=410)))


def test_watch_line_size_is_bounded() -> None:
    handler = _stream(*([b"x" * (1024 * 1024)] * 17))
    with pytest.raises(KubeError, match="exceeded 16 MiB"):
        asyncio.run(_events(handler))
