"""DANE for SMTP (RFC 7672): authenticating an MX host's certificate by TLSA records in DNS.

Theory of operation: the TLSA records at `_25._tcp.<mx host>` (RFC 7672 §2.2.3) name the certificate or
public key the server must present. Only two certificate usages serve SMTP (§3.1): DANE-EE(3) matches the
server's own certificate or key, with no name, expiry or chain checks at all (§3.1.1); DANE-TA(2) matches a
trust anchor among the certificates the server sends, the chain from the server certificate must lead to it,
and the server certificate must carry the MX host name (§3.1.2, §3.2). PKIX-TA(0) and PKIX-EE(1) are
unusable for SMTP (§3.1.3), as are unknown selectors and matching types.

DNSSEC is what makes any of this worth more than opportunistic TLS: TLSA records count only when they are
"secure" (§2.1), and DANE applies to a destination only when its MX RRset is secure too (§2.2.1): records
from an unsigned zone are ignored, and an MX host name an attacker could have forged is no base for
anything. kittiwake does not validate signatures itself. It trusts the AD bit of the configured resolver
(`Resolver.mx_answer`, `Resolver.tlsa`), and only that resolver's: it must be a validating resolver on this
host, reached over loopback (unbound or a similar daemon on 127.0.0.1), as Postfix requires for its `dane`
security level. Between kittiwake and a resolver across a network, anyone on the path could set the bit on
forged answers. A validating resolver alone is not enough either: it turns forged answers into failures but
still passes on unsigned ones, which is what the bit tells apart. Where no such resolver can be had, set
`[queue] dane = false`.

Limits: Python's ssl module gives the chain the server sent only from 3.13 on (`get_unverified_chain`).
`presented_chain` falls back on the same call of the interpreter's `_ssl` object, present since 3.10, and
then on the server certificate alone, with which only DANE-EE(3) (the usage RFC 7672 §3.1.3 recommends)
can pass. A trust anchor published as a public key and left out of the chain by the server is not
supported, nor are TLSA names reached through CNAMEs (§2.2.3).
"""

from __future__ import annotations

import _ssl
import hashlib
import itertools
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kittiwake.resolver import DnsError, NoSuchDomain, Resolver

DaneRequirement = Literal["none", "encrypt", "authenticate"]

