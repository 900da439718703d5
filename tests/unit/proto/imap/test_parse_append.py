"""Parsing of APPEND: flags, date-time, literal, literal8, MULTIAPPEND, UTF8 (~{n}), streamed message data."""

from __future__ import annotations

import datetime

import pytest

from kittiwake.proto.imap.commands import Append, AppendMessage, Command
from kittiwake.proto.imap.errors import ParseError
from kittiwake.proto.imap.parser import parse_command
from kittiwake.proto.imap.receiver import ImapReceiver, Literal, LiteralChunk, RawCommand, StreamedLiteral


def parse(data: bytes) -> Command:
    receiver = ImapReceiver()
    receiver.receive_data(data)
    raw = [event for event in receiver.events() if isinstance(event, RawCommand)]
    assert len(raw) == 1
    return parse_command(raw[0])


def test_append_streams_the_message_and_refers_to_it_by_index() -> None:
    assert parse(b"a APPEND INBOX {5+}\r\nhello\r\n") == Append(
        tag="a", mailbox="INBOX", messages=(AppendMessage(content=StreamedLiteral(index=0, size=5)),)
    )


def test_append_with_flags_and_date_time() -> None:
    command = parse(b'a APPEND Sent (\\Seen $Label) " 7-Feb-1994 21:52:25 -0800" {3+}\r\nabc\r\n')
    zone = datetime.timezone(-datetime.timedelta(hours=8))
    assert command == Append(
        tag="a",
        mailbox="Sent",
        messages=(
            AppendMessage(
                flags=("\\Seen", "$Label"),
                internal_date=datetime.datetime(1994, 2, 7, 21, 52, 25, tzinfo=zone),
                content=StreamedLiteral(index=0, size=3),
            ),
        ),
    )


def test_append_with_empty_flag_list_and_two_digit_day() -> None:
    command = parse(b'a APPEND INBOX () "17-Jul-1996 02:44:25 +0130" {1+}\r\nx\r\n')
    assert isinstance(command, Append)
    assert command.messages[0].flags == ()
    assert command.messages[0].internal_date == datetime.datetime(
        1996, 7, 17, 2, 44, 25, tzinfo=datetime.timezone(datetime.timedelta(hours=1, minutes=30))
    )


def test_multiappend_gives_one_message_per_literal() -> None:
    command = parse(b"a APPEND Drafts (\\Draft) {2+}\r\nm1 {2+}\r\nm2 (\\Seen) {2+}\r\nm3\r\n")
    assert isinstance(command, Append)
    assert [message.content for message in command.messages] == [
        StreamedLiteral(index=0, size=2),
        StreamedLiteral(index=1, size=2),
        StreamedLiteral(index=2, size=2),
    ]
    assert [message.flags for message in command.messages] == [("\\Draft",), (), ("\\Seen",)]


def test_literal8_message_is_binary() -> None:
    command = parse(b"a APPEND INBOX ~{3+}\r\n\x00\x01\x02\r\n")
    assert isinstance(command, Append)
    assert command.messages[0].binary
    assert not command.messages[0].utf8


def test_utf8_append_data_is_a_literal8_in_parentheses() -> None:
    command = parse(b"a APPEND INBOX UTF8 (~{4+}\r\n\xc3\xa9\xc3\xa9)\r\n")
    assert isinstance(command, Append)
    assert command.messages[0] == AppendMessage(
        content=StreamedLiteral(index=0, size=4, binary=True), binary=True, utf8=True
    )


def test_mailbox_name_may_be_a_literal_and_is_not_streamed() -> None:
    receiver = ImapReceiver()
    receiver.receive_data(b"a APPEND {6+}\r\nDrafts {2+}\r\nhi\r\n")
    events = list(receiver.events())
    assert [event.data for event in events if isinstance(event, LiteralChunk)] == [b"hi"]
    raw = events[-1]
    assert isinstance(raw, RawCommand)
    command = parse_command(raw)
    assert isinstance(command, Append)
    assert command.mailbox == "Drafts"


def test_buffered_message_literal_becomes_bytes_content() -> None:
    raw = RawCommand(tag=b"a", name=b"APPEND", args=(b" INBOX ", Literal(data=b"hello"), b""))
    assert parse_command(raw) == Append(tag="a", mailbox="INBOX", messages=(AppendMessage(content=b"hello"),))


@pytest.mark.parametrize(
    "data",
    [
        b"a APPEND INBOX\r\n",
        b"a APPEND INBOX (\\Seen)\r\n",
        b'a APPEND INBOX "hello"\r\n',
        b"a APPEND INBOX (\\Seen {1+}\r\nx\r\n",
        b'a APPEND INBOX "7-Feb-1994 21:52:25 -0800" {1+}\r\nx\r\n',
        b'a APPEND INBOX "30-Feb-1994 21:52:25 -0800" {1+}\r\nx\r\n',
        b'a APPEND INBOX "07-Foo-1994 21:52:25 -0800" {1+}\r\nx\r\n',
        b'a APPEND INBOX "07-Feb-1994 25:52:25 -0800" {1+}\r\nx\r\n',
        b'a APPEND INBOX "07-Feb-1994 21:52:25 0800" {1+}\r\nx\r\n',
        b"a APPEND INBOX UTF8 ({1+}\r\nx)\r\n",
        b"a APPEND INBOX UTF8 (~{1+}\r\nx\r\n",
        b"a APPEND INBOX {1+}\r\nx extra\r\n",
        b"a APPEND INBOX  {1+}\r\nx\r\n",
        b"a APPEND INBOX {1+}\r\nx  {1+}\r\ny\r\n",
    ],
)
def test_grammar_error_is_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse(data)
