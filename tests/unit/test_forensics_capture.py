"""Collecting a pod's evidence against a fake API: failures and the time limit become reasons."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from aigis.controller.forensics import pod_event, refuge_namespace, seconds_until_capture
from aigis.forensics.capture import LOG_GONE, collect, follow_logs
from aigis.forensics.evidence import LogTail
from aigis.kube import KubeError

POD = {
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"aigis.dev/workload": "bot"},
    },
    "spec": {
        "nodeName": "n",
        "containers": [{"name": "app"}, {"name": "aigis-gateway"}],
    },
    "status": {"containerStatuses": [{"name": "app", "restartCount": 2}]},
}


class FakeKube:
    """Answers the calls `collect` makes; `logs` maps (container, previous) to bytes, an
    exception to raise, or "hang"."""

    def __init__(self, logs: dict[tuple[str, bool], Any], workload: bool = True) -> None:
        self.logs = logs
        self.workload = workload
        self.calls: list[tuple[str, bool, bool]] = []

    async def get_aiworkload(self, namespace: str, name: str) -> dict[str, Any] | None:
        if not self.workload:
            return None
        return {"metadata": {"uid": "w", "generation": 3}, "spec": {"forensics": {}}}

    async def pod_log(
        self,
        namespace: str,
        name: str,
        container: str,
        sink: Callable[[bytes], None],
        *,
        previous: bool = False,
        follow: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.calls.append((container, previous, follow))
        answer = self.logs.get((container, previous), b"")
        if answer == "hang":
            await asyncio.sleep(3600)
        if isinstance(answer, Exception):
            raise answer
        sink(answer)

    async def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        return {"items": []}

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None


def run(kube: FakeKube, timeout: float = 30.0) -> Any:
    return asyncio.run(collect(kube, POD, timeout_seconds=timeout))  # type: ignore[arg-type]


def test_everything_readable_is_complete() -> None:
    collection, workload = run(FakeKube({("app", False): b"a\n", ("app", True): b"old\n"}))
    assert collection.complete, collection.missing
    assert workload is not None
    assert collection.artifacts["logs/app.previous.log"] == b"old\n"
    assert "aigis-gateway.previous" not in " ".join(collection.artifacts)
    assert collection.notes["auditChain"].startswith("not verified")


@pytest.mark.parametrize(
    ("logs", "workload", "reason"),
    [
        (
            {("app", False): KubeError("GET", "/log", 400, "container is waiting to start")},
            True,
            "logs/app.log: the API server refused: 400",
        ),
        (
            {("app", True): KubeError("GET", "/log", 404, "no previous")},
            True,
            "logs/app.previous.log: the API server refused: 404",
        ),
        ({}, False, "workload.json: AIWorkload ns/bot not found"),
        ({("app", False): RuntimeError("odd")}, True, "logs/app.log: failed: RuntimeError: odd"),
    ],
)
def test_what_cannot_be_read_is_a_reason(
    logs: dict[tuple[str, bool], Any], workload: bool, reason: str
) -> None:
    collection, _ = run(FakeKube(logs, workload=workload))
    assert not collection.complete
    assert any(m.startswith(reason) for m in collection.missing), collection.missing
    assert "pod.json" in collection.artifacts


def test_a_hanging_step_is_cut_at_the_limit_and_the_rest_recorded() -> None:
    collection, _ = run(FakeKube({("app", False): "hang"}), timeout=0.2)
    assert not collection.complete
    assert collection.missing[0].startswith("logs/app.log: cut off")
    assert any("capture limit passed" in m for m in collection.missing[1:])
    assert "pod.json" in collection.artifacts


def test_a_huge_log_keeps_its_tail_within_the_cap() -> None:
    huge = b"x" * (11 * 1024 * 1024) + b"\nlast line\n"
    collection, _ = run(FakeKube({("app", False): huge, ("app", True): b""}))
    kept = collection.artifacts["logs/app.log"]
    assert len(kept) == 10 * 1024 * 1024
    assert kept.endswith(b"last line\n")
    assert "logs/app.log" in collection.notes["truncatedLogs"]


GONE = LOG_GONE + b"containerd://0123abcd: not found\n"


def test_a_log_the_kubelet_already_removed_is_a_reason_not_the_log() -> None:
    """A real kubelet answers 200 with this sentence for a container it removed."""
    collection, _ = run(FakeKube({("app", False): GONE, ("app", True): b"old\n"}))
    assert "logs/app.log" not in collection.artifacts
    assert any(
        m.startswith("logs/app.log: the kubelet no longer has it: unable to retrieve")
        for m in collection.missing
    ), collection.missing


def test_followed_logs_are_kept_instead_of_read_again() -> None:
    followed = LogTail(1024)
    followed.add(b"said while stopping\n")
    kube = FakeKube({("app", False): GONE, ("app", True): b"old\n"})
    collection, _ = asyncio.run(
        collect(kube, POD, timeout_seconds=30, followed_logs={"app": followed})  # type: ignore[arg-type]
    )
    assert collection.artifacts["logs/app.log"] == b"said while stopping\n"
    assert ("app", False, False) not in kube.calls
    assert collection.complete, collection.missing


def test_following_keeps_what_each_stream_read_and_drops_what_is_no_log() -> None:
    """A container still running at the deadline keeps what it logged so far (its stream is
    cut); one the kubelet already removed, or that logged nothing, is left to `collect`."""

    class Following(FakeKube):
        async def pod_log(self, namespace: str, name: str, container: str,
                          sink: Callable[[bytes], None], **options: Any) -> None:  # fmt: skip
            assert options.get("follow") is True
            if container == "app":
                sink(b"partial\n")
                await asyncio.sleep(3600)
            sink(GONE)

    tails = asyncio.run(follow_logs(Following({}), POD, timeout_seconds=0.2))  # type: ignore[arg-type]
    assert {name: tail.data() for name, tail in tails.items()} == {"app": b"partial\n"}


# --- the operator's decisions ----------------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("deletion", "statuses", "wait"),
    [
        ("2026-12-01T12:00:10Z", [{"name": "app", "state": {"running": {}}}], 10.0),
        ("2026-12-01T12:00:10Z", [{"name": "app", "state": {"terminated": {}}}], 0.0),
        ("2026-12-01T11:59:00Z", [{"name": "app", "state": {"running": {}}}], 0.0),
        ("2026-12-01T13:00:00Z", [{"name": "app", "state": {"running": {}}}], 60.0),
        (None, [{"name": "app", "state": {"running": {}}}], 0.0),
    ],
)
def test_a_capture_waits_for_the_containers_or_the_deletion_time(
    deletion: str | None, statuses: list[dict[str, Any]], wait: float
) -> None:
    pod = {"metadata": {"deletionTimestamp": deletion}, "status": {"containerStatuses": statuses}}
    assert seconds_until_capture(pod, NOW) == wait


@pytest.mark.parametrize(
    ("status", "body", "aigis_namespace", "refuge"),
    [
        (403, "unable to create new content in namespace x because it is being terminated",
         "aigis", "aigis"),
        (403, "unable to create new content in namespace x because it is being terminated",
         None, None),
        (403, "forbidden: RBAC", "aigis", None),
        (409, "exists", "aigis", None),
        (403, "because it is being terminated", "ns", None),
    ],
)  # fmt: skip
def test_evidence_of_a_namespace_being_deleted_goes_to_the_aigis_namespace(
    status: int, body: str, aigis_namespace: str | None, refuge: str | None
) -> None:
    error = KubeError("POST", "/x", status, body)
    assert refuge_namespace(error, "ns", aigis_namespace) == refuge


def test_capture_events_say_what_happened() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}}
    event = pod_event(pod, "EvidenceIncomplete", "stored, incomplete", NOW, warning=True)
    assert (event["reason"], event["type"]) == ("EvidenceIncomplete", "Warning")
    assert event["involvedObject"]["uid"] == "u"
    assert pod_event(pod, "EvidenceCaptured", "ok", NOW, warning=False)["type"] == "Normal"
