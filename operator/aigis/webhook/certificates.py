"""The webhook's TLS: a CA and a serving certificate, when to rotate them, and hot reload.

The API server calls the webhook over HTTPS and checks its certificate against the `caBundle` of
the webhook configuration, so aigis needs a CA the configuration names and a serving certificate
that CA signed, with the address the API server dials among its SANs.

Pure part: `issue_ca`, `issue_serving_certificate` and `plan_rotation` (given what exists and the
time, what to keep and what to issue anew). ECDSA P-256 keys: the handshake is several times
cheaper than RSA-2048 for the server, and the API server (Go) supports them.

Rotation well before expiry: a certificate is renewed once two thirds of its life has passed
(serving: 90 days, so renewed after 60; CA: 10 years). A new CA is only trusted once the API
server has the new `caBundle`, so the bundle carries the previous CA as well until it expires,
and the process patches the webhook configurations *before* it serves the certificate of the new
CA (see `CertificateKeeper`).

Shell part: `SecretCertificateSource` keeps the bundle in a Secret of aigis's namespace (several
replicas agree through optimistic concurrency: whoever writes first wins, the others read it);
`DirectoryCertificateSource` reads files another tool (cert-manager) mounts, and aigis then
creates nothing; `ReloadableTLS` swaps the certificate inside the one `ssl.SSLContext` the server
listens with, so new handshakes get the new certificate and open connections are not dropped.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import logging
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aigis.tls import PrivateKey, build_ca, build_leaf, new_key

log = logging.getLogger("aigis.webhook.certificates")

CA_COMMON_NAME = "aigis-webhook-ca"
SERVING_COMMON_NAME = "aigis-webhook"
# Keys of the Secret (file names in --cert-dir), not secrets themselves.
SECRET_TLS_CERT = "tls.crt"  # noqa: S105
SECRET_TLS_KEY = "tls.key"  # noqa: S105
SECRET_CA_CERT = "ca.crt"  # noqa: S105
SECRET_CA_KEY = "ca.key"  # noqa: S105


# --- pure: values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """How long certificates live and when they are renewed."""

    ca_lifetime: timedelta = timedelta(days=3650)
    serving_lifetime: timedelta = timedelta(days=90)
    renew_fraction: float = 2 / 3
    """A certificate is renewed once this fraction of its validity has passed."""
    backdate: timedelta = timedelta(hours=1)
    """`notBefore` this far in the past, so an API server whose clock runs a little behind does
    not see a certificate that is not valid yet."""


@dataclass(frozen=True, slots=True)
class ServingHosts:
    """The names and addresses the serving certificate must be valid for."""

    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM certificate and its PEM private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


@dataclass(frozen=True, slots=True)
class CertificateBundle:
    """What aigis keeps in its Secret: the CA with its key, the serving pair, the old CA."""

    ca: KeyPair
    serving: KeyPair
    previous_ca_pem: bytes = b""
    """The CA before the last CA rotation, trusted until it expires so no caller that still has
    the old `caBundle` is refused in between."""

    @property
    def ca_bundle(self) -> bytes:
        """The PEM the webhook configurations' `caBundle` carries: current CA, then previous."""
        return self.ca.cert_pem + self.previous_ca_pem


@dataclass(frozen=True, slots=True)
class RotationPlan:
    """What `plan_rotation` decided: the bundle to use and which parts are new, and why."""

    bundle: CertificateBundle
    renewed: tuple[str, ...] = ()
    """`ca` and/or `serving`; empty when the existing bundle is kept as it is."""
    reasons: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.renewed) or bool(self.reasons)


@dataclass(frozen=True, slots=True)
class ServingMaterial:
    """What the HTTPS server and the webhook configurations need, wherever it came from."""

    cert_pem: bytes
    key_pem: bytes
    ca_bundle: bytes | None
    """None when the source has no CA (a cert-manager Secret without ca.crt): then aigis does
    not touch `caBundle` and something else (cainjector) must set it."""

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.cert_pem + b"\0" + self.key_pem + b"\0")
        digest.update(self.ca_bundle or b"")
        return digest.hexdigest()


