"""Searchable text: decoded headers, and the decoded text of text parts only."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.mail.structure import parse_structure
from kittiwake.mail.text_extraction import decode_part_text, extract_text, header_text, header_values

LATIN1_BODY = "Grüße aus Köln".encode("latin-1")
HEADER = (
    b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.com>\r\n"
    b"Subject: =?iso-8859-1?q?Gr=FC=DFe?=\r\n"
    b" und mehr\r\n"
    b"Subject: second\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n"
    b"\r\n"
)
MESSAGE = HEADER + (
    b"--b\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=FC=DFe aus K=F6ln\r\n"
    b"--b\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes("<b>Überschrift</b>".encode())
    + b"--b\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    b"aGlkZGVuIGltYWdlIHRleHQ=\r\n"
    b"--b\r\n"
    b"Content-Type: message/rfc822\r\n\r\n"
    b"Subject: =?utf-8?b?w6lwaW5nbGU=?=\r\n\r\n"
    b"forwarded words\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain; charset=x-unknown-charset\r\n\r\n"
    b"caf\xc3\xa9 \xff\r\n"
    b"--b--\r\n"
)


def test_extract_text_decodes_headers_with_rfc2047_and_unfolds_them() -> None:
    headers, _ = extract_text(MESSAGE, parse_structure(MESSAGE))
    assert "From: Jörg <jorg@example.com>\n" in headers
    assert "Subject: Grüße und mehr\n" in headers


@pytest.mark.parametrize(
    "fragment", ["Grüße aus Köln", "<b>Überschrift</b>", "Subject: épingle", "forwarded words", "café �"]
)
def test_extract_text_body_holds_decoded_text_parts(fragment: str) -> None:
    _, body = extract_text(MESSAGE, parse_structure(MESSAGE))
    assert fragment in body


def test_extract_text_skips_non_text_parts() -> None:
    _, body = extract_text(MESSAGE, parse_structure(MESSAGE))
    assert "hidden image text" not in body
    assert "aGlkZGVu" not in body


def test_extract_text_body_stops_at_the_cap() -> None:
    message = b"Subject: big\r\n\r\n" + b"x" * 5000
    _, body = extract_text(message, parse_structure(message), body_cap=1000)
    assert body == "x" * 1000


def test_extract_text_of_a_single_part_message() -> None:
    message = b"Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
    assert extract_text(message, parse_structure(message)) == (
        "Subject: hi\nContent-Type: text/plain; charset=utf-8\n",
        "hello\r\n",
    )


def test_extract_text_reads_an_unknown_transfer_encoding_as_is() -> None:
    message = b"Content-Transfer-Encoding: x-custom\r\n\r\nplain words\r\n"
    assert extract_text(message, parse_structure(message))[1] == "plain words\r\n"


def test_decode_part_text_limits_the_decoded_size() -> None:
    message = b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(b"y" * 3_000_000)
    part = parse_structure(message).root
    assert decode_part_text(message, part, limit=10) == "y" * 10


@pytest.mark.parametrize(
    ("name", "expected"),
    [("subject", ["Grüße und mehr", "second"]), ("FROM", ["Jörg <jorg@example.com>"]), ("To", [])],
)
def test_header_values_returns_every_decoded_value_in_order(name: str, expected: list[str]) -> None:
    assert header_values(HEADER, name) == expected


def test_header_text_writes_one_line_per_field() -> None:
    assert header_text(b"A: 1\r\nB: two\r\n  lines\r\n\r\n") == "A: 1\nB: two  lines\n"


@given(st.binary(max_size=500))
def test_extract_text_never_raises(data: bytes) -> None:
    headers, body = extract_text(data, parse_structure(data))
    assert isinstance(headers, str)
    assert isinstance(body, str)
