"""SMTP server core: out-of-order commands answered 503 by the core, STARTTLS and AUTH states."""

from __future__ import annotations

import pytest
from smtp_harness import feed, in_transaction, make_server, ready_server, reply_lines

from kittiwake.proto.smtp.events import AuthResponse, AuthStart, Hello, MailFrom, StartTls
from kittiwake.proto.smtp.options import ServerExtensions
from kittiwake.proto.smtp.replies import AUTH_FAILED_535, AUTH_SUCCEEDED_235, OK_250, Reply
from kittiwake.proto.smtp.server import SmtpServerConnection
from kittiwake.proto.smtp.states import ALLOWED_VERBS, State

TLS_AND_AUTH = ServerExtensions(starttls=True, auth_mechanisms=("PLAIN", "LOGIN"), auth_requires_tls=False)


@pytest.mark.parametrize(
    ("setup", "command", "expected"),
    [
        (b"", b"MAIL FROM:<a@b.test>", b"503 5.5.1 Send EHLO or HELO first"),
        (b"", b"RCPT TO:<a@b.test>", b"503 5.5.1 Need MAIL before RCPT"),
        (b"EHLO c.test\r\n", b"RCPT TO:<a@b.test>", b"503 5.5.1 Need MAIL before RCPT"),
        (b"EHLO c.test\r\n", b"DATA", b"503 5.5.1 Need MAIL before DATA"),
        (b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n", b"DATA", b"503 5.5.1 Need RCPT before DATA"),
        (
            b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n",
            b"MAIL FROM:<a@b.test>",
            b"503 5.5.1 Sender already specified",
        ),
        (
            b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n",
            b"MAIL FROM:<a@b.test>",
            b"503 5.5.1 Sender already specified",
        ),
        (b"", b"STARTTLS", b"503 5.5.1 Send EHLO first"),
        (
            b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n",
            b"STARTTLS",
            b"503 5.5.1 STARTTLS not allowed during a mail transaction",
        ),
        (b"", b"AUTH PLAIN", b"503 5.5.1 Send EHLO first"),
        (b"HELO c.test\r\n", b"AUTH PLAIN", b"503 5.5.1 Send EHLO first"),
        (
            b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n",
            b"AUTH PLAIN",
            b"503 5.5.1 AUTH not allowed during a mail transaction",
        ),
        (
            b"EHLO c.test\r\nAUTH PLAIN AGEAYg==\r\n",
            b"AUTH PLAIN AGEAYg==",
            b"503 5.5.1 Already authenticated",
        ),
        (
            b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nBDAT 1\r\nx",
            b"DATA",
            b"503 5.5.1 DATA not allowed after BDAT",
        ),
        (
            b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nBDAT 1\r\nx",
            b"MAIL FROM:<a@b.test>",
            b"503 5.5.1 Sender already specified",
        ),
        (b"EHLO c.test\r\n", b"BDAT 0 LAST", b"503 5.5.1 Need MAIL before BDAT"),
        (
            b"EHLO c.test\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\nRCPT TO:<c@d.test>\r\n",
            b"DATA",
            b"503 5.5.1 BINARYMIME requires BDAT",
        ),
    ],
)
def test_out_of_sequence_command_is_answered_503_by_the_core(
    setup: bytes, command: bytes, expected: bytes
) -> None:
    conn = make_server(TLS_AND_AUTH)
    feed(conn, setup)
    events, out = feed(conn, command + b"\r\n")
    assert events == []
    assert reply_lines(out) == [expected]


def test_every_state_of_the_table_refuses_unlisted_verbs() -> None:
    verbs = {
        "HELO",
        "EHLO",
        "MAIL",
        "RCPT",
        "DATA",
        "RSET",
        "NOOP",
        "QUIT",
        "VRFY",
        "HELP",
        "STARTTLS",
        "AUTH",
    }
    for state, allowed in ALLOWED_VERBS.items():
        for verb in verbs - allowed:
            conn = make_server(TLS_AND_AUTH)
            conn._state = state
            conn.receive_data(verb.encode() + b" x\r\n")
            assert conn.events() == [], (state, verb)
            assert conn.data_to_send().startswith(b"503 5.5.1"), (state, verb)


def test_starttls_discards_pipelined_plaintext_and_requires_new_ehlo() -> None:
    conn = make_server(TLS_AND_AUTH)
    feed(conn, b"EHLO c.test\r\n")
    conn.receive_data(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
    assert conn.events() == [StartTls()]
    conn.accept_starttls()
    assert conn.data_to_send() == b"220 2.0.0 Ready to start TLS\r\n"
    assert conn.state is State.TLS
    assert conn.buffered == 0
    conn.start_tls_done()
    assert conn.tls_active
    events, out = feed(conn, b"MAIL FROM:<a@b.test>\r\n")
    assert events == []
    assert out == b"503 5.5.1 Send EHLO or HELO first\r\n"
    events, out = feed(conn, b"EHLO c.test\r\n")
    assert events == [Hello(verb="EHLO", domain="c.test")]
    assert b"STARTTLS" not in out
    assert out.endswith(b"250 REQUIRETLS\r\n")


def test_starttls_refused_by_session_keeps_plaintext_state() -> None:
    conn = ready_server(TLS_AND_AUTH)
    conn.receive_data(b"STARTTLS\r\nNOOP\r\n")
    assert conn.events() == [StartTls()]
    conn.send_reply(Reply(code=454, enhanced="4.7.0", text="TLS not available"))
    assert conn.data_to_send() == b"454 4.7.0 TLS not available\r\n250 2.0.0 OK\r\n"


def test_starttls_twice_is_503() -> None:
    conn = ready_server(TLS_AND_AUTH)
    feed(conn, b"STARTTLS\r\n")
    conn.start_tls_done()
    feed(conn, b"EHLO c.test\r\n")
    _, out = feed(conn, b"STARTTLS\r\n")
    assert out == b"503 5.5.1 TLS already active\r\n"


def test_starttls_not_offered_is_502() -> None:
    conn = ready_server()
    _, out = feed(conn, b"STARTTLS\r\n")
    assert out == b"502 5.5.1 Command not implemented\r\n"


def test_starttls_with_argument_is_501() -> None:
    conn = ready_server(TLS_AND_AUTH)
    _, out = feed(conn, b"STARTTLS now\r\n")
    assert out == b"501 5.5.2 Syntax: STARTTLS\r\n"


def test_auth_with_initial_response_reaches_session_decoded() -> None:
    conn = ready_server(TLS_AND_AUTH)
    conn.receive_data(b"AUTH plain AHVzZXIAcGFzcw==\r\n")
    assert conn.events() == [AuthStart(mechanism="PLAIN", initial_response=b"\x00user\x00pass")]
    conn.send_reply(AUTH_SUCCEEDED_235)
    assert conn.authenticated
    assert conn.data_to_send() == b"235 2.7.0 Authentication succeeded\r\n"


def test_auth_equals_is_empty_initial_response() -> None:
    conn = ready_server(TLS_AND_AUTH)
    conn.receive_data(b"AUTH PLAIN =\r\n")
    assert conn.events() == [AuthStart(mechanism="PLAIN", initial_response=b"")]


def test_auth_login_challenge_exchange() -> None:
    conn = ready_server(TLS_AND_AUTH)
    conn.receive_data(b"AUTH LOGIN\r\n")
    assert conn.events() == [AuthStart(mechanism="LOGIN", initial_response=None)]
    conn.send_auth_challenge(b"Username:")
    assert conn.data_to_send() == b"334 VXNlcm5hbWU6\r\n"
    conn.receive_data(b"dXNlcg==\r\n")
    assert conn.events() == [AuthResponse(data=b"user")]
    conn.send_auth_challenge(b"Password:")
    assert conn.data_to_send() == b"334 UGFzc3dvcmQ6\r\n"
    conn.receive_data(b"cGFzcw==\r\nNOOP\r\n")
    assert conn.events() == [AuthResponse(data=b"pass")]
    conn.send_reply(AUTH_FAILED_535)
    assert not conn.authenticated
    assert conn.data_to_send() == b"535 5.7.8 Authentication credentials invalid\r\n250 2.0.0 OK\r\n"


@pytest.mark.parametrize(
    ("response", "expected"),
    [(b"*", b"501 5.0.0 Authentication cancelled"), (b"not base64!", b"501 5.5.2 Invalid base64 data")],
)
def test_sasl_response_cancel_or_garbage_ends_the_exchange(response: bytes, expected: bytes) -> None:
    conn = ready_server(TLS_AND_AUTH)
    conn.receive_data(b"AUTH LOGIN\r\n")
    conn.events()
    conn.send_auth_challenge(b"Username:")
    conn.data_to_send()
    events, out = feed(conn, response + b"\r\nNOOP\r\n")
    assert events == []
    assert reply_lines(out) == [expected, b"250 2.0.0 OK"]
    assert conn.state is State.READY


@pytest.mark.parametrize(
    ("extensions", "command", "expected"),
    [
        (TLS_AND_AUTH, b"AUTH CRAM-MD5", b"504 5.5.4 Unrecognized authentication type"),
        (TLS_AND_AUTH, b"AUTH PLAIN %%%", b"501 5.5.2 Invalid base64 data"),
        (TLS_AND_AUTH, b"AUTH", b"501 5.5.2 Syntax: AUTH mechanism [initial-response]"),
        (ServerExtensions(), b"AUTH PLAIN", b"502 5.5.1 Command not implemented"),
        (
            ServerExtensions(auth_mechanisms=("PLAIN",)),
            b"AUTH PLAIN",
            b"538 5.7.11 Encryption required for requested authentication mechanism",
        ),
    ],
)
def test_auth_errors(extensions: ServerExtensions, command: bytes, expected: bytes) -> None:
    conn = ready_server(extensions)
    events, out = feed(conn, command + b"\r\n")
    assert events == []
    assert reply_lines(out) == [expected]


def test_auth_is_offered_and_accepted_after_tls_when_required() -> None:
    extensions = ServerExtensions(starttls=True, auth_mechanisms=("PLAIN",), auth_requires_tls=True)
    conn = ready_server(extensions)
    feed(conn, b"STARTTLS\r\n")
    conn.start_tls_done()
    _, out = feed(conn, b"EHLO c.test\r\n")
    assert b"250-AUTH PLAIN\r\n" in out
    events, _ = feed(conn, b"AUTH PLAIN =\r\n")
    assert [type(e) for e in events] == [AuthStart]


def test_mail_before_auth_is_530_when_auth_is_required() -> None:
    extensions = ServerExtensions(auth_mechanisms=("PLAIN",), auth_requires_tls=False, auth_required=True)
    conn = ready_server(extensions)
    events, out = feed(conn, b"MAIL FROM:<a@b.test>\r\n")
    assert events == []
    assert out == b"530 5.7.0 Authentication required\r\n"
    feed(conn, b"AUTH PLAIN AGEAYg==\r\n")
    events, out = feed(conn, b"MAIL FROM:<a@b.test>\r\n")
    assert [type(e) for e in events] == [MailFrom]


def test_auth_parameter_on_mail_is_kept_xtext_decoded() -> None:
    conn = ready_server(TLS_AND_AUTH)
    events, _ = feed(conn, b"MAIL FROM:<a@b.test> AUTH=e+3Dmc2@example.com\r\n")
    assert isinstance(events[0], MailFrom)
    assert events[0].params.auth == "e=mc2@example.com"


def test_tls_resets_authentication() -> None:
    conn = ready_server(TLS_AND_AUTH)
    feed(conn, b"AUTH PLAIN AGEAYg==\r\n")
    assert conn.authenticated
    feed(conn, b"STARTTLS\r\n")
    conn.start_tls_done()
    assert not conn.authenticated


def test_in_transaction_helper_is_in_rcpt_state() -> None:
    conn: SmtpServerConnection = in_transaction()
    assert conn.state is State.RCPT
    conn.receive_data(b"NOOP\r\n")
    assert conn.data_to_send() == OK_250.serialize()
