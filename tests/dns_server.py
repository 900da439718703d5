"""A tiny DNS server on loopback for tests: answers from a dictionary, over UDP.

Records: {("name.", "MX"): ["10 mx.name."], ("mx.name.", "A"): ["127.0.0.2"], ...}. A name with no records
of any type answers NXDOMAIN; a known name without the asked type answers NODATA; a name in `failing`
answers SERVFAIL. For a name in `secure` it plays a validating resolver that checked the answer: the reply
carries the AD bit when the query asked for it with AD or DO (RFC 6840 §5.7), as a local validating
resolver's does, with no signatures to check behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Zone = dict[tuple[str, str], list[str]]


def _fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone, secure: set[str], failing: set[str]) -> None:
        self.zone = {(_fqdn(name), kind.upper()): values for (name, kind), values in zone.items()}
        self.secure = {_fqdn(name) for name in secure}
        self.failing = {_fqdn(name) for name in failing}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        values = self.zone.get((name, kind))
        if name in self.secure and (query.flags & dns.flags.AD or query.ednsflags & dns.flags.DO):
            response.flags |= dns.flags.AD
        if name in self.failing:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif values:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, kind, values)
            )
        elif not any(known == name for known, _ in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@contextlib.asynccontextmanager
async def dns_server(
    zone: Zone, host: str = "127.0.0.1", *, secure: Iterable[str] = (), failing: Iterable[str] = ()
) -> AsyncIterator[str]:
    """Serve `zone`; yields "host:port" for kittiwake's `[dns] resolver` setting."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Protocol(zone, set(secure), set(failing)), local_addr=(host, 0)
    )
    port = transport.get_extra_info("sockname")[1]
    try:
        yield f"{host}:{port}"
    finally:
        transport.close()
