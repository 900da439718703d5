"""Parsing of mailbox commands: SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS and
the quota commands."""

from __future__ import annotations

import pytest

from kittiwake.proto.imap.commands import (
    Command,
    Create,
    Delete,
    Examine,
    GetQuota,
    GetQuotaRoot,
    List,
    ListReturn,
    ListSelection,
    Lsub,
    QresyncParameters,
    Rename,
    Select,
    SetQuota,
    Status,
    StatusItem,
    Subscribe,
    Unsubscribe,
)
from kittiwake.proto.imap.errors import MailboxNameRefused, ParseError
from kittiwake.proto.imap.parser import parse_command
from kittiwake.proto.imap.receiver import ImapReceiver, RawCommand
from kittiwake.proto.imap.sequence_set import SequenceSet


def parse(data: bytes, *, utf8: bool = False) -> Command:
    receiver = ImapReceiver()
    receiver.receive_data(data)
    raw = [event for event in receiver.events() if isinstance(event, RawCommand)]
    assert len(raw) == 1
    return parse_command(raw[0], utf8=utf8)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a SELECT INBOX\r\n", Select(tag="a", mailbox="INBOX")),
        (b"a SELECT inbox\r\n", Select(tag="a", mailbox="INBOX")),
        (b'a SELECT "InBoX/Sub"\r\n', Select(tag="a", mailbox="INBOX/Sub")),
        (b"a SELECT Archive/2024\r\n", Select(tag="a", mailbox="Archive/2024")),
        (b"a SELECT Entw&APw-rfe\r\n", Select(tag="a", mailbox="Entwürfe")),
        (b"a SELECT {5+}\r\nTrash\r\n", Select(tag="a", mailbox="Trash")),
        (b"a SELECT INBOX (CONDSTORE)\r\n", Select(tag="a", mailbox="INBOX", condstore=True)),
        (b"a EXAMINE Sent\r\n", Examine(tag="a", mailbox="Sent")),
        (
            b"a SELECT INBOX (QRESYNC (67890007 90060115194045000))\r\n",
            Select(
                tag="a",
                mailbox="INBOX",
                qresync=QresyncParameters(uid_validity=67890007, modseq=90060115194045000),
            ),
        ),
        (
            b"a SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))\r\n",
            Select(
                tag="a",
                mailbox="INBOX",
                qresync=QresyncParameters(
                    uid_validity=67890007,
                    modseq=90060115194045000,
                    known_uids=SequenceSet.parse(b"41:211,214:541"),
                ),
            ),
        ),
        (
            b"a EXAMINE INBOX (QRESYNC (1 2 1:100 (1,5 10,50)) CONDSTORE)\r\n",
            Examine(
                tag="a",
                mailbox="INBOX",
                condstore=True,
                qresync=QresyncParameters(
                    uid_validity=1,
                    modseq=2,
                    known_uids=SequenceSet.parse(b"1:100"),
                    known_sequence_numbers=SequenceSet.parse(b"1,5"),
                    known_sequence_uids=SequenceSet.parse(b"10,50"),
                ),
            ),
        ),
        (
            b"a SELECT INBOX (QRESYNC (1 2 (1,5 10,50)))\r\n",
            Select(
                tag="a",
                mailbox="INBOX",
                qresync=QresyncParameters(
                    uid_validity=1,
                    modseq=2,
                    known_sequence_numbers=SequenceSet.parse(b"1,5"),
                    known_sequence_uids=SequenceSet.parse(b"10,50"),
                ),
            ),
        ),
        (b"a CREATE Projects\r\n", Create(tag="a", mailbox="Projects")),
        (b"a CREATE Projects/\r\n", Create(tag="a", mailbox="Projects")),
        (
            b'a CREATE "My Drafts" (USE (\\Drafts))\r\n',
            Create(tag="a", mailbox="My Drafts", special_use=("\\Drafts",)),
        ),
        (
            b"a CREATE Both (USE (\\Sent \\Archive))\r\n",
            Create(tag="a", mailbox="Both", special_use=("\\Sent", "\\Archive")),
        ),
        (b"a DELETE Old\r\n", Delete(tag="a", mailbox="Old")),
        (b"a RENAME Old New\r\n", Rename(tag="a", mailbox="Old", new_name="New")),
        (b"a RENAME INBOX Archive/Inbox\r\n", Rename(tag="a", mailbox="INBOX", new_name="Archive/Inbox")),
        (b"a SUBSCRIBE News\r\n", Subscribe(tag="a", mailbox="News")),
        (b"a UNSUBSCRIBE News\r\n", Unsubscribe(tag="a", mailbox="News")),
        (b'a LIST "" *\r\n', List(tag="a", reference="", patterns=("*",))),
        (b"a LIST ~/Mail/ %\r\n", List(tag="a", reference="~/Mail/", patterns=("%",))),
        (b'a LIST "" "INBOX"\r\n', List(tag="a", reference="", patterns=("INBOX",))),
        (b"a LIST Work Proj]%\r\n", List(tag="a", reference="Work", patterns=("Proj]%",))),
        (b'a LIST "" ""\r\n', List(tag="a", reference="", patterns=("",))),
        (
            b'a LIST (SUBSCRIBED REMOTE) "" ("INBOX" "Drafts/*")\r\n',
            List(
                tag="a",
                reference="",
                patterns=("INBOX", "Drafts/*"),
                selection=frozenset({ListSelection.SUBSCRIBED, ListSelection.REMOTE}),
                extended=True,
            ),
        ),
        (
            b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" %\r\n',
            List(
                tag="a",
                reference="",
                patterns=("%",),
                selection=frozenset({ListSelection.SUBSCRIBED, ListSelection.RECURSIVEMATCH}),
                extended=True,
            ),
        ),
        (
            b'a LIST (SPECIAL-USE) "" *\r\n',
            List(
                tag="a",
                reference="",
                patterns=("*",),
                selection=frozenset({ListSelection.SPECIAL_USE}),
                extended=True,
            ),
        ),
        (
            b'a LIST "" % RETURN (CHILDREN SUBSCRIBED SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n',
            List(
                tag="a",
                reference="",
                patterns=("%",),
                returns=ListReturn(
                    children=True,
                    subscribed=True,
                    special_use=True,
                    status=(StatusItem.MESSAGES, StatusItem.UNSEEN),
                ),
                extended=True,
            ),
        ),
        (b'a LIST () "" % RETURN ()\r\n', List(tag="a", reference="", patterns=("%",), extended=True)),
        (b'a LSUB "" news/*\r\n', Lsub(tag="a", reference="", pattern="news/*")),
        (
            b"a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT)\r\n",
            Status(tag="a", mailbox="INBOX", items=tuple(StatusItem)),
        ),
        (b"a status Sent (messages)\r\n", Status(tag="a", mailbox="Sent", items=(StatusItem.MESSAGES,))),
        (b'a GETQUOTA ""\r\n', GetQuota(tag="a", root="")),
        (b"a GETQUOTAROOT INBOX\r\n", GetQuotaRoot(tag="a", mailbox="INBOX")),
        (
            b'a SETQUOTA "" (STORAGE 512 MESSAGE 1000)\r\n',
            SetQuota(tag="a", root="", limits=(("STORAGE", 512), ("MESSAGE", 1000))),
        ),
        (b'a SETQUOTA "" ()\r\n', SetQuota(tag="a", root="", limits=())),
    ],
)
def test_valid_command_parses(line: bytes, expected: Command) -> None:
    assert parse(line) == expected


