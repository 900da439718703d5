"""SMTP server core: greeting, each command, full transcripts, pipelining order, limits."""

from __future__ import annotations

import pytest
from smtp_harness import feed, in_transaction, make_server, message_bytes, ready_server, reply_lines

from kittiwake.proto.smtp.errors import ProtocolError
from kittiwake.proto.smtp.events import (
    DataStart,
    Hello,
    MailFrom,
    MessageAborted,
    MessageChunk,
    MessageEnd,
    Quit,
    RcptTo,
    Reset,
    Vrfy,
)
from kittiwake.proto.smtp.options import ServerExtensions, ServerLimits
from kittiwake.proto.smtp.replies import NO_SERVICE_554, OK_250, RECIPIENT_OK_250, Reply
from kittiwake.proto.smtp.server import SmtpServerConnection
from kittiwake.proto.smtp.states import State


def test_greeting_is_220_with_hostname_and_no_enhanced_code() -> None:
    conn = SmtpServerConnection("mx.test", extensions=ServerExtensions(), limits=ServerLimits())
    conn.greet()
    assert conn.data_to_send() == b"220 mx.test ESMTP\r\n"


def test_refused_greeting_answers_503_to_everything_but_quit() -> None:
    conn = SmtpServerConnection("mx.test", extensions=ServerExtensions(), limits=ServerLimits())
    conn.greet(NO_SERVICE_554)
    assert conn.data_to_send() == b"554 No SMTP service here\r\n"
    events, out = feed(conn, b"EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n")
    assert events == [Quit()]
    assert reply_lines(out)[0].startswith(b"503 5.5.1")
    assert reply_lines(out)[1].startswith(b"503 5.5.1")
    assert reply_lines(out)[2].startswith(b"221 2.0.0")
    assert conn.close_requested


def test_input_before_greet_waits_for_the_greeting() -> None:
    conn = SmtpServerConnection("mx.test", extensions=ServerExtensions(), limits=ServerLimits())
    conn.receive_data(b"NOOP\r\n")
    assert conn.events() == []
    assert conn.data_to_send() == b""
    conn.greet()
    assert conn.data_to_send() == b"220 mx.test ESMTP\r\n250 2.0.0 OK\r\n"


def test_full_session_transcript() -> None:
    conn = make_server()
    events, out = feed(
        conn,
        b"EHLO client.test\r\n"
        b"MAIL FROM:<alice@client.test> SIZE=20 BODY=8BITMIME\r\n"
        b"RCPT TO:<bob@mx.test>\r\n"
        b"RCPT TO:<carol@mx.test>\r\n"
        b"DATA\r\n"
        b"Subject: hi\r\n\r\n..dot\r\n.\r\n"
        b"QUIT\r\n",
    )
    assert [type(e) for e in events] == [
        Hello,
        MailFrom,
        RcptTo,
        RcptTo,
        DataStart,
        MessageChunk,
        MessageEnd,
        Quit,
    ]
    assert message_bytes(events) == b"Subject: hi\r\n\r\n.dot\r\n"
    assert out == (
        b"250-mx.test Hello client.test\r\n"
        b"250-PIPELINING\r\n"
        b"250-SIZE 52428800\r\n"
        b"250-8BITMIME\r\n"
        b"250-SMTPUTF8\r\n"
        b"250-ENHANCEDSTATUSCODES\r\n"
        b"250-CHUNKING\r\n"
        b"250-BINARYMIME\r\n"
        b"250 DSN\r\n"
        b"250 2.1.0 Sender OK\r\n"
        b"250 2.1.5 Recipient OK\r\n"
        b"250 2.1.5 Recipient OK\r\n"
        b"354 End data with <CR><LF>.<CR><LF>\r\n"
        b"250 2.0.0 Message accepted\r\n"
        b"221 2.0.0 mx.test closing connection\r\n"
    )
    assert conn.close_requested


def test_helo_reply_is_single_line_and_disables_esmtp_parameters() -> None:
    conn = make_server()
    events, out = feed(conn, b"HELO client.test\r\nMAIL FROM:<a@b.test> SIZE=10\r\n")
    assert events == [Hello(verb="HELO", domain="client.test")]
    assert out == b"250 mx.test\r\n555 5.5.4 Parameter not recognized or not implemented\r\n"


