"""Message body readers for DATA (dot-terminated) and BDAT (counted chunks).

Theory of operation (DATA): the stream after the DATA command's CRLF is treated as if it began with a
virtual CRLF, so the terminator is always ``CRLF . CRLF`` (RFC 5321 §4.1.1.4) and dot-unstuffing is
always ``CRLF .`` -> ``CRLF`` (RFC 5321 §4.5.2: a line's leading period is deleted), first line included.
Each fed packet is joined with the few bytes held back from the previous one (the longest tail that
could start a terminator, at most 4 bytes) and searched once with ``bytes.find``; everything before the
held-back tail is checked for bare CR/LF by counting, unstuffed with one ``bytes.replace`` and handed
out. The reader never buffers more than 4 bytes of its own.

Smuggling (SMTP smuggling, 2023): a bare CR or LF anywhere marks the message rejected, yet only the real
``CRLF . CRLF`` ends it, so ``LF . LF``, ``CR . CR``, ``LF . CRLF``, ``CR . LF`` never end a message or
start a command. Over the size cap the reader keeps reading and discarding until the terminator.
"""

from __future__ import annotations

from dataclasses import dataclass

from kittiwake.proto.smtp.replies import BARE_LINE_ENDING_500, MESSAGE_TOO_BIG_552, Reply

_TERMINATOR = b"\r\n.\r\n"


def has_bare_line_ending(data: bytes) -> bool:
    """True when a CR is not followed by LF or an LF not preceded by CR (three C-speed counts)."""
    pairs = data.count(b"\r\n")
    return data.count(b"\r") != pairs or data.count(b"\n") != pairs


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """What one feed() produced: message bytes to pass on, whether the message ended, unread bytes."""

    chunk: bytes
    finished: bool
    rest: bytes = b""


class DotDataReader:
    """Reads a DATA body. Feed bytes; when ``finished``, check ``error`` (None means intact)."""

    def __init__(self, *, max_size: int | None) -> None:
        self._held = b"\r\n"  # the virtual CRLF in front of the first line
        self._skip = 2  # output bytes still to drop: the virtual CRLF
        self._max_size = max_size
        self.size = 0  # unstuffed message bytes seen so far
        self.bare_line_ending = False
        self.too_big = False
        # Whether some line began with a period. Without one, no line of the message does, and sending
        # it on needs no dot-stuffing (RFC 5321 §4.5.2): the queue is told so.
        self.dot_lines = False

    @property
    def buffered(self) -> int:
        return len(self._held)

    @property
    def error(self) -> Reply | None:
        # RFC 5321 §2.3.8: CR and LF only as CRLF. RFC 3463 §3.6 X.5.2 syntax error; checked before size.
        if self.bare_line_ending:
            return BARE_LINE_ENDING_500
        if self.too_big:
            return MESSAGE_TOO_BIG_552
        return None

    def feed(self, data: bytes) -> Progress:
        buffer = self._held + data
        end = buffer.find(_TERMINATOR)
        if end >= 0:
            self._held = b""
            return Progress(chunk=self._emit(buffer[: end + 2]), finished=True, rest=buffer[end + 5 :])
        keep = _terminator_prefix_length(buffer)
        self._held = buffer[len(buffer) - keep :]
        return Progress(chunk=self._emit(buffer[: len(buffer) - keep]), finished=False)

    def _emit(self, stuffed: bytes) -> bytes:
        if not self.bare_line_ending and has_bare_line_ending(stuffed):
            self.bare_line_ending = True
        # RFC 5321 §4.5.2: the first character of a line is deleted when it is a period; the held-back tail
        # guarantees no line start is split from its period.
        body = stuffed.replace(b"\r\n.", b"\r\n")
        if len(body) != len(stuffed):
            self.dot_lines = True
        if self._skip:
            # The virtual CRLF is the first output; unstuffing never touches its two bytes.
            body, self._skip = body[self._skip :], max(0, self._skip - len(body))
        self.size += len(body)
        if self._max_size is not None and self.size > self._max_size:
            self.too_big = True
        if self.too_big or self.bare_line_ending:
            return b""
        return body


def _terminator_prefix_length(buffer: bytes) -> int:
    """Length of the longest tail of ``buffer`` that is a proper prefix of CRLF.CRLF (0 to 4)."""
    for length in (4, 3, 2, 1):
        if buffer.endswith(_TERMINATOR[:length]):
            return length
    return 0


class ChunkReader:
    """Reads the octets of one BDAT chunk (RFC 3030 §2): exactly ``size`` bytes, no transparency."""

    def __init__(self, size: int, *, last: bool, discard: bool) -> None:
        self.remaining = size
        self.last = last
        self.discard = discard  # read and drop: the chunk was refused

    def feed(self, data: bytes) -> Progress:
        take = min(self.remaining, len(data))
        self.remaining -= take
        return Progress(chunk=data[:take], finished=self.remaining == 0, rest=data[take:])


class BinaryMessageChecks:
    """Size cap and bare CR/LF detection across the BDAT chunks of one message.

    RFC 3030 §3: only BODY=BINARYMIME may carry bare CR or LF; for any other body type the message must
    be made of CRLF lines, as with DATA.
    """

    def __init__(self, *, max_size: int | None, binary: bool) -> None:
        self._max_size = max_size
        self._binary = binary
        self._pending_cr = False
        self.size = 0
        self.bare_line_ending = False
        self.too_big = False

    def check(self, chunk: bytes) -> bool:
        """Account for ``chunk``; True while the message is still acceptable."""
        self.size += len(chunk)
        if self._max_size is not None and self.size > self._max_size:
            self.too_big = True
        if not self._binary and chunk and not self.bare_line_ending:
            self._check_line_endings(chunk)
        return not (self.too_big or self.bare_line_ending)

    def finish(self) -> None:
        if self._pending_cr and not self._binary:
            self.bare_line_ending = True

    @property
    def error(self) -> Reply | None:
        if self.bare_line_ending:
            return BARE_LINE_ENDING_500
        if self.too_big:
            return MESSAGE_TOO_BIG_552
        return None

    def _check_line_endings(self, chunk: bytes) -> None:
        if self._pending_cr:
            if not chunk.startswith(b"\n"):
                self.bare_line_ending = True
                return
            chunk = chunk[1:]
        self._pending_cr = chunk.endswith(b"\r")
        if self._pending_cr:
            chunk = chunk[:-1]
        if has_bare_line_ending(chunk):
            self.bare_line_ending = True
