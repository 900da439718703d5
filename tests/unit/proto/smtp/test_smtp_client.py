"""SMTP client core: reply parsing, capabilities, pipelining, and a dialogue against the server core."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smtp_harness import accept_everything, pump

from kittiwake.proto.smtp.client import (
    Capabilities,
    DotStuffer,
    Greeting,
    ReplyReceived,
    SmtpClientConnection,
    has_dot_line,
    stuff_message,
)
from kittiwake.proto.smtp.errors import ProtocolError
from kittiwake.proto.smtp.events import Event, MessageChunk, MessageEnd, RcptTo
from kittiwake.proto.smtp.options import ServerExtensions, ServerLimits
from kittiwake.proto.smtp.replies import Reply
from kittiwake.proto.smtp.server import SmtpServerConnection


def connect(extensions: ServerExtensions | None = None) -> tuple[SmtpClientConnection, SmtpServerConnection]:
    server = SmtpServerConnection(
        "mx.test", extensions=extensions or ServerExtensions(), limits=ServerLimits()
    )
    server.greet()
    client = SmtpClientConnection()
    client.receive_data(server.data_to_send())
    return client, server


def exchange(client: SmtpClientConnection, server: SmtpServerConnection, events: list[Event]) -> None:
    """Shuttle bytes both ways until neither side has anything to say."""
    while True:
        to_server = client.data_to_send()
        if to_server:
            server.receive_data(to_server)
        events += pump(server, accept_everything)
        to_client = server.data_to_send()
        if to_client:
            client.receive_data(to_client)
        if not to_server and not to_client:
            return


def test_greeting_then_ehlo_capabilities() -> None:
    client, server = connect(ServerExtensions(auth_mechanisms=("PLAIN", "LOGIN"), auth_requires_tls=False))
    assert client.events() == [Greeting(reply=Reply(code=220, enhanced=None, text="mx.test ESMTP"))]
    client.ehlo("client.test")
    exchange(client, server, [])
    assert client.capabilities == Capabilities(
        pipelining=True,
        size=52428800,
        chunking=True,
        binarymime=True,
        smtputf8=True,
        eightbitmime=True,
        dsn=True,
        enhancedstatuscodes=True,
        auth_mechanisms=frozenset({"PLAIN", "LOGIN"}),
    )


def test_pipelined_transaction_against_the_server() -> None:
    client, server = connect()
    client.ehlo("client.test")
    exchange(client, server, [])
    client.events()
    client.mail("a@client.test", ["SIZE=30"])
    client.rcpt("b@mx.test")
    client.rcpt("c@mx.test", ["NOTIFY=NEVER"])
    client.data()
    first_flight = client.data_to_send()
    # RFC 2920 §3.1: MAIL, RCPT, RCPT and DATA go out as one group.
    assert first_flight == (
        b"MAIL FROM:<a@client.test> SIZE=30\r\n"
        b"RCPT TO:<b@mx.test>\r\n"
        b"RCPT TO:<c@mx.test> NOTIFY=NEVER\r\n"
        b"DATA\r\n"
    )
    server_events: list[Event] = []
    server.receive_data(first_flight)
    client.send_message(b".hidden\r\nbody\r\n..two")
    exchange(client, server, server_events)
    received = b"".join(e.data for e in server_events if isinstance(e, MessageChunk))
    assert received == b".hidden\r\nbody\r\n..two\r\n"
    assert isinstance(server_events[-1], MessageEnd)
    assert [(e.command, e.reply.code) for e in client.events() if isinstance(e, ReplyReceived)] == [
        ("MAIL", 250),
        ("RCPT", 250),
        ("RCPT", 250),
        ("DATA", 354),
        ("MESSAGE", 250),
    ]
    client.quit()
    exchange(client, server, [])
    assert server.close_requested
    assert client.idle


def test_without_pipelining_commands_go_one_at_a_time() -> None:
    client, server = connect(ServerExtensions(pipelining=False))
    client.ehlo("client.test")
    exchange(client, server, [])
    client.mail("a@client.test")
    client.rcpt("b@mx.test")
    assert client.data_to_send() == b"MAIL FROM:<a@client.test>\r\n"
    assert client.data_to_send() == b""
    client.receive_data(b"250 2.1.0 OK\r\n")
    assert client.data_to_send() == b"RCPT TO:<b@mx.test>\r\n"


def test_nothing_follows_data_until_its_reply() -> None:
    client = SmtpClientConnection()
    client.receive_data(b"220 mx.test ESMTP\r\n")
    client.ehlo("c.test")
    client.receive_data(b"250-mx.test\r\n250 PIPELINING\r\n")
    client.data_to_send()
    client.mail("a@b.test")
    client.rcpt("c@d.test")
    client.data()
    client.rset()
    assert client.data_to_send() == b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
    client.receive_data(b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n554 5.5.0 No\r\n")
    assert client.data_to_send() == b"RSET\r\n"


def test_message_body_dropped_when_data_refused() -> None:
    client = SmtpClientConnection()
    client.receive_data(b"220 mx.test\r\n")
    client.data()
    client.send_message(b"hello\r\n")
    assert client.data_to_send() == b"DATA\r\n"
    client.receive_data(b"503 5.5.1 Need MAIL\r\n")
    assert client.data_to_send() == b""
    assert client.idle


def test_bdat_chunks_against_the_server() -> None:
    client, server = connect()
    client.ehlo("client.test")
    exchange(client, server, [])
    client.mail("a@client.test", ["BODY=BINARYMIME"])
    client.rcpt("b@mx.test")
    client.bdat(b"\x00\x01\n")
    client.bdat(b"end\r", last=True)
    events: list[Event] = []
    exchange(client, server, events)
    assert b"".join(e.data for e in events if isinstance(e, MessageChunk)) == b"\x00\x01\nend\r"
    assert isinstance(events[-1], MessageEnd)
    replies = [(e.command, e.reply.code) for e in client.events() if isinstance(e, ReplyReceived)]
    assert replies[-2:] == [("BDAT", 250), ("BDAT", 250)]


def test_auth_plain_against_the_server() -> None:
    client, server = connect(ServerExtensions(auth_mechanisms=("PLAIN",), auth_requires_tls=False))
    client.ehlo("client.test")
    client.auth_plain("user", "secret")
    events: list[Event] = []
    exchange(client, server, events)
    assert server.authenticated
    assert client.events()[-1] == ReplyReceived(
        command="AUTH", reply=Reply(code=235, enhanced="2.7.0", text="Authentication succeeded")
    )


def test_starttls_discards_bytes_after_220_and_forgets_capabilities() -> None:
    client = SmtpClientConnection()
    client.receive_data(b"220 mx.test\r\n")
    client.ehlo("c.test")
    client.receive_data(b"250-mx.test\r\n250 STARTTLS\r\n")
    client.starttls()
    client.mail("a@b.test")
    assert client.data_to_send() == b"EHLO c.test\r\nSTARTTLS\r\n"
    client.receive_data(b"220 2.0.0 Go ahead\r\n250 2.0.0 injected\r\n")
    assert client.data_to_send() == b""
    client.start_tls_done()
    assert client.capabilities is None
    assert client.data_to_send() == b"MAIL FROM:<a@b.test>\r\n"


def test_recipient_refusal_reaches_the_client_in_order() -> None:
    client, server = connect()
    client.ehlo("client.test")
    exchange(client, server, [])
    client.events()
    client.mail("a@client.test")
    client.rcpt("bad@mx.test")
    client.rcpt("good@mx.test")

    def refuse_bad(conn: SmtpServerConnection, event: Event) -> None:
        if isinstance(event, RcptTo) and event.forward_path.startswith("bad"):
            conn.send_reply(Reply(code=550, enhanced="5.1.1", text="No such user"))
        else:
            accept_everything(conn, event)

    server.receive_data(client.data_to_send())
    pump(server, refuse_bad)
    client.receive_data(server.data_to_send())
    assert [(e.command, e.reply.code) for e in client.events() if isinstance(e, ReplyReceived)] == [
        ("MAIL", 250),
        ("RCPT", 550),
        ("RCPT", 250),
    ]


@pytest.mark.parametrize(
    ("wire", "reply"),
    [
        (b"250 OK\r\n", Reply(code=250, enhanced=None, text="OK")),
        (b"250\r\n", Reply(code=250, enhanced=None, text="")),
        (b"550 5.1.1 No such user\r\n", Reply(code=550, enhanced="5.1.1", text="No such user")),
        (b"250-2.0.0 one\r\n250 2.0.0 two\r\n", Reply(code=250, enhanced="2.0.0", text="one\ntwo")),
        (b"250-first\n250 last\n", Reply(code=250, enhanced=None, text="first\nlast")),
    ],
)
def test_reply_parsing(wire: bytes, reply: Reply) -> None:
    client = SmtpClientConnection()
    client.receive_data(wire)
    assert client.events() == [Greeting(reply=reply)]


@pytest.mark.parametrize(
    "wire", [b"hello\r\n", b"250-a\r\n251 b\r\n", b"2500 x\r\n", b"600 x\r\n", b"220 a\r\n220 b\r\n"]
)
def test_malformed_or_unexpected_reply_raises_protocol_error(wire: bytes) -> None:
    client = SmtpClientConnection()
    with pytest.raises(ProtocolError):
        client.receive_data(wire)


def test_endless_reply_line_raises_protocol_error() -> None:
    client = SmtpClientConnection()
    with pytest.raises(ProtocolError):
        for _ in range(20):
            client.receive_data(b"2" * 10_000)


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b".a\r\n.\r\n", b"..a\r\n..\r\n.\r\n"),
        (b"x\r\n..y\r\n", b"x\r\n...y\r\n.\r\n"),
    ],
)
def test_stuff_message(message: bytes, wire: bytes) -> None:
    assert stuff_message(message) == wire


@pytest.mark.parametrize("message", [b"a\nb\r\n", b"a\rb\r\n", b"a\r"])
def test_stuff_message_refuses_bare_line_endings(message: bytes) -> None:
    with pytest.raises(ProtocolError):
        stuff_message(message)


def _stuffed_line_by_line(message: bytes) -> bytes:
    """RFC 5321 §4.5.2 spelt out one line at a time, to check the chunked stuffer against."""
    lines = message.split(b"\r\n")
    if lines[-1] == b"":
        lines.pop()
    return b"".join((b"." if line.startswith(b".") else b"") + line + b"\r\n" for line in lines) + b".\r\n"


@given(
    lines=st.lists(st.sampled_from([b"", b".", b"..", b".x", b"x.", b"ab", b"\xff."]), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=8),
)
def test_stuffing_in_pieces_equals_stuffing_line_by_line(lines: list[bytes], cuts: list[int]) -> None:
    message = b"".join(line + b"\r\n" for line in lines)
    stuffer = DotStuffer()
    points = sorted({min(cut, len(message)) for cut in cuts} | {0, len(message)})
    wire = b"".join(stuffer.feed(message[a:b]) for a, b in itertools.pairwise(points))
    assert wire + stuffer.end() == _stuffed_line_by_line(message) == stuff_message(message)


@given(
    message=st.binary(max_size=40).map(lambda b: b.replace(b"a", b"\r").replace(b"b", b"\n")),
    cut=st.integers(min_value=0, max_value=40),
)
def test_bare_line_endings_are_found_across_piece_borders(message: bytes, cut: int) -> None:
    bare = message.replace(b"\r\n", b"").count(b"\r") + message.replace(b"\r\n", b"").count(b"\n") > 0
    stuffer = DotStuffer()
    try:
        stuffer.feed(message[:cut])
        stuffer.feed(message[cut:])
        stuffer.end()
    except ProtocolError:
        assert bare
    else:
        assert not bare


@pytest.mark.parametrize(
    ("pieces", "wire"),
    [
        ((b"a\r", b"\n.b\r\n"), b"a\r\n..b\r\n.\r\n"),  # the CRLF before the dot spans the border
        ((b"a\r\n", b".b\r\n"), b"a\r\n..b\r\n.\r\n"),  # the dot starts the next piece
        ((b"a\r\n.", b"b\r\n"), b"a\r\n..b\r\n.\r\n"),
        ((b"a\r", b"\n", b".", b"\r\n"), b"a\r\n..\r\n.\r\n"),
        ((b"", b".", b""), b"..\r\n.\r\n"),  # no CRLF at the end: one is added before the terminator
    ],
)
def test_stuffer_carries_line_state_across_pieces(pieces: tuple[bytes, ...], wire: bytes) -> None:
    stuffer = DotStuffer()
    assert b"".join(stuffer.feed(piece) for piece in pieces) + stuffer.end() == wire


def test_a_stuffer_told_the_line_endings_were_checked_still_stuffs_but_does_not_count() -> None:
    stuffer = DotStuffer(line_endings_checked=True)
    assert stuffer.feed(b".a\r\nb\nc\r") + stuffer.feed(b"\n.d\r\n") + stuffer.end() == (
        b"..a\r\nb\nc\r\n..d\r\n.\r\n"  # the bare LF is the caller's word against ours
    )


def test_a_stuffer_told_no_line_begins_with_a_period_sends_each_piece_as_it_is() -> None:
    stuffer = DotStuffer(line_endings_checked=True, dot_free=True)
    piece = b"a\r\nb\r"
    assert stuffer.feed(piece) is piece  # not even copied
    assert stuffer.feed(b"\nc") == b"\nc"
    assert stuffer.end() == b"\r\n.\r\n"  # the line state is still kept for the terminator


def test_a_stuffer_told_no_line_begins_with_a_period_still_refuses_a_bare_line_feed() -> None:
    with pytest.raises(ProtocolError):
        DotStuffer(dot_free=True).feed(b"a\nb\r\n")


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b".a\r\n", True), (b"a\r\n.b\r\n", True), (b"a.b\r\n", False), (b"a\r\n", False), (b"", False)],
)
def test_has_dot_line_finds_a_line_beginning_with_a_period(data: bytes, expected: bool) -> None:
    assert has_dot_line(data) is expected


def test_streamed_body_after_354_against_the_server() -> None:
    client, server = connect()
    client.ehlo("client.test")
    exchange(client, server, [])
    client.mail("a@client.test")
    client.rcpt("b@mx.test")
    client.data()
    events: list[Event] = []
    exchange(client, server, events)
    replies = [(e.command, e.reply.code) for e in client.events() if isinstance(e, ReplyReceived)]
    assert replies[-1] == ("DATA", 354)
    for piece in (b"Subject: x\r\n\r\n.one\r", b"\n.two\r\n", b"three"):
        client.send_message_chunk(piece)
    client.end_message()
    exchange(client, server, events)
    received = b"".join(e.data for e in events if isinstance(e, MessageChunk))
    assert received == b"Subject: x\r\n\r\n.one\r\n.two\r\nthree\r\n"
    assert [(e.command, e.reply.code) for e in client.events() if isinstance(e, ReplyReceived)] == [
        ("MESSAGE", 250)
    ]


def test_streamed_body_before_354_is_a_misuse() -> None:
    client = SmtpClientConnection()
    client.receive_data(b"220 mx.test\r\n")
    client.data()
    with pytest.raises(ProtocolError):
        client.send_message_chunk(b"hello\r\n")
    with pytest.raises(ProtocolError):
        client.end_message()


def test_an_empty_line_in_the_ehlo_reply_is_ignored() -> None:
    from kittiwake.proto.smtp.client import Capabilities

    caps = Capabilities.parse(["PIPELINING", "SIZE 1000", ""])  # Postfix's smtp-sink ends with "250 "
    assert caps.pipelining and caps.size == 1000
