"""FETCH data items (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ) and the data each one needs."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from kittiwake.proto.imap.command_reader import MAX_NUMBER, MAX_NUMBER64, CommandReader


class SimpleItem(enum.Enum):
    """Items without a section; the value is the wire name."""

    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822_SIZE = "RFC822.SIZE"
    ENVELOPE = "ENVELOPE"
    BODY = "BODY"  # non-extensible BODYSTRUCTURE
    BODYSTRUCTURE = "BODYSTRUCTURE"
    UID = "UID"
    MODSEQ = "MODSEQ"
    RFC822 = "RFC822"
    RFC822_HEADER = "RFC822.HEADER"
    RFC822_TEXT = "RFC822.TEXT"


class SectionText(enum.Enum):
    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """`BODY[1.2.HEADER.FIELDS (From To)]`: `part` is (1, 2); empty `part` and no `text` is the whole message."""

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    header_fields: tuple[str, ...] = ()  # upper-cased field names for HEADER.FIELDS[.NOT]


@dataclass(frozen=True, slots=True, kw_only=True)
class Partial:
    """`<offset.length>`; RFC 9051 §6.4.5: the response names only the offset."""

    offset: int
    length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BodySection:
    """`BODY[section]<partial>` or `BODY.PEEK[...]`."""

    section: Section
    partial: Partial | None = None
    peek: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BinarySection:
    """`BINARY[part]<partial>` or `BINARY.PEEK[...]` (RFC 3516): decoded content of a part."""

    part: tuple[int, ...]
    partial: Partial | None = None
    peek: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BinarySize:
    """`BINARY.SIZE[part]` (RFC 3516)."""

    part: tuple[int, ...]


FetchItem = SimpleItem | BodySection | BinarySection | BinarySize

# RFC 9051 §6.4.5: the macros.
MACROS: dict[str, tuple[FetchItem, ...]] = {
    "FAST": (SimpleItem.FLAGS, SimpleItem.INTERNALDATE, SimpleItem.RFC822_SIZE),
    "ALL": (SimpleItem.FLAGS, SimpleItem.INTERNALDATE, SimpleItem.RFC822_SIZE, SimpleItem.ENVELOPE),
    "FULL": (
        SimpleItem.FLAGS,
        SimpleItem.INTERNALDATE,
        SimpleItem.RFC822_SIZE,
        SimpleItem.ENVELOPE,
        SimpleItem.BODY,
    ),
}


class DataNeed(enum.Flag):
    """What the server must load to answer a FETCH; combine the needs of all items and load once."""

    NONE = 0
    FLAGS = enum.auto()  # flags only
    RECORD = enum.auto()  # the message record: UID, size, internal date, modseq
    STRUCTURE = enum.auto()  # the stored MIME structure (ENVELOPE, BODYSTRUCTURE, part offsets)
    HEADER = enum.auto()  # the top-level header bytes
    BODY = enum.auto()  # the whole message bytes
    RANGE = enum.auto()  # bytes of some part: STRUCTURE for the offsets, then a ranged read


_SIMPLE_NEEDS = {
    SimpleItem.FLAGS: DataNeed.FLAGS,
    SimpleItem.INTERNALDATE: DataNeed.RECORD,
    SimpleItem.RFC822_SIZE: DataNeed.RECORD,
    SimpleItem.UID: DataNeed.RECORD,
    SimpleItem.MODSEQ: DataNeed.RECORD,
    SimpleItem.ENVELOPE: DataNeed.RECORD | DataNeed.STRUCTURE,
    SimpleItem.BODY: DataNeed.RECORD | DataNeed.STRUCTURE,
    SimpleItem.BODYSTRUCTURE: DataNeed.RECORD | DataNeed.STRUCTURE,
    SimpleItem.RFC822: DataNeed.RECORD | DataNeed.BODY,
    SimpleItem.RFC822_HEADER: DataNeed.RECORD | DataNeed.HEADER,
    SimpleItem.RFC822_TEXT: DataNeed.RECORD | DataNeed.STRUCTURE | DataNeed.RANGE,
}


def item_needs(item: FetchItem) -> DataNeed:
    """The data one item needs."""
    if isinstance(item, SimpleItem):
        return _SIMPLE_NEEDS[item]
    if isinstance(item, BinarySize | BinarySection):
        # Decoding a part needs its bytes and its Content-Transfer-Encoding from the structure.
        return DataNeed.RECORD | DataNeed.STRUCTURE | DataNeed.RANGE
    section = item.section
    if not section.part and section.text is None:
        return DataNeed.RECORD | DataNeed.BODY
    if not section.part and section.text in (
        SectionText.HEADER,
        SectionText.HEADER_FIELDS,
        SectionText.HEADER_FIELDS_NOT,
    ):
        return DataNeed.RECORD | DataNeed.HEADER
    return DataNeed.RECORD | DataNeed.STRUCTURE | DataNeed.RANGE


def data_needs(items: Iterable[FetchItem]) -> DataNeed:
    """The union of what `items` need."""
    need = DataNeed.NONE
    for item in items:
        need |= item_needs(item)
    return need


def sets_seen(items: Iterable[FetchItem]) -> bool:
    """True when answering sets \\Seen (RFC 9051 §6.4.5: BODY[...], BINARY[...], RFC822, RFC822.TEXT)."""
    for item in items:
        if isinstance(item, BodySection | BinarySection) and not item.peek:
            return True
        if item in (SimpleItem.RFC822, SimpleItem.RFC822_TEXT):
            return True
    return False


# Parsing (RFC 9051 §9 fetch-att, section, partial; RFC 3516 section-binary).

_FETCH_NAME = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_SPEC = re.compile(rb"[A-Za-z0-9.]*")
_PARTIAL = re.compile(rb"<([0-9]{1,20})\.([0-9]{1,20})>")
_SIMPLE_ITEMS = {item.value: item for item in SimpleItem}


def parse_fetch_item(r: CommandReader, *, macros: bool = False) -> tuple[FetchItem, ...]:
    """One fetch-att (or, when `macros`, ALL/FAST/FULL expanded); RFC 9051 §6.4.5."""
    name = r.match(_FETCH_NAME, "fetch item").group().upper().decode("ascii")
    if macros and name in MACROS:
        return MACROS[name]
    if r.peek() != b"[":
        if name not in _SIMPLE_ITEMS:
            raise r.fail(f"unknown fetch item {name}")
        return (_SIMPLE_ITEMS[name],)
    if name in ("BODY", "BODY.PEEK"):
        section = _parse_section(r)
        return (BodySection(section=section, partial=_parse_partial(r), peek=name == "BODY.PEEK"),)
    if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        part = _parse_binary_section(r)
        if name == "BINARY.SIZE":
            return (BinarySize(part=part),)
        return (BinarySection(part=part, partial=_parse_partial(r), peek=name == "BINARY.PEEK"),)
    raise r.fail(f"unknown fetch item {name}")


_SECTION_TEXTS = {text.value: text for text in SectionText}


def _parse_section(r: CommandReader) -> Section:
    """RFC 9051 §9 section: "[" [section-part ["." section-text] / section-msgtext] "]"."""
    r.expect(b"[")
    spec = r.match(_SECTION_SPEC, "section").group().upper().decode("ascii")
    words = spec.split(".") if spec else []
    numbers: list[int] = []
    while words and words[0].isdigit():
        numbers.append(_part_number(r, words.pop(0)))
    text_name = ".".join(words)
    if not text_name:
        if words:  # a trailing or doubled dot
            raise r.fail("bad section")
        r.expect(b"]")
        return Section(part=tuple(numbers))
    text = _SECTION_TEXTS.get(text_name)
    # RFC 9051 §9: MIME only follows a part number.
    if text is None or (text is SectionText.MIME and not numbers):
        raise r.fail("bad section text")
    fields: list[str] = []
    if text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
        r.sp()
        r.parenthesised(lambda: fields.append(r.header_field_name()))
    r.expect(b"]")
    return Section(part=tuple(numbers), text=text, header_fields=tuple(fields))


def _part_number(r: CommandReader, word: str) -> int:
    if not word.isdigit() or word[0] == "0" or len(word) > 10 or int(word) > MAX_NUMBER:
        raise r.fail("bad section part number")
    return int(word)


def _parse_binary_section(r: CommandReader) -> tuple[int, ...]:
    r.expect(b"[")
    text = r.match(_SECTION_SPEC, "section").group().decode("ascii")
    r.expect(b"]")
    if not text:
        return ()
    return tuple(_part_number(r, word) for word in text.split("."))


def _parse_partial(r: CommandReader) -> Partial | None:
    if r.peek() != b"<":
        return None
    found = r.match(_PARTIAL, "partial")
    offset, length = int(found.group(1)), int(found.group(2))
    if offset > MAX_NUMBER64 or not 0 < length <= MAX_NUMBER64:
        raise r.fail("bad partial")
    return Partial(offset=offset, length=length)
