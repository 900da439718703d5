"""FETCH body sections: BODY[section]<partial>, BINARY[part]<partial> and BINARY.SIZE[part].

The byte range of a section comes from the structure stored at delivery (proto.imap.section_ranges); whole
ranges are streamed from storage. Only HEADER.FIELDS (a filtered header block, small) and BINARY (decoded
content) are transformed, and BINARY decodes chunk by chunk (`section_ranges.BinaryAssembler`), so memory
stays bounded for any size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.session import ImapSession
from kittiwake.mail.structure import MessageStructure
from kittiwake.proto.imap import fetch_items as f
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap import section_ranges as sr
from kittiwake.proto.imap.wire_format import encode_literal
from kittiwake.store.models import MessageRecord


def _section_name(item: f.BodySection) -> str:
    section = item.section
    words = [".".join(str(n) for n in section.part)] if section.part else []
    if section.text is not None:
        words.append(section.text.value)
    name = "BODY[" + ".".join(words)
    if section.header_fields:
        name += " (" + " ".join(section.header_fields) + ")"
    name += "]"
    if item.partial is not None:
        name += f"<{item.partial.offset}>"  # RFC 9051 §6.4.5: the response names only the origin
    return name


def _binary_name(kind: str, part: tuple[int, ...], partial: f.Partial | None) -> str:
    name = f"{kind}[{'.'.join(str(n) for n in part)}]"
    return name + (f"<{partial.offset}>" if partial is not None else "")


async def section_value(
    session: ImapSession, item: f.FetchItem, record: MessageRecord, structure: MessageStructure
) -> tuple[str, bytes | r.BodyLiteral]:
    if isinstance(item, f.BodySection):
        return _section_name(item), await _body_section(session, item, record, structure)
    if isinstance(item, f.BinarySection):
        name = _binary_name("BINARY", item.part, item.partial)
        return name, await _binary(session, item.part, item.partial, record, structure)
    assert isinstance(item, f.BinarySize)
    plan = _binary_plan(structure, item.part)
    size = 0
    async for chunk in await _open_decoded(session, record, plan):
        size += len(chunk)
    return _binary_name("BINARY.SIZE", item.part, None), b"%d" % size


async def _body_section(
    session: ImapSession, item: f.BodySection, record: MessageRecord, structure: MessageStructure
) -> bytes | r.BodyLiteral:
    plan = sr.plan_section(structure, item.section)
    if plan.header_filter is not None:
        block = await session.store.read_blob(record.blob_id, plan.start, plan.end)
        data = sr.filter_header_fields(block, plan.header_filter.names, negate=plan.header_filter.negate)
        if item.partial is not None:
            offset, count = sr.apply_partial(len(data), item.partial)
            data = data[offset : offset + count]
        return encode_literal(data)
    start, end = plan.start, plan.end
    if item.partial is not None:
        offset, count = sr.apply_partial(end - start, item.partial)
        start, end = start + offset, start + offset + count
    end = max(start, min(end, record.size))
    return r.BodyLiteral(size=end - start, source=await session.store.open_blob(record.blob_id, start, end))


def _binary_plan(structure: MessageStructure, part: tuple[int, ...]) -> sr.BinaryPlan:
    plan = sr.plan_binary(structure, part)
    if isinstance(plan, sr.BinaryError):
        raise CommandFailed(plan.value, r.UNKNOWN_CTE)  # RFC 3516 §4.3: NO [UNKNOWN-CTE]
    return plan


async def _open_decoded(
    session: ImapSession, record: MessageRecord, plan: sr.BinaryPlan
) -> AsyncIterator[bytes]:
    """The BINARY content, its stored bytes opened now (see fetch.blob_literal). A plan without segments
    opens the empty range 0..0."""
    return _assembled(await session.store.open_blob(record.blob_id, plan.start, plan.end), plan)


async def _assembled(source: AsyncIterator[bytes], plan: sr.BinaryPlan) -> AsyncIterator[bytes]:
    assembler = sr.BinaryAssembler(plan)
    async for chunk in source:
        content = assembler.feed(chunk)
        if content:
            yield content
    tail = assembler.flush()
    if tail:
        yield tail


async def _binary(
    session: ImapSession,
    part: tuple[int, ...],
    partial: f.Partial | None,
    record: MessageRecord,
    structure: MessageStructure,
) -> bytes | r.BodyLiteral:
    """RFC 3516 §4.2: the decoded content. Decoded twice for a big part (once to learn the size and
    whether the bytes sent hold NUL, once to send) instead of keeping it in memory."""
    plan = _binary_plan(structure, part)
    # RFC 3516 §4.3: literal8 only when the octets sent hold NUL, so only the window asked for is searched.
    low, high = (0, None) if partial is None else (partial.offset, partial.offset + partial.length)
    size = 0
    has_nul = False
    async for chunk in await _open_decoded(session, record, plan):
        if not has_nul:
            start = max(0, low - size)
            end = len(chunk) if high is None else max(0, min(len(chunk), high - size))
            has_nul = start < end and chunk.find(b"\x00", start, end) != -1
        size += len(chunk)
    offset, count = (0, size) if partial is None else sr.apply_partial(size, partial)
    return r.BodyLiteral(
        size=count, source=_window(await _open_decoded(session, record, plan), offset, count), binary=has_nul
    )


async def _window(chunks: AsyncIterator[bytes], offset: int, count: int) -> AsyncIterator[bytes]:
    position = 0
    end = offset + count
    async for chunk in chunks:
        chunk_end = position + len(chunk)
        if chunk_end > offset and position < end:
            yield chunk[max(0, offset - position) : min(len(chunk), end - position)]
        position = chunk_end
        if position >= end:
            return
