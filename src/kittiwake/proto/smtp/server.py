"""SmtpServerConnection: the sans-I/O SMTP server core (RFC 5321 with ESMTP extensions).

Theory of operation
-------------------
Bytes go in with receive_data(); events come out of events(); replies go out through data_to_send().
The core parses command lines, enforces the command sequence with the table ``_ALLOWED`` below, and
answers every peer error itself (500/501/503/555...). Commands that need a policy decision become
events, and the core then *waits*: it reads no further input until the session answers through
send_reply() or one of the accept_*() methods. That keeps replies in command order under PIPELINING
(RFC 2920 §3) and makes bytes after ``DATA`` body bytes only once 354 has been sent.

States (``State``) are what the next input line means; ``_ALLOWED`` says which verbs each state takes.
A verb the table lacks is answered ``503 5.5.1`` without reaching the session. Transitions happen when
the session answers (``_on_reply``) or when a body ends. Facts orthogonal to the table (TLS active,
authenticated, which HELO verb was used) are named fields.

Message bodies are read by ``data.DotDataReader`` (DATA) and ``data.ChunkReader`` (BDAT); chunks are
emitted as they arrive and never accumulated here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from kittiwake.proto.smtp import command_line
from kittiwake.proto.smtp.data import BinaryMessageChecks, ChunkReader, DotDataReader
from kittiwake.proto.smtp.errors import CommandError, ProtocolError
from kittiwake.proto.smtp.events import (
    AuthResponse,
    AuthStart,
    DataStart,
    Event,
    Hello,
    MailFrom,
    MessageAborted,
    MessageChunk,
    MessageEnd,
    Quit,
    Reset,
    StartTls,
    Vrfy,
)
from kittiwake.proto.smtp.options import ServerExtensions, ServerLimits, ehlo_keywords
from kittiwake.proto.smtp.replies import (
    BARE_LINE_ENDING_500,
    HELP_214,
    LINE_TOO_LONG_500,
    MESSAGE_TOO_BIG_552,
    NOT_IMPLEMENTED_502,
    OK_250,
    READY_FOR_TLS_220,
    RESET_250,
    START_DATA_354,
    TOO_MANY_ERRORS_421,
    TOO_MANY_RECIPIENTS_452,
    UNKNOWN_COMMAND_500,
    Reply,
    bad_sequence,
    greeting_reply,
    syntax_error,
)
from kittiwake.proto.smtp.states import ALLOWED_VERBS, Pending, State, sequence_error

_PARAMETER_VERBS = frozenset({"MAIL", "RCPT"})


@dataclass(slots=True)
class _Transaction:
    mail: MailFrom | None = None
    recipients: int = 0
    checks: BinaryMessageChecks | None = None  # BDAT only


class SmtpServerConnection:
    """One SMTP server connection, without I/O.

    Call greet() first; then, per read, receive_data() and handle every event from events(); after any
    call, write data_to_send(). Close the socket once ``close_requested`` is set and the output is sent.
    Peer errors never raise. ProtocolError is raised only for misuse, such as send_reply() when no reply
    is pending or a positive answer to Hello/StartTls/DataStart through send_reply().
    """

    def __init__(
        self,
        hostname: str,
        *,
        extensions: ServerExtensions | None = None,
        limits: ServerLimits | None = None,
        tls_active: bool = False,
    ) -> None:
        """`tls_active`: the connection is already encrypted (implicit TLS, RFC 8314 §3.3)."""
        self.hostname = hostname
        self.extensions = extensions or ServerExtensions()
        self.limits = limits or ServerLimits()
        self._state = State.GREETING
        self._pending: Pending | None = None
        self._pending_event: Event | None = None
        self._buffer = bytearray()
        self._output = bytearray()
        self._events: list[Event] = []
        self._discarding_line = False
        self._bad_commands = 0
        self._hello_verb: str | None = None
        self._tls_active = tls_active
        self._authenticated = False
        self._transaction = _Transaction()
        self._dot_reader: DotDataReader | None = None
        self._chunk_reader: ChunkReader | None = None
        self._after_chunk = State.READY  # where a refused BDAT chunk's discarding ends
        self._close_requested = False
        self._closed = False

    # -- properties -----------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def authenticated(self) -> bool:
        return self._authenticated

    @property
    def close_requested(self) -> bool:
        """The core has queued its last reply (221 or 421); send data_to_send() and close."""
        return self._close_requested

    @property
    def closed(self) -> bool:
        """The peer closed (receive_data(b"")) or the core requested the close."""
        return self._closed or self._close_requested

    @property
    def buffered(self) -> int:
        """Bytes of peer input held by the core (unparsed input plus a body reader's held-back tail)."""
        held = self._dot_reader.buffered if self._dot_reader else 0
        return len(self._buffer) + held

    # -- input and output -----------------------------------------------------------------------------

    def greet(self, refusal: Reply | None = None) -> None:
        """Queue ``220 <hostname> ESMTP``, or ``refusal`` (a 554) after which only QUIT is accepted."""
        if self._state is not State.GREETING:
            raise ProtocolError("greet() called twice")
        self._queue(refusal or greeting_reply(self.hostname))
        self._state = State.REFUSED if refusal else State.NEED_HELLO
        self._advance()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._on_eof()
            return
        if self._state in (State.TLS, State.CLOSED) or self._close_requested:
            return  # RFC 3207 §4.2 / closing: nothing more is read from this stream
        self._buffer += data
        self._advance()

    def events(self) -> list[Event]:
        """Events produced so far, oldest first; each call returns new ones only."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        output = bytes(self._output)
        self._output.clear()
        return output

    # -- answers from the session ---------------------------------------------------------------------

    def send_reply(self, reply: Reply) -> None:
        """Answer the pending event. A 421 also requests the close (RFC 5321 §3.8)."""
        pending = self._pending
        accepted_elsewhere = (Pending.HELLO, Pending.STARTTLS, Pending.DATA_START, Pending.CHUNKING_START)
        if pending in accepted_elsewhere and reply.is_positive:
            raise ProtocolError(f"use the accept method to answer {pending.name} positively")
        if pending is Pending.AUTH and reply.code == 334:
            raise ProtocolError("use send_auth_challenge() for 334")
        pending = self._take_pending()
        self._queue(reply)
        _REPLY_EFFECTS[pending](self, reply)
        if reply.code == 421:
            self._request_close()
        self._advance()

    def accept_hello(self) -> None:
        """Answer the pending Hello: 250 (EHLO: with the extensions offered now). Resets the transaction."""
        event = self._pending_event
        self._take_pending(Pending.HELLO)
        assert isinstance(event, Hello)
        self._hello_verb = event.verb
        if event.verb == "EHLO":
            lines = [f"{self.hostname} Hello {event.domain}", *self._ehlo_keywords()]
            self._queue(Reply(code=250, enhanced=None, text="\n".join(lines)))
        else:
            self._queue(Reply(code=250, enhanced=None, text=self.hostname))
        self._reset_transaction()
        self._advance()

    def accept_starttls(self) -> None:
        """Answer StartTls with 220; then do the TLS handshake and call start_tls_done()."""
        self._take_pending(Pending.STARTTLS)
        self._queue(READY_FOR_TLS_220)
        # RFC 3207 §4.2 and CVE-2011-0411: plaintext pipelined after STARTTLS must not survive into TLS.
        self._buffer.clear()
        self._state = State.TLS

    def start_tls_done(self) -> None:
        """The TLS handshake finished: RFC 3207 §4.2, forget everything and expect EHLO again."""
        if self._state is not State.TLS:
            raise ProtocolError("start_tls_done() without an accepted STARTTLS")
        self._tls_active = True
        self._authenticated = False
        self._hello_verb = None
        self._reset_transaction()
        self._state = State.NEED_HELLO

    def accept_data(self) -> None:
        """Answer DataStart: DATA gets 354 and the body follows; for BDAT the chunk is read."""
        pending = self._take_pending(Pending.DATA_START, Pending.CHUNKING_START)
        if pending is Pending.DATA_START:
            self._queue(START_DATA_354)
            self._dot_reader = DotDataReader(max_size=self.limits.max_message_size)
            self._state = State.DATA
        elif pending is Pending.CHUNKING_START:
            mail = self._transaction.mail
            binary = mail is not None and mail.params.body == "BINARYMIME"
            self._transaction.checks = BinaryMessageChecks(
                max_size=self.limits.max_message_size, binary=binary
            )
            self._state = State.CHUNK
        self._advance()

    def send_auth_challenge(self, challenge: bytes) -> None:
        """Answer AuthStart/AuthResponse with ``334 <base64 challenge>``; the next line is the response."""
        self._take_pending(Pending.AUTH)
        text = base64.b64encode(challenge).decode("ascii")
        self._output += f"334 {text}\r\n".encode("ascii")
        self._state = State.AUTH
        self._advance()

    # -- the input loop -------------------------------------------------------------------------------

    def _advance(self) -> None:
        while self._pending is None and not self._close_requested:
            if self._state in (State.GREETING, State.TLS, State.CLOSED):
                return
            if self._state is State.CHUNK:
                if not self._feed_chunk_reader():
                    return
            elif not self._buffer:
                return
            elif self._state is State.DATA:
                self._feed_dot_reader()
            elif not self._next_line():
                return

    def _next_line(self) -> bool:
        """Handle one complete line; False when none is buffered yet."""
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) > self.limits.max_auth_line_length:
                self._discarding_line = True  # RFC 5321 §4.5.3.1.4: drop it, answer at its end
                self._buffer.clear()
            return False
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        if self._discarding_line:
            self._discarding_line = False
            self._refuse_line(LINE_TOO_LONG_500)
        elif not line.endswith(b"\r\n") or b"\r" in line[:-2]:
            # RFC 5321 §2.3.8: lines end with CRLF; bare CR or LF is refused, never reinterpreted.
            self._refuse_line(BARE_LINE_ENDING_500)
        elif self._state is State.AUTH:
            self._on_sasl_response(line)
        else:
            self._on_command(line)
        return True

    def _refuse_line(self, reply: Reply) -> None:
        if self._state is State.AUTH:
            self._state = State.READY  # a refused SASL response ends the exchange
        self._peer_error(reply)

    def _on_command(self, line: bytes) -> None:
        verb, argument = command_line.split_verb(line[:-2])
        limit = self.limits.max_parameter_line_length if verb in _PARAMETER_VERBS else None
        if verb == "AUTH":
            limit = self.limits.max_auth_line_length
        if len(line) > (limit or self.limits.max_line_length):
            self._peer_error(LINE_TOO_LONG_500)
            return
        handler = _COMMANDS.get(verb)
        if handler is None:
            self._peer_error(UNKNOWN_COMMAND_500)
            return
        if verb not in ALLOWED_VERBS.get(self._state, frozenset()):
            self._refuse_out_of_sequence(verb, argument)
            return
        try:
            handler(self, argument)
        except CommandError as error:
            self._peer_error(error.reply)

    def _refuse_out_of_sequence(self, verb: str, argument: bytes) -> None:
        self._peer_error(sequence_error(verb, self._state))
        if verb == "BDAT":
            # RFC 3030 §2: the chunk's octets follow regardless; read and drop them to stay in sync.
            try:
                size, last = command_line.parse_bdat(argument)
            except CommandError:
                return
            self._start_discarding_chunk(size, last)

    def _on_sasl_response(self, line: bytes) -> None:
        if len(line) > self.limits.max_auth_line_length:
            self._refuse_line(LINE_TOO_LONG_500)
            return
        try:
            data = command_line.parse_sasl_response(line[:-2])
        except CommandError as error:
            self._refuse_line(error.reply)
            return
        self._await(AuthResponse(data=data), Pending.AUTH)

    # -- message bodies -------------------------------------------------------------------------------

    def _feed_dot_reader(self) -> None:
        reader = self._dot_reader
        assert reader is not None
        data = bytes(self._buffer)
        self._buffer.clear()
        progress = reader.feed(data)
        if progress.chunk:
            self._events.append(MessageChunk(data=progress.chunk))
        if not progress.finished:
            return
        self._buffer[:0] = progress.rest
        self._dot_reader = None
        self._finish_message(reader.error, dot_free=not reader.dot_lines)

    def _feed_chunk_reader(self) -> bool:
        """Read what is buffered of the current chunk; False when it needs more input (BDAT 0 never does)."""
        reader = self._chunk_reader
        assert reader is not None
        if reader.remaining and not self._buffer:
            return False
        progress = reader.feed(bytes(self._buffer[: reader.remaining]))
        del self._buffer[: len(progress.chunk)]
        checks = self._transaction.checks
        if not reader.discard and checks is not None and checks.check(progress.chunk) and progress.chunk:
            self._events.append(MessageChunk(data=progress.chunk))
        if progress.finished:
            self._end_chunk(reader)
        return True

    def _end_chunk(self, reader: ChunkReader) -> None:
        self._chunk_reader = None
        checks = self._transaction.checks
        if reader.discard or checks is None:
            self._state = self._after_chunk
            return
        if reader.last:
            checks.finish()
            self._finish_message(checks.error)
        elif checks.error is not None:
            self._finish_message(checks.error)
        else:
            self._queue(Reply(code=250, enhanced="2.0.0", text=f"{checks.size} octets received"))
            self._state = State.BDAT

    def _finish_message(self, error: Reply | None, *, dot_free: bool = False) -> None:
        if error is None:
            self._await(MessageEnd(dot_free=dot_free), Pending.MESSAGE_END)
            return
        self._queue(error)
        self._events.append(MessageAborted(reply=error))
        self._reset_transaction()

    def _start_discarding_chunk(self, size: int, last: bool) -> None:
        self._chunk_reader = ChunkReader(size, last=last, discard=True)
        self._after_chunk = self._state
        self._state = State.CHUNK

    # -- internals ------------------------------------------------------------------------------------

    def _await(self, event: Event, pending: Pending) -> None:
        self._events.append(event)
        self._pending = pending
        self._pending_event = event

    def _take_pending(self, *expected: Pending) -> Pending:
        """Clear and return the pending answer; ProtocolError (state untouched) if it is not ``expected``."""
        pending = self._pending
        if pending is None or (expected and pending not in expected):
            wanted = " or ".join(p.name for p in expected) or "reply"
            raise ProtocolError(f"no {wanted} is pending")
        self._pending = None
        return pending

    def _queue(self, reply: Reply) -> None:
        self._output += reply.serialize()

    def _peer_error(self, reply: Reply) -> None:
        self._queue(reply)
        self._bad_commands += 1
        if self._bad_commands >= self.limits.max_bad_commands:
            self._queue(TOO_MANY_ERRORS_421)
            self._request_close()

    def _request_close(self) -> None:
        self._close_requested = True
        self._state = State.CLOSED

    def _on_eof(self) -> None:
        in_message = (
            self._state in (State.DATA, State.CHUNK, State.BDAT) and self._transaction.mail is not None
        )
        if in_message and self._pending is not Pending.MESSAGE_END:
            self._events.append(MessageAborted(reply=None))
        self._closed = True
        self._state = State.CLOSED

    def _reset_transaction(self) -> None:
        self._transaction = _Transaction()
        self._dot_reader = None
        self._state = State.READY if self._hello_verb else State.NEED_HELLO

    def _ehlo_keywords(self) -> list[str]:
        return ehlo_keywords(
            self.extensions, self.limits, tls_active=self._tls_active, authenticated=self._authenticated
        )

    def _enabled_parameters(self) -> frozenset[str]:
        """Keywords whose MAIL/RCPT parameters are accepted; none after plain HELO (RFC 5321 §4.1.1.1)."""
        if self._hello_verb != "EHLO":
            return frozenset()
        keywords = {line.split(" ")[0] for line in self._ehlo_keywords()}
        if self.extensions.auth_mechanisms:
            keywords.add("AUTH")  # RFC 4954 §5: AUTH= stays acceptable once authenticated
        return frozenset(keywords)


# -- command handlers (dispatch table below) ------------------------------------------------------------


def _on_hello(verb: str) -> Callable[[SmtpServerConnection, bytes], None]:
    def handle(conn: SmtpServerConnection, argument: bytes) -> None:
        domain = command_line.parse_hello(argument)
        conn._await(Hello(verb="EHLO" if verb == "EHLO" else "HELO", domain=domain), Pending.HELLO)

    return handle


def _on_mail(conn: SmtpServerConnection, argument: bytes) -> None:
    if conn.extensions.auth_required and not conn.authenticated:
        raise CommandError(Reply(code=530, enhanced="5.7.0", text="Authentication required"))  # RFC 4954 §6
    event = command_line.parse_mail(argument, enabled=conn._enabled_parameters())
    limit = conn.limits.max_message_size
    if event.params.size is not None and limit is not None and event.params.size > limit:
        raise CommandError(MESSAGE_TOO_BIG_552)  # RFC 1870 §6.1
    conn._await(event, Pending.MAIL)


def _on_rcpt(conn: SmtpServerConnection, argument: bytes) -> None:
    mail = conn._transaction.mail
    smtputf8 = mail is not None and mail.params.smtputf8
    event = command_line.parse_rcpt(argument, enabled=conn._enabled_parameters(), smtputf8=smtputf8)
    if conn._transaction.recipients >= conn.limits.max_recipients:
        conn._queue(TOO_MANY_RECIPIENTS_452)  # RFC 5321 §4.5.3.1.10; not a peer error
        return
    conn._await(event, Pending.RCPT)


def _refuse_binarymime_data(conn: SmtpServerConnection) -> None:
    mail = conn._transaction.mail
    if mail is not None and mail.params.body == "BINARYMIME":
        raise CommandError(bad_sequence("BINARYMIME requires BDAT"))  # RFC 3030 §3


def _on_data(conn: SmtpServerConnection, argument: bytes) -> None:
    if argument:
        raise CommandError(syntax_error("Syntax: DATA"))
    _refuse_binarymime_data(conn)
    conn._await(DataStart(chunking=False), Pending.DATA_START)


def _on_bdat(conn: SmtpServerConnection, argument: bytes) -> None:
    size, last = command_line.parse_bdat(argument)
    if not conn.extensions.chunking:
        conn._peer_error(NOT_IMPLEMENTED_502)
        conn._start_discarding_chunk(size, last)
        return
    conn._chunk_reader = ChunkReader(size, last=last, discard=False)
    if conn.state is State.RCPT:
        # The first chunk opens the message; the session accepts it (accept_data) or refuses it.
        conn._await(DataStart(chunking=True), Pending.CHUNKING_START)
    else:
        conn._state = State.CHUNK


def _on_rset(conn: SmtpServerConnection, argument: bytes) -> None:
    conn._queue(RESET_250)
    conn._reset_transaction()
    conn._events.append(Reset())


def _on_noop(conn: SmtpServerConnection, argument: bytes) -> None:
    conn._queue(OK_250)


def _on_help(conn: SmtpServerConnection, argument: bytes) -> None:
    conn._queue(HELP_214)


def _on_expn(conn: SmtpServerConnection, argument: bytes) -> None:
    conn._queue(NOT_IMPLEMENTED_502)  # RFC 5321 §3.5.2: EXPN may be disabled


def _on_quit(conn: SmtpServerConnection, argument: bytes) -> None:
    conn._queue(Reply(code=221, enhanced="2.0.0", text=f"{conn.hostname} closing connection"))
    conn._events.append(Quit())
    conn._request_close()


def _on_vrfy(conn: SmtpServerConnection, argument: bytes) -> None:
    text = command_line.decode_text(argument).strip()
    if not text:
        raise CommandError(syntax_error("Syntax: VRFY string"))
    conn._await(Vrfy(argument=text), Pending.VRFY)


def _on_starttls(conn: SmtpServerConnection, argument: bytes) -> None:
    if not conn.extensions.starttls:
        raise CommandError(NOT_IMPLEMENTED_502)
    if conn.tls_active:
        raise CommandError(bad_sequence("TLS already active"))  # RFC 3207 §4.2
    if argument:
        raise CommandError(syntax_error("Syntax: STARTTLS"))
    conn._await(StartTls(), Pending.STARTTLS)


def _on_auth(conn: SmtpServerConnection, argument: bytes) -> None:
    ext = conn.extensions
    if not ext.auth_mechanisms:
        raise CommandError(NOT_IMPLEMENTED_502)
    if conn.authenticated:
        raise CommandError(bad_sequence("Already authenticated"))  # RFC 4954 §4
    if conn._hello_verb != "EHLO":
        raise CommandError(bad_sequence("Send EHLO first"))
    if ext.auth_requires_tls and not conn.tls_active:
        raise CommandError(
            Reply(
                code=538, enhanced="5.7.11", text="Encryption required for requested authentication mechanism"
            )
        )
    mechanism, initial = command_line.parse_auth(argument)
    if mechanism not in ext.auth_mechanisms:
        raise CommandError(Reply(code=504, enhanced="5.5.4", text="Unrecognized authentication type"))
    conn._await(AuthStart(mechanism=mechanism, initial_response=initial), Pending.AUTH)


_COMMANDS: dict[str, Callable[[SmtpServerConnection, bytes], None]] = {
    "HELO": _on_hello("HELO"),
    "EHLO": _on_hello("EHLO"),
    "MAIL": _on_mail,
    "RCPT": _on_rcpt,
    "DATA": _on_data,
    "BDAT": _on_bdat,
    "RSET": _on_rset,
    "NOOP": _on_noop,
    "HELP": _on_help,
    "EXPN": _on_expn,
    "QUIT": _on_quit,
    "VRFY": _on_vrfy,
    "STARTTLS": _on_starttls,
    "AUTH": _on_auth,
}


# -- what the session's reply does to the state ----------------------------------------------------------


def _after_mail(conn: SmtpServerConnection, reply: Reply) -> None:
    if reply.is_positive:
        assert isinstance(conn._pending_event, MailFrom)
        conn._transaction.mail = conn._pending_event
        conn._state = State.MAIL


def _after_rcpt(conn: SmtpServerConnection, reply: Reply) -> None:
    if reply.is_positive:
        conn._transaction.recipients += 1
        conn._state = State.RCPT


def _after_auth(conn: SmtpServerConnection, reply: Reply) -> None:
    conn._state = State.READY  # RFC 4954 §4: any reply but 334 ends the exchange
    if reply.code == 235:
        conn._authenticated = True


def _after_chunking_refused(conn: SmtpServerConnection, reply: Reply) -> None:
    # The chunk's octets are on the wire anyway: read and drop them, then the transaction is over.
    reader = conn._chunk_reader
    assert reader is not None
    conn._reset_transaction()
    conn._start_discarding_chunk(reader.remaining, reader.last)


def _after_message(conn: SmtpServerConnection, reply: Reply) -> None:
    conn._reset_transaction()  # RFC 5321 §4.1.1.4: the transaction ends whatever the answer


def _unchanged(conn: SmtpServerConnection, reply: Reply) -> None:
    return


_REPLY_EFFECTS: dict[Pending, Callable[[SmtpServerConnection, Reply], None]] = {
    Pending.HELLO: _unchanged,
    Pending.STARTTLS: _unchanged,
    Pending.AUTH: _after_auth,
    Pending.MAIL: _after_mail,
    Pending.RCPT: _after_rcpt,
    Pending.VRFY: _unchanged,
    Pending.DATA_START: _unchanged,
    Pending.CHUNKING_START: _after_chunking_refused,
    Pending.MESSAGE_END: _after_message,
}
