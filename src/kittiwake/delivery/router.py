"""Recipient routing: which accounts a local address reaches, through aliases, catch-alls and +tags."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from kittiwake.store.interface import Store
from kittiwake.store.models import Account

MAX_ALIAS_DEPTH = 8


class Verdict(enum.Enum):
    LOCAL = "local"  # delivered to `accounts` (and relayed to `remote`, for aliases that point outside)
    UNKNOWN_USER = "unknown user"  # our domain, nobody there: RFC 5321 550 5.1.1
    NOT_LOCAL = "not local"  # not one of our domains: relay, if the sender may


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    verdict: Verdict
    accounts: tuple[Account, ...] = ()
    remote: tuple[str, ...] = ()  # alias targets outside our domains


def split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local.lower(), domain.lower()


def strip_tag(local: str) -> str:
    """user+tag reaches user: the tag is the user's own sub-address (RFC 5233)."""
    base, plus, _ = local.partition("+")
    return base if plus and base else local


CACHE_SECONDS = 10.0


class Router:
    """Resolves addresses against the store.

    The domain list and account lookups are remembered for CACHE_SECONDS: a busy MX asks the same questions
    over and over, and a domain or user added or removed with the command line is seen that soon after.
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._domains: tuple[float, frozenset[str]] | None = None
        self._clock = clock
        self._accounts: dict[str, tuple[float, Account | None]] = {}

    async def _account(self, address: str) -> Account | None:
        now = self._clock()
        cached = self._accounts.get(address)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        account = await self._store.get_account(address)
        if len(self._accounts) > 50_000:
            self._accounts.clear()
        self._accounts[address] = (now, account)
        return account

    async def local_domains(self) -> frozenset[str]:
        now = self._clock()
        if self._domains is None or now - self._domains[0] >= CACHE_SECONDS:
            self._domains = (now, frozenset(d.name for d in await self._store.list_domains()))
        return self._domains[1]

    async def is_local_domain(self, domain: str) -> bool:
        return domain.lower() in await self.local_domains()

    async def resolve(self, address: str) -> Route:
        local, domain = split_address(address)
        if not await self.is_local_domain(domain):
            return Route(verdict=Verdict.NOT_LOCAL)
        accounts: dict[int, Account] = {}
        remote: list[str] = []
        await self._expand(f"{local}@{domain}", accounts, remote, depth=0)
        if not accounts and not remote:
            return Route(verdict=Verdict.UNKNOWN_USER)
        return Route(verdict=Verdict.LOCAL, accounts=tuple(accounts.values()), remote=tuple(remote))

    async def _expand(
        self, address: str, accounts: dict[int, Account], remote: list[str], depth: int
    ) -> None:
        if depth > MAX_ALIAS_DEPTH:
            return
        local, domain = split_address(address)
        if not await self.is_local_domain(domain):
            if address not in remote:
                remote.append(address)
            return
        for candidate in dict.fromkeys((f"{local}@{domain}", f"{strip_tag(local)}@{domain}")):
            account = await self._account(candidate)
            if account is not None:
                accounts[account.id] = account
                return
            alias = await self._store.get_alias(candidate)
            if alias is not None:
                for target in alias.targets:
                    await self._expand(target, accounts, remote, depth + 1)
                return
        catch_all = await self._store.get_alias(f"@{domain}")
        if catch_all is not None:
            for target in catch_all.targets:
                if split_address(target)[1] != domain or target != address:
                    await self._expand(target, accounts, remote, depth + 1)
