"""SPF evaluation (RFC 7208): check_host() over an injected Resolver.

Evaluation is sequential: each term may depend on the outcome of the one before it, so lookups are made
one at a time, under the processing limits of RFC 7208 §4.6.4 and an overall time budget.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from kittiwake.mail.address import AddressError, normalize_domain
from kittiwake.mailauth.spf_record import (
    Directive,
    MacroString,
    SpfRecord,
    SpfSyntaxError,
    expand,
    is_spf_record,
    parse_explanation,
    parse_spf_record,
    query_name,
    truncate_name,
    uses_letter,
)
from kittiwake.resolver import DnsError, NoSuchDomain, Resolver

__all__ = [
    "SpfRecord",
    "SpfResult",
    "SpfSyntaxError",
    "check_helo",
    "check_host",
    "check_mail_from",
    "parse_spf_record",
]

SpfResultCode = Literal["none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 7208 §4.6.4: at most 10 terms that query DNS, 10 names per MX or PTR answer, 2 void lookups,
# and at least 20 seconds for the whole evaluation.
MAX_DNS_TERMS = 10
MAX_NAMES_PER_ANSWER = 10
MAX_VOID_LOOKUPS = 2
TIME_BUDGET = 20.0

# Record texts longer than this (far longer than real ones) are parsed afresh each time rather than
# remembered, so that a cache entry stays small whatever a domain publishes.
_CACHED_RECORD_LIMIT = 1024
_QUALIFIER_RESULTS: dict[str, SpfResultCode] = {"+": "pass", "-": "fail", "?": "neutral", "~": "softfail"}
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class SpfResult:
    """The outcome of check_host(); `mechanism` is the matching term as written, `problem` why an error."""

    result: SpfResultCode
    domain: str
    explanation: str | None = None
    mechanism: str | None = None
    lookups: int = 0
    problem: str | None = None


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class _Outcome:
    result: SpfResultCode
    mechanism: str | None = None
    # RFC 7208 §6.2: the record, and its domain, whose exp= may explain a "fail".
    explained_by: tuple[SpfRecord, str] | None = None


async def check_host(
    ip: str,
    domain: str,
    sender: str,
    *,
    helo: str,
    resolver: Resolver,
    receiver: str = "",
    now: float | None = None,
    time_budget: float = TIME_BUDGET,
) -> SpfResult:
    """RFC 7208 §4: may `ip` send mail for `domain`? `sender` is the checked identity, as local@domain.

    Raises ValueError when `ip` is not an IP address.
    """
    local, at, sender_domain = sender.rpartition("@")
    if not at:
        local, sender_domain = "", sender
    evaluation = _Evaluation(
        resolver=resolver,
        ip=_client_address(ip),
        # RFC 7208 §4.3: a sender without a local-part is postmaster at its domain.
        sender=sender if local else f"postmaster@{sender_domain}",
        local=local or "postmaster",
        sender_domain=sender_domain,
        helo=helo,
        receiver=receiver or "unknown",
        now=time.time() if now is None else now,
    )
    deadline = asyncio.get_running_loop().time() + time_budget
    try:
        async with asyncio.timeout_at(deadline):
            outcome = await evaluation.check_host(domain)
    except _PermError as error:
        return SpfResult(result="permerror", domain=domain, lookups=evaluation.lookups, problem=str(error))
    except _TempError as error:
        return SpfResult(result="temperror", domain=domain, lookups=evaluation.lookups, problem=str(error))
    except TimeoutError:
        problem = f"no answer within {time_budget:g} seconds"
        return SpfResult(result="temperror", domain=domain, lookups=evaluation.lookups, problem=problem)
    return SpfResult(
        result=outcome.result,
        domain=domain,
        explanation=await evaluation.explanation(outcome, deadline),
        mechanism=outcome.mechanism,
        lookups=evaluation.lookups,
    )


async def check_mail_from(
    ip: str,
    mail_from: str,
    helo: str,
    resolver: Resolver,
    *,
    receiver: str = "",
    now: float | None = None,
    time_budget: float = TIME_BUDGET,
) -> SpfResult:
    """RFC 7208 §2.4: check the MAIL FROM identity; a null reverse-path stands for postmaster@<helo>."""
    address = mail_from.removeprefix("<").removesuffix(">")
    if not address:
        return await check_helo(ip, helo, resolver, receiver=receiver, now=now, time_budget=time_budget)
    domain = address.rpartition("@")[2]
    return await check_host(
        ip, domain, address, helo=helo, resolver=resolver, receiver=receiver, now=now, time_budget=time_budget
    )


async def check_helo(
    ip: str,
    helo: str,
    resolver: Resolver,
    *,
    receiver: str = "",
    now: float | None = None,
    time_budget: float = TIME_BUDGET,
) -> SpfResult:
    """RFC 7208 §2.3: check the HELO identity, as postmaster@<helo>; an address literal gives "none"."""
    return await check_host(
        ip,
        helo,
        f"postmaster@{helo}",
        helo=helo,
        resolver=resolver,
        receiver=receiver,
        now=now,
        time_budget=time_budget,
    )


# A client sends message after message from one address; parsing it is a pure function of the text.
@functools.lru_cache(maxsize=1024)
def _client_address(ip: str) -> IpAddress:
    address = ipaddress.ip_address(ip)
    # RFC 7208 §5: an IPv4-mapped IPv6 address is treated as the IPv4 address it carries.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _identity_domain(domain: str) -> str | None:
    """RFC 7208 §4.3: the <domain> as a query name, or None when malformed or not multi-label."""
    name = domain.removesuffix(".")
    if name.startswith("[") or "." not in name:
        return None
    if not name.isascii():
        try:
            name = normalize_domain(name)
        except AddressError:
            return None
    return query_name(name)


def _is_within(name: str, target: str) -> bool:
    name, target = name.lower().removesuffix("."), target.lower().removesuffix(".")
    return name == target or name.endswith("." + target)


@dataclass(slots=True, kw_only=True)
class _Evaluation:
    """The state of one check_host() call, shared by the include and redirect evaluations inside it."""

    resolver: Resolver
    ip: IpAddress
    sender: str
    local: str
    sender_domain: str
    helo: str
    receiver: str
    now: float
    lookups: int = 0
    voids: int = 0

    async def check_host(self, domain: str) -> _Outcome:
        name = _identity_domain(domain)
        if name is None:
            return _Outcome(result="none")
        record = await self._record(name)
        if record is None:
            return _Outcome(result="none")
        for directive in record.directives:
            if await self._matches(directive, name):
                result = _QUALIFIER_RESULTS[directive.qualifier]
                explained_by = (record, name) if result == "fail" else None
                return _Outcome(result=result, mechanism=directive.text, explained_by=explained_by)
        if record.redirect is not None:
            return await self._redirect(record.redirect, name)
        # RFC 7208 §4.7: no match and no redirect gives "neutral".
        return _Outcome(result="neutral")

    async def _record(self, name: str) -> SpfRecord | None:
        # RFC 7208 §4.4: NXDOMAIN gives "none", a failed lookup "temperror".
        try:
            texts = await self.resolver.txt(name)
        except NoSuchDomain:
            return None
        except DnsError as error:
            raise _TempError(f"TXT {name}: {error}") from None
        # RFC 7208 §4.5: keep the v=spf1 records; none gives "none", more than one "permerror".
        records = [text for text in texts if is_spf_record(text)]
        if not records:
            return None
        if len(records) > 1:
            raise _PermError(f"{name} publishes {len(records)} SPF records")
        text = records[0]
        record = (_cached_record if len(text) <= _CACHED_RECORD_LIMIT else _parse_record)(text)
        if isinstance(record, str):
            raise _PermError(f"{name}: {record}")
        return record

    async def _redirect(self, target_spec: MacroString, domain: str) -> _Outcome:
        self._count_dns_term()
        target = await self._expand_name(target_spec, domain)
        # RFC 7208 §6.2: the redirected record's exp= replaces this one's.
        outcome = await self.check_host(target)
        # RFC 7208 §6.1: a redirect to a domain without an SPF record, or a malformed one, is a permerror.
        if outcome.result == "none":
            raise _PermError(f"redirect={target} has no SPF record")
        return outcome

    async def _matches(self, directive: Directive, domain: str) -> bool:
        mechanism = directive.mechanism
        if mechanism == "all":
            return True
        if mechanism in ("ip4", "ip6"):
            return directive.network is not None and self.ip in directive.network
        self._count_dns_term()
        target = domain if directive.domain is None else await self._expand_name(directive.domain, domain)
        if mechanism == "include":
            return await self._include(target)
        name = query_name(target)
        if name is None:
            # A target no query can carry (empty or over-long label) counts as a name that does not
            # exist, as RFC 7208 §4.3 rules for <domain>; §4.8 leaves the case open.
            self._count_void()
            return False
        if mechanism == "exists":
            # RFC 7208 §5.7: an A lookup, whatever the client's address family.
            return bool(await self._lookup(self.resolver.a, name, void=True))
        if mechanism == "ptr":
            validated = await self._validated_names(count_void=True)
            return any(_is_within(found, name) for found in validated)
        return await self._matches_address(directive, name)

    async def _matches_address(self, directive: Directive, name: str) -> bool:
        """RFC 7208 §5.3, §5.4: the client lies within the CIDR prefix of an address of the name or its MXs."""
        prefix = directive.cidr4 if self.ip.version == 4 else directive.cidr6
        hosts = await self._mx_hosts(name) if directive.mechanism == "mx" else [name]
        for host in hosts:
            addresses = await self._addresses(host, void=directive.mechanism == "a")
            if any(self._in_prefix(address, prefix) for address in addresses):
                return True
        return False

    async def _include(self, target: str) -> bool:
        # RFC 7208 §5.2: an included domain without a record is a permerror; only "pass" matches.
        # The included record's exp= is never used (§6.2).
        outcome = await self.check_host(target)
        if outcome.result == "none":
            raise _PermError(f"include:{target} has no SPF record")
        return outcome.result == "pass"

    async def _mx_hosts(self, name: str) -> list[str]:
        answer = await self._lookup(self.resolver.mx, name, void=True)
        # RFC 7208 §4.6.4: more than 10 MX records is a permerror.
        if len(answer) > MAX_NAMES_PER_ANSWER:
            raise _PermError(f"{name} has {len(answer)} MX records, more than {MAX_NAMES_PER_ANSWER}")
        # RFC 7505 §3: a null MX ("." or empty) names no host.
        return [host for _, host in sorted(answer, key=lambda mx: mx[0]) if host not in ("", ".")]

    async def _addresses(self, name: str, *, void: bool) -> list[IpAddress]:
        """RFC 7208 §5: A records for an IPv4 client, AAAA for an IPv6 one."""
        query = self.resolver.a if self.ip.version == 4 else self.resolver.aaaa
        return _parse_addresses(await self._lookup(query, name, void=void))

    def _in_prefix(self, address: IpAddress, prefix: int) -> bool:
        if address.version != self.ip.version:
            return False
        return self.ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False)

    async def _validated_names(self, *, count_void: bool) -> list[str]:
        """RFC 7208 §5.5: names from the client's PTR records whose addresses include the client."""
        try:
            names = await self.resolver.ptr(str(self.ip))
        except (NoSuchDomain, DnsError):
            # RFC 7208 §5.5: a failed PTR lookup means no match, not an error.
            names = []
        if count_void and not names:
            self._count_void()
        validated = []
        # RFC 7208 §4.6.4: only the first 10 PTR names are checked.
        for name in (name.removesuffix(".") for name in names[:MAX_NAMES_PER_ANSWER]):
            try:
                if self.ip in await self._addresses(name, void=False):
                    validated.append(name)
            except _TempError:
                # RFC 7208 §5.5: a name whose address lookup fails is skipped.
                continue
        return validated

    async def _lookup(
        self, query: Callable[[str], Awaitable[list[_T]]], name: str, *, void: bool
    ) -> list[_T]:
        # RFC 7208 §5: NXDOMAIN reads as an empty answer; any other failure is a temperror.
        try:
            answer = await query(name)
        except NoSuchDomain:
            answer = []
        except DnsError as error:
            raise _TempError(f"{name}: {error}") from None
        if void and not answer:
            self._count_void()
        return answer

    def _count_dns_term(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_DNS_TERMS:
            raise _PermError(f"more than {MAX_DNS_TERMS} DNS-querying terms")

    def _count_void(self) -> None:
        self.voids += 1
        if self.voids > MAX_VOID_LOOKUPS:
            raise _PermError(f"more than {MAX_VOID_LOOKUPS} void lookups")

    async def _expand_name(self, spec: MacroString, domain: str) -> str:
        return truncate_name(await self._expand(spec, domain))

    async def _expand(self, spec: MacroString, domain: str) -> str:
        ip = self.ip
        values = {
            "s": self.sender,
            "l": self.local,
            "o": self.sender_domain,
            "d": domain,
            "h": self.helo,
            "c": str(ip),
            "r": self.receiver,
            "t": str(int(self.now)),
            # RFC 7208 §7.3: IPv6 addresses expand as dot-separated nibbles.
            "i": str(ip) if ip.version == 4 else ".".join(ip.exploded.replace(":", "")),
            "v": "in-addr" if ip.version == 4 else "ip6",
        }
        if uses_letter(spec, "p"):
            values["p"] = await self._validated_name_for(domain)
        return expand(spec, values)

    async def _validated_name_for(self, domain: str) -> str:
        # RFC 7208 §7.3: prefer <domain> itself, then a subdomain of it, then any validated name.
        names = await self._validated_names(count_void=False)
        for candidate in (n for n in names if n.lower() == domain.lower()):
            return candidate
        for candidate in (n for n in names if _is_within(n, domain)):
            return candidate
        return names[0] if names else "unknown"

    async def explanation(self, outcome: _Outcome, deadline: float) -> str | None:
        """RFC 7208 §6.2: looked up once the result is known, and only for "fail"; a lookup past the
        time budget leaves it out rather than turning the result into a temperror."""
        if outcome.result != "fail" or outcome.explained_by is None:
            return None
        record, domain = outcome.explained_by
        if record.explanation is None:
            return None
        try:
            async with asyncio.timeout_at(deadline):
                return await self._explain(record.explanation, domain)
        except TimeoutError:
            return None

    async def _explain(self, spec: MacroString, domain: str) -> str | None:
        """RFC 7208 §6.2: any failure fetching or reading the explanation just leaves it out."""
        name = query_name(await self._expand_name(spec, domain))
        if name is None:
            return None
        try:
            texts = await self.resolver.txt(name)
            if len(texts) != 1:
                return None
            return await self._expand(parse_explanation(texts[0].decode("ascii")), domain)
        except (NoSuchDomain, DnsError, UnicodeDecodeError, SpfSyntaxError):
            return None


def _parse_record(text: bytes) -> SpfRecord | str:
    """The parsed record, or why it is a permerror (RFC 7208 §4.6)."""
    try:
        return parse_spf_record(text.decode("ascii"))
    except UnicodeDecodeError:
        return "SPF record is not ASCII"
    except SpfSyntaxError as error:
        return str(error)


# Each message from a sender brings the same record text again (from the resolver's cache), and the parse
# depends on the text alone: a changed record is new text, parsed afresh. Bounded, as the texts come from
# any domain. SpfRecord is immutable, so one parse can serve every evaluation.
_cached_record = functools.lru_cache(maxsize=1024)(_parse_record)


def _parse_addresses(texts: list[str]) -> list[IpAddress]:
    addresses: list[IpAddress] = []
    for text in texts:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError:
            continue
    return addresses
