"""EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, §6.4.9; UIDPLUS)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.handlers.messages import resolve_uids
from kittiwake.imapd.selected import uid_runs
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r


@handles(c.Expunge)
async def expunge(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Expunge)
    selected = session.require_selected()
    if selected.read_only:
        raise CommandFailed("Mailbox is read-only", r.ResponseCode(atom="READ-ONLY"))
    ranges = None
    if command.sequence_set is not None:
        uids = resolve_uids(session, command.sequence_set, uid=True)
        if not uids:
            yield r.Tagged(tag=command.tag, status=r.Status.OK, text="EXPUNGE completed")
            return
        ranges = uid_runs(uids, selected.uids)
    await session.store.expunge(selected.id, ranges)
    # The EXPUNGE (or VANISHED) responses come from the change bus, flushed before the tagged OK.
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="EXPUNGE completed")
