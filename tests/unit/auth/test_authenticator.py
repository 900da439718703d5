"""Logins: argon2id verification, hash renewal when parameters change, and failure throttling."""

from __future__ import annotations

import pytest

from kittiwake.auth.authenticator import Authenticator, TooManyFailures
from kittiwake.auth.passwords import HashParameters, Passwords
from kittiwake.auth.throttle import FailureLedger
from kittiwake.store.sqlite import SqliteStore

FAST = HashParameters(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def add_user(store: SqliteStore, passwords: Passwords) -> None:
    await store.add_domain("example.org")
    await store.add_account("alice@example.org", passwords.hash("correct horse"))


async def test_right_password_gives_the_account_wrong_gives_none(store: SqliteStore) -> None:
    passwords = Passwords(FAST)
    await add_user(store, passwords)
    auth = Authenticator(store, passwords)
    ok = await auth.verify("alice@EXAMPLE.org", "correct horse", client_ip="192.0.2.1")
    assert ok.account is not None and ok.account.address == "alice@example.org"
    bad = await auth.verify("alice@example.org", "wrong", client_ip="192.0.2.1")
    assert bad.account is None and bad.delay > 0
    unknown = await auth.verify("nobody@example.org", "x", client_ip="192.0.2.2")
    assert unknown.account is None


async def test_login_renews_a_hash_made_with_old_parameters(store: SqliteStore) -> None:
    await add_user(store, Passwords(FAST))
    current = Passwords(HashParameters(time_cost=2, memory_cost=2048, parallelism=1))
    auth = Authenticator(store, current)
    assert (await auth.verify("alice@example.org", "correct horse")).account is not None
    account = await store.get_account("alice@example.org")
    assert account is not None and "m=2048,t=2" in account.password_hash
    assert not current.needs_rehash(account.password_hash)


async def test_failures_lock_out_the_client_then_expire(store: SqliteStore) -> None:
    passwords = Passwords(FAST)
    await add_user(store, passwords)
    clock = Clock()
    auth = Authenticator(store, passwords, ledger=FailureLedger(lock_after=3, window=60), clock=clock)
    delays = [
        (await auth.verify("alice@example.org", "bad", client_ip="203.0.113.9")).delay for _ in range(3)
    ]
    assert delays == sorted(delays) and delays[0] < delays[-1]
    with pytest.raises(TooManyFailures):
        await auth.verify("alice@example.org", "correct horse", client_ip="203.0.113.9")
    # The account is locked from other addresses too: guessing from many IPs is slowed as well.
    with pytest.raises(TooManyFailures):
        await auth.verify("alice@example.org", "correct horse", client_ip="198.51.100.7")
    clock.now += 61
    assert (
        await auth.verify("alice@example.org", "correct horse", client_ip="203.0.113.9")
    ).account is not None


def test_malformed_stored_hash_never_matches() -> None:
    passwords = Passwords(FAST)
    assert passwords.verify("not-a-hash", "anything") is False
    assert passwords.needs_rehash("not-a-hash") is True


class CountingPasswords(Passwords):
    """Real argon2id, counting the checks it makes."""

    def __init__(self) -> None:
        super().__init__(FAST)
        self.checks = 0

    def verify(self, password_hash: str, password: str) -> bool:
        self.checks += 1
        return super().verify(password_hash, password)


async def test_a_repeated_login_skips_the_hash_until_the_cache_expires(store: SqliteStore) -> None:
    passwords = CountingPasswords()
    await add_user(store, passwords)
    clock = Clock()
    auth = Authenticator(store, passwords, clock=clock)
    for _ in range(3):
        assert (await auth.verify("alice@example.org", "correct horse")).account is not None
    assert passwords.checks == 1
    clock.now += 901
    assert (await auth.verify("alice@example.org", "correct horse")).account is not None
    assert passwords.checks == 2


async def test_a_cached_login_does_not_let_a_wrong_password_in(store: SqliteStore) -> None:
    passwords = CountingPasswords()
    await add_user(store, passwords)
    auth = Authenticator(store, passwords)
    assert (await auth.verify("alice@example.org", "correct horse")).account is not None
    assert (await auth.verify("alice@example.org", "correct horsE")).account is None
    assert passwords.checks == 2  # the failure paid for a real check


async def test_changing_the_password_forgets_the_cached_login(store: SqliteStore) -> None:
    passwords = CountingPasswords()
    await add_user(store, passwords)
    auth = Authenticator(store, passwords)
    assert (await auth.verify("alice@example.org", "correct horse")).account is not None
    account = await store.get_account("alice@example.org")
    assert account is not None
    await store.set_password_hash(account.id, passwords.hash("battery staple"))
    assert (await auth.verify("alice@example.org", "correct horse")).account is None
    assert (await auth.verify("alice@example.org", "battery staple")).account is not None


async def test_a_cached_login_is_refused_while_the_account_is_locked(store: SqliteStore) -> None:
    passwords = CountingPasswords()
    await add_user(store, passwords)
    auth = Authenticator(store, passwords, ledger=FailureLedger(lock_after=2, window=60), clock=Clock())
    assert (await auth.verify("alice@example.org", "correct horse", client_ip="192.0.2.1")).account
    for _ in range(2):
        await auth.verify("alice@example.org", "bad", client_ip="203.0.113.9")
    with pytest.raises(TooManyFailures):
        await auth.verify("alice@example.org", "correct horse", client_ip="192.0.2.1")
