"""DNS behind one Protocol, so tests inject answers. The only module that imports dnspython.

Errors are told apart as the mail RFCs need: a name that does not exist (NXDOMAIN: permanent), a name
with no records of that type (an empty answer), and a lookup that failed (SERVFAIL, timeout: try later).

DNSSEC: kittiwake does not validate signatures itself. For the lookups DANE depends on (MX and TLSA,
RFC 7672 §2.2) it asks the configured resolver for validation (the DO and AD bits, RFC 6840 §5.7) and
reports an answer as `secure` when the resolver's reply carries the AD bit. That bit is only as
trustworthy as the path to the resolver: it must be a validating resolver on this host (127.0.0.1 or ::1),
as Postfix documents for its `dane` security level; see `mailauth.dane`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.resolver
import dns.reversename

from kittiwake.config import parse_host_port


class DnsError(Exception):
    """A lookup failed for now (SERVFAIL, timeout); RFC 5321 §5.1 treats it as temporary."""


class NoSuchDomain(Exception):
    """NXDOMAIN: the name does not exist."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MxAnswer:
    """MX records (preference, host), and whether the resolver vouched for them by DNSSEC (AD bit)."""

    records: list[tuple[int, str]]
    secure: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsaAnswer:
    """TLSA records (usage, selector, matching type, data), and whether DNSSEC vouched for them."""

    records: list[tuple[int, int, int, bytes]]
    secure: bool


class Resolver(Protocol):
    async def mx(self, name: str) -> list[tuple[int, str]]: ...
    async def mx_answer(self, name: str) -> MxAnswer: ...  # the same records, with their DNSSEC status
    async def a(self, name: str) -> list[str]: ...
    async def aaaa(self, name: str) -> list[str]: ...
    async def txt(self, name: str) -> list[bytes]: ...
    async def ptr(self, address: str) -> list[str]: ...
    async def tlsa(self, name: str) -> TlsaAnswer: ...


NEGATIVE_TTL = 60.0  # RFC 2308 caps negative caching by the SOA; a minute keeps it simple and fresh
MAX_TTL = 3600.0
CACHE_ENTRIES = 20_000
# Record types whose DNSSEC status matters (DANE, RFC 7672 §2.2): asked with DO and AD set. Other lookups
# (SPF, DKIM, DMARC, DNSBL) go without, so a signed zone's answers stay small enough for UDP.
DNSSEC_TYPES = frozenset({"MX", "TLSA"})
EDNS_PAYLOAD = 1232  # the DNS Flag Day 2020 size: no IP fragmentation


@dataclass(frozen=True, slots=True)
class _Records:
    items: list[Any]
    secure: bool  # the reply had the AD bit


class DnspythonResolver:
    """dnspython's async resolver with a small in-process cache that honours record TTLs.

    Every message on port 25 asks the same few names (the sender's SPF, DKIM key and DMARC policy); the
    cache answers repeats without a round trip. Failures (SERVFAIL, timeouts) are never cached.
    """

    def __init__(
        self, server: str = "", *, timeout: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._resolver = self._make(server, timeout)
        # RFC 6840 §5.7: AD in the query asks a validating resolver to say whether it validated; DO (RFC
        # 4035 §3.2.1) asks the same of older resolvers, which set AD only for DNSSEC-aware clients.
        self._dnssec_resolver = self._make(server, timeout)
        self._dnssec_resolver.use_edns(0, dns.flags.DO, EDNS_PAYLOAD)
        self._dnssec_resolver.flags = dns.flags.RD | dns.flags.AD
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, _Records | None]] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[_Records]] = {}
        self.queries_sent = 0  # round trips to the DNS server, for tests and diagnostics

    @staticmethod
    def _make(server: str, timeout: float) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=not server)
        if server:
            host, port = parse_host_port(server)
            resolver.nameservers = [host]
            resolver.port = port
        resolver.lifetime = timeout
        return resolver

    async def _query(self, name: str, rdtype: str) -> _Records:
        key = (name.lower(), rdtype)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            if cached[1] is None:
                raise NoSuchDomain(name)
            return cached[1]
        # Many deliveries to one domain at once ask the same question: one query answers them all.
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(self._lookup(key, name, rdtype))
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    async def _lookup(self, key: tuple[str, str], name: str, rdtype: str) -> _Records:
        now = self._clock()
        self.queries_sent += 1
        resolver = self._dnssec_resolver if rdtype in DNSSEC_TYPES else self._resolver
        try:
            answer = await resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            self._remember(key, now + NEGATIVE_TTL, None)
            raise NoSuchDomain(name) from None
        except dns.resolver.NoAnswer as empty:
            # A secure "no such record" (NODATA with AD) is a validated denial, RFC 4035 §3.1.3.2.
            records = _Records([], _authenticated(empty.kwargs.get("response")))
            self._remember(key, now + NEGATIVE_TTL, records)
            return records
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
            raise DnsError(f"{rdtype} {name}: {error}") from None
        records = _Records(list(answer), _authenticated(answer.response))
        ttl = answer.rrset.ttl if answer.rrset is not None else 0
        self._remember(key, now + min(float(ttl), MAX_TTL), records)
        return records

    def _remember(self, key: tuple[str, str], expires: float, records: _Records | None) -> None:
        if len(self._cache) >= CACHE_ENTRIES:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
        self._cache[key] = (expires, records)

    async def mx(self, name: str) -> list[tuple[int, str]]:
        return (await self.mx_answer(name)).records

    async def mx_answer(self, name: str) -> MxAnswer:
        found = await self._query(name, "MX")
        records = [(r.preference, r.exchange.to_text(omit_final_dot=True)) for r in found.items]
        return MxAnswer(records=records, secure=found.secure)

    async def a(self, name: str) -> list[str]:
        return [r.address for r in (await self._query(name, "A")).items]

    async def aaaa(self, name: str) -> list[str]:
        return [r.address for r in (await self._query(name, "AAAA")).items]

    async def txt(self, name: str) -> list[bytes]:
        return [b"".join(r.strings) for r in (await self._query(name, "TXT")).items]

    async def ptr(self, address: str) -> list[str]:
        name = dns.reversename.from_address(address).to_text()
        return [r.target.to_text(omit_final_dot=True) for r in (await self._query(name, "PTR")).items]

    async def tlsa(self, name: str) -> TlsaAnswer:
        found = await self._query(name, "TLSA")
        records = [(r.usage, r.selector, r.mtype, r.cert) for r in found.items]
        return TlsaAnswer(records=records, secure=found.secure)


def _authenticated(response: dns.message.Message | None) -> bool:
    """Whether the resolver validated the reply by DNSSEC: the AD bit (RFC 4035 §3.2.3)."""
    return response is not None and bool(response.flags & dns.flags.AD)
