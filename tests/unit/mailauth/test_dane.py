from __future__ import annotations

import asyncio
import hashlib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.fakes import FakeResolver

from kittiwake.mailauth.dane import (
    Tlsa,
    TlsaLookup,
    dane_requirement,
    presented_chain,
    tlsa_for,
    verify_certificate_chain,
)

HOST = "mx.example.com"
NOW = datetime(2026, 11, 22, tzinfo=UTC)


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def spki(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def issue(
    subject: str,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    dns_names: tuple[str, ...] | None = (),
    not_after: datetime = NOW + timedelta(days=90),
) -> Issued:
    """A certificate for `subject`, self-signed unless `issuer` is given; dns_names None means no SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=365))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns_names is not None:
        names = dns_names or (subject,)
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


@cache
def pki() -> tuple[Issued, Issued, Issued]:
    """A root CA, an intermediate CA and the MX host's certificate, in chain order reversed."""
    root = issue("Example Root", ca=True, dns_names=None)
    intermediate = issue("Example Intermediate", issuer=root, ca=True, dns_names=None)
    return root, intermediate, issue(HOST, issuer=intermediate)


@cache
def self_signed() -> Issued:
    return issue(HOST)


def chain() -> list[bytes]:
    root, intermediate, server = pki()
    return [server.der, intermediate.der, root.der]


def association(data: bytes, mtype: int) -> bytes:
    return {0: data, 1: hashlib.sha256(data).digest(), 2: hashlib.sha512(data).digest()}[mtype]


def record(usage: int, selector: int, mtype: int, target: Issued) -> Tlsa:
    selected = target.der if selector == 0 else target.spki
    return Tlsa(usage=usage, selector=selector, mtype=mtype, data=association(selected, mtype))


# --- Looking up the records ---


async def test_tlsa_records_are_looked_up_under_port_and_protocol() -> None:
    resolver = FakeResolver(
        tlsa_records={"_25._tcp.mx.example.com": [(3, 1, 1, b"\x01" * 32)]},
        secure={"_25._tcp.mx.example.com"},
    )
    assert await tlsa_for("mx.example.com.", 25, resolver) == TlsaLookup(
        records=(Tlsa(usage=3, selector=1, mtype=1, data=b"\x01" * 32),), secure=True
    )
    assert resolver.queries == [("TLSA", "_25._tcp.mx.example.com")]


async def test_tlsa_lookup_uses_the_given_port() -> None:
    resolver = FakeResolver(tlsa_records={"_465._tcp.mx.example.com": [(2, 0, 1, b"\x02" * 32)]})
    found = await tlsa_for(HOST, 465, resolver)
    assert found is not None and len(found.records) == 1


@pytest.mark.parametrize(
    ("resolver", "expected"),
    [
        pytest.param(FakeResolver(), TlsaLookup(records=(), secure=False), id="no-records"),
        pytest.param(
            FakeResolver(missing={"_25._tcp.mx.example.com"}),
            TlsaLookup(records=(), secure=False),
            id="nxdomain",
        ),
        pytest.param(FakeResolver(failing={"_25._tcp.mx.example.com"}), None, id="servfail"),
    ],
)
async def test_tlsa_lookup_tells_no_records_from_failure(
    resolver: FakeResolver, expected: TlsaLookup | None
) -> None:
    assert await tlsa_for(HOST, 25, resolver) == expected


@pytest.mark.parametrize(
    ("secure", "requirement"), [(True, "authenticate"), (False, "none")], ids=["secure", "insecure"]
)
async def test_records_count_only_when_dnssec_vouched_for_them(secure: bool, requirement: str) -> None:
    name = "_25._tcp.mx.example.com"
    resolver = FakeResolver(
        tlsa_records={name: [(3, 1, 1, b"\x01" * 32)]}, secure={name} if secure else set()
    )
    found = await tlsa_for(HOST, 25, resolver)
    assert found is not None and found.requirement == requirement


# --- Which records count ---


@pytest.mark.parametrize(
    ("usage", "selector", "mtype", "usable"),
    [
        (3, 0, 0, True),
        (3, 1, 1, True),
        (2, 0, 2, True),
        (2, 1, 1, True),
        (0, 0, 1, False),  # RFC 7672 §3.1.3: PKIX-TA unusable for SMTP
        (1, 1, 1, False),  # RFC 7672 §3.1.3: PKIX-EE unusable for SMTP
        (4, 1, 1, False),
        (3, 2, 1, False),
        (3, 1, 3, False),
        (3, 1, 255, False),
    ],
)
def test_record_usability(usage: int, selector: int, mtype: int, usable: bool) -> None:
    assert Tlsa(usage=usage, selector=selector, mtype=mtype, data=b"").usable is usable


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([], "none"),
        ([Tlsa(usage=1, selector=1, mtype=1, data=b"")], "encrypt"),
        (
            [Tlsa(usage=1, selector=1, mtype=1, data=b""), Tlsa(usage=3, selector=1, mtype=1, data=b"")],
            "authenticate",
        ),
    ],
)
def test_dane_requirement_follows_usable_records(records: list[Tlsa], expected: str) -> None:
    assert dane_requirement(records) == expected


