"""Stored structure JSON: exact round trip and fast loading."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.mail.structure import parse_structure
from kittiwake.mail.structure_codec import (
    StructureFormatError,
    dump_structure,
    load_structure,
    load_structure_cached,
)

THREE_PARTS = (
    b'From: "Alice Example" <alice@example.com>\r\nTo: Bob <bob@example.org>, carol@example.net\r\n'
    b"Subject: Report\r\nDate: Sun, 22 Nov 2026 04:30:00 +0000\r\nMessage-ID: <abc@example.com>\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    b'--outer\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n'
    b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n"
    b"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>\r\n--alt--\r\n"
    b'--outer\r\nContent-Type: application/pdf; name="r.pdf"\r\nContent-Disposition: attachment; filename="r.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--outer--\r\n"
)

FORWARDED_8BIT = (
    b"Subject: \xff\xfe raw\r\nFrom: \xc3\xa9 <x@y.test>\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner \xe9\r\nContent-Language: en, fr\r\nContent-Location: a\r\n\r\nbody"
)


@pytest.mark.parametrize("message", [THREE_PARTS, FORWARDED_8BIT, b""])
def test_round_trip_is_exact(message: bytes) -> None:
    structure = parse_structure(message)
    data = dump_structure(structure)
    assert load_structure(data) == structure
    assert data.isascii()


def test_surrogate_escaped_bytes_survive() -> None:
    structure = load_structure(dump_structure(parse_structure(FORWARDED_8BIT)))
    assert structure.envelope.subject == "\udcff\udcfe raw"
    assert structure.root.message is not None
    assert structure.root.message.envelope.subject == "inner \udce9"


def test_layout_is_positional_arrays() -> None:
    value = json.loads(dump_structure(parse_structure(b"Subject: s\r\n\r\nx")))
    assert value[:2] == [1, 15]
    assert value[2][:2] == [None, "s"]
    assert value[3][:6] == [0, 14, 15, 1, "text", "plain"]


@settings(max_examples=100)
@given(st.binary(max_size=300))
def test_round_trip_holds_for_any_parsed_bytes(message: bytes) -> None:
    structure = parse_structure(message)
    assert load_structure(dump_structure(structure)) == structure


@pytest.mark.parametrize(
    "data", [b"", b"not json", b"[2,0]", b"[1]", b'{"a":1}', b"[1,0,[],[]]", "é".encode()]
)
def test_unreadable_data_raises_structure_format_error(data: bytes) -> None:
    with pytest.raises(StructureFormatError):
        load_structure(data)


def test_loading_a_three_part_message_is_fast() -> None:
    data = dump_structure(parse_structure(THREE_PARTS))
    rounds = 2000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            load_structure(data)
        best = min(best, (time.perf_counter() - start) / rounds)
    # Generous bound for slow CI machines; about 25 µs on a developer machine.
    assert best < 150e-6


def test_cached_loading_answers_by_the_stored_bytes() -> None:
    three = dump_structure(parse_structure(THREE_PARTS))
    forwarded = dump_structure(parse_structure(FORWARDED_8BIT))
    first = load_structure_cached(three)
    assert first == load_structure(three)
    assert load_structure_cached(bytes(bytearray(three))) is first  # equal bytes, same structure
    assert load_structure_cached(forwarded) == load_structure(forwarded) != first
