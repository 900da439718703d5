"""FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE/VANISHED).

One store query loads the records of every message asked for (with the stored structure only when an item
needs it); ENVELOPE and BODYSTRUCTURE come from that structure, never from re-parsing, and body sections are
ranged reads of the stored bytes, streamed to the client in chunks. A FETCH of flags only takes a fast path
that formats each response line directly.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.handlers.messages import resolve_uids
from kittiwake.imapd.handlers.sections import section_value
from kittiwake.imapd.selected import RECENT_FLAG, SelectedMailbox, uid_runs
from kittiwake.imapd.session import ImapSession
from kittiwake.mail.structure import MessageStructure
from kittiwake.mail.structure_codec import load_structure_cached
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import fetch_items as f
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.wire_format import (
    encode_date_time,
    encode_flag_list,
    render_body_structure,
    render_envelope,
)
from kittiwake.store.errors import NotFound
from kittiwake.store.interface import FlagMode, FlagRowColumn
from kittiwake.store.models import Flags, FlagSnapshot, MessageRecord, SystemFlag

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
    if set(items) <= _SNAPSHOT_ITEMS and command.changed_since is None and len(uids) >= SNAPSHOT_MIN:
        snapshot = await session.store.flag_snapshot(selected.id)
        lines = _snapshot_lines(snapshot, selected, items, uids)
        if lines is not None:
            for start in range(0, len(lines), FAST_BATCH):
                yield r.Prebuilt(data=b"".join(lines[start : start + FAST_BATCH]))
            yield r.Tagged(tag=command.tag, status=r.Status.OK, text="FETCH completed")
            return
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
    vanished = False
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
            try:
                response = await _response(session, number, record, items, seen_now.get(record.uid))
            except NotFound:  # expunged by another session since the records were loaded
                vanished = True
                continue
            yield response
    if vanished:
        # RFC 2180 §4.1: the messages still there are answered, the command says one went while it ran
        # (RFC 5530). Messages already gone when the command began are left out with OK, as Dovecot does.
        yield r.Tagged(
            tag=command.tag, status=r.Status.NO, text="Some messages were expunged", code=r.EXPUNGEISSUED
        )
        return
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="FETCH completed")


_FAST_ITEMS = {
    f.SimpleItem.UID,
    f.SimpleItem.FLAGS,
    f.SimpleItem.MODSEQ,
    f.SimpleItem.INTERNALDATE,
    f.SimpleItem.RFC822_SIZE,
}
_FAST_TEMPLATES: dict[f.FetchItem, bytes] = {
    f.SimpleItem.UID: b"UID %d",
    f.SimpleItem.MODSEQ: b"MODSEQ (%d)",
    f.SimpleItem.FLAGS: b"FLAGS %s",
    f.SimpleItem.INTERNALDATE: b"INTERNALDATE %s",
    f.SimpleItem.RFC822_SIZE: b"RFC822.SIZE %d",
}
_FAST_COLUMNS: dict[f.FetchItem, FlagRowColumn] = {
    f.SimpleItem.MODSEQ: "modseq",
    f.SimpleItem.INTERNALDATE: "internal_date",
    f.SimpleItem.RFC822_SIZE: "size",
}
FAST_BATCH = 5000


async def _fast_path(
    session: ImapSession,
    selected: SelectedMailbox,
    items: tuple[f.FetchItem, ...],
    uids: Sequence[int],
    changed_since: int | None,
) -> AsyncIterator[r.Prebuilt]:
    """FETCH of record fields only (a client syncing flags): one query per 5,000 messages, reading only
    the columns asked for, and each response line made by one %-format of (number, uid, flags, *columns),
    with flag lists and dates rendered once per distinct value."""
    template = b"* %d FETCH (" + b" ".join(_FAST_TEMPLATES[i] for i in items) + b")\r\n"
    extra = [_FAST_COLUMNS[i] for i in items if i in _FAST_COLUMNS]
    if changed_since is not None and "modseq" not in extra:
        extra.append("modseq")
    where = {f.SimpleItem.UID: 1, f.SimpleItem.FLAGS: 2} | {
        item: 3 + extra.index(column) for item, column in _FAST_COLUMNS.items() if column in extra
    }
    positions = [where[i] for i in items]
    pick = None if positions == list(range(1, 3 + len(extra))) else operator.itemgetter(0, *positions)
    date_at = 3 + extra.index("internal_date") if "internal_date" in extra else None
    known = selected.uids
    render = _FieldRenderer()
    flags = render.flags
    for start in range(0, len(uids), FAST_BATCH):
        batch = uids[start : start + FAST_BATCH]
        rows = await session.store.load_flag_rows(selected.id, uid_runs(batch, known), extra)
        if changed_since is not None:
            modseq_at = 3 + extra.index("modseq")
            rows = [row for row in rows if row[modseq_at] > changed_since]
        if date_at is not None:
            rows = [(*row[:date_at], render.date(row[date_at]), *row[date_at + 1 :]) for row in rows]
        numbered = _numbered(rows, known, bisect.bisect_left(known, batch[0]) if batch else 0)
        if rows and selected.recent_between(rows[0][0], rows[-1][0]):  # RFC 3501 §2.3.2: some say \Recent
            recent = selected.is_recent
            values = [(n, row[0], flags(row[1], row[2], recent(row[0])), *row[3:]) for n, row in numbered]
            lines = [template % (v if pick is None else pick(v)) for v in values]
        elif pick is None:
            lines = [template % ((n, row[0], flags(row[1], row[2]), *row[3:])) for n, row in numbered]
        else:
            lines = [template % pick((n, row[0], flags(row[1], row[2]), *row[3:])) for n, row in numbered]
        if lines:
            yield r.Prebuilt(data=b"".join(lines))


# A client resynchronising a large mailbox asks for the flags of all of it; from this many messages on, the
# answer comes from the store's in-memory flag snapshot rather than from rows.
SNAPSHOT_MIN = 1000
_SNAPSHOT_ITEMS = {f.SimpleItem.UID, f.SimpleItem.FLAGS}


def _snapshot_lines(
    snapshot: FlagSnapshot, selected: SelectedMailbox, items: tuple[f.FetchItem, ...], uids: Sequence[int]
) -> list[bytes] | None:
    """The response lines from a flag snapshot, or None when the snapshot cannot number them: the session
    has not yet heard of every change in it, or the UIDs asked for are not one run of the mailbox."""
    known = selected.uids
    if snapshot.uids != known:
        return None
    start = bisect.bisect_left(known, uids[0])
    end = start + len(uids)
    if end > len(known) or known[start] != uids[0] or known[end - 1] != uids[-1]:
        return None  # uids are ascending known UIDs, so matching ends mean the run is whole
    template = b"* %d FETCH (" + b" ".join(_FAST_TEMPLATES[i] for i in items) + b")\r\n"
    order: dict[f.FetchItem, int] = {f.SimpleItem.UID: 1, f.SimpleItem.FLAGS: 2}
    pick = operator.itemgetter(0, *(order[i] for i in items))
    render = _FieldRenderer()
    by_bits = {bits: render.flags(bits, None) for bits in set(snapshot.system[start:end])}
    keywords = snapshot.keywords
    rows = zip(range(start + 1, end + 1), known[start:end], snapshot.system[start:end], strict=True)
    if not keywords:
        lines = [template % pick((n, uid, by_bits[bits])) for n, uid, bits in rows]
    else:
        lines = [
            template % pick((n, uid, render.flags(bits, keywords[uid]) if uid in keywords else by_bits[bits]))
            for n, uid, bits in rows
        ]
    # RFC 3501 §2.3.2: the lines of the messages recent in this session (usually few) also name \Recent.
    for index in selected.recent_indexes(start, end):
        uid = known[index]
        flags = render.flags(snapshot.system[index], keywords.get(uid), True)
        lines[index - start] = template % pick((index + 1, uid, flags))
    return lines


def _numbered(
    rows: list[tuple[Any, ...]], known: Sequence[int], index: int
) -> Iterable[tuple[int, tuple[Any, ...]]]:
    """Each row with its message sequence number; rows the client has not heard of yet (announced later
    with EXISTS) are left out. When the rows are exactly the known UIDs from `index` on, the numbers
    simply count up, which is the common case and needs no per-row search."""
    last = index + len(rows) - 1
    if rows and last < len(known) and known[index] == rows[0][0] and known[last] == rows[-1][0]:
        return zip(range(index + 1, last + 2), rows, strict=True)
    numbered = []
    for row in rows:
        while index < len(known) and known[index] < row[0]:
            index += 1
        if index < len(known) and known[index] == row[0]:
            numbered.append((index + 1, row))
    return numbered


class _FieldRenderer:
    """Turns a flag row into the values of the FETCH template, in item order."""

    def __init__(self) -> None:
        self._flags: dict[tuple[int, str | None, bool], bytes] = {}
        self._dates: dict[int, bytes] = {}

    def flags(self, system: int, keywords: str | None, recent: bool = False) -> bytes:
        rendered = self._flags.get((system, keywords, recent))
        if rendered is None:
            flags = Flags(system=SystemFlag(system), keywords=frozenset((keywords or "").split()))
            names = flags.names()
            if recent:  # RFC 3501 §2.3.2: after the system flags, as SelectedMailbox.flag_names puts it
                names.insert(len(names) - len(flags.keywords), RECENT_FLAG)
            rendered = self._flags[(system, keywords, recent)] = encode_flag_list(names)
        return rendered

    def date(self, stamp: int) -> bytes:
        rendered = self._dates.get(stamp)
        if rendered is None:
            rendered = self._dates[stamp] = encode_date_time(datetime.fromtimestamp(stamp, UTC))
        return rendered


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
    structure: MessageStructure | None = load_structure_cached(record.structure) if record.structure else None
    values: list[tuple[str, bytes | r.BodyLiteral]] = []
    flags_sent = False
    for item in items:
        if isinstance(item, f.SimpleItem):
            if item is f.SimpleItem.FLAGS:
                flags_sent = True
            values.append(await _simple(session, item, record, structure, new_flags))
        else:
            assert structure is not None
            values.append(await section_value(session, item, record, structure))
    if new_flags is not None and not flags_sent:
        values.append(
            ("FLAGS", encode_flag_list(session.require_selected().flag_names(record.uid, new_flags)))
        )
    return r.FetchResponse(sequence_number=number, items=tuple(values))


async def _simple(
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
            names = session.require_selected().flag_names(record.uid, new_flags or record.flags)
            return "FLAGS", encode_flag_list(names)
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
            return "RFC822", await whole_message(session, record)
        case f.SimpleItem.RFC822_HEADER | f.SimpleItem.RFC822_TEXT:
            assert structure is not None
            start, end = (
                (0, structure.root.body_start)
                if item is f.SimpleItem.RFC822_HEADER
                else (structure.root.body_start, record.size)
            )
            return item.value, await blob_literal(session, record, start, end)
    raise AssertionError(item)


async def whole_message(session: ImapSession, record: MessageRecord) -> r.BodyLiteral:
    return await blob_literal(session, record, 0, record.size)


async def blob_literal(session: ImapSession, record: MessageRecord, start: int, end: int) -> r.BodyLiteral:
    """A literal of stored bytes, opened now: a message expunged meanwhile fails here, before its literal is
    announced, never halfway through it."""
    end = max(start, min(end, record.size))
    return r.BodyLiteral(size=end - start, source=await session.store.open_blob(record.blob_id, start, end))


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