def serving_hosts(
    *,
    service_name: str | None = None,
    service_namespace: str | None = None,
    url_host: str | None = None,
) -> ServingHosts:
    """The SANs for a webhook reached by Service and/or URL; always 127.0.0.1 and localhost.

    A Service is dialled as `<svc>.<ns>.svc`; the shorter and longer forms are added so the
    certificate also serves in-cluster clients that use them.
    """
    dns = ["localhost"]
    ips = ["127.0.0.1"]
    if service_name and service_namespace:
        base = f"{service_name}.{service_namespace}"
        dns += [service_name, base, f"{base}.svc", f"{base}.svc.cluster.local"]
    if url_host:
        host = url_host.strip("[]")
        try:
            ips.append(str(ipaddress.ip_address(host)))
        except ValueError:
            dns.append(host.lower())
    return ServingHosts(tuple(dict.fromkeys(dns)), tuple(dict.fromkeys(ips)))


# --- pure: issuing ----------------------------------------------------------------------------


def issue_ca(
    now: datetime, policy: RotationPolicy, *, common_name: str = CA_COMMON_NAME
) -> KeyPair:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    key = new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aigis"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    certificate = build_ca(
        key, name, now - policy.backdate, now + policy.ca_lifetime, path_length=0
    )
    return KeyPair(_cert_pem(certificate), _key_pem(key))


def issue_serving_certificate(
    ca: KeyPair, hosts: ServingHosts, now: datetime, policy: RotationPolicy
) -> KeyPair:
    """A server-auth certificate for `hosts`, signed by `ca`."""
    ca_cert = ca.certificate
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, PrivateKey):
        raise ValueError("the CA key is not an ECDSA key")
    key = new_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aigis"),
            x509.NameAttribute(NameOID.COMMON_NAME, SERVING_COMMON_NAME),
        ]
    )
    certificate = build_leaf(
        key,
        subject,
        ca_cert,
        ca_key,
        now - policy.backdate,
        min(now + policy.serving_lifetime, ca_cert.not_valid_after_utc),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        dns_names=hosts.dns_names,
        ip_addresses=hosts.ip_addresses,
    )
    return KeyPair(_cert_pem(certificate), _key_pem(key))


# --- pure: deciding ---------------------------------------------------------------------------


def renewal_time(certificate: x509.Certificate, policy: RotationPolicy) -> datetime:
    """When `certificate` is due for renewal: `renew_fraction` of the way through its life."""
    start = certificate.not_valid_before_utc
    life = certificate.not_valid_after_utc - start
    return start + life * policy.renew_fraction


def next_renewal(bundle: CertificateBundle, policy: RotationPolicy) -> datetime:
    """The earliest time any part of `bundle` needs attention (renewal or dropping the old CA)."""
    times = [
        renewal_time(bundle.ca.certificate, policy),
        renewal_time(bundle.serving.certificate, policy),
    ]
    times += [c.not_valid_after_utc for c in _load_all(bundle.previous_ca_pem)]
    return min(times)


def plan_rotation(
    current: CertificateBundle | None,
    hosts: ServingHosts,
    now: datetime,
    policy: RotationPolicy,
) -> RotationPlan:
    """What to keep and what to issue anew, with the reasons.

    The CA is renewed when it is missing, unreadable or past its renewal time; the serving
    certificate whenever the CA changed, or when it is past its renewal time, lacks one of the
    `hosts`, was not signed by the current CA, or does not match its key. An old CA is kept in
    the bundle until it expires.
    """
    reasons: list[str] = []
    renewed: list[str] = []
    ca_problem = _ca_problem(current, now, policy)
    if current is None or ca_problem:
        reasons.append(ca_problem or "no CA yet")
        ca = issue_ca(now, policy)
        previous = b""
        if current is not None:
            # Keep trusting the outgoing CA (and any older one) until it expires.
            previous = _still_valid(current.ca.cert_pem + current.previous_ca_pem, now)
        serving = issue_serving_certificate(ca, hosts, now, policy)
        return RotationPlan(
            CertificateBundle(ca, serving, previous), ("ca", "serving"), tuple(reasons)
        )
    previous = _still_valid(current.previous_ca_pem, now)
    if previous != current.previous_ca_pem:
        reasons.append("the previous CA expired; dropped from the bundle")
    serving = current.serving
    serving_problem = _serving_problem(current, hosts, now, policy)
    if serving_problem:
        reasons.append(serving_problem)
        renewed.append("serving")
        serving = issue_serving_certificate(current.ca, hosts, now, policy)
    return RotationPlan(
        CertificateBundle(current.ca, serving, previous), tuple(renewed), tuple(reasons)
    )


