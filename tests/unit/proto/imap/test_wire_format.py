from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.proto.imap.wire_format import (
    QUOTED_MAX_OCTETS,
    encode_astring,
    encode_atom,
    encode_date_time,
    encode_flag_list,
    encode_list,
    encode_literal,
    encode_literal8,
    encode_mailbox_name,
    encode_nstring,
    encode_number,
    encode_quoted,
    encode_string,
    render_uid_set,
)

_LITERAL_HEADER = re.compile(rb"~?\{(\d+)\}\r\n")


def decode_string(wire: bytes) -> tuple[bytes, bytes]:
    """Test-local reader of one IMAP `string`: returns (value, rest of input)."""
    if wire.startswith(b'"'):
        value = bytearray()
        index = 1
        while wire[index : index + 1] != b'"':
            if wire[index : index + 1] == b"\\":
                index += 1
                assert wire[index : index + 1] in (b"\\", b'"')
            value += wire[index : index + 1]
            index += 1
        return bytes(value), wire[index + 1 :]
    match = _LITERAL_HEADER.match(wire)
    assert match is not None, wire
    size = int(match.group(1))
    return wire[match.end() : match.end() + size], wire[match.end() + size :]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("FLAGS", b"FLAGS"), ("\\Seen", None), ("a b", None), ("x]", None), ("", None), ("caf\u00e9", None)],
)
def test_encode_atom_accepts_only_atom_chars(value: str, expected: bytes | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            encode_atom(value)
    else:
        assert encode_atom(value) == expected


def test_encode_number_renders_decimal_and_rejects_negatives() -> None:
    assert encode_number(4294967296) == b"4294967296"
    with pytest.raises(ValueError):
        encode_number(-1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello", b'"hello"'),
        ('say "hi"', b'"say \\"hi\\""'),
        ("back\\slash", b'"back\\\\slash"'),
        ("", b'""'),
    ],
)
def test_encode_quoted_escapes_backslash_and_double_quote(value: str, expected: bytes) -> None:
    assert encode_quoted(value) == expected


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\x00b"])
def test_encode_quoted_refuses_cr_lf_and_nul(value: str) -> None:
    with pytest.raises(ValueError):
        encode_quoted(value)


def test_encode_literal_prefixes_octet_count() -> None:
    assert encode_literal("line1\r\nline2") == b"{12}\r\nline1\r\nline2"


def test_encode_literal_counts_octets_not_characters() -> None:
    assert encode_literal("\u00e9") == b"{2}\r\n\xc3\xa9"


def test_encode_literal_sends_nul_as_0x80_with_the_same_count() -> None:
    # RFC 3501 §4.3.1, RFC 9051 §4.3.1: NUL makes a binary string, which a plain literal may not carry.
    assert encode_literal(b"a\x00b\x00") == b"{4}\r\na\x80b\x80"


def test_encode_string_puts_a_value_with_nul_in_a_literal_without_nul() -> None:
    assert encode_string(b"x\x00y") == b"{3}\r\nx\x80y"


def test_encode_literal8_uses_tilde_form() -> None:
    assert encode_literal8(b"\x00\x01") == b"~{2}\r\n\x00\x01"


@pytest.mark.parametrize(
    ("value", "utf8", "expected"),
    [
        ("plain text", False, b'"plain text"'),
        ("two\r\nlines", False, b"{10}\r\ntwo\r\nlines"),
        ("caf\u00e9", False, b"{5}\r\ncaf\xc3\xa9"),
        ("caf\u00e9", True, b'"caf\xc3\xa9"'),
        # A raw Latin-1 octet kept by surrogateescape is not UTF-8, so it needs a literal even with UTF8=ACCEPT.
        ("caf\udce9", True, b"{4}\r\ncaf\xe9"),
        (b"raw\xff", False, b"{4}\r\nraw\xff"),
    ],
)
def test_encode_string_chooses_quoted_or_literal(value: str | bytes, utf8: bool, expected: bytes) -> None:
    assert encode_string(value, utf8=utf8) == expected


def test_encode_string_sends_long_values_as_literals() -> None:
    value = "x" * (QUOTED_MAX_OCTETS + 1)
    assert encode_string(value) == b"{%d}\r\n" % len(value) + value.encode()
    assert encode_string("x" * QUOTED_MAX_OCTETS).startswith(b'"')


def test_encode_string_restores_surrogateescaped_octets() -> None:
    assert encode_string("\udcc4\udce4") == b"{2}\r\n\xc4\xe4"


