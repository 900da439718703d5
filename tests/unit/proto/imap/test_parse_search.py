"""Parsing of SEARCH (all RFC 9051/3501 keys, CHARSET, RETURN, MODSEQ, `$`), SORT and THREAD."""

from __future__ import annotations

import datetime

import pytest

from kittiwake.proto.imap.commands import Command, Search, Sort, Thread
from kittiwake.proto.imap.errors import BadCharset, ParseError
from kittiwake.proto.imap.parser import parse_command
from kittiwake.proto.imap.receiver import ImapReceiver, RawCommand
from kittiwake.proto.imap.search_keys import (
    AllKey,
    AndKey,
    BodyKey,
    DateField,
    DateKey,
    DateRelation,
    FlagKey,
    HeaderKey,
    ModSeqKey,
    NotKey,
    OrKey,
    SearchKey,
    SearchReturn,
    SequenceKey,
    SizeKey,
    SortCriterion,
    SortKey,
    TextKey,
    ThreadAlgorithm,
)
from kittiwake.proto.imap.sequence_set import SequenceSet


def parse(data: bytes) -> Command:
    receiver = ImapReceiver()
    receiver.receive_data(data)
    raw = [event for event in receiver.events() if isinstance(event, RawCommand)]
    assert len(raw) == 1
    return parse_command(raw[0])


def criteria(text: bytes) -> SearchKey:
    command = parse(b"a SEARCH " + text + b"\r\n")
    assert isinstance(command, Search)
    return command.criteria


FEB_1 = datetime.date(1994, 2, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"ALL", AllKey()),
        (b"ANSWERED", FlagKey(flag="\\Answered")),
        (b"DELETED", FlagKey(flag="\\Deleted")),
        (b"DRAFT", FlagKey(flag="\\Draft")),
        (b"FLAGGED", FlagKey(flag="\\Flagged")),
        (b"SEEN", FlagKey(flag="\\Seen")),
        (b"RECENT", FlagKey(flag="\\Recent")),
        (b"OLD", FlagKey(flag="\\Recent", present=False)),
        (b"NEW", AndKey(keys=(FlagKey(flag="\\Recent"), FlagKey(flag="\\Seen", present=False)))),
        (b"UNANSWERED", FlagKey(flag="\\Answered", present=False)),
        (b"UNDELETED", FlagKey(flag="\\Deleted", present=False)),
        (b"UNDRAFT", FlagKey(flag="\\Draft", present=False)),
        (b"UNFLAGGED", FlagKey(flag="\\Flagged", present=False)),
        (b"unseen", FlagKey(flag="\\Seen", present=False)),
        (b"KEYWORD $Forwarded", FlagKey(flag="$Forwarded")),
        (b"UNKEYWORD $Junk", FlagKey(flag="$Junk", present=False)),
        (b"BCC joe", HeaderKey(field="BCC", value="joe")),
        (b'CC "Joe Bloggs"', HeaderKey(field="CC", value="Joe Bloggs")),
        (b"FROM smith", HeaderKey(field="FROM", value="smith")),
        (b'SUBJECT ""', HeaderKey(field="SUBJECT", value="")),
        (b"TO {3+}\r\nbob", HeaderKey(field="TO", value="bob")),
        (b"HEADER Message-ID <x@y>", HeaderKey(field="MESSAGE-ID", value="<x@y>")),
        (b'BODY "caf\xc3\xa9"', BodyKey(value="café")),
        (b"TEXT hello", TextKey(value="hello")),
        (b"BEFORE 1-Feb-1994", DateKey(field=DateField.INTERNAL, relation=DateRelation.BEFORE, date=FEB_1)),
        (b'ON "01-feb-1994"', DateKey(field=DateField.INTERNAL, relation=DateRelation.ON, date=FEB_1)),
        (b"SINCE 1-Feb-1994", DateKey(field=DateField.INTERNAL, relation=DateRelation.SINCE, date=FEB_1)),
        (b"SENTBEFORE 1-Feb-1994", DateKey(field=DateField.SENT, relation=DateRelation.BEFORE, date=FEB_1)),
        (b"SENTON 1-Feb-1994", DateKey(field=DateField.SENT, relation=DateRelation.ON, date=FEB_1)),
        (b"SENTSINCE 1-Feb-1994", DateKey(field=DateField.SENT, relation=DateRelation.SINCE, date=FEB_1)),
        (b"LARGER 10000", SizeKey(larger=True, size=10000)),
        (b"SMALLER 5", SizeKey(larger=False, size=5)),
        (b"NOT SEEN", NotKey(key=FlagKey(flag="\\Seen"))),
        (b"OR SEEN FLAGGED", OrKey(left=FlagKey(flag="\\Seen"), right=FlagKey(flag="\\Flagged"))),
        (b"1:5,7", SequenceKey(sequence_set=SequenceSet.parse(b"1:5,7"))),
        (b"*", SequenceKey(sequence_set=SequenceSet.parse(b"*"))),
        (b"UID 2:*", SequenceKey(sequence_set=SequenceSet.parse(b"2:*"), uid=True)),
        (b"$", SequenceKey(sequence_set=SequenceSet(saved=True))),
        (b"UID $", SequenceKey(sequence_set=SequenceSet(saved=True), uid=True)),
        (b"MODSEQ 620162338", ModSeqKey(modseq=620162338)),
        (
            b'MODSEQ "/flags/\\\\draft" all 620162338',
            ModSeqKey(modseq=620162338, entry_name="/flags/\\draft", entry_type="all"),
        ),
        (b"(SEEN)", AndKey(keys=(FlagKey(flag="\\Seen"),))),
        (
            b"DELETED FROM smith",
            AndKey(keys=(FlagKey(flag="\\Deleted"), HeaderKey(field="FROM", value="smith"))),
        ),
        (
            b"OR (SEEN FLAGGED) NOT (LARGER 5)",
            OrKey(
                left=AndKey(keys=(FlagKey(flag="\\Seen"), FlagKey(flag="\\Flagged"))),
                right=NotKey(key=AndKey(keys=(SizeKey(larger=True, size=5),))),
            ),
        ),
    ],
)
def test_search_keys_parse(text: bytes, expected: SearchKey) -> None:
    assert criteria(text) == expected


