"""Stand-ins for what the outside world gives: DNS answers and the clock. Injected, never patched in."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kittiwake.resolver import DnsError, MxAnswer, NoSuchDomain, TlsaAnswer


@dataclass
class FakeResolver:
    """Answers from dictionaries; a name in `failing` raises SERVFAIL, one in `missing` NXDOMAIN. Answers
    for a name in `secure` come as DNSSEC-validated (the AD bit a validating resolver sets)."""

    mx_records: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    a_records: dict[str, list[str]] = field(default_factory=dict)
    aaaa_records: dict[str, list[str]] = field(default_factory=dict)
    txt_records: dict[str, list[bytes]] = field(default_factory=dict)
    ptr_records: dict[str, list[str]] = field(default_factory=dict)
    tlsa_records: dict[str, list[tuple[int, int, int, bytes]]] = field(default_factory=dict)
    secure: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    queries: list[tuple[str, str]] = field(default_factory=list)

    def _check(self, kind: str, name: str) -> None:
        self.queries.append((kind, name))
        key = name.lower().rstrip(".")
        if key in self.failing:
            raise DnsError(f"SERVFAIL {name}")
        if key in self.missing:
            raise NoSuchDomain(name)

    async def mx(self, name: str) -> list[tuple[int, str]]:
        self._check("MX", name)
        return list(self.mx_records.get(name.lower(), []))

    async def mx_answer(self, name: str) -> MxAnswer:
        return MxAnswer(records=await self.mx(name), secure=name.lower().rstrip(".") in self.secure)

    async def a(self, name: str) -> list[str]:
        self._check("A", name)
        return list(self.a_records.get(name.lower(), []))

    async def aaaa(self, name: str) -> list[str]:
        self._check("AAAA", name)
        return list(self.aaaa_records.get(name.lower(), []))

    async def txt(self, name: str) -> list[bytes]:
        self._check("TXT", name)
        return list(self.txt_records.get(name.lower(), []))

    async def ptr(self, address: str) -> list[str]:
        self._check("PTR", address)
        return list(self.ptr_records.get(address, []))

    async def tlsa(self, name: str) -> TlsaAnswer:
        self._check("TLSA", name)
        key = name.lower().rstrip(".")
        return TlsaAnswer(records=list(self.tlsa_records.get(key, [])), secure=key in self.secure)


@dataclass
class FakeClock:
    """The real time plus an offset that tests move forward, so hours pass in an instant.

    It keeps pace with the real clock because the store stamps new rows with the real time."""

    offset: float = 0.0

    @property
    def now(self) -> float:
        return time.time() + self.offset

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.offset += seconds
