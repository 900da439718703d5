"""APPEND with MULTIAPPEND (RFC 3502), APPENDUID (RFC 4315), literal8 and UTF8 (RFC 3516, RFC 6855).

Message literals were streamed into spools as they arrived (imapd/connection.py); here they are made
durable and added in one transaction, so a MULTIAPPEND adds all of its messages or none.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from kittiwake.delivery.spool import Spool
from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.handlers.store_flags import parse_flags
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.mailbox_names import normalize_inbox
from kittiwake.store import errors
from kittiwake.store.models import IncomingMessage


@handles(c.Append)
async def append(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Append)
    try:
        mailbox = await session.store.get_mailbox(session.account_id(), normalize_inbox(command.mailbox))
    except errors.MailboxNotFound:
        raise CommandFailed("Mailbox does not exist", r.TRYCREATE) from None
    incoming = []
    for message in command.messages:
        spool = _spool_for(session, message)
        if spool.size > session.settings.append_limit:
            spool.discard()
            raise CommandFailed("Message too large", r.TOOBIG)
        spooled = await spool.finish()
        date = int(message.internal_date.timestamp()) if message.internal_date else int(time.time())
        incoming.append(
            IncomingMessage(
                blob=spooled.blob,
                size=spooled.size,
                internal_date=date,
                structure=spooled.structure,
                flags=parse_flags(message.flags),
            )
        )
    added = await session.store.append(mailbox.id, incoming)
    code = r.ResponseCode.appenduid(mailbox.uid_validity, [a.uid for a in added])
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="APPEND completed", code=code)


def _spool_for(session: ImapSession, message: c.AppendMessage) -> Spool:
    content = message.content
    if isinstance(content, bytes):
        spool = Spool(session.store, inline_max=session.settings.inline_max)
        spool.write(content)
        return spool
    spooled = session.io.spooled_literal(content.index)
    assert isinstance(spooled, Spool)
    return spooled