@pytest.mark.parametrize(
    ("extensions", "present", "absent"),
    [
        (
            ServerExtensions(pipelining=False, chunking=False, dsn=False),
            [],
            [b"PIPELINING", b"CHUNKING", b"DSN"],
        ),
        (ServerExtensions(chunking=False), [b"DSN"], [b"BINARYMIME"]),
        (ServerExtensions(starttls=True), [b"STARTTLS"], [b"REQUIRETLS", b"AUTH"]),
        (
            ServerExtensions(auth_mechanisms=("PLAIN", "LOGIN"), auth_requires_tls=False),
            [b"AUTH PLAIN LOGIN"],
            [],
        ),
        (ServerExtensions(auth_mechanisms=("PLAIN",), auth_requires_tls=True), [], [b"AUTH"]),
    ],
)
def test_ehlo_lists_only_extensions_enabled_at_that_point(
    extensions: ServerExtensions, present: list[bytes], absent: list[bytes]
) -> None:
    conn = make_server(extensions)
    _, out = feed(conn, b"EHLO client.test\r\n")
    keywords = [line[4:] for line in reply_lines(out)[1:]]
    for keyword in present:
        assert keyword in keywords
    for keyword in absent:
        assert not any(k.startswith(keyword) for k in keywords)
    assert b"ENHANCEDSTATUSCODES" in keywords


def test_ehlo_without_domain_is_501_without_enhanced_code() -> None:
    conn = make_server()
    events, out = feed(conn, b"EHLO\r\n")
    assert events == []
    assert out == b"501 Syntax: EHLO hostname\r\n"


def test_session_may_refuse_hello() -> None:
    conn = make_server()
    conn.receive_data(b"EHLO bad.test\r\nMAIL FROM:<a@b.test>\r\n")
    assert conn.events() == [Hello(verb="EHLO", domain="bad.test")]
    conn.send_reply(Reply(code=550, enhanced=None, text="Go away"))
    assert conn.events() == []
    assert conn.data_to_send() == b"550 Go away\r\n503 5.5.1 Send EHLO or HELO first\r\n"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (b"NOOP\r\n", b"250 2.0.0 OK\r\n"),
        (b"NOOP anything\r\n", b"250 2.0.0 OK\r\n"),
        (b"HELP\r\n", b"214 2.0.0 See RFC 5321\r\n"),
        (b"RSET\r\n", b"250 2.0.0 Reset state\r\n"),
        (b"EXPN list\r\n", b"502 5.5.1 Command not implemented\r\n"),
        (b"FROB\r\n", b"500 5.5.1 Command unrecognized\r\n"),
        (b"\r\n", b"500 5.5.1 Command unrecognized\r\n"),
        (b"VRFY bob\r\n", b"252 2.5.0 Cannot VRFY user, but will accept message\r\n"),
        (b"VRFY\r\n", b"501 5.5.2 Syntax: VRFY string\r\n"),
        (b"DATA now\r\n", b"503 5.5.1 Need MAIL before DATA\r\n"),
        (b"quit\r\n", b"221 2.0.0 mx.test closing connection\r\n"),
    ],
)
def test_simple_command_replies(command: bytes, expected: bytes) -> None:
    conn = ready_server()
    _, out = feed(conn, command)
    assert out == expected


def test_vrfy_reaches_the_session() -> None:
    conn = ready_server()
    events, _ = feed(conn, b"VRFY bob\r\n")
    assert events == [Vrfy(argument="bob")]


def test_rset_resets_the_envelope_and_emits_reset() -> None:
    conn = in_transaction()
    events, out = feed(conn, b"RSET\r\nRCPT TO:<c@mx.test>\r\n")
    assert events == [Reset()]
    assert out == b"250 2.0.0 Reset state\r\n503 5.5.1 Need MAIL before RCPT\r\n"


