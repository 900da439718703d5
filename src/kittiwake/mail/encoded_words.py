"""RFC 2047 encoded words in header values, decoded for SEARCH and SORT; charset decoding shared with
RFC 2231 parameter values."""

from __future__ import annotations

import base64
import binascii
import codecs
import re

# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?=" (RFC 2231 §5 adds "*language").
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_LINEAR_WHITESPACE = re.compile(r"[ \t\r\n]*")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def decode_charset(data: bytes, charset: str | None) -> str | None:
    """Decode `data` in `charset`; UTF-8 with surrogateescape when none is named; None for an unknown charset."""
    if not charset or charset.lower() in ("us-ascii", "ascii", "utf-8", "utf8"):
        return data.decode("utf-8", "surrogateescape")
    if not is_known_charset(charset):
        return None
    try:
        return data.decode(charset, "replace")
    except UnicodeError:
        return None  # a codec such as idna that refuses the "replace" handler


def is_known_charset(charset: str) -> bool:
    """Whether Python has a text codec for `charset` (rot13 and hex are codecs, not charsets)."""
    try:
        info = codecs.lookup(charset)
    except LookupError:
        return False
    return bool(getattr(info, "_is_text_encoding", True))


def _decode_text(encoding: str, text: str) -> bytes | None:
    raw = text.encode("ascii", "surrogateescape")
    if encoding in "bB":
        try:
            return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None
    # RFC 2047 §4.2: "_" is a space in the Q encoding.
    return _Q_ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), raw.replace(b"_", b" "))


def decode_header_value(raw: str) -> str:
    """Decode the RFC 2047 encoded words in an unfolded header value.

    Adjacent encoded words are joined without the whitespace between them (RFC 2047 §6.2), and their bytes are
    joined before decoding when the charsets agree, so a character split across two words survives. An encoded
    word in an unknown charset or with broken encoded text is kept as sent.
    """
    if "=?" not in raw:
        return raw
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    position = 0
    previous_was_word = False
    for match in _ENCODED_WORD.finditer(raw):
        between = raw[position : match.start()]
        if not (previous_was_word and _LINEAR_WHITESPACE.fullmatch(between)):
            _flush(out, pending, pending_charset)
            out.append(between)
        charset = match[1]
        data = _decode_text(match[2], match[3])
        if data is None or not is_known_charset(charset):
            _flush(out, pending, pending_charset)
            out.append(match[0])
            previous_was_word = False
        else:
            if pending and charset.lower() != (pending_charset or "").lower():
                _flush(out, pending, pending_charset)
            pending.append(data)
            pending_charset = charset
            previous_was_word = True
        position = match.end()
    _flush(out, pending, pending_charset)
    out.append(raw[position:])
    return "".join(out)


def _flush(out: list[str], pending: list[bytes], charset: str | None) -> None:
    if pending:
        data = b"".join(pending)
        decoded = decode_charset(data, charset)
        out.append(decoded if decoded is not None else data.decode("utf-8", "surrogateescape"))
        pending.clear()