# --- DANE-EE(3) ---


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_dane_ee_matches_self_signed_certificate(selector: int, mtype: int) -> None:
    server = self_signed()
    assert verify_certificate_chain([server.der], [record(3, selector, mtype, server)], HOST)


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_dane_ee_rejects_another_certificate(selector: int, mtype: int) -> None:
    other = issue("other.example.com")
    assert not verify_certificate_chain([self_signed().der], [record(3, selector, mtype, other)], HOST)


def test_dane_ee_spki_match_survives_a_new_certificate_for_the_same_key() -> None:
    server = self_signed()
    renewed = x509.CertificateBuilder(
        subject_name=server.certificate.subject,
        issuer_name=server.certificate.subject,
        public_key=server.key.public_key(),
        serial_number=x509.random_serial_number(),
        not_valid_before=NOW,
        not_valid_after=NOW + timedelta(days=1),
    ).sign(server.key, hashes.SHA256())
    der = renewed.public_bytes(serialization.Encoding.DER)
    assert verify_certificate_chain([der], [record(3, 1, 1, server)], HOST)
    assert not verify_certificate_chain([der], [record(3, 0, 1, server)], HOST)


def test_dane_ee_ignores_name_and_expiry() -> None:
    expired = issue("wrong.example.org", not_after=NOW - timedelta(days=400))
    assert verify_certificate_chain([expired.der], [record(3, 1, 1, expired)], HOST, now=NOW)


def test_dane_ee_looks_only_at_the_server_certificate() -> None:
    root, intermediate, _ = pki()
    assert not verify_certificate_chain(chain(), [record(3, 1, 1, intermediate), record(3, 0, 1, root)], HOST)


def test_digest_truncated_or_of_wrong_length_does_not_match() -> None:
    server = self_signed()
    full = record(3, 1, 2, server)
    truncated = Tlsa(usage=3, selector=1, mtype=2, data=full.data[:32])
    assert not verify_certificate_chain([server.der], [truncated], HOST)


@pytest.mark.parametrize("usage", [0, 1])
def test_pkix_usages_are_unusable_even_when_they_match(usage: int) -> None:
    server = self_signed()
    assert not verify_certificate_chain([server.der], [record(usage, 1, 1, server)], HOST)


def test_one_matching_record_among_others_is_enough() -> None:
    server, other = self_signed(), issue("other.example.com")
    records = [record(3, 1, 1, other), record(1, 1, 1, server), record(3, 0, 2, server)]
    assert verify_certificate_chain([server.der], records, HOST)


@pytest.mark.parametrize(
    "der_chain",
    [pytest.param([], id="empty-chain"), pytest.param([b"\x30\x03\x02\x01\x00"], id="garbage-der")],
)
def test_missing_or_unreadable_certificate_does_not_match_spki(der_chain: list[bytes]) -> None:
    assert not verify_certificate_chain(der_chain, [record(3, 1, 1, self_signed())], HOST)


def test_no_records_verify_nothing() -> None:
    assert not verify_certificate_chain([self_signed().der], [], HOST)


# --- DANE-TA(2) ---


@pytest.mark.parametrize(
    ("anchor", "selector", "mtype"),
    [("root", 0, 1), ("root", 1, 2), ("root", 0, 0), ("intermediate", 1, 1), ("intermediate", 0, 2)],
)
def test_dane_ta_matches_an_anchor_in_the_chain(anchor: str, selector: int, mtype: int) -> None:
    root, intermediate, _ = pki()
    target = root if anchor == "root" else intermediate
    assert verify_certificate_chain(chain(), [record(2, selector, mtype, target)], HOST, now=NOW)


def test_dane_ta_requires_the_mx_host_name() -> None:
    root, _, _ = pki()
    assert not verify_certificate_chain(chain(), [record(2, 1, 1, root)], "mx2.example.com")


def test_dane_ta_name_match_ignores_case_and_final_dot() -> None:
    root, _, _ = pki()
    assert verify_certificate_chain(chain(), [record(2, 1, 1, root)], "MX.Example.COM.")


@pytest.mark.parametrize(
    ("names", "host", "expected"),
    [
        (("*.example.com",), "mx.example.com", True),
        (("*.example.com",), "a.mx.example.com", False),
        (("*.example.com",), "example.com", False),
        (("other.example.com", "mx.example.com"), "mx.example.com", True),
        (("mx.example.com.evil",), "mx.example.com", False),
    ],
)
def test_dane_ta_name_check_on_subject_alternative_names(
    names: tuple[str, ...], host: str, expected: bool
) -> None:
    root, intermediate, _ = pki()
    server = issue("ignored.example", issuer=intermediate, dns_names=names)
    der_chain = [server.der, intermediate.der, root.der]
    assert verify_certificate_chain(der_chain, [record(2, 1, 1, root)], host) is expected


