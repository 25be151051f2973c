"""Certificates and keys for the local control plane, minted in-process with ``cryptography``.

Every component talks TLS with verified certificates, as in a real cluster, so the operator's code
paths (client certificates, CA bundles, ServiceAccount tokens) are exercised for real. Keys are
ECDSA P-256 because generating them takes microseconds; the ServiceAccount signing key is RSA
because that is what clusters conventionally use for the RS256 tokens the operator will see.

The material is regenerated on every clean ``up``: nothing here is meant to be long-lived.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aigis.devcluster.layout import KUBERNETES_SERVICE_IP, LOOPBACK, NODE_NAME
from aigis.tls import build_ca, build_leaf, new_key

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
# Tolerates small clock differences between this process and the components that verify.
BACKDATE = dt.timedelta(minutes=5)

APISERVER_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
LOOPBACK_DNS_NAMES = ("localhost",)

FRONT_PROXY_CLIENT_NAME = "front-proxy-client"

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Authority:
    """A CA that can issue leaf certificates."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class ClientIdentity:
    """Who a client certificate authenticates as: CN is the user, O entries are the groups."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


# Client identities of the control plane. kwok acts for every simulated kubelet (it writes node
# status, leases and pod status of any node and deletes pods), which the Node authorizer would
# refuse to a single node identity, so it gets cluster-admin rights the same way kwokctl does.
ADMIN = ClientIdentity("admin", "kubernetes-admin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("kube-controller-manager", "system:kube-controller-manager")
SCHEDULER = ClientIdentity("kube-scheduler", "system:kube-scheduler")
KWOK = ClientIdentity("kwok", "kwok-controller", ("system:masters",))
APISERVER_KUBELET_CLIENT = ClientIdentity(
    "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)
)
CLIENT_IDENTITIES = (ADMIN, CONTROLLER_MANAGER, SCHEDULER, KWOK, APISERVER_KUBELET_CLIENT)

# Serving certificates: file stem -> extra DNS names beyond "localhost". All carry IP SAN 127.0.0.1.
SERVING_CERTS: dict[str, tuple[str, ...]] = {
    "kube-controller-manager-serving": (),
    "kube-scheduler-serving": (),
    "kwok-kubelet-serving": (NODE_NAME,),
}


@dataclass(frozen=True)
class PkiFiles:
    """Paths of everything ``write_pki`` creates, named for what the components use them for."""

    directory: Path

    def cert(self, stem: str) -> Path:
        return self.directory / f"{stem}.crt"

    def key(self, stem: str) -> Path:
        return self.directory / f"{stem}.key"

    @property
    def ca_cert(self) -> Path:
        return self.cert("ca")

    @property
    def ca_key(self) -> Path:
        return self.key("ca")

    @property
    def front_proxy_ca_cert(self) -> Path:
        return self.cert("front-proxy-ca")

    @property
    def service_account_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def service_account_public_key(self) -> Path:
        return self.directory / "sa.pub"


def write_pki(directory: Path) -> PkiFiles:
    """Create a fresh CA, every component certificate and the ServiceAccount key pair."""
    files = PkiFiles(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)

    cluster_ca = new_authority("aigis-devcluster-ca")
    _write_cert_and_key(files, "ca", cluster_ca.cert, cluster_ca.key)
    _write_serving_cert(
        files,
        "apiserver",
        cluster_ca,
        dns_names=APISERVER_DNS_NAMES,
        ip_addresses=(LOOPBACK, KUBERNETES_SERVICE_IP),
    )
    for stem, extra_dns in SERVING_CERTS.items():
        _write_serving_cert(
            files,
            stem,
            cluster_ca,
            dns_names=(*LOOPBACK_DNS_NAMES, *extra_dns),
            ip_addresses=(LOOPBACK,),
        )
    for identity in CLIENT_IDENTITIES:
        _write_client_cert(files, identity, cluster_ca)

    # A separate CA for the aggregation layer's front proxy: any certificate signed by the
    # requestheader CA may assert arbitrary users, so it must not be the cluster CA.
    front_proxy_ca = new_authority("aigis-devcluster-front-proxy-ca")
    _write_cert_and_key(files, "front-proxy-ca", front_proxy_ca.cert, front_proxy_ca.key)
    _write_client_cert(
        files, ClientIdentity("front-proxy-client", FRONT_PROXY_CLIENT_NAME), front_proxy_ca
    )

    _write_service_account_keys(files)
    return files


def new_authority(common_name: str) -> Authority:
    """A self-signed CA certificate with its key."""
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = build_ca(key, name, now - BACKDATE, now + CA_VALIDITY, path_length=None)
    return Authority(key=key, cert=cert)


def issue_leaf(
    authority: Authority,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate for server or client authentication, signed by ``authority``."""
    key = new_key()
    now = _now()
    cert = build_leaf(
        key,
        subject,
        authority.cert,
        authority.key,
        now - BACKDATE,
        now + LEAF_VALIDITY,
        usage=usage,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
    )
    return cert, key


def _write_serving_cert(
    files: PkiFiles,
    stem: str,
    authority: Authority,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
) -> None:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)])
    cert, key = issue_leaf(
        authority, subject, ExtendedKeyUsageOID.SERVER_AUTH, dns_names, ip_addresses
    )
    _write_cert_and_key(files, stem, cert, key)


def _write_client_cert(files: PkiFiles, identity: ClientIdentity, authority: Authority) -> None:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in identity.groups]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, identity.user))
    cert, key = issue_leaf(authority, x509.Name(attributes), ExtendedKeyUsageOID.CLIENT_AUTH)
    _write_cert_and_key(files, identity.file_stem, cert, key)


def _write_service_account_keys(files: PkiFiles) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(files.service_account_key, _private_pem(key))
    files.service_account_public_key.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _write_cert_and_key(
    files: PkiFiles, stem: str, cert: x509.Certificate, key: SigningKey
) -> None:
    files.cert(stem).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(files.key(stem), _private_pem(key))


def _private_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, content: bytes) -> None:
    """Write a private key readable by the owner only."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(content)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
