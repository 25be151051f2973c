"""The audit-key Secret the operator creates for each workload's gateways."""

from __future__ import annotations

import base64

import pytest

from aigis.controller.auditkey import AUDIT_KEY_BYTES, holds_audit_key, render_audit_key_secret
from aigis.egress.networkpolicy import WorkloadRef
from aigis.gateway.identity import AUDIT_KEY_SECRET_KEY, audit_key_secret_name

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
