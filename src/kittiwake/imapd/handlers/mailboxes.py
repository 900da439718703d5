"""Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, NAMESPACE, STATUS."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.mailbox_listing import list_entries, lsub_entries
from kittiwake.proto.imap.mailbox_names import DELIMITER, check_mailbox_name, normalize_inbox
from kittiwake.store.models import Mailbox

SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")


def _done(command: c.Command) -> r.Tagged:
    return r.Tagged(tag=command.tag, status=r.Status.OK, text=f"{type(command).__name__.upper()} completed")


@handles(c.Create)
async def create(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Create)
    # RFC 9051 §6.3.4: a trailing delimiter only says the name is meant to hold children.
    name = normalize_inbox(command.mailbox.rstrip(DELIMITER) or command.mailbox)
    check_mailbox_name(name, creating=True)
    uses = [use for use in command.special_use if use.lower() in {s.lower() for s in SPECIAL_USES}]
    if len(uses) != len(command.special_use) or len(uses) > 1:
        # RFC 6154 §3: an attribute we do not support (or more than one) is refused with USEATTR.
        raise CommandFailed("Unsupported special-use attribute", r.ResponseCode(atom="USEATTR"))
    special_use = next(s for s in SPECIAL_USES if s.lower() == uses[0].lower()) if uses else None
    await session.store.create_mailbox(session.account_id(), name, special_use)
    yield _done(command)


@handles(c.Delete)
async def delete(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Delete)
    name = normalize_inbox(command.mailbox)
    selected = session.selected
    if selected is not None and selected.mailbox.name == name:
        session.unselect()
    await session.store.delete_mailbox(session.account_id(), name)
    yield _done(command)


@handles(c.Rename)
async def rename(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Rename)
    new = normalize_inbox(command.new_name)
    check_mailbox_name(new, creating=True)
    await session.store.rename_mailbox(session.account_id(), normalize_inbox(command.mailbox), new)
    yield _done(command)


@handles(c.Subscribe)
async def subscribe(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Subscribe)
    name = normalize_inbox(command.mailbox)
    await session.store.get_mailbox(session.account_id(), name)  # RFC 9051 §6.3.7: must exist (NONEXISTENT)
    await session.store.subscribe(session.account_id(), name)
    yield _done(command)


@handles(c.Unsubscribe)
async def unsubscribe(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Unsubscribe)
    await session.store.unsubscribe(session.account_id(), normalize_inbox(command.mailbox))
    yield _done(command)


@handles(c.List)
async def list_(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.List)
    if command.patterns == ("",) and not command.extended:
        # RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root.
        yield r.ListResponse(attributes=("\\Noselect",), delimiter=DELIMITER, name="", utf8=session.utf8)
        yield _done(command)
        return
    account_id = session.account_id()
    mailboxes = {m.name: m for m in await session.store.list_mailboxes(account_id)}
    subscribed = set(await session.store.list_subscriptions(account_id))
    entries = list_entries(
        mailboxes={name: mailbox.special_use for name, mailbox in mailboxes.items()},
        subscribed=subscribed,
        reference=command.reference,
        patterns=command.patterns,
        selection=command.selection,
        show_subscribed=c.ListSelection.SUBSCRIBED in command.selection or command.returns.subscribed,
        # RFC 5258 §3.4: \NonExistent implies \Noselect, the only one an RFC 3501 LIST client knows.
        nonexistent="\\NonExistent" if command.extended or session.rev2 else "\\Noselect",
    )
    for entry in entries:
        yield r.ListResponse(
            attributes=entry.attributes,
            delimiter=DELIMITER,
            name=entry.name,
            utf8=session.utf8,
            child_info=entry.child_info,
        )
        mailbox = mailboxes.get(entry.name)
        if command.returns.status is not None and mailbox is not None:
            # RFC 5819 §2: no STATUS for a name that is not a mailbox (\NonExistent).
            yield status_response(session, mailbox, command.returns.status)
    yield _done(command)


@handles(c.Lsub)
async def lsub(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Lsub)
    subscribed = await session.store.list_subscriptions(session.account_id())
    for entry in lsub_entries(subscribed=subscribed, reference=command.reference, pattern=command.pattern):
        yield r.ListResponse(
            attributes=entry.attributes, delimiter=DELIMITER, name=entry.name, utf8=session.utf8, lsub=True
        )
    yield _done(command)


@handles(c.Namespace)
async def namespace(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    # RFC 2342: one personal namespace with an empty prefix; no other users' or shared namespaces.
    yield r.NamespaceResponse(personal=(("", DELIMITER),), utf8=session.utf8)
    yield _done(command)


def status_response(
    session: ImapSession, mailbox: Mailbox, items: tuple[c.StatusItem, ...]
) -> r.StatusResponse:
    values = {
        c.StatusItem.MESSAGES: mailbox.messages,
        c.StatusItem.UIDNEXT: mailbox.uid_next,
        c.StatusItem.UIDVALIDITY: mailbox.uid_validity,
        c.StatusItem.UNSEEN: mailbox.unseen,
        c.StatusItem.DELETED: mailbox.deleted,
        c.StatusItem.SIZE: mailbox.size,
        c.StatusItem.RECENT: session.recent_in(mailbox),
        c.StatusItem.HIGHESTMODSEQ: mailbox.highest_modseq,
        c.StatusItem.APPENDLIMIT: session.settings.append_limit,
    }
    return r.StatusResponse(
        mailbox=mailbox.name, items=tuple((item.value, values[item]) for item in items), utf8=session.utf8
    )


@handles(c.Status)
async def status(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Status)
    mailbox = await session.store.get_mailbox(session.account_id(), normalize_inbox(command.mailbox))
    if c.StatusItem.HIGHESTMODSEQ in command.items:
        session.condstore_used = True  # RFC 7162 §3.1: STATUS HIGHESTMODSEQ enables CONDSTORE
    yield status_response(session, mailbox, command.items)
    yield _done(command)
