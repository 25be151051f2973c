"""What aigis's admission webhooks add to a pod create, through the real kube-apiserver.

The local control plane (`python -m aigis.devcluster up`) gets a governed namespace: an
AIClusterPolicy in Enforce (shadow AI Enforce, Pod Security restricted), the namespace labelled
for the restricted Pod Security Standard, and an AIWorkload covering the pods. `aigis webhook`
runs on 127.0.0.1 as a user would run it, publishing its configurations under a scope label
nothing carries (so they touch nobody). The benchmark registers copies of those configurations,
scoped to its namespace only, and removes them again, so the same pods are created with aigis
and without it in interleaved batches (with, without, without, with, ...), whatever else the
machine does meanwhile.

Each pod is created with server-side dry run (`dryRun=All`: admitted, mutated, validated, not
stored), one at a time over one keep-alive connection, and timed end to end. With the webhooks,
each pod is a mutate review (the gateway is injected) and then a validate review. Printed:

- p50/p99 of a pod create with and without aigis, and the difference (same run);
- the webhook server's own review times (its histogram: body read to answer ready), reviews
  per pod, and the connections the API server holds to the webhook (a count that stays put
  means no TLS handshake per call);
- where a create with aigis spends its time, cut at the webhook handler's start and end (the
  webhook runs through this file so each review's times are written down, CLOCK_MONOTONIC).

Experiments, each interleaved with the same batches: `--no-match-conditions`,
`--conditions-on-creates` (as registered before creates went without) and `--reinvocation Never`
register the entries changed so; `--null-webhook` replaces aigis by a
bare aiohttp TLS server that only allows (the floor of a Python webhook), `--null-patch` makes
it answer `/mutate` with aigis's own patch (the cost of the injection itself).

Run: `uv run --frozen python bench/admission_e2e.py` (`--pods 600 --batch 100`). Not collected
by pytest; numbers vary by machine and with what else runs on it. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from aigis.devcluster import cluster as devcluster
from aigis.kube import KubeClient, KubeError
from aigis.webhook.webhooks import (
    ADMISSION_GROUP,
    WebhookEndpoint,
    WebhookLayout,
    match_conditions,
)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.support: the tests' way of starting aigis processes
from tests.support import aigis_processes  # noqa: E402
from tests.support.aigis_processes import AigisProcess  # noqa: E402

RUN = uuid.uuid4().hex[:6]
BENCH_LABEL = "aigis.dev/bench-admission"
"""Carried by the benchmark's namespace: the registered copies select it."""
IDLE_SCOPE_LABEL = "aigis.dev/bench-admission-idle"
"""The scope `aigis webhook` publishes its own configurations under: carried by nothing."""
NAMESPACE = f"bench-adm-{RUN}"
AIGIS_NAMESPACE = f"bench-adm-sys-{RUN}"
POLICY = f"bench-adm-{RUN}"
CONFIGURATION = f"bench-adm-{RUN}"
APP = "bench-app"
APP_IMAGE = "registry.invalid/shop/support-bot:1.4.2"
GATEWAY_IMAGE = "registry.invalid/aigis/aigis:bench"
GATEWAY_CONTAINER = "aigis-gateway"
KINDS = ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")


# --- manifests --------------------------------------------------------------------------------


def policy() -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIClusterPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "namespaceSelector": {"matchLabels": {BENCH_LABEL: RUN}},
            "enforcement": "Enforce",
            "shadowAI": "Enforce",
            "podSecurity": "restricted",
        },
    }


def aiworkload() -> dict[str, Any]:
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": APP}},
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
            "forensics": {"captureOnTermination": False},
        },
    }


