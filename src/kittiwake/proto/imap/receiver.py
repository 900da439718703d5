"""IMAP command framing: bytes from the client → `RawCommand` and framing events. Bytes are never decoded.

Theory of operation
-------------------
A command is one or more lines. A line ending in `{n}`, `{n+}` or `~{n}` (literal8, RFC 3516) announces
`n` octets of literal data, after which the command continues with another line (RFC 9051 §4.3, §7.5). The
receiver is a generator parser, as in websockets' `StreamReader`: `receive_data()` only appends to a buffer;
`events()` resumes the generator, which runs until it needs more bytes. Parsing is lazy on purpose: the server
acts on each event before the next one is parsed, so its calls take effect at the right byte:

* `ContinuationNeeded` — a synchronising literal `{n}`. The client sends nothing until the server writes
  `+ ...`. Either do that and keep iterating, or answer the command with a tagged NO/BAD and call
  `refuse_literal()`: the client abandons the command, so the receiver expects a new one.
* `LiteralTooLarge` — the literal exceeds the limit. For `{n}` the client is still waiting for `+`, so
  nothing must be read (RFC 7888 §5: answer `NO [TOOBIG]` instead of the continuation). For `{n+}` the
  octets are on their way: the receiver reads and drops them and the rest of the command, and the server
  answers `BAD [TOOBIG]` (or closes). Without LITERAL+, `{n+}` is LITERAL- (RFC 7888 §4; part of
  IMAP4rev2, RFC 9051 §7.5): only up to 4096 octets.
* `CommandTooLong` — a line longer than `max_line`, or a command whose buffered size exceeds `max_command`.
  The receiver drops bytes up to the end of that line, and follows any `{n+}` literals announced at the end of
  dropped lines so that literal contents are never mistaken for commands; the server answers BAD.
* `start_idle()` after the server accepted IDLE: the next line must be `DONE` (RFC 2177, RFC 9051 §6.3.13)
  and produces `IdleDone`.
* `take_unparsed()` after STARTTLS or COMPRESS: the bytes that followed the command on the wire. Plaintext
  after STARTTLS must be discarded (RFC 9051 §6.2.1: command injection); after COMPRESS they are deflated.

APPEND messages are streamed, not buffered: a literal in an APPEND command is message data unless it stands
in the mailbox position, because flags and date-time can never be literals (RFC 9051 §6.3.12, RFC 3502,
RFC 6855 `UTF8 (~{n})`). Each message literal produces `LiteralStart`, `LiteralChunk`s (bounded by what has
arrived, never accumulated) and `LiteralEnd`, so the server can spool a 50 MB message to a file; the final
`RawCommand` carries a `StreamedLiteral` placeholder in its place, and the parser turns the whole command into
an `Append` whose messages refer to the spooled data by `index`. Message literals are limited by
`max_message`; other literals by `max_literal` and are held in memory.

A bare LF is accepted as a line end; a CR before it is removed.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass

LITERAL_MINUS_LIMIT = 4096  # RFC 7888 §4
_TAG_HEAD = 64
_MARKER_TAIL = 32
_MAX_DIGITS = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Literal:
    """Literal data held in memory; `binary` for literal8 `~{n}` (RFC 3516)."""

    data: bytes
    binary: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamedLiteral:
    """Stands for an APPEND message literal that was delivered as `LiteralChunk` events."""

    index: int  # 0 for the first message of the command, 1 for the next (MULTIAPPEND)
    size: int
    binary: bool = False


Argument = bytes | Literal | StreamedLiteral


@dataclass(frozen=True, slots=True, kw_only=True)
class RawCommand:
    """One complete command. `args` alternate text and literals, starting and ending with text.

    The first text is everything after the command name (with its leading space); literal markers and line
    ends are removed. `name` is upper-cased; for UID commands it is `UID` and the sub-command starts `args`.
    """

    tag: bytes
    name: bytes
    args: tuple[Argument, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinuationNeeded:
    """A synchronising literal: write `+ ...` (or refuse, see `ImapReceiver.refuse_literal`)."""

    tag: bytes
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LiteralTooLarge:
    """A literal over the limit; the command is dropped. Answer `tag NO [TOOBIG]` / `tag BAD [TOOBIG]`."""

    tag: bytes
    size: int
    synchronizing: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandTooLong:
    """A line or command over the limits; the command is dropped. Answer `tag BAD` (tag may be b"*")."""

    tag: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class IdleDone:
    """The line that ends IDLE; `valid` is False when it was not `DONE` (answer the IDLE tag with BAD)."""

    valid: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LiteralStart:
    """An APPEND message literal begins: open a spool for message `index` of command `tag`."""

    tag: bytes
    index: int
    size: int
    binary: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LiteralChunk:
    """Some bytes of the current APPEND message literal."""

    tag: bytes
    index: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class LiteralEnd:
    """The current APPEND message literal is complete."""

    tag: bytes
    index: int


ReceiverEvent = (
    RawCommand
    | ContinuationNeeded
    | LiteralTooLarge
    | CommandTooLong
    | IdleDone
    | LiteralStart
    | LiteralChunk
    | LiteralEnd
)
# The parser generator yields an event, or None when it needs more bytes.
_Step = Generator[ReceiverEvent | None, None, None]


@dataclass(frozen=True, slots=True)
class _Marker:
    start: int  # where `{` (or `~`) begins in the line
    size: int
    synchronizing: bool
    binary: bool


def _find_marker(line: bytes) -> _Marker | None:
    """The literal announced at the end of `line`, if any (RFC 9051 §9 `literal`, RFC 7888 `{n+}`)."""
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{", max(0, len(line) - _MAX_DIGITS - 3))
    if start < 0:
        return None
    body = line[start + 1 : -1]
    synchronizing = not body.endswith(b"+")
    digits = body if synchronizing else body[:-1]
    if not digits or len(digits) > _MAX_DIGITS or not digits.isdigit():
        return None
    binary = start > 0 and line[start - 1 : start] == b"~"
    return _Marker(start - 1 if binary else start, int(digits), synchronizing, binary)


def _tag_of(head: bytes) -> bytes:
    tag = head.split(b" ", 1)[0]
    return tag if tag and len(tag) < _TAG_HEAD else b"*"


class ImapReceiver:
    """Splits the client byte stream into commands and framing events (see the module docstring).

    Feed bytes with `receive_data()`, then iterate `events()` and act on each event before taking the next.
    """

    def __init__(
        self,
        *,
        max_line: int = 65536,
        max_literal: int = 1 << 20,
        max_command: int = 4 << 20,
        max_message: int = 64 << 20,
        literal_plus: bool = True,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_command = max_command
        self.max_message = max_message
        self.literal_plus = literal_plus
        self._buffer = bytearray()
        self._idling = False
        self._literal_refused = False
        self._overflow_head = b""
        self._parser = self._parse_forever()

    def receive_data(self, data: bytes) -> None:
        """Append bytes read from the client. Never raises for anything the client sent."""
        self._buffer += data

    def events(self) -> Iterator[ReceiverEvent]:
        """Events for the bytes received so far; stops when more bytes are needed."""
        while True:
            event = next(self._parser)
            if event is None:
                return
            yield event

    def refuse_literal(self) -> None:
        """After `ContinuationNeeded`: the server refused the literal, so the command is abandoned."""
        self._literal_refused = True

    def start_idle(self) -> None:
        """The server accepted IDLE (and wrote `+ idling`): the next line ends it (`IdleDone`)."""
        self._idling = True

    def take_unparsed(self) -> bytes:
        """Remove and return the bytes not yet parsed. Call only right after a `RawCommand` event."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    # The parser generator and its building blocks; each `yield None` waits for `receive_data()`.

    def _parse_forever(self) -> _Step:
        while True:
            line = yield from self._read_line()
            if line is None:
                yield from self._drop_overlong_line(b"" if self._idling else _tag_of(self._overflow_head))
            elif self._idling:
                self._idling = False
                yield IdleDone(valid=line.upper() == b"DONE")
            elif line:  # blank lines between commands are ignored
                yield from self._parse_command(line)

    def _drop_overlong_line(self, tag: bytes) -> _Step:
        if self._idling:
            self._idling = False
            yield IdleDone(valid=False)
        else:
            yield CommandTooLong(tag=tag)
        tail = yield from self._skip_line()
        yield from self._drop_literals_after(tail)

    def _parse_command(self, line: bytes) -> _Step:
        marker = _find_marker(line)
        text = line if marker is None else line[: marker.start]
        tag, _, rest = text.partition(b" ")
        name, space, first = rest.partition(b" ")
        command = _Command(tag=tag, name=name.upper(), args=[space + first], size=len(line))
        while marker is not None:
            accepted = yield from self._take_literal(command, marker)
            if not accepted:
                return
            next_line = yield from self._read_line()
            if next_line is None:
                yield from self._drop_overlong_line(tag)
                return
            command.size += len(next_line)
            if command.size > self.max_command:
                yield CommandTooLong(tag=tag)
                yield from self._drop_literals_after(next_line)
                return
            marker = _find_marker(next_line)
            command.args.append(next_line if marker is None else next_line[: marker.start])
        yield RawCommand(tag=tag, name=command.name, args=tuple(command.args))

    def _take_literal(
        self, command: _Command, marker: _Marker
    ) -> Generator[ReceiverEvent | None, None, bool]:
        """Read one literal into `command`; False when the command was dropped."""
        # The mailbox is the only literal that can follow the bare command name.
        in_mailbox_position = command.args in ([b""], [b" "])
        streamed = command.name == b"APPEND" and not in_mailbox_position
        if streamed:
            too_large = marker.size > self.max_message
        else:
            too_large = marker.size > self.max_literal or command.size + marker.size > self.max_command
        if not marker.synchronizing and not self.literal_plus and marker.size > LITERAL_MINUS_LIMIT:
            too_large = True
        if too_large:
            yield LiteralTooLarge(tag=command.tag, size=marker.size, synchronizing=marker.synchronizing)
            if not marker.synchronizing:
                yield from self._skip_bytes(marker.size)
                yield from self._drop_rest_of_command()
            return False
        if marker.synchronizing:
            self._literal_refused = False
            yield ContinuationNeeded(tag=command.tag, size=marker.size)
            if self._literal_refused:
                self._literal_refused = False
                return False
        if streamed:
            yield from self._stream_literal(command, marker)
        else:
            data = yield from self._read_exact(marker.size)
            command.args.append(Literal(data=data, binary=marker.binary))
            command.size += marker.size
        return True

    def _stream_literal(self, command: _Command, marker: _Marker) -> _Step:
        index = command.streamed
        command.streamed += 1
        yield LiteralStart(tag=command.tag, index=index, size=marker.size, binary=marker.binary)
        remaining = marker.size
        while remaining:
            while not self._buffer:
                yield None
            chunk = bytes(self._buffer[:remaining])
            del self._buffer[: len(chunk)]
            remaining -= len(chunk)
            yield LiteralChunk(tag=command.tag, index=index, data=chunk)
        yield LiteralEnd(tag=command.tag, index=index)
        command.args.append(StreamedLiteral(index=index, size=marker.size, binary=marker.binary))

    def _read_line(self) -> Generator[None, None, bytes | None]:
        """The next line without its line end, or None as soon as it exceeds `max_line`.

        After None, `_overflow_head` holds the start of the line; the caller drops the rest with `_skip_line`.
        """
        scanned = 0
        while True:
            end = self._buffer.find(b"\n", scanned)
            if 0 <= end <= self.max_line + 1:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if end > self.max_line + 1 or len(self._buffer) > self.max_line + 1:
                self._overflow_head = bytes(self._buffer[:_TAG_HEAD])
                return None
            scanned = len(self._buffer)
            yield None

    def _skip_line(self) -> Generator[None, None, bytes]:
        """Drop bytes through the next LF; return the last bytes of the dropped line (without line end)."""
        tail = b""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                tail = (tail + bytes(self._buffer[:end]))[-_MARKER_TAIL:]
                del self._buffer[: end + 1]
                return tail.removesuffix(b"\r")
            tail = (tail + bytes(self._buffer[-_MARKER_TAIL:]))[-_MARKER_TAIL:]
            self._buffer.clear()
            yield None

    def _skip_bytes(self, count: int) -> Generator[None, None, None]:
        while count:
            while not self._buffer:
                yield None
            taken = min(count, len(self._buffer))
            del self._buffer[:taken]
            count -= taken

    def _read_exact(self, count: int) -> Generator[None, None, bytes]:
        while len(self._buffer) < count:
            yield None
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def _drop_rest_of_command(self) -> Generator[None, None, None]:
        tail = yield from self._skip_line()
        yield from self._drop_literals_after(tail)

    def _drop_literals_after(self, line_end: bytes) -> Generator[None, None, None]:
        """Drop the rest of a refused command: each `{n+}` literal and the line after it.

        A synchronising literal ends the command: the client waits for `+`, sees the tagged answer instead,
        and abandons the command (RFC 9051 §7.5).
        """
        marker = _find_marker(line_end)
        while marker is not None and not marker.synchronizing:
            yield from self._skip_bytes(marker.size)
            line_end = yield from self._skip_line()
            marker = _find_marker(line_end)


@dataclass(slots=True, kw_only=True)
class _Command:
    """A command being assembled."""

    tag: bytes
    name: bytes
    args: list[Argument]
    size: int
    streamed: int = 0
