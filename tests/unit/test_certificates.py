"""Webhook certificates: issuing, when to rotate, the Secret and directory sources, hot reload."""

from __future__ import annotations

import asyncio
import copy
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509

from aigis.webhook.certificates import (
    CertificateBundle,
    CertificateKeeper,
    DirectoryCertificateSource,
    KeyPair,
    ReloadableTLS,
    RotationPolicy,
    SecretCertificateSource,
    ServingHosts,
    ServingMaterial,
    SourceUpdate,
    bundle_from_secret_data,
    certificate_expiries,
    issue_ca,
    issue_serving_certificate,
    material_from_bundle,
    plan_rotation,
    renewal_time,
    secret_data,
    serving_hosts,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POLICY = RotationPolicy()
HOSTS = serving_hosts(service_name="aigis-webhook", service_namespace="aigis-system")


def fresh_bundle(now: datetime = NOW, hosts: ServingHosts = HOSTS) -> CertificateBundle:
    ca = issue_ca(now, POLICY)
    return CertificateBundle(ca, issue_serving_certificate(ca, hosts, now, POLICY))


def sans(pair: KeyPair) -> tuple[set[str], set[str]]:
    extension = pair.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    value = extension.value
    return (
        set(value.get_values_for_type(x509.DNSName)),
        {str(ip) for ip in value.get_values_for_type(x509.IPAddress)},
    )


def test_serving_hosts_cover_loopback_and_the_service_names() -> None:
    hosts = serving_hosts(
        service_name="aigis-webhook", service_namespace="aigis-system", url_host="10.0.0.7"
    )
    assert hosts.ip_addresses == ("127.0.0.1", "10.0.0.7")
    assert set(hosts.dns_names) == {
        "localhost",
        "aigis-webhook",
        "aigis-webhook.aigis-system",
        "aigis-webhook.aigis-system.svc",
        "aigis-webhook.aigis-system.svc.cluster.local",
    }


def test_issued_certificates_have_the_right_shape() -> None:
    bundle = fresh_bundle()
    ca = bundle.ca.certificate
    serving = bundle.serving.certificate
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not serving.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    serving.verify_directly_issued_by(ca)
    assert sans(bundle.serving) == (set(HOSTS.dns_names), {"127.0.0.1"})
    assert serving.not_valid_after_utc - NOW == POLICY.serving_lifetime
    assert ca.not_valid_after_utc - NOW == POLICY.ca_lifetime
    # Backdated, so an API server whose clock is a little behind accepts it.
    assert serving.not_valid_before_utc < NOW


def test_renewal_is_at_two_thirds_of_the_life() -> None:
    serving = fresh_bundle().serving.certificate
    life = serving.not_valid_after_utc - serving.not_valid_before_utc
    assert renewal_time(serving, POLICY) == serving.not_valid_before_utc + life * 2 / 3
    # 90 days of life: renewed after about 60, a month before it would expire.
    assert timedelta(days=59) < renewal_time(serving, POLICY) - NOW < timedelta(days=61)


def _other_ca_serving(bundle: CertificateBundle) -> CertificateBundle:
    other = issue_ca(NOW, POLICY)
    return CertificateBundle(bundle.ca, issue_serving_certificate(other, HOSTS, NOW, POLICY))


def _swapped_serving_key(bundle: CertificateBundle) -> CertificateBundle:
    other = fresh_bundle()
    return CertificateBundle(bundle.ca, KeyPair(bundle.serving.cert_pem, other.serving.key_pem))


@pytest.mark.parametrize(
    ("make", "at", "hosts", "renewed"),
    [
        pytest.param(lambda b: None, NOW, HOSTS, ("ca", "serving"), id="nothing-yet"),
        pytest.param(lambda b: b, NOW, HOSTS, (), id="fresh-kept"),
        pytest.param(lambda b: b, NOW + timedelta(days=59), HOSTS, (), id="serving-day-59-kept"),
        pytest.param(
            lambda b: b, NOW + timedelta(days=61), HOSTS, ("serving",), id="serving-day-61-renewed"
        ),
        pytest.param(
            lambda b: b,
            NOW + timedelta(days=2440),
            HOSTS,
            ("ca", "serving"),
            id="ca-past-two-thirds-renewed",
        ),
        pytest.param(
            lambda b: b,
            NOW,
            ServingHosts((*HOSTS.dns_names, "new.example"), HOSTS.ip_addresses),
            ("serving",),
            id="missing-host-renewed",
        ),
        pytest.param(_other_ca_serving, NOW, HOSTS, ("serving",), id="foreign-issuer-renewed"),
        pytest.param(_swapped_serving_key, NOW, HOSTS, ("serving",), id="key-mismatch-renewed"),
    ],
)
def test_plan_rotation(
    make: Any, at: datetime, hosts: ServingHosts, renewed: tuple[str, ...]
) -> None:
    current = make(fresh_bundle())
    plan = plan_rotation(current, hosts, at, POLICY)
    assert plan.renewed == renewed
    assert plan.changed == bool(renewed)
    bundle = plan.bundle
    bundle.serving.certificate.verify_directly_issued_by(bundle.ca.certificate)
    assert renewal_time(bundle.serving.certificate, POLICY) > at
    dns, ips = sans(bundle.serving)
    assert set(hosts.dns_names) <= dns
    assert set(hosts.ip_addresses) <= ips


def test_a_new_ca_keeps_the_old_one_trusted_until_it_expires() -> None:
    old = fresh_bundle()
    at = NOW + timedelta(days=2440)
    rotated = plan_rotation(old, HOSTS, at, POLICY).bundle
    assert rotated.ca.cert_pem != old.ca.cert_pem
    assert rotated.previous_ca_pem == old.ca.cert_pem
    assert rotated.ca_bundle == rotated.ca.cert_pem + old.ca.cert_pem
    # Once the old CA has expired it leaves the bundle.
    later = old.ca.certificate.not_valid_after_utc + timedelta(days=1)
    plan = plan_rotation(rotated, HOSTS, later, POLICY)
    assert plan.bundle.previous_ca_pem == b""
    assert plan.changed


def test_secret_data_round_trip_and_damage() -> None:
    bundle = fresh_bundle()
    data = secret_data(bundle)
    assert set(data) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
    assert bundle_from_secret_data(data) == bundle
    for broken in (
        {k: v for k, v in data.items() if k != "ca.key"},
        {**data, "tls.crt": "not base64!"},
        {**data, "ca.crt": "aGVsbG8="},
        {},
        None,
    ):
        assert bundle_from_secret_data(broken) is None


class FakeSecrets:
    """An API server holding Secrets, with resourceVersions and a conflict to inject."""

    def __init__(self) -> None:
        self.secret: dict[str, Any] | None = None
        self.version = 0
        self.writes = 0
        self.race: dict[str, Any] | None = None

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.race is not None:
            self._store(self.race)
            self.race = None
        return copy.deepcopy(self.secret)

    async def create_secret(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        if self.secret is not None:
            return None
        return self._store(manifest)

    async def replace_secret(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        assert self.secret is not None
        if manifest["metadata"]["resourceVersion"] != self.secret["metadata"]["resourceVersion"]:
            return None
        return self._store(manifest)

    def _store(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.writes += 1
        stored = copy.deepcopy(dict(manifest))
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.secret = stored
        return copy.deepcopy(stored)


def test_secret_source_creates_keeps_and_rotates() -> None:
    api = FakeSecrets()
    source = SecretCertificateSource(api, "aigis-system", "aigis-webhook-tls", HOSTS)

    async def scenario() -> None:
        first = await source.refresh(NOW)
        assert first.renewed == ("ca", "serving")
        assert api.writes == 1
        assert api.secret is not None
        assert api.secret["type"] == "kubernetes.io/tls"
        again = await source.refresh(NOW + timedelta(days=1))
        assert again.renewed == ()
        assert again.material == first.material
        assert api.writes == 1
        assert again.next_check is not None
        rotated = await source.refresh(again.next_check + timedelta(seconds=1))
        assert rotated.renewed == ("serving",)
        assert rotated.material.cert_pem != first.material.cert_pem
        assert rotated.material.ca_bundle == first.material.ca_bundle
        assert api.writes == 2

    asyncio.run(scenario())


def test_secret_source_adopts_what_another_replica_wrote_first() -> None:
    api = FakeSecrets()
    winner = fresh_bundle()
    source = SecretCertificateSource(api, "aigis-system", "aigis-webhook-tls", HOSTS)

    async def scenario() -> SourceUpdate:
        # Our first read sees nothing; before our create lands, the other replica creates.
        original_get = api.get_secret
        calls = 0

        async def get_then_race(namespace: str, name: str) -> dict[str, Any] | None:
            nonlocal calls
            calls += 1
            found = await original_get(namespace, name)
            if calls == 1:
                api._store(
                    {
                        "metadata": {"name": name, "namespace": namespace},
                        "type": "kubernetes.io/tls",
                        "data": secret_data(winner),
                    }
                )
            return found

        api.get_secret = get_then_race  # type: ignore[method-assign]
        return await source.refresh(NOW)

    update = asyncio.run(scenario())
    assert update.material == material_from_bundle(winner)
    assert api.writes == 1


def write_material(directory: Path, bundle: CertificateBundle, *, ca: bool = True) -> None:
    (directory / "tls.crt").write_bytes(bundle.serving.cert_pem)
    (directory / "tls.key").write_bytes(bundle.serving.key_pem)
    if ca:
        (directory / "ca.crt").write_bytes(bundle.ca.cert_pem)


def test_directory_source_reads_and_notices_changes(tmp_path: Path) -> None:
    first, second = fresh_bundle(), fresh_bundle()
    write_material(tmp_path, first)
    source = DirectoryCertificateSource(tmp_path)

    async def scenario() -> tuple[SourceUpdate, SourceUpdate, SourceUpdate]:
        a = await source.refresh(NOW)
        b = await source.refresh(NOW)
        write_material(tmp_path, second)
        c = await source.refresh(NOW)
        return a, b, c

    a, b, c = asyncio.run(scenario())
    assert a.material == material_from_bundle(first)
    assert b.material == a.material
    assert c.material == material_from_bundle(second)
    assert a.renewed == ()  # aigis issues nothing in this mode


def test_directory_source_without_ca_leaves_ca_bundle_alone(tmp_path: Path) -> None:
    write_material(tmp_path, fresh_bundle(), ca=False)
    update = asyncio.run(DirectoryCertificateSource(tmp_path).refresh(NOW))
    assert update.material.ca_bundle is None


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(
            lambda b, o: {"tls.key": o.serving.key_pem}, "does not belong", id="wrong-key"
        ),
        pytest.param(lambda b, o: {"ca.crt": o.ca.cert_pem}, "not issued by", id="wrong-ca"),
        pytest.param(lambda b, o: {"tls.crt": b"junk"}, "no PEM certificate", id="junk-cert"),
    ],
)
def test_directory_source_refuses_inconsistent_files(
    tmp_path: Path, damage: Any, message: str
) -> None:
    bundle, other = fresh_bundle(), fresh_bundle()
    write_material(tmp_path, bundle)
    for name, content in damage(bundle, other).items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        asyncio.run(DirectoryCertificateSource(tmp_path).refresh(NOW))


def test_expiries_for_the_metric() -> None:
    bundle = fresh_bundle()
    expiries = certificate_expiries(material_from_bundle(bundle))
    assert expiries == {
        "serving": bundle.serving.certificate.not_valid_after_utc,
        "ca": bundle.ca.certificate.not_valid_after_utc,
    }


# --- hot reload over real TLS on loopback ---------------------------------------------------


async def _handshake(port: int, ca_bundle: bytes) -> tuple[bytes, asyncio.StreamReader, Any]:
    context = ssl.create_default_context(cadata=ca_bundle.decode())
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return peer, reader, writer


async def _get_healthz(reader: asyncio.StreamReader, writer: Any) -> bytes:
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head.split(b"\r\n")[0] + b" " + await reader.readexactly(length)


def _der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


def test_reload_swaps_the_certificate_without_dropping_connections() -> None:
    # Real TLS checks validity against the real clock, so these are issued now.
    now = datetime.now(UTC)
    first = fresh_bundle(now)
    # A CA rotation, the hardest case: the new bundle trusts both CAs.
    new_ca = issue_ca(now, POLICY)
    second = CertificateBundle(
        new_ca, issue_serving_certificate(new_ca, HOSTS, now, POLICY), first.ca.cert_pem
    )
    tls = ReloadableTLS()

    async def healthz(request: web.BaseRequest) -> web.Response:
        return web.Response(text="ok")

    async def scenario() -> None:
        assert tls.load(material_from_bundle(first))
        assert not tls.load(material_from_bundle(first))
        runner = web.ServerRunner(web.Server(healthz), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context)
        await site.start()
        port = runner.addresses[0][1]
        try:
            peer, old_reader, old_writer = await _handshake(port, first.ca_bundle)
            assert peer == _der(first.serving.cert_pem)
            assert (await _get_healthz(old_reader, old_writer)).startswith(b"HTTP/1.1 200")
            assert tls.load(material_from_bundle(second))
            peer, _, writer = await _handshake(port, second.ca_bundle)
            assert peer == _der(second.serving.cert_pem)
            # The connection opened before the swap still works, with its old certificate.
            assert (await _get_healthz(old_reader, old_writer)).startswith(b"HTTP/1.1 200")
            old_writer.close()
            writer.close()
        finally:
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_keeper_publishes_a_new_ca_before_serving_its_certificate() -> None:
    first = fresh_bundle()
    second = plan_rotation(first, HOSTS, NOW + timedelta(days=2440), POLICY).bundle
    updates = [
        SourceUpdate(material_from_bundle(first)),
        SourceUpdate(material_from_bundle(first)),
        SourceUpdate(material_from_bundle(second), renewed=("ca", "serving")),
    ]
    tls = ReloadableTLS()
    log: list[str] = []

    class Source:
        async def refresh(self, now: datetime) -> SourceUpdate:
            return updates.pop(0)

    async def publish(ca_bundle: bytes) -> None:
        log.append(f"publish {len(ca_bundle)} serving={tls.fingerprint}")

    observed: list[SourceUpdate] = []
    keeper = CertificateKeeper(
        Source(), tls, publish, observed.append, ca_grace=timedelta(0), clock=lambda: NOW
    )

    async def scenario() -> None:
        await keeper.check()
        await keeper.check()
        await keeper.check()

    asyncio.run(scenario())
    first_fp = material_from_bundle(first).fingerprint
    assert log == [
        f"publish {len(first.ca_bundle)} serving=None",
        # The new bundle went out while the old certificate was still being served.
        f"publish {len(second.ca_bundle)} serving={first_fp}",
    ]
    assert tls.fingerprint == material_from_bundle(second).fingerprint
    assert len(observed) == 3


def test_material_fingerprint_depends_on_every_part() -> None:
    bundle = fresh_bundle()
    base = material_from_bundle(bundle)
    assert base.fingerprint != ServingMaterial(base.cert_pem, base.key_pem, None).fingerprint
    assert base.fingerprint != ServingMaterial(base.cert_pem, base.key_pem, b"x").fingerprint
