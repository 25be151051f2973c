"""Fuzzing the admission webhook over TLS with mutated AdmissionReviews.

The real `AdmissionServer` runs on 127.0.0.1 with a TLS certificate of its own CA, over a fixed
view of the scan data set (namespaces, AIWorkloads, AIClusterPolicies), and is sent reviews of
Pods, Deployments, CronJobs, AIWorkloads and AIClusterPolicies from that data set and pods made
from their templates, then mutated: wrong types, missing fields, huge strings, deep nesting,
unicode, a wrong apiVersion or kind, other operations, and bodies that are not JSON at all.

What the server promises (its module docstring), and what is checked:

- a body that parses as JSON with `request.uid` a non-empty string (at most 256 characters) is
  answered 200 with an AdmissionReview v1 whose `response.uid` echoes it, `allowed` a boolean, a
  `status` with a code when it refuses; anything else is answered 400 (415 for another content
  type), never with a review;
- never a 5xx: the server answers 500 only on an unexpected error inside a decision, on purpose,
  so that the webhook's failurePolicy decides (fail closed in namespaces an Enforce policy
  governs, open elsewhere). For a fuzzed input that is an engine or injector bug, not a choice;
- a JSON Patch from `/mutate` applies cleanly to the object, and applied a second time it fails
  or changes nothing (the injector pins every non-idempotent operation with a `test`);
- every request is answered within the client's timeout (no hang).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import http.client
import json
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonpatch
import jsonpointer
import orjson
import pytest
import yaml
from aiohttp import web
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from aigis.admission.mutation import InjectionSettings
from aigis.api.validation import parse_cluster_policy_spec
from aigis.egress.compliance import NamedPolicy
from aigis.webhook.cache import StaticView
from aigis.webhook.certificates import (
    ReloadableTLS,
    RotationPolicy,
    issue_ca,
    issue_serving_certificate,
    serving_hosts,
)
from aigis.webhook.certificates import ServingMaterial as Material
from aigis.webhook.metrics import WebhookMetrics
from aigis.webhook.server import AdmissionServer

DATA = Path(__file__).parents[1] / "data" / "scan"
CLIENT_TIMEOUT_SECONDS = 30.0
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- seeds: the scan data set ------------------------------------------------------------------


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(DATA.rglob("*")):
        if path.suffix in (".yaml", ".yml"):
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))
        elif path.suffix == ".json":
            loaded = json.loads(path.read_text())
            docs.extend(loaded.get("items", [loaded]) if isinstance(loaded, dict) else [])
    return docs


DOCUMENTS = _documents()
NAMESPACES = {
    d["metadata"]["name"]: dict(d["metadata"].get("labels") or {})
    for d in DOCUMENTS
    if d.get("kind") == "Namespace"
}
WORKLOADS = [
    {**d, "metadata": {"uid": f"uid-{i}", "resourceVersion": "1", **d["metadata"]}}
    for i, d in enumerate(DOCUMENTS)
    if d.get("kind") == "AIWorkload"
]


def _policies() -> list[NamedPolicy]:
    found = []
    for d in DOCUMENTS:
        if d.get("kind") == "AIClusterPolicy":
            model, errors = parse_cluster_policy_spec(d.get("spec") or {})
            if model is not None and not errors:
                found.append(NamedPolicy(d["metadata"]["name"], model))
    return found


def _pods_from_templates() -> list[dict[str, Any]]:
    """Pods as a controller creates them from each template: the ones /mutate injects into."""
    pods = []
    for d in DOCUMENTS:
        spec = d.get("spec") or {}
        template = (spec.get("jobTemplate") or {}).get("spec", spec).get("template")
        if isinstance(template, dict):
            pods.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "generateName": f"{d['metadata']['name']}-",
                        "namespace": d["metadata"].get("namespace"),
                        **(template.get("metadata") or {}),
                    },
                    "spec": template.get("spec") or {},
                }
            )
    return pods


REVIEWED = ("Pod", "Deployment", "CronJob", "AIWorkload", "AIClusterPolicy")
SEEDS = [d for d in DOCUMENTS if d.get("kind") in REVIEWED] + _pods_from_templates()


def review(obj: Mapping[str, Any], uid: str = "fuzz-uid") -> dict[str, Any]:
    group, _, version = str(obj.get("apiVersion", "v1")).rpartition("/")
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": obj.get("kind")},
        "resource": {"group": group, "version": version, "resource": "things"},
        "name": meta.get("name", ""),
        "operation": "CREATE",
        "userInfo": {"username": "fuzz", "groups": ["system:authenticated"]},
        "object": copy.deepcopy(dict(obj)),
        "oldObject": None,
        "dryRun": False,
    }
    if obj.get("kind") != "AIClusterPolicy":
        request["namespace"] = meta.get("namespace") or "support"
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


# --- the server, for real, on 127.0.0.1 with TLS ----------------------------------------------


@dataclass(frozen=True)
class Webhook:
    port: int
    client_context: ssl.SSLContext

    def post(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> tuple[int, str, bytes]:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.client_context, timeout=CLIENT_TIMEOUT_SECONDS
        )
        try:
            connection.request("POST", path, body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type") or "", response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    now = datetime.now(UTC)
    policy = RotationPolicy()
    ca = issue_ca(now, policy)
    serving = issue_serving_certificate(ca, serving_hosts(), now, policy)
    tls = ReloadableTLS()
    tls.load(Material(serving.cert_pem, serving.key_pem, ca.cert_pem))
    server = AdmissionServer(
        StaticView(namespaces=NAMESPACES, workloads=WORKLOADS, policies=_policies()),
        injection=InjectionSettings(gateway_image="ghcr.io/aigis-dev/aigis:0.1.0"),
        metrics=WebhookMetrics(),
        aigis_namespace="aigis-system",
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-webhook", daemon=True)
    thread.start()

    async def start() -> tuple[web.ServerRunner, int]:
        runner = web.ServerRunner(server.web_server(), handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context).start()
        return runner, int(runner.addresses[0][1])

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield Webhook(port, ssl.create_default_context(cadata=ca.cert_pem.decode()))
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# --- mutations ---------------------------------------------------------------------------------


MAX_FUZZED_DEPTH = 240
"""Deeper values are in `test_deep_nesting` below: a patch that copies one cannot be written
(a known bug, marked there), and random draws would find it only now and then."""


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"nested": value}
    return value


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0x80, exclude_categories=["Cs"]), max_size=20),
    st.sampled_from(
        ["\u202e", "\x00", "\ufeff", "\U0001d51e\U0001d526", "a" * 100_000, "../../etc", "$(KEY)"]
    ),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    st.integers(min_value=50, max_value=MAX_FUZZED_DEPTH).map(deep),
)
"""Wrong types, unicode, a huge string, deep nesting."""


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every member and item below `value`, as key/index tuples."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from paths(child, (*prefix, index))


def mutate_object(data: st.DataObject, obj: dict[str, Any]) -> None:
    """Change, drop or re-type a few places anywhere in `obj`, in place."""
    for _ in range(data.draw(st.integers(0, 4), label="object edits")):
        found = list(paths(obj))
        if not found:
            return
        path = data.draw(st.sampled_from(found), label="path")
        parent = obj
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["junk", "drop", "wrap", "empty"]), label="action")
        key = path[-1]
        if action == "drop":
            del parent[key]
        elif action == "wrap":
            parent[key] = [parent[key]]
        elif action == "empty":
            parent[key] = {} if isinstance(parent[key], dict) else []
        else:
            parent[key] = data.draw(JUNK, label="value")


REVIEW_EDITS = {
    "apiVersion": st.sampled_from(["admission.k8s.io/v1beta1", "v1", "", None, 1]),
    "kind": st.sampled_from(["AdmissionRequest", "Pod", "", None]),
}
REQUEST_EDITS = {
    "uid": st.one_of(st.sampled_from(["", "x" * 257, "u" * 256, None, 7, []]), st.text(max_size=8)),
    "operation": st.sampled_from(["UPDATE", "DELETE", "CONNECT", "PATCH", "create", None, 3]),
    "namespace": st.sampled_from(
        ["kube-system", "aigis-system", "unknown-ns", "", None, 5, "Ünïcode", "x" * 300]
    ),
    "kind": st.one_of(
        JUNK,
        st.fixed_dictionaries(
            {
                "group": st.sampled_from(["", "apps", "batch", "aigis.dev", "x"]),
                "version": st.sampled_from(["v1", "v1alpha1", ""]),
                "kind": st.sampled_from(
                    ["Pod", "Deployment", "AIWorkload", "AIClusterPolicy", "Secret", "CronJob"]
                ),
            }
        ),
    ),
    "object": st.one_of(JUNK, st.just(None)),
    "dryRun": st.one_of(st.booleans(), JUNK),
    "name": JUNK,
}


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A serialised AdmissionReview from the seeds, mutated at every level, or raw junk."""
    data = draw(st.data())
    body = review(draw(st.sampled_from(SEEDS), label="seed"))
    request = body["request"]
    mutate_object(data, request["object"])
    if draw(st.booleans(), label="as update"):
        request["operation"] = "UPDATE"
        request["oldObject"] = copy.deepcopy(request["object"])
        mutate_object(data, request["oldObject"])
    for name in draw(st.lists(st.sampled_from(sorted(REQUEST_EDITS)), max_size=2, unique=True)):
        if draw(st.booleans()):
            request.pop(name, None)
        else:
            request[name] = draw(REQUEST_EDITS[name], label=f"request.{name}")
    for name in draw(st.lists(st.sampled_from(sorted(REVIEW_EDITS)), max_size=1)):
        body[name] = draw(REVIEW_EDITS[name], label=name)
    # The standard library serialises nesting deeper than orjson writes.
    text = json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
    raw = draw(
        st.sampled_from(["as is", "as is", "as is", "truncate", "garbage", "latin-1", "bytes"])
    )
    if raw == "truncate":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if raw == "garbage":
        cut = draw(st.integers(0, len(text)))
        return text[:cut] + draw(st.binary(min_size=1, max_size=16)) + text[cut:]
    if raw == "latin-1":
        return text.replace(b'"fuzz', b'"\xe9\xff')
    if raw == "bytes":
        return draw(
            st.one_of(
                st.binary(max_size=64),
                st.sampled_from([b"", b"null", b"[]", b"{}", b"[" * 5000, b'{"request":']),
            )
        )
    return text


