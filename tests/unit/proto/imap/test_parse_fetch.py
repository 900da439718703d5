"""Parsing of FETCH items, sections, partials, macros and modifiers; the data each item needs."""

from __future__ import annotations

import pytest

from kittiwake.proto.imap.commands import Command, Fetch
from kittiwake.proto.imap.errors import ParseError
from kittiwake.proto.imap.fetch_items import (
    MACROS,
    BinarySection,
    BinarySize,
    BodySection,
    DataNeed,
    FetchItem,
    Partial,
    Section,
    SectionText,
    SimpleItem,
    data_needs,
    sets_seen,
)
from kittiwake.proto.imap.parser import parse_command
from kittiwake.proto.imap.receiver import ImapReceiver, RawCommand
from kittiwake.proto.imap.sequence_set import SequenceSet


def parse(data: bytes) -> Command:
    receiver = ImapReceiver()
    receiver.receive_data(data)
    raw = [event for event in receiver.events() if isinstance(event, RawCommand)]
    assert len(raw) == 1
    return parse_command(raw[0])


def items(text: bytes) -> tuple[FetchItem, ...]:
    command = parse(b"a FETCH 1 " + text + b"\r\n")
    assert isinstance(command, Fetch)
    return command.items


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"FLAGS", (SimpleItem.FLAGS,)),
        (b"uid", (SimpleItem.UID,)),
        (
            b"(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE UID MODSEQ RFC822 RFC822.HEADER RFC822.TEXT)",
            tuple(SimpleItem),
        ),
        (b"ALL", MACROS["ALL"]),
        (b"FAST", MACROS["FAST"]),
        (b"full", MACROS["FULL"]),
        (b"BODY[]", (BodySection(section=Section()),)),
        (b"BODY.PEEK[]", (BodySection(section=Section(), peek=True),)),
        (b"BODY[HEADER]", (BodySection(section=Section(text=SectionText.HEADER)),)),
        (
            b"BODY[TEXT]<0.2048>",
            (BodySection(section=Section(text=SectionText.TEXT), partial=Partial(offset=0, length=2048)),),
        ),
        (b"BODY[1]", (BodySection(section=Section(part=(1,))),)),
        (b"BODY[1.2.3]", (BodySection(section=Section(part=(1, 2, 3))),)),
        (b"BODY[4.2.MIME]", (BodySection(section=Section(part=(4, 2), text=SectionText.MIME)),)),
        (b"BODY[3.TEXT]", (BodySection(section=Section(part=(3,), text=SectionText.TEXT)),)),
        (b"BODY[2.HEADER]", (BodySection(section=Section(part=(2,), text=SectionText.HEADER)),)),
        (
            b'BODY.PEEK[HEADER.FIELDS (From "Subject" {2+}\r\nTo)]',
            (
                BodySection(
                    section=Section(text=SectionText.HEADER_FIELDS, header_fields=("FROM", "SUBJECT", "TO")),
                    peek=True,
                ),
            ),
        ),
        (
            b"BODY[1.HEADER.FIELDS.NOT (Received)]<10.20>",
            (
                BodySection(
                    section=Section(
                        part=(1,), text=SectionText.HEADER_FIELDS_NOT, header_fields=("RECEIVED",)
                    ),
                    partial=Partial(offset=10, length=20),
                ),
            ),
        ),
        (b"BINARY[1.2]", (BinarySection(part=(1, 2)),)),
        (
            b"BINARY.PEEK[]<0.100>",
            (BinarySection(part=(), peek=True, partial=Partial(offset=0, length=100)),),
        ),
        (b"BINARY.SIZE[3]", (BinarySize(part=(3,)),)),
        (
            b"(UID BODY.PEEK[1]<0.1>)",
            (
                SimpleItem.UID,
                BodySection(section=Section(part=(1,)), partial=Partial(offset=0, length=1), peek=True),
            ),
        ),
    ],
)
def test_fetch_items_parse(text: bytes, expected: tuple[FetchItem, ...]) -> None:
    assert items(text) == expected


def test_uid_fetch_with_changedsince_and_vanished() -> None:
    assert parse(b"a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n") == Fetch(
        tag="a",
        uid=True,
        sequence_set=SequenceSet.parse(b"300:500"),
        items=(SimpleItem.FLAGS,),
        changed_since=12345,
        vanished=True,
    )


