"""kopf handlers: the shell around the pure reconcile decisions.

Importing this module registers the handlers with kopf's default registry. Each handler reads
the object kopf hands it, calls a pure function from `aigis.api` or `aigis.controller.status`,
and writes the outcome through kopf's `patch`. A handler must never raise on bad user input:
bad input becomes a status condition, and only API failures are left to kopf's retries.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from aigis import metrics
from aigis.api.validation import parse_aiworkload_spec
from aigis.controller.status import INVALID, build_aiworkload_status

GROUP = "aigis.dev"
VERSION = "v1alpha1"
AIWORKLOADS = "aiworkloads"

# Per-object validity, so the workload gauge counts each object once however often it reconciles.
_validity_by_uid: dict[str, bool] = {}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's bookkeeping under our own domain and out of `status`."""
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Handler outcomes are already in status and metrics; events are for compliance changes.
    settings.posting.level = 30  # logging.WARNING


def _was_invalid(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == INVALID and c.get("status") == "True"
        for c in status.get("conditions") or []
        if isinstance(c, Mapping)
    )


def _update_workload_gauges() -> None:
    metrics.WORKLOADS.labels(state="ready").set(sum(_validity_by_uid.values()))
    metrics.WORKLOADS.labels(state="invalid").set(
        len(_validity_by_uid) - sum(_validity_by_uid.values())
    )


@kopf.on.resume(GROUP, VERSION, AIWORKLOADS)
@kopf.on.create(GROUP, VERSION, AIWORKLOADS)
@kopf.on.update(GROUP, VERSION, AIWORKLOADS)
def reconcile_aiworkload(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Validate the spec and write status: Ready, or Invalid with every field to fix."""
    started = time.perf_counter()
    result = "error"
    try:
        _parsed, errors = parse_aiworkload_spec(dict(spec))
        new_status = build_aiworkload_status(
            generation=meta.get("generation"),
            errors=errors,
            previous_status=dict(status),
            now=datetime.now(UTC),
        )
        patch.status.update(new_status)
        became_invalid = bool(errors) and not _was_invalid(status)
        if became_invalid:
            ready = new_status["conditions"][0]
            kopf.warn(body, reason="InvalidSpec", message=ready["message"])
            logger.warning("invalid spec: %s", ready["message"])
        elif not errors and _was_invalid(status):
            kopf.info(body, reason="Valid", message="the spec is valid again")
        result = "invalid" if errors else "ready"
        if uid := meta.get("uid"):
            _validity_by_uid[uid] = not errors
            _update_workload_gauges()
    finally:
        metrics.RECONCILES.labels(resource=AIWORKLOADS, result=result).inc()
        metrics.RECONCILE_SECONDS.labels(resource=AIWORKLOADS).observe(
            time.perf_counter() - started
        )


@kopf.on.event(GROUP, VERSION, AIWORKLOADS)
def forget_deleted_aiworkload(event: kopf.RawEvent, meta: kopf.Meta, **_: Any) -> None:
    """Drop a deleted workload from the gauges.

    A raw event handler rather than `on.delete`, which would add a finalizer: nothing here must
    outlive the object, so deletion should not wait for the operator.
    """
    if (
        event.get("type") == "DELETED"
        and _validity_by_uid.pop(meta.get("uid") or "", None) is not None
    ):
        _update_workload_gauges()
