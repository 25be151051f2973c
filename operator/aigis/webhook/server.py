"""The admission webhook's HTTP shell: AdmissionReview in, AdmissionReview out.

Two endpoints the API server calls, `/validate` and `/mutate`, plus `/healthz` and `/readyz`.
One aiohttp low-level server (no router: four exact paths in a dict), orjson both ways. The
decisions come from the pure engine (`aigis.admission.engine.review_object`) and the injector
(`aigis.admission.mutation.render_pod_patch`), with what they need read from an `AdmissionView`
(the watch cache); this module turns requests into their inputs and their outputs into
responses, and measures and records what happened.

What each endpoint does:

- `/validate` reviews Pods and every pod-template owner (Deployments, Jobs, ...) and AIWorkloads
  and AIClusterPolicies, on CREATE and on UPDATEs that change `spec` (an update of labels or
  finalizers only is always allowed: refusing it could wedge controllers and deletions after a
  policy tightened). A refusal is `allowed: false` with `status.code` 403 and the decision's
  message; Audit findings are returned as `warnings` (kubectl prints them) and recorded as
  Events off the request path. Before refusing, the namespace is read live once in case the
  cache is behind (see `aigis.webhook.cache`).
  The `pods/ephemeralcontainers` subresource (`kubectl debug`, an UPDATE of a Pod) is reviewed
  too, for the ephemeral containers it adds only; other subresources are allowed unread.
  Requests by nodes (a kubelet creating a mirror pod) are allowed unread.
- `/mutate` only acts on Pod CREATE (never on a subresource, never by a node): the covering
  AIWorkload's gateway is injected as a JSON Patch (base64, `patchType: JSONPatch`). Opting out
  by annotation is honoured only where every governing AIClusterPolicy allows it.

Bad input never crashes or hangs the server: a body over the size limit is refused with 413
before it is read, a body that does not arrive within the read timeout with 408, a wrong method
or content type with 405/415, invalid JSON or something that is not an AdmissionReview with 400;
an AdmissionReview with a uid but a malformed request gets a valid AdmissionReview refusing it
with code 400. An unexpected error inside a decision answers 500, so the webhook's
`failurePolicy` decides (fail open outside Enforce namespaces), and is logged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import orjson
from aiohttp import web

from aigis.admission.engine import (
    EPHEMERAL_CONTAINERS,
    RULE_SHADOW_AI,
    AdmissionContext,
    Decision,
    covering_workloads,
    policy_bounds,
    review_object,
)
from aigis.admission.mutation import InjectionSettings, render_pod_patch
from aigis.admission.shadow import ai_evidence, looks_like_ai
from aigis.admission.templates import TEMPLATE_KINDS, pod_template
from aigis.api.aiworkload import AIWorkload
from aigis.api.clusterpolicy import UNGOVERNABLE_NAMESPACES
from aigis.api.validation import parse_aiworkload
from aigis.egress.compliance import governing_policies, trusts_declared_regions
from aigis.gateway.config import dump_gateway_config, render_gateway_config
from aigis.httpbody import read_capped
from aigis.webhook.cache import AdmissionView
from aigis.webhook.events import AuditRecord
from aigis.webhook.metrics import WebhookMetrics
from aigis.webhook.webhooks import MUTATE_PATH, NODES_GROUP, VALIDATE_PATH

log = logging.getLogger("aigis.webhook")

ADMISSION_API_VERSION: Final = "admission.k8s.io/v1"
MAX_BODY_BYTES: Final = 7 * 1024 * 1024
"""The API server accepts objects up to 3 MiB; a review carries the object and the old object."""
READ_TIMEOUT_SECONDS: Final = 10.0
"""Longer than any API server would take to send a review (its own timeout is at most 5 s)."""
LINGER_SECONDS: Final = 1.0
MAX_WARNINGS: Final = 32
MAX_MESSAGE_CHARS: Final = 8192
OPERATIONS: Final = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
REVIEWED_KINDS: Final = frozenset(
    {(group, kind) for kind, row in TEMPLATE_KINDS.items() for group in row.groups}
    | {("aigis.dev", "AIWorkload"), ("aigis.dev", "AIClusterPolicy")}
)
"""(API group, kind) the validating webhook reviews: every kind that runs pods (the one table of
them, `TEMPLATE_KINDS`, AI-native CRDs included) and aigis's own resources."""
REVIEWED_SUBRESOURCES: Final = frozenset({"", EPHEMERAL_CONTAINERS})
"""The object itself, and the ephemeral containers `kubectl debug` adds to a running Pod."""
_INJECTION_MEMO_SIZE: Final = 1024
LIVE_READ_QUIET_SECONDS: Final = 1.0
"""After a live read found the cache current, the namespace is not read live again for this
long: a stream of refused creates (a ReplicaSet retrying, or a client hammering) must not turn
into as many reads of the API server, and anything newer reaches the cache by watch meanwhile."""


