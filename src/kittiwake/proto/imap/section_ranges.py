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

BINARY[part] (RFC 3516 §4.2) is the section with its Content-Transfer-Encoding removed: for a leaf, its
decoded body. A multipart or message/rfc822 section may only have an identity encoding (RFC 2045 §6.4), and
BINARY[] is the whole message, header included; such a section goes out as stored, except that each base64
or quoted-printable leaf inside it is decoded and the header of that leaf says "binary" instead, so the
result is still a well-formed MIME entity. That is what Dovecot answers. RFC 9051 §6.4.5 notes that clients
can only request BINARY of leaf parts; RFC 3516 puts no such limit, and neither defines another answer.
`plan_binary` lists the stored byte ranges in order and what to do with each; `BinaryAssembler` turns the
stored bytes into the content chunk by chunk, so memory stays bounded by one header block.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from kittiwake.mail.structure import BodyPart, MessageStructure
from kittiwake.mail.transfer_encoding import Decoder, make_decoder
from kittiwake.proto.imap.fetch_items import Partial, Section, SectionText

__all__ = [
    "BinaryAssembler",
    "BinaryError",
    "BinaryPlan",
    "BinarySegment",
    "HeaderFilter",
    "SectionPlan",
    "SegmentKind",
    "apply_partial",
    "filter_header_fields",
    "find_part",
    "plan_binary",
    "plan_section",
    "render_section",
    "rewrite_binary_header",
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


class SegmentKind(enum.Enum):
    """What BINARY does with one range of the stored bytes."""

    COPY = "copy"  # sent as stored: identity-encoded bodies, headers, delimiters, preambles
    DECODE = "decode"  # a leaf body in base64 or quoted-printable, decoded
    HEADER = "header"  # the header of a decoded part, its Content-Transfer-Encoding made "binary"


@dataclass(frozen=True, slots=True, kw_only=True)
class BinarySegment:
    kind: SegmentKind
    start: int
    end: int
    encoding: str = "7BIT"  # for DECODE: the Content-Transfer-Encoding, upper case


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryPlan:
    """The stored bytes `start`..`end` that answer BINARY[part], as consecutive segments in order."""

    segments: tuple[BinarySegment, ...]
    exists: bool = True

    @property
    def start(self) -> int:
        return self.segments[0].start if self.segments else 0

    @property
    def end(self) -> int:
        return self.segments[-1].end if self.segments else 0


class BinaryError(enum.Enum):
    """Why BINARY[part] cannot be answered; the value is the response text the server may use."""

    # RFC 3516 §4.3 (RFC 9051 §7.1 UNKNOWN-CTE): NO [UNKNOWN-CTE] for an encoding the server cannot decode,
    # in the section or in any part inside it.
    UNKNOWN_CTE = "unknown Content-Transfer-Encoding"


_DECODABLE = frozenset(("7BIT", "8BIT", "BINARY", "BASE64", "QUOTED-PRINTABLE"))
_DECODED = frozenset(("BASE64", "QUOTED-PRINTABLE"))  # the others are identity encodings (RFC 2045 §6.2)
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
    """The segments of stored bytes that answer BINARY[part] and BINARY.SIZE[part] (RFC 3516 §4.2).

    BINARY[] is the whole message, header included; BINARY[n] is the body of part n, which for a
    message/rfc822 part is the encapsulated message, header included. A part that does not exist is an
    empty plan with `exists` False, as for BODY[part].
    """
    segments = _Segments()
    if not part:
        error = _plan_entity(structure.root, segments, with_header=True)
    else:
        found = find_part(structure, part)
        if found is None:
            return BinaryPlan(segments=(), exists=False)
        error = _plan_entity(found, segments, with_header=False)
    return error if error is not None else BinaryPlan(segments=tuple(segments.items))


class _Segments:
    """Segments being planned; neighbouring COPY ranges are merged into one."""

    def __init__(self) -> None:
        self.items: list[BinarySegment] = []

    def add(self, kind: SegmentKind, start: int, end: int, encoding: str = "7BIT") -> None:
        last = self.items[-1] if self.items else None
        if last is not None:
            start = max(start, last.end)  # never twice the same bytes, whatever offsets a damaged part has
        if end <= start:
            return
        if kind is SegmentKind.COPY and last is not None and last.kind is kind and last.end == start:
            self.items[-1] = BinarySegment(kind=kind, start=last.start, end=end)
            return
        self.items.append(BinarySegment(kind=kind, start=start, end=end, encoding=encoding))


def _plan_entity(part: BodyPart, segments: _Segments, *, with_header: bool) -> BinaryError | None:
    encoding = part.encoding.upper() or "7BIT"
    if encoding not in _DECODABLE:
        return BinaryError.UNKNOWN_CTE
    if with_header:
        kind = SegmentKind.HEADER if encoding in _DECODED else SegmentKind.COPY
        segments.add(kind, part.header_start, part.body_start)
    inner = part.children if part.is_multipart else (part.message.root,) if part.message is not None else ()
    if not inner:
        kind = SegmentKind.DECODE if encoding in _DECODED else SegmentKind.COPY
        segments.add(kind, part.body_start, part.body_end, encoding)
        return None
    # Preamble, delimiters and epilogue (or nothing, around an encapsulated message) go as stored.
    position = part.body_start
    for child in inner:
        segments.add(SegmentKind.COPY, position, child.header_start)
        error = _plan_entity(child, segments, with_header=True)
        if error is not None:
            return error
        position = max(position, child.body_end)
    segments.add(SegmentKind.COPY, position, part.body_end)
    return None


_TRANSFER_ENCODING = ("Content-Transfer-Encoding",)
_BINARY_ENCODING_FIELD = b"Content-Transfer-Encoding: binary\r\n"


def rewrite_binary_header(block: bytes | bytearray | memoryview) -> bytes:
    """A decoded part's header block: its Content-Transfer-Encoding fields replaced by one saying "binary"
    (RFC 2045 §6.2), put last before the blank line that ends the block, every other line as it was."""
    kept = filter_header_fields(block, _TRANSFER_ENCODING, negate=True)
    if kept.endswith(b"\n\r\n") or kept == b"\r\n":
        return kept[:-2] + _BINARY_ENCODING_FIELD + b"\r\n"
    return kept + _BINARY_ENCODING_FIELD


class BinaryAssembler:
    """Turns the stored bytes `plan.start`..`plan.end`, fed in chunks of any size, into BINARY content.

    Call `feed()` with each chunk in order and `flush()` once at the end; each returns the content known so
    far. Only a HEADER segment is held whole (a header block); bodies are decoded as they pass.
    """

    def __init__(self, plan: BinaryPlan) -> None:
        self._segments = plan.segments
        self._index = 0
        self._position = plan.start
        self._header = bytearray()
        self._decoder: Decoder | None = None

    def feed(self, chunk: bytes | bytearray | memoryview) -> bytes:
        out: list[bytes] = []
        view = memoryview(chunk)
        while view and self._index < len(self._segments):
            segment = self._segments[self._index]
            if self._position < segment.start:  # bytes between segments belong to none
                skip = min(len(view), segment.start - self._position)
                view = view[skip:]
                self._position += skip
                continue
            take = min(len(view), segment.end - self._position)
            self._emit(segment, view[:take], out)
            view = view[take:]
            self._position += take
            if self._position >= segment.end:
                self._finish(segment, out)
                self._index += 1
        return b"".join(out)

    def flush(self) -> bytes:
        """Call once after the last chunk: ends a segment that the stored bytes stopped short of (a message
        shorter than its structure says), so what was read of it still goes out."""
        out: list[bytes] = []
        if self._index < len(self._segments):
            self._finish(self._segments[self._index], out)
            self._index = len(self._segments)
        return b"".join(out)

    def _emit(self, segment: BinarySegment, data: memoryview, out: list[bytes]) -> None:
        if segment.kind is SegmentKind.COPY:
            out.append(bytes(data))
        elif segment.kind is SegmentKind.HEADER:
            self._header += data
        else:
            if self._decoder is None:
                self._decoder = make_decoder(segment.encoding)
                assert self._decoder is not None, "plan_binary plans only encodings it can decode"
            out.append(self._decoder.feed(data))

    def _finish(self, segment: BinarySegment, out: list[bytes]) -> None:
        if segment.kind is SegmentKind.HEADER:
            out.append(rewrite_binary_header(self._header))
            self._header.clear()
        elif segment.kind is SegmentKind.DECODE and self._decoder is not None:
            out.append(self._decoder.flush())
            self._decoder = None