def bundle_from_secret_data(data: Mapping[str, str] | None) -> CertificateBundle | None:
    """A bundle from a Secret's base64 `data`; None when any part is missing or malformed.

    A damaged Secret is treated like a missing one (a new CA is issued) rather than crashing
    the webhook: the configurations get the new `caBundle` in the same step.
    """
    if not data:
        return None
    try:
        decoded = {
            key: base64.b64decode(data[key], validate=True)
            for key in (SECRET_TLS_CERT, SECRET_TLS_KEY, SECRET_CA_CERT, SECRET_CA_KEY)
        }
    except (KeyError, ValueError, TypeError):
        return None
    cas = _split_pem(decoded[SECRET_CA_CERT])
    if not cas:
        return None
    bundle = CertificateBundle(
        ca=KeyPair(cas[0], decoded[SECRET_CA_KEY]),
        serving=KeyPair(decoded[SECRET_TLS_CERT], decoded[SECRET_TLS_KEY]),
        previous_ca_pem=b"".join(cas[1:]),
    )
    return None if _unreadable(bundle) else bundle


def secret_data(bundle: CertificateBundle) -> dict[str, str]:
    """The Secret's base64 `data` for a bundle (type kubernetes.io/tls, plus the CA's key)."""
    return {
        SECRET_TLS_CERT: base64.b64encode(bundle.serving.cert_pem).decode(),
        SECRET_TLS_KEY: base64.b64encode(bundle.serving.key_pem).decode(),
        SECRET_CA_CERT: base64.b64encode(bundle.ca_bundle).decode(),
        SECRET_CA_KEY: base64.b64encode(bundle.ca.key_pem).decode(),
    }


