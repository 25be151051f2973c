"""core/v1 Events as aigis writes them: one renderer for the webhook, the operator and the CLI.

An Event names the object it is about, a reason and a message, and who reported it. The rules
every writer follows live here once: the message is cut at 1 KiB (the API server refuses longer
ones), the name is generated from the object's (`<name>.` plus a random suffix from the API
server, so Events never collide), and an Event about a cluster-scoped object is kept in the
`default` namespace, as Kubernetes' own components do.

Pure: no I/O, no clock (the caller passes `now`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

MAX_MESSAGE_CHARS: Final = 1024
"""The API server refuses Event messages longer than this."""
CLUSTER_SCOPED_EVENT_NAMESPACE: Final = "default"
"""Where Events about cluster-scoped objects are kept."""
_MAX_NAME_PREFIX: Final = 200
_MAX_INSTANCE_CHARS: Final = 128


@dataclass(frozen=True, slots=True)
class Involved:
    """The object an Event is about."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who writes the Event: `source.component`, `reportingComponent`, `reportingInstance`."""

    component: str
    reporting_component: str
    instance: str


def clip_message(message: str) -> str:
    """`message`, cut with an ellipsis to fit an Event."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def render_event(
    involved: Involved,
    *,
    reason: str,
    message: str,
    reporter: Reporter,
    now: datetime,
    warning: bool = True,
) -> dict[str, Any]:
    """A core/v1 Event (`Warning`, or `Normal` when not `warning`) about `involved`."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    reference: dict[str, Any] = {
        "apiVersion": involved.api_version,
        "kind": involved.kind,
        "name": involved.name,
    }
    if involved.namespace:
        reference["namespace"] = involved.namespace
    if involved.uid:
        reference["uid"] = involved.uid
    prefix = (involved.name.rstrip("-.") or involved.kind.lower())[:_MAX_NAME_PREFIX]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{prefix}.",
            "namespace": involved.namespace or CLUSTER_SCOPED_EVENT_NAMESPACE,
        },
        "involvedObject": reference,
        "reason": reason,
        "message": clip_message(message),
        "type": "Warning" if warning else "Normal",
        "source": {"component": reporter.component},
        "reportingComponent": reporter.reporting_component,
        "reportingInstance": reporter.instance[:_MAX_INSTANCE_CHARS],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