def test_search_with_charset_and_return_options() -> None:
    assert parse(b"a UID SEARCH RETURN (MIN MAX ALL COUNT SAVE) CHARSET utf-8 SUBJECT x\r\n") == Search(
        tag="a",
        uid=True,
        charset="UTF-8",
        criteria=HeaderKey(field="SUBJECT", value="x"),
        returns=(SearchReturn.MIN, SearchReturn.MAX, SearchReturn.ALL, SearchReturn.COUNT, SearchReturn.SAVE),
    )


def test_empty_return_list_means_esearch() -> None:
    command = parse(b"a SEARCH RETURN () ALL\r\n")
    assert isinstance(command, Search)
    assert command.returns == ()


def test_plain_search_has_no_return_options() -> None:
    command = parse(b"a SEARCH ALL\r\n")
    assert isinstance(command, Search)
    assert command.returns is None


def test_unknown_charset_is_bad_charset_not_bad() -> None:
    with pytest.raises(BadCharset) as caught:
        parse(b"a SEARCH CHARSET KOI8-R ALL\r\n")
    assert caught.value.tag == "a"


def test_us_ascii_charset_refuses_8bit_strings() -> None:
    with pytest.raises(ParseError):
        parse(b'a SEARCH CHARSET US-ASCII BODY "caf\xc3\xa9"\r\n')


def test_deep_nesting_is_a_parse_error_not_a_recursion_error() -> None:
    with pytest.raises(ParseError):
        parse(b"a SEARCH " + b"NOT " * 5000 + b"ALL\r\n")
    with pytest.raises(ParseError):
        parse(b"a SEARCH " + b"(" * 5000 + b"ALL" + b")" * 5000 + b"\r\n")


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"FOO",
        b"ALL ",
        b"(ALL",
        b"()",
        b"NOT",
        b"OR SEEN",
        b"FROM",
        b"HEADER Subject",
        b"HEADER Sub:ject x",
        b"BEFORE 1994-02-01",
        b"BEFORE 31-Feb-1994",
        b"BEFORE 1-Foo-1994",
        b'BEFORE "1-Feb-1994',
        b"LARGER x",
        b"LARGER -1",
        b"UID",
        b"UID x",
        b"0",
        b"1:",
        b"MODSEQ",
        b'MODSEQ "/flags/\\\\draft" mine 5',
        b"KEYWORD \\Seen",
        b"RETURN (FOO) ALL",
        b"RETURN (MIN ALL",
        b'BODY "caf\xc3"',
    ],
)
def test_search_grammar_error_is_parse_error(text: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse(b"a SEARCH " + text + b"\r\n")
    assert caught.value.tag == "a"


def test_sort_parses_criteria_charset_and_keys() -> None:
    assert parse(
        b"a UID SORT (REVERSE ARRIVAL DISPLAYFROM size) UTF-8 UNDELETED SINCE 1-Feb-1994\r\n"
    ) == Sort(
        tag="a",
        uid=True,
        criteria=(
            SortCriterion(key=SortKey.ARRIVAL, reverse=True),
            SortCriterion(key=SortKey.DISPLAYFROM),
            SortCriterion(key=SortKey.SIZE),
        ),
        charset="UTF-8",
        search=AndKey(
            keys=(
                FlagKey(flag="\\Deleted", present=False),
                DateKey(field=DateField.INTERNAL, relation=DateRelation.SINCE, date=FEB_1),
            )
        ),
    )


@pytest.mark.parametrize(
    "key", ["ARRIVAL", "CC", "DATE", "FROM", "REVERSE SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"]
)
def test_every_sort_key_parses(key: str) -> None:
    assert isinstance(parse(b"a SORT (%s) US-ASCII ALL\r\n" % key.encode()), Sort)


@pytest.mark.parametrize(
    ("name", "algorithm"),
    [(b"REFERENCES", ThreadAlgorithm.REFERENCES), (b"orderedsubject", ThreadAlgorithm.ORDEREDSUBJECT)],
)
def test_thread_parses_algorithm_charset_and_keys(name: bytes, algorithm: ThreadAlgorithm) -> None:
    assert parse(b"a THREAD " + name + b" UTF-8 ALL\r\n") == Thread(
        tag="a", algorithm=algorithm, charset="UTF-8", search=AllKey()
    )


@pytest.mark.parametrize(
    "line",
    [
        b"a SORT () UTF-8 ALL\r\n",
        b"a SORT (FOO) UTF-8 ALL\r\n",
        b"a SORT (REVERSE) UTF-8 ALL\r\n",
        b"a SORT (DATE) ALL\r\n",
        b"a SORT (DATE) UTF-8\r\n",
        b"a THREAD FOO UTF-8 ALL\r\n",
        b"a THREAD REFERENCES UTF-8\r\n",
    ],
)
def test_sort_and_thread_grammar_errors(line: bytes) -> None:
    with pytest.raises(ParseError):
        parse(line)
