"""A 50 MB message leaves the queue byte for byte, by DATA and by BDAT, without ever being in memory whole."""

from __future__ import annotations

import hashlib
import random
import tracemalloc

import pytest

from tests.service.queue.harness import inbox, settle, submit
from tests.service.queue.sink import Sink, running_sinks
from tests.service.server_harness import RunningServer

SIZE = 50_000_000
# Far below the message: what the queue holds is a few chunks of it (CHUNK = 128 KiB) per connection.
MEMORY_BOUND = 8 * 1024 * 1024


def large_message(size: int) -> bytes:
    """Lines of random length and text, many starting with dots, so that dot-stuffing has work at every
    chunk border, a chunk ending inside a CRLF included."""
    rng = random.Random(5321)
    alphabet = bytes(range(0x20, 0x7F))
    pool = bytes(rng.choice(alphabet) for _ in range(4096))
    head = b"From: alice@example.org\r\nTo: friend@remote.test\r\nSubject: big\r\n\r\n"
    lines = [head]
    total = len(head)
    while total < size:
        start = rng.randrange(0, 3000)
        line = b"." * rng.choice((0, 0, 1, 2)) + pool[start : start + rng.randrange(0, 990)] + b"\r\n"
        lines.append(line)
        total += len(line)
    return b"".join(lines)


@pytest.mark.parametrize("chunking", [False, True], ids=["DATA", "BDAT"])
async def test_50_mb_message_arrives_identical_with_bounded_memory(
    server: RunningServer, sink_port: int, chunking: bool
) -> None:
    message = large_message(SIZE)
    worker = server.services.queue
    assert worker is not None
    # Signing reads the whole message once per queue entry (the signer takes bytes); without it the
    # queue reads the message only in chunks, and that is what this test measures.
    worker.signer = None
    sink = Sink(chunking=chunking, keep_data=False)
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, ["friend@remote.test"], message)
        tracemalloc.start()
        try:
            await settle(server)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    (got,) = sink.received
    trace = got.data[: got.data.index(message[:1000])]  # the Received field the submission server added
    assert trace.startswith(b"Received: ") and len(trace) < 1000
    expected = trace + message
    assert (got.size, got.sha256) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert peak < MEMORY_BOUND
    assert await server.store.count_queued() == 0


async def test_large_signed_message_arrives_identical_after_its_signature(
    server: RunningServer, sink_port: int
) -> None:
    message = large_message(3_000_000)
    sink = Sink(chunking=True)
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, ["friend@remote.test"], message)
        await settle(server)
    (got,) = sink.received
    assert got.data.startswith(b"DKIM-Signature: ")
    assert got.data.endswith(message)


async def test_a_refused_bdat_chunk_ends_the_transaction_and_the_session_stays_in_step(
    server: RunningServer, sink_port: int
) -> None:
    sink = Sink(chunking=True, refuse_bdat_after=200_000)
    async with running_sinks(sink_port, {"127.0.0.2": sink}):
        await submit(server, ["friend@remote.test"], large_message(1_000_000))
        await settle(server)
        await submit(server, ["other@remote.test"], large_message(100_000))
        await settle(server)
    assert [r.recipients for r in sink.received] == [["other@remote.test"]]
    assert sink.connections == 1  # RSET, then the next message over the same connection
    (bounce,) = await inbox(server)
    assert b"552 5.3.4 message too big for this sink" in bounce
    # RFC 3030 §2: no BDAT after the refused third chunk but the one already on its way (pipelined).
    commands = sink.commands[: sink.commands.index(b"RSET")]
    assert commands.count(b"BDAT") == 4
