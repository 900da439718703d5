"""FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE/VANISHED).

One store query loads the records of every message asked for (with the stored structure only when an item
needs it); ENVELOPE and BODYSTRUCTURE come from that structure, never from re-parsing, and body sections are
ranged reads of the stored bytes, streamed to the client in chunks. A FETCH of flags only takes a fast path
that formats each response line directly.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.handlers.messages import resolve_uids
from kittiwake.imapd.handlers.sections import section_value
from kittiwake.imapd.selected import SelectedMailbox, uid_runs
from kittiwake.imapd.session import ImapSession
from kittiwake.mail.structure import MessageStructure
from kittiwake.mail.structure_codec import load_structure
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import fetch_items as f
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.wire_format import (
    encode_date_time,
    encode_flag_list,
    render_body_structure,
    render_envelope,
)
from kittiwake.store.interface import FlagMode
from kittiwake.store.models import Flags, MessageRecord, SystemFlag

BATCH = 500  # records loaded per store query, so a FETCH 1:* of a huge mailbox never holds it all


@handles(c.Fetch)
async def fetch(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Fetch)
    selected = session.require_selected()
    items = _with_implied_items(session, command)
    uids = resolve_uids(session, command.sequence_set, uid=command.uid)
    if command.changed_since is not None:
        session.condstore_used = True
    if command.vanished and command.changed_since is not None and command.uid:
        async for response in _vanished_earlier(session, selected, command):
            yield response
    if set(items) <= _FAST_ITEMS:
        async for prebuilt in _fast_path(session, selected, items, uids, command.changed_since):
            yield prebuilt
        yield r.Tagged(tag=command.tag, status=r.Status.OK, text="FETCH completed")
        return
    needs = f.data_needs(items)
    with_structure = bool(
        needs & (f.DataNeed.STRUCTURE | f.DataNeed.RANGE | f.DataNeed.HEADER | f.DataNeed.BODY)
    )
    seen_now: dict[int, Flags] = {}
    if f.sets_seen(items) and not selected.read_only:
        seen_now = await _mark_seen(session, selected, uids)
    for start in range(0, len(uids), BATCH):
        batch = uids[start : start + BATCH]
        records = await session.store.load_messages(
            selected.id, uid_runs(batch, selected.uids), with_structure=with_structure
        )
        for record in records:
            if command.changed_since is not None and record.modseq <= command.changed_since:
                continue
            number = selected.sequence_number(record.uid)
            if number is None:
                continue
            yield await _response(session, number, record, items, seen_now.get(record.uid))
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="FETCH completed")


_FAST_ITEMS = {
    f.SimpleItem.UID,
    f.SimpleItem.FLAGS,
    f.SimpleItem.MODSEQ,
    f.SimpleItem.INTERNALDATE,
    f.SimpleItem.RFC822_SIZE,
}
# Each fast item: its wire template and its position in the row `_fast_path` builds.
_FAST_TEMPLATES = {
    f.SimpleItem.UID: (b"UID %d", 1),
    f.SimpleItem.MODSEQ: (b"MODSEQ (%d)", 2),
    f.SimpleItem.FLAGS: (b"FLAGS %s", 3),
    f.SimpleItem.INTERNALDATE: (b"INTERNALDATE %s", 4),
    f.SimpleItem.RFC822_SIZE: (b"RFC822.SIZE %d", 5),
}
FAST_BATCH = 5000


async def _fast_path(
    session: ImapSession,
    selected: SelectedMailbox,
    items: tuple[f.FetchItem, ...],
    uids: Sequence[int],
    changed_since: int | None,
) -> AsyncIterator[r.Prebuilt]:
    """FETCH of record fields only (a client syncing flags): one query per 5,000 messages, and each
    response line made by one %-format from a row tuple, with flag lists and dates rendered once."""
    template = b"* %d FETCH (" + b" ".join(_FAST_TEMPLATES[i][0] for i in items) + b")\r\n"  # type: ignore[index]
    pick = operator.itemgetter(0, *(_FAST_TEMPLATES[i][1] for i in items))  # type: ignore[index]
    want_dates = f.SimpleItem.INTERNALDATE in items
    flag_lists: dict[tuple[int, str | None], bytes] = {}
    dates: dict[int, bytes] = {}
    known = selected.uids
    for start in range(0, len(uids), FAST_BATCH):
        batch = uids[start : start + FAST_BATCH]
        rows = await session.store.load_flag_rows(selected.id, uid_runs(batch, known))
        index = bisect.bisect_left(known, batch[0]) if batch else 0
        lines = []
        for uid, modseq, system, keywords, date, size in rows:
            while index < len(known) and known[index] < uid:
                index += 1
            if index == len(known) or known[index] != uid:
                continue  # arrived after the client's view: announced later with EXISTS
            if changed_since is not None and modseq <= changed_since:
                continue
            flags = flag_lists.get((system, keywords))
            if flags is None:
                names = Flags(system=SystemFlag(system), keywords=frozenset((keywords or "").split())).names()
                flags = flag_lists[(system, keywords)] = encode_flag_list(names)
            stamp = b""
            if want_dates:
                stamp = dates.get(date) or dates.setdefault(
                    date, encode_date_time(datetime.fromtimestamp(date, UTC))
                )
            lines.append(template % pick((index + 1, uid, modseq, flags, stamp, size)))
        if lines:
            yield r.Prebuilt(data=b"".join(lines))


def _with_implied_items(session: ImapSession, command: c.Fetch) -> tuple[f.FetchItem, ...]:
    items = list(command.items)
    # RFC 9051 §6.4.9: UID FETCH always returns UID. RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ.
    if command.uid and f.SimpleItem.UID not in items:
        items.insert(0, f.SimpleItem.UID)
    if (
        command.changed_since is not None or f.SimpleItem.MODSEQ in items
    ) and f.SimpleItem.MODSEQ not in items:
        items.append(f.SimpleItem.MODSEQ)
    if f.SimpleItem.MODSEQ in items:
        session.condstore_used = True
    return tuple(items)


async def _mark_seen(
    session: ImapSession, selected: SelectedMailbox, uids: Sequence[int]
) -> dict[int, Flags]:
    """RFC 9051 §6.4.5: BODY[...] without .PEEK sets \\Seen; the new flags go out in the same response."""
    if not uids:
        return {}
    result = await session.store.store_flags(
        selected.id,
        uid_runs(uids, selected.uids),
        FlagMode.ADD,
        Flags(system=SystemFlag.SEEN),
        origin=session,
    )
    return {update.uid: update.flags for update in result.updated}


async def _response(
    session: ImapSession,
    number: int,
    record: MessageRecord,
    items: tuple[f.FetchItem, ...],
    new_flags: Flags | None,
) -> r.FetchResponse:
    structure: MessageStructure | None = load_structure(record.structure) if record.structure else None
    values: list[tuple[str, bytes | r.BodyLiteral]] = []
    flags_sent = False
    for item in items:
        if isinstance(item, f.SimpleItem):
            if item is f.SimpleItem.FLAGS:
                flags_sent = True
            values.append(_simple(session, item, record, structure, new_flags))
        else:
            assert structure is not None
            values.append(await section_value(session, item, record, structure))
    if new_flags is not None and not flags_sent:
        values.append(("FLAGS", encode_flag_list(new_flags.names())))
    return r.FetchResponse(sequence_number=number, items=tuple(values))


def _simple(
    session: ImapSession,
    item: f.SimpleItem,
    record: MessageRecord,
    structure: MessageStructure | None,
    new_flags: Flags | None,
) -> tuple[str, bytes | r.BodyLiteral]:
    match item:
        case f.SimpleItem.UID:
            return "UID", b"%d" % record.uid
        case f.SimpleItem.FLAGS:
            return "FLAGS", encode_flag_list((new_flags or record.flags).names())
        case f.SimpleItem.INTERNALDATE:
            return "INTERNALDATE", encode_date_time(datetime.fromtimestamp(record.internal_date, UTC))
        case f.SimpleItem.RFC822_SIZE:
            return "RFC822.SIZE", b"%d" % record.size
        case f.SimpleItem.MODSEQ:
            return "MODSEQ", b"(%d)" % record.modseq
        case f.SimpleItem.ENVELOPE:
            assert structure is not None
            return "ENVELOPE", render_envelope(structure.envelope, utf8=session.utf8)
        case f.SimpleItem.BODY:
            assert structure is not None
            return "BODY", render_body_structure(structure, extensible=False, utf8=session.utf8)
        case f.SimpleItem.BODYSTRUCTURE:
            assert structure is not None
            return "BODYSTRUCTURE", render_body_structure(structure, extensible=True, utf8=session.utf8)
        case f.SimpleItem.RFC822:
            return "RFC822", whole_message(session, record)
        case f.SimpleItem.RFC822_HEADER | f.SimpleItem.RFC822_TEXT:
            assert structure is not None
            start, end = (
                (0, structure.root.body_start)
                if item is f.SimpleItem.RFC822_HEADER
                else (structure.root.body_start, record.size)
            )
            return item.value, blob_literal(session, record, start, end)
    raise AssertionError(item)


def whole_message(session: ImapSession, record: MessageRecord) -> r.BodyLiteral:
    return blob_literal(session, record, 0, record.size)


def blob_literal(session: ImapSession, record: MessageRecord, start: int, end: int) -> r.BodyLiteral:
    end = max(start, min(end, record.size))
    return r.BodyLiteral(size=end - start, source=session.store.stream_blob(record.blob_id, start, end))


async def _vanished_earlier(
    session: ImapSession, selected: SelectedMailbox, command: c.Fetch
) -> AsyncIterator[r.Response]:
    """RFC 7162 §3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED) first reports expunged UIDs in the set."""
    assert command.changed_since is not None
    if not session.qresync:
        return
    expunged = [e.uid for e in await session.store.load_expunged_since(selected.id, command.changed_since)]
    if expunged:
        named = command.sequence_set.resolve_uids(expunged)
        if named:
            yield r.Vanished(uids=tuple(named), earlier=True)
