"""Mailbox names: modified UTF-7 both ways with strict validation, UTF-8 mode, INBOX, name checks."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.proto.imap.errors import MailboxNameError
from kittiwake.proto.imap.mailbox_names import (
    check_mailbox_name,
    decode_mailbox_name,
    decode_modified_utf7,
    encode_mailbox_name,
    encode_modified_utf7,
    normalize_inbox,
)


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("INBOX", b"INBOX"),
        ("", b""),
        ("R&D", b"R&-D"),
        ("&&", b"&-&-"),
        ("Entwürfe", b"Entw&APw-rfe"),
        ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("日本語&x", b"&ZeVnLIqe-&-x"),
        ("😀", b"&2D3eAA-"),
    ],
)
def test_modified_utf7_round_trip(text: str, wire: bytes) -> None:
    assert encode_modified_utf7(text) == wire
    assert decode_modified_utf7(wire) == text


@pytest.mark.parametrize(
    "wire",
    [
        b"&",  # unterminated
        b"a&Jjo",  # unterminated run
        b"&AGE-",  # "a" must not be encoded
        b"&ZeVnLIqe-&ZeVnLIqe-",  # adjacent runs must be one run
        b"&Jjo!-",  # not base64
        b"&AP-",  # padding bits not zero / odd length
        b"&2D0-",  # lone high surrogate
        b"caf\xc3\xa9",  # 8-bit
        b"a\x00b",  # control character
        b"&U/BTFw-",  # "/" instead of ","
    ],
)
def test_invalid_modified_utf7_is_rejected(wire: bytes) -> None:
    with pytest.raises(MailboxNameError):
        decode_modified_utf7(wire)


def test_utf8_mode_decodes_utf8_and_keeps_ampersand() -> None:
    assert decode_mailbox_name("R&D/Entwürfe".encode(), utf8=True) == "R&D/Entwürfe"
    assert encode_mailbox_name("R&D/Entwürfe", utf8=True) == "R&D/Entwürfe".encode()


@pytest.mark.parametrize("raw", [b"caf\xc3", b"a\x00b", b"a\r\nb", "a\u0085b".encode()])
def test_utf8_mode_rejects_invalid_utf8_and_control_characters(raw: bytes) -> None:
    with pytest.raises(MailboxNameError):
        decode_mailbox_name(raw, utf8=True)


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("inbox", "INBOX"),
        ("InBox/Sub", "INBOX/Sub"),
        ("INBOX", "INBOX"),
        ("Inboxes", "Inboxes"),
        ("x/inbox", "x/inbox"),
    ],
)
def test_inbox_is_normalised_case_insensitively(name: str, normal: str) -> None:
    assert normalize_inbox(name) == normal


@pytest.mark.parametrize("name", ["INBOX", "Archive/2024", "R&D", "Entwürfe", "a.b", "x" * 1000])
def test_acceptable_names_pass(name: str) -> None:
    check_mailbox_name(name, creating=True)


@pytest.mark.parametrize(
    ("name", "creating"),
    [
        ("", False),
        ("/root", False),
        ("a//b", False),
        ("a/", False),
        ("a/../b", False),
        ("./a", False),
        ("a\x00b", False),
        ("a\tb", False),
        ("a\x7fb", False),
        ("a\x85b", False),
        ("x" * 1001, False),
        ("é" * 501, False),
        ("a*b", True),
        ("a%b", True),
    ],
)
def test_unacceptable_names_are_rejected(name: str, creating: bool) -> None:
    with pytest.raises(MailboxNameError):
        check_mailbox_name(name, creating=creating)


def test_wildcards_are_allowed_when_not_creating() -> None:
    check_mailbox_name("a*b")


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=30))
def test_any_text_round_trips_through_modified_utf7(text: str) -> None:
    assert decode_modified_utf7(encode_modified_utf7(text)) == text


@given(st.binary(max_size=40))
def test_arbitrary_bytes_decode_or_raise_mailbox_name_error(data: bytes) -> None:
    for utf8 in (False, True):
        with contextlib.suppress(MailboxNameError):
            decode_mailbox_name(data, utf8=utf8)
