"""The audit-key Secret the operator creates for each workload's gateways."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from aigis.controller.auditkey import AUDIT_KEY_BYTES, holds_audit_key, render_audit_key_secret
from aigis.controller.enforcer import WorkloadEnforcer
from aigis.egress.networkpolicy import WorkloadRef
from aigis.gateway.identity import AUDIT_KEY_SECRET_KEY, audit_key_secret_name
from aigis.kube import KubeError
from aigis.settings import OperatorSettings

REF = WorkloadRef(name="support-bot", namespace="support", uid="uid-1")


def test_the_secret_is_owned_by_the_workload_and_immutable() -> None:
    key = bytes(range(AUDIT_KEY_BYTES))
    secret = render_audit_key_secret(REF, key)
    assert secret["metadata"]["name"] == "aigis-audit-support-bot"
    assert secret["metadata"]["namespace"] == "support"
    assert secret["immutable"] is True
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("AIWorkload", "support-bot", "uid-1")
    assert base64.b64decode(secret["data"][AUDIT_KEY_SECRET_KEY]) == key


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        render_audit_key_secret(REF, b"short")


@pytest.mark.parametrize(
    ("secret", "usable"),
    [
        pytest.param(None, False, id="missing"),
        pytest.param({}, False, id="empty"),
        pytest.param({"data": {}}, False, id="no-key"),
        pytest.param({"data": {AUDIT_KEY_SECRET_KEY: "not base64!"}}, False, id="not-base64"),
        pytest.param(
            {"data": {AUDIT_KEY_SECRET_KEY: base64.b64encode(b"x" * 8).decode()}},
            False,
            id="too-short",
        ),
        pytest.param(
            {"data": {AUDIT_KEY_SECRET_KEY: base64.b64encode(b"x" * 32).decode()}},
            True,
            id="usable",
        ),
    ],
)
def test_which_existing_secrets_hold_a_usable_key(secret: dict | None, usable: bool) -> None:
    assert holds_audit_key(secret) is usable


def test_long_workload_names_fit_a_secret_name() -> None:
    name = audit_key_secret_name("w" * 253)
    assert len(name) == 253
    assert name != audit_key_secret_name("w" * 252 + "x")


class SecretsApi:
    """The Secret calls `ensure_audit_key` makes, against one stored Secret (or none)."""

    def __init__(self, stored: dict[str, Any] | None, *, collected_first: bool = False) -> None:
        self.stored = stored
        self.collected_first = collected_first
        self.calls: list[str] = []

    async def request(self, method: str, path: str, **options: Any) -> dict[str, Any] | None:
        self.calls.append(method)
        if method == "GET":
            return self.stored
        if method == "PATCH":
            if self.collected_first or self.stored is None:
                self.stored = None
                raise KubeError(method, path, 404, "not found")
            self.stored["metadata"].update(options["body"]["metadata"])
            return self.stored
        if method == "POST":
            self.stored = options["body"]
            return self.stored
        raise AssertionError(f"unexpected {method}")


def ensure(api: SecretsApi, ref: WorkloadRef = REF) -> bool:
    enforcer = WorkloadEnforcer(api, OperatorSettings(), clock=lambda: 0.0)  # type: ignore[arg-type]
    return asyncio.run(enforcer.ensure_audit_key(ref))


def test_a_recreated_workload_adopts_its_predecessors_key_instead_of_waiting() -> None:
    """Deleted and created again under the same name, the AIWorkload finds the old Secret still
    there (garbage collection has not run yet): it becomes the owner, and the key stays."""
    old = render_audit_key_secret(WorkloadRef("support-bot", "support", "uid-0"), bytes(32))
    api = SecretsApi(old)
    assert ensure(api) is False
    assert api.calls == ["GET", "PATCH"]
    assert api.stored is not None
    assert [o["uid"] for o in api.stored["metadata"]["ownerReferences"]] == ["uid-1"]
    assert api.stored["data"] == old["data"]


def test_a_predecessors_key_collected_before_adoption_is_replaced() -> None:
    old = render_audit_key_secret(WorkloadRef("support-bot", "support", "uid-0"), bytes(32))
    api = SecretsApi(old, collected_first=True)
    assert ensure(api) is True
    assert api.calls == ["GET", "PATCH", "GET", "POST"]
    assert api.stored is not None
    assert api.stored["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_the_workloads_own_key_is_left_alone() -> None:
    api = SecretsApi(render_audit_key_secret(REF, bytes(32)))
    assert ensure(api) is False
    assert api.calls == ["GET"]
