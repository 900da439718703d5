"""The MIME part tree of a message with the byte offsets IMAP needs, parsed once at delivery.

Offsets are absolute positions in the stored message bytes, so `BODY[1.2]`, `BODY[1.HEADER]`, `BODY[1.MIME]`
and `BODY[1.TEXT]` are each one ranged read, with no re-parse.

Theory of operation
-------------------
`StructureParser` reads the message as it arrives, in chunks of any size, and keeps only a header block being
read plus the unconsumed end of the last line. Open parts form a stack of frames: the top frame is where the
next bytes belong. A frame reads its header block (up to the first empty line, or a delimiter line of an
enclosing multipart, or `header_cap` bytes), then its body. A multipart body registers its delimiter
"--boundary"; a message/rfc822 body pushes a frame for the encapsulated message. Body bytes are never kept:
the parser searches them for a line starting with "--" (bytes.find), and counts line ends with bytes.count.
A line that starts with the delimiter of any open multipart closes every frame above that multipart, so a
missing inner close delimiter does not swallow the rest of the message. A decision that needs bytes not yet
seen (a partial line that may become a delimiter) waits for the next chunk, which makes the result independent
of how the message was split. At `close()` every open frame ends at the end of the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from kittiwake.mail.content_headers import ContentHeaders, parse_content_headers
from kittiwake.mail.envelope import Envelope, parse_envelope
from kittiwake.mail.headers import parse_header_fields


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyPart:
    """One MIME entity: its header block, its body, and what BODYSTRUCTURE reports about it.

    `header_start`..`body_start` is the part's header block including the blank line that ends it
    (`BODY[n.MIME]`, or `BODY[HEADER]` at the top); `body_start`..`body_end` its body (`BODY[n]`/`BODY[n.TEXT]`).
    Strings are header values decoded as UTF-8 with surrogateescape, so no byte is lost.
    """

    header_start: int
    body_start: int
    body_end: int
    body_lines: int  # CRLF-terminated lines in the body (RFC 9051 `body-fld-lines`)
    media_type: str  # lower case, e.g. "text"
    media_subtype: str  # lower case, e.g. "plain"
    params: tuple[tuple[str, str], ...]  # Content-Type parameters, names lower case, values unquoted
    content_id: str | None
    description: str | None
    encoding: str  # Content-Transfer-Encoding, upper case; "7BIT" when absent
    md5: str | None
    disposition: str | None  # lower case, e.g. "attachment"
    disposition_params: tuple[tuple[str, str], ...]
    language: tuple[str, ...]
    location: str | None
    children: tuple[BodyPart, ...]  # the parts of a multipart, in order
    message: MessageStructure | None  # the encapsulated message of message/rfc822 (and message/global)

    @property
    def body_size(self) -> int:
        return self.body_end - self.body_start

    @property
    def is_multipart(self) -> bool:
        return self.media_type == "multipart"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStructure:
    """A whole message (or an encapsulated message/rfc822 part): its envelope and its root part.

    For the top-level message `root.header_start` is 0 and `root.body_end` is `size`.
    """

    size: int
    envelope: Envelope
    root: BodyPart


HEADER_CAP = 256 * 1024  # a header block longer than this ends there; the rest is body
MAX_DEPTH = 50  # parts nested deeper than this are opaque leaves
_FEED_SLICE = 1 << 20  # a large chunk is taken in slices so the buffer stays small
_HISTORY = 4  # consumed bytes kept before the scan point: the CRLF before a delimiter and the byte before it

_READING_HEADER, _READING_BODY, _READING_EPILOGUE = 0, 1, 2
_LEAF, _MULTIPART, _MESSAGE = 0, 1, 2
_ENCAPSULATED = frozenset(("rfc822", "global"))  # RFC 2046 §5.2.1, RFC 6532 §3.7
_IDENTITY_ENCODINGS = frozenset(("7BIT", "8BIT", "BINARY"))
# A header block ends at an empty line, or at a line starting "--" that is a delimiter of an open multipart.
_HEADER_STOP = re.compile(rb"\n(\r?\n|--)")
_NEED_MORE = (-1, False, 0)
_PLACEHOLDER = ContentHeaders(
    media_type="text", media_subtype="plain", params=(("charset", "us-ascii"),), content_id=None,
    description=None, encoding="7BIT", md5=None, disposition=None, disposition_params=(), language=(),
    location=None,
)  # fmt: skip


class _Frame:
    """An open part: where it starts, what its header said, and the parts found inside it so far."""

    __slots__ = (
        "body_start", "boundary", "children", "content", "depth", "envelope", "header_start", "in_digest",
        "is_message_root", "kind", "lf_at_body_start", "message", "state",
    )  # fmt: skip

    def __init__(self, *, header_start: int, depth: int, in_digest: bool, is_message_root: bool) -> None:
        self.header_start = header_start
        self.depth = depth
        self.in_digest = in_digest  # RFC 2046 §5.1.5: parts of a digest default to message/rfc822
        self.is_message_root = is_message_root
        self.state = _READING_HEADER
        self.kind = _LEAF
        self.body_start = header_start
        self.lf_at_body_start = 0
        self.boundary = b""  # "--" + boundary, once a multipart's body is being read
        self.content = _PLACEHOLDER
        self.envelope: Envelope | None = None
        self.children: list[BodyPart] = []
        self.message: MessageStructure | None = None


class StructureParser:
    """Incremental MIME structure parser with memory bounded by one header block.

    Call `feed()` with each chunk of the message as it arrives, then `close()` once for the structure.
    Malformed MIME never raises; it gives a best-effort structure.
    """

    def __init__(self, *, header_cap: int = HEADER_CAP, max_depth: int = MAX_DEPTH) -> None:
        self._header_cap = header_cap
        self._max_depth = max_depth
        # A virtual line end before byte 0 lets the first line be found like every other.
        self._buffer = bytearray(b"\n")
        self._base = -1  # absolute offset of self._buffer[0]
        self._scan = 0  # absolute offset: bytes before it are consumed and their line ends counted
        self._line_ends = 0  # LF bytes in message[0:scan]
        self._header_search = -1  # absolute offset where the search for the end of a header block resumes
        self._awaiting_part = False  # a delimiter was read; the next part starts after its line end
        self._stack = [_Frame(header_start=0, depth=0, in_digest=False, is_message_root=True)]
        self._delimiters: list[tuple[bytes, int]] = []  # (b"--" + boundary, stack index), longest first
        self._need = 0  # bytes of a line needed to tell whether it is a delimiter
        self._result: MessageStructure | None = None

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add the next bytes of the message. Raises ValueError after `close()`."""
        if self._result is not None:
            raise ValueError("feed() after close()")
        view = memoryview(chunk).cast("B")
        for start in range(0, len(view), _FEED_SLICE):
            self._buffer += view[start : start + _FEED_SLICE]
            self._process(eof=False)
            self._trim()

    @property
    def buffered_size(self) -> int:
        """Bytes of the message held right now: a header block being read and an unfinished line."""
        return len(self._buffer)

    def close(self) -> MessageStructure:
        """End the message and return its structure; every part still open ends at the end of the data."""
        if self._result is None:
            self._process(eof=True)
            end = self._base + len(self._buffer)
            while len(self._stack) > 1:
                self._pop_frame(end)
            root = self._stack.pop()
            if root.state == _READING_HEADER:
                self._end_header(root, end, enter_body=False)
            part = self._build_part(root, end)
            self._result = MessageStructure(size=end, envelope=root.envelope or parse_envelope(()), root=part)
        return self._result

    # -- scanning ---------------------------------------------------------------------------------------------

    def _process(self, *, eof: bool) -> None:
        while True:
            if self._awaiting_part:
                progressed = self._start_next_part(eof=eof)
            elif self._stack[-1].state == _READING_HEADER:
                progressed = self._scan_header(eof=eof)
            else:
                progressed = self._scan_body(eof=eof)
            if not progressed:
                return

    def _advance(self, to: int) -> None:
        if to > self._scan:
            base = self._base
            self._line_ends += self._buffer.count(b"\n", self._scan - base, to - base)
            self._scan = to

    def _line_ends_before(self, position: int) -> int:
        base = self._base
        if position >= self._scan:
            return self._line_ends + self._buffer.count(b"\n", self._scan - base, position - base)
        return self._line_ends - self._buffer.count(b"\n", position - base, self._scan - base)

    def _trim(self) -> None:
        drop = self._scan - _HISTORY - self._base
        if drop > 0:
            del self._buffer[:drop]  # bytearray drops its front without copying the rest
            self._base += drop

    def _scan_header(self, *, eof: bool) -> bool:
        frame = self._stack[-1]
        buffer, base = self._buffer, self._base
        start = frame.header_start - base
        search = max(self._header_search - base, start - 1)
        limit = start + self._header_cap
        while (stop := _HEADER_STOP.search(buffer, search, min(len(buffer), limit + 2))) is not None:
            if stop[1] != b"--":
                self._end_header(frame, base + stop.end(), enter_body=True)
                return True
            line = stop.start() + 1
            found = self._match_delimiter(line, eof=eof) if self._delimiters else None
            if found is _NEED_MORE:
                self._header_search = base + stop.start()
                return False
            if found is not None:
                self._on_delimiter(line, found)
                return True
            search = line
        if len(buffer) >= limit + 2:
            # The header block is too long: it ends at the last line end within the cap.
            last_line_end = buffer.rfind(b"\n", start, limit)
            body_start = last_line_end + 1 if last_line_end >= start else limit
            self._end_header(frame, base + body_start, enter_body=True)
            return True
        if eof:
            self._end_header(frame, base + len(buffer), enter_body=True)
            return True
        self._header_search = base + max(start - 1, len(buffer) - 3)
        return False

    def _scan_body(self, *, eof: bool) -> bool:
        buffer, base = self._buffer, self._base
        if not self._delimiters:
            self._advance(base + len(buffer))
            return False
        position = self._scan - base
        while (candidate := buffer.find(b"\n--", position - 1)) >= 0:
            line = candidate + 1
            found = self._match_delimiter(line, eof=eof)
            if found is _NEED_MORE:
                self._advance(base + line)
                return False
            if found is not None:
                self._on_delimiter(line, found)
                return True
            position = line + 1
        end = len(buffer)
        if not eof:
            # Keep a short unfinished last line: more bytes may make it a delimiter.
            last_line_end = buffer.rfind(b"\n", position - 1)
            if last_line_end >= 0 and end - (last_line_end + 1) < self._need:
                end = last_line_end + 1
        self._advance(base + max(end, position))
        return False

    def _match_delimiter(self, line: int, *, eof: bool) -> tuple[int, bool, int] | None:
        """(stack index, is close delimiter, length) for a line starting "--" at buffer index `line`."""
        buffer = self._buffer
        if not eof and len(buffer) - line < self._need and buffer.find(b"\n", line) < 0:
            return _NEED_MORE
        # RFC 2046 §5.1.1: the delimiter is matched as a line prefix; transport padding or junk may follow it.
        for delimiter, index in self._delimiters:
            if buffer.startswith(delimiter, line):
                after = line + len(delimiter)
                return index, buffer.startswith(b"--", after), len(delimiter)
        return None

    def _on_delimiter(self, line: int, found: tuple[int, bool, int]) -> None:
        index, is_close, length = found
        buffer, base = self._buffer, self._base
        self._advance(base + line)
        # RFC 2046 §5.1.1: the CRLF before a delimiter line belongs to the delimiter, not to the part before.
        line_end_length = 2 if line >= 2 and buffer[line - 2] == 0x0D else 1
        end = base + line - line_end_length
        while len(self._stack) > index + 1:
            end = self._pop_frame(end)
        if is_close:
            self._stack[-1].state = _READING_EPILOGUE
            self._refresh_delimiters()
            self._advance(base + line + length + 2)
        else:
            self._awaiting_part = True
            self._advance(base + line + length)

    def _start_next_part(self, *, eof: bool) -> bool:
        buffer, base = self._buffer, self._base
        line_end = buffer.find(b"\n", self._scan - base)
        if line_end < 0:
            self._advance(base + len(buffer))
            if eof:
                self._awaiting_part = False  # a delimiter on the last line starts no part
            return False
        self._advance(base + line_end + 1)
        self._awaiting_part = False
        owner = self._stack[-1]
        self._push(owner, self._scan, is_message_root=False)
        return True

    # -- frames -----------------------------------------------------------------------------------------------

    def _push(self, parent: _Frame, header_start: int, *, is_message_root: bool) -> None:
        in_digest = parent.kind == _MULTIPART and parent.content.media_subtype == "digest"
        frame = _Frame(
            header_start=header_start,
            depth=parent.depth + 1,
            in_digest=in_digest,
            is_message_root=is_message_root,
        )
        self._stack.append(frame)
        self._header_search = header_start - 1

    def _end_header(self, frame: _Frame, body_start: int, *, enter_body: bool) -> None:
        base = self._base
        fields = parse_header_fields(self._buffer[frame.header_start - base : body_start - base])
        if enter_body:
            self._advance(body_start)
        frame.body_start = body_start
        frame.lf_at_body_start = self._line_ends_before(body_start)
        frame.content = parse_content_headers(fields, in_digest=frame.in_digest)
        if frame.is_message_root:
            frame.envelope = parse_envelope(fields)
        frame.state = _READING_BODY
        self._classify(frame)
        if not enter_body:
            return
        if frame.kind == _MULTIPART:
            self._refresh_delimiters()
        elif frame.kind == _MESSAGE:
            self._push(frame, body_start, is_message_root=True)

    def _classify(self, frame: _Frame) -> None:
        content = frame.content
        if frame.depth >= self._max_depth:
            return
        if content.media_type == "multipart":
            boundary = dict(content.params).get("boundary", "").encode("utf-8", "surrogateescape")
            if boundary and b"\n" not in boundary and b"\r" not in boundary:
                frame.kind = _MULTIPART
                frame.boundary = b"--" + boundary
        elif (
            content.media_type == "message"
            and content.media_subtype in _ENCAPSULATED
            and content.encoding in _IDENTITY_ENCODINGS
        ):
            # RFC 2046 §5.2.1: an encoded message/rfc822 body is not readable as a message; it stays opaque.
            frame.kind = _MESSAGE

    def _refresh_delimiters(self) -> None:
        delimiters = [
            (frame.boundary, index)
            for index, frame in enumerate(self._stack)
            if frame.kind == _MULTIPART and frame.state == _READING_BODY
        ]
        # A line matching two delimiters belongs to the longest; of equal ones, the innermost.
        delimiters.sort(key=lambda item: (-len(item[0]), -item[1]))
        self._delimiters = delimiters
        self._need = len(delimiters[0][0]) + 2 if delimiters else 0

    def _pop_frame(self, end: int) -> int:
        """Close the top frame (never the root) at `end`, or later if its header or contents reach further;
        return where it ended."""
        frame = self._stack.pop()
        if frame.state == _READING_HEADER:
            self._end_header(frame, max(frame.header_start, end), enter_body=False)
        part = self._build_part(frame, max(frame.body_start, end))
        parent = self._stack[-1]
        if parent.kind == _MESSAGE:
            size = part.body_end - part.header_start
            parent.message = MessageStructure(
                size=size, envelope=frame.envelope or parse_envelope(()), root=part
            )
        else:
            parent.children.append(part)
        self._refresh_delimiters()
        return part.body_end

    def _count_lines(self, body_start: int, lf_at_body_start: int, body_end: int) -> int:
        if body_end <= body_start:
            return 0
        lines = self._line_ends_before(body_end) - lf_at_body_start
        if self._buffer[body_end - 1 - self._base] != 0x0A:
            lines += 1  # a last line without a line end still counts
        return lines

    def _build_part(self, frame: _Frame, body_end: int) -> BodyPart:
        content = frame.content
        lines = self._count_lines(frame.body_start, frame.lf_at_body_start, body_end)
        children = tuple(frame.children)
        if content.media_type == "multipart" and not children:
            # BODYSTRUCTURE needs at least one part: the body with no delimiter found reads as one text part.
            children = (
                _make_part(_PLACEHOLDER, frame.body_start, frame.body_start, body_end, lines, (), None),
            )
        message = frame.message
        if message is None and frame.kind == _MESSAGE:
            empty = _make_part(_PLACEHOLDER, body_end, body_end, body_end, 0, (), None)
            message = MessageStructure(size=0, envelope=parse_envelope(()), root=empty)
        return _make_part(content, frame.header_start, frame.body_start, body_end, lines, children, message)


