"""ConnectionPool: slots within the global and per-destination limits, kept sessions handed on or closed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kittiwake.queue.connections import ConnectionPool, Lease

KEY = ("remote.test", 25)
OTHER_KEY = ("other.test", 25)


class FakeSession:
    def __init__(self, transactions: int = 1, usable: bool = True) -> None:
        self.transactions = transactions
        self.usable = usable
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def pool(**limits: Any) -> ConnectionPool:
    settings = {"max_total": 10, "max_per_destination": 10, "idle_time": 60.0, "reuse_limit": 100}
    settings.update(limits)
    return ConnectionPool(**settings)


async def hold(
    connections: ConnectionPool,
    destination: str,
    key: object,
    release: asyncio.Event,
    got: list[Lease] | None = None,
) -> None:
    """Take a lease and keep it until `release`; `got` receives the lease as it was taken."""
    async with connections.lease(destination, key) as lease:
        if got is not None:
            got.append(Lease(destination=lease.destination, key=lease.key, session=lease.session))
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_global_limit_makes_deliveries_wait() -> None:
    connections = pool(max_total=2)
    release = asyncio.Event()
    tasks = [asyncio.ensure_future(hold(connections, f"d{n}.test", n, release)) for n in range(3)]
    await settle()
    assert connections.open_connections == 2 and connections.waiting == 1
    release.set()
    await asyncio.gather(*tasks)
    assert connections.open_connections == 0 and connections.waiting == 0


async def test_the_destination_limit_does_not_hold_up_other_destinations() -> None:
    connections = pool(max_per_destination=1)
    release = asyncio.Event()
    first = asyncio.ensure_future(hold(connections, "remote.test", KEY, release))
    second = asyncio.ensure_future(hold(connections, "remote.test", KEY, release))
    other = asyncio.ensure_future(hold(connections, "other.test", OTHER_KEY, release))
    await settle()
    assert connections.open_connections == 2 and connections.waiting == 1
    release.set()
    await asyncio.gather(first, second, other)


async def test_a_kept_session_goes_straight_to_the_next_delivery_with_its_key() -> None:
    connections = pool(max_per_destination=1)
    session = FakeSession()
    got: list[Lease] = []
    async with connections.lease("remote.test", KEY) as lease:
        waiting = asyncio.ensure_future(hold(connections, "remote.test", KEY, asyncio.Event(), got))
        await settle()
        assert got == []
        lease.session = session  # type: ignore[assignment]
    await settle()
    assert [lease.session for lease in got] == [session]
    assert connections.open_connections == 1 and connections.idle_sessions == 0
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_kept_session_waits_idle_and_is_reused_by_a_later_delivery() -> None:
    connections = pool()
    session = FakeSession()
    async with connections.lease("remote.test", KEY) as lease:
        lease.session = session  # type: ignore[assignment]
    assert connections.idle_sessions == 1 and connections.open_connections == 1
    async with connections.lease("remote.test", KEY) as lease:
        assert lease.session is session
        assert connections.idle_sessions == 0 and connections.open_connections == 1
    assert session.closed is False
    await connections.close()


async def test_an_idle_session_gives_its_slot_to_a_delivery_elsewhere() -> None:
    connections = pool(max_total=1)
    session = FakeSession()
    async with connections.lease("remote.test", KEY) as lease:
        lease.session = session  # type: ignore[assignment]
    async with connections.lease("other.test", OTHER_KEY) as lease:
        assert lease.session is None
        assert connections.open_connections == 1 and connections.idle_sessions == 0
    await connections.close()
    assert session.closed


async def test_an_idle_session_with_other_tls_needs_gives_way_within_its_destination() -> None:
    connections = pool(max_per_destination=1)
    session = FakeSession()
    async with connections.lease("remote.test", KEY) as lease:
        lease.session = session  # type: ignore[assignment]
    async with connections.lease("remote.test", ("remote.test", 25, "verified")) as lease:
        assert lease.session is None
    await connections.close()
    assert session.closed


async def test_a_delivery_that_waits_gets_the_slot_of_a_session_put_idle_meanwhile() -> None:
    connections = pool(max_total=1)
    session = FakeSession()
    async with connections.lease("remote.test", KEY) as lease:
        waiting = asyncio.ensure_future(hold(connections, "other.test", OTHER_KEY, asyncio.Event()))
        await settle()
        lease.session = session  # type: ignore[assignment]
    await settle()
    assert connections.idle_sessions == 0 and connections.open_connections == 1
    assert session.closed
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert connections.open_connections == 0


async def test_an_idle_session_is_closed_after_the_idle_time() -> None:
    connections = pool(idle_time=0.05)
    session = FakeSession()
    async with connections.lease("remote.test", KEY) as lease:
        lease.session = session  # type: ignore[assignment]
    await asyncio.sleep(0.1)
    await settle()
    assert session.closed and connections.open_connections == 0


@pytest.mark.parametrize("session", [FakeSession(transactions=3), FakeSession(usable=False)])
async def test_a_session_at_the_reuse_limit_or_out_of_step_is_closed(session: FakeSession) -> None:
    connections = pool(reuse_limit=3)
    async with connections.lease("remote.test", KEY) as lease:
        lease.session = session  # type: ignore[assignment]
    await settle()
    assert session.closed and connections.open_connections == 0 and connections.idle_sessions == 0


async def test_a_cancelled_waiter_leaves_no_slot_taken() -> None:
    connections = pool(max_total=1)
    release = asyncio.Event()
    first = asyncio.ensure_future(hold(connections, "a.test", "a", release))
    await settle()
    second = asyncio.ensure_future(hold(connections, "b.test", "b", release))
    await settle()
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    release.set()
    await first
    assert connections.open_connections == 0 and connections.waiting == 0
