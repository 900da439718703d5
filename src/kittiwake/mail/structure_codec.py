"""MessageStructure to and from compact JSON for storage: positional arrays, no field names.

Layout (version 1): [1, size, envelope, root]
  envelope = [date, subject, from, sender, reply_to, to, cc, bcc, in_reply_to, message_id]
             each address list a list of [name, adl, mailbox, host]
  part     = [header_start, body_start, body_end, body_lines, type, subtype, params, id, description, encoding,
              md5, disposition, disposition_params, language, location, children, message]
             params flattened as [name, value, name, value, ...]; message = [size, envelope, root] or null
Strings may hold surrogate escapes (undecodable header bytes); JSON's \\udcXX escapes carry them exactly.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from kittiwake.mail.envelope import Envelope, EnvelopeAddress
from kittiwake.mail.structure import BodyPart, MessageStructure

_VERSION = 1
_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), check_circular=False)
_decode = json.JSONDecoder().decode


class StructureFormatError(ValueError):
    """Stored structure bytes that this version cannot read."""


def dump_structure(structure: MessageStructure) -> bytes:
    """Serialise a structure to compact ASCII JSON bytes; `load_structure` gives back an equal structure."""
    return _ENCODER.encode([_VERSION, *_dump_message(structure)]).encode("ascii")


def _dump_message(structure: MessageStructure) -> list[Any]:
    return [structure.size, _dump_envelope(structure.envelope), _dump_part(structure.root)]


def _dump_addresses(addresses: tuple[EnvelopeAddress, ...]) -> list[list[str | None]]:
    return [[a.name, a.adl, a.mailbox, a.host] for a in addresses]


def _dump_envelope(envelope: Envelope) -> list[Any]:
    return [
        envelope.date, envelope.subject, _dump_addresses(envelope.from_), _dump_addresses(envelope.sender),
        _dump_addresses(envelope.reply_to), _dump_addresses(envelope.to), _dump_addresses(envelope.cc),
        _dump_addresses(envelope.bcc), envelope.in_reply_to, envelope.message_id,
    ]  # fmt: skip


def _flat(params: tuple[tuple[str, str], ...]) -> list[str]:
    return [item for pair in params for item in pair]


def _dump_part(part: BodyPart) -> list[Any]:
    return [
        part.header_start, part.body_start, part.body_end, part.body_lines, part.media_type, part.media_subtype,
        _flat(part.params), part.content_id, part.description, part.encoding, part.md5, part.disposition,
        _flat(part.disposition_params), list(part.language), part.location,
        [_dump_part(child) for child in part.children],
        _dump_message(part.message) if part.message is not None else None,
    ]  # fmt: skip


def load_structure(data: bytes | bytearray | memoryview | str) -> MessageStructure:
    """Rebuild a structure written by `dump_structure`. Raises StructureFormatError for unreadable data."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("ascii")
        value = _decode(text)
        if value[0] != _VERSION:
            raise StructureFormatError(f"unknown structure version {value[0]!r}")
        return _load_message(value[1], value[2], value[3])
    except (ValueError, TypeError, IndexError, KeyError) as error:
        if isinstance(error, StructureFormatError):
            raise
        raise StructureFormatError(str(error)) from error


@functools.lru_cache(maxsize=1024)
def load_structure_cached(data: bytes) -> MessageStructure:
    """`load_structure`, remembering the last structures loaded. Keyed by the stored bytes themselves, so
    an answer can never belong to another message; structures are immutable, so sharing them is safe.
    Clients fetch the same recent messages again and again (each device, each folder view)."""
    return load_structure(data)


def _load_message(size: int, envelope: list[Any], root: list[Any]) -> MessageStructure:
    return MessageStructure(size=size, envelope=_load_envelope(envelope), root=_load_part(root))


def _load_addresses(items: list[list[str | None]]) -> tuple[EnvelopeAddress, ...]:
    return tuple(EnvelopeAddress(name=n, adl=a, mailbox=m, host=h) for n, a, m, h in items)


def _load_envelope(e: list[Any]) -> Envelope:
    from_ = _load_addresses(e[2])
    return Envelope(
        date=e[0],
        subject=e[1],
        from_=from_,
        sender=_load_addresses(e[3]) if e[3] != e[2] else from_,
        reply_to=_load_addresses(e[4]) if e[4] != e[2] else from_,
        to=_load_addresses(e[5]),
        cc=_load_addresses(e[6]),
        bcc=_load_addresses(e[7]),
        in_reply_to=e[8],
        message_id=e[9],
    )


def _pairs(flat: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple(zip(flat[::2], flat[1::2], strict=True))


def _load_part(p: list[Any]) -> BodyPart:
    message = p[16]
    return BodyPart(
        header_start=p[0],
        body_start=p[1],
        body_end=p[2],
        body_lines=p[3],
        media_type=p[4],
        media_subtype=p[5],
        params=_pairs(p[6]) if p[6] else (),
        content_id=p[7],
        description=p[8],
        encoding=p[9],
        md5=p[10],
        disposition=p[11],
        disposition_params=_pairs(p[12]) if p[12] else (),
        language=tuple(p[13]),
        location=p[14],
        children=tuple([_load_part(child) for child in p[15]]),
        message=_load_message(message[0], message[1], message[2]) if message is not None else None,
    )
