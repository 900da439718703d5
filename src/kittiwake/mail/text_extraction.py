"""The searchable text of a message: its header decoded, and the text of its body parts decoded.

SEARCH (RFC 9051 §6.4.4) matches strings against what a reader sees, so header values are unfolded and their
RFC 2047 encoded words decoded, and body text is freed of its Content-Transfer-Encoding and charset. The
stored MIME structure says where each part lies; the message is never parsed again.
"""

from __future__ import annotations

from collections.abc import Iterator

from kittiwake.mail.encoded_words import decode_charset, decode_header_value
from kittiwake.mail.headers import field_values, parse_header_fields
from kittiwake.mail.structure import BodyPart, MessageStructure
from kittiwake.mail.transfer_encoding import make_decoder

__all__ = ["BODY_TEXT_CAP", "decode_part_text", "extract_text", "header_text", "header_values"]

BODY_TEXT_CAP = 10 * 1024 * 1024  # characters of body text kept for searching; the rest is not searched
_DECODE_SLICE = 1 << 20
_UTF8_NAMES = frozenset(("us-ascii", "ascii", "utf-8", "utf8"))


def header_values(message_header_block: bytes | bytearray | memoryview, name: str) -> list[str]:
    """The decoded values of every field called `name` (any case) in a header block, in order."""
    return [
        decode_header_value(value) for value in field_values(parse_header_fields(message_header_block), name)
    ]


def header_text(block: bytes | bytearray | memoryview) -> str:
    """A header block as searchable text: one unfolded, decoded `Name: value` line per field."""
    return "".join(f"{name}: {decode_header_value(value)}\n" for name, value in parse_header_fields(block))


def _decode_text(data: bytes, charset: str | None) -> str:
    # Text labelled US-ASCII often carries UTF-8; an unknown charset is read as UTF-8 too.
    if charset is None or charset.lower() in _UTF8_NAMES:
        return data.decode("utf-8", "replace")
    decoded = decode_charset(data, charset)
    return decoded if decoded is not None else data.decode("utf-8", "replace")


def decode_part_text(message: bytes | bytearray | memoryview, part: BodyPart, *, limit: int) -> str:
    """The body of a text part as text, decoded from its transfer encoding and charset; at most about
    `limit` characters. An unknown transfer encoding is read as it is."""
    view = memoryview(message)[part.body_start : part.body_end]
    decoder = make_decoder(part.encoding)
    pieces: list[bytes] = []
    size = 0
    for start in range(0, len(view), _DECODE_SLICE):
        chunk = view[start : start + _DECODE_SLICE]
        piece = decoder.feed(chunk) if decoder is not None else bytes(chunk)
        pieces.append(piece)
        size += len(piece)
        if size >= limit:
            break
    else:
        if decoder is not None:
            pieces.append(decoder.flush())
    # Cutting the bytes may split a character; the decoder replaces the broken end.
    data = b"".join(pieces)[:limit]
    return _decode_text(data, dict(part.params).get("charset"))


def _searchable(part: BodyPart) -> Iterator[BodyPart | MessageStructure]:
    """Text parts and encapsulated messages under `part`, in order."""
    if part.is_multipart:
        for child in part.children:
            yield from _searchable(child)
    elif part.message is not None:
        yield part.message
        yield from _searchable(part.message.root)
    elif part.media_type == "text":
        yield part


def extract_text(
    message: bytes | bytearray | memoryview, structure: MessageStructure, *, body_cap: int = BODY_TEXT_CAP
) -> tuple[str, str]:
    """(header text, body text) of a message for SEARCH.

    The header text is the top-level header (`header_text`). The body text joins, in order, every text/*
    part, including those inside message/rfc822 parts, and the decoded header of each encapsulated
    message, which is part of the outer message's body; other parts are skipped. It stops at `body_cap`
    characters.
    """
    root = structure.root
    headers = header_text(memoryview(message)[root.header_start : root.body_start])
    pieces: list[str] = []
    remaining = body_cap
    for item in _searchable(root):
        if remaining <= 0:
            break
        if isinstance(item, MessageStructure):
            inner = item.root
            text = header_text(memoryview(message)[inner.header_start : inner.body_start])[:remaining]
        else:
            text = decode_part_text(message, item, limit=remaining)[:remaining]
        pieces.append(text)
        remaining -= len(text)
    return headers, "\n".join(pieces)