def pod(name: str, *, automount: bool) -> dict[str, Any]:
    """A pod the restricted Pod Security Standard and the policy admit, covered by the
    AIWorkload (so the gateway is injected)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": APP}},
        "spec": {
            "automountServiceAccountToken": automount,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "app",
                    "image": APP_IMAGE,
                    "env": [
                        {
                            "name": "OPENAI_API_KEY",
                            "valueFrom": {
                                "secretKeyRef": {"name": "openai-api-key", "key": "api-key"}
                            },
                        }
                    ],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def registered_copy(
    manifest: Mapping[str, Any], *, variant: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The configuration `aigis webhook` published, scoped to the benchmark's namespace.

    Only this run's entries are kept (the Enforce entry of its policy, the default entry,
    the policies entry); the idle scope requirement becomes the benchmark's label. `variant`
    overrides fields of every entry (an experiment: `{"matchConditions": []}`).
    """
    wanted = (f"enforce-{POLICY}.", "default.", "policies.")
    webhooks = []
    for entry in manifest["webhooks"]:
        if not entry["name"].startswith(wanted):
            continue
        entry = copy.deepcopy(entry)
        for selector_name in ("namespaceSelector", "objectSelector"):
            selector = entry.get(selector_name) or {}
            for expression in selector.get("matchExpressions", []):
                if expression["key"] == IDLE_SCOPE_LABEL:
                    expression["key"] = BENCH_LABEL
            labels = selector.get("matchLabels") or {}
            if IDLE_SCOPE_LABEL in labels:
                labels[BENCH_LABEL] = labels.pop(IDLE_SCOPE_LABEL)
        for key, value in (variant or {}).items():
            if key == "reinvocationPolicy" and "reinvocationPolicy" not in entry:
                continue  # a validating entry
            entry[key] = value
        webhooks.append(entry)
    return {
        "apiVersion": manifest["apiVersion"],
        "kind": manifest["kind"],
        "metadata": {"name": CONFIGURATION},
        "webhooks": webhooks,
    }


def injected(created: Mapping[str, Any] | None) -> bool:
    """Whether aigis's gateway is in a created pod (a native sidecar: an init container)."""
    spec = (created or {}).get("spec") or {}
    containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
    return any(c.get("name") == GATEWAY_CONTAINER for c in containers)


# --- the webhook process ----------------------------------------------------------------------


