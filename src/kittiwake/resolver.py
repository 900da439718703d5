"""DNS behind one Protocol, so tests inject answers. The only module that imports dnspython.

Errors are told apart as the mail RFCs need: a name that does not exist (NXDOMAIN: permanent), a name
with no records of that type (an empty answer), and a lookup that failed (SERVFAIL, timeout: try later).
"""

from __future__ import annotations

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


class DnspythonResolver:
    def __init__(self, server: str = "", *, timeout: float = 10.0) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=not server)
        if server:
            host, port = parse_host_port(server)
            self._resolver.nameservers = [host]
            self._resolver.port = port
        self._resolver.lifetime = timeout

    async def _query(self, name: str, rdtype: str) -> list[Any]:
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise NoSuchDomain(name) from None
        except dns.resolver.NoAnswer:
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
            raise DnsError(f"{rdtype} {name}: {error}") from None
        return list(answer)

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
