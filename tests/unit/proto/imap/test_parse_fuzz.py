"""Property tests: whatever the client sends, framing and parsing only produce events, commands or ParseError."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.proto.imap.commands import Command
from kittiwake.proto.imap.errors import ParseError
from kittiwake.proto.imap.parser import parse_command
from kittiwake.proto.imap.receiver import ContinuationNeeded, ImapReceiver, RawCommand

NAMES = [
    b"CAPABILITY", b"NOOP", b"LOGOUT", b"STARTTLS", b"AUTHENTICATE", b"LOGIN", b"ENABLE", b"SELECT", b"EXAMINE",
    b"CREATE", b"DELETE", b"RENAME", b"SUBSCRIBE", b"UNSUBSCRIBE", b"LIST", b"LSUB", b"NAMESPACE", b"STATUS",
    b"APPEND", b"IDLE", b"CHECK", b"CLOSE", b"UNSELECT", b"EXPUNGE", b"SEARCH", b"FETCH", b"STORE", b"COPY",
    b"MOVE", b"ID", b"GETQUOTA", b"GETQUOTAROOT", b"SETQUOTA", b"SORT", b"THREAD", b"COMPRESS", b"UID FETCH",
    b"UID SEARCH", b"UID STORE", b"UID EXPUNGE", b"UID MOVE", b"UID SORT", b"UID THREAD",
]  # fmt: skip
TOKENS = [
    b" ", b"(", b")", b"[", b"]", b"<", b">", b".", b'"', b"\\", b"*", b"%", b"$", b":", b",", b"1", b"0", b"42",
    b"INBOX", b"NIL", b"FLAGS", b"BODY", b"BODY.PEEK", b"HEADER.FIELDS", b"MIME", b"TEXT", b"UID", b"NOT", b"OR",
    b"ALL", b"CHARSET", b"UTF-8", b"RETURN", b"MODSEQ", b"QRESYNC", b"CONDSTORE", b"CHANGEDSINCE", b"VANISHED",
    b"UNCHANGEDSINCE", b"+FLAGS", b"\\Seen", b"SINCE", b"1-Feb-1994", b"USE", b"STATUS", b"MESSAGES", b"UTF8",
    b"{3}\r\nabc", b"{2+}\r\nxy", b"~{1+}\r\n\x00", b"&AGE-", b"\xc3\xa9", b"\x00", b"\r\n",
]  # fmt: skip


def run(data: bytes, *, utf8: bool) -> list[Command]:
    receiver = ImapReceiver(max_line=200, max_literal=50, max_command=400, max_message=50)
    receiver.receive_data(data)
    parsed: list[Command] = []
    for event in receiver.events():
        assert not isinstance(event, ContinuationNeeded) or event.size <= 50
        if isinstance(event, RawCommand):
            with contextlib.suppress(ParseError):
                parsed.append(parse_command(event, utf8=utf8))
    return parsed


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(NAMES), st.lists(st.sampled_from(TOKENS), max_size=25), st.booleans())
def test_token_soup_commands_parse_or_raise_parse_error(name: bytes, tokens: list[bytes], utf8: bool) -> None:
    run(b"t1 " + name + b" " + b"".join(tokens) + b"\r\n", utf8=utf8)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes, utf8: bool) -> None:
    run(data, utf8=utf8)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(NAMES),
    st.lists(st.one_of(st.binary(max_size=10), st.sampled_from([b"(", b")", b" ", b"[", b"]"])), max_size=12),
)
def test_raw_commands_with_any_arguments_parse_or_raise_parse_error(name: bytes, pieces: list[bytes]) -> None:
    head, _, sub = name.partition(b" ")
    args = b" " + sub + b" " + b"".join(pieces) if sub else b" " + b"".join(pieces)
    with contextlib.suppress(ParseError):
        parse_command(RawCommand(tag=b"t1", name=head, args=(args,)))
