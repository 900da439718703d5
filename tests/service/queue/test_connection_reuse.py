"""The connection cache: mail for one destination shares a connection, RSET between transactions (RFC 5321
§4.1.1.5); a kept connection that died is replaced without a failed attempt; idle ones close."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import FakeClock, FakeResolver
from tests.service.queue.harness import MESSAGE, settle, submit
from tests.service.queue.sink import Sink, running_sinks
from tests.service.server_harness import RunningServer, running_server


def transactions(sink: Sink) -> list[bytes]:
    """The sink's commands from the first MAIL on, without the connection set-up."""
    commands = [c for c in sink.commands if c not in (b"EHLO", b"STAR")]
    return commands[commands.index(b"MAIL") :]


async def test_two_messages_to_one_domain_share_one_connection(server: RunningServer, sink_port: int) -> None:
    sink = Sink()
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, ["friend@remote.test"])
        await settle(server)
        await submit(server, ["other@remote.test"])
        await settle(server)
        assert len(sink.open) == 1  # still open for more mail
    assert [r.recipients for r in sink.received] == [["friend@remote.test"], ["other@remote.test"]]
    assert sink.connections == 1
    assert transactions(sink) == [b"MAIL", b"RCPT", b"DATA", b"RSET", b"MAIL", b"RCPT", b"DATA"]
    assert await server.store.count_queued() == 0


async def test_waiting_messages_take_turns_on_one_connection_within_the_destination_limit(
    tmp_path: Path, sink_port: int, resolver: FakeResolver
) -> None:
    overrides = {"queue.remote_port": sink_port, "queue.max_per_destination": 1}
    sink = Sink()
    async with running_server(tmp_path, overrides, resolver=resolver, clock=FakeClock()) as server:
        worker = server.services.queue
        assert worker is not None
        async with running_sinks(sink_port, {"127.0.0.2": sink}):
            async with worker.connections.lease("remote.test", "held by the test"):
                for number in range(3):
                    await submit(server, [f"r{number}@remote.test"])
                passes = asyncio.ensure_future(worker.process_due())
                for _ in range(500):
                    if worker.connections.waiting == 3:
                        break
                    await asyncio.sleep(0.01)
                assert worker.connections.waiting == 3  # all three wait for the destination's one slot
            await passes
            await settle(server)
            assert worker.connections.open_connections == 1  # the one kept open
    assert sorted(r.recipients[0] for r in sink.received) == [
        "r0@remote.test",
        "r1@remote.test",
        "r2@remote.test",
    ]
    assert sink.connections == 1  # handed from one delivery to the next
    assert transactions(sink).count(b"RSET") == 2


async def test_a_kept_connection_the_server_closed_is_replaced_without_a_failed_attempt(
    server: RunningServer, sink_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, ["friend@remote.test"])
        await settle(server)
        sink.disconnect()  # the server drops the idle connection the queue keeps
        await asyncio.sleep(0.05)
        caplog.set_level(logging.INFO, logger="kittiwake.queue")
        await submit(server, ["other@remote.test"])
        await settle(server)
    assert [r.recipients for r in sink.received] == [["friend@remote.test"], ["other@remote.test"]]
    assert sink.connections == 2
    assert await server.store.count_queued() == 0
    attempts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("attempt ")]
    assert len(attempts) == 1 and "result=delivered" in attempts[0]


async def test_a_kept_connection_whose_rset_fails_is_replaced(server: RunningServer, sink_port: int) -> None:
    sink = Sink(refuse_rset=True)
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, ["friend@remote.test"])
        await settle(server)
        await submit(server, ["other@remote.test"])
        await settle(server)
    assert len(sink.received) == 2
    assert sink.connections == 2
    assert await server.store.count_queued() == 0


@pytest.fixture
async def short_cache(tmp_path: Path, sink_port: int, resolver: FakeResolver) -> AsyncIterator[RunningServer]:
    overrides = {
        "queue.remote_port": sink_port,
        "queue.connection_cache_time": 1,
        "queue.connection_reuse_limit": 2,
    }
    async with running_server(tmp_path, overrides, resolver=resolver, clock=FakeClock()) as server:
        yield server


async def test_an_idle_connection_is_closed_with_quit_after_the_cache_time(
    short_cache: RunningServer, sink_port: int
) -> None:
    sink = Sink()
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(short_cache, ["friend@remote.test"], MESSAGE)
        await settle(short_cache)
        assert len(sink.open) == 1
        for _ in range(300):
            if not sink.open:
                break
            await asyncio.sleep(0.01)
        assert not sink.open
    assert sink.commands[-1] == b"QUIT"


async def test_a_connection_carries_at_most_the_reuse_limit(
    short_cache: RunningServer, sink_port: int
) -> None:
    sink = Sink()
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        for number in range(3):
            await submit(short_cache, [f"r{number}@remote.test"])
            await settle(short_cache)
    assert len(sink.received) == 3
    assert sink.connections == 2
