"""Header block splitting, MIME parameters (RFC 2045, RFC 2231) and trace fields (RFC 5321 §4.4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.mail.headers import (
    build_received,
    build_return_path,
    first_field,
    parse_content_disposition,
    parse_content_type,
    parse_header_fields,
    parse_parameters,
    received_protocol,
)

NOW = datetime(2026, 11, 22, 4, 30, tzinfo=UTC)


def test_header_block_is_split_and_unfolded() -> None:
    block = b"Subject: a long\r\n  subject\r\nTo: x@y.test,\r\n\tz@y.test\r\nX-Empty:\r\n\r\nBody: not a header\r\n"
    assert parse_header_fields(block) == [
        ("Subject", "a long  subject"),
        ("To", "x@y.test,\tz@y.test"),
        ("X-Empty", ""),
    ]


@pytest.mark.parametrize(
    ("block", "fields"),
    [
        (b"Subject : obsolete space\n\n", [("Subject", "obsolete space")]),
        (b"From mbox line\r\nTo: a@b\r\n", [("To", "a@b")]),
        (b" leading continuation\r\nTo: a@b\r\n", [("To", "a@b")]),
        (b"Bad Name: x\r\n continued\r\nTo: a@b\r\n", [("To", "a@b")]),
        (b"X-8bit: caf\xc3\xa9 \xff\r\n", [("X-8bit", "café \udcff")]),
        (b"Colon:in:value\n", [("Colon", "in:value")]),
        (b"", []),
    ],
)
def test_junk_lines_are_dropped_and_bytes_kept(block: bytes, fields: list[tuple[str, str]]) -> None:
    assert parse_header_fields(block) == fields


@given(st.binary(max_size=300))
def test_header_splitting_never_raises(block: bytes) -> None:
    for name, value in parse_header_fields(block):
        assert ":" not in name and "\n" not in value


def test_first_field_is_case_insensitive_and_takes_the_first() -> None:
    fields = [("subject", "one"), ("Subject", "two")]
    assert (first_field(fields, "SUBJECT"), first_field(fields, "to")) == ("one", None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/plain", ("text", "plain", ())),
        ("TEXT/HTML; CHARSET=UTF-8", ("text", "html", (("charset", "UTF-8"),))),
        (
            'multipart/mixed; boundary="----=_Part_0; x"',
            ("multipart", "mixed", (("boundary", "----=_Part_0; x"),)),
        ),
        (
            "multipart/mixed; boundary=----=_NextPart_000_0001",
            ("multipart", "mixed", (("boundary", "----=_NextPart_000_0001"),)),
        ),
        ("(comment) text (c) / (c) plain (c); (c) a (c) = (c) b", ("text", "plain", (("a", "b"),))),
        ('text/plain; name="a \\"q\\" b"', ("text", "plain", (("name", 'a "q" b'),))),
        ("text/plain;; junk; a=1; a=2", ("text", "plain", (("a", "1"),))),
        ("text/plain; name=annual report.pdf", ("text", "plain", (("name", "annual report.pdf"),))),
        ('text/plain; name="unclosed', ("text", "plain", (("name", "unclosed"),))),
        ("text", None),
        ("text/", None),
        ("", None),
        ("/plain", None),
    ],
)
def test_content_type_is_parsed(
    value: str, expected: tuple[str, str, tuple[tuple[str, str], ...]] | None
) -> None:
    assert parse_content_type(value) == expected


@pytest.mark.parametrize(
    ("value", "params"),
    [
        # RFC 2231 §3: continuations, joined in numeric order
        ('; name*1="b"; name*0="a"; name*2=c', (("name", "abc"),)),
        # RFC 2231 §4: charset and language on the first encoded segment
        ("; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A", (("title", "This is ***fun***"),)),
        (
            "; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; "
            'title*2="isn\'t it!"',
            (("title", "This is even more ***fun*** isn't it!"),),
        ),
        ("; filename*=iso-8859-1''caf%E9.txt", (("filename", "café.txt"),)),
        ("; filename*=utf-8''%E2%82%AC; filename=\"euro.txt\"", (("filename", "€"),)),
        ("; filename*=x-unknown''%C3%A9", (("filename", "é"),)),
        ("; filename*=no-quotes%20here", (("filename", "no-quotes here"),)),
    ],
)
def test_rfc2231_parameters_are_joined_and_decoded(value: str, params: tuple[tuple[str, str], ...]) -> None:
    assert parse_parameters(value) == params


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("attachment; filename=a.pdf", ("attachment", (("filename", "a.pdf"),))),
        ("INLINE", ("inline", ())),
        ("; filename=a.pdf", (None, (("filename", "a.pdf"),))),
    ],
)
def test_content_disposition_is_parsed(
    value: str, expected: tuple[str | None, tuple[tuple[str, str], ...]]
) -> None:
    assert parse_content_disposition(value) == expected


@given(st.text(max_size=200))
def test_parameter_parsing_never_raises(value: str) -> None:
    parse_content_type("text/plain;" + value)
    parse_content_disposition(value)


@pytest.mark.parametrize(
    ("extended", "tls", "authenticated", "smtputf8", "protocol"),
    [
        (False, False, False, False, "SMTP"),
        (True, False, False, False, "ESMTP"),
        (True, True, False, False, "ESMTPS"),
        (True, False, True, False, "ESMTPA"),
        (True, True, True, False, "ESMTPSA"),
        (True, True, True, True, "UTF8SMTPSA"),
    ],
)
def test_received_protocol_follows_rfc3848(
    extended: bool, tls: bool, authenticated: bool, smtputf8: bool, protocol: str
) -> None:
    assert (
        received_protocol(extended=extended, tls=tls, authenticated=authenticated, smtputf8=smtputf8)
        == protocol
    )


def test_received_field_has_all_clauses_folded_under_78_columns() -> None:
    field = build_received(
        helo="mail.example.org",
        reverse_dns="mx1.example.org",
        ip="192.0.2.25",
        by_host="mx.kittiwake.test",
        protocol="ESMTPS",
        queue_id="4Zabc123",
        recipient="bob@kittiwake.test",
        tls_version="TLSv1.3",
        tls_cipher="TLS_AES_256_GCM_SHA384",
        now=NOW,
    )
    assert field == (
        b"Received: from mail.example.org (mx1.example.org [192.0.2.25])\r\n"
        b"\tby mx.kittiwake.test with ESMTPS id 4Zabc123 for <bob@kittiwake.test>\r\n"
        b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384);\r\n"
        b"\tSun, 22 Nov 2026 04:30:00 +0000\r\n"
    )
    assert all(len(line) <= 78 for line in field.split(b"\r\n"))


def test_received_field_neutralises_hostile_helo_and_tags_ipv6() -> None:
    field = build_received(
        helo="x\r\nBcc: evil (", reverse_dns=None, ip="2001:db8::1", by_host="mx", protocol="ESMTP", now=NOW
    )
    assert field == (
        b"Received: from x_Bcc:_evil_ ([IPv6:2001:db8::1]) by mx with ESMTP;\r\n"
        b"\tSun, 22 Nov 2026 04:30:00 +0000\r\n"
    )


def test_received_without_helo_uses_the_address_literal() -> None:
    field = build_received(
        helo=None, reverse_dns="h.test", ip="192.0.2.1", by_host="mx", protocol="SMTP", now=NOW
    )
    assert field.startswith(b"Received: from [192.0.2.1] (h.test [192.0.2.1]) by mx with SMTP;")


@pytest.mark.parametrize(
    ("reverse_path", "field"),
    [
        ("", b"Return-Path: <>\r\n"),
        ("<>", b"Return-Path: <>\r\n"),
        ("alice@example.com", b"Return-Path: <alice@example.com>\r\n"),
        ("<alice@example.com>", b"Return-Path: <alice@example.com>\r\n"),
        ("jörg@bücher.example", "Return-Path: <jörg@bücher.example>\r\n".encode()),
        ("a\r\nb@c", b"Return-Path: <ab@c>\r\n"),
    ],
)
def test_return_path_field(reverse_path: str, field: bytes) -> None:
    assert build_return_path(reverse_path) == field
