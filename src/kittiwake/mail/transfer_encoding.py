"""Incremental Content-Transfer-Encoding decoders (RFC 2045 §6) for BINARY fetches and SEARCH text.

A decoder takes the encoded body in chunks of any size and returns the decoded bytes as soon as they are
known, holding back only the few bytes that the next chunk may change (a partial base64 quantum, the end of
an unfinished quoted-printable line). The output never depends on how the input was split, so a 50 MB
attachment can be streamed with bounded memory. The work is done by `bytes.translate`, `re.sub` and
`binascii` over whole spans, never byte by byte in Python.
"""

from __future__ import annotations

import binascii
import re
from typing import Protocol

__all__ = ["Decoder", "make_decoder"]


class Decoder(Protocol):
    """Decode a body given in chunks: `feed()` each chunk, then `flush()` once at the end."""

    def feed(self, chunk: bytes | bytearray | memoryview) -> bytes: ...

    def flush(self) -> bytes: ...


class IdentityDecoder:
    """7bit, 8bit and binary (RFC 2045 §6.2): the body is the data."""

    def feed(self, chunk: bytes | bytearray | memoryview) -> bytes:
        return bytes(chunk)

    def flush(self) -> bytes:
        return b""


_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# RFC 2045 §6.8: characters outside the alphabet are ignored; "=" is kept to find where the data ends.
_BASE64_JUNK = bytes(byte for byte in range(256) if byte not in _BASE64_ALPHABET + b"=")


def _decode_base64_tail(quantum: bytes) -> bytes:
    """Decode a final partial quantum: 2 or 3 characters carry 1 or 2 bytes; a lone character carries none."""
    if len(quantum) % 4 < 2:
        quantum = quantum[: len(quantum) - len(quantum) % 4]
        return binascii.a2b_base64(quantum) if quantum else b""
    return binascii.a2b_base64(quantum + b"=" * (-len(quantum) % 4))


class Base64Decoder:
    """base64 (RFC 2045 §6.8), tolerant of line breaks, junk characters and early or repeated padding.

    "=" ends the data of the current quantum (RFC 2045 §6.8: it is evidence that the end of the data has
    been reached); base64 text after it starts new quanta, so two encoded blobs glued together both decode.
    """

    def __init__(self) -> None:
        self._pending = b""  # alphabet characters that do not yet fill a quantum of four

    def feed(self, chunk: bytes | bytearray | memoryview) -> bytes:
        text = self._pending + bytes(chunk).translate(None, _BASE64_JUNK)
        if b"=" not in text:
            usable = len(text) - len(text) % 4
            self._pending = text[usable:]
            return binascii.a2b_base64(text[:usable]) if usable else b""
        *finished, last = text.split(b"=")
        out = [_decode_base64_tail(segment) for segment in finished]
        usable = len(last) - len(last) % 4
        self._pending = last[usable:]
        if usable:
            out.append(binascii.a2b_base64(last[:usable]))
        return b"".join(out)

    def flush(self) -> bytes:
        pending, self._pending = self._pending, b""
        return _decode_base64_tail(pending)


# RFC 2045 §6.7 rule 3: whitespace at the end of an encoded line was added in transport and is deleted.
_TRAILING_WHITESPACE = re.compile(rb"[ \t]+(?=\r?\n)")
# RFC 2045 §6.7 rule 5: "=" at the end of a line is a soft line break.
_SOFT_BREAK = re.compile(rb"=\r?\n")
# An "=" that starts neither an escape nor a soft line break stays a literal "=" (RFC 2045 §6.7 note 1,
# the robust reading).
_STRAY_EQUALS = re.compile(rb"=(?![0-9A-Fa-f]{2}|\r?\n)")
# The end of an unfinished line that more bytes could change: an escape or soft break being written,
# whitespace that a line end would delete, a CR before its LF.
_UNSETTLED_END = re.compile(rb"(?:=[ \t]*|=[0-9A-Fa-f]|[ \t]*)\r?\Z")
_END_OF_DATA = re.compile(rb"=?[ \t]*\Z")
QP_LINE_CAP = 64 * 1024  # an unfinished line longer than this is decoded up to its unsettled end


def _decode_qp_span(span: bytes) -> bytes:
    """Decode text whose line ends are all complete (or whose unsettled end was held back)."""
    span = _TRAILING_WHITESPACE.sub(b"", span)
    # Stray "=" are escaped before soft breaks join lines, so every "=" is judged within its own line.
    span = _STRAY_EQUALS.sub(b"=3D", span)
    span = _SOFT_BREAK.sub(b"", span)
    # Only valid "=XX" escapes are left, which binascii decodes in C.
    return binascii.a2b_qp(span)


class QuotedPrintableDecoder:
    """quoted-printable (RFC 2045 §6.7): soft line breaks, escapes and trailing whitespace may be split
    across chunks; invalid escapes are kept as sent."""

    def __init__(self, *, line_cap: int = QP_LINE_CAP) -> None:
        self._pending = b""  # the unfinished last line
        self._line_cap = line_cap

    def feed(self, chunk: bytes | bytearray | memoryview) -> bytes:
        text = self._pending + bytes(chunk)
        cut = text.rfind(b"\n") + 1
        if len(text) - cut > self._line_cap:
            unsettled = _UNSETTLED_END.search(text, cut)
            assert unsettled is not None  # the pattern matches the empty string at the end
            cut = unsettled.start()
        self._pending = text[cut:]
        return _decode_qp_span(text[:cut]) if cut else b""

    def flush(self) -> bytes:
        pending, self._pending = self._pending, b""
        # The end of the data ends the last line: its trailing whitespace goes, and a final "=" is a
        # soft line break with nothing after it.
        return _decode_qp_span(_END_OF_DATA.sub(b"", pending, count=1))


_IDENTITY = frozenset(("7BIT", "8BIT", "BINARY"))


def make_decoder(encoding: str) -> Decoder | None:
    """A fresh decoder for a Content-Transfer-Encoding name (any case); None for an encoding not known here.

    RFC 2045 §6.1: the encoding is a token, case-insensitive; an empty value means 7bit (§6.1 default).
    """
    name = encoding.strip().upper()
    if not name or name in _IDENTITY:
        return IdentityDecoder()
    if name == "BASE64":
        return Base64Decoder()
    if name == "QUOTED-PRINTABLE":
        return QuotedPrintableDecoder()
    return None


def decode_all(encoding: str, data: bytes | bytearray | memoryview) -> bytes | None:
    """Decode a whole body at once; None for an unknown encoding."""
    decoder = make_decoder(encoding)
    if decoder is None:
        return None
    return decoder.feed(data) + decoder.flush()
