"""DANE (RFC 7672) on the way out: DNSSEC-validated TLSA records make TLS mandatory and decide which
certificate the MX host may present; records DNSSEC did not vouch for change nothing."""

from __future__ import annotations

import hashlib
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kittiwake.resolver import DnspythonResolver
from tests.dns_server import dns_server
from tests.fakes import FakeClock, FakeResolver
from tests.service.queue.harness import settle, submit
from tests.service.queue.sink import Sink, running_sinks
from tests.service.server_harness import RunningServer, running_server

DOMAIN = "dane.test"
MX = "mx.dane.test"
RECIPIENT = f"friend@{DOMAIN}"


@dataclass(frozen=True)
class Certificate:
    """A trustme CA and a certificate for MX, with the TLSA data that name them."""

    ca: trustme.CA
    leaf: trustme.LeafCert

    def server_context(self, tmp_path: Path, *, with_ca: bool = False) -> ssl.SSLContext:
        """The sink's TLS context; `with_ca` sends the CA certificate after the server's (for DANE-TA)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        chain = tmp_path / "chain.pem"
        chain.write_bytes(
            b"".join(pem.bytes() for pem in self.leaf.cert_chain_pems) + self.ca.cert_pem.bytes()
        )
        key = tmp_path / "key.pem"
        self.leaf.private_key_pem.write_to_path(str(key))
        if with_ca:
            context.load_cert_chain(chain, key)
        else:
            self.leaf.configure_cert(context)
        return context

    @property
    def spki_sha256(self) -> bytes:
        certificate = x509.load_pem_x509_certificate(self.leaf.cert_chain_pems[0].bytes())
        spki = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(spki).digest()

    @property
    def ca_sha256(self) -> bytes:
        ca = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        return hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).digest()


@pytest.fixture(scope="module")
def certificate() -> Certificate:
    ca = trustme.CA()
    return Certificate(ca=ca, leaf=ca.issue_cert(MX))


@pytest.fixture
def resolver() -> FakeResolver:
    """dane.test's MX RRset is DNSSEC-validated; TLSA records are added by each test."""
    return FakeResolver(mx_records={DOMAIN: [(10, MX)]}, a_records={MX: ["127.0.0.2"]}, secure={DOMAIN})


def tlsa_name(port: int) -> str:
    return f"_{port}._tcp.{MX}"  # RFC 7672 §2.2.3, at the port the tests' MX listens on


def publish(
    resolver: FakeResolver, port: int, record: tuple[int, int, int, bytes], *, secure: bool = True
) -> None:
    resolver.tlsa_records[tlsa_name(port)] = [record]
    if secure:
        resolver.secure.add(tlsa_name(port))


def attempts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("attempt ")]


async def state(server: RunningServer) -> tuple[str, str]:
    (entry,) = await server.store.load_queue()
    (recipient,) = entry.recipients
    return recipient.status, recipient.last_reply or ""


async def test_matching_dane_ee_record_delivers_over_verified_tls(
    server: RunningServer,
    resolver: FakeResolver,
    sink_port: int,
    certificate: Certificate,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="kittiwake.queue")
    publish(resolver, sink_port, (3, 1, 1, certificate.spki_sha256))
    sink = Sink(starttls=certificate.server_context(tmp_path))
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, [RECIPIENT])
        await settle(server)
        await submit(server, [f"other@{DOMAIN}"])
        await settle(server)
    assert [r.tls for r in sink.received] == [True, True]
    assert sink.connections == 1  # the kept session still meets the host's DANE requirement
    assert all(" tls=dane result=delivered " in line for line in attempts(caplog))
    assert ("TLSA", tlsa_name(sink_port)) in resolver.queries


async def test_matching_dane_ta_record_delivers(
    server: RunningServer, resolver: FakeResolver, sink_port: int, certificate: Certificate, tmp_path: Path
) -> None:
    publish(resolver, sink_port, (2, 0, 1, certificate.ca_sha256))
    sink = Sink(starttls=certificate.server_context(tmp_path, with_ca=True))
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, [RECIPIENT])
        await settle(server)
    assert [r.tls for r in sink.received] == [True]


async def test_mismatching_record_defers_and_delivers_nothing(
    server: RunningServer,
    resolver: FakeResolver,
    sink_port: int,
    certificate: Certificate,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="kittiwake.queue")
    publish(resolver, sink_port, (3, 1, 1, hashlib.sha256(b"another key").digest()))
    sink = Sink(starttls=certificate.server_context(tmp_path))
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, [RECIPIENT])
        await settle(server)
    assert sink.received == [] and sink.connections == 1
    assert b"MAIL" not in sink.commands
    status, reply = await state(server)
    assert status == "deferred" and reply.startswith("4.7.5 Certificate of mx.dane.test does not match")
    (line,) = attempts(caplog)
    assert " tls=dane-failed result=deferred " in line


async def test_records_dnssec_did_not_vouch_for_are_ignored(
    server: RunningServer, resolver: FakeResolver, sink_port: int, certificate: Certificate, tmp_path: Path
) -> None:
    publish(resolver, sink_port, (3, 1, 1, hashlib.sha256(b"another key").digest()), secure=False)
    sink = Sink(starttls=certificate.server_context(tmp_path))
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, [RECIPIENT])
        await settle(server)
    assert [r.tls for r in sink.received] == [True]  # opportunistic TLS, as without DANE


