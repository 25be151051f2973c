"""The audit-key Secret of a workload: the HMAC key its gateways chain their audit lines with.

The operator creates `aigis-audit-<workload>` once, with 32 random bytes, and never rewrites it:
a new key would make the audit lines written under the old one unverifiable. It is owned by the
AIWorkload, so it goes when the workload goes. An AIWorkload deleted and created again under the
same name finds its predecessor's Secret still there, waiting for garbage collection: it adopts
it (the key stays, so the old pods' lines stay verifiable, and the new pods can start) rather
than waiting for it to go. When someone deletes it, the next forced reconcile (the refresh
loop) creates a new key; pods started before keep the old one, which their
start records name by key id, so their lines can then only be verified with a copy of the old key.

Pure: the caller passes the random bytes.
"""

from __future__ import annotations

import base64
from typing import Any

from aigis.egress.networkpolicy import MANAGED_BY, MANAGED_BY_LABEL, WORKLOAD_LABEL, WorkloadRef
from aigis.egress.networkpolicy import workload_label_value as label_value
from aigis.gateway.identity import AUDIT_KEY_SECRET_KEY, audit_key_secret_name

AUDIT_KEY_BYTES = 32
"""HMAC-SHA256 keys as long as the hash's output."""


def owner_reference(ref: WorkloadRef) -> dict[str, Any]:
    """The AIWorkload as the controlling owner of its audit-key Secret."""
    return {
        "apiVersion": "aigis.dev/v1alpha1",
        "kind": "AIWorkload",
        "name": ref.name,
        "uid": ref.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(secret: dict[str, Any], ref: WorkloadRef) -> bool:
    """Whether `secret` names this AIWorkload (by uid) among its owners.

    A Secret of the same name owned by another uid was left by a deleted AIWorkload of that
    name, and garbage collection is about to delete it.
    """
    owners = (secret.get("metadata") or {}).get("ownerReferences") or []
    return any(isinstance(o, dict) and o.get("uid") == ref.uid for o in owners)


def render_audit_key_secret(ref: WorkloadRef, key: bytes) -> dict[str, Any]:
    """The Secret manifest holding `key`, owned by the AIWorkload."""
    if len(key) < AUDIT_KEY_BYTES:
        raise ValueError(f"an audit key needs {AUDIT_KEY_BYTES} bytes, got {len(key)}")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": audit_key_secret_name(ref.name),
            "namespace": ref.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, WORKLOAD_LABEL: label_value(ref.name)},
            "ownerReferences": [owner_reference(ref)],
        },
        # Never changed after creation: immutable Secrets also spare the kubelet a watch.
        "immutable": True,
        "data": {AUDIT_KEY_SECRET_KEY: base64.b64encode(key).decode()},
    }


def holds_audit_key(secret: dict[str, Any] | None) -> bool:
    """Whether an existing Secret carries a usable key (a hand-made one may not)."""
    if not secret:
        return False
    value = (secret.get("data") or {}).get(AUDIT_KEY_SECRET_KEY)
    if not isinstance(value, str):
        return False
    try:
        return len(base64.b64decode(value, validate=True)) >= AUDIT_KEY_BYTES
    except ValueError:
        return False