def test_encode_nstring_renders_none_as_nil() -> None:
    assert encode_nstring(None) == b"NIL"
    assert encode_nstring("NIL") == b'"NIL"'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("INBOX", b"INBOX"),
        ("NIL", b'"NIL"'),
        ("nil", b'"nil"'),
        ("a]b", b"a]b"),
        ("a b", b'"a b"'),
        ("", b'""'),
        ("a%", b'"a%"'),
        ("x(", b'"x("'),
    ],
)
def test_encode_astring_uses_atom_only_when_possible(value: str, expected: bytes) -> None:
    assert encode_astring(value) == expected


def test_encode_list_joins_with_single_spaces() -> None:
    assert encode_list([b"A", b"B", b"C"]) == b"(A B C)"
    assert encode_list([]) == b"()"


def test_encode_flag_list_keeps_system_flag_backslashes_and_wildcard() -> None:
    assert (
        encode_flag_list(["\\Seen", "\\Answered", "$Forwarded", "\\*"])
        == b"(\\Seen \\Answered $Forwarded \\*)"
    )


def test_encode_flag_list_rejects_non_atom_keywords() -> None:
    with pytest.raises(ValueError):
        encode_flag_list(["bad flag"])


@pytest.mark.parametrize(
    ("name", "utf8", "expected"),
    [
        ("INBOX", False, b"INBOX"),
        ("Entw\u00fcrfe", False, b"Entw&APw-rfe"),
        ("Entw\u00fcrfe", True, b'"Entw\xc3\xbcrfe"'),
        ("Sent Items", False, b'"Sent Items"'),
        ("A&B", False, b"A&-B"),
        ("\u53f0\u5317", False, b"&U,BTFw-"),
    ],
)
def test_encode_mailbox_name_uses_modified_utf7_or_utf8(name: str, utf8: bool, expected: bytes) -> None:
    assert encode_mailbox_name(name, utf8) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 11, 22, 4, 30, 0, tzinfo=UTC), b'"22-Nov-2026 04:30:00 +0000"'),
        (
            datetime(1996, 7, 2, 2, 44, 25, tzinfo=timezone(timedelta(hours=-7))),
            b'"02-Jul-1996 02:44:25 -0700"',
        ),
        (
            datetime(2020, 1, 5, 23, 59, 59, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            b'"05-Jan-2020 23:59:59 +0530"',
        ),
        (
            datetime(2020, 1, 5, 0, 0, 0, tzinfo=timezone(-timedelta(hours=3, minutes=30))),
            b'"05-Jan-2020 00:00:00 -0330"',
        ),
    ],
)
def test_encode_date_time_keeps_the_offset(moment: datetime, expected: bytes) -> None:
    assert encode_date_time(moment) == expected


def test_encode_date_time_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        encode_date_time(datetime(2026, 11, 22))


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        ([1, 2, 3, 4, 5, 7, 9, 10, 11, 12], b"1:5,7,9:12"),
        ([42], b"42"),
        ([3, 1, 2, 2], b"1:3"),
        ([1, 3, 5], b"1,3,5"),
        ([4294967294, 4294967295], b"4294967294:4294967295"),
    ],
)
def test_render_uid_set_compacts_runs(numbers: list[int], expected: bytes) -> None:
    assert render_uid_set(numbers) == expected


def test_render_uid_set_rejects_an_empty_set() -> None:
    with pytest.raises(ValueError):
        render_uid_set([])


@given(st.binary(min_size=0, max_size=2000), st.booleans())
def test_encode_string_round_trips_through_a_decoder_with_nul_as_0x80(value: bytes, utf8: bool) -> None:
    wire = encode_string(value, utf8=utf8)
    decoded, rest = decode_string(wire)
    assert decoded == value.replace(b"\x00", b"\x80")
    assert rest == b""


@given(st.text(max_size=200), st.booleans())
def test_encode_string_quoted_form_never_holds_cr_lf_or_invalid_octets(value: str, utf8: bool) -> None:
    wire = encode_string(value, utf8=utf8)
    if wire.startswith(b'"'):
        assert b"\r" not in wire
        assert b"\n" not in wire
        assert b"\x00" not in wire
        if not utf8:
            assert wire.isascii()


@given(st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=100))
def test_render_uid_set_expands_back_to_the_same_numbers(numbers: list[int]) -> None:
    expanded: set[int] = set()
    for item in render_uid_set(numbers).split(b","):
        first, _, last = item.partition(b":")
        expanded.update(range(int(first), int(last or first) + 1))
    assert expanded == set(numbers)