def test_utf8_mailbox_names_after_enable() -> None:
    assert parse('a SELECT "Entwürfe"\r\n'.encode(), utf8=True) == Select(tag="a", mailbox="Entwürfe")


def test_ampersand_is_literal_in_utf8_mode() -> None:
    assert parse(b'a SELECT "R&D"\r\n', utf8=True) == Select(tag="a", mailbox="R&D")


@pytest.mark.parametrize(
    "line",
    [
        b"a SELECT\r\n",
        b"a SELECT INBOX extra\r\n",
        b"a SELECT INBOX ()\r\n",
        b"a SELECT INBOX (FOO)\r\n",
        b"a SELECT INBOX (CONDSTORE CONDSTORE)\r\n",
        b"a SELECT INBOX (QRESYNC (0 1))\r\n",
        b"a SELECT INBOX (QRESYNC (1 0))\r\n",
        b"a SELECT INBOX (QRESYNC (1))\r\n",
        b"a SELECT INBOX (QRESYNC (1 2 (1,5)))\r\n",
        b"a CREATE\r\n",
        b"a CREATE a%b\r\n",
        b"a CREATE Box (USE (Drafts))\r\n",
        b"a CREATE Box (FOO (\\Drafts))\r\n",
        b"a RENAME Old\r\n",
        b"a RENAME Old New/\x7f\r\n",
        b"a DELETE\r\n",
        b'a LIST ""\r\n',
        b'a LIST "" ()\r\n',
        b'a LIST (FOO) "" *\r\n',
        b'a LIST (RECURSIVEMATCH) "" *\r\n',
        b'a LIST (RECURSIVEMATCH REMOTE) "" *\r\n',
        b'a LIST "" * RETURN (FOO)\r\n',
        b'a LIST "" * RETURN (STATUS ())\r\n',
        b'a LIST "" * RETURNS ()\r\n',
        b'a LSUB ""\r\n',
        b"a STATUS INBOX\r\n",
        b"a STATUS INBOX ()\r\n",
        b"a STATUS INBOX (MESSAGES FOO)\r\n",
        b"a SETQUOTA x (STORAGE)\r\n",
        b"a SETQUOTA x (STORAGE -1)\r\n",
        b"a GETQUOTA\r\n",
    ],
)
def test_grammar_error_is_parse_error(line: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse(line)
    assert caught.value.tag == "a"
    assert not isinstance(caught.value, MailboxNameRefused)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"a SELECT &Jjo\r\n", Select),  # RFC 3501 §5.1.3: a shifted run must end with "-"
        (b"a SELECT R&D\r\n", Select),  # a bare "&" is spelled "&-"
        (b"a SELECT &AGE-\r\n", Select),  # printable ASCII ("a") is never base64-encoded
        (b'a SELECT "Entw\xc3\xbcrfe"\r\n', Select),  # 8-bit without UTF-8 names enabled
        (b"a EXAMINE &Jjo\r\n", Examine),
        (b"a DELETE &Jjo\r\n", Delete),
        (b"a RENAME &Jjo New\r\n", Rename),  # the name to rename exists or not; it is not created
        (b"a SUBSCRIBE &Jjo\r\n", Subscribe),
        (b"a STATUS &Jjo (MESSAGES)\r\n", Status),
    ],
)
def test_a_well_formed_command_naming_an_invalid_mailbox_is_refused_not_bad(
    line: bytes, command: type[Command]
) -> None:
    with pytest.raises(MailboxNameRefused) as caught:
        parse(line)
    assert caught.value.tag == "a"
    assert isinstance(caught.value.command, command)
    assert not caught.value.creating