def test_dane_ta_falls_back_to_common_name_without_subject_alternative_names() -> None:
    root, intermediate, _ = pki()
    server = issue(HOST, issuer=intermediate, dns_names=None)
    assert verify_certificate_chain([server.der, intermediate.der, root.der], [record(2, 1, 1, root)], HOST)


def test_dane_ta_ignores_common_name_when_subject_alternative_names_exist() -> None:
    root, intermediate, _ = pki()
    server = issue(HOST, issuer=intermediate, dns_names=("other.example.com",))
    assert not verify_certificate_chain(
        [server.der, intermediate.der, root.der], [record(2, 1, 1, root)], HOST
    )


def test_dane_ta_rejects_a_server_certificate_not_signed_by_the_chain() -> None:
    root, intermediate, _ = pki()
    stranger = issue(HOST, issuer=issue("Other CA", ca=True, dns_names=None))
    assert not verify_certificate_chain(
        [stranger.der, intermediate.der, root.der], [record(2, 1, 1, root)], HOST
    )


def test_dane_ta_rejects_an_intermediate_that_is_not_a_ca() -> None:
    root = pki()[0]
    not_ca = issue("Not a CA", issuer=root, dns_names=None)
    server = issue(HOST, issuer=not_ca)
    assert not verify_certificate_chain([server.der, not_ca.der, root.der], [record(2, 1, 1, root)], HOST)


def test_dane_ta_needs_the_chain_not_only_the_server_certificate() -> None:
    root, _, server = pki()
    assert not verify_certificate_chain([server.der], [record(2, 1, 1, root)], HOST)


def test_dane_ta_record_matching_the_server_certificate_is_no_anchor() -> None:
    server = self_signed()
    assert not verify_certificate_chain([server.der], [record(2, 0, 1, server)], HOST)


def test_dane_ta_checks_dates_below_the_anchor_when_given_the_time() -> None:
    root, intermediate, _ = pki()
    expired = issue(HOST, issuer=intermediate, not_after=NOW - timedelta(days=1))
    der_chain = [expired.der, intermediate.der, root.der]
    assert not verify_certificate_chain(der_chain, [record(2, 1, 1, root)], HOST, now=NOW)
    assert verify_certificate_chain(der_chain, [record(2, 1, 1, root)], HOST)


def test_dane_ta_ignores_certificates_past_the_anchor() -> None:
    root, _, _ = pki()
    extra = issue("Unrelated", dns_names=None)
    assert verify_certificate_chain([*chain(), extra.der], [record(2, 1, 1, root)], HOST, now=NOW)


# --- The chain from a real TLS handshake ---


async def handshake_chain(tmp_path: Path, sent: list[Issued]) -> list[bytes]:
    """Run a TLS server on 127.0.0.1 sending `sent` (its own certificate first); return what the client saw."""
    chain_file, key_file = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain_file.write_bytes(b"".join(c.certificate.public_bytes(serialization.Encoding.PEM) for c in sent))
    key_file.write_bytes(
        sent[0].key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(chain_file, key_file)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE  # as for DANE: the TLSA records do the verifying

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context, server_hostname=HOST)
        try:
            return presented_chain(writer.get_extra_info("ssl_object"))
        finally:
            writer.close()
            await writer.wait_closed()


async def test_presented_chain_gives_the_certificates_the_server_sent(tmp_path: Path) -> None:
    _, intermediate, server = pki()
    assert await handshake_chain(tmp_path, [server, intermediate]) == [server.der, intermediate.der]


async def test_handshake_chain_passes_dane_ta_for_the_intermediate(tmp_path: Path) -> None:
    _, intermediate, server = pki()
    der_chain = await handshake_chain(tmp_path, [server, intermediate])
    assert verify_certificate_chain(der_chain, [record(2, 1, 1, intermediate)], HOST, now=NOW)


async def test_handshake_certificate_passes_dane_ee(tmp_path: Path) -> None:
    server = self_signed()
    der_chain = await handshake_chain(tmp_path, [server])
    assert verify_certificate_chain(der_chain, [record(3, 1, 1, server)], HOST)


class PeerOnly:
    """An ssl object that shows only the server certificate, as before Python 3.10."""

    def __init__(self, der: bytes | None) -> None:
        self.der = der

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        return self.der


class PublicChain(PeerOnly):
    """An ssl object with the public chain call of Python 3.13."""

    def get_unverified_chain(self) -> list[bytes]:
        return [b"first", b"second"]


@pytest.mark.parametrize(
    ("ssl_object", "expected"),
    [
        pytest.param(PeerOnly(b"der"), [b"der"], id="server-certificate-only"),
        pytest.param(PeerOnly(None), [], id="no-certificate"),
        pytest.param(PublicChain(b"der"), [b"first", b"second"], id="public-chain-call"),
    ],
)
def test_presented_chain_falls_back_on_what_the_ssl_object_offers(
    ssl_object: PeerOnly, expected: list[bytes]
) -> None:
    assert presented_chain(cast(ssl.SSLObject, ssl_object)) == expected