def test_rejected_recipient_does_not_count_for_data() -> None:
    conn = ready_server()
    conn.receive_data(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@mx.test>\r\nDATA\r\n")
    assert [type(e) for e in conn.events()] == [MailFrom]
    conn.send_reply(OK_250)
    assert [type(e) for e in conn.events()] == [RcptTo]
    conn.send_reply(Reply(code=550, enhanced="5.1.1", text="No such user"))
    assert conn.events() == []
    assert reply_lines(conn.data_to_send())[-1] == b"503 5.5.1 Need RCPT before DATA"


def test_pipelined_commands_wait_for_each_answer_in_order() -> None:
    conn = ready_server()
    conn.receive_data(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@mx.test>\r\nRCPT TO:<y@mx.test>\r\nNOOP\r\n")
    assert [type(e) for e in conn.events()] == [MailFrom]
    assert conn.events() == []
    assert conn.data_to_send() == b""
    conn.send_reply(OK_250)
    assert conn.events() == [RcptTo(forward_path="x@mx.test")]
    conn.send_reply(Reply(code=550, enhanced="5.1.1", text="No such user"))
    assert conn.events() == [RcptTo(forward_path="y@mx.test")]
    conn.send_reply(RECIPIENT_OK_250)
    assert conn.data_to_send() == (
        b"250 2.0.0 OK\r\n550 5.1.1 No such user\r\n250 2.1.5 Recipient OK\r\n250 2.0.0 OK\r\n"
    )


def test_bytes_after_data_in_the_same_packet_are_body_only_after_354() -> None:
    conn = in_transaction()
    conn.receive_data(b"DATA\r\nQUIT\r\n.\r\n")
    assert conn.events() == [DataStart(chunking=False)]
    conn.send_reply(Reply(code=554, enhanced="5.5.1", text="No valid recipients"))
    assert [type(e) for e in conn.events()] == [Quit]
    assert conn.data_to_send().startswith(b"554 5.5.1 No valid recipients\r\n221 2.0.0")


def test_bytes_after_data_become_the_message_once_accepted() -> None:
    conn = in_transaction()
    conn.receive_data(b"DATA\r\nQUIT\r\n.\r\n")
    assert conn.events() == [DataStart(chunking=False)]
    conn.accept_data()
    assert conn.events() == [MessageChunk(data=b"QUIT\r\n"), MessageEnd(dot_free=True)]
    assert not conn.close_requested


def test_transaction_ends_after_message_reply() -> None:
    conn = in_transaction()
    _, out = feed(conn, b"DATA\r\nx\r\n.\r\nRCPT TO:<c@mx.test>\r\n")
    assert reply_lines(out)[-1] == b"503 5.5.1 Need MAIL before RCPT"


def test_second_ehlo_resets_the_transaction() -> None:
    conn = in_transaction()
    events, out = feed(conn, b"EHLO again.test\r\nDATA\r\n")
    assert [type(e) for e in events] == [Hello]
    assert reply_lines(out)[-1] == b"503 5.5.1 Need MAIL before DATA"


def test_session_reply_421_requests_close() -> None:
    conn = ready_server()
    conn.receive_data(b"MAIL FROM:<a@b.test>\r\nNOOP\r\n")
    conn.events()
    conn.send_reply(Reply(code=421, enhanced="4.3.2", text="Shutting down"))
    assert conn.close_requested
    assert conn.data_to_send() == b"421 4.3.2 Shutting down\r\n"


@pytest.mark.parametrize(
    ("misuse", "expected"),
    [
        (lambda c: c.send_reply(OK_250), "no reply"),
        (lambda c: c.accept_hello(), "HELLO"),
        (lambda c: c.accept_data(), "DATA_START or CHUNKING_START"),
        (lambda c: c.send_auth_challenge(b""), "AUTH"),
        (lambda c: c.start_tls_done(), "STARTTLS"),
        (lambda c: c.greet(), "twice"),
    ],
)
def test_api_misuse_raises_protocol_error(misuse: object, expected: str) -> None:
    conn = ready_server()
    with pytest.raises(ProtocolError, match=expected):
        misuse(conn)  # type: ignore[operator]


def test_positive_answer_to_hello_through_send_reply_is_misuse() -> None:
    conn = make_server()
    conn.receive_data(b"EHLO client.test\r\n")
    conn.events()
    with pytest.raises(ProtocolError):
        conn.send_reply(OK_250)
    conn.accept_hello()  # the misuse left the Hello pending
    assert conn.data_to_send().startswith(b"250-mx.test")


def test_too_many_recipients_is_452_and_not_passed_on() -> None:
    conn = ready_server(limits=ServerLimits(max_recipients=2))
    events, out = feed(
        conn, b"MAIL FROM:<a@b.test>\r\n" + b"".join(b"RCPT TO:<r%d@mx.test>\r\n" % i for i in range(3))
    )
    assert sum(isinstance(e, RcptTo) for e in events) == 2
    assert reply_lines(out)[-1] == b"452 4.5.3 Too many recipients"


def test_long_command_line_is_500_after_the_line_ends() -> None:
    conn = ready_server()
    _, out = feed(conn, b"NOOP " + b"x" * 600 + b"\r\nNOOP\r\n")
    assert out == b"500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n"


def test_line_exactly_at_the_limit_is_accepted() -> None:
    conn = ready_server()
    _, out = feed(conn, b"NOOP " + b"x" * (512 - 7) + b"\r\n")
    assert out == b"250 2.0.0 OK\r\n"


def test_endless_line_is_discarded_without_buffering() -> None:
    conn = ready_server()
    for _ in range(100):
        conn.receive_data(b"x" * 10_000)
        assert conn.buffered <= 20_000
    _, out = feed(conn, b"\r\nNOOP\r\n")
    assert out == b"500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n"


def test_mail_line_may_exceed_512_with_parameters() -> None:
    conn = ready_server()
    envid = b"e" * 90
    orcpt = b"o" * 400 + b"@mx.test"
    _, out = feed(
        conn,
        b"MAIL FROM:<" + b"a" * 60 + b"@client.test> RET=HDRS ENVID=" + envid + b"\r\n"
        b"RCPT TO:<b@mx.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;" + orcpt + b"\r\n",
    )
    assert out == b"250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n"


@pytest.mark.parametrize("line", [b"NOOP\n", b"NOOP\rRSET\r\n", b"NO\rOP\r\n", b"NOOP\r\r\n"])
def test_bare_cr_or_lf_in_a_command_line_is_refused(line: bytes) -> None:
    conn = ready_server()
    events, out = feed(conn, line)
    assert events == []
    assert out == b"500 5.5.2 Bare CR or LF not allowed\r\n"


def test_bad_command_limit_sends_421_and_closes() -> None:
    conn = ready_server(limits=ServerLimits(max_bad_commands=3))
    _, out = feed(conn, b"FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n")
    assert reply_lines(out) == [
        b"500 5.5.1 Command unrecognized",
        b"500 5.5.1 Command unrecognized",
        b"500 5.5.1 Command unrecognized",
        b"421 4.7.0 Too many errors, closing connection",
    ]
    assert conn.close_requested
    conn.receive_data(b"NOOP\r\n")
    assert conn.data_to_send() == b""


def test_eof_during_data_aborts_the_message() -> None:
    conn = in_transaction()
    feed(conn, b"DATA\r\npartial")
    conn.receive_data(b"")
    assert conn.events() == [MessageAborted(reply=None)]
    assert conn.closed
    assert conn.state is State.CLOSED


def test_eof_after_a_complete_message_does_not_abort_it() -> None:
    conn = in_transaction()
    conn.receive_data(b"DATA\r\n")
    conn.events()
    conn.accept_data()
    conn.receive_data(b"hi\r\n.\r\n")
    assert conn.events()[-1] == MessageEnd(dot_free=True)
    conn.receive_data(b"")
    assert conn.events() == []
    assert conn.closed


def test_eof_between_bdat_chunks_aborts_the_message() -> None:
    conn = in_transaction()
    feed(conn, b"BDAT 2\r\nab")
    conn.receive_data(b"")
    assert conn.events() == [MessageAborted(reply=None)]


def test_implicit_tls_connection_offers_auth_at_once_and_no_starttls() -> None:
    from kittiwake.proto.smtp.options import ServerExtensions as Extensions
    from kittiwake.proto.smtp.server import SmtpServerConnection as Connection

    conn = Connection(
        "mx.test", extensions=Extensions(starttls=True, auth_mechanisms=("PLAIN",)), tls_active=True
    )
    conn.greet()
    conn.receive_data(b"EHLO client\r\n")
    conn.events()
    conn.accept_hello()
    offered = conn.data_to_send()
    assert b"250-AUTH PLAIN\r\n" in offered or b"250 AUTH PLAIN\r\n" in offered
    assert b"STARTTLS" not in offered
