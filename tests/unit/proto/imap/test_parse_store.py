"""Parsing of STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE and the argument-less selected-state commands."""

from __future__ import annotations

import pytest

from kittiwake.proto.imap.commands import (
    Check,
    Close,
    Command,
    Copy,
    Expunge,
    Idle,
    Move,
    Store,
    StoreMode,
    Unselect,
)
from kittiwake.proto.imap.errors import ParseError
from kittiwake.proto.imap.parser import parse_command
from kittiwake.proto.imap.receiver import ImapReceiver, RawCommand
from kittiwake.proto.imap.sequence_set import SequenceSet


def parse(data: bytes) -> Command:
    receiver = ImapReceiver()
    receiver.receive_data(data)
    raw = [event for event in receiver.events() if isinstance(event, RawCommand)]
    assert len(raw) == 1
    return parse_command(raw[0])


def seq(text: bytes) -> SequenceSet:
    return SequenceSet.parse(text)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"a STORE 2:4 +FLAGS (\\Deleted)\r\n",
            Store(tag="a", sequence_set=seq(b"2:4"), mode=StoreMode.ADD, flags=("\\Deleted",)),
        ),
        (
            b"a STORE 1 -FLAGS.SILENT (\\seen $Junk)\r\n",
            Store(
                tag="a", sequence_set=seq(b"1"), mode=StoreMode.REMOVE, silent=True, flags=("\\Seen", "$Junk")
            ),
        ),
        (b"a STORE 1 FLAGS ()\r\n", Store(tag="a", sequence_set=seq(b"1"), mode=StoreMode.REPLACE, flags=())),
        (
            b"a STORE 1:* flags \\Answered \\Flagged\r\n",
            Store(
                tag="a", sequence_set=seq(b"1:*"), mode=StoreMode.REPLACE, flags=("\\Answered", "\\Flagged")
            ),
        ),
        (
            b"a UID STORE 7,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n",
            Store(
                tag="a",
                uid=True,
                sequence_set=seq(b"7,9"),
                mode=StoreMode.ADD,
                silent=True,
                flags=("\\Deleted",),
                unchanged_since=320162338,
            ),
        ),
        (
            b"a STORE $ (UNCHANGEDSINCE 0) FLAGS (x)\r\n",
            Store(
                tag="a",
                sequence_set=SequenceSet(saved=True),
                mode=StoreMode.REPLACE,
                flags=("x",),
                unchanged_since=0,
            ),
        ),
        (b"a COPY 2:4 MEETING\r\n", Copy(tag="a", sequence_set=seq(b"2:4"), mailbox="MEETING")),
        (
            b'a UID COPY 1:* "Saved Items"\r\n',
            Copy(tag="a", uid=True, sequence_set=seq(b"1:*"), mailbox="Saved Items"),
        ),
        (b"a MOVE 1 inbox\r\n", Move(tag="a", sequence_set=seq(b"1"), mailbox="INBOX")),
        (b"a UID MOVE 42:69 Trash\r\n", Move(tag="a", uid=True, sequence_set=seq(b"42:69"), mailbox="Trash")),
        (b"a EXPUNGE\r\n", Expunge(tag="a")),
        (b"a UID EXPUNGE 3000:3002\r\n", Expunge(tag="a", uid=True, sequence_set=seq(b"3000:3002"))),
        (b"a CHECK\r\n", Check(tag="a")),
        (b"a CLOSE\r\n", Close(tag="a")),
        (b"a UNSELECT\r\n", Unselect(tag="a")),
        (b"a IDLE\r\n", Idle(tag="a")),
    ],
)
def test_valid_command_parses(line: bytes, expected: Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        b"a STORE 1 +FLAGS\r\n",
        b"a STORE 1 FLAGS (\\Seen\r\n",
        b"a STORE 1 *FLAGS (\\Seen)\r\n",
        b"a STORE 1 FLAGS.LOUD (\\Seen)\r\n",
        b"a STORE 0 FLAGS (\\Seen)\r\n",
        b"a STORE 1 FLAGS ((\\Seen))\r\n",
        b"a STORE 1 (UNCHANGEDSINCE) FLAGS (x)\r\n",
        b"a STORE 1 (FOO 1) FLAGS (x)\r\n",
        b"a STORE FLAGS (x)\r\n",
        b"a COPY 1\r\n",
        b"a COPY x Trash\r\n",
        b"a COPY 1:2:3 Trash\r\n",
        b"a MOVE 1,,2 Trash\r\n",
        b"a MOVE 4294967296 Trash\r\n",
        b"a EXPUNGE 1\r\n",
        b"a UID EXPUNGE\r\n",
        b"a UID\r\n",
        b"a UID SELECT INBOX\r\n",
        b"a CLOSE now\r\n",
    ],
)
def test_grammar_error_is_parse_error(line: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse(line)
    assert caught.value.tag == "a"
