"""Routing through a real DNS server on loopback with kittiwake's dnspython resolver."""

from __future__ import annotations

from pathlib import Path

import pytest

from kittiwake.queue.remote import Route, find_route
from kittiwake.resolver import DnsError, DnspythonResolver, MxAnswer, NoSuchDomain, TlsaAnswer
from tests.dns_server import dns_server

TLSA_DATA = "9f" * 32
ZONE = {
    ("remote.test", "MX"): ["20 mx2.remote.test.", "10 mx1.remote.test."],
    ("signed.test", "MX"): ["10 mx.signed.test."],
    ("_25._tcp.mx.signed.test", "TLSA"): [f"3 1 1 {TLSA_DATA}"],
    ("_25._tcp.mx1.remote.test", "TLSA"): [f"3 1 1 {TLSA_DATA}"],
    ("mx1.remote.test", "A"): ["127.0.0.2"],
    ("mx2.remote.test", "A"): ["127.0.0.3"],
    ("mx2.remote.test", "AAAA"): ["::1"],
    ("nullmx.test", "MX"): ["0 ."],
    ("bare.test", "A"): ["127.0.0.4"],
    ("bare.test", "TXT"): ['"v=spf1 -all"'],
}


async def test_dnspython_resolver_reads_mx_a_aaaa_txt_and_nxdomain() -> None:
    async with dns_server(ZONE) as address:
        resolver = DnspythonResolver(address, timeout=5)
        assert sorted(await resolver.mx("remote.test")) == [(10, "mx1.remote.test"), (20, "mx2.remote.test")]
        assert await resolver.a("mx1.remote.test") == ["127.0.0.2"]
        assert await resolver.aaaa("mx2.remote.test") == ["::1"]
        assert await resolver.txt("bare.test") == [b"v=spf1 -all"]
        assert await resolver.mx("bare.test") == []  # the name exists, with no MX
        with pytest.raises(NoSuchDomain):
            await resolver.mx("nowhere.test")


async def test_routing_orders_mx_by_preference_and_sees_null_mx(tmp_path: Path) -> None:
    async with dns_server(ZONE) as address:
        resolver = DnspythonResolver(address, timeout=5)
        route = await find_route("remote.test", resolver, 25)
        assert isinstance(route, Route) and route.hosts == ("mx1.remote.test", "mx2.remote.test")
        null = await find_route("nullmx.test", resolver, 25)
        assert not isinstance(null, Route) and null.code == 556 and "5.1.10" in null.text
        implicit = await find_route("bare.test", resolver, 25)
        assert isinstance(implicit, Route) and implicit.hosts == ("bare.test",)
        missing = await find_route("nowhere.test", resolver, 25)
        assert not isinstance(missing, Route) and missing.code == 550


async def test_concurrent_lookups_of_one_name_share_one_query() -> None:
    import asyncio

    async with dns_server(ZONE) as address:
        resolver = DnspythonResolver(address, timeout=5)
        results = await asyncio.gather(*(resolver.mx("remote.test") for _ in range(50)))
        assert all(sorted(r) == [(10, "mx1.remote.test"), (20, "mx2.remote.test")] for r in results)
        assert resolver.queries_sent == 1


async def test_answers_the_resolver_validated_are_reported_secure() -> None:
    secure = {"signed.test", "_25._tcp.mx.signed.test"}
    async with dns_server(ZONE, secure=secure, failing={"_25._tcp.broken.test"}) as address:
        resolver = DnspythonResolver(address, timeout=5)
        assert await resolver.mx_answer("signed.test") == MxAnswer(
            records=[(10, "mx.signed.test")], secure=True
        )
        assert await resolver.tlsa("_25._tcp.mx.signed.test") == TlsaAnswer(
            records=[(3, 1, 1, bytes.fromhex(TLSA_DATA))], secure=True
        )
        unsigned = await resolver.tlsa("_25._tcp.mx1.remote.test")
        assert unsigned.records and not unsigned.secure
        assert not (await resolver.mx_answer("remote.test")).secure
        assert await resolver.mx("signed.test") == [(10, "mx.signed.test")]  # from the same cached answer
        with pytest.raises(DnsError):
            await resolver.tlsa("_25._tcp.broken.test")
        route = await find_route("signed.test", resolver, 25)
        assert isinstance(route, Route) and route.dnssec
