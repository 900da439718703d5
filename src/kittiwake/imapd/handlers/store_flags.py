"""STORE and UID STORE (RFC 9051 §6.4.6), with CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.handlers.messages import resolve_uids
from kittiwake.imapd.selected import uid_runs
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.wire_format import encode_flag_list
from kittiwake.store.interface import FlagMode
from kittiwake.store.models import SYSTEM_FLAG_NAMES, Flags

_MODES = {
    c.StoreMode.REPLACE: FlagMode.REPLACE,
    c.StoreMode.ADD: FlagMode.ADD,
    c.StoreMode.REMOVE: FlagMode.REMOVE,
}


def parse_flags(names: tuple[str, ...]) -> Flags:
    for name in names:
        if name.startswith("\\") and name.lower() not in SYSTEM_FLAG_NAMES and name.lower() != "\\recent":
            raise CommandFailed(f"Unknown system flag {name}", bad=True)
    return Flags.from_names([n for n in names if n.lower() != "\\recent"])  # \Recent cannot be stored


@handles(c.Store)
async def store(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Store)
    selected = session.require_selected()
    if selected.read_only:
        raise CommandFailed("Mailbox is read-only", r.ResponseCode(atom="READ-ONLY"))
    if command.unchanged_since is not None:
        session.condstore_used = True
    uids = resolve_uids(session, command.sequence_set, uid=command.uid)
    if not uids:
        yield r.Tagged(tag=command.tag, status=r.Status.OK, text="STORE completed")
        return
    flags = parse_flags(command.flags)
    result = await session.store.store_flags(
        selected.id,
        uid_runs(uids, selected.uids),
        _MODES[command.mode],
        flags,
        unchanged_since=command.unchanged_since,
        origin=session,
    )
    with_modseq = session.condstore
    reported = sorted(result.updated + result.unchanged, key=lambda u: u.uid)
    # Another session's change to one of these messages, still queued for this client, is older than what
    # this STORE reports: sent afterwards it would take the client back to stale flags (and MODSEQ).
    # Instead these messages' FETCH carries their flags, .SILENT or not (RFC 7162 §3.1.3 allows FLAGS
    # when the client would otherwise not learn of the other session's change).
    stale = selected.take_flag_updates(update.uid for update in reported)
    new_keywords = selected.unknown_keywords(keyword for u in result.updated for keyword in u.flags.keywords)
    if new_keywords:  # RFC 9051 §7.3.5: announced in FLAGS before any FETCH shows them
        for response in selected.flag_list_responses(new_keywords):
            yield response
    for update in reported:
        external = update.uid in stale
        if command.silent and not external and not (with_modseq and update in result.updated):
            continue
        number = selected.sequence_number(update.uid)
        if number is None:
            continue
        items: list[tuple[str, bytes]] = []
        if command.uid or session.qresync:
            items.append(("UID", b"%d" % update.uid))
        if not command.silent or external:
            items.append(("FLAGS", encode_flag_list(selected.flag_names(update.uid, update.flags))))
        if with_modseq:
            items.append(("MODSEQ", b"(%d)" % update.modseq))
        yield r.FetchResponse(sequence_number=number, items=tuple(items))
    if result.failed_modseq:
        failed = (
            result.failed_modseq
            if command.uid
            else [selected.sequence_number(u) or 0 for u in result.failed_modseq]
        )
        code = r.ResponseCode.modified(failed)
        yield r.Tagged(tag=command.tag, status=r.Status.OK, text="Conditional STORE failed", code=code)
        return
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="STORE completed")
