"""Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, NAMESPACE, STATUS."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r
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


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 9051 §6.3.9: `*` matches anything, `%` anything but the delimiter; INBOX matches without case."""
    full = pattern if pattern.startswith(DELIMITER) or not reference else reference + pattern
    if full[:5].upper() == "INBOX" and (len(full) == 5 or full[5] in (DELIMITER, "*", "%")):
        full = "INBOX" + full[5:]
    parts = []
    for chunk in re.split(r"([*%])", full):
        if chunk == "*":
            parts.append(".*")
        elif chunk == "%":
            parts.append(f"[^{re.escape(DELIMITER)}]*")
        else:
            parts.append(re.escape(chunk))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _attributes(mailbox: Mailbox | None, names: set[str], name: str, subscribed: set[str]) -> list[str]:
    attrs: list[str] = []
    if mailbox is None:
        attrs.append("\\NonExistent")
    prefix = name + DELIMITER
    has_children = any(other.startswith(prefix) for other in names)
    attrs.append("\\HasChildren" if has_children else "\\HasNoChildren")
    if mailbox is not None and mailbox.special_use:
        attrs.append(mailbox.special_use)
    if name in subscribed:
        attrs.append("\\Subscribed")
    return attrs


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
    selection = command.selection
    only_subscribed = c.ListSelection.SUBSCRIBED in selection
    show_subscribed = only_subscribed or command.returns.subscribed
    regexes = [pattern_regex(command.reference, pattern) for pattern in command.patterns]
    candidates = sorted(set(mailboxes) | (subscribed if only_subscribed else set()), key=_inbox_first)
    for name in candidates:
        if not any(regex.match(name) for regex in regexes):
            continue
        if only_subscribed and name not in subscribed:
            continue
        mailbox = mailboxes.get(name)
        if c.ListSelection.SPECIAL_USE in selection and (mailbox is None or not mailbox.special_use):
            continue
        attrs = _attributes(mailbox, set(mailboxes), name, subscribed if show_subscribed else set())
        yield r.ListResponse(attributes=tuple(attrs), delimiter=DELIMITER, name=name, utf8=session.utf8)
        if command.returns.status is not None and mailbox is not None:
            yield status_response(session, mailbox, command.returns.status)
    yield _done(command)


def _inbox_first(name: str) -> tuple[int, str]:
    return (0 if name == "INBOX" else 1, name)


@handles(c.Lsub)
async def lsub(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Lsub)
    regex = pattern_regex(command.reference, command.pattern)
    existing = {m.name for m in await session.store.list_mailboxes(session.account_id())}
    for name in sorted(await session.store.list_subscriptions(session.account_id()), key=_inbox_first):
        if regex.match(name):
            attrs = () if name in existing else ("\\Noselect",)
            yield r.ListResponse(
                attributes=attrs, delimiter=DELIMITER, name=name, utf8=session.utf8, lsub=True
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