# --- pure: reading and writing AdmissionReviews -------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """The parts of `AdmissionReview.request` aigis reads, checked for type."""

    uid: str
    group: str
    version: str
    kind: str
    namespace: str | None
    name: str
    operation: str
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    dry_run: bool
    sub_resource: str = ""
    """`ephemeralcontainers` for `kubectl debug`; empty for the object itself."""
    by_node: bool = False
    """Sent on behalf of a kubelet (a mirror pod): never reviewed, never injected. Creates
    reach the server because their entries carry no matchConditions (see `webhooks`)."""

    @property
    def object_name(self) -> str:
        """The object's name, or its generateName while the API server has not named it."""
        metadata = (self.object or {}).get("metadata")
        if isinstance(metadata, Mapping):
            for key in ("name", "generateName"):
                value = metadata.get(key)
                if isinstance(value, str) and value:
                    return value
        return self.name


@dataclass(frozen=True, slots=True)
class BadReview:
    """Why a body is not a usable AdmissionReview; `uid` when one could still be read."""

    message: str
    uid: str | None = None


def parse_review(body: bytes) -> ReviewRequest | BadReview:
    """Read and check an AdmissionReview v1 body; never raises."""
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return BadReview(f"the body is not JSON: {error}")
    if not isinstance(review, dict):
        return BadReview("the body is not an AdmissionReview: expected a JSON object")
    request = review.get("request")
    if not isinstance(request, dict):
        return BadReview("the AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid or len(uid) > 256:
        return BadReview("request.uid must be a non-empty string")
    if review.get("apiVersion") != ADMISSION_API_VERSION or review.get("kind") != "AdmissionReview":
        return BadReview(
            f"only {ADMISSION_API_VERSION} AdmissionReview is served; "
            "set admissionReviewVersions: [v1]",
            uid,
        )
    kind = request.get("kind")
    if not isinstance(kind, dict) or not isinstance(kind.get("kind"), str):
        return BadReview("request.kind must be an object with a kind", uid)
    operation = request.get("operation")
    if operation not in OPERATIONS:
        return BadReview(f"request.operation must be one of {', '.join(sorted(OPERATIONS))}", uid)
    obj = request.get("object")
    old = request.get("oldObject")
    for field, value in (("object", obj), ("oldObject", old)):
        if value is not None and not isinstance(value, dict):
            return BadReview(f"request.{field} must be an object or null", uid)
    if obj is None and operation in ("CREATE", "UPDATE"):
        return BadReview(f"request.object is required for {operation}", uid)
    namespace = request.get("namespace")
    name = request.get("name")
    dry_run = request.get("dryRun")
    sub_resource = request.get("subResource")
    if sub_resource is not None and not isinstance(sub_resource, str):
        return BadReview("request.subResource must be a string", uid)
    if namespace is not None and not isinstance(namespace, str):
        return BadReview("request.namespace must be a string", uid)
    if name is not None and not isinstance(name, str):
        return BadReview("request.name must be a string", uid)
    if dry_run is not None and not isinstance(dry_run, bool):
        return BadReview("request.dryRun must be a boolean", uid)
    user = request.get("userInfo")
    groups = user.get("groups") if isinstance(user, dict) else None
    group = kind.get("group")
    version = kind.get("version")
    return ReviewRequest(
        uid=uid,
        group=group if isinstance(group, str) else "",
        version=version if isinstance(version, str) else "",
        kind=kind["kind"],
        namespace=namespace or None,
        name=name or "",
        operation=operation,
        object=obj,
        old_object=old,
        dry_run=bool(dry_run),
        sub_resource=sub_resource or "",
        by_node=isinstance(groups, list) and NODES_GROUP in groups,
    )


def review_response(
    uid: str,
    *,
    allowed: bool,
    code: int | None = None,
    message: str | None = None,
    warnings: Sequence[str] = (),
    patch: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """An AdmissionReview v1 answer."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if code is not None or message is not None:
        status: dict[str, Any] = {}
        if code is not None:
            status["code"] = code
            status["reason"] = {400: "BadRequest", 403: "Forbidden"}.get(code, "")
        if message is not None:
            status["message"] = _cap(message, MAX_MESSAGE_CHARS)
        response["status"] = status
    if warnings:
        response["warnings"] = list(warnings[:MAX_WARNINGS])
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(list(patch))).decode()
    return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": response}


def decision_response(uid: str, decision: Decision) -> dict[str, Any]:
    """The answer for an engine decision: a refusal with code 403, or allowed with warnings."""
    if decision.allowed:
        return review_response(uid, allowed=True, warnings=decision.warnings)
    return review_response(
        uid, allowed=False, code=403, message=decision.message(), warnings=decision.warnings
    )


def config_hash(workload: AIWorkload, *, trust_declared_regions: bool = True) -> str:
    """SHA-256 of the gateway config the operator writes for `workload` (same rendering, with
    the governing policies' answer on declared regions, as the operator passes it)."""
    text = dump_gateway_config(
        render_gateway_config(workload, trust_declared_regions=trust_declared_regions)
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _spec(obj: Mapping[str, Any] | None) -> Any:
    return (obj or {}).get("spec")


# --- the server ---------------------------------------------------------------------------


class AdmissionServer:
    """Answers AdmissionReviews from an `AdmissionView`; one instance per process."""

    def __init__(
        self,
        view: AdmissionView,
        *,
        injection: InjectionSettings,
        metrics: WebhookMetrics,
        aigis_namespace: str | None = None,
        audit: Callable[[AuditRecord], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        max_body_bytes: int = MAX_BODY_BYTES,
        read_timeout_seconds: float = READ_TIMEOUT_SECONDS,
        tls_ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self._view = view
        self._injection = injection
        self._metrics = metrics
        self._aigis_namespace = aigis_namespace
        self._audit = audit
        self._clock = clock
        self._monotonic = monotonic
        self._quiet_until: dict[str, float] = {}
        self._max_body = max_body_bytes
        self._read_timeout = read_timeout_seconds
        self._tls_ready = tls_ready
        self._excluded = set(UNGOVERNABLE_NAMESPACES)
        if aigis_namespace:
            self._excluded.add(aigis_namespace)
        self._injection_memo: OrderedDict[tuple[str, str, str, str], tuple[AIWorkload | None, str]]
        self._injection_memo = OrderedDict()
        self._reviewers = {VALIDATE_PATH: self.validate, MUTATE_PATH: self.mutate}

    def ready(self) -> bool:
        return self._tls_ready() and self._view.ready()

    def web_server(self) -> web.Server:
        """The aiohttp server to run this with (the process, tests and the benchmark share it).

        After refusing a body unread (413, 408), aiohttp drains what the client still sends
        before closing; one second instead of its default ten bounds what a misbehaving client
        can hold.
        """
        return web.Server(self.handle, access_log=None, lingering_time=LINGER_SECONDS)

    # --- HTTP ---------------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        reviewer = self._reviewers.get(path)
        if reviewer is None:
            if path == "/healthz":
                return web.Response(text="ok\n")
            if path == "/readyz":
                ready = self.ready()
                return web.Response(
                    status=200 if ready else 503, text="ok\n" if ready else "not ready\n"
                )
            return web.Response(
                status=404, text="not found: /validate, /mutate, /healthz, /readyz\n"
            )
        webhook = path.lstrip("/")
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST"}, text="use POST\n")
        if request.content_type != "application/json":
            self._metrics.reviews.labels(webhook, "other", "invalid").inc()
            return web.Response(status=415, text="send an AdmissionReview as application/json\n")
        started = time.perf_counter()
        try:
            # `asyncio.timeout`, not `wait_for`: no task of its own to schedule, so the body is
            # read in the handler's own turn of the event loop.
            async with asyncio.timeout(self._read_timeout):
                body = await read_capped(request.content, request.content_length, self._max_body)
        except TimeoutError:
            self._metrics.reviews.labels(webhook, "other", "invalid").inc()
            return web.Response(status=408, text="the body did not arrive in time\n")
        except (asyncio.IncompleteReadError, ConnectionError, aiohttp.ClientPayloadError):
            self._metrics.reviews.labels(webhook, "other", "invalid").inc()
            return web.Response(status=400, text="the body ended early\n")
        if body is None:
            self._metrics.reviews.labels(webhook, "other", "invalid").inc()
            return web.Response(status=413, text=f"the body exceeds {self._max_body} bytes\n")
        parsed = parse_review(body)
        if isinstance(parsed, BadReview):
            self._metrics.reviews.labels(webhook, "other", "invalid").inc()
            if parsed.uid is None:
                return web.Response(status=400, text=parsed.message + "\n")
            return _json(
                review_response(parsed.uid, allowed=False, code=400, message=parsed.message)
            )
        try:
            answer = await reviewer(parsed)
        except Exception:
            self._metrics.reviews.labels(
                webhook, self._metrics.kind_label(parsed.kind), "error"
            ).inc()
            log.exception(
                "reviewing %s %s/%s (%s) failed; the webhook's failurePolicy decides",
                parsed.kind,
                parsed.namespace or "",
                parsed.object_name,
                parsed.operation,
            )
            return web.Response(status=500, text="internal error while reviewing\n")
        self._metrics.review_seconds.labels(webhook).observe(time.perf_counter() - started)
        return _json(answer)

    # --- validation -----------------------------------------------------------------------

    async def validate(self, request: ReviewRequest) -> dict[str, Any]:
        """Review one object; see the module docstring for what is skipped."""
        kind_label = self._metrics.kind_label(request.kind)
        if not self._governed(request) or (
            request.operation == "UPDATE" and _spec(request.object) == _spec(request.old_object)
        ):
            self._metrics.reviews.labels("validate", kind_label, "skipped").inc()
            return review_response(request.uid, allowed=True)
        context = await self._context(request.namespace)
        decision = self._review(request, context)
        if _worth_a_live_read(decision) and request.namespace is not None:
            decision = await self._decide_live(request, context, decision)
        self._observe(request, decision, kind_label)
        return decision_response(request.uid, decision)

    def _governed(self, request: ReviewRequest) -> bool:
        return (
            not request.by_node
            and request.operation in ("CREATE", "UPDATE")
            and (request.group, request.kind) in REVIEWED_KINDS
            and request.sub_resource in REVIEWED_SUBRESOURCES
            and request.namespace not in self._excluded
        )

    async def _context(self, namespace: str | None) -> AdmissionContext:
        labels: Mapping[str, str] = {}
        workloads: Sequence[Mapping[str, Any]] = ()
        if namespace is not None:
            labels = await self._namespace_labels(namespace)
            workloads = self._view.workloads(namespace)
        return self._make_context(namespace, labels, workloads)

    def _make_context(
        self,
        namespace: str | None,
        labels: Mapping[str, str],
        workloads: Sequence[Mapping[str, Any]],
    ) -> AdmissionContext:
        return AdmissionContext(
            namespace=namespace,
            namespace_labels=labels,
            workloads=workloads,
            policies=self._view.policies(),
            aigis_namespace=self._aigis_namespace,
            now=self._clock(),
            injection=self._injection,
        )

    async def _namespace_labels(self, namespace: str) -> Mapping[str, str]:
        """Cached labels; a namespace the cache has not seen yet is read live (raises when the
        API server cannot say, so the failurePolicy decides rather than a guess)."""
        labels = self._view.namespace_labels(namespace)
        if labels is None:
            labels = await self._view.read_namespace_labels(namespace)
        return labels or {}

    async def _decide_live(
        self, request: ReviewRequest, cached: AdmissionContext, decision: Decision
    ) -> Decision:
        """The decision again on live AIWorkloads and namespace labels, if they differ."""
        namespace = request.namespace
        assert namespace is not None
        if not self._may_read_live(namespace):
            return decision
        try:
            labels, workloads = await asyncio.gather(
                self._view.read_namespace_labels(namespace), self._view.read_workloads(namespace)
            )
        except Exception as error:
            self._metrics.live_reads.labels("failed").inc()
            log.warning("live read of namespace %s failed (%s); using the cache", namespace, error)
            return decision
        labels = labels or {}
        if dict(labels) == dict(cached.namespace_labels) and _same_workloads(
            workloads, cached.workloads
        ):
            self._live_read_unchanged(namespace)
            return decision
        self._metrics.live_reads.labels("changed").inc()
        return self._review(request, self._make_context(namespace, labels, workloads))

    def _may_read_live(self, namespace: str) -> bool:
        until = self._quiet_until.get(namespace)
        if until is None:
            return True
        if self._monotonic() < until:
            self._metrics.live_reads.labels("skipped").inc()
            return False
        del self._quiet_until[namespace]
        return True

    def _live_read_unchanged(self, namespace: str) -> None:
        self._metrics.live_reads.labels("unchanged").inc()
        if len(self._quiet_until) > 10_000:
            self._quiet_until.clear()
        self._quiet_until[namespace] = self._monotonic() + LIVE_READ_QUIET_SECONDS

    @staticmethod
    def _review(request: ReviewRequest, context: AdmissionContext) -> Decision:
        assert request.object is not None
        return review_object(
            request.object,
            context,
            operation=request.operation,
            old_object=request.old_object,
            subresource=request.sub_resource or None,
        )

    def _observe(self, request: ReviewRequest, decision: Decision, kind_label: str) -> None:
        denied = set(decision.denied)
        for reason in decision.reasons:
            action = "deny" if reason in denied else "audit"
            self._metrics.findings.labels(self._metrics.rule_label(reason.rule), action).inc()
        if not decision.allowed:
            outcome = "denied"
        elif decision.warnings:
            outcome = "warned"
            self._metrics.audit_decisions.labels(kind_label).inc()
            if self._audit is not None and not request.dry_run:
                self._audit(
                    AuditRecord(
                        api_version=f"{request.group}/{request.version}".lstrip("/"),
                        kind=request.kind,
                        namespace=request.namespace,
                        name=request.object_name,
                        warnings=tuple(decision.warnings),
                    )
                )
        else:
            outcome = "allowed"
        self._metrics.reviews.labels("validate", kind_label, outcome).inc()

    # --- mutation -------------------------------------------------------------------------

    async def mutate(self, request: ReviewRequest) -> dict[str, Any]:
        """Inject the gateway into a Pod being created, when one AIWorkload covers it."""
        patch = await self._pod_patch(request)
        kind = self._metrics.kind_label(request.kind)
        try:
            answer = review_response(request.uid, allowed=True, patch=patch)
        except orjson.JSONEncodeError:
            # The patch pins parts of the pod as they are (JSON Patch `test`); a pod nested
            # deeper than JSON can be written back cannot be patched safely, and admitting it
            # uninjected would leave its keys in the app: refuse it, saying why.
            self._metrics.reviews.labels("mutate", kind, "unpatchable").inc()
            return review_response(
                request.uid,
                allowed=False,
                code=400,
                message="aigis cannot inject its gateway into this pod: parts of its spec nest "
                "deeper than a JSON Patch can carry (255 levels); flatten the nested values",
            )
        self._metrics.reviews.labels("mutate", kind, "patched" if patch else "skipped").inc()
        return answer

    async def _pod_patch(self, request: ReviewRequest) -> list[dict[str, Any]]:
        pod = request.object
        namespace = request.namespace
        if (
            request.operation != "CREATE"
            or request.by_node
            or request.sub_resource
            or (request.group, request.kind) != ("", "Pod")
            or pod is None
            or namespace is None
            or namespace in self._excluded
        ):
            return []
        template = pod_template(pod)
        if template is None:
            return []
        labels = template.labels
        covering = covering_workloads(labels, self._view.workloads(namespace))
        if not covering and looks_like_ai(ai_evidence(template)) and self._may_read_live(namespace):
            # Possibly covered by an AIWorkload created a moment ago that the cache lacks.
            try:
                covering = covering_workloads(labels, await self._view.read_workloads(namespace))
            except Exception as error:
                self._metrics.live_reads.labels("failed").inc()
                log.warning("live read of namespace %s failed (%s)", namespace, error)
            else:
                if covering:
                    self._metrics.live_reads.labels("changed").inc()
                else:
                    self._live_read_unchanged(namespace)
        if len(covering) != 1:
            # Nothing to inject, or an ambiguity the validating pass refuses with both names.
            return []
        namespace_labels = await self._namespace_labels(namespace)
        governing = governing_policies(
            self._view.policies(),
            namespace,
            namespace_labels,
            aigis_namespace=self._aigis_namespace,
        )
        workload, digest = self._injection_inputs(covering[0], trusts_declared_regions(governing))
        if workload is None:
            return []
        return render_pod_patch(
            pod,
            workload,
            settings=self._injection,
            config_hash=digest,
            opt_out_allowed=policy_bounds(governing).injection_opt_out_allowed,
        )

    def _injection_inputs(
        self, obj: Mapping[str, Any], trust_declared_regions: bool
    ) -> tuple[AIWorkload | None, str]:
        """The parsed AIWorkload and its config hash, memoised per resourceVersion."""
        metadata = obj.get("metadata") or {}
        version = metadata.get("resourceVersion")
        key = (
            str(metadata.get("namespace")),
            str(metadata.get("name")),
            str(version),
            str(trust_declared_regions),
        )
        if version is not None and key in self._injection_memo:
            self._injection_memo.move_to_end(key)
            return self._injection_memo[key]
        model, errors = parse_aiworkload(obj)
        result: tuple[AIWorkload | None, str] = (None, "")
        if model is not None and not errors:
            result = (model, config_hash(model, trust_declared_regions=trust_declared_regions))
        if version is not None:
            self._injection_memo[key] = result
            while len(self._injection_memo) > _INJECTION_MEMO_SIZE:
                self._injection_memo.popitem(last=False)
        return result


def _worth_a_live_read(decision: Decision) -> bool:
    """Whether the cache being behind could have caused this outcome: a refusal, or a shadow-AI
    warning (an AIWorkload created a moment ago would cover the pod)."""
    if not decision.allowed:
        return True
    return any(reason.rule == RULE_SHADOW_AI for reason in decision.reasons)


def _same_workloads(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    def versions(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
        return sorted(
            (
                str((w.get("metadata") or {}).get("uid")),
                str((w.get("metadata") or {}).get("resourceVersion")),
            )
            for w in items
        )

    return versions(a) == versions(b)


def _json(answer: Mapping[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(answer), content_type="application/json")
