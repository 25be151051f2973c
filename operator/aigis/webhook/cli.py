"""`aigis webhook`: run the admission webhook server.

Flags (and their environment variables) are read here and nowhere else; they become a
`WebhookSettings`, checked before anything starts.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click

from aigis.webhook.settings import (
    ALL_INTERFACES,
    DEFAULT_GATEWAY_IMAGE,
    FAILURE_POLICIES,
    WebhookSettings,
)
from aigis.webhook.webhooks import MAX_TIMEOUT_SECONDS


def parse_scope(text: str) -> tuple[tuple[str, str], ...]:
    """`a=b,c=d` as pairs; a term without `=` is refused with the flag's name."""
    pairs = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = term.partition("=")
        if not sep or not key:
            raise click.BadParameter(f'"{term}" is not key=value', param_hint="--scope")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


@click.command()
@click.option(
    "--listen",
    default=f"{ALL_INTERFACES}:9443",
    envvar="AIGIS_WEBHOOK_LISTEN",
    show_default=True,
    help="Address of the HTTPS server the API server calls (127.0.0.1:PORT for local runs).",
)
@click.option(
    "--metrics-listen",
    default=f"{ALL_INTERFACES}:8080",
    envvar="AIGIS_WEBHOOK_METRICS_LISTEN",
    show_default=True,
    help="Address of plain-HTTP /metrics, /healthz and /readyz; port 0 disables it.",
)
@click.option(
    "--webhook-url",
    default=None,
    envvar="AIGIS_WEBHOOK_URL",
    help="Register the webhooks with this base URL (https://IP:PORT), e.g. for a local "
    "cluster. Otherwise give --service-name.",
)
@click.option(
    "--service-name",
    default=None,
    envvar="AIGIS_WEBHOOK_SERVICE",
    help="Register the webhooks through this Service (in-cluster).",
)
@click.option(
    "--service-namespace",
    default=None,
    envvar="AIGIS_WEBHOOK_SERVICE_NAMESPACE",
    help="Namespace of --service-name; default: --aigis-namespace.",
)
@click.option("--service-port", default=443, type=int, show_default=True)
@click.option(
    "--aigis-namespace",
    default=None,
    envvar=["AIGIS_NAMESPACE", "POD_NAMESPACE"],
    help="The namespace aigis runs in: never reviewed; holds the certificate Secret.",
)
@click.option(
    "--certificate-secret",
    default="aigis-webhook-tls",
    envvar="AIGIS_WEBHOOK_CERTIFICATE_SECRET",
    show_default=True,
    help="Secret (in --aigis-namespace) where aigis keeps its CA and serving certificate.",
)
@click.option(
    "--cert-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="AIGIS_WEBHOOK_CERT_DIR",
    help="Use tls.crt, tls.key and ca.crt from this directory (cert-manager) instead; "
    "re-read when they change. aigis then creates no Secret.",
)
@click.option(
    "--gateway-image",
    default=DEFAULT_GATEWAY_IMAGE,
    envvar="AIGIS_GATEWAY_IMAGE",
    show_default=True,
    help="The image of the injected gateway sidecar.",
)
@click.option(
    "--configuration-name",
    default="aigis",
    envvar="AIGIS_WEBHOOK_CONFIGURATION_NAME",
    show_default=True,
    help="Name of the Validating- and MutatingWebhookConfiguration aigis keeps.",
)
@click.option(
    "--scope",
    default="",
    envvar="AIGIS_WEBHOOK_SCOPE",
    help="Review only namespaces (and AIClusterPolicies) carrying these labels, as "
    "key=value[,key=value]: canary roll-outs and tests. Default: everything but the system "
    "namespaces and aigis's own.",
)
@click.option(
    "--timeout-seconds",
    default=MAX_TIMEOUT_SECONDS,
    type=int,
    show_default=True,
    help=f"How long the API server waits for the webhook (1-{MAX_TIMEOUT_SECONDS}).",
)
@click.option(
    "--enforce-failure-policy",
    default="Fail",
    type=click.Choice(FAILURE_POLICIES),
    envvar="AIGIS_WEBHOOK_ENFORCE_FAILURE_POLICY",
    show_default=True,
    help="While the webhook is down: Fail refuses writes in namespaces an Enforce policy "
    "governs; Ignore admits them (aigis fails open everywhere). Other namespaces always admit.",
)
@click.option(
    "--max-body-bytes",
    default=7 * 1024 * 1024,
    type=int,
    show_default=True,
    help="Largest AdmissionReview accepted; larger ones are refused with 413 unread.",
)
@click.option(
    "--log-level",
    default="INFO",
    envvar="AIGIS_LOG_LEVEL",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def webhook(
    listen: str,
    metrics_listen: str,
    webhook_url: str | None,
    service_name: str | None,
    service_namespace: str | None,
    service_port: int,
    aigis_namespace: str | None,
    certificate_secret: str,
    cert_dir: Path | None,
    gateway_image: str,
    configuration_name: str,
    scope: str,
    timeout_seconds: int,
    enforce_failure_policy: str,
    max_body_bytes: int,
    log_level: str,
) -> None:
    """Run the admission webhook: refuse non-compliant AI workloads, inject the gateway."""
    settings = WebhookSettings(
        listen=listen,
        metrics_listen=metrics_listen,
        webhook_url=webhook_url,
        service_name=service_name,
        service_namespace=service_namespace,
        service_port=service_port,
        aigis_namespace=aigis_namespace,
        certificate_secret=certificate_secret,
        cert_dir=cert_dir,
        gateway_image=gateway_image,
        configuration_name=configuration_name,
        scope=parse_scope(scope),
        timeout_seconds=timeout_seconds,
        enforce_failure_policy=enforce_failure_policy,
        max_body_bytes=max_body_bytes,
        log_level=log_level.upper(),
    )
    if problems := settings.problems():
        raise click.UsageError("\n".join(str(p) for p in problems))
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    import uvloop

    uvloop.run(_run(settings))


async def _run(settings: WebhookSettings) -> None:
    from aigis.webhook.run import serve_webhook

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve_webhook(settings, stop=stop)