def test_fetch_with_changedsince() -> None:
    command = parse(b"a FETCH 1:* FLAGS (CHANGEDSINCE 0)\r\n")
    assert isinstance(command, Fetch)
    assert command.changed_since == 0


@pytest.mark.parametrize(
    "line",
    [
        b"a FETCH 1\r\n",
        b"a FETCH 1 ()\r\n",
        b"a FETCH 1 FOO\r\n",
        b"a FETCH 1 (ALL)\r\n",
        b"a FETCH 1 (FLAGS\r\n",
        b"a FETCH 1 FLAGS UID\r\n",
        b"a FETCH 1 BODY[\r\n",
        b"a FETCH 1 BODY[0]\r\n",
        b"a FETCH 1 BODY[01]\r\n",
        b"a FETCH 1 BODY[1.]\r\n",
        b"a FETCH 1 BODY[.1]\r\n",
        b"a FETCH 1 BODY[MIME]\r\n",
        b"a FETCH 1 BODY[HEADER.FIELDS]\r\n",
        b"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
        b"a FETCH 1 BODY[HEADER.FIELDS (Fr:om)]\r\n",
        b"a FETCH 1 BODY[FOO]\r\n",
        b"a FETCH 1 BODY[1]<0>\r\n",
        b"a FETCH 1 BODY[1]<0.0>\r\n",
        b"a FETCH 1 BODY[1]<a.b>\r\n",
        b"a FETCH 1 BINARY[TEXT]\r\n",
        b"a FETCH 1 BINARY[1.0]\r\n",
        b"a FETCH 1 FLAGS[1]\r\n",
        b"a FETCH 1 FLAGS (VANISHED)\r\n",
        b"a UID FETCH 1 FLAGS (VANISHED)\r\n",
        b"a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)\r\n",
        b"a FETCH 1 FLAGS (CHANGEDSINCE x)\r\n",
        b"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)\r\n",
        b"a FETCH 1 FLAGS ()\r\n",
        b"a FETCH 1:* FLAGS (CHANGEDSINCE 99999999999999999999)\r\n",
    ],
)
def test_grammar_error_is_parse_error(line: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse(line)
    assert caught.value.tag == "a"


@pytest.mark.parametrize(
    ("text", "need"),
    [
        (b"FLAGS", DataNeed.FLAGS),
        (b"(UID FLAGS)", DataNeed.FLAGS | DataNeed.RECORD),
        (b"FAST", DataNeed.FLAGS | DataNeed.RECORD),
        (b"(ENVELOPE BODYSTRUCTURE)", DataNeed.RECORD | DataNeed.STRUCTURE),
        (b"BODY.PEEK[HEADER.FIELDS (Subject)]", DataNeed.RECORD | DataNeed.HEADER),
        (b"RFC822.HEADER", DataNeed.RECORD | DataNeed.HEADER),
        (b"BODY[]", DataNeed.RECORD | DataNeed.BODY),
        (b"RFC822", DataNeed.RECORD | DataNeed.BODY),
        (b"BODY[1]<0.100>", DataNeed.RECORD | DataNeed.STRUCTURE | DataNeed.RANGE),
        (b"BODY[TEXT]", DataNeed.RECORD | DataNeed.STRUCTURE | DataNeed.RANGE),
        (b"BINARY.SIZE[1]", DataNeed.RECORD | DataNeed.STRUCTURE | DataNeed.RANGE),
    ],
)
def test_data_needs_name_the_minimum_to_load(text: bytes, need: DataNeed) -> None:
    assert data_needs(items(text)) == need


@pytest.mark.parametrize(
    ("text", "seen"),
    [
        (b"BODY[]", True),
        (b"BODY.PEEK[]", False),
        (b"BINARY[1]", True),
        (b"BINARY.PEEK[1]", False),
        (b"RFC822", True),
        (b"RFC822.TEXT", True),
        (b"RFC822.HEADER", False),
        (b"(FLAGS BODYSTRUCTURE)", False),
    ],
)
def test_sets_seen_unless_peek(text: bytes, seen: bool) -> None:
    assert sets_seen(items(text)) is seen
