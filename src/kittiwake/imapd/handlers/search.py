"""SEARCH (with ESEARCH and SEARCHRES), SORT and THREAD.

Theory of operation: the key tree says what it reads (proto.imap.search_eval.needs). Keys on flags, UIDs,
sizes and dates are answered from the message records alone, loaded a batch at a time with one query per
batch; header keys add the stored structure and each message's header block (read in one call per batch);
only BODY and TEXT read message bytes, one message at a time, decoding just the text parts. Results are
sequence numbers, or UIDs for the UID forms.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field

from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.selected import SelectedMailbox, uid_runs
from kittiwake.imapd.session import ImapSession
from kittiwake.mail.address import format_address_list, parse_address_list
from kittiwake.mail.dates import parse_date
from kittiwake.mail.encoded_words import decode_header_value
from kittiwake.mail.headers import HeaderField, field_values, parse_header_fields
from kittiwake.mail.structure import MessageStructure
from kittiwake.mail.structure_codec import load_structure
from kittiwake.mail.text_extraction import extract_text, header_text
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap import search_eval as ev
from kittiwake.proto.imap.base_subject import extract_base_subject
from kittiwake.proto.imap.search_keys import ModSeqKey, SearchKey, SearchReturn
from kittiwake.proto.imap.sort_keys import SortAddress, SortRecord, sort_messages
from kittiwake.proto.imap.thread_algorithms import (
    ThreadMessage,
    thread_ordered_subject,
    thread_references,
)
from kittiwake.store.models import MessageRecord

BATCH = 1000


@dataclass(slots=True)
class _View:
    """One message as the evaluator sees it; header and body text are read only when asked for."""

    number: int
    record: MessageRecord
    header_block: bytes = b""
    recent: bool = False  # RFC 3501 §6.4.4 RECENT/NEW/OLD: \Recent in this session
    body: str | None = None  # filled in before matching when a BODY or TEXT key needs it
    _headers_text: str | None = field(default=None)
    _fields: list[HeaderField] | None = field(default=None)  # the header block split once, for every key

    @property
    def sequence_number(self) -> int:
        return self.number

    @property
    def uid(self) -> int:
        return self.record.uid

    @property
    def flags(self) -> Collection[str]:
        names = self.record.flags.names()
        return [*names, "\\Recent"] if self.recent else names

    @property
    def internal_date(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.record.internal_date, datetime.UTC)

    @property
    def size(self) -> int:
        return self.record.size

    @property
    def modseq(self) -> int:
        return self.record.modseq

    def _raw_values(self, name: str) -> list[str]:
        if self._fields is None:
            self._fields = parse_header_fields(self.header_block)
        return field_values(self._fields, name)

    def header(self, name: str) -> list[str]:
        return [decode_header_value(value) for value in self._raw_values(name)]

    def addresses(self, name: str) -> list[str]:
        # Parsed from the raw value, so an encoded word that decodes to "," or "<" cannot split an address.
        return [format_address_list(value) for value in self._raw_values(name)]

    def sent_date(self) -> datetime.date | None:
        values = self.header("Date")
        return ev.sent_date_from_header(values[0] if values else None)

    def headers_text(self) -> str:
        if self._headers_text is None:
            self._headers_text = header_text(self.header_block)
        return self._headers_text

    def body_text(self) -> str:
        return self.body or ""


async def _load_views(
    session: ImapSession, selected: SelectedMailbox, uids: Sequence[int], need: ev.SearchNeed
) -> AsyncIterator[_View]:
    store = session.store
    with_headers = bool(need & (ev.SearchNeed.HEADERS | ev.SearchNeed.BODY))
    for start in range(0, len(uids), BATCH):
        batch = uids[start : start + BATCH]
        records = await store.load_messages(
            selected.id, uid_runs(batch, selected.uids), with_structure=with_headers
        )
        structures: list[MessageStructure | None] = [
            load_structure(rec.structure) if rec.structure else None for rec in records
        ]
        blocks: list[bytes] = [b""] * len(records)
        if with_headers:
            ranges = [
                (rec.blob_id, 0, s.root.body_start if s else 0)
                for rec, s in zip(records, structures, strict=True)
            ]
            blocks = await store.read_blob_ranges(ranges)
        for record, structure, block in zip(records, structures, blocks, strict=True):
            number = selected.sequence_number(record.uid)
            if number is None:
                continue
            recent = selected.has_recent and selected.is_recent(record.uid)
            view = _View(number=number, record=record, header_block=block, recent=recent)
            if need & ev.SearchNeed.BODY and structure is not None:
                data = await store.read_blob(record.blob_id, 0, record.size)
                view.body = extract_text(data, structure)[1]
            yield view


async def _matching(
    session: ImapSession, key: SearchKey, extra: ev.SearchNeed = ev.SearchNeed.NONE
) -> list[_View]:
    selected = session.require_selected()
    context = ev.SearchContext(
        max_sequence=selected.exists,
        max_uid=selected.uids[-1] if selected.uids else 0,
        saved_uids=frozenset(session.saved_search),
    )
    matcher = ev.compile_search(key, context)
    if _uses_modseq(key):
        session.condstore_used = True
    views = _load_views(session, selected, list(selected.uids), ev.needs(key) | extra)
    return [view async for view in views if matcher(view)]


def _uses_modseq(key: object) -> bool:
    if isinstance(key, ModSeqKey):
        return True
    children = getattr(key, "keys", None) or [getattr(key, name, None) for name in ("key", "left", "right")]
    return any(child is not None and _uses_modseq(child) for child in children)


@handles(c.Search)
async def search(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Search)
    found = await _matching(session, command.criteria)
    numbers = [v.uid if command.uid else v.number for v in found]
    modseq = max((v.modseq for v in found), default=None) if _uses_modseq(command.criteria) else None
    returns = command.returns
    if returns is not None and SearchReturn.SAVE in returns:
        _save(session, found, returns)
    if returns is None:
        yield r.SearchResponse(numbers=tuple(numbers), modseq=modseq)
    elif set(returns) != {SearchReturn.SAVE}:
        yield _esearch(command, numbers, _esearch_modseq(found, modseq, returns), returns)
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="SEARCH completed")


def _esearch_modseq(found: list[_View], modseq: int | None, returns: tuple[SearchReturn, ...]) -> int | None:
    """RFC 7162 §3.1.5 (and RFC 4731 §3.2): when only MIN or only MAX is asked for, the MODSEQ reported is
    that message's, not the highest of all that matched."""
    wanted = set(returns) - {SearchReturn.SAVE}
    if modseq is None or not found or wanted not in ({SearchReturn.MIN}, {SearchReturn.MAX}):
        return modseq
    chosen = found[0] if wanted == {SearchReturn.MIN} else found[-1]
    return chosen.modseq