async def test_an_insecure_mx_rrset_means_no_tlsa_lookup_at_all(
    server: RunningServer, resolver: FakeResolver, sink_port: int
) -> None:
    resolver.secure.discard(DOMAIN)
    publish(resolver, sink_port, (3, 1, 1, hashlib.sha256(b"another key").digest()))
    sink = Sink()
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, [RECIPIENT])
        await settle(server)
    assert len(sink.received) == 1
    assert not [query for query in resolver.queries if query[0] == "TLSA"]


async def test_a_server_without_starttls_is_not_used_when_its_tlsa_records_are_secure(
    server: RunningServer, resolver: FakeResolver, sink_port: int, certificate: Certificate
) -> None:
    publish(resolver, sink_port, (3, 1, 1, certificate.spki_sha256))
    sink = Sink()  # offers no STARTTLS
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, [RECIPIENT])
        await settle(server)
    assert sink.received == []
    status, reply = await state(server)
    assert (
        status == "deferred"
        and reply == "4.7.5 mx.dane.test offers no STARTTLS, which its TLSA records require (DANE)"
    )


async def test_a_failed_tlsa_lookup_for_a_secure_mx_defers(
    server: RunningServer, resolver: FakeResolver, sink_port: int
) -> None:
    resolver.failing.add(tlsa_name(sink_port))
    sink = Sink()
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, [RECIPIENT])
        await settle(server)
    assert sink.connections == 0
    status, reply = await state(server)
    assert status == "deferred" and reply == "4.7.5 TLSA lookup for mx.dane.test failed (DANE)"


class PolicyFile:
    def __init__(self, text: str) -> None:
        self.text = text
        self.fetched: list[str] = []

    async def fetch(self, domain: str) -> bytes:
        self.fetched.append(domain)
        return self.text.encode()


async def test_dane_takes_precedence_over_mta_sts(
    server: RunningServer, resolver: FakeResolver, sink_port: int, certificate: Certificate, tmp_path: Path
) -> None:
    # An enforced MTA-STS policy that names another MX would defer this mail; DANE decides instead.
    resolver.txt_records[f"_mta-sts.{DOMAIN}"] = [b"v=STSv1; id=1"]
    policy = PolicyFile("version: STSv1\r\nmode: enforce\r\nmx: elsewhere.example\r\nmax_age: 86400\r\n")
    worker = server.services.queue
    assert worker is not None
    worker.sts_fetcher = policy
    publish(resolver, sink_port, (3, 1, 1, certificate.spki_sha256))
    sink = Sink(starttls=certificate.server_context(tmp_path))
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, [RECIPIENT])
        await settle(server)
    assert [r.tls for r in sink.received] == [True]
    assert policy.fetched == []


async def test_dane_can_be_turned_off(
    tmp_path: Path, resolver: FakeResolver, sink_port: int, certificate: Certificate
) -> None:
    publish(resolver, sink_port, (3, 1, 1, hashlib.sha256(b"another key").digest()))
    overrides = {"queue.remote_port": sink_port, "queue.dane": False}
    sink = Sink(starttls=certificate.server_context(tmp_path))
    async with (
        running_server(tmp_path / "site", overrides, resolver=resolver, clock=FakeClock()) as server,
        running_sinks(sink_port, {"127.0.0.2": sink}),
    ):
        await submit(server, [RECIPIENT])
        await settle(server)
    assert len(sink.received) == 1


@pytest.fixture
async def dnssec_site(
    tmp_path: Path, sink_port: int, certificate: Certificate
) -> AsyncIterator[tuple[RunningServer, DnspythonResolver]]:
    """kittiwake resolving through the loopback DNS server, which sets AD for dane.test as a local
    validating resolver would: the whole path from the AD bit to the certificate check."""
    zone = {
        (DOMAIN, "MX"): [f"10 {MX}."],
        (MX, "A"): ["127.0.0.2"],
        (tlsa_name(sink_port), "TLSA"): [f"3 1 1 {certificate.spki_sha256.hex()}"],
    }
    async with dns_server(zone, secure={DOMAIN, tlsa_name(sink_port)}) as address:
        resolver = DnspythonResolver(address, timeout=5)
        overrides = {"queue.remote_port": sink_port, "dns.resolver": address}
        async with running_server(
            tmp_path / "site", overrides, resolver=resolver, clock=FakeClock()
        ) as server:
            yield server, resolver


async def test_dane_through_a_real_resolver_that_sets_the_ad_bit(
    dnssec_site: tuple[RunningServer, DnspythonResolver],
    sink_port: int,
    certificate: Certificate,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, _ = dnssec_site
    caplog.set_level(logging.INFO, logger="kittiwake.queue")
    sink = Sink(starttls=certificate.server_context(tmp_path))
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, [RECIPIENT])
        await settle(server)
    assert [r.tls for r in sink.received] == [True]
    (line,) = attempts(caplog)
    assert " tls=dane result=delivered " in line
