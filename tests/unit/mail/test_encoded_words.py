"""RFC 2047 encoded-word decoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.mail.encoded_words import decode_charset, decode_header_value


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("plain text", "plain text"),
        ("=?utf-8?q?J=C3=B6rg_M=C3=BCller?=", "Jörg Müller"),
        ("=?UTF-8?B?SsO2cmc=?=", "Jörg"),
        ("=?utf-8?b?SsO2cmc?=", "Jörg"),  # missing padding
        ("=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
        ("=?iso-8859-1?q?this=20is=20some=20text?=", "this is some text"),
        # RFC 2047 §8: whitespace between adjacent encoded words is dropped, elsewhere kept
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("=?ISO-8859-1?Q?a?=\r\n   =?ISO-8859-1?Q?b?=", "ab"),
        ("=?ISO-8859-1?Q?a?= b =?ISO-8859-1?Q?c?=", "a b c"),
        ("=?ISO-8859-1?Q?a_b?=", "a b"),
        # a character split across two words is joined before decoding
        ("=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "é"),
        ("=?utf-8?q?a?= =?iso-8859-1?q?=E9?=", "aé"),
        # RFC 2231 §5: a language suffix on the charset
        ("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"),
        ("=?koi8-r?b?8NLJ18XU?=", "Привет"),
        ("=?shift_jis?B?g2WDWINn?=", "テスト"),
        # unknown charsets and broken encoded text are kept as sent, with the whitespace around them
        ("=?x-unknown?q?abc?= =?utf-8?q?d?=", "=?x-unknown?q?abc?= d"),
        ("=?utf-8?b?@@@?=", "=?utf-8?b?@@@?="),
        ("=?rot13?q?abc?=", "=?rot13?q?abc?="),
        ("=?utf-8?q?caf=C3?=", "caf\udcc3"),
        ("no=?end", "no=?end"),
    ],
)
def test_encoded_words_are_decoded(raw: str, decoded: str) -> None:
    assert decode_header_value(raw) == decoded


@given(st.text(max_size=200))
def test_decoding_never_raises(raw: str) -> None:
    decode_header_value(raw)


@pytest.mark.parametrize(
    ("data", "charset", "text"),
    [
        (b"caf\xc3\xa9", None, "café"),
        (b"\xff", "us-ascii", "\udcff"),
        (b"caf\xe9", "latin-1", "café"),
        (b"x", "no-such-charset", None),
    ],
)
def test_charset_decoding(data: bytes, charset: str | None, text: str | None) -> None:
    assert decode_charset(data, charset) == text
