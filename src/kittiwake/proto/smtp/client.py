"""SmtpClientConnection: the sans-I/O client side of SMTP for outbound delivery.

Theory of operation: methods such as mail() or rcpt() queue commands; data_to_send() returns whatever
may be written now. Without PIPELINING one command is in flight at a time. With it (RFC 2920 §3.1),
RSET, MAIL, RCPT and BDAT may be sent without waiting, and a command that must end a group (EHLO,
DATA, STARTTLS, AUTH, QUIT, NOOP...) is sent after them but nothing follows it until its reply. Replies
are matched to commands in order and come out of events() as ``ReplyReceived(command, reply)``.

The message body for DATA is written only after the server's 354; a refusal of DATA drops it. A body
given whole (send_message) waits for the 354 in the core; a body streamed in pieces (send_message_chunk,
end_message) is given only after the caller saw the 354, and each piece is dot-stuffed as it comes
(`DotStuffer`), so a large message never has to be in memory at once. BDAT pieces need no stuffing.
receive_data() raises ProtocolError when the server's bytes are not a valid reply: the connection is
then unusable and the caller treats the attempt as a transient failure.
"""

from __future__ import annotations

import base64
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from kittiwake.proto.smtp.errors import ProtocolError
from kittiwake.proto.smtp.replies import Reply