def render_secret(name: str, namespace: str, bundle: CertificateBundle) -> dict[str, Any]:
    """The Secret manifest holding `bundle`."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "aigis",
                "app.kubernetes.io/component": "admission-webhook",
            },
        },
        "data": secret_data(bundle),
    }


def not_after(pem: bytes) -> datetime | None:
    """When the first certificate of `pem` expires; None when there is none."""
    certificates = _load_all(pem)
    return certificates[0].not_valid_after_utc if certificates else None


def material_from_bundle(bundle: CertificateBundle) -> ServingMaterial:
    return ServingMaterial(bundle.serving.cert_pem, bundle.serving.key_pem, bundle.ca_bundle)


def _ca_problem(current: CertificateBundle | None, now: datetime, policy: RotationPolicy) -> str:
    if current is None:
        return ""
    if _unreadable(current):
        return "the stored certificates cannot be read"
    ca = current.ca.certificate
    if not _key_matches(ca, current.ca.key_pem):
        return "the CA key does not belong to the CA certificate"
    if now >= renewal_time(ca, policy):
        return f"the CA is past its renewal time (expires {ca.not_valid_after_utc:%Y-%m-%d})"
    return ""


def _serving_problem(
    current: CertificateBundle, hosts: ServingHosts, now: datetime, policy: RotationPolicy
) -> str:
    cert = current.serving.certificate
    if now >= renewal_time(cert, policy):
        expires = f"{cert.not_valid_after_utc:%Y-%m-%d}"
        return f"the serving certificate is past its renewal time (expires {expires})"
    if not _key_matches(cert, current.serving.key_pem):
        return "the serving key does not belong to the serving certificate"
    try:
        cert.verify_directly_issued_by(current.ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return "the serving certificate was not issued by the current CA"
    missing = _missing_hosts(cert, hosts)
    if missing:
        return f"the serving certificate lacks {', '.join(missing)}"
    return ""


def _missing_hosts(certificate: x509.Certificate, hosts: ServingHosts) -> list[str]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [*hosts.dns_names, *hosts.ip_addresses]
    dns = {name.lower() for name in sans.get_values_for_type(x509.DNSName)}
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return [n for n in hosts.dns_names if n.lower() not in dns] + [
        ip for ip in hosts.ip_addresses if str(ipaddress.ip_address(ip)) not in ips
    ]


def _unreadable(bundle: CertificateBundle) -> bool:
    try:
        bundle.ca.certificate  # noqa: B018 - parsing is the check
        bundle.serving.certificate  # noqa: B018
        for pem in (bundle.ca.key_pem, bundle.serving.key_pem):
            if not isinstance(serialization.load_pem_private_key(pem, password=None), PrivateKey):
                return True
    except (ValueError, TypeError):
        return True
    return False


def _key_matches(certificate: x509.Certificate, key_pem: bytes) -> bool:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return bool(key.public_key() == certificate.public_key())


def _still_valid(pem: bytes, now: datetime) -> bytes:
    return b"".join(_cert_pem(c) for c in _load_all(pem) if c.not_valid_after_utc > now)


def _split_pem(pem: bytes) -> list[bytes]:
    return [_cert_pem(c) for c in _load_all(pem)]


def _load_all(pem: bytes) -> list[x509.Certificate]:
    if not pem.strip():
        return []
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []


def _cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# --- shell ----------------------------------------------------------------------------------


class SecretApi(Protocol):
    """The three calls the Secret source needs (`aigis.kube.KubeClient` has them)."""

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def create_secret(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create; None when it already exists (another replica was first)."""

    async def replace_secret(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """Replace at `metadata.resourceVersion`; None when that version is no longer current."""


@dataclass(frozen=True, slots=True)
class SourceUpdate:
    """One look at a certificate source: the material now in force and what changed."""

    material: ServingMaterial
    renewed: tuple[str, ...] = ()
    """`ca` and/or `serving` when this process issued new ones (for the rotations counter)."""
    next_check: datetime | None = None


class CertificateSource(Protocol):
    async def refresh(self, now: datetime) -> SourceUpdate: ...


class SecretCertificateSource:
    """aigis's own CA and serving certificate, kept in a Secret in aigis's namespace."""

    def __init__(
        self,
        api: SecretApi,
        namespace: str,
        name: str,
        hosts: ServingHosts,
        policy: RotationPolicy | None = None,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self._hosts = hosts
        self._policy = policy or RotationPolicy()

    async def refresh(self, now: datetime) -> SourceUpdate:
        """Read the Secret; issue and store what is due; return what to serve.

        Two attempts: when another replica writes between our read and our write, its bundle
        wins and is re-read (and then normally needs nothing).
        """
        for _ in range(3):
            existing = await self._api.get_secret(self._namespace, self._name)
            current = bundle_from_secret_data((existing or {}).get("data"))
            plan = await asyncio.to_thread(plan_rotation, current, self._hosts, now, self._policy)
            if plan.changed and not await self._store(existing, plan.bundle):
                continue
            if plan.changed:
                log.info(
                    "webhook certificates in Secret %s/%s: %s",
                    self._namespace,
                    self._name,
                    "; ".join(plan.reasons),
                )
            return SourceUpdate(
                material_from_bundle(plan.bundle),
                renewed=plan.renewed,
                next_check=next_renewal(plan.bundle, self._policy),
            )
        raise RuntimeError(
            f"Secret {self._namespace}/{self._name} kept changing while aigis tried to update it"
        )

    async def _store(self, existing: Mapping[str, Any] | None, bundle: CertificateBundle) -> bool:
        manifest = render_secret(self._name, self._namespace, bundle)
        if existing is None:
            return await self._api.create_secret(manifest) is not None
        manifest["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        return await self._api.replace_secret(manifest) is not None


class DirectoryCertificateSource:
    """Certificates another tool mounts (cert-manager: tls.crt, tls.key, ca.crt); read-only.

    The kubelet updates a mounted Secret by swapping a symlink, so a plain re-read on every check
    sees either the old or the new files, never a mix of both.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def refresh(self, now: datetime) -> SourceUpdate:
        return SourceUpdate(await asyncio.to_thread(self.read))

    def read(self) -> ServingMaterial:
        cert = (self._directory / SECRET_TLS_CERT).read_bytes()
        key = (self._directory / SECRET_TLS_KEY).read_bytes()
        ca_path = self._directory / SECRET_CA_CERT
        ca = ca_path.read_bytes() if ca_path.is_file() else None
        material = ServingMaterial(cert, key, ca if ca and ca.strip() else None)
        problems = material_problems(material)
        if problems:
            raise ValueError(f"{self._directory}: {'; '.join(problems)}")
        return material


class ReloadableTLS:
    """The server's one SSL context, whose certificate can be replaced while it serves.

    `load_cert_chain` on a context in use changes what the *next* handshakes present; every
    connection already open keeps the certificate it was set up with, so nothing is dropped.
    Python can only load a key from a file, so the material passes through a private temporary
    directory that is removed at once.
    """

    def __init__(self, temporary_directory: Path | None = None) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._temporary_directory = temporary_directory
        self.fingerprint: str | None = None

    def load(self, material: ServingMaterial) -> bool:
        """Serve `material` from now on; False when it is already what is served."""
        if material.fingerprint == self.fingerprint:
            return False
        with tempfile.TemporaryDirectory(
            prefix="aigis-tls-", dir=self._temporary_directory
        ) as directory:
            cert = Path(directory) / "tls.crt"
            key = Path(directory) / "tls.key"
            cert.write_bytes(material.cert_pem)
            descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(material.key_pem)
            self.context.load_cert_chain(cert, key)
        self.fingerprint = material.fingerprint
        return True

    @property
    def loaded(self) -> bool:
        return self.fingerprint is not None


@dataclass
class CertificateKeeper:
    """Keeps the served certificate and the configurations' `caBundle` current.

    On every check: refresh the source; when the CA changed, hand the new bundle to
    `publish_ca_bundle` (the webhook configurations) and give the API server `ca_grace` to pick
    it up before serving a certificate of the new CA; then load the material into the server.
    """

    source: CertificateSource
    tls: ReloadableTLS
    publish_ca_bundle: Callable[[bytes], Awaitable[None]]
    observe: Callable[[SourceUpdate], None]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    check_interval: timedelta = timedelta(minutes=5)
    ca_grace: timedelta = timedelta(seconds=5)
    retry_interval: timedelta = timedelta(seconds=30)
    material: ServingMaterial | None = None

    async def check(self) -> SourceUpdate:
        """One refresh; raises what the source raised (the caller decides whether to retry)."""
        update = await self.source.refresh(self.clock())
        self.observe(update)
        served = self.material
        changed = served is None or update.material.fingerprint != served.fingerprint
        if changed and update.material.ca_bundle is not None:
            await self.publish_ca_bundle(update.material.ca_bundle)
            # Compared with what is served, not with the last look: after a failed publish the
            # next check must still wait before serving a certificate of the new CA.
            if served is not None and served.ca_bundle != update.material.ca_bundle:
                await asyncio.sleep(self.ca_grace.total_seconds())
        if self.tls.load(update.material):
            log.info("serving certificate loaded (expires %s)", not_after(update.material.cert_pem))
        self.material = update.material
        return update

    async def run(self) -> None:
        """Check until cancelled: by the interval, or sooner when a renewal falls due."""
        delay = self.check_interval.total_seconds()
        while True:
            await asyncio.sleep(delay)
            try:
                update = await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("checking the webhook certificates failed; retrying")
                delay = self.retry_interval.total_seconds()
                continue
            delay = self.check_interval.total_seconds()
            if update.next_check is not None:
                until = (update.next_check - self.clock()).total_seconds()
                delay = max(1.0, min(delay, until))


def certificate_expiries(material: ServingMaterial) -> dict[str, datetime]:
    """Expiry of the serving certificate and of the (current) CA, for the metric."""
    found: dict[str, datetime] = {}
    serving = not_after(material.cert_pem)
    if serving is not None:
        found["serving"] = serving
    ca = not_after(material.ca_bundle or b"")
    if ca is not None:
        found["ca"] = ca
    return found


def material_problems(material: ServingMaterial) -> list[str]:
    """What is wrong with mounted material (key not matching, CA not the issuer), for a clear
    message at start instead of handshakes that fail later."""
    certificates = _load_all(material.cert_pem)
    if not certificates:
        return ["tls.crt holds no PEM certificate"]
    problems: list[str] = []
    try:
        if not _key_matches(certificates[0], material.key_pem):
            problems.append("tls.key does not belong to tls.crt")
    except (ValueError, TypeError):
        problems.append("tls.key is not a PEM private key")
    if material.ca_bundle is not None:
        cas = _load_all(material.ca_bundle)
        if not cas:
            problems.append("ca.crt holds no PEM certificate")
        elif not any(_issued_by(certificates[0], ca) for ca in cas):
            problems.append("tls.crt was not issued by any CA in ca.crt")
    return problems


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
