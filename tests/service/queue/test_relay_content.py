"""What the server learns of a relayed message as it arrives (7-bit or not, CRLF only, lines beginning with a
period) is kept with the queue entry, and the queue sends the message on by it, byte for byte."""

from __future__ import annotations

import json

from tests.service.queue.harness import MESSAGE, settle, submit
from tests.service.queue.sink import Sink, running_sinks
from tests.service.server_harness import RunningServer

# smtplib stuffs these lines on the way in; the queue must stuff them again on the way out, or the lone
# period would end the message early at the receiver.
DOTTED = MESSAGE + b".hidden\r\n..two periods\r\n.\r\nafter the lone period\r\n"
EIGHT_BIT = MESSAGE.replace(b"Hello.", "Grüße.".encode())


async def content_of(server: RunningServer, recipient: str) -> dict[str, bool]:
    for entry in await server.store.load_queue():
        if any(r.address == recipient for r in entry.recipients):
            content: dict[str, bool] = json.loads(entry.params)["content"]
            return content
    raise AssertionError(f"no queue entry for {recipient}")


async def test_the_queue_keeps_what_was_learnt_of_each_message_as_it_arrived(server: RunningServer) -> None:
    # No sink listens: every message stays queued after its first attempt.
    await submit(server, ["plain@remote.test"])
    await submit(server, ["dotted@remote.test"], DOTTED)
    await submit(server, ["eight@remote.test"], EIGHT_BIT, mail_options=["BODY=8BITMIME"])
    assert await content_of(server, "plain@remote.test") == {
        "ascii": True,
        "crlf_only": True,
        "dot_free": True,
    }
    assert await content_of(server, "dotted@remote.test") == {
        "ascii": True, "crlf_only": True, "dot_free": False,
    }  # fmt: skip
    assert await content_of(server, "eight@remote.test") == {
        "ascii": False, "crlf_only": True, "dot_free": True,
    }  # fmt: skip


async def test_a_relayed_message_with_lines_beginning_with_a_period_arrives_intact(
    server: RunningServer, sink_port: int
) -> None:
    async with running_sinks(sink_port, {"127.0.0.2": Sink()}) as sinks:
        await submit(server, ["friend@remote.test"], DOTTED)
        await submit(server, ["friend@remote.test"])
        await settle(server)
    dotted, plain = sinks["127.0.0.2"].received
    assert dotted.data.endswith(DOTTED)
    assert plain.data.endswith(MESSAGE)
    assert await server.store.count_queued() == 0


async def test_a_relayed_8bit_message_arrives_byte_exact(server: RunningServer, sink_port: int) -> None:
    async with running_sinks(sink_port, {"127.0.0.2": Sink()}) as sinks:
        await submit(server, ["friend@remote.test"], EIGHT_BIT, mail_options=["BODY=8BITMIME"])
        await settle(server)
    (got,) = sinks["127.0.0.2"].received
    assert got.data.endswith(EIGHT_BIT)