_REPLY_LINE = re.compile(rb"([2-5][0-9]{2})(?:([ -])(.*))?")
_ENHANCED = re.compile(r"([245]\.[0-9]{1,3}\.[0-9]{1,3}) ")
# RFC 2920 §3.1: commands that may appear anywhere in a pipelined group (RFC 3030 §4.2 adds BDAT).
_GROUPABLE = frozenset({"RSET", "MAIL", "RCPT", "BDAT"})
MAX_REPLY_LENGTH = 65536


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What the server offered in its EHLO reply."""

    pipelining: bool = False
    size: int | None = None  # RFC 1870: 0 or absent number means no fixed limit
    starttls: bool = False
    chunking: bool = False
    binarymime: bool = False
    smtputf8: bool = False
    eightbitmime: bool = False
    dsn: bool = False
    requiretls: bool = False
    enhancedstatuscodes: bool = False
    auth_mechanisms: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Capabilities:
        """Parse the EHLO reply lines after the first (RFC 5321 §4.1.1.1: keyword [params])."""
        flags: dict[str, bool] = {}
        size: int | None = None
        mechanisms: frozenset[str] = frozenset()
        for line in lines:
            words = line.upper().split()
            if not words:
                continue  # some servers (Postfix's smtp-sink) end the reply with an empty line
            keyword, *params = words
            if keyword == "SIZE":
                size = int(params[0]) if params and params[0].isdigit() and int(params[0]) > 0 else None
            elif keyword == "AUTH":
                mechanisms = frozenset(params)
            flags[keyword] = True
        return cls(
            pipelining=flags.get("PIPELINING", False),
            size=size,
            starttls=flags.get("STARTTLS", False),
            chunking=flags.get("CHUNKING", False),
            binarymime=flags.get("BINARYMIME", False),
            smtputf8=flags.get("SMTPUTF8", False),
            eightbitmime=flags.get("8BITMIME", False),
            dsn=flags.get("DSN", False),
            requiretls=flags.get("REQUIRETLS", False),
            enhancedstatuscodes=flags.get("ENHANCEDSTATUSCODES", False),
            auth_mechanisms=mechanisms,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Greeting:
    reply: Reply


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyReceived:
    command: str  # "EHLO", "MAIL", "RCPT", "DATA" (the 354 or refusal), "MESSAGE" (after the body), ...
    reply: Reply


ClientEvent = Greeting | ReplyReceived


@dataclass(frozen=True, slots=True, kw_only=True)
class _Command:
    name: str
    wire: bytes
    payload: bytes = b""  # BDAT's chunk, kept apart from its command line so it is not copied


_CR = 0x0D
_LF = 0x0A
_DOT = 0x2E


class DotStuffer:
    """RFC 5321 §4.5.2 transparency for a message given in pieces of any size.

    Every line that starts with "." gets another one in front; a line may start inside one piece and its
    dot arrive in the next, so the stuffer remembers whether the last piece ended a line (or ended with
    the CR of a CRLF). Each piece costs a few C-speed passes (count, replace), never a loop over lines.
    A bare CR or LF (RFC 5321 §2.3.8) raises ProtocolError: on the wire it would let the message end
    early or smuggle commands. A caller that checked the whole message before (`line_endings_checked`)
    spares the three counts that look for them, and one that knows no line begins with a period
    (`dot_free`) spares the pass that stuffs: the pieces then go out as they are. Call feed() for each
    piece, then end() for the terminator.
    """

    def __init__(self, *, line_endings_checked: bool = False, dot_free: bool = False) -> None:
        self._check = not line_endings_checked
        self._stuff = not dot_free
        self._line_start = True  # the next byte begins a line
        self._pending_cr = False  # the last byte was a CR, whose LF must come first in the next piece

    def feed(self, piece: bytes) -> bytes:
        """The wire bytes for `piece`; raises ProtocolError for a bare CR or LF."""
        if not piece:
            return b""
        joins_crlf = self._pending_cr and piece[0] == _LF
        ends_with_cr = piece[-1] == _CR
        if self._check:
            if self._pending_cr and not joins_crlf:
                raise ProtocolError("message contains a bare CR")
            pairs = piece.count(b"\r\n")
            if piece.count(b"\r") - ends_with_cr != pairs:
                raise ProtocolError("message contains a bare CR")
            if piece.count(b"\n") - joins_crlf != pairs:
                raise ProtocolError("message contains a bare LF")
        stuffed = self._stuffed(piece, joins_crlf) if self._stuff else piece
        self._pending_cr = ends_with_cr
        self._line_start = piece[-1] == _LF
        return stuffed

    def _stuffed(self, piece: bytes, joins_crlf: bool) -> bytes:
        stuffed = piece.replace(b"\r\n.", b"\r\n..")
        if self._line_start and piece[0] == _DOT:
            return b"." + stuffed
        if joins_crlf and len(piece) > 1 and piece[1] == _DOT:
            return b"\n." + stuffed[1:]  # the CRLF began in the last piece: this dot starts a line
        return stuffed

    def end(self) -> bytes:
        """The terminator, after a CRLF of our own when the message does not end with one (§4.1.1.4)."""
        if self._pending_cr and self._check:
            raise ProtocolError("message contains a bare CR")
        return b".\r\n" if self._line_start else b"\r\n.\r\n"


def has_dot_line(data: bytes) -> bool:
    """True when a line of `data` begins with a period, which DATA must stuff (RFC 5321 §4.5.2)."""
    return data.startswith(b".") or b"\n." in data


def stuff_message(message: bytes) -> bytes:
    """RFC 5321 §4.5.2: dot-stuff ``message`` and append the terminator; refuses bare CR or LF."""
    stuffer = DotStuffer()
    stuffed = stuffer.feed(message)
    return stuffed + stuffer.end()


class SmtpClientConnection:
    """One outbound SMTP connection without I/O: feed receive_data(), write data_to_send()."""

    def __init__(self) -> None:
        self.capabilities: Capabilities | None = None
        self._buffer = bytearray()
        self._output: list[bytes] = []  # pieces, joined only when taken: a large chunk is not copied twice
        self._events: list[ClientEvent] = []
        self._queued: deque[_Command] = deque()
        self._in_flight: deque[str] = deque(["GREETING"])
        self._reply_lines: list[bytes] = []
        self._message: bytes | None = None  # stuffed body waiting for 354
        self._body_pending = False  # 354 received, body not yet written
        self._stuffer: DotStuffer | None = None  # a body being streamed after the 354
        self._line_endings_checked = False  # the caller vouches for the body streamed after this DATA
        self._dot_free = False  # ... and that no line of it begins with a period
        self._awaiting_tls = False

    # -- commands ---------------------------------------------------------------------------------------

    def ehlo(self, name: str) -> None:
        self._command("EHLO", f"EHLO {name}")

    def helo(self, name: str) -> None:
        self._command("HELO", f"HELO {name}")

    def starttls(self) -> None:
        """After ``ReplyReceived("STARTTLS", 220)``: do the handshake, call start_tls_done(), EHLO again."""
        self._command("STARTTLS", "STARTTLS")

    def start_tls_done(self) -> None:
        """RFC 3207 §4.2: what was learnt before TLS is forgotten."""
        self._awaiting_tls = False
        self.capabilities = None
        self._flush()

    def auth_plain(self, username: str, password: str, authzid: str = "") -> None:
        """RFC 4954 §4 with an initial response; RFC 4616 message ``authzid NUL authcid NUL passwd``."""
        message = b"\x00".join(part.encode("utf-8") for part in (authzid, username, password))
        self._command("AUTH", "AUTH PLAIN " + (base64.b64encode(message).decode("ascii") or "="))

    def mail(self, reverse_path: str, params: Iterable[str] = ()) -> None:
        self._command("MAIL", " ".join([f"MAIL FROM:<{reverse_path}>", *params]))

    def rcpt(self, forward_path: str, params: Iterable[str] = ()) -> None:
        self._command("RCPT", " ".join([f"RCPT TO:<{forward_path}>", *params]))

    def data(self, *, line_endings_checked: bool = False, dot_free: bool = False) -> None:
        """DATA; a body sent in pieces after the 354 is checked for bare CR and LF unless the caller
        says it checked the whole message already (`line_endings_checked`), and dot-stuffed unless the
        caller knows no line of it begins with a period (`dot_free`)."""
        self._line_endings_checked = line_endings_checked
        self._dot_free = dot_free
        self._command("DATA", "DATA")

    def send_message(self, message: bytes) -> None:
        """Queue the body for the pending DATA; it is written once the server answers 354."""
        self._message = stuff_message(message)
        self._flush()

    def send_message_chunk(self, chunk: bytes) -> None:
        """After ``ReplyReceived("DATA", 354)``: the next piece of the body, dot-stuffed on the way.

        Call end_message() after the last piece. Raises ProtocolError for a bare CR or LF in the body (the
        connection must then be dropped: the server has part of a message and no end to it)."""
        if not self._body_pending:
            raise ProtocolError("send_message_chunk() needs a 354 reply to DATA first")
        if self._stuffer is None:
            self._stuffer = DotStuffer(
                line_endings_checked=self._line_endings_checked, dot_free=self._dot_free
            )
        stuffed = self._stuffer.feed(chunk)
        if stuffed:
            self._output.append(stuffed)

    def end_message(self) -> None:
        """After the last send_message_chunk(): the terminator; the reply comes as ``ReplyReceived("MESSAGE")``."""
        if not self._body_pending:
            raise ProtocolError("end_message() needs a 354 reply to DATA first")
        stuffer, self._stuffer = self._stuffer or DotStuffer(), None
        self._output.append(stuffer.end())
        self._body_pending = False
        self._in_flight.append("MESSAGE")
        self._flush()

    def bdat(self, chunk: bytes, *, last: bool = False) -> None:
        """RFC 3030 §2: one chunk, sent as is (no dot-stuffing)."""
        header = f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode("ascii")
        self._queued.append(_Command(name="BDAT", wire=header, payload=chunk))
        self._flush()

    def rset(self) -> None:
        self._command("RSET", "RSET")

    def noop(self) -> None:
        self._command("NOOP", "NOOP")

    def quit(self) -> None:
        self._command("QUIT", "QUIT")

    # -- bytes ------------------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        output = self._output[0] if len(self._output) == 1 else b"".join(self._output)
        self._output = []
        return output

    def events(self) -> list[ClientEvent]:
        events, self._events = self._events, []
        return events

    @property
    def idle(self) -> bool:
        """No command waits to be sent and none awaits its reply."""
        return not self._queued and not self._in_flight and not self._body_pending

    def receive_data(self, data: bytes) -> None:
        if self._awaiting_tls:
            return  # RFC 3207 §4.2: nothing sent in plaintext after 220 may be used
        self._buffer += data
        while not self._awaiting_tls:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_REPLY_LENGTH:
                    raise ProtocolError("reply line too long")
                return
            line = bytes(self._buffer[:end]).removesuffix(b"\r")
            del self._buffer[: end + 1]
            self._on_reply_line(line)

    # -- internals --------------------------------------------------------------------------------------

    def _command(self, name: str, line: str) -> None:
        self._queued.append(_Command(name=name, wire=line.encode("utf-8") + b"\r\n"))
        self._flush()

    def _may_send(self) -> bool:
        if not self._in_flight:
            return True
        pipelining = self.capabilities is not None and self.capabilities.pipelining
        return pipelining and all(name in _GROUPABLE for name in self._in_flight)

    def _flush(self) -> None:
        if self._body_pending and self._message is not None:
            self._output.append(self._message)
            self._message = None
            self._body_pending = False
            self._in_flight.append("MESSAGE")
        while self._queued and not self._awaiting_tls and not self._body_pending and self._may_send():
            command = self._queued.popleft()
            self._output.append(command.wire)
            if command.payload:
                self._output.append(command.payload)
            self._in_flight.append(command.name)

    def _on_reply_line(self, line: bytes) -> None:
        match = _REPLY_LINE.fullmatch(line)
        if match is None or (self._reply_lines and line[:3] != self._reply_lines[0][:3]):
            raise ProtocolError(f"malformed reply line {line[:80]!r}")
        self._reply_lines.append(line)
        if sum(map(len, self._reply_lines)) > MAX_REPLY_LENGTH:
            raise ProtocolError("reply too long")
        if match.group(2) == b"-":
            return
        reply = _build_reply(self._reply_lines)
        self._reply_lines = []
        self._on_reply(reply)

    def _on_reply(self, reply: Reply) -> None:
        if not self._in_flight:
            raise ProtocolError(f"unexpected reply {reply.code}")
        command = self._in_flight.popleft()
        if command == "GREETING":
            self._events.append(Greeting(reply=reply))
        else:
            self._events.append(ReplyReceived(command=command, reply=reply))
        if command == "EHLO" and reply.code == 250:
            self.capabilities = Capabilities.parse(reply.lines[1:])
        elif command == "STARTTLS" and reply.code == 220:
            self._awaiting_tls = True
            self._buffer.clear()
        elif command == "DATA":
            self._on_data_reply(reply)
        self._flush()

    def _on_data_reply(self, reply: Reply) -> None:
        if reply.code == 354:
            self._body_pending = True  # nothing else is sent until the body is
        else:
            self._message = None


def _build_reply(lines: list[bytes]) -> Reply:
    # Reply text is for people; undecodable octets are replaced rather than failing the delivery.
    texts = [(line[4:]).decode("utf-8", "replace") for line in lines]
    enhanced = None
    match = _ENHANCED.match(texts[0] + " ")
    if match is not None:
        enhanced = match.group(1)
        texts = [text.removeprefix(enhanced).lstrip(" ") for text in texts]
    return Reply(code=int(lines[0][:3]), enhanced=enhanced, text="\n".join(texts))
