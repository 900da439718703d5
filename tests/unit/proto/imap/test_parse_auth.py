"""Parsing of any-state and authentication commands: CAPABILITY NOOP LOGOUT STARTTLS AUTHENTICATE LOGIN ENABLE
ID COMPRESS, plus tags and command names."""

from __future__ import annotations

import pytest

from kittiwake.proto.imap.commands import (
    Authenticate,
    Capability,
    Command,
    Compress,
    Enable,
    Id,
    Login,
    Logout,
    Namespace,
    Noop,
    StartTls,
)
from kittiwake.proto.imap.errors import ParseError
from kittiwake.proto.imap.parser import parse_command
from kittiwake.proto.imap.receiver import ImapReceiver, Literal, RawCommand, StreamedLiteral


def parse(data: bytes) -> Command:
    receiver = ImapReceiver()
    receiver.receive_data(data)
    raw = [event for event in receiver.events() if isinstance(event, RawCommand)]
    assert len(raw) == 1
    return parse_command(raw[0])


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a1 CAPABILITY\r\n", Capability(tag="a1")),
        (b"a2 noop\r\n", Noop(tag="a2")),
        (b"A3 LOGOUT\r\n", Logout(tag="A3")),
        (b"a4 STARTTLS\r\n", StartTls(tag="a4")),
        (b"a5 NAMESPACE\r\n", Namespace(tag="a5")),
        (b"a6 AUTHENTICATE plain\r\n", Authenticate(tag="a6", mechanism="PLAIN")),
        (
            b"a7 AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0\r\n",
            Authenticate(tag="a7", mechanism="PLAIN", initial_response=b"AGZyZWQAc2VjcmV0"),
        ),
        (
            b"a8 AUTHENTICATE EXTERNAL =\r\n",
            Authenticate(tag="a8", mechanism="EXTERNAL", initial_response=b""),
        ),
        (
            b"a9 AUTHENTICATE SCRAM-SHA-256 biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM\r\n",
            Authenticate(
                tag="a9",
                mechanism="SCRAM-SHA-256",
                initial_response=b"biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM",
            ),
        ),
        (b"b1 LOGIN fred secret\r\n", Login(tag="b1", username=b"fred", password=b"secret")),
        (b'b2 LOGIN "fred" "se\\"c\\\\ret"\r\n', Login(tag="b2", username=b"fred", password=b'se"c\\ret')),
        (
            b"b3 LOGIN {4+}\r\nfred {5+}\r\np w\xc3\xa9\r\n",
            Login(tag="b3", username=b"fred", password=b"p w\xc3\xa9"),
        ),
        (b'b4 LOGIN "" ""\r\n', Login(tag="b4", username=b"", password=b"")),
        (b"b5 LOGIN user]x pass\r\n", Login(tag="b5", username=b"user]x", password=b"pass")),
        (b"c1 ENABLE CONDSTORE\r\n", Enable(tag="c1", capabilities=("CONDSTORE",))),
        (b"c2 ENABLE qresync IMAP4rev2\r\n", Enable(tag="c2", capabilities=("QRESYNC", "IMAP4REV2"))),
        (b"d1 ID NIL\r\n", Id(tag="d1", parameters=None)),
        (b"d2 ID ()\r\n", Id(tag="d2", parameters=())),
        (
            b'd3 ID ("name" "Thunderbird" "version" NIL)\r\n',
            Id(tag="d3", parameters=(("name", "Thunderbird"), ("version", None))),
        ),
        (b"e1 COMPRESS deflate\r\n", Compress(tag="e1", mechanism="DEFLATE")),
    ],
)
def test_valid_command_parses(line: bytes, expected: Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        b"a1 CAPABILITY extra\r\n",
        b"a1 NOOP \r\n",
        b"a1 FROB\r\n",
        b"a1\r\n",
        b"a1 UID NOOP\r\n",
        b"a1 AUTHENTICATE\r\n",
        b"a1 AUTHENTICATE PLAIN not*base64\r\n",
        b"a1 AUTHENTICATE PLAIN abc\r\n",
        b"a1 AUTHENTICATE PLAIN = x\r\n",
        b"a1 LOGIN fred\r\n",
        b"a1 LOGIN fred  secret\r\n",
        b'a1 LOGIN "fred secret\r\n',
        b"a1 LOGIN (fred) secret\r\n",
        b"a1 ENABLE\r\n",
        b'a1 ID ("name")\r\n',
        b"a1 ID\r\n",
        b"a1 COMPRESS\r\n",
    ],
)
def test_grammar_error_is_parse_error_with_the_tag(line: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse(line)
    assert caught.value.tag == "a1"


@pytest.mark.parametrize("tag", [b"a+1", b"a*", b"(a", b'"a"', b"a%b", b"a\\b", b"\xc3\xa9"])
def test_invalid_tag_is_an_untagged_parse_error(tag: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse_command(RawCommand(tag=tag, name=b"NOOP", args=(b"",)))
    assert caught.value.tag == "*"


def test_tag_may_contain_bracket_and_dots() -> None:
    assert parse(b"a]1.2 NOOP\r\n") == Noop(tag="a]1.2")


def test_streamed_literal_outside_append_is_a_parse_error() -> None:
    raw = RawCommand(tag=b"a1", name=b"LOGIN", args=(b" x ", StreamedLiteral(index=0, size=1), b""))
    with pytest.raises(ParseError):
        parse_command(raw)


@pytest.mark.parametrize(
    "args",
    [(), (Literal(data=b"x"),), (b" ", b"x"), (b" ", Literal(data=b"x"), Literal(data=b"y"))],
)
def test_malformed_argument_tuple_is_a_parse_error(args: tuple[bytes | Literal, ...]) -> None:
    with pytest.raises(ParseError):
        parse_command(RawCommand(tag=b"a1", name=b"LOGIN", args=args))