# --- the properties ----------------------------------------------------------------------------


def record(outcome: str) -> None:
    """Count an outcome for `--hypothesis-show-statistics` (outside a fuzz test, nothing)."""
    with contextlib.suppress(InvalidArgument):
        event(outcome)


def expected_uid(body: bytes) -> str | None:
    """The uid the server must echo, or None when the body is not a review at all."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    request = parsed.get("request") if isinstance(parsed, dict) else None
    uid = request.get("uid") if isinstance(request, dict) else None
    return uid if isinstance(uid, str) and 0 < len(uid) <= 256 else None


def check_answer(path: str, body: bytes, status: int, content_type: str, raw: bytes) -> None:
    assert status < 500, f"{path} answered {status}: {raw[:300]!r}"
    uid = expected_uid(body)
    if uid is None:
        record(f"{path}: not a review")
        assert status == 400, (status, raw[:300])
        return
    assert status == 200, (status, raw[:300])
    assert content_type.startswith("application/json")
    answer = orjson.loads(raw)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == uid
    assert isinstance(response["allowed"], bool)
    if not response["allowed"]:
        assert isinstance(response["status"]["code"], int)
        assert 400 <= response["status"]["code"] < 600
        assert isinstance(response["status"]["message"], str)
    warnings = response.get("warnings", [])
    assert isinstance(warnings, list)
    assert all(isinstance(w, str) for w in warnings)
    assert ("patch" in response) == ("patchType" in response)
    outcome = "patched" if "patch" in response else "allowed" if response["allowed"] else "refused"
    record(f"{path}: {outcome}")
    if "patch" in response:
        assert path == "/mutate"
        assert response["patchType"] == "JSONPatch"
        check_patch(orjson.loads(body)["request"]["object"], response["patch"])


def check_patch(obj: dict[str, Any], encoded: str) -> None:
    operations = orjson.loads(base64.b64decode(encoded))
    assert isinstance(operations, list)
    assert operations
    patch = jsonpatch.JsonPatch(operations)
    once = patch.apply(copy.deepcopy(obj))
    try:
        twice = patch.apply(copy.deepcopy(once))
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException):
        return
    assert twice == once, "applied twice, the patch changed the object again"


@FUZZ
@given(body=bodies(), path=st.sampled_from(["/validate", "/mutate"]))
def test_every_review_gets_a_well_formed_answer(webhook: Webhook, body: bytes, path: str) -> None:
    status, content_type, raw = webhook.post(path, body)
    check_answer(path, body, status, content_type, raw)


@FUZZ
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_mutated_pods_get_patches_that_apply_once(
    webhook: Webhook, seed: dict[str, Any], data: st.DataObject
) -> None:
    """Pod CREATEs only, lightly mutated, so that many are covered and injected."""
    obj = copy.deepcopy(seed)
    if obj.get("kind") != "Pod":
        return
    mutate_object(data, obj)
    body = json.dumps(review(obj)).encode()
    status, content_type, raw = webhook.post("/mutate", body)
    check_answer("/mutate", body, status, content_type, raw)
    status, content_type, raw = webhook.post("/validate", body)
    check_answer("/validate", body, status, content_type, raw)


def test_the_seeds_include_pods_the_webhook_injects(webhook: Webhook) -> None:
    """Without covered pods in the seeds, the patch properties above would check nothing."""
    patched = 0
    for seed in SEEDS:
        if seed.get("kind") == "Pod":
            status, _, raw = webhook.post("/mutate", orjson.dumps(review(seed)))
            assert status == 200
            patched += "patch" in orjson.loads(raw)["response"]
    assert patched >= 1


def test_another_content_type_is_refused_without_a_review(webhook: Webhook) -> None:
    status, _, _ = webhook.post("/validate", orjson.dumps(review(SEEDS[0])), "text/plain")
    assert status == 415


def covered_pod_with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """The first seed pod the webhook injects into, with `value` at `path`."""
    for seed in SEEDS:
        if seed.get("kind") == "Pod" and seed["metadata"].get("name") == "self-declared-gateway":
            pod = copy.deepcopy(seed)
            parent = pod
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = value
            return pod
    raise AssertionError("the scan data set lost its pod self-declared-gateway")


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
@pytest.mark.parametrize("depth", [300, 900])
def test_deep_nesting_in_a_pod_is_answered(webhook: Webhook, path: str, depth: int) -> None:
    pod = covered_pod_with(("metadata", "annotations"), {"deep": json.dumps(deep(5))})
    sent = review(pod)
    sent["request"]["object"]["spec"]["containers"][0]["args"] = deep(depth)
    body = json.dumps(sent).encode()
    check_answer(path, body, *webhook.post(path, body))


def test_deep_nesting_in_a_patched_list_is_answered(webhook: Webhook) -> None:
    pod = covered_pod_with(("spec", "initContainers"), deep(254))
    body = json.dumps(review(pod)).encode()
    check_answer("/mutate", body, *webhook.post("/mutate", body))
