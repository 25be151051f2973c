"""Starting the webhook process: certificates, caches, the HTTPS server, the configurations.

The order matters for the cluster's safety. The serving certificate is loaded before the server
listens; the configurations are applied only once the server listens and the cache has listed
everything, so the API server is never pointed at a server that cannot answer (which in
Enforce namespaces would refuse every write). On shutdown the configurations stay: a restarting
webhook must keep failing closed where it is meant to.

Kept apart from the server so importing the server (as tests and the benchmark do) starts
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import generate_latest

from aigis.admission.mutation import InjectionSettings
from aigis.kube import KubeClient
from aigis.webhook.cache import AdmissionCache
from aigis.webhook.certificates import (
    CertificateKeeper,
    CertificateSource,
    DirectoryCertificateSource,
    ReloadableTLS,
    SecretCertificateSource,
    SourceUpdate,
    certificate_expiries,
    serving_hosts,
)
from aigis.webhook.events import AuditEventRecorder
from aigis.webhook.metrics import WebhookMetrics
from aigis.webhook.server import AdmissionServer
from aigis.webhook.settings import WebhookSettings
from aigis.webhook.webhooks import ConfigurationPublisher, WebhookEndpoint, WebhookLayout

log = logging.getLogger("aigis.webhook")


def webhook_layout(settings: WebhookSettings) -> WebhookLayout:
    """The configurations' shape from the settings; the CA bundle is filled in at run time."""
    endpoint = (
        WebhookEndpoint(url=settings.webhook_url)
        if settings.webhook_url is not None
        else WebhookEndpoint(
            service_name=settings.service_name,
            service_namespace=settings.resolved_service_namespace,
            service_port=settings.service_port,
        )
    )
    return WebhookLayout(
        configuration_name=settings.configuration_name,
        endpoint=endpoint,
        ca_bundle=None,
        aigis_namespace=settings.aigis_namespace,
        timeout_seconds=settings.timeout_seconds,
        enforce_failure_policy="Ignore" if settings.enforce_failure_policy == "Ignore" else "Fail",
        scope=settings.scope,
    )


def certificate_source(settings: WebhookSettings, kube: KubeClient) -> CertificateSource:
    if settings.cert_dir is not None:
        return DirectoryCertificateSource(settings.cert_dir)
    assert settings.aigis_namespace is not None, "settings.problems() requires it"
    url_host = urlsplit(settings.webhook_url).hostname if settings.webhook_url else None
    hosts = serving_hosts(
        service_name=settings.service_name,
        service_namespace=settings.resolved_service_namespace,
        url_host=url_host,
    )
    return SecretCertificateSource(
        kube, settings.aigis_namespace, settings.certificate_secret, hosts
    )


async def serve_webhook(
    settings: WebhookSettings,
    *,
    kube: KubeClient | None = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[int, int], None] | None = None,
) -> None:
    """Run the webhook until `stop` is set (or the task is cancelled).

    `ready` is called with the HTTPS and metrics ports once the configurations are applied.
    """
    # Every call is inside an admission review's budget or off the request path; 10 s bounds
    # the latter (list pages and live reads set their own).
    kube = kube or KubeClient.from_environment(user_agent="aigis-webhook", timeout=10.0)
    metrics = WebhookMetrics()
    cache: AdmissionCache | None = None
    publisher = ConfigurationPublisher(
        kube,
        webhook_layout(settings),
        policies=lambda: cache.policies() if cache is not None else (),
        applies=metrics.configuration_applies,
    )
    cache = AdmissionCache(kube, metrics, on_policies_changed=publisher.policies_changed)
    tls = ReloadableTLS()

    def observe(update: SourceUpdate) -> None:
        for name, expiry in certificate_expiries(update.material).items():
            metrics.certificate_expiry.labels(name).set(expiry.timestamp())
        for name in update.renewed:
            metrics.certificate_rotations.labels(name).inc()

    keeper = CertificateKeeper(
        certificate_source(settings, kube),
        tls,
        publish_ca_bundle=publisher.set_ca_bundle,
        observe=observe,
        clock=lambda: datetime.now(UTC),
        # Mounted files change whenever cert-manager renews; aigis's own Secret changes only
        # when a replica rotates, and renewal times are known in advance.
        check_interval=timedelta(minutes=1 if settings.cert_dir is not None else 5),
    )
    events = AuditEventRecorder(kube, metrics)
    server = AdmissionServer(
        cache,
        injection=InjectionSettings(gateway_image=settings.gateway_image),
        metrics=metrics,
        aigis_namespace=settings.aigis_namespace,
        audit=events.record,
        max_body_bytes=settings.max_body_bytes,
        tls_ready=lambda: tls.loaded,
    )
    runner = web.ServerRunner(server.web_server(), handle_signals=False, shutdown_timeout=5)
    metrics_runner = web.ServerRunner(
        web.Server(_metrics_handler(server, metrics), access_log=None), handle_signals=False
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        cache.start()
        await keeper.check()
        await runner.setup()
        host, port = settings.listen_address
        await web.TCPSite(runner, host, port, ssl_context=tls.context).start()
        metrics_port = 0
        metrics_host, wanted_metrics_port = settings.metrics_address
        if wanted_metrics_port:
            await metrics_runner.setup()
            await web.TCPSite(metrics_runner, metrics_host, wanted_metrics_port).start()
            metrics_port = _bound_port(metrics_runner)
        https_port = _bound_port(runner)
        log.info("admission webhook listening on %s:%d (HTTPS)", host, https_port)
        await cache.wait_synced()
        await publisher.activate()
        tasks = [
            asyncio.create_task(keeper.run(), name="certificates"),
            asyncio.create_task(events.run(), name="audit events"),
            asyncio.create_task(publisher.run(), name="webhook configurations"),
        ]
        # What exists now lives as long as the process; keep it out of the collector's scans.
        gc.collect()
        gc.freeze()
        if ready is not None:
            ready(https_port, metrics_port)
        await (stop or asyncio.Event()).wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await runner.cleanup()
        with contextlib.suppress(Exception):
            await metrics_runner.cleanup()
        await cache.stop()
        await kube.close()


def _bound_port(runner: web.BaseRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the server has no TCP address")


def _metrics_handler(
    server: AdmissionServer, metrics: WebhookMetrics
) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/metrics":
            return web.Response(
                body=generate_latest(metrics.registry),
                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
            )
        if request.path == "/healthz":
            return web.Response(text="ok\n")
        if request.path == "/readyz":
            ready = server.ready()
            return web.Response(
                status=200 if ready else 503, text="ok\n" if ready else "not ready\n"
            )
        return web.Response(status=404, text="not found: /metrics, /healthz, /readyz\n")

    return handle
