"""Incremental transfer decoders: same output as the stdlib, however the input is split."""

from __future__ import annotations

import base64
import binascii
import itertools
import quopri

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.mail.transfer_encoding import (
    Base64Decoder,
    Decoder,
    IdentityDecoder,
    QuotedPrintableDecoder,
    decode_all,
    make_decoder,
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[low:high] for low, high in itertools.pairwise(bounds)]


def _run(decoder: Decoder, chunks: list[bytes]) -> bytes:
    return b"".join(decoder.feed(chunk) for chunk in chunks) + decoder.flush()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("base64", Base64Decoder),
        ("BASE64", Base64Decoder),
        ("Quoted-Printable", QuotedPrintableDecoder),
        ("7bit", IdentityDecoder),
        ("8BIT", IdentityDecoder),
        ("binary", IdentityDecoder),
        ("", IdentityDecoder),
    ],
)
def test_make_decoder_knows_the_rfc2045_encodings(name: str, kind: type) -> None:
    assert isinstance(make_decoder(name), kind)


@pytest.mark.parametrize("name", ["x-uuencode", "gzip", "base-64"])
def test_make_decoder_returns_none_for_unknown_encodings(name: str) -> None:
    assert make_decoder(name) is None
    assert decode_all(name, b"data") is None


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"aGVsbG8=", b"hello"),
        (b"aGVs\r\nbG8=\r\n", b"hello"),
        (b"aG Vs*bG8!", b"hello"),  # RFC 2045 §6.8: characters outside the alphabet are ignored
        (b"aGVsbG8", b"hello"),  # missing padding
        (b"aGVsbG8=aGk=", b"hellohi"),  # two encoded blobs glued together
        (b"aGVsbG8==", b"hello"),
        (b"QUJD\r\nRA", b"ABCD"),
        (b"Q", b""),  # a lone character carries no byte
        (b"", b""),
        (b"====", b""),
    ],
)
def test_base64_decodes_leniently(encoded: bytes, decoded: bytes) -> None:
    assert decode_all("base64", encoded) == decoded


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0, max_value=3000), max_size=8), st.data())
def test_base64_matches_stdlib_with_line_breaks_and_any_chunking(
    data: bytes, cuts: list[int], draw: st.DataObject
) -> None:
    encoded = base64.encodebytes(data)  # 76-column lines, as in mail
    junk = draw.draw(st.sampled_from([b"", b" ", b"\t", b"!", b"\x00", b"\xff"]))
    encoded = encoded.replace(b"\n", b"\r\n" + junk)
    assert _run(Base64Decoder(), _split(encoded, cuts)) == base64.b64decode(base64.encodebytes(data))


@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=500), max_size=8))
def test_base64_output_does_not_depend_on_chunking(data: bytes, cuts: list[int]) -> None:
    assert _run(Base64Decoder(), _split(data, cuts)) == _run(Base64Decoder(), [data])


@given(st.binary(max_size=400))
def test_base64_of_clean_text_matches_binascii(data: bytes) -> None:
    alphabet_only = base64.b64encode(data)
    assert _run(Base64Decoder(), [alphabet_only]) == binascii.a2b_base64(alphabet_only)


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"Caf=C3=A9", "Café".encode()),
        (b"caf=c3=a9", "café".encode()),  # lower-case hex is accepted
        (b"soft=\r\nbreak", b"softbreak"),
        (b"soft=  \r\nbreak", b"softbreak"),  # whitespace after a soft break's "="
        (b"soft=\nbreak", b"softbreak"),
        (b"trailing   \r\nspace\t\r\n", b"trailing\r\nspace\r\n"),  # RFC 2045 §6.7 rule 3
        (b"a=ZZb", b"a=ZZb"),  # an invalid escape stays as sent
        (b"a==\r\n41", b"a=41"),
        (b"1+1=2", b"1+1=2"),
        (b"end=", b"end"),
        (b"end  ", b"end"),
        (b"bare\rcr", b"bare\rcr"),
        (b"a=\rb", b"a=\rb"),
        (b"under_score", b"under_score"),
    ],
)
def test_quoted_printable_decodes_rfc2045_rules(encoded: bytes, decoded: bytes) -> None:
    assert decode_all("quoted-printable", encoded) == decoded


# Mail text: any bytes but CR, whose line ends become CRLF on the wire.
_TEXT_BYTES = st.binary(max_size=1500).map(lambda data: data.replace(b"\r", b""))


@given(_TEXT_BYTES, st.booleans(), st.lists(st.integers(min_value=0, max_value=5000), max_size=10))
def test_quoted_printable_round_trips_stdlib_encoding_with_any_chunking(
    data: bytes, quotetabs: bool, cuts: list[int]
) -> None:
    encoded = quopri.encodestring(data, quotetabs=quotetabs)
    crlf_encoded = encoded.replace(b"\n", b"\r\n")
    assert _run(QuotedPrintableDecoder(), _split(crlf_encoded, cuts)) == data.replace(b"\n", b"\r\n")
    assert _run(QuotedPrintableDecoder(), _split(encoded, cuts)) == quopri.decodestring(encoded)


@given(st.binary(max_size=600), st.lists(st.integers(min_value=0, max_value=700), max_size=10))
def test_quoted_printable_output_does_not_depend_on_chunking(data: bytes, cuts: list[int]) -> None:
    whole = _run(QuotedPrintableDecoder(line_cap=16), [data])
    assert _run(QuotedPrintableDecoder(line_cap=16), _split(data, cuts)) == whole
    assert _run(QuotedPrintableDecoder(), _split(data, cuts)) == _run(QuotedPrintableDecoder(), [data])


def test_quoted_printable_soft_break_split_across_chunks() -> None:
    assert _run(QuotedPrintableDecoder(), [b"one=", b"\r", b"\ntwo=4", b"1"]) == b"onetwoA"


def test_quoted_printable_bounds_an_endless_line() -> None:
    decoder = QuotedPrintableDecoder(line_cap=1024)
    out = decoder.feed(b"x" * 10_000 + b"=4")
    assert out == b"x" * 10_000
    assert decoder.feed(b"1") == b""
    assert decoder.flush() == b"A"


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_identity_returns_the_input(data: bytes, cuts: list[int]) -> None:
    assert _run(IdentityDecoder(), _split(data, cuts)) == data


def test_base64_decodes_a_large_body_in_chunks() -> None:
    data = bytes(range(256)) * 20_000
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    decoder = Base64Decoder()
    chunks = [encoded[start : start + 65_537] for start in range(0, len(encoded), 65_537)]
    assert _run(decoder, chunks) == data