@dataclass
class Webhook:
    running: AigisProcess
    times: Path

    @property
    def port(self) -> int:
        return self.running.port

    def get(self, path: str) -> str:
        url = f"http://127.0.0.1:{self.running.metrics_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def ready(self) -> bool:
        if self.running.process.poll() is not None:
            raise SystemExit("aigis webhook exited:\n" + self.running.log.read_text()[-4000:])
        return self.running.ready()

    def connections(self) -> str:
        """TCP connections to the HTTPS port now: established, and closed within the last
        minute (TIME-WAIT: each was a TLS handshake that was not reused)."""
        counts = []
        for state in ("established", "time-wait"):
            out = subprocess.run(
                ["ss", "-Htn", "state", state, f"( sport = :{self.port} or dport = :{self.port} )"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            counts.append(len([line for line in out.splitlines() if line.strip()]))
        return f"{counts[0]} open/{counts[1]} closed"


def start_webhook(kubeconfig: Path, workdir: Path) -> Webhook:
    """`aigis webhook`, run through this script's --serve-webhook (which times each review)."""
    times = workdir / "handler-times"
    running = aigis_processes.start_webhook(
        kubeconfig,
        workdir / "webhook.log",
        aigis_namespace=AIGIS_NAMESPACE,
        configuration_name=f"{CONFIGURATION}-idle",
        scope=f"{IDLE_SCOPE_LABEL}={RUN}",
        gateway_image=GATEWAY_IMAGE,
        extra=["--log-level", "warning"],
        command=[sys.executable, __file__, "--serve-webhook", str(times), "--"],
    )
    return Webhook(running, times)


def serve_null_webhook(times: Path, cert: Path, key: Path, port: int, patch: str) -> None:
    """An experiment: the least a Python webhook can do (aiohttp, uvloop, TLS, orjson, the
    same server settings as aigis's): read the review, allow it, no engine; `/mutate` answers
    with `patch` (base64 JSON Patch) when it is not empty."""
    import ssl

    import orjson
    import uvloop
    from aiohttp import web

    out = times.open("a", buffering=1)

    async def handle(request: web.BaseRequest) -> web.Response:
        started = time.monotonic()
        review = orjson.loads(await request.read())
        verdict: dict[str, Any] = {"uid": review["request"]["uid"], "allowed": True}
        if patch and request.path == "/mutate":
            verdict.update(patchType="JSONPatch", patch=patch)
        answer = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": verdict,
        }
        response = web.Response(body=orjson.dumps(answer), content_type="application/json")
        out.write(f"{request.path} {started:.6f} {time.monotonic():.6f}\n")
        return response

    async def serve() -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        runner = web.ServerRunner(web.Server(handle, access_log=None), handle_signals=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        await asyncio.Event().wait()

    uvloop.run(serve())


def serve_webhook(times: Path, argv: list[str]) -> None:
    """`aigis webhook` with each review's handler start and end written to `times`
    (CLOCK_MONOTONIC, which the benchmark process reads too), to split a pod create's time."""
    from aigis.cli import main as aigis_main
    from aigis.webhook.server import AdmissionServer

    out = times.open("a", buffering=1)
    handle = AdmissionServer.handle

    async def timed(self: AdmissionServer, request: Any) -> Any:
        started = time.monotonic()
        response = await handle(self, request)
        out.write(f"{request.path} {started:.6f} {time.monotonic():.6f}\n")
        return response

    AdmissionServer.handle = timed  # type: ignore[method-assign]
    aigis_main(["webhook", *argv])


def aigis_patch() -> str:
    """The JSON Patch aigis answers for the benchmark's pods (base64), computed here the way
    its server does: the same for every pod of the benchmark."""
    import base64

    import orjson

    from aigis.admission.mutation import InjectionSettings, render_pod_patch
    from aigis.api.validation import parse_aiworkload
    from aigis.webhook.server import config_hash

    workload = aiworkload()
    workload["metadata"].update(uid="bench", resourceVersion="1")
    model, errors = parse_aiworkload(workload)
    assert model is not None, errors
    patch = render_pod_patch(
        pod("any", automount=False),
        model,
        settings=InjectionSettings(gateway_image=GATEWAY_IMAGE),
        config_hash=config_hash(model),
        opt_out_allowed=False,
    )
    return base64.b64encode(orjson.dumps(patch)).decode()


async def start_null_webhook(
    kube: KubeClient, workdir: Path, *, patch: str
) -> tuple[subprocess.Popen[bytes], int]:
    """The null webhook, serving with the certificate aigis keeps in its Secret."""
    import base64

    secret = await kube.request(
        "GET", f"/api/v1/namespaces/{AIGIS_NAMESPACE}/secrets/aigis-webhook-tls"
    )
    assert secret is not None, "aigis keeps no certificate Secret"
    cert, key = workdir / "tls.crt", workdir / "tls.key"
    cert.write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
    key.write_bytes(base64.b64decode(secret["data"]["tls.key"]))
    port = aigis_processes.free_port()
    argv = [sys.executable, __file__, "--serve-null-webhook", str(workdir / "null-times")]
    process = subprocess.Popen([*argv, str(cert), str(key), str(port), patch])
    await asyncio.sleep(1.5)
    return process, port


# --- metrics ----------------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def delta(
    before: Mapping[Any, float], after: Mapping[Any, float]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def histogram_quantiles(
    values: Mapping[tuple[str, tuple[tuple[str, str], ...]], float],
    name: str,
    match: Mapping[str, str],
    quantiles: Iterable[float] = (0.5, 0.99),
) -> tuple[int, list[float]]:
    """(observations, quantiles in ms) of a histogram's bucket deltas, interpolated in a bucket;
    buckets of every label set matching `match` are summed."""
    buckets: dict[float, float] = {}
    for (sample, labels), value in values.items():
        if sample != name + "_bucket":
            continue
        label_map = dict(labels)
        if any(label_map.get(k) != v for k, v in match.items()):
            continue
        bound = float(label_map["le"])
        buckets[bound] = buckets.get(bound, 0.0) + value
    bounds = sorted(buckets)
    total = buckets.get(float("inf"), 0.0)
    result: list[float] = []
    for q in quantiles:
        if total <= 0:
            result.append(float("nan"))
            continue
        rank, lower, below = q * total, 0.0, 0.0
        for bound in bounds:
            if buckets[bound] >= rank:
                if bound == float("inf"):
                    result.append(lower * 1000)
                else:
                    inside = buckets[bound] - below
                    fraction = (rank - below) / inside if inside else 1.0
                    result.append((lower + (bound - lower) * fraction) * 1000)
                break
            lower, below = bound, buckets[bound]
    return int(total), result


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Side:
    """One side of the comparison: its pod-create latencies and the metrics deltas."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    webhook: dict[Any, float] = field(default_factory=dict)
    windows: list[tuple[float, float]] = field(default_factory=list)
    """When each create was sent and answered (CLOCK_MONOTONIC)."""

    def add(self, target: dict[Any, float], values: Mapping[Any, float]) -> None:
        for key, value in values.items():
            target[key] = target.get(key, 0.0) + value


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Bench:
    def __init__(self, kube: KubeClient, webhook: Webhook, args: argparse.Namespace) -> None:
        self.kube = kube
        self.webhook = webhook
        self.args = args
        self.published: list[dict[str, Any]] = []
        self.count = 0

    async def create(self, *, dry_run: bool = True) -> dict[str, Any] | None:
        self.count += 1
        body = pod(f"bench-{RUN}-{self.count}", automount=self.args.automount)
        query = {"dryRun": "All"} if dry_run else {}
        return await self.kube.request(
            "POST", f"/api/v1/namespaces/{NAMESPACE}/pods", query=query, body=body
        )

    async def reviewed(self) -> bool:
        """Whether a pod create now reaches the webhook."""
        before = self.reviews()
        with contextlib.suppress(KubeError):  # the two configurations switched one by one
            await self.create()
        return self.reviews() > before

    def reviews(self) -> int:
        try:
            return self.webhook.times.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    async def register(self, manifests: list[dict[str, Any]] | None) -> None:
        """Register `manifests`, or remove what is registered (None); wait until it applies."""
        on = manifests is not None
        # Injection before validation appears, and goes after it: a pod validated but not
        # injected is refused (its provider key would stay in the app).
        order = list(reversed(manifests)) if manifests is not None else self.published
        for manifest in order:
            path = f"/apis/{ADMISSION_GROUP}/v1/{manifest['kind'].lower()}s"
            if on:
                await self.kube.request("POST", path, body=manifest)
            else:
                await self.kube.request("DELETE", f"{path}/{CONFIGURATION}")
        deadline = time.monotonic() + 30
        while await self.reviewed() != on:
            if time.monotonic() > deadline:
                reviews = [
                    line
                    for line in self.webhook.get("/metrics").splitlines()
                    if line.startswith("aigis_webhook_reviews_total")
                ]
                raise SystemExit(
                    f"the API server did not {'start' if on else 'stop'} calling aigis; "
                    f"the webhook's reviews: {reviews}"
                )
            await asyncio.sleep(0.05)
        # The API server's informer has switched; a few more creates warm the new path.
        for _ in range(5):
            await self.create()

    async def batch(self, side: Side, count: int, with_aigis: bool) -> None:
        webhook_before = samples(self.webhook.get("/metrics"))
        for _ in range(count):
            started = time.monotonic()
            try:
                created = await self.create()
            except KubeError as error:
                side.failures += 1
                if side.failures <= 3:
                    print(f"  create failed: {error}", file=sys.stderr)
                continue
            ended = time.monotonic()
            side.latencies.append(ended - started)
            side.windows.append((started, ended))
            if self.args.null_webhook and not self.args.null_patch:
                continue
            if injected(created) != with_aigis:
                raise SystemExit(f"a pod was {'not ' if with_aigis else ''}injected")
        side.add(side.webhook, delta(webhook_before, samples(self.webhook.get("/metrics"))))


SEGMENTS = (
    "request in, to the mutate call",
    "mutate: in the webhook server",
    "patch applied, to the validate call",
    "validate: in the webhook server",
    "validate answered, to the reply",
)


def split_creates(windows: list[tuple[float, float]], times: Path) -> dict[str, list[float]]:
    """Each create's time cut at the webhook server's handler start and end: creates are sent
    one at a time, so the reviews inside a create's window are its own."""
    reviews = []
    for line in times.read_text().splitlines():
        path, start, end = line.split()
        reviews.append((float(start), float(end), path))
    reviews.sort()
    segments: dict[str, list[float]] = {name: [] for name in SEGMENTS}
    index = 0
    for sent, answered in windows:
        while index < len(reviews) and reviews[index][0] < sent:
            index += 1
        inside = []
        while index < len(reviews) and reviews[index][1] <= answered:
            inside.append(reviews[index])
            index += 1
        if [path for _, _, path in inside] != ["/mutate", "/validate"]:
            continue
        (m_start, m_end, _), (v_start, v_end, _) = inside
        cuts = (sent, m_start, m_end, v_start, v_end, answered)
        for name, a, b in zip(SEGMENTS, cuts, cuts[1:], strict=False):
            segments[name].append(b - a)
    return segments


def report(
    with_: Side, without: Side, connections: list[str], segments: dict[str, list[float]]
) -> None:
    def row(label: str, values: list[float]) -> str:
        return (
            f"{label:<28} p50 {percentile(values, 0.5):7.2f} ms"
            f"   p99 {percentile(values, 0.99):7.2f} ms"
            f"   mean {statistics.fmean(values) * 1000:6.2f} ms   n={len(values)}"
        )

    print()
    print("pod create (dryRun=All), one at a time, through kube-apiserver")
    print(row("without aigis", without.latencies))
    print(row("with aigis", with_.latencies))
    d50 = percentile(with_.latencies, 0.5) - percentile(without.latencies, 0.5)
    d99 = percentile(with_.latencies, 0.99) - percentile(without.latencies, 0.99)
    print(f"{'aigis adds':<28} p50 {d50:+7.2f} ms   p99 {d99:+7.2f} ms   (goal: <= 2 / <= 5 ms)")
    if with_.failures or without.failures:
        print(f"failures: with {with_.failures}, without {without.failures}")
    pods = max(len(with_.latencies), 1)
    print()
    print("the webhook server's own time per review (aigis_webhook_review_duration_seconds)")
    for webhook in ("mutate", "validate"):
        n, (p50, p99) = histogram_quantiles(
            with_.webhook, "aigis_webhook_review_duration_seconds", {"webhook": webhook}
        )
        print(
            f"  {webhook:<10} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
            f"   reviews {n} ({n / pods:.2f} per pod)"
        )
    print(f"connections to the webhook after each batch with aigis: {', '.join(connections)}")
    counted = len(segments[SEGMENTS[0]])
    if counted:
        print()
        print(f"where a create with aigis spends its time ({counted} creates with one mutate then")
        print("one validate review; the webhook server's handler timestamps, same clock):")
        for name in SEGMENTS:
            values = segments[name]
            print(
                f"  {name:<40} p50 {percentile(values, 0.5):6.2f} ms"
                f"   p99 {percentile(values, 0.99):6.2f} ms"
            )


async def run(args: argparse.Namespace) -> None:
    layout = devcluster.up()
    kubectl = str(layout.binary("kubectl"))
    kubeconfig = layout.kubeconfig

    def ctl(*argv: str, input: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [kubectl, f"--kubeconfig={kubeconfig}", *argv],
            input=input,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and done.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(argv)}: {done.stderr}")
        return done.stdout

    ctl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    ctl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    workdir = Path(tempfile.mkdtemp(prefix="aigis-admission-e2e-"))
    webhook: Webhook | None = None
    null: subprocess.Popen[bytes] | None = None
    async with KubeClient(configuration, user_agent="aigis-bench", timeout=30) as kube:
        try:
            for name, labels in (
                (AIGIS_NAMESPACE, {}),
                (
                    NAMESPACE,
                    {
                        BENCH_LABEL: RUN,
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                ),
            ):
                await kube.request(
                    "POST",
                    "/api/v1/namespaces",
                    body={
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": name, "labels": labels},
                    },
                )
            await kube.request("POST", "/apis/aigis.dev/v1alpha1/aiclusterpolicies", body=policy())
            await kube.request(
                "POST",
                f"/apis/aigis.dev/v1alpha1/namespaces/{NAMESPACE}/aiworkloads",
                body=aiworkload(),
            )
            deadline = time.monotonic() + 60
            while (
                await kube.request("GET", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default")
                is None
            ):
                if time.monotonic() > deadline:
                    raise SystemExit("no default ServiceAccount in the benchmark namespace")
                await asyncio.sleep(0.2)
            webhook = start_webhook(kubeconfig, workdir)
            deadline = time.monotonic() + 60
            while not webhook.ready():
                if time.monotonic() > deadline:
                    raise SystemExit("aigis webhook not ready:\n" + webhook.log.read_text()[-4000:])
                await asyncio.sleep(0.2)
            bench = Bench(kube, webhook, args)
            variant: dict[str, Any] = {}
            if args.reinvocation:
                variant["reinvocationPolicy"] = args.reinvocation
            if args.no_match_conditions:
                variant["matchConditions"] = []
            if args.conditions_on_creates:
                # How aigis registered its entries before creates went without conditions.
                variant["matchConditions"] = match_conditions(
                    WebhookLayout(
                        CONFIGURATION, WebhookEndpoint(), None, aigis_namespace=AIGIS_NAMESPACE
                    ),
                    updates=True,
                )
            label = ", ".join(
                flag
                for flag, on in (
                    (f"reinvocationPolicy {args.reinvocation}", args.reinvocation),
                    ("no matchConditions", args.no_match_conditions),
                    ("matchConditions on creates too", args.conditions_on_creates),
                )
                if on
            )
            if variant:
                print(f"experiment: every entry registered with {label}")
            deadline = time.monotonic() + 60
            while True:
                found = [
                    await kube.request(
                        "GET", f"/apis/{ADMISSION_GROUP}/v1/{kind}/{CONFIGURATION}-idle"
                    )
                    for kind in KINDS
                ]
                published = [registered_copy(m) for m in found if m is not None]
                names = [w["name"] for m in published for w in m["webhooks"]]
                if len(published) == 2 and any(n.startswith(f"enforce-{POLICY}.") for n in names):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"aigis did not publish an Enforce entry for {POLICY}: {names}"
                    )
                await asyncio.sleep(0.2)
            experiment = (
                [registered_copy(m, variant=variant) for m in found if m is not None]
                if variant
                else None
            )
            if args.null_webhook:
                null, null_port = await start_null_webhook(
                    kube, workdir, patch=aigis_patch() if args.null_patch else ""
                )
                for manifest in published:
                    for entry in manifest["webhooks"]:
                        url = entry["clientConfig"]["url"]
                        entry["clientConfig"]["url"] = url.replace(
                            f":{webhook.port}/", f":{null_port}/"
                        )
                webhook.times = workdir / "null-times"
                print(
                    "experiment: the entries call a null webhook (allow, "
                    + ("aigis's patch" if args.null_patch else "no patch")
                    + ")"
                )
            bench.published = published
            print(f"registered entries: {', '.join(names)}")
            with_, without, variant_side = Side(), Side(), Side()
            connections: list[str] = []
            rounds = max(1, args.pods // args.batch)
            plan: list[tuple[Side, list[dict[str, Any]] | None]] = [(with_, published)]
            if experiment is not None:
                plan.append((variant_side, experiment))
            for index in range(rounds):
                order = plan[index % len(plan) :] + plan[: index % len(plan)]
                if index % 2:
                    order.reverse()
                for side, manifests in order:
                    # Always through "without": the switch is seen when reviews stop and start.
                    for current, registered in ((side, manifests), (without, None)):
                        await bench.register(registered)
                        await bench.batch(current, args.batch, registered is not None)
                        if registered is not None:
                            connections.append(webhook.connections())
                print(
                    f"  round {index + 1}/{rounds}: with p50 {percentile(with_.latencies, 0.5):.2f}"
                    f" ms, without p50 {percentile(without.latencies, 0.5):.2f} ms"
                    + (
                        f", variant p50 {percentile(variant_side.latencies, 0.5):.2f} ms"
                        if experiment is not None
                        else ""
                    ),
                    file=sys.stderr,
                )
            report(with_, without, connections, split_creates(with_.windows, webhook.times))
            if experiment is not None:
                print()
                print(f"experiment ({label}), interleaved with the above:")
                print(
                    f"  with aigis (variant)  p50 {percentile(variant_side.latencies, 0.5):7.2f} ms"
                    f"   p99 {percentile(variant_side.latencies, 0.99):7.2f} ms"
                    f"   n={len(variant_side.latencies)}"
                )
                for name, values in split_creates(variant_side.windows, webhook.times).items():
                    if values:
                        print(f"  {name:<40} p50 {percentile(values, 0.5):6.2f} ms")
        finally:
            for kind in KINDS:
                for name in (CONFIGURATION, f"{CONFIGURATION}-idle"):
                    with contextlib.suppress(KubeError):
                        await kube.request("DELETE", f"/apis/{ADMISSION_GROUP}/v1/{kind}/{name}")
            if null is not None:
                null.terminate()
                null.wait()
            if webhook is not None:
                webhook.running.stop()
            for path in (
                f"/apis/aigis.dev/v1alpha1/aiclusterpolicies/{POLICY}",
                f"/api/v1/namespaces/{NAMESPACE}",
                f"/api/v1/namespaces/{AIGIS_NAMESPACE}",
            ):
                with contextlib.suppress(KubeError):
                    await kube.request("DELETE", path)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-null-webhook":
        times, cert, key, port, patch = sys.argv[2:7]
        serve_null_webhook(Path(times), Path(cert), Path(key), int(port), patch)
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-webhook":
        serve_webhook(Path(sys.argv[2]), sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=600, help="pod creates per side")
    parser.add_argument("--batch", type=int, default=100, help="pods per batch")
    parser.add_argument(
        "--automount",
        action="store_true",
        help="pods mount the ServiceAccount token (the in-tree plugin then edits the pod after "
        "aigis's patch)",
    )
    parser.add_argument(
        "--reinvocation",
        choices=("IfNeeded", "Never"),
        help="experiment: register the mutating entries with this reinvocationPolicy",
    )
    parser.add_argument(
        "--null-webhook",
        action="store_true",
        help="experiment: register a webhook that only allows (no engine, no patch), served by "
        "a bare aiohttp TLS server with aigis's certificate: the floor of a Python webhook",
    )
    parser.add_argument(
        "--null-patch",
        action="store_true",
        help="with --null-webhook: /mutate answers with the patch aigis would (computed once)",
    )
    parser.add_argument(
        "--conditions-on-creates",
        action="store_true",
        help="experiment: every entry with the update entries' matchConditions (as before)",
    )
    parser.add_argument(
        "--no-match-conditions",
        action="store_true",
        help="experiment: register the entries without their matchConditions",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
