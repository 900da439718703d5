"""Command dispatch: parse, check the state table, run the handler, flush changes, answer the tag.

Handlers are async generators registered by command type in HANDLERS: they yield untagged responses and end
with the tagged one. Refusals they raise are mapped in imapd/errors.py; anything else is a bug, logged with
its traceback and answered `NO [SERVERBUG]`, so the client never sees a traceback and the connection lives on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from kittiwake.imapd.errors import refusal_for
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.errors import BadCharset, MailboxNameRefused, ParseError
from kittiwake.proto.imap.parser import parse_command
from kittiwake.proto.imap.receiver import RawCommand
from kittiwake.proto.imap.states import ConnectionState, is_allowed, next_state

log = logging.getLogger(__name__)
Handler = Callable[[ImapSession, c.Command], AsyncIterator[r.Response]]
HANDLERS: dict[type[c.Command], Handler] = {}

# RFC 9051 §7.5.1: no EXPUNGE while FETCH, STORE or SEARCH by sequence number runs (UID forms may).
_NO_EXPUNGE_AFTER = (c.Fetch, c.Store, c.Search, c.Sort, c.Thread)


def handles(*kinds: type[c.Command]) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for kind in kinds:
            HANDLERS[kind] = handler
        return handler

    return register


async def run_command(session: ImapSession, raw: RawCommand) -> None:
    io = session.io
    tag = raw.tag.decode("ascii", "replace")
    refused: MailboxNameRefused | None = None
    try:
        command = parse_command(raw, utf8=session.utf8)
    except MailboxNameRefused as error:
        command, refused = error.command, error
    except BadCharset as error:
        await io.send(
            r.Tagged(
                tag=tag,
                status=r.Status.NO,
                text=str(error),
                code=r.ResponseCode.badcharset(["UTF-8", "US-ASCII"]),
            )
        )
        return
    except ParseError as error:
        if error.tag == "*":
            await io.send(r.UntaggedStatus(status=r.Status.BAD, text=str(error)))
        else:
            await io.send(r.Tagged(tag=error.tag, status=r.Status.BAD, text=str(error)))
        return
    if not is_allowed(session.state, command):
        await io.send(r.Tagged(tag=tag, status=r.Status.BAD, text=f"{raw.name.decode()} not allowed now"))
        return
    condstore_before = session.condstore
    if refused is not None:
        tagged = await _refuse_name(session, command, refused)
    else:
        tagged = await _run_handler(session, command)
    session.state = next_state(session.state, command, ok=tagged.status is r.Status.OK)
    selected = session.selected
    if (
        session.condstore
        and not condstore_before
        and selected is not None
        and not isinstance(command, _OPENS)
    ):
        # RFC 7162 §3.1: the first CONDSTORE-enabling command while a mailbox is selected makes the server
        # report that mailbox's HIGHESTMODSEQ (SELECT/EXAMINE report it among their own responses).
        code = r.ResponseCode.number("HIGHESTMODSEQ", selected.highest_modseq)
        await io.send(r.UntaggedStatus(status=r.Status.OK, text="Highest", code=code))
    if session.state is not ConnectionState.LOGOUT:
        allow = not (isinstance(command, _NO_EXPUNGE_AFTER) and not getattr(command, "uid", False))
        await flush_changes(session, allow_expunge=allow)
    if tagged.tag:  # STARTTLS and COMPRESS send their OK themselves, before the switch
        await io.send(tagged)


_OPENS = (c.Select, c.Examine)


async def _refuse_name(session: ImapSession, command: c.Command, refused: MailboxNameRefused) -> r.Tagged:
    """NO for a well-formed command naming a mailbox the server cannot accept (RFC 9051 §5.1), [CANNOT]
    when it was the name to create (RFC 5530 §3). A refused SELECT or EXAMINE still closes the mailbox
    that was selected, as any failing one does (RFC 9051 §6.3.2)."""
    if isinstance(command, _OPENS) and session.selected is not None:
        session.unselect()
        await session.io.send(
            r.UntaggedStatus(status=r.Status.OK, text="Previous mailbox closed", code=r.CLOSED)
        )
    code = r.CANNOT if refused.creating else None
    return r.Tagged(
        tag=command.tag, status=r.Status.NO, text=f"Invalid mailbox name: {refused.text}", code=code
    )


async def _run_handler(session: ImapSession, command: c.Command) -> r.Tagged:
    handler = HANDLERS.get(type(command))
    if handler is None:
        return r.Tagged(tag=command.tag, status=r.Status.BAD, text="Command not supported")
    responses = handler(session, command)
    try:
        async for response in responses:
            if isinstance(response, r.Tagged):
                # Closed here, not left to asyncio's finalizer hook: that would wake the loop through its
                # self-pipe and run a task for every command, and free the handler's rows only later.
                if isinstance(responses, AsyncGenerator):
                    await responses.aclose()
                return response
            await session.io.send(response)
    except Exception as error:
        refusal = refusal_for(error, command.tag)
        if refusal is not None:
            return refusal
        log.exception("IMAP %s failed", type(command).__name__)
        return r.Tagged(tag=command.tag, status=r.Status.NO, text="Internal server error", code=r.SERVERBUG)
    return r.Tagged(tag=command.tag, status=r.Status.OK, text=f"{type(command).__name__.upper()} completed")


async def flush_changes(session: ImapSession, *, allow_expunge: bool) -> None:
    selected = session.selected
    if selected is None or not selected.has_pending:
        return
    if selected.has_new_messages:  # they may bring keywords the client has not been told of
        selected.note_keywords(await session.store.mailbox_keywords(selected.id))
        await session.claim_recent(selected)  # RFC 3501 §2.3.2: before EXISTS tells of them
    for response in selected.flush(
        allow_expunge=allow_expunge, vanished=session.qresync, with_modseq=session.condstore
    ):
        await session.io.send(response)
