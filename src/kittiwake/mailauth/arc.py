"""Authenticated Received Chain (RFC 8617): checking the chain on a message, and sealing it when relaying.

The canonicalisation and cryptography come from dkimpy (DKIM itself is verified by our own code in
mailauth/dkim_verify.py, which reads a message as dkimpy does, so the two agree). The keys named by every
ARC-Seal and ARC-Message-Signature are fetched first through our asynchronous Resolver; dkimpy then checks
the chain in a worker thread, answering its lookups from the records already fetched. RFC 8617 §5.2.1:
every error, a failed key lookup included, makes the chain "fail"; there is no temporary result.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, Literal

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kittiwake.mail.address import AddressError, normalize_domain
from kittiwake.mail.headers import parse_header_fields
from kittiwake.mailauth.results import has_field, remove_our_results
from kittiwake.resolver import DnsError, NoSuchDomain, Resolver

ArcOutcome = Literal["none", "pass", "fail"]

MAX_INSTANCES = 50  # RFC 8617 §4.2.1
# RFC 8301 §3.2, which RFC 8617 §4.1.3 follows for its signatures.
MIN_RSA_BITS = 1024

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")  # RFC 6376 §3.1
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_SIGNATURE_FIELDS = ("arc-seal", "arc-message-signature")
_ARC_FIELDS = (*_SIGNATURE_FIELDS, "arc-authentication-results")


class ArcSealError(ValueError):
    """The message cannot be sealed: no From field, an unusable key, or no results of ours to seal."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ArcResult:
    """The Chain Validation Status of a message (RFC 8617 §4.4) and what goes with it."""

    result: ArcOutcome
    reason: str
    instances: int  # the highest i= among the ARC-Seal fields, 0 without any
    # RFC 8617 §5.2 step 5: the oldest instance whose ARC-Message-Signature still verifies, 0 if all do;
    # None unless the chain passed.
    oldest_pass: int | None
    sealers: tuple[str, ...]  # the d= of each ARC-Seal, oldest first, for trust decisions about forwarders


@dataclass(frozen=True, slots=True, kw_only=True)
class _Chain:
    instances: int
    field_count: int  # ARC fields of all three kinds
    sealers: tuple[str, ...]
    key_queries: dict[str, str]  # dkimpy's name for a key -> the name to ask the resolver


_NO_CHAIN = ArcResult(result="none", reason="no ARC sets", instances=0, oldest_pass=None, sealers=())


async def verify_arc(message: bytes, resolver: Resolver) -> ArcResult:
    """Validate the ARC chain of `message` (RFC 8617 §5.2)."""
    # RFC 8617 §5.2 step 1: without ARC fields the status is "none". Most mail has none, and telling so
    # from the raw header costs far less than reading its fields.
    if not has_field(message, b"arc-"):
        return _NO_CHAIN
    chain = _read_chain(message)
    if chain.field_count == 0:
        return _NO_CHAIN
    # Three fields a set: more would only cost key lookups before the chain fails anyway.
    if chain.field_count > 3 * MAX_INSTANCES or chain.instances > MAX_INSTANCES:
        return _failed(chain, f"more than {MAX_INSTANCES} ARC sets")
    names = sorted(chain.key_queries)
    lookups = await asyncio.gather(*(_fetch_key(resolver, chain.key_queries[name]) for name in names))
    keys = {name: record for name, (record, _problem) in zip(names, lookups, strict=True) if record}
    problems = [problem for _record, problem in lookups if problem]
    result = await asyncio.to_thread(_verify_chain, message, keys, chain)
    if result.result == "fail" and problems:
        return _failed(chain, f"{result.reason}; {problems[0]}")
    return result


def _failed(chain: _Chain, reason: str) -> ArcResult:
    return ArcResult(
        result="fail", reason=reason, instances=chain.instances, oldest_pass=None, sealers=chain.sealers
    )


def _read_chain(message: bytes) -> _Chain:
    end = _HEADER_END.search(message)
    fields = parse_header_fields(message[: end.start()] if end else message)
    seals: list[tuple[int, str]] = []
    queries: dict[str, str] = {}
    field_count = 0
    for name, value in fields:
        kind = name.lower()
        field_count += kind in _ARC_FIELDS
        if kind not in _SIGNATURE_FIELDS:
            continue
        tags = _parse_tags(value)
        names = _key_names(tags.get("s"), tags.get("d"))
        if names is not None:
            queries[names[0]] = names[1]
        if kind == "arc-seal":
            seals.append((_instance(tags.get("i", "")), tags.get("d", "")))
    seals.sort()
    return _Chain(
        instances=max((instance for instance, _domain in seals), default=0),
        field_count=field_count,
        sealers=tuple(domain for _instance, domain in seals),
        key_queries=queries,
    )


