"""Which pods the forensics finalizer holds in Terminating, and for how long (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aigis.controller.forensics import (
    EVIDENCE_NOT_CAPTURED,
    HeldPod,
    HoldSummary,
    held_pods,
    release_event,
    release_message,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
FINALIZER = "aigis.dev/forensics"


def stamp(offset_seconds: float) -> str:
    return (NOW + timedelta(seconds=offset_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str = "bot-1",
    *,
    deleted: str | None = None,
    finalizers: Any = (FINALIZER,),
    namespace: str = "shop",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if finalizers is not None:
        meta["finalizers"] = list(finalizers) if isinstance(finalizers, tuple) else finalizers
    if deleted is not None:
        meta["deletionTimestamp"] = deleted
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta}


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        pytest.param([pod()], [], id="running-pod-is-not-held"),
        pytest.param(
            [pod(deleted=stamp(-90))], [HeldPod("shop", "bot-1", 90.0)], id="past-deletion-time"
        ),
        pytest.param(
            [pod(deleted=stamp(0))], [HeldPod("shop", "bot-1", 0.0)], id="deleted-exactly-now"
        ),
        pytest.param([pod(deleted=stamp(20))], [], id="still-in-its-grace-period"),
        pytest.param([pod(deleted=stamp(-90), finalizers=())], [], id="no-finalizer"),
        pytest.param(
            [pod(deleted=stamp(-90), finalizers=("example.com/other",))],
            [],
            id="only-another-finalizer",
        ),
        pytest.param(
            [pod(deleted=stamp(-90), finalizers=("example.com/other", FINALIZER))],
            [HeldPod("shop", "bot-1", 90.0)],
            id="forensics-among-others",
        ),
        pytest.param([pod(deleted=stamp(-90), finalizers=None)], [], id="finalizers-missing"),
        pytest.param([pod(deleted=stamp(-90), finalizers=FINALIZER)], [], id="finalizers-a-string"),
        pytest.param(
            [pod(deleted="yesterday")],
            [HeldPod("shop", "bot-1", 0.0)],
            id="unreadable-deletion-time-counts-from-now",
        ),
        pytest.param(
            [pod(deleted="2026-12-06T11:59:00.5+00:00")],
            [HeldPod("shop", "bot-1", 59.5)],
            id="fractional-and-offset-timestamp",
        ),
        pytest.param(
            [pod(deleted="2026-12-06T11:59:00")],
            [HeldPod("shop", "bot-1", 60.0)],
            id="timestamp-without-zone-is-utc",
        ),
        pytest.param([{"metadata": None}, {}, {"metadata": "x"}], [], id="malformed-objects"),
        pytest.param(
            [
                pod("young", deleted=stamp(-5)),
                pod("old", deleted=stamp(-600), namespace="lab"),
                pod("alive"),
            ],
            [HeldPod("lab", "old", 600.0), HeldPod("shop", "young", 5.0)],
            id="longest-held-first",
        ),
    ],
)
def test_held_pods(pods: list[dict[str, Any]], expected: list[HeldPod]) -> None:
    assert held_pods(pods, NOW) == expected


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        pytest.param([], HoldSummary(0, 0.0), id="none-held-is-zero"),
        pytest.param(
            [HeldPod("a", "x", 5.0), HeldPod("b", "y", 600.0)],
            HoldSummary(2, 600.0),
            id="count-and-oldest",
        ),
    ],
)
def test_hold_summary(held: list[HeldPod], expected: HoldSummary) -> None:
    assert HoldSummary.of(held) == expected


def test_release_event_names_the_pod_the_reason_and_who() -> None:
    target = pod(deleted=stamp(-90))
    target["metadata"]["uid"] = "uid-1"
    event = release_event(target, release_message("alice@example.com"), NOW)
    assert event["type"] == "Warning"
    assert event["reason"] == EVIDENCE_NOT_CAPTURED
    assert event["metadata"] == {"generateName": "bot-1.", "namespace": "shop"}
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": "shop",
        "name": "bot-1",
        "uid": "uid-1",
    }
    assert "by hand by alice@example.com" in event["message"]
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-12-06T12:00:00Z"


def test_release_message_without_a_known_user_points_at_the_audit_log() -> None:
    assert "unknown user" in release_message(None)
    assert "audit log" in release_message(None)