@pytest.mark.parametrize(
    ("line", "reference", "patterns"),
    [
        (b'a LIST "" &Jjo\r\n', "", ("&Jjo",)),
        (b'a LIST "" ("%" "&Jjo")\r\n', "", ("%", "&Jjo")),
        (b"a LSUB &Jjo/ %\r\n", "&Jjo/", ("%",)),
        (b'a LIST "" !#$$&\'+,-.0123456789:;<=>?@^_`|[}%*\r\n', "", ("!#$$&'+,-.0123456789:;<=>?@^_`|[}%*",)),
    ],
)
def test_a_list_pattern_that_is_not_modified_utf7_is_taken_as_written(
    line: bytes, reference: str, patterns: tuple[str, ...]
) -> None:
    # A pattern names no mailbox: one that does not decode matches only names spelled so, and LIST says OK.
    command = parse(line)
    assert isinstance(command, List | Lsub)
    assert command.reference == reference
    assert (command.patterns if isinstance(command, List) else (command.pattern,)) == patterns


@pytest.mark.parametrize(
    "line",
    [
        b"a CREATE &Jjo\r\n",
        b"a CREATE &AGE-\r\n",
        b"a RENAME Old &Jjo\r\n",
        b'a CREATE ""\r\n',  # RFC 9051 §5.1: names the server cannot create
        b"a CREATE a//b\r\n",
        b"a CREATE /root\r\n",
        b"a CREATE a/../b\r\n",
        b'a CREATE "a*b"\r\n',
        b'a CREATE "a\\\\b\x01"\r\n',
        b"a CREATE " + b"x" * 1001 + b"\r\n",
    ],
)
def test_a_name_that_cannot_be_created_is_refused_as_the_name_to_create(line: bytes) -> None:
    with pytest.raises(MailboxNameRefused) as caught:
        parse(line)
    assert caught.value.creating
    assert isinstance(caught.value.command, Create | Rename)


def test_a_grammar_error_after_an_invalid_name_is_still_bad() -> None:
    with pytest.raises(ParseError) as caught:
        parse(b"a STATUS &Jjo (NOSUCHITEM)\r\n")
    assert not isinstance(caught.value, MailboxNameRefused)


def test_the_first_refused_name_of_a_rename_decides_the_answer() -> None:
    with pytest.raises(MailboxNameRefused) as caught:
        parse(b"a RENAME &Jjo &AGE-\r\n")
    assert not caught.value.creating


@pytest.mark.parametrize("name", [b"&-", b"R&-D", b"Entw&APw-rfe", b"&ZeVnLIqe-&-x"])
def test_valid_modified_utf7_names_are_accepted(name: bytes) -> None:
    assert isinstance(parse(b"a CREATE " + name + b"\r\n"), Create)


@pytest.mark.parametrize("name", [b'"&Jjo"', b'"&AGE-"', b'"R&D"'])
def test_utf8_mode_takes_ampersands_as_they_are(name: bytes) -> None:
    # RFC 6855 §3 / RFC 9051 §5.1: with UTF-8 names there is no modified UTF-7 to get wrong.
    command = parse(b"a CREATE " + name + b"\r\n", utf8=True)
    assert isinstance(command, Create)
    assert command.mailbox == name.strip(b'"').decode()


def test_utf8_mode_refuses_a_name_that_is_not_utf8() -> None:
    with pytest.raises(MailboxNameRefused):
        parse(b"a SELECT {3+}\r\n\xc3(x\r\n", utf8=True)
