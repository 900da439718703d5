"""COPY, MOVE and their UID forms (RFC 9051 §6.4.7, RFC 6851), answering COPYUID (RFC 4315)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.handlers.messages import resolve_uids
from kittiwake.imapd.selected import uid_runs
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.mailbox_names import normalize_inbox
from kittiwake.store import errors


@handles(c.Copy, c.Move)
async def copy_or_move(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Copy | c.Move)
    move = isinstance(command, c.Move)
    selected = session.require_selected()
    if move and selected.read_only:
        raise CommandFailed("Mailbox is read-only", r.ResponseCode(atom="READ-ONLY"))
    try:
        target = await session.store.get_mailbox(session.account_id(), normalize_inbox(command.mailbox))
    except errors.MailboxNotFound:
        # RFC 9051 §6.4.7: [TRYCREATE] tells the client that CREATE would help.
        raise CommandFailed("Target mailbox does not exist", r.TRYCREATE) from None
    uids = resolve_uids(session, command.sequence_set, uid=command.uid)
    verb = "MOVE" if move else "COPY"
    if not uids:
        yield r.Tagged(tag=command.tag, status=r.Status.OK, text=f"{verb} completed: no messages")
        return
    pairs = await session.store.copy_messages(
        selected.id, uid_runs(uids, selected.uids), target.id, move=move
    )
    code = r.ResponseCode.copyuid(target.uid_validity, [p[0] for p in pairs], [p[1] for p in pairs])
    if move:
        # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
        yield r.UntaggedStatus(status=r.Status.OK, text="Moved", code=code)
        yield r.Tagged(tag=command.tag, status=r.Status.OK, text="MOVE completed")
    else:
        yield r.Tagged(tag=command.tag, status=r.Status.OK, text="COPY completed", code=code)
