"""Issuing X.509 certificates: the one way aigis builds a CA and a certificate signed by it.

Used by the admission webhook (its own CA and serving certificate) and by the development
control plane (its cluster PKI). ECDSA P-256 keys and SHA-256 signatures throughout; the
callers choose names, lifetimes and key usages. Pure apart from key generation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

PrivateKey = ec.EllipticCurvePrivateKey


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def build_ca(
    key: PrivateKey,
    name: x509.Name,
    not_before: datetime,
    not_after: datetime,
    *,
    path_length: int | None,
) -> x509.Certificate:
    """A self-signed CA certificate for `key`; `path_length` 0 allows end-entity certs only."""
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_leaf(
    key: PrivateKey,
    subject: x509.Name,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    not_before: datetime,
    not_after: datetime,
    *,
    usage: x509.ObjectIdentifier,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> x509.Certificate:
    """An end-entity certificate for `key` (server or client auth), signed by `issuer`."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())
