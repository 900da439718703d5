"""Recipient routing against a real store: accounts, +tags, aliases (1:N, nested, remote) and catch-alls."""

from __future__ import annotations

from kittiwake.delivery.router import CACHE_SECONDS, Router, Verdict
from kittiwake.store.sqlite import SqliteStore


async def setup(store: SqliteStore) -> Router:
    await store.add_domain("example.org")
    for user in ("alice", "bob"):
        await store.add_account(f"{user}@example.org", "h")
    await store.add_alias("team@example.org", ["alice@example.org", "bob@example.org"])
    await store.add_alias("outside@example.org", ["someone@elsewhere.net", "alice@example.org"])
    await store.add_alias("nested@example.org", ["team@example.org"])
    return Router(store)


async def addresses(router: Router, address: str) -> tuple[Verdict, list[str], list[str]]:
    route = await router.resolve(address)
    return route.verdict, sorted(a.address for a in route.accounts), list(route.remote)


async def test_account_and_plus_tag_reach_the_user(store: SqliteStore) -> None:
    router = await setup(store)
    assert await addresses(router, "alice@example.org") == (Verdict.LOCAL, ["alice@example.org"], [])
    assert await addresses(router, "Alice+Lists@EXAMPLE.org") == (Verdict.LOCAL, ["alice@example.org"], [])


async def test_alias_fans_out_and_nests(store: SqliteStore) -> None:
    router = await setup(store)
    both = ["alice@example.org", "bob@example.org"]
    assert await addresses(router, "team@example.org") == (Verdict.LOCAL, both, [])
    assert await addresses(router, "nested+x@example.org") == (Verdict.LOCAL, both, [])


async def test_alias_to_a_remote_address_is_relayed(store: SqliteStore) -> None:
    router = await setup(store)
    assert await addresses(router, "outside@example.org") == (
        Verdict.LOCAL,
        ["alice@example.org"],
        ["someone@elsewhere.net"],
    )


async def test_unknown_local_user_and_foreign_domain(store: SqliteStore) -> None:
    router = await setup(store)
    assert (await router.resolve("nobody@example.org")).verdict is Verdict.UNKNOWN_USER
    assert (await router.resolve("alice@elsewhere.net")).verdict is Verdict.NOT_LOCAL


async def test_catch_all_takes_unknown_addresses_only(store: SqliteStore) -> None:
    router = await setup(store)
    await store.add_alias("@example.org", ["bob@example.org"])
    assert await addresses(router, "whatever@example.org") == (Verdict.LOCAL, ["bob@example.org"], [])
    assert await addresses(router, "alice@example.org") == (Verdict.LOCAL, ["alice@example.org"], [])


async def test_alias_loops_end(store: SqliteStore) -> None:
    router = await setup(store)
    await store.add_alias("loop1@example.org", ["loop2@example.org"])
    await store.add_alias("loop2@example.org", ["loop1@example.org", "bob@example.org"])
    assert await addresses(router, "loop1@example.org") == (Verdict.LOCAL, ["bob@example.org"], [])


async def test_a_domain_and_user_added_while_running_are_seen_after_the_cache_time(
    store: SqliteStore,
) -> None:
    now = [0.0]
    router = Router(store, clock=lambda: now[0])
    assert (await router.resolve("new@later.org")).verdict is Verdict.NOT_LOCAL
    await store.add_domain("later.org")
    await store.add_account("new@later.org", "h")
    assert (await router.resolve("new@later.org")).verdict is Verdict.NOT_LOCAL  # still remembered
    now[0] += CACHE_SECONDS
    assert (await router.resolve("new@later.org")).verdict is Verdict.LOCAL
