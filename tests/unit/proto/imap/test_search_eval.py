"""SEARCH evaluation of each key and their combinations (RFC 9051 §6.4.4, RFC 7162, RFC 5182)."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass, field

import pytest

from kittiwake.mail.address import format_address_list
from kittiwake.mail.encoded_words import decode_header_value
from kittiwake.proto.imap.command_reader import CommandReader
from kittiwake.proto.imap.search_eval import (
    SearchContext,
    SearchNeed,
    compile_search,
    matches,
    matching,
    needs,
    sent_date_from_header,
)
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
    SequenceKey,
    SizeKey,
    TextKey,
    parse_search_keys,
)
from kittiwake.proto.imap.sequence_set import SequenceSet

PARIS = datetime.timezone(datetime.timedelta(hours=2))


@dataclass
class View:
    sequence_number: int = 3
    uid: int = 30
    flags: Collection[str] = ("\\Seen", "\\Flagged", "$Important")
    internal_date: datetime.datetime = datetime.datetime(2026, 11, 22, 0, 30, tzinfo=PARIS)
    size: int = 2048
    modseq: int = 500
    headers: dict[str, list[str]] = field(
        default_factory=lambda: {
            "FROM": ["Jörg Müller <jorg@example.com>"],
            "SUBJECT": ["Quarterly Report"],
            "X-EMPTY": [""],
        }
    )
    written_out: dict[str, list[str]] = field(
        default_factory=lambda: {"FROM": ["Jörg Müller <jorg@example.com>"]}
    )
    sent: datetime.date | None = datetime.date(2026, 11, 20)
    text_of_headers: str = "From: Jörg Müller <jorg@example.com>\nSubject: Quarterly Report\n"
    text_of_body: str = "The STRASSE numbers are attached."
    body_reads: int = 0

    def header(self, name: str) -> list[str]:
        return self.headers.get(name.upper(), [])

    def addresses(self, name: str) -> list[str]:
        return self.written_out.get(name.upper(), [])

    def sent_date(self) -> datetime.date | None:
        return self.sent

    def headers_text(self) -> str:
        return self.text_of_headers

    def body_text(self) -> str:
        self.body_reads += 1
        return self.text_of_body


CONTEXT = SearchContext(max_sequence=10, max_uid=100)


def _search(text: str) -> SearchKey:
    return parse_search_keys(CommandReader("a", (text.encode(),), utf8=True), None)


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("ALL", True),
        ("SEEN", True),
        ("UNSEEN", False),
        ("FLAGGED", True),
        ("ANSWERED", False),
        ("UNANSWERED", True),
        ("DELETED", False),
        ("UNDELETED", True),
        ("DRAFT", False),
        ("UNDRAFT", True),
        ("KEYWORD $important", True),  # flags compare ignoring case
        ("KEYWORD $Junk", False),
        ("UNKEYWORD $Junk", True),
        ("RECENT", False),  # this view has no \Recent
        ("NEW", False),
        ("OLD", True),
        ("FROM jörg", True),
        ("FROM MÜLLER", True),
        ("FROM bob", False),
        ('SUBJECT "quarterly report"', True),
        ("SUBJECT annual", False),
        ("TO bob", False),
        ('HEADER X-EMPTY ""', True),  # RFC 9051 §6.4.4: empty string matches any message with the field
        ('HEADER X-ABSENT ""', False),
        ("HEADER subject REPORT", True),
        ("BODY strasse", True),
        ("BODY straße", True),  # casefold maps ß to ss
        ("BODY quarterly", False),
        ("TEXT quarterly", True),
        ("TEXT attached", True),
        ("TEXT missing", False),
        ("LARGER 2047", True),
        ("LARGER 2048", False),  # strict
        ("SMALLER 2049", True),
        ("SMALLER 2048", False),
        ("ON 22-Nov-2026", True),  # the date in the zone the internal date was recorded in
        ("BEFORE 22-Nov-2026", False),
        ("BEFORE 23-Nov-2026", True),
        ("SINCE 22-Nov-2026", True),
        ("SINCE 23-Nov-2026", False),
        ("SENTON 20-Nov-2026", True),
        ("SENTBEFORE 20-Nov-2026", False),
        ("SENTBEFORE 21-Nov-2026", True),
        ("SENTSINCE 20-Nov-2026", True),
        ("SENTSINCE 21-Nov-2026", False),
        ("MODSEQ 500", True),
        ("MODSEQ 501", False),
        ('MODSEQ "/flags/\\\\draft" all 499', True),
        ("3", True),
        ("1:2,4:*", False),
        ("*", False),
        ("2:4", True),
        ("UID 30", True),
        ("UID 1:29,31:*", False),
        ("UID 25:35", True),
        ("NOT SEEN", False),
        ("NOT NOT SEEN", True),
        ("OR UNSEEN FLAGGED", True),
        ("OR UNSEEN DELETED", False),
        ("SEEN FLAGGED FROM jorg", True),
        ("SEEN UNFLAGGED", False),
        ("(SEEN (FLAGGED (LARGER 10)))", True),
        ("OR (UNSEEN LARGER 1) (SEEN NOT SMALLER 2048)", True),
    ],
)
def test_search_key_matches_per_rfc9051(search: str, expected: bool) -> None:
    assert matches(_search(search), View(), CONTEXT) is expected


@pytest.mark.parametrize(
    ("flags", "search", "expected"),
    [
        (("\\Recent",), "RECENT", True),
        (("\\Recent",), "NEW", True),
        (("\\Recent", "\\Seen"), "NEW", False),
        (("\\Recent",), "OLD", False),
        (("\\Seen",), "OLD", True),
    ],
)
def test_recent_new_and_old_follow_the_recent_flag_of_the_view(
    flags: tuple[str, ...], search: str, expected: bool
) -> None:
    # RFC 3501 §6.4.4: NEW is RECENT UNSEEN; OLD is NOT RECENT.
    assert matches(_search(search), View(flags=flags), CONTEXT) is expected


def test_internal_date_can_be_read_in_another_zone() -> None:
    utc = SearchContext(max_sequence=10, max_uid=100, internal_date_zone=datetime.UTC)
    assert matches(_search("ON 21-Nov-2026"), View(), utc)
    assert not matches(_search("ON 22-Nov-2026"), View(), utc)


def test_sent_date_keys_never_match_without_a_date() -> None:
    view = View(sent=None)
    for relation in DateRelation:
        key = DateKey(field=DateField.SENT, relation=relation, date=datetime.date(2026, 1, 1))
        assert not matches(key, view, CONTEXT)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 22 Nov 2026 23:30:00 -0800", datetime.date(2026, 11, 22)),  # the field's own zone
        ("Mon, 23 Nov 2026 00:30:00 +0200", datetime.date(2026, 11, 23)),
        ("garbage", None),
        (None, None),
    ],
)
def test_sent_date_from_header_keeps_the_fields_own_zone(
    value: str | None, expected: datetime.date | None
) -> None:
    assert sent_date_from_header(value) == expected


@pytest.mark.parametrize(
    ("key", "uid", "expected"),
    [
        (SequenceKey(sequence_set=SequenceSet(saved=True)), 30, True),
        (SequenceKey(sequence_set=SequenceSet(saved=True)), 31, False),
        (SequenceKey(sequence_set=SequenceSet(saved=True), uid=True), 30, True),
    ],
)
def test_saved_result_is_a_set_of_uids(key: SearchKey, uid: int, expected: bool) -> None:
    context = SearchContext(max_sequence=10, max_uid=100, saved_uids=frozenset({10, 30}))
    assert matches(key, View(uid=uid), context) is expected


def test_saved_result_absent_is_empty() -> None:
    assert not matches(SequenceKey(sequence_set=SequenceSet(saved=True)), View(), CONTEXT)


def test_uid_star_range_includes_the_highest_uid_even_when_reversed() -> None:
    key = _search("UID 500:*")
    assert matches(key, View(uid=100), CONTEXT)
    assert not matches(key, View(uid=99), CONTEXT)


def test_star_in_an_empty_mailbox_matches_nothing() -> None:
    assert not matches(_search("*"), View(sequence_number=0), SearchContext(max_sequence=0, max_uid=0))


def test_compiled_search_reads_the_body_once_for_many_keys() -> None:
    view = View()
    matcher = compile_search(_search("BODY strasse BODY numbers TEXT attached"), CONTEXT)
    assert matcher(view)
    assert view.body_reads == 1


def test_matching_keeps_order_and_filters() -> None:
    views = [View(uid=uid, sequence_number=number) for number, uid in enumerate((5, 30, 7, 31), start=1)]
    assert [view.uid for view in matching(views, _search("UID 30:40"), CONTEXT)] == [30, 31]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (AllKey(), SearchNeed.NONE),
        (FlagKey(flag="\\Seen"), SearchNeed.FLAGS),
        (HeaderKey(field="FROM", value="x"), SearchNeed.HEADERS),
        (BodyKey(value="x"), SearchNeed.BODY),
        (TextKey(value="x"), SearchNeed.HEADERS | SearchNeed.BODY),
        (
            DateKey(field=DateField.INTERNAL, relation=DateRelation.ON, date=datetime.date(2026, 1, 1)),
            SearchNeed.RECORD,
        ),
        (
            DateKey(field=DateField.SENT, relation=DateRelation.ON, date=datetime.date(2026, 1, 1)),
            SearchNeed.HEADERS,
        ),
        (SizeKey(larger=True, size=1), SearchNeed.RECORD),
        (ModSeqKey(modseq=1), SearchNeed.RECORD),
        (SequenceKey(sequence_set=SequenceSet.parse(b"1:5")), SearchNeed.NONE),
        (SequenceKey(sequence_set=SequenceSet.parse(b"1:5"), uid=True), SearchNeed.RECORD),
        (SequenceKey(sequence_set=SequenceSet(saved=True)), SearchNeed.RECORD),
        (
            AndKey(keys=(FlagKey(flag="\\Seen"), NotKey(key=OrKey(left=BodyKey(value="a"), right=AllKey())))),
            SearchNeed.FLAGS | SearchNeed.BODY,
        ),
    ],
)
def test_needs_names_only_the_data_the_keys_read(key: SearchKey, expected: SearchNeed) -> None:
    assert needs(key) == expected


def test_needs_without_body_keys_skips_the_body() -> None:
    assert not needs(_search("OR FROM a SUBJECT b SEEN SINCE 1-Jan-2026 UID 1:*")) & SearchNeed.BODY


def _view_with_header(name: str, raw: str) -> View:
    """A view of a message whose only `name` field is `raw`, read as the server reads a header block."""
    return View(
        headers={name.upper(): [decode_header_value(raw)]},
        written_out={name.upper(): [format_address_list(raw)]},
    )


@pytest.mark.parametrize(
    ("raw", "search"),
    [
        ('"Joe Q. Public" <john.q.public@example.com> (Work)', 'FROM "Public"'),
        ('"Joe Q. Public" <john.q.public@example.com> (Work)', 'FROM "john.q.public@example.com"'),
        ('"Joe Q. Public" <john.q.public@example.com> (Work)', 'FROM "Work"'),  # the comment is content
        ('"Joe Q. Public" <john.q.public@example.com> (Work)', 'FROM "Joe Q. Public <john.q.public@"'),
        ("john@example.com (John Smith)", 'FROM "Smith"'),
        ("john@example.com (John Smith)", 'FROM "john@example.com"'),
        ("=?UTF-8?Q?J=C3=B6rg?= <j@example.com>", 'FROM "Jörg"'),
        ("=?UTF-8?Q?J=C3=B6rg?= <j@example.com>", 'FROM "jörg <j@example.com>"'),
        ('"=?UTF-8?B?SsO2cmc=?=" <j@example.com>', 'FROM "JÖRG"'),  # an encoded word inside quotes
        ('"Joe \\"Q\\" Public" <jqp@x.test>', 'FROM "Joe "Q" Public"'),  # quoted-pairs undone
        ("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", 'FROM "pete@silly.test"'),
        ("A Group:Ed Jones <c@a.test>,joe@where.test;", 'FROM "Ed Jones <c@a.test>"'),
    ],
)
def test_address_keys_match_the_decoded_field_or_its_written_out_addresses(raw: str, search: str) -> None:
    # RFC 9051 §6.4.4: a substring of the field's contents, display names and addresses alike.
    assert matches(_search(search), _view_with_header("From", raw), CONTEXT)


@pytest.mark.parametrize("key", ["TO", "CC", "BCC", "HEADER Reply-To"])
def test_every_address_field_is_matched_through_its_written_out_addresses(key: str) -> None:
    field_name = key.removeprefix("HEADER ")
    view = _view_with_header(field_name, "bob(the builder)@example.net")
    assert matches(_search(f'{key} "bob@example.net"'), view, CONTEXT)


@pytest.mark.parametrize(
    ("raw", "search"),
    [
        ('"Joe Q. Public" <john.q.public@example.com>', 'FROM "john@example.com"'),
        ("john@example.com (John Smith)", 'FROM "Jones"'),
        ("=?UTF-8?Q?J=C3=B6rg?= <j@example.com>", 'FROM "=?UTF-8"'),  # encoded words are decoded
        ("Pete <pete@silly.test>", 'TO "pete"'),  # another field
    ],
)
def test_address_keys_do_not_match_what_the_field_does_not_say(raw: str, search: str) -> None:
    assert not matches(_search(search), _view_with_header("From", raw), CONTEXT)


def test_other_header_fields_are_not_written_out_as_addresses() -> None:
    view = View(headers={"SUBJECT": ["pete(x)@silly.test"]}, written_out={"SUBJECT": ["pete@silly.test"]})
    assert not matches(_search('SUBJECT "pete@silly.test"'), view, CONTEXT)
