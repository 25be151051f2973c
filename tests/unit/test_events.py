"""aigis.events: the one Event renderer of the webhook, the operator and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aigis.events import MAX_MESSAGE_CHARS, Involved, Reporter, clip_message, render_event

NOW = datetime(2026, 12, 6, 16, 30, 5, 123456, tzinfo=UTC)
REPORTER = Reporter("aigis-operator", "aigis.dev/operator", "pod-" + "x" * 200)


def test_an_event_names_its_object_reason_and_reporter() -> None:
    event = render_event(
        Involved("apps/v1", "Deployment", "bot", "shop", "u-1"),
        reason="Found",
        message="m",
        reporter=REPORTER,
        now=NOW,
    )
    assert event["metadata"] == {"generateName": "bot.", "namespace": "shop"}
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "bot",
        "namespace": "shop",
        "uid": "u-1",
    }
    assert (event["type"], event["reason"], event["message"]) == ("Warning", "Found", "m")
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-12-06T16:30:05Z"
    assert event["source"] == {"component": "aigis-operator"}
    assert len(event["reportingInstance"]) == 128


def test_a_cluster_scoped_object_s_event_goes_to_default() -> None:
    event = render_event(
        Involved("aigis.dev/v1alpha1", "AIClusterPolicy", "strict"),
        reason="R",
        message="m",
        reporter=REPORTER,
        now=NOW,
        warning=False,
    )
    assert event["metadata"]["namespace"] == "default"
    assert "namespace" not in event["involvedObject"]
    assert event["type"] == "Normal"


@pytest.mark.parametrize(
    ("name", "prefix"), [("bot-", "bot."), ("", "pod."), ("a" * 300, "a" * 200 + ".")]
)
def test_generated_names_are_valid_prefixes(name: str, prefix: str) -> None:
    event = render_event(
        Involved("v1", "Pod", name, "shop"), reason="R", message="m", reporter=REPORTER, now=NOW
    )
    assert event["metadata"]["generateName"] == prefix


def test_long_messages_are_cut_with_an_ellipsis() -> None:
    assert clip_message("x" * MAX_MESSAGE_CHARS) == "x" * MAX_MESSAGE_CHARS
    clipped = clip_message("x" * (MAX_MESSAGE_CHARS + 5))
    assert len(clipped) == MAX_MESSAGE_CHARS
    assert clipped.endswith("…")