def _make_part(
    content: ContentHeaders,
    header_start: int,
    body_start: int,
    body_end: int,
    body_lines: int,
    children: tuple[BodyPart, ...],
    message: MessageStructure | None,
) -> BodyPart:
    return BodyPart(
        header_start=header_start,
        body_start=body_start,
        body_end=body_end,
        body_lines=body_lines,
        media_type=content.media_type,
        media_subtype=content.media_subtype,
        params=content.params,
        content_id=content.content_id,
        description=content.description,
        encoding=content.encoding,
        md5=content.md5,
        disposition=content.disposition,
        disposition_params=content.disposition_params,
        language=content.language,
        location=content.location,
        children=children,
        message=message,
    )


def parse_structure(data: bytes | bytearray | memoryview) -> MessageStructure:
    """Parse a whole message: `StructureParser` fed once and closed."""
    parser = StructureParser()
    parser.feed(data)
    return parser.close()


def with_prefix(structure: MessageStructure, length: int) -> MessageStructure:
    """The structure of the same message with `length` bytes of header fields put in front of it.

    Every offset moves by `length`, except the start of the top-level header, which now begins with the
    added fields: a server adds its trace fields without parsing the message again.
    """
    if length == 0:
        return structure
    root = _shift_part(structure.root, length)
    return replace(structure, size=structure.size + length, root=replace(root, header_start=0))


def _shift_part(part: BodyPart, delta: int) -> BodyPart:
    message = part.message
    return replace(
        part,
        header_start=part.header_start + delta,
        body_start=part.body_start + delta,
        body_end=part.body_end + delta,
        children=tuple(_shift_part(child, delta) for child in part.children),
        message=None if message is None else replace(message, root=_shift_part(message.root, delta)),
    )
