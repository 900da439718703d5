"""Where a FETCH body section lies in the stored message (RFC 9051 §6.4.5, RFC 3516 BINARY).

The MIME structure stored at delivery gives absolute byte offsets for every part, so each section is one
ranged read of the stored bytes, plus, for HEADER.FIELDS[.NOT], a filter over the header block that was read.

Part numbering (RFC 9051 §6.4.5): the parts of a multipart are numbered from 1; a message that is not
multipart has one part, 1, its body; the parts of a message/rfc822 part are numbered inside its
encapsulated message, so `2.1` is the first part of the message in part 2 when that message is multipart,
or that message's body when it is not.

A section that names no part of the message (a part number past the last part, HEADER or TEXT of a part
that is not message/rfc822) is not an error: RFC 9051 defines no response for it, and like Dovecot the plan
is an empty range with `exists` False, which the server sends as an empty string.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from kittiwake.mail.structure import BodyPart, MessageStructure
from kittiwake.proto.imap.fetch_items import Partial, Section, SectionText

__all__ = [
    "BinaryError",
    "BinaryPlan",
    "HeaderFilter",
    "SectionPlan",
    "apply_partial",
    "filter_header_fields",
    "find_part",
    "plan_binary",
    "plan_section",
    "render_section",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderFilter:
    """Keep (or, with `negate`, drop) the header fields named in `names` (compared ignoring ASCII case)."""

    names: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionPlan:
    """Bytes `start`..`end` of the stored message, then `header_filter` over them when it is set."""

    start: int
    end: int
    header_filter: HeaderFilter | None = None
    exists: bool = True

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryPlan:
    """The encoded body of a leaf part (`start`..`end`) and its Content-Transfer-Encoding, upper case."""

    start: int
    end: int
    encoding: str
    exists: bool = True


class BinaryError(enum.Enum):
    """Why BINARY[part] cannot be answered; the value is the response text the server may use."""

    # RFC 3516 §4.3 (RFC 9051 §7.1 UNKNOWN-CTE): NO [UNKNOWN-CTE] for an encoding the server cannot decode.
    UNKNOWN_CTE = "unknown Content-Transfer-Encoding"
    # RFC 3516 §4.2: BINARY removes the Content-Transfer-Encoding of one section. A multipart, an
    # encapsulated message or the whole message (BINARY[]) holds other parts, each with its own, so it is
    # refused rather than answered with a mix of decoded and encoded bytes.
    NOT_A_LEAF = "BINARY needs a single, non-multipart body part"


_DECODABLE = frozenset(("7BIT", "8BIT", "BINARY", "BASE64", "QUOTED-PRINTABLE"))
_HEADER_TEXTS = frozenset((SectionText.HEADER, SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT))


def _numbered_parts(part: BodyPart) -> tuple[BodyPart, ...]:
    """The parts that number `n` counts under `part`: a multipart's parts, or the parts of the message that
    a message/rfc822 part holds; none for other leaves."""
    if part.is_multipart:
        return part.children
    if part.message is not None:
        return _message_parts(part.message)
    return ()


def _message_parts(message: MessageStructure) -> tuple[BodyPart, ...]:
    root = message.root
    # RFC 9051 §6.4.5: a message that is not multipart has only part 1, its body.
    return root.children if root.is_multipart else (root,)


def find_part(structure: MessageStructure, part: Iterable[int]) -> BodyPart | None:
    """The body part that a part specifier such as (1, 2) names; None when there is none."""
    numbers = tuple(part)
    if not numbers:
        return structure.root
    candidates = _message_parts(structure)
    found: BodyPart | None = None
    for number in numbers:
        if not 1 <= number <= len(candidates):
            return None
        found = candidates[number - 1]
        candidates = _numbered_parts(found)
    return found


def _missing(structure: MessageStructure) -> SectionPlan:
    return SectionPlan(start=structure.size, end=structure.size, exists=False)


def plan_section(structure: MessageStructure, section: Section) -> SectionPlan:
    """The byte range and filter that answer BODY[section] (RFC 9051 §6.4.5)."""
    if not section.part:
        if section.text is None:
            return SectionPlan(start=0, end=structure.size)
        return _plan_message_text(structure, section)
    part = find_part(structure, section.part)
    if part is None:
        return _missing(structure)
    if section.text is None:
        return SectionPlan(start=part.body_start, end=part.body_end)
    if section.text is SectionText.MIME:
        # RFC 9051 §6.4.5: MIME is the part's own MIME header, with its ending blank line.
        return SectionPlan(start=part.header_start, end=part.body_start)
    # RFC 9051 §6.4.5: HEADER, HEADER.FIELDS[.NOT] and TEXT after a part number refer to the message that
    # a message/rfc822 part holds; any other part has none.
    if part.message is None:
        return _missing(structure)
    return _plan_message_text(part.message, section)


def _plan_message_text(message: MessageStructure, section: Section) -> SectionPlan:
    root = message.root
    if section.text is SectionText.TEXT:
        return SectionPlan(start=root.body_start, end=root.body_end)
    header_filter = None
    if section.text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
        negate = section.text is SectionText.HEADER_FIELDS_NOT
        header_filter = HeaderFilter(names=section.header_fields, negate=negate)
    return SectionPlan(start=root.header_start, end=root.body_start, header_filter=header_filter)


def render_section(plan: SectionPlan, data: bytes | bytearray | memoryview) -> bytes:
    """The section's content from `data`, the bytes `plan.start`..`plan.end` of the stored message."""
    if plan.header_filter is None:
        return bytes(data)
    return filter_header_fields(data, plan.header_filter.names, negate=plan.header_filter.negate)


