"""DNS behind one Protocol, so tests inject answers. The only module that imports dnspython.

Errors are told apart as the mail RFCs need: a name that does not exist (NXDOMAIN: permanent), a name
with no records of that type (an empty answer), and a lookup that failed (SERVFAIL, timeout: try later).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import dns.asyncresolver
import dns.exception
import dns.resolver
import dns.reversename

from kittiwake.config import parse_host_port


class DnsError(Exception):
    """A lookup failed for now (SERVFAIL, timeout); RFC 5321 §5.1 treats it as temporary."""


class NoSuchDomain(Exception):
    """NXDOMAIN: the name does not exist."""


class Resolver(Protocol):
    async def mx(self, name: str) -> list[tuple[int, str]]: ...
    async def a(self, name: str) -> list[str]: ...
    async def aaaa(self, name: str) -> list[str]: ...
    async def txt(self, name: str) -> list[bytes]: ...
    async def ptr(self, address: str) -> list[str]: ...
    async def tlsa(self, name: str) -> list[tuple[int, int, int, bytes]]: ...


NEGATIVE_TTL = 60.0  # RFC 2308 caps negative caching by the SOA; a minute keeps it simple and fresh
MAX_TTL = 3600.0
CACHE_ENTRIES = 20_000


class DnspythonResolver:
    """dnspython's async resolver with a small in-process cache that honours record TTLs.

    Every message on port 25 asks the same few names (the sender's SPF, DKIM key and DMARC policy); the
    cache answers repeats without a round trip. Failures (SERVFAIL, timeouts) are never cached.
    """

    def __init__(
        self, server: str = "", *, timeout: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=not server)
        if server:
            host, port = parse_host_port(server)
            self._resolver.nameservers = [host]
            self._resolver.port = port
        self._resolver.lifetime = timeout
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, list[Any] | None]] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[list[Any]]] = {}
        self.queries_sent = 0  # round trips to the DNS server, for tests and diagnostics

    async def _query(self, name: str, rdtype: str) -> list[Any]:
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

    async def _lookup(self, key: tuple[str, str], name: str, rdtype: str) -> list[Any]:
        now = self._clock()
        self.queries_sent += 1
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            self._remember(key, now + NEGATIVE_TTL, None)
            raise NoSuchDomain(name) from None
        except dns.resolver.NoAnswer:
            self._remember(key, now + NEGATIVE_TTL, [])
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
            raise DnsError(f"{rdtype} {name}: {error}") from None
        records = list(answer)
        ttl = answer.rrset.ttl if answer.rrset is not None else 0
        self._remember(key, now + min(float(ttl), MAX_TTL), records)
        return records

    def _remember(self, key: tuple[str, str], expires: float, records: list[Any] | None) -> None:
        if len(self._cache) >= CACHE_ENTRIES:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
        self._cache[key] = (expires, records)

    async def mx(self, name: str) -> list[tuple[int, str]]:
        return [
            (r.preference, r.exchange.to_text(omit_final_dot=True)) for r in await self._query(name, "MX")
        ]

    async def a(self, name: str) -> list[str]:
        return [r.address for r in await self._query(name, "A")]

    async def aaaa(self, name: str) -> list[str]:
        return [r.address for r in await self._query(name, "AAAA")]

    async def txt(self, name: str) -> list[bytes]:
        return [b"".join(r.strings) for r in await self._query(name, "TXT")]

    async def ptr(self, address: str) -> list[str]:
        name = dns.reversename.from_address(address).to_text()
        return [r.target.to_text(omit_final_dot=True) for r in await self._query(name, "PTR")]

    async def tlsa(self, name: str) -> list[tuple[int, int, int, bytes]]:
        return [(r.usage, r.selector, r.mtype, r.cert) for r in await self._query(name, "TLSA")]
