"""MAIL/RCPT paths and ESMTP parameters, through the server (bytes in, replies out) and the parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smtp_harness import feed, ready_server

from kittiwake.proto.smtp import command_line
from kittiwake.proto.smtp.errors import CommandError
from kittiwake.proto.smtp.events import MailFrom, MailParams, OriginalRecipient, RcptParams, RcptTo
from kittiwake.proto.smtp.options import ServerExtensions

ALL = frozenset({"SIZE", "8BITMIME", "SMTPUTF8", "REQUIRETLS", "AUTH", "DSN", "BINARYMIME"})


@pytest.mark.parametrize(
    ("argument", "path", "source_route"),
    [
        (b"FROM:<>", "", False),
        (b"FROM:<a@b.test>", "a@b.test", False),
        (b"from:<a@b.test>", "a@b.test", False),
        (b"FROM: <a@b.test>", "a@b.test", False),
        (b"FROM:<@relay.test,@other.test:user@b.test>", "user@b.test", True),
        (b'FROM:<"john doe"@b.test>', '"john doe"@b.test', False),
        (b'FROM:<"a>b\\"c"@b.test>', '"a>b\\"c"@b.test', False),
        (b"FROM:<user@[192.0.2.1]>", "user@[192.0.2.1]", False),
        (b"FROM:<user@[IPv6:2001:db8::1]>", "user@[IPv6:2001:db8::1]", False),
        (b"FROM:<first.last+tag@sub-domain.b.test>", "first.last+tag@sub-domain.b.test", False),
    ],
)
def test_reverse_paths(argument: bytes, path: str, source_route: bool) -> None:
    event = command_line.parse_mail(argument, enabled=ALL)
    assert (event.reverse_path, event.source_route) == (path, source_route)


@pytest.mark.parametrize(
    "argument",
    [
        b"FROM:a@b.test",
        b"FROM:<a@b.test",
        b"FROM:<a@>",
        b"FROM:<@b.test>",
        b"FROM:<a..b@b.test>",
        b"FROM:<.a@b.test>",
        b"FROM:<a@-b.test>",
        b"FROM:<a@b.test.>",
        b"FROM:<a b@b.test>",
        b"FROM:<a@[300.1.1.1]>",
        b"FROM:<a@[IPv6:zz::1]>",
        b"FROM:<a@[tag:general]>",
        b"FROM:<@relay.test:>",
        b"FROM:<" + b"a" * 65 + b"@b.test>",
        b"FROM:<a@" + b"b" * 260 + b".test>",
    ],
)
def test_bad_reverse_path_is_501_5_1_7(argument: bytes) -> None:
    with pytest.raises(CommandError) as caught:
        command_line.parse_mail(argument, enabled=ALL)
    assert (caught.value.reply.code, caught.value.reply.enhanced) == (501, "5.1.7")


def test_bad_forward_path_is_501_5_1_3() -> None:
    with pytest.raises(CommandError) as caught:
        command_line.parse_rcpt(b"TO:<>", enabled=ALL, smtputf8=False)
    assert (caught.value.reply.code, caught.value.reply.enhanced) == (501, "5.1.3")


@pytest.mark.parametrize("argument", [b"TO <a@b.test>", b"FROM:<a@b.test>", b""])
def test_rcpt_without_to_is_501_5_5_2(argument: bytes) -> None:
    with pytest.raises(CommandError) as caught:
        command_line.parse_rcpt(argument, enabled=ALL, smtputf8=False)
    assert (caught.value.reply.code, caught.value.reply.enhanced) == (501, "5.5.2")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (b"SIZE=1000", MailParams(size=1000)),
        (b"BODY=7BIT", MailParams(body="7BIT")),
        (b"body=8bitmime", MailParams(body="8BITMIME")),
        (b"BODY=BINARYMIME", MailParams(body="BINARYMIME")),
        (b"SMTPUTF8", MailParams(smtputf8=True)),
        (b"REQUIRETLS", MailParams(requiretls=True)),
        (b"AUTH=<>", MailParams(auth="<>")),
        (b"AUTH=user+2Bx@b.test", MailParams(auth="user+x@b.test")),
        (b"RET=FULL", MailParams(ret="FULL")),
        (b"RET=hdrs", MailParams(ret="HDRS")),
        (b"ENVID=QQ314159+2Babc", MailParams(envid="QQ314159+abc")),
        (
            b"SIZE=5  BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x",
            MailParams(size=5, body="8BITMIME", smtputf8=True, ret="HDRS", envid="x"),
        ),
    ],
)
def test_mail_parameters(params: bytes, expected: MailParams) -> None:
    event = command_line.parse_mail(b"FROM:<a@b.test> " + params, enabled=ALL)
    assert event.params == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (b"NOTIFY=NEVER", RcptParams(notify=frozenset())),
        (b"NOTIFY=SUCCESS,FAILURE,DELAY", RcptParams(notify=frozenset({"SUCCESS", "FAILURE", "DELAY"}))),
        (b"notify=delay", RcptParams(notify=frozenset({"DELAY"}))),
        (
            b"ORCPT=rfc822;bob+40example.org",
            RcptParams(orcpt=OriginalRecipient(address_type="rfc822", address="bob@example.org")),
        ),
        (
            b"NOTIFY=FAILURE ORCPT=RFC822;a@b.test",
            RcptParams(
                notify=frozenset({"FAILURE"}),
                orcpt=OriginalRecipient(address_type="rfc822", address="a@b.test"),
            ),
        ),
    ],
)
def test_rcpt_parameters(params: bytes, expected: RcptParams) -> None:
    event = command_line.parse_rcpt(b"TO:<a@b.test> " + params, enabled=ALL, smtputf8=False)
    assert event.params == expected


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (b"MAIL FROM:<a@b.test> FOO=bar", b"555 5.5.4 Parameter not recognized or not implemented"),
        (b"MAIL FROM:<a@b.test> NOTIFY=NEVER", b"555 5.5.4 Parameter not recognized or not implemented"),
        (b"MAIL FROM:<a@b.test> REQUIRETLS", b"555 5.5.4 Parameter not recognized or not implemented"),
        (b"MAIL FROM:<a@b.test> AUTH=<>", b"555 5.5.4 Parameter not recognized or not implemented"),
        (b"MAIL FROM:<a@b.test> SIZE=abc", b"501 5.5.4 Invalid parameter value"),
        (b"MAIL FROM:<a@b.test> SIZE", b"501 5.5.4 Invalid parameter value"),
        (b"MAIL FROM:<a@b.test> SIZE=" + b"9" * 21, b"501 5.5.4 Invalid parameter value"),
        (b"MAIL FROM:<a@b.test> BODY=9BIT", b"501 5.5.4 Invalid parameter value"),
        (b"MAIL FROM:<a@b.test> SMTPUTF8=yes", b"501 5.5.4 Invalid parameter value"),
        (b"MAIL FROM:<a@b.test> RET=ALL", b"501 5.5.4 Invalid parameter value"),
        (b"MAIL FROM:<a@b.test> ENVID=" + b"e" * 101, b"501 5.5.4 Invalid parameter value"),
        (b"MAIL FROM:<a@b.test> ENVID=a+2", b"501 5.5.4 Invalid parameter value"),
        (b"MAIL FROM:<a@b.test> ENVID=a+2f", b"501 5.5.4 Invalid parameter value"),
        (b"MAIL FROM:<a@b.test> SIZE=1 SIZE=2", b"501 5.5.4 Duplicate SIZE parameter"),
        (b"MAIL FROM:<a@b.test> =x", b"501 5.5.2 Malformed parameter =x"),
        (b"MAIL FROM:<a@b.test>SIZE=1", b"501 5.5.2 Syntax error after the address"),
        (b"MAIL FROM:<>", b"250 2.1.0 Sender OK"),
        (b"MAIL TO:<a@b.test>", b"501 5.5.2 Syntax: MAIL FROM:<address>"),
        (b"MAIL FROM:<\xc3\xa9@b.test>", b"553 5.6.7 Non-ASCII address requires SMTPUTF8"),
        (b"MAIL FROM:<\xc3\xa9@b.test> SMTPUTF8", b"250 2.1.0 Sender OK"),
        (b"MAIL FROM:<a@b.test> SMTPUTF8 BODY=8BITMIME", b"250 2.1.0 Sender OK"),
        (b"MAIL FROM:<\xff@b.test>", b"501 5.5.2 Invalid UTF-8 in command"),
    ],
)
def test_mail_command_replies(command: bytes, reply: bytes) -> None:
    conn = ready_server(ServerExtensions(starttls=True))
    _, out = feed(conn, command + b"\r\n")
    assert out == reply + b"\r\n"


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (b"RCPT TO:<b@mx.test> NOTIFY=NEVER,SUCCESS", b"501 5.5.4 Invalid parameter value"),
        (b"RCPT TO:<b@mx.test> NOTIFY=SOMETIMES", b"501 5.5.4 Invalid parameter value"),
        (b"RCPT TO:<b@mx.test> NOTIFY=SUCCESS,SUCCESS", b"501 5.5.4 Invalid parameter value"),
        (b"RCPT TO:<b@mx.test> ORCPT=rfc822", b"501 5.5.4 Invalid parameter value"),
        (b"RCPT TO:<b@mx.test> ORCPT=;a@b.test", b"501 5.5.4 Invalid parameter value"),
        (b"RCPT TO:<b@mx.test> SIZE=10", b"555 5.5.4 Parameter not recognized or not implemented"),
        (b"RCPT TO:<\xc3\xa9@mx.test>", b"553 5.6.7 Non-ASCII address requires SMTPUTF8"),
        (b"RCPT TO:<@hop.test:b@mx.test>", b"250 2.1.5 Recipient OK"),
    ],
)
def test_rcpt_command_replies(command: bytes, reply: bytes) -> None:
    conn = ready_server()
    feed(conn, b"MAIL FROM:<a@b.test>\r\n")
    _, out = feed(conn, command + b"\r\n")
    assert out == reply + b"\r\n"


def test_utf8_recipient_accepted_when_mail_had_smtputf8() -> None:
    conn = ready_server()
    feed(conn, b"MAIL FROM:<a@b.test> SMTPUTF8\r\n")
    events, _out = feed(conn, "RCPT TO:<josé@bücher.test>\r\n".encode())
    assert events == [RcptTo(forward_path="josé@bücher.test")]


def test_dsn_parameters_refused_when_dsn_not_offered() -> None:
    conn = ready_server(ServerExtensions(dsn=False))
    _, out = feed(conn, b"MAIL FROM:<a@b.test> RET=FULL\r\n")
    assert out == b"555 5.5.4 Parameter not recognized or not implemented\r\n"


def test_binarymime_refused_when_chunking_not_offered() -> None:
    conn = ready_server(ServerExtensions(chunking=False))
    _, out = feed(conn, b"MAIL FROM:<a@b.test> BODY=BINARYMIME\r\n")
    assert out == b"501 5.5.4 Invalid parameter value\r\n"


def test_requiretls_accepted_over_tls() -> None:
    conn = ready_server(ServerExtensions(starttls=True))
    feed(conn, b"STARTTLS\r\n")
    conn.start_tls_done()
    feed(conn, b"EHLO c.test\r\n")
    events, _ = feed(conn, b"MAIL FROM:<a@b.test> REQUIRETLS\r\n")
    assert events == [MailFrom(reverse_path="a@b.test", params=MailParams(requiretls=True))]


@pytest.mark.parametrize(
    ("argument", "expected"),
    [(b"5", (5, False)), (b"0 LAST", (0, True)), (b"12 last", (12, True)), (b"3  LAST ", (3, True))],
)
def test_parse_bdat(argument: bytes, expected: tuple[int, bool]) -> None:
    assert command_line.parse_bdat(argument) == expected


@pytest.mark.parametrize("verb", [b"MAIL", b"RCPT", b"EHLO", b"AUTH", b"BDAT", b"VRFY"])
@given(argument=st.binary(max_size=300))
def test_parsers_raise_only_command_error(verb: bytes, argument: bytes) -> None:
    parsers = {
        b"MAIL": lambda a: command_line.parse_mail(a, enabled=ALL),
        b"RCPT": lambda a: command_line.parse_rcpt(a, enabled=ALL, smtputf8=True),
        b"EHLO": command_line.parse_hello,
        b"AUTH": command_line.parse_auth,
        b"BDAT": command_line.parse_bdat,
        b"VRFY": command_line.decode_text,
    }
    try:
        parsers[verb](argument)
    except CommandError as error:
        assert 500 <= error.reply.code < 600


@given(
    local=st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[A-Za-z0-9-]{1,10}){0,3}", fullmatch=True),
    domain=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z0-9]{1,10}){1,3}", fullmatch=True),
)
def test_valid_dot_string_addresses_are_accepted_unchanged(local: str, domain: str) -> None:
    event = command_line.parse_rcpt(f"TO:<{local}@{domain}>".encode(), enabled=ALL, smtputf8=False)
    assert event.forward_path == f"{local}@{domain}"