# One header line, with its line end when it has one.
_LINE = re.compile(rb"[^\n]*\n|[^\n]+")
_FIELD_NAME = re.compile(rb"([^:\r\n]*?)[ \t]*:")


def filter_header_fields(
    block: bytes | bytearray | memoryview, names: Iterable[str], *, negate: bool = False
) -> bytes:
    """The fields of a header block whose names are (or, with `negate`, are not) in `names`.

    RFC 9051 §6.4.5: names match ignoring ASCII case but otherwise exactly; each kept field keeps its
    continuation lines and original bytes, in original order. The blank line that ends the header is
    included when the block has one (a message with no body may have none), written as CRLF.
    A line that is neither a field nor a continuation has no name: HEADER.FIELDS.NOT keeps it.
    """
    wanted = {name.encode("ascii", "replace").lower() for name in names}
    data = bytes(block)
    kept: list[bytes] = []
    keep = False
    ended = False
    for match in _LINE.finditer(data):
        line = match[0]
        if line in (b"\r\n", b"\n"):
            ended = True
            break
        if line[:1] in (b" ", b"\t"):
            if keep:
                kept.append(line)
            continue
        name = _FIELD_NAME.match(line)
        keep = (name is not None and name[1].lower() in wanted) != negate
        if keep:
            kept.append(line)
    if kept and not kept[-1].endswith(b"\n"):
        kept.append(b"\r\n")  # the last field ends a block cut without a line end
    if ended:
        kept.append(b"\r\n")
    return b"".join(kept)


def apply_partial(length: int, partial: Partial | None) -> tuple[int, int]:
    """(offset, count) of the bytes that `<origin.count>` selects from a section of `length` bytes.

    RFC 9051 §6.4.5: an origin beyond the end gives an empty string; a count past the end is cut there.
    """
    if partial is None:
        return 0, length
    offset = min(partial.offset, length)
    return offset, min(partial.length, length - offset)


def plan_binary(structure: MessageStructure, part: tuple[int, ...]) -> BinaryPlan | BinaryError:
    """The encoded bytes and encoding that answer BINARY[part] and BINARY.SIZE[part] (RFC 3516 §4.2).

    A part that does not exist is an empty plan with `exists` False, as for BODY[part].
    """
    if not part:
        return BinaryError.NOT_A_LEAF
    found = find_part(structure, part)
    if found is None:
        return BinaryPlan(start=structure.size, end=structure.size, encoding="7BIT", exists=False)
    if found.is_multipart or found.message is not None:
        return BinaryError.NOT_A_LEAF
    encoding = found.encoding.upper() or "7BIT"
    if encoding not in _DECODABLE:
        return BinaryError.UNKNOWN_CTE
    return BinaryPlan(start=found.body_start, end=found.body_end, encoding=encoding)
