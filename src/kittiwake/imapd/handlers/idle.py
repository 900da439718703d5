"""IDLE (RFC 2177, RFC 9051 §6.3.13): changes to the selected mailbox are sent as they happen."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r


@handles(c.Idle)
async def idle(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    await session.io.send(r.Continuation(text="idling"))
    await session.io.flush()
    try:
        done = await session.io.idle(session)
    except TimeoutError:
        yield r.UntaggedStatus(status=r.Status.BYE, text="Idle for too long")
        yield r.Tagged(tag=command.tag, status=r.Status.NO, text="IDLE timed out")
        session.state = session.state.__class__.LOGOUT
        return
    if not done:
        yield r.Tagged(tag=command.tag, status=r.Status.BAD, text="Expected DONE")
        return
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="IDLE terminated")
