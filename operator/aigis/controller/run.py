"""Starting the operator process: logging, the metrics server, then kopf's reactor.

Kept apart from the handlers so importing the handlers (as tests do) starts nothing.
"""

from __future__ import annotations

import logging

import kopf
from prometheus_client import start_http_server

from aigis.controller.audit import AuditSettings
from aigis.settings import OperatorSettings


def run_operator(settings: OperatorSettings) -> None:
    """Run until SIGINT/SIGTERM; kopf finishes in-flight handlers before it returns."""
    kopf.configure(
        verbose=settings.log_level.upper() == "DEBUG",
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger().setLevel(settings.log_level.upper())
    from aigis.controller.handlers import register_handlers

    register_handlers(settings, AuditSettings(interval_seconds=settings.audit_seconds))
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_address)
    liveness = (
        f"http://{settings.health_address}:{settings.health_port}/healthz"
        if settings.health_port
        else None
    )
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        liveness_endpoint=liveness,
    )
