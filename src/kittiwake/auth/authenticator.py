"""Authenticator: username + password -> Account, with throttling and hash renewal on login."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from kittiwake.auth.login_cache import LoginCache
from kittiwake.auth.passwords import Passwords
from kittiwake.auth.throttle import FailureLedger
from kittiwake.store.errors import KittiwakeError
from kittiwake.store.interface import Store
from kittiwake.store.models import Account

log = logging.getLogger(__name__)


class TooManyFailures(KittiwakeError):
    """Too many recent failures from this client or for this account: refuse without checking."""

    transient = True


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginResult:
    account: Account | None
    delay: float  # how long the server should wait before answering a failure


class Authenticator:
    def __init__(
        self,
        store: Store,
        passwords: Passwords,
        *,
        ledger: FailureLedger | None = None,
        clock: Callable[[], float] = time.monotonic,
        cache: LoginCache | None = None,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._ledger = ledger or FailureLedger()
        self._clock = clock
        self._cache = cache or LoginCache(clock)

    async def verify(self, username: str, password: str, *, client_ip: str = "") -> LoginResult:
        """Check credentials; raises TooManyFailures when the client or the account is locked out."""
        address = normalize_login(username)
        keys = [f"ip:{client_ip}", f"account:{address}"]
        now = self._clock()
        if self._ledger.locked(keys, now):
            raise TooManyFailures("too many failed logins; try again later")
        account = await self._store.get_account(address)
        if account is not None and self._cache.matches(account.id, account.password_hash, password):
            self._ledger.succeed(keys)
            return LoginResult(account=account, delay=0.0)
        # Hash even for unknown users so the answer takes as long either way.
        stored = account.password_hash if account else _dummy_hash()
        ok = await asyncio.to_thread(self._passwords.verify, stored, password)
        if account is None or not ok:
            self._ledger.fail(keys, now)
            log.info("login failed user=%s ip=%s", address, client_ip)
            return LoginResult(account=None, delay=self._ledger.delay(keys, now))
        self._ledger.succeed(keys)
        password_hash = account.password_hash
        if self._passwords.needs_rehash(password_hash):
            password_hash = await asyncio.to_thread(self._passwords.hash, password)
            await self._store.set_password_hash(account.id, password_hash)
        self._cache.remember(account.id, password_hash, password)
        return LoginResult(account=account, delay=0.0)


def normalize_login(username: str) -> str:
    """Logins are addresses; the domain is case-insensitive (RFC 5321 §2.4), so it is lower-cased."""
    local, at, domain = username.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if at else username.strip()


@functools.cache
def _dummy_hash() -> str:
    return Passwords().hash("kittiwake-no-such-user")
