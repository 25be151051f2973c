"""The Ed25519 key that signs evidence manifests, and where anyone finds its public half.

One key per signing namespace: the aigis namespace when the operator is given one
(`--aigis-namespace`), so that the teams whose pods are captured cannot read the private key;
otherwise the pod's own namespace (a namespace-scoped operator, a dev cluster). The private key
is in Secret `aigis-forensics-signing-key` (key `ed25519`, the raw 32-byte seed); the public key
in ConfigMap `aigis-forensics-public-key` (key `ed25519.pub`, base64 of the raw 32 bytes, and
`key-id`, its SHA-256), readable by whoever verifies bundles. The first capture creates both;
a concurrent creator's key wins (create is refused with 409, and the stored key is read back).
"""

from __future__ import annotations

import base64
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat
from cryptography.hazmat.primitives.serialization import NoEncryption as _NoEncryption

from aigis.forensics.bundle import key_id
from aigis.kube import KubeClient, KubeError, namespaced_path

SIGNING_SECRET: Final = "aigis-forensics-signing-key"  # noqa: S105 - a name, not a secret
SIGNING_SECRET_KEY: Final = "ed25519"  # noqa: S105 - a name, not a secret
PUBLIC_KEY_CONFIGMAP: Final = "aigis-forensics-public-key"
PUBLIC_KEY_ENTRY: Final = "ed25519.pub"
KEY_ID_ENTRY: Final = "key-id"
_LABELS: Final = {"app.kubernetes.io/managed-by": "aigis", "app.kubernetes.io/part-of": "aigis"}


# --- pure ---------------------------------------------------------------------------------


def private_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, _NoEncryption())


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes; `ValueError` otherwise."""
    raw = base64.b64decode(text.strip(), validate=True)
    return Ed25519PublicKey.from_public_bytes(raw)


def signing_secret(namespace: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SIGNING_SECRET, "namespace": namespace, "labels": dict(_LABELS)},
        "type": "Opaque",
        "data": {SIGNING_SECRET_KEY: base64.b64encode(private_key_bytes(key)).decode()},
    }


def public_key_configmap(namespace: str, key: Ed25519PublicKey) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": PUBLIC_KEY_CONFIGMAP,
            "namespace": namespace,
            "labels": dict(_LABELS),
        },
        "data": {PUBLIC_KEY_ENTRY: public_key_text(key), KEY_ID_ENTRY: key_id(key)},
    }


def key_from_secret(secret: dict[str, Any]) -> Ed25519PrivateKey:
    """The private key in a signing Secret; `ValueError` when it holds none."""
    encoded = (secret.get("data") or {}).get(SIGNING_SECRET_KEY)
    if not isinstance(encoded, str):
        raise ValueError(f"Secret {SIGNING_SECRET} has no {SIGNING_SECRET_KEY!r} entry")
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(encoded, validate=True))


# --- shell ----------------------------------------------------------------------------------


async def ensure_signing_key(kube: KubeClient, namespace: str) -> Ed25519PrivateKey:
    """The signing key of `namespace`, created (with its public ConfigMap) on first use.

    The ConfigMap is written every time (server-side apply), so a deleted or edited one comes
    back with the key actually in use.
    """
    secret = await kube.get_secret(namespace, SIGNING_SECRET)
    if secret is None:
        created = await kube.create_secret(signing_secret(namespace, Ed25519PrivateKey.generate()))
        secret = created or await kube.get_secret(namespace, SIGNING_SECRET)
        if secret is None:
            raise KubeError("GET", SIGNING_SECRET, 404, "the signing key vanished after creation")
    key = key_from_secret(secret)
    await kube.apply(
        namespaced_path("/api/v1", namespace, "configmaps", PUBLIC_KEY_CONFIGMAP),
        public_key_configmap(namespace, key.public_key()),
    )
    return key


async def published_public_key(kube: KubeClient, namespace: str) -> Ed25519PublicKey | None:
    """The public key published in `namespace`, None when there is none."""
    found = await kube.request(
        "GET", namespaced_path("/api/v1", namespace, "configmaps", PUBLIC_KEY_CONFIGMAP)
    )
    text = ((found or {}).get("data") or {}).get(PUBLIC_KEY_ENTRY)
    return public_key_from_text(text) if isinstance(text, str) else None