def _instance(value: str) -> int:
    """An i= value (RFC 8617 §4.2.1: 1 to 50); 0 for one that is not a number."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else 0


def _parse_tags(value: str) -> dict[str, str]:
    """An RFC 6376 §3.2 tag-list, read leniently: the first of duplicate tags wins, junk is skipped."""
    tags: dict[str, str] = {}
    for spec in value.split(";"):
        name, equals, tag_value = spec.partition("=")
        name = name.strip()
        if equals and name:
            tags.setdefault(name, tag_value.strip())
    return tags


def _key_names(selector: str | None, domain: str | None) -> tuple[str, str] | None:
    if not selector or not domain or not _SELECTOR.fullmatch(selector):
        return None
    try:
        ascii_domain = normalize_domain(domain)
    except AddressError:
        return None
    # RFC 8617 §4.1.3 with RFC 6376 §3.6.2.1: keys live at <selector>._domainkey.<domain>.
    return f"{selector}._domainkey.{domain}".lower(), f"{selector}._domainkey.{ascii_domain}"


async def _fetch_key(resolver: Resolver, name: str) -> tuple[bytes | None, str | None]:
    try:
        records = await resolver.txt(name)
    except NoSuchDomain:
        return None, f"no key record at {name}"
    except DnsError as error:
        return None, f"key lookup failed: {error}"
    keys = [record for record in records if b"p=" in record]
    if not keys:
        return None, f"no key record at {name}"
    return keys[0], None


class _PrefetchedKeys:
    """dkimpy's dnsfunc, answering from records fetched beforehand; unknown names get no record."""

    def __init__(self, answers: dict[str, bytes]) -> None:
        self._answers = answers

    def __call__(self, name: bytes, timeout: float = 5) -> bytes:
        key = name.decode("utf-8", "replace").rstrip(".").lower()
        return self._answers.get(key, b"")


def _verify_chain(message: bytes, keys: dict[str, bytes], chain: _Chain) -> ArcResult:
    try:
        status, instances, comment = dkim.arc_verify(
            message, dnsfunc=_PrefetchedKeys(keys), minkey=MIN_RSA_BITS
        )
    except Exception as error:  # dkimpy's parsers raise more than their own errors on hostile input
        return _failed(chain, f"cannot be processed: {error}")
    # dkimpy reports a seal that recorded cv=fail as no status at all; RFC 8617 §5.2 step 2 calls it fail.
    # Its "none" means no field had an instance number, while ARC fields are there: an invalid chain.
    if status != dkim.CV_Pass:
        return _failed(
            chain, "ARC fields without instance numbers" if status == dkim.CV_None else str(comment)
        )
    return ArcResult(
        result="pass",
        reason="chain verified",
        instances=chain.instances,
        oldest_pass=_oldest_pass(instances),
        sealers=chain.sealers,
    )


def _oldest_pass(instances: list[dict[str, Any]]) -> int:
    """RFC 8617 §5.2 step 5; dkimpy lists the instances newest first."""
    for result in instances[1:]:
        if not result.get("ams-valid"):
            return int(result["instance"]) + 1
    return 0


def seal_message(
    message: bytes,
    *,
    domain: str,
    selector: str,
    private_key_pem: bytes,
    authserv_id: str,
    auth_results_header: bytes,
    timestamp: int | None = None,
) -> bytes:
    """The ARC-Seal, ARC-Message-Signature and ARC-Authentication-Results fields to put before `message`.

    `auth_results_header` is the whole Authentication-Results field this server adds for the message
    (naming `authserv_id`); its results become the ARC-Authentication-Results, and its arc= result the
    seal's cv= (RFC 8617 §5.1). Fields in `message` that claim `authserv_id` are left out, as RFC 8601 §5
    says to distrust them. The caller puts the three fields returned, then `auth_results_header`, before
    the message. Signed with rsa-sha256, relaxed canonicalisation. Raises ArcSealError.
    """
    key = _rsa_key(private_key_pem)
    if not auth_results_header.startswith(b"Authentication-Results:"):
        raise ArcSealError("auth_results_header must be an Authentication-Results field")
    try:
        ascii_domain = normalize_domain(domain)
        selector_bytes = selector.encode("ascii")
        server = authserv_id.encode("ascii")
    except (AddressError, UnicodeEncodeError) as error:
        raise ArcSealError(str(error)) from error
    unsealed = auth_results_header + remove_our_results(message, authserv_id)
    try:
        fields = dkim.arc_sign(
            unsealed, selector_bytes, ascii_domain.encode("ascii"), key, server, timestamp=timestamp
        )
    except dkim.DKIMException as error:
        raise ArcSealError(str(error)) from error
    if not fields:
        # dkimpy finds none of our results, or an existing chain with no arc= result to carry on from.
        raise ArcSealError("no Authentication-Results to seal, or no arc= result for an existing chain")
    return b"".join(bytes(field) for field in fields)


def _rsa_key(private_key_pem: bytes) -> bytes:
    """The key as dkimpy takes it for ARC, which signs only with rsa-sha256: PKCS#1 PEM."""
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise ArcSealError(f"unreadable private key: {error}") from error
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ArcSealError("ARC seals with rsa-sha256 and needs an RSA key")
    if key.key_size < MIN_RSA_BITS:
        raise ArcSealError(f"RSA key of {key.key_size} bits; RFC 8301 requires {MIN_RSA_BITS}")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