USAGE_DANE_TA = 2
USAGE_DANE_EE = 3
SELECTOR_CERT = 0
SELECTOR_SPKI = 1
MATCH_FULL = 0
MATCH_SHA256 = 1
MATCH_SHA512 = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Tlsa:
    """One TLSA record (RFC 6698 §2.1): certificate usage, selector, matching type, association data."""

    usage: int
    selector: int
    mtype: int
    data: bytes

    @property
    def usable(self) -> bool:
        """RFC 7672 §3.1: DANE-TA or DANE-EE, a known selector and a known matching type."""
        return (
            self.usage in (USAGE_DANE_TA, USAGE_DANE_EE)
            and self.selector in (SELECTOR_CERT, SELECTOR_SPKI)
            and self.mtype in (MATCH_FULL, MATCH_SHA256, MATCH_SHA512)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsaLookup:
    """The TLSA records of one host, and whether DNSSEC vouched for them (the resolver's AD bit)."""

    records: tuple[Tlsa, ...]
    secure: bool

    @property
    def requirement(self) -> DaneRequirement:
        """RFC 7672 §2.2: insecure records are ignored, as if there were none."""
        return dane_requirement(self.records) if self.secure else "none"


async def tlsa_for(host: str, port: int, resolver: Resolver) -> TlsaLookup | None:
    """The TLSA records of `_<port>._tcp.<host>` (RFC 7672 §2.2.3), or None when the lookup failed.

    Look them up only for an MX host whose MX RRset was secure. A failed lookup for such a host makes the
    host unusable (RFC 7672 §2.1.1): try the next one; a name that does not exist has no records."""
    name = f"_{port}._tcp.{host.rstrip('.')}"
    try:
        answer = await resolver.tlsa(name)
    except NoSuchDomain:
        return TlsaLookup(records=(), secure=False)
    except DnsError:
        return None
    records = tuple(
        Tlsa(usage=usage, selector=selector, mtype=mtype, data=data)
        for usage, selector, mtype, data in answer.records
    )
    return TlsaLookup(records=records, secure=answer.secure)


def dane_requirement(records: Sequence[Tlsa]) -> DaneRequirement:
    """What authenticated TLSA records ask of the connection (RFC 7672 §2.2): nothing when there are none,
    TLS without authentication when none is usable, else TLS authenticated by `verify_certificate_chain`."""
    if not records:
        return "none"
    return "authenticate" if any(record.usable for record in records) else "encrypt"


def presented_chain(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> list[bytes]:
    """The certificates the server sent, its own first, as DER; only its own when the chain is out of reach.

    Works with verification off (CERT_NONE), as DANE connections are made: the TLSA records do the
    verifying."""
    public = getattr(ssl_object, "get_unverified_chain", None)  # Python 3.13 and later
    if public is not None:
        return [bytes(der) for der in public()]
    internal = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    chain = internal() if internal is not None else None
    if chain:
        return [certificate.public_bytes(_ssl.ENCODING_DER) for certificate in chain]
    der = ssl_object.getpeercert(binary_form=True)
    return [der] if der else []


def _selected(certificate_der: bytes, certificate: x509.Certificate | None, selector: int) -> bytes | None:
    if selector == SELECTOR_CERT:
        return certificate_der
    if certificate is None:
        return None
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _digest(data: bytes, mtype: int) -> bytes:
    if mtype == MATCH_SHA256:
        return hashlib.sha256(data).digest()
    if mtype == MATCH_SHA512:
        return hashlib.sha512(data).digest()
    return data


def _matches(record: Tlsa, certificate_der: bytes, certificate: x509.Certificate | None) -> bool:
    selected = _selected(certificate_der, certificate, record.selector)
    return selected is not None and _digest(selected, record.mtype) == record.data


def _load(der: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def verify_certificate_chain(
    der_chain: Sequence[bytes], tlsa: Sequence[Tlsa], host: str, *, now: datetime | None = None
) -> bool:
    """Whether the chain a server presented (its own certificate first) satisfies a usable TLSA record.

    DANE-EE(3) looks at the first certificate only, ignoring names and dates (RFC 7672 §3.1.1). DANE-TA(2)
    needs the chain: a later certificate must match the record, each certificate before it must be signed
    by the next, the certificates in between must be CAs, and the server certificate must name `host`
    (§3.1.2, §3.2.2). Given `now` (timezone-aware), the dates of the certificates below the trust anchor
    are checked too."""
    if not der_chain:
        return False
    records = [record for record in tlsa if record.usable]
    chain = [_load(der) for der in der_chain]
    if any(_matches(record, der_chain[0], chain[0]) for record in records if record.usage == USAGE_DANE_EE):
        return True
    anchors = [record for record in records if record.usage == USAGE_DANE_TA]
    for depth in range(1, len(der_chain)):
        # The nearest matching anchor decides: a path to a farther one has every check of the nearer one.
        if any(_matches(record, der_chain[depth], chain[depth]) for record in anchors):
            return _path_valid(chain[: depth + 1], host, now)
    return False


def _path_valid(chain: Sequence[x509.Certificate | None], host: str, now: datetime | None) -> bool:
    certificates = [certificate for certificate in chain if certificate is not None]
    if len(certificates) != len(chain):
        return False
    for subject, issuer in itertools.pairwise(certificates):
        try:
            subject.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return False
    if not all(_is_ca(certificate) for certificate in certificates[1:-1]):
        return False
    if now is not None and not all(
        c.not_valid_before_utc <= now <= c.not_valid_after_utc for c in certificates[:-1]
    ):
        return False
    return any(_name_matches(name, host) for name in _dns_names(certificates[0]))


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _dns_names(certificate: x509.Certificate) -> list[str]:
    """DNS-IDs from subjectAltName, or the subject CNs when there is none (RFC 7672 §3.2.3)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    else:
        return san.get_values_for_type(x509.DNSName)
    return [
        str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]


def _name_matches(name: str, host: str) -> bool:
    # RFC 7672 §3.2.3: a wildcard stands for the whole leftmost label, and one label only.
    name = name.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if name.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first and dot) and rest == name[2:]
    return name == host
