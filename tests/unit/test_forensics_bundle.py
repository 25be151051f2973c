"""The evidence bundle and what goes into it: pure functions, table-driven."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aigis.forensics import bundle
from aigis.forensics.capture import audit_verdict
from aigis.forensics.commands import read_tree, tree_files
from aigis.forensics.evidence import (
    REDACTED,
    Collection,
    LogTail,
    chunks,
    containers_stopped,
    is_expired,
    on_demand_snapshot_name,
    redact_pod,
    selecting_policies,
    termination_snapshot_name,
    whole_lines,
)
from aigis.forensics.signing import key_from_secret, public_key_from_text, public_key_text
from aigis.forensics.signing import signing_secret as make_signing_secret
from aigis.forensics.storage import chunk_name, chunk_secret

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ARTIFACTS = [
    bundle.Artifact("pod.json", b'{"kind":"Pod"}\n'),
    bundle.Artifact("logs/app.log", b"line 1\nline 2\n"),
    bundle.Artifact("events.json", b"[]\n"),
]
FACTS = {"trigger": "Termination", "capturedAt": "2026-12-01T00:00:00Z", "complete": True}


def make_bundle(key: Ed25519PrivateKey = KEY) -> bytes:
    manifest = bundle.build_manifest(ARTIFACTS, FACTS)
    return bundle.build_bundle(ARTIFACTS, manifest, bundle.sign(manifest, key))


def test_the_same_evidence_gives_the_same_bytes() -> None:
    assert make_bundle() == make_bundle()
    assert make_bundle() == bundle.build_bundle(
        list(reversed(ARTIFACTS)),
        bundle.build_manifest(list(reversed(ARTIFACTS)), FACTS),
        bundle.sign(bundle.build_manifest(ARTIFACTS, FACTS), KEY),
    )


def test_tar_members_are_sorted_with_fixed_metadata() -> None:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(make_bundle()))) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "manifest.json",
        "manifest.sig",
        "artifacts/events.json",
        "artifacts/logs/app.log",
        "artifacts/pod.json",
    ]
    assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == {(0, 0, 0, 0o444)}


def test_manifest_lists_every_artifact_with_digest_and_size() -> None:
    manifest = bundle.read_bundle(make_bundle()).manifest_json()
    listed = {a["name"]: (a["sha256"], a["size"]) for a in manifest["artifacts"]}
    assert listed == {a.name: (a.sha256, len(a.data)) for a in ARTIFACTS}
    assert manifest["trigger"] == "Termination"
    assert manifest["format"] == bundle.FORMAT


def test_two_artifacts_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="same name"):
        bundle.build_manifest([ARTIFACTS[0], ARTIFACTS[0]], FACTS)


def test_an_intact_bundle_verifies() -> None:
    assert bundle.verify(bundle.read_bundle(make_bundle()), KEY.public_key()) == []


def tampered(change: str) -> tuple[bundle.Bundle, Any]:
    parts = bundle.read_bundle(make_bundle())
    artifacts = dict(parts.artifacts)
    manifest, signature, key = parts.manifest, parts.signature, KEY.public_key()
    if change == "artifact byte":
        data = bytearray(artifacts["logs/app.log"])
        data[0] ^= 1
        artifacts["logs/app.log"] = bytes(data)
    elif change == "manifest byte":
        manifest = manifest.replace(b"Termination", b"Terminatiom")
    elif change == "artifact removed":
        del artifacts["events.json"]
    elif change == "artifact added":
        artifacts["extra.txt"] = b"planted"
    elif change == "other key":
        key = OTHER_KEY.public_key()
    elif change == "artifact truncated":
        artifacts["pod.json"] = artifacts["pod.json"][:-1]
    return bundle.Bundle(manifest, signature, artifacts), key


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("artifact byte", "logs/app.log"),
        ("manifest byte", "manifest.json"),
        ("artifact removed", "events.json"),
        ("artifact added", "extra.txt"),
        ("other key", "manifest.json"),
        ("artifact truncated", "pod.json"),
    ],
)
def test_a_change_is_reported_under_the_name_of_what_changed(change: str, named: str) -> None:
    parts, key = tampered(change)
    problems = bundle.verify(parts, key)
    assert problems
    assert {p.name for p in problems} == {named}


def test_a_damaged_archive_is_refused_as_unreadable() -> None:
    data = bytearray(make_bundle())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(ValueError, match=r"tar\.gz"):
        bundle.read_bundle(bytes(data))


def test_an_exported_directory_reads_back_as_the_same_bundle(tmp_path: Any) -> None:
    parts = bundle.read_bundle(make_bundle())
    for relative, data in tree_files(parts).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(data)
    assert read_tree(tmp_path) == parts


# --- redaction -------------------------------------------------------------------------------


def pod_with_env(*env: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
        },
        "spec": {"containers": [{"name": "app", "env": list(env)}]},
    }


@pytest.mark.parametrize(
    ("env", "redacted"),
    [
        ({"name": "OPENAI_API_KEY", "value": "sk-abcdefghijkl"}, True),
        ({"name": "DB_PASSWORD", "value": "hunter2"}, True),
        ({"name": "GITHUB_TOKEN", "value": "x"}, True),
        ({"name": "HARMLESS", "value": "sk-abcdefghijklmnop"}, True),
        ({"name": "AUTH_HEADER", "value": "Bearer abcdefghij"}, True),
        ({"name": "LOG_LEVEL", "value": "INFO"}, False),
        ({"name": "MODEL", "value": "gpt-4o-mini"}, False),
        ({"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "v"}}}, False),
    ],
)
def test_env_values_that_look_like_keys_are_redacted(env: dict[str, Any], redacted: bool) -> None:
    out, paths = redact_pod(pod_with_env(env))
    value = out["spec"]["containers"][0]["env"][0].get("value")
    assert (value == REDACTED) is redacted
    assert ("spec.containers[0].env[0].value" in paths) is redacted
    assert "managedFields" not in out["metadata"]
    assert out["metadata"]["annotations"] == {}


def test_redaction_leaves_the_input_alone() -> None:
    pod = pod_with_env({"name": "API_KEY", "value": "sk-abcdefghijkl"})
    redact_pod(pod)
    assert pod["spec"]["containers"][0]["env"][0]["value"] == "sk-abcdefghijkl"


# --- logs, policies, names, retention, chunks ------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "cap", "kept", "truncated"),
    [
        ([b"abc", b"def"], 10, b"abcdef", False),
        ([b"abc", b"def"], 4, b"cdef", True),
        ([b"abcdefgh"], 3, b"fgh", True),
        ([], 3, b"", False),
    ],
)
def test_log_tail_keeps_the_last_bytes(
    pieces: list[bytes], cap: int, kept: bytes, truncated: bool
) -> None:
    tail = LogTail(cap)
    for piece in pieces:
        tail.add(piece)
    assert (tail.data(), tail.truncated, tail.total) == (kept, truncated, sum(map(len, pieces)))


def test_a_truncated_log_loses_its_partial_first_line() -> None:
    assert whole_lines(b"tial\nwhole\n", truncated=True) == b"whole\n"
    assert whole_lines(b"tial\nwhole\n", truncated=False) == b"tial\nwhole\n"
    assert whole_lines(b"no newline", truncated=True) == b""


def policy(name: str, selector: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "managedFields": [1]}, "spec": {"podSelector": selector}}


def test_policies_that_select_the_pod_are_kept() -> None:
    policies = [
        policy("z-all", {}),
        policy("bot", {"matchLabels": {"app": "bot"}}),
        policy("other", {"matchLabels": {"app": "other"}}),
        policy("in", {"matchExpressions": [{"key": "app", "operator": "In", "values": ["bot"]}]}),
        policy("absent", {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
        policy("exists", {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
    ]
    chosen = selecting_policies(policies, {"app": "bot"})
    assert [p["metadata"]["name"] for p in chosen] == ["absent", "bot", "in", "z-all"]
    assert all("managedFields" not in p["metadata"] for p in chosen)


def test_snapshot_names_come_from_the_pod_uid() -> None:
    uid = "0b7c3d0e-1111-2222-3333-444455556666"
    assert termination_snapshot_name(uid) == termination_snapshot_name(uid)
    assert termination_snapshot_name(uid) == f"fsnap-{uid}"
    assert on_demand_snapshot_name(uid, "17") != on_demand_snapshot_name(uid, "18")


NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires", "expired"),
    [
        ("2026-11-30T23:59:59Z", True),
        ("2026-12-01T00:00:00Z", True),
        ("2026-12-01T00:00:01Z", False),
        ("not a time", False),
        (None, False),
    ],
)
def test_expiry(expires: str | None, expired: bool) -> None:
    assert is_expired({"status": {"expiresAt": expires}}, NOW) is expired


def test_chunks_reassemble_and_stay_under_the_limit() -> None:
    data = bytes(range(256)) * 10
    pieces = chunks(data, 1000)
    assert b"".join(pieces) == data
    assert [len(p) for p in pieces] == [1000, 1000, 560]
    assert chunks(b"", 10) == [b""]


def test_chunk_secrets_are_owned_by_their_snapshot() -> None:
    snapshot = {"metadata": {"name": "fsnap-x", "uid": "u-1"}}
    secret = chunk_secret("ns", snapshot, 2, b"abc")
    assert secret["metadata"]["name"] == "fsnap-x-2"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert base64.b64decode(secret["data"]["chunk"]) == b"abc"
    assert len(chunk_name("a" * 300, 12)) == 253


@pytest.mark.parametrize(
    ("statuses", "stopped"),
    [
        ([], True),
        ([{"name": "app", "state": {"running": {}}}], False),
        ([{"name": "app", "state": {"terminated": {"exitCode": 1}}}], True),
    ],
)
def test_containers_stopped(statuses: list[dict[str, Any]], stopped: bool) -> None:
    assert containers_stopped({"status": {"containerStatuses": statuses}}) is stopped


def test_collection_is_complete_until_something_is_missing() -> None:
    collection = Collection()
    collection.add("pod.json", b"{}")
    assert collection.complete
    collection.lack("logs/app.log", "the API server refused: 400")
    assert not collection.complete
    assert collection.missing == ["logs/app.log: the API server refused: 400"]


def test_signing_key_round_trips_through_its_secret_and_public_text() -> None:
    secret = make_signing_secret("ns", KEY)
    assert bundle.key_id(key_from_secret(secret).public_key()) == bundle.key_id(KEY.public_key())
    text = public_key_text(KEY.public_key())
    assert bundle.key_id(public_key_from_text(text)) == bundle.key_id(KEY.public_key())


def test_audit_verdict_without_audit_lines_or_key_is_recorded() -> None:
    assert "no audit lines" in audit_verdict(b"simulated by kwok\n", b"k" * 32)
    assert "no audit key" in audit_verdict(b'{"seq":1,"mac":"x"}\n', None)
    assert audit_verdict(b'{"seq":1,"mac":"x"}\n', b"k" * 32).startswith("broken")
