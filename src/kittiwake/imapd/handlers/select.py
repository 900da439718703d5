"""SELECT, EXAMINE (with CONDSTORE and QRESYNC), CLOSE, UNSELECT."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.selected import SelectedMailbox
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r


@handles(c.Select, c.Examine)
async def select(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Select | c.Examine)
    read_only = isinstance(command, c.Examine)
    # RFC 9051 §6.3.2: a SELECT, even a failing one, first deselects (with [CLOSED] once something was open).
    if session.selected is not None:
        session.unselect()
        yield r.UntaggedStatus(status=r.Status.OK, text="Previous mailbox closed", code=r.CLOSED)
    if command.qresync is not None and not session.qresync:
        raise CommandFailed("QRESYNC is not enabled", bad=True)  # RFC 7162 §3.2.5
    if command.condstore:
        session.condstore_used = True
    mailbox = await session.store.get_mailbox(session.account_id(), command.mailbox)
    selected = SelectedMailbox(mailbox, read_only=read_only, owner=session, reports_recent=not session.rev2)
    session.store.changes.subscribe_mailbox(mailbox.id, selected.on_change)
    session.selected = selected
    selected.load(await session.store.load_uids(mailbox.id))
    selected.keywords = set(await session.store.mailbox_keywords(mailbox.id))
    # RFC 3501 §6.3.1: SELECT takes the recent messages for this session; EXAMINE only looks (§6.3.2).
    await session.claim_recent(selected, mailbox)
    for response in _untagged(session, selected, mailbox.uid_next):
        yield response
    if not session.rev2 and mailbox.unseen:
        # RFC 3501 §6.3.1: IMAP4rev1 clients get the sequence number of the first unseen message.
        first = await session.store.first_unseen_uid(mailbox.id, known=mailbox)
        number = selected.sequence_number(first) if first is not None else None
        if number is not None:
            yield _number("UNSEEN", number, "First unseen")
    if command.qresync is not None:
        from kittiwake.imapd.handlers.qresync import resync

        async for response in resync(session, selected, command.qresync):
            yield response
    code = r.READ_ONLY if read_only else r.READ_WRITE
    yield r.Tagged(
        tag=command.tag, status=r.Status.OK, text=f"{type(command).__name__.upper()} completed", code=code
    )


def _untagged(session: ImapSession, selected: SelectedMailbox, uid_next: int) -> list[r.Response]:
    mailbox = selected.mailbox
    flag_lists = selected.flag_list_responses()
    responses: list[r.Response] = [flag_lists[0], r.Exists(count=selected.exists)]
    if not session.rev2:
        responses.append(selected.recent_response())  # RFC 3501 §6.3.1; RFC 9051 removed it
    responses.append(flag_lists[1])
    responses.append(_number("UIDVALIDITY", mailbox.uid_validity, "UIDs valid"))
    responses.append(_number("UIDNEXT", uid_next, "Predicted next UID"))
    if session.condstore:
        responses.append(_number("HIGHESTMODSEQ", mailbox.highest_modseq, "Highest"))
    return responses


def _number(atom: str, value: int, text: str) -> r.UntaggedStatus:
    return r.UntaggedStatus(status=r.Status.OK, text=text, code=r.ResponseCode.number(atom, value))


@handles(c.Close)
async def close(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    selected = session.require_selected()
    # RFC 9051 §6.4.1: CLOSE expunges \Deleted messages silently (no EXPUNGE responses), unless read-only.
    session.unselect()
    if not selected.read_only:
        await session.store.expunge(selected.id)
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="CLOSE completed")


@handles(c.Unselect)
async def unselect(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    session.require_selected()
    session.unselect()
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="UNSELECT completed")