def _save(session: ImapSession, found: list[_View], returns: tuple[SearchReturn, ...]) -> None:
    """RFC 5182 §2.4: SAVE with MIN and/or MAX (and not ALL or COUNT) saves just those."""
    uids = [v.uid for v in found]
    partial = {SearchReturn.MIN, SearchReturn.MAX} & set(returns)
    if partial and not {SearchReturn.ALL, SearchReturn.COUNT} & set(returns) and uids:
        kept = set()
        if SearchReturn.MIN in partial:
            kept.add(min(uids))
        if SearchReturn.MAX in partial:
            kept.add(max(uids))
        uids = sorted(kept)
    session.saved_search = tuple(uids)


def _esearch(
    command: c.Search, numbers: list[int], modseq: int | None, returns: tuple[SearchReturn, ...]
) -> r.ESearchResponse:
    wanted = set(returns) - {SearchReturn.SAVE} or {SearchReturn.ALL}  # RFC 4731 §3.1: () means ALL
    if not returns:
        wanted = {SearchReturn.ALL}
    return r.ESearchResponse(
        tag=command.tag,
        uid=command.uid,
        min=min(numbers) if numbers and SearchReturn.MIN in wanted else None,
        max=max(numbers) if numbers and SearchReturn.MAX in wanted else None,
        count=len(numbers) if SearchReturn.COUNT in wanted else None,
        all=tuple(numbers) if numbers and SearchReturn.ALL in wanted else None,
        modseq=modseq,
    )


def _address(views: list[str]) -> SortAddress | None:
    """The first entry of the first field's address list, as FETCH ENVELOPE gives it: a group's start
    entry counts, its addr-mailbox being the group name (RFC 5256 §3 and RFC 5957 §3 "first address"; so
    Dovecot sorts, as imaptest checks)."""
    for value in views:
        for parsed in parse_address_list(value):
            name = decode_header_value(parsed.name) if parsed.name else None
            return SortAddress(display_name=name, mailbox=parsed.mailbox, host=parsed.host)
    return None


def _sent(view: _View) -> datetime.datetime:
    values = view.header("Date")
    moment = parse_date(values[0]) if values else None
    return moment or view.internal_date  # RFC 5256 §2.2: no usable Date means the internal date


@handles(c.Sort)
async def sort(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Sort)
    views = await _matching(session, command.search, ev.SearchNeed.HEADERS)
    records = [
        SortRecord(
            number=v.uid if command.uid else v.number,
            internal_date=v.internal_date,
            sent_date=_sent(v),
            size=v.size,
            base_subject=extract_base_subject(decode_header_value((v.header("Subject") or [""])[0])).text,
            from_=_address(v.header("From")),
            to=_address(v.header("To")),
            cc=_address(v.header("Cc")),
        )
        for v in views
    ]
    yield r.SortResponse(numbers=tuple(sort_messages(records, command.criteria)))
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="SORT completed")


def _message_ids(values: list[str]) -> tuple[str, ...]:
    return tuple(part for value in values for part in _split_ids(value))


def _split_ids(value: str) -> list[str]:
    ids = []
    rest = value
    while "<" in rest:
        _, _, tail = rest.partition("<")
        inner, closed, rest = tail.partition(">")
        if closed and inner.strip():
            ids.append("<" + inner.strip() + ">")
    return ids


@handles(c.Thread)
async def thread(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Thread)
    views = await _matching(session, command.search, ev.SearchNeed.HEADERS)
    messages = []
    for v in views:
        subject = extract_base_subject(decode_header_value((v.header("Subject") or [""])[0]))
        message_ids = _message_ids(v.header("Message-ID"))
        references = _message_ids(v.header("References")) or _message_ids(v.header("In-Reply-To"))[:1]
        messages.append(
            ThreadMessage(
                number=v.uid if command.uid else v.number,
                message_id=message_ids[0] if message_ids else None,
                references=references,
                base_subject=subject.text,
                is_reply_or_forward=subject.is_reply_or_forward,
                sent_date=_sent(v),
            )
        )
    algorithm = thread_references if command.algorithm.value == "REFERENCES" else thread_ordered_subject
    yield r.ThreadResponse(threads=algorithm(messages))
    yield r.Tagged(tag=command.tag, status=r.Status.OK, text="THREAD completed")
