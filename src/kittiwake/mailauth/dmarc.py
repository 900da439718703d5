"""DMARC (RFC 7489): policy records, policy discovery, identifier alignment and the verdict on a message.

SPF and DKIM are checked elsewhere; `evaluate` takes their outcomes as plain values (an SPF result and the
domain it was for, and (d=, result) pairs for the DKIM signatures), looks up the policy of the author's
domain through the Resolver and tells whether either passing identifier is aligned with the From domain.

A message whose header does not name exactly one author (no From field, several From fields, or one that
holds several addresses or none) cannot be checked: `from_domain` raises FromFieldError, and
`unusable_from_verdict` turns that into a permerror verdict whose disposition is "reject", as RFC 7489
§6.6.1 notes such messages are typically rejected. The caller may still choose to accept them.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from kittiwake.mail.address import AddressError, normalize_domain, parse_address_list
from kittiwake.mail.headers import parse_header_fields
from kittiwake.mailauth.org_domain import organizational_domain
from kittiwake.resolver import DnsError, NoSuchDomain, Resolver

Policy = Literal["none", "quarantine", "reject"]
Alignment = Literal["r", "s"]
DmarcOutcome = Literal["pass", "fail", "none", "temperror", "permerror"]

_POLICIES: dict[str, Policy] = {"none": "none", "quarantine": "quarantine", "reject": "reject"}
_ALIGNMENTS: dict[str, Alignment] = {"r": "r", "s": "s"}
# RFC 7489 §6.6.4: a message not picked by pct= sampling gets the next policy down.
_NEXT_LOWER: dict[Policy, Policy] = {"reject": "quarantine", "quarantine": "none", "none": "none"}
# RFC 7489 §6.4: dmarc-version = "v" *WSP "=" *WSP "DMARC1", first in the record.
_VERSION = re.compile(r"[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)")
_FAILURE_OPTIONS = frozenset("01ds")  # RFC 7489 §6.3 fo=
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S")  # RFC 3986 §3.1, enough to tell a URI
_UINT32_MAX = 2**32 - 1
# Texts longer than this (far longer than real From fields, policy records and domain names) are read
# afresh each time rather than remembered, so that a cache entry stays small whatever a sender writes.
_CACHED_TEXT_LIMIT = 1024


class FromFieldError(ValueError):
    """The header does not name exactly one author domain (RFC 7489 §6.6.1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DmarcRecord:
    """A parsed DMARC policy record (RFC 7489 §6.3), with defaults filled in."""

    policy: Policy  # p=
    subdomain_policy: Policy | None  # sp=; None means p= applies to subdomains too
    nonexistent_policy: Policy | None  # np= (RFC 9091); None means sp= (or p=) applies
    percent: int  # pct=, 0..100
    dkim_alignment: Alignment  # adkim=
    spf_alignment: Alignment  # aspf=
    aggregate_report_uris: str  # rua=, as written
    failure_report_uris: str  # ruf=, as written
    failure_options: str  # fo=
    report_format: str  # rf=
    report_interval: int  # ri=, seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class DmarcVerdict:
    """What DMARC says about one message."""

    result: DmarcOutcome
    policy: Policy  # the policy the domain owner asked for; "none" when there is no record
    disposition: Policy  # what to do with the message, after pct= sampling; "none" unless it failed
    domain: str  # the RFC5322.From domain, lower-case A-labels ("" when there is none)
    record_domain: str | None  # where the record was found: the From domain or its organizational domain
    record: DmarcRecord | None
    spf_aligned: bool
    dkim_aligned: bool
    reason: str


def parse_dmarc_record(text: str | bytes) -> DmarcRecord | None:
    """Parse a DMARC TXT record; None if it is not one, or has no usable policy (RFC 7489 §6.6.3 step 6).

    Unknown tags are ignored and unusable values of optional tags fall back to their defaults (§6.3). A
    record whose p= (or sp=) is missing or unusable still counts as p=none when rua= names a URI.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip(" \t\r\n")
    return (_cached_record if len(text) <= _CACHED_TEXT_LIMIT else _read_record)(text)


def _read_record(text: str) -> DmarcRecord | None:
    if not _VERSION.match(text):
        return None
    tags = _parse_tags(text)
    policy = _POLICIES.get(tags.get("p", "").lower())
    subdomain_policy = _POLICIES.get(tags.get("sp", "").lower())
    rua = tags.get("rua", "")
    if policy is None or ("sp" in tags and subdomain_policy is None):
        if not any(_URI_SCHEME.match(uri.strip()) for uri in rua.split(",")):
            return None
        policy, subdomain_policy = "none", None
    return DmarcRecord(
        policy=policy,
        subdomain_policy=subdomain_policy,
        nonexistent_policy=_POLICIES.get(tags.get("np", "").lower()),
        percent=_number(tags.get("pct"), 100, maximum=100),
        dkim_alignment=_ALIGNMENTS.get(tags.get("adkim", "").lower(), "r"),
        spf_alignment=_ALIGNMENTS.get(tags.get("aspf", "").lower(), "r"),
        aggregate_report_uris=rua,
        failure_report_uris=tags.get("ruf", ""),
        failure_options=_failure_options(tags.get("fo")),
        report_format=tags.get("rf") or "afrf",
        report_interval=_number(tags.get("ri"), 86400, maximum=_UINT32_MAX),
    )


# Every message from a domain brings the same policy text; the parse depends on nothing else, so it is
# kept by text: a changed record is new text, parsed afresh. DmarcRecord is immutable, so one parse can
# serve every message. Bounded, as the texts come from any domain.
_cached_record = functools.lru_cache(maxsize=1024)(_read_record)


def _parse_tags(text: str) -> dict[str, str]:
    """A tag-list (RFC 7489 §6.4 after RFC 6376 §3.2); names ignore case, the first of a pair wins."""
    tags: dict[str, str] = {}
    for spec in text.split(";"):
        name, equals, value = spec.partition("=")
        name = name.strip(" \t\r\n").lower()
        if equals and name:
            tags.setdefault(name, value.strip(" \t\r\n"))
    return tags


def _number(value: str | None, default: int, *, maximum: int) -> int:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 10:
        return default
    number = int(value)
    return number if number <= maximum else default


def _failure_options(value: str | None) -> str:
    options = [option.strip() for option in (value or "").split(":")]
    if not value or not all(option in _FAILURE_OPTIONS for option in options):
        return "0"
    return ":".join(options)


def from_domain(header_block: bytes) -> str:
    """The RFC5322.From domain of a message header, as lower-case A-labels.

    Raises FromFieldError unless there is exactly one From field holding exactly one address with a valid
    domain (RFC 7489 §6.6.1).
    """
    values = [value for name, value in parse_header_fields(header_block) if name.lower() == "from"]
    if len(values) != 1:
        raise FromFieldError(f"{len(values)} From fields")
    value = values[0]
    domain, problem = (_cached_author_domain if len(value) <= _CACHED_TEXT_LIMIT else _author_domain)(value)
    if problem is not None:
        raise FromFieldError(problem)
    return domain


def _author_domain(value: str) -> tuple[str, str | None]:
    """(the author domain as lower-case A-labels, None), or ("", why there is none), for a From field value."""
    mailboxes = [entry for entry in parse_address_list(value) if entry.host is not None]
    if len(mailboxes) != 1:
        return "", f"{len(mailboxes)} addresses in From"
    host = mailboxes[0].host or ""
    if not host or host.startswith("["):
        return "", "From address has no domain name"
    try:
        return normalize_domain(host), None
    except AddressError as error:
        return "", str(error)


# A sender writes the same From field on message after message; reading the address out of it depends on
# the field's text alone, so the outcome is kept by that text (bounded: the texts come from anyone).
_cached_author_domain = functools.lru_cache(maxsize=4096)(_author_domain)


def unusable_from_verdict(reason: str) -> DmarcVerdict:
    """The verdict for a message without exactly one author domain (RFC 7489 §6.6.1): permerror, reject."""
    return DmarcVerdict(
        result="permerror",
        policy="none",
        disposition="reject",
        domain="",
        record_domain=None,
        record=None,
        spf_aligned=False,
        dkim_aligned=False,
        reason=reason,
    )


async def evaluate_message(
    header_block: bytes,
    spf_result: str,
    spf_domain: str | None,
    dkim_results: Iterable[tuple[str, str]],
    resolver: Resolver,
    *,
    rng: Callable[[], float] = random.random,
) -> DmarcVerdict:
    """`evaluate` for the From domain of `header_block`, or `unusable_from_verdict` when it has none."""
    try:
        domain = from_domain(header_block)
    except FromFieldError as error:
        return unusable_from_verdict(str(error))
    # from_domain gives lower-case A-labels already, which is what evaluate would make of it.
    return await _evaluate(domain, spf_result, spf_domain, dkim_results, resolver, rng)


async def evaluate(
    from_header_domain: str,
    spf_result: str,
    spf_domain: str | None,
    dkim_results: Iterable[tuple[str, str]],
    resolver: Resolver,
    *,
    rng: Callable[[], float] = random.random,
) -> DmarcVerdict:
    """Apply the DMARC policy of `from_header_domain` to a message (RFC 7489 §6.6).

    `spf_result` is the SPF outcome ("pass", "fail", ...) for `spf_domain` (the MAIL FROM domain, or the
    HELO domain for a null reverse-path); `dkim_results` holds (d= domain, result) for each signature.
    `rng` gives a number in [0, 1) for pct= sampling.
    """
    try:
        domain = normalize_domain(from_header_domain.rstrip("."))
    except AddressError as error:
        return unusable_from_verdict(f"bad From domain: {error}")
    if domain.startswith("["):
        return unusable_from_verdict("From domain is an address literal")
    return await _evaluate(domain, spf_result, spf_domain, dkim_results, resolver, rng)


async def _evaluate(
    domain: str,
    spf_result: str,
    spf_domain: str | None,
    dkim_results: Iterable[tuple[str, str]],
    resolver: Resolver,
    rng: Callable[[], float],
) -> DmarcVerdict:
    """`evaluate` for a From domain in lower-case A-labels."""
    try:
        found = await discover_policy(domain, resolver)
    except DnsError as error:
        return _verdict(domain, "temperror", reason=f"policy lookup failed: {error}")
    if found is None:
        return _verdict(domain, "none", reason="no DMARC policy record")
    record_domain, record = found
    spf_aligned = spf_result.lower() == "pass" and _aligned(spf_domain, domain, record.spf_alignment)
    dkim_aligned = any(
        result.lower() == "pass" and _aligned(signer, domain, record.dkim_alignment)
        for signer, result in dkim_results
    )
    policy = await _applicable_policy(domain, record_domain, record, resolver)
    disposition: Policy = "none"
    if spf_aligned or dkim_aligned:
        reason = "aligned " + ("SPF" if spf_aligned else "DKIM") + " pass"
    else:
        reason = "no aligned SPF or DKIM pass"
        # RFC 7489 §6.6.4: pct= picks the share of failing mail the policy applies to.
        sampled = record.percent >= 100 or (record.percent > 0 and rng() * 100 < record.percent)
        disposition = policy if sampled else _NEXT_LOWER[policy]
    return DmarcVerdict(
        result="pass" if spf_aligned or dkim_aligned else "fail",
        policy=policy,
        disposition=disposition,
        domain=domain,
        record_domain=record_domain,
        record=record,
        spf_aligned=spf_aligned,
        dkim_aligned=dkim_aligned,
        reason=reason,
    )


def _verdict(domain: str, result: DmarcOutcome, *, reason: str) -> DmarcVerdict:
    return DmarcVerdict(
        result=result,
        policy="none",
        disposition="none",
        domain=domain,
        record_domain=None,
        record=None,
        spf_aligned=False,
        dkim_aligned=False,
        reason=reason,
    )


async def discover_policy(domain: str, resolver: Resolver) -> tuple[str, DmarcRecord] | None:
    """(domain the record was found at, record) by RFC 7489 §6.6.3, or None. Raises DnsError.

    The From domain is asked first, then its organizational domain if that differs and the first lookup
    found no DMARC record. Several records at one name mean no policy, with no fallback.
    """
    records = await _dmarc_records(domain, resolver)
    record_domain = domain
    if not records:
        record_domain = organizational_domain(domain)
        if record_domain == domain:
            return None
        records = await _dmarc_records(record_domain, resolver)
    # RFC 7489 §6.6.3 step 4: with more than one record, policy discovery ends with nothing to apply.
    if len(records) != 1:
        return None
    record = parse_dmarc_record(records[0])
    return None if record is None else (record_domain, record)


async def _dmarc_records(domain: str, resolver: Resolver) -> list[str]:
    """The TXT records at _dmarc.<domain> that start with v=DMARC1 (RFC 7489 §6.6.3 step 2)."""
    try:
        answers = await resolver.txt(f"_dmarc.{domain}")
    except NoSuchDomain:
        return []
    texts = (answer.decode("utf-8", "replace").strip(" \t\r\n") for answer in answers)
    return [text for text in texts if _VERSION.match(text)]


def _aligned(identifier: str | None, from_domain: str, mode: Alignment) -> bool:
    """RFC 7489 §3.1: strict needs the same name; relaxed the same organizational domain."""
    if identifier is not None and len(identifier) > _CACHED_TEXT_LIMIT:
        return _alignment(identifier, from_domain, mode)
    return _cached_alignment(identifier, from_domain, mode)


def _alignment(identifier: str | None, from_domain: str, mode: Alignment) -> bool:
    if not identifier:
        return False
    try:
        name = normalize_domain(identifier.rstrip("."))
    except AddressError:
        return False
    if mode == "s":
        return name == from_domain
    return organizational_domain(name) == organizational_domain(from_domain)


# Asked for the same (SPF or DKIM domain, From domain) pairs on every message from a sender, and a pure
# function of its arguments; bounded, as the names come from the messages.
_cached_alignment = functools.lru_cache(maxsize=4096)(_alignment)


async def _applicable_policy(
    domain: str, record_domain: str, record: DmarcRecord, resolver: Resolver
) -> Policy:
    """p= for the domain that published it; for a subdomain sp=, or np= (RFC 9091) if it does not exist."""
    if record_domain == domain:
        return record.policy
    if record.nonexistent_policy is not None and await _does_not_exist(domain, resolver):
        return record.nonexistent_policy
    return record.subdomain_policy or record.policy


async def _does_not_exist(domain: str, resolver: Resolver) -> bool:
    """RFC 9091 §2.1: a name with no A, AAAA or MX records; a failed lookup counts as existing."""
    for lookup in (resolver.a, resolver.aaaa, resolver.mx):
        try:
            if await lookup(domain):
                return False
        except NoSuchDomain:
            return True
        except DnsError:
            return False
    return True
