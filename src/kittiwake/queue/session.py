"""One SMTP client session with a remote host, over asyncio streams: what `remote.deliver` drives.

Theory of operation: `Session.open` connects to one address of one host and runs the greeting, EHLO (HELO
for an old server, RFC 5321 §4.1.4) and STARTTLS when offered (RFC 3207). What the caller's policy makes
of the result (TLS required? certificate acceptable?) is decided by the caller, which may then
`authenticate` and `send` one mail transaction after another. `send` runs MAIL and RCPT (pipelined when
offered, RFC 2920) and streams the body from its `MessageSource` in chunks, by BDAT when offered (RFC 3030,
no dot-stuffing) or else by DATA, dot-stuffed chunk by chunk in the client core, so the whole message is
never in memory. Every transaction after the first starts with RSET (RFC 5321 §4.1.1.5); when that RSET
finds the connection dead, `StaleSession` says so before anything of the message was sent, and the caller
opens a fresh connection. Any other I/O or protocol failure raises `TryNextHost` and leaves the session
unusable; `close` then ends it (QUIT when it is still in step, RFC 5321 §4.1.1.10).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from kittiwake.proto.smtp.client import Capabilities, Greeting, ReplyReceived, SmtpClientConnection
from kittiwake.proto.smtp.errors import ProtocolError
from kittiwake.proto.smtp.replies import Reply

# Pipelined BDAT chunks sent before waiting for a reply: enough to keep the link busy while the server
# answers the previous chunk, few enough that a refused chunk wastes little (RFC 3030 §4.2).
BDAT_WINDOW = 2
_CONNECTION_ERRORS = (OSError, TimeoutError, ProtocolError, asyncio.IncompleteReadError, ConnectionError)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The result for one recipient: `code` is the SMTP reply code (or a synthetic one), `text` the reply."""

    code: int
    text: str
    remote_mta: str | None = None
    tls: str | None = None  # how the session was secured: see Session.security; None when none was made

    @property
    def delivered(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSource:
    """The bytes of a message to send: `size` of them, read afresh from the start by each `chunks()`."""

    size: int
    chunks: Callable[[], AsyncIterator[bytes]]

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageSource:
        async def chunks() -> AsyncIterator[bytes]:
            yield data

        return cls(size=len(data), chunks=chunks)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbound:
    """One message for some recipients of one domain."""

    sender: str
    recipients: tuple[str, ...]
    message: MessageSource
    smtputf8: bool = False
    eightbit: bool = False
    line_endings_checked: bool = False  # the message has no bare CR or LF: no need to look while sending
    dot_free: bool = False  # no line of the message begins with a period: nothing to dot-stuff
    requiretls: bool = False
    dsn_params: dict[str, tuple[str, ...]] | None = None  # recipient -> RCPT parameters (NOTIFY, ORCPT)
    envelope_params: tuple[str, ...] = ()  # MAIL parameters to pass on (RET, ENVID)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """RFC 5321 §4.5.3.2 minimums, in seconds."""

    connect: float = 30
    greeting: float = 300
    command: float = 300
    data_start: float = 120
    data_block: float = 180  # §4.5.3.2.5: each write of the body
    data_end: float = 600


class TryNextHost(Exception):
    """This host cannot take the message now; `outcome` says why, should no other host take it either."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.text)
        self.outcome = outcome


class StaleSession(Exception):
    """A kept session turned out dead at the RSET before its next transaction: nothing of it was sent."""


def fail_all(recipients: tuple[str, ...] | list[str], outcome: Outcome) -> dict[str, Outcome]:
    return dict.fromkeys(recipients, outcome)


def reply_outcome(reply: Reply, host: str) -> Outcome:
    enhanced = f"{reply.enhanced} " if reply.enhanced else ""
    return Outcome(code=reply.code, text=f"{reply.code} {enhanced}{' '.join(reply.lines)}", remote_mta=host)


class _Driver:
    """Feeds the client core and waits for the replies it expects."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conn = SmtpClientConnection()
        self.reader = reader
        self.writer = writer
        self._pending: list[Greeting | ReplyReceived] = []

    async def reply(self, limit: float) -> Reply:
        # Replies to a pipelined group mostly come in one read: those after the first need no timer.
        if not self._pending:
            async with asyncio.timeout(limit):
                while not self._pending:
                    await self._write()
                    data = await self.reader.read(65536)
                    if not data:
                        raise ConnectionError("connection closed by the server")
                    self.conn.receive_data(data)
                    self._pending.extend(self.conn.events())
        return self._pending.pop(0).reply

    async def flush(self, limit: float) -> None:
        async with asyncio.timeout(limit):
            await self._write()

    async def _write(self) -> None:
        output = self.conn.data_to_send()
        if output:
            self.writer.write(output)
            await self.writer.drain()  # waits while the socket is full: memory stays at one chunk or so


class Session:
    """An open SMTP session with `host`; `tls` tells whether it runs over TLS."""

    def __init__(self, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.host = host
        self.tls = False
        # What the caller's checks made of the connection, for the log: "plaintext", "tls" (encrypted,
        # unauthenticated), "pkix" (certificate verified against CAs) or "dane" (verified by TLSA records).
        self.security = "plaintext"
        self.authenticated = False
        self.transactions = 0  # transactions run, whatever their result
        self._driver = _Driver(reader, writer)
        self._usable = True  # in step with the server: another command may follow
        self._dirty = False  # a transaction ran since the last RSET

    @classmethod
    async def open(
        cls,
        host: str,
        address: str,
        port: int,
        *,
        context: ssl.SSLContext,
        implicit_tls: bool,
        helo_name: str,
        timeouts: Timeouts,
    ) -> Session:
        """Connect, read the greeting, EHLO, and STARTTLS when offered; raises TryNextHost on failure."""
        try:
            async with asyncio.timeout(timeouts.connect):
                reader, writer = await asyncio.open_connection(
                    address, port, ssl=context if implicit_tls else None,
                    server_hostname=host if implicit_tls else None,
                )  # fmt: skip
        except (OSError, TimeoutError, ssl.SSLError) as error:
            raise TryNextHost(
                Outcome(code=451, text=f"4.4.1 Connection to {host} failed: {error}", remote_mta=host)
            ) from None
        session = cls(host, reader, writer)
        session.tls = implicit_tls
        try:
            with session._guard():
                await session._start(context, helo_name, timeouts)
        except BaseException:
            await session.close()
            raise
        return session

    async def _start(self, context: ssl.SSLContext, helo_name: str, timeouts: Timeouts) -> None:
        greeting = await self._driver.reply(timeouts.greeting)
        if greeting.code != 220:
            # RFC 5321 §3.1: a 554 greeting refuses the session; another host may take the mail.
            raise TryNextHost(reply_outcome(greeting, self.host))
        await self._hello(helo_name, timeouts)
        caps = self.capabilities
        if self.tls or caps is None or not caps.starttls:
            return
        conn = self._driver.conn
        conn.starttls()
        reply = await self._driver.reply(timeouts.command)
        if reply.code == 220:
            await self._driver.writer.start_tls(context, server_hostname=self.host)
            conn.start_tls_done()
            self.tls = True
            await self._hello(helo_name, timeouts)

    async def _hello(self, helo_name: str, timeouts: Timeouts) -> None:
        conn = self._driver.conn
        conn.ehlo(helo_name)
        reply = await self._driver.reply(timeouts.command)
        if reply.code != 250:
            conn.helo(helo_name)  # RFC 5321 §4.1.4: fall back to HELO for an old server
            reply = await self._driver.reply(timeouts.command)
            if reply.code != 250:
                raise TryNextHost(reply_outcome(reply, self.host))

    @property
    def capabilities(self) -> Capabilities | None:
        return self._driver.conn.capabilities

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS connection, to check the server's certificate against a policy."""
        extra: ssl.SSLObject | None = self._driver.writer.get_extra_info("ssl_object")
        return extra

    @property
    def usable(self) -> bool:
        """Whether another transaction may follow on this connection."""
        return self._usable and not self._driver.writer.is_closing() and not self._driver.reader.at_eof()

    async def authenticate(self, username: str, password: str, timeouts: Timeouts) -> Reply:
        """AUTH PLAIN (RFC 4954); the reply is 235 when it worked."""
        with self._guard():
            self._driver.conn.auth_plain(username, password)
            reply = await self._driver.reply(timeouts.command)
        self.authenticated = reply.code == 235
        return reply

    async def send(self, outbound: Outbound, timeouts: Timeouts) -> dict[str, Outcome]:
        """One mail transaction; an outcome for every recipient.

        Raises StaleSession when the RSET that starts a later transaction finds the connection gone, and
        TryNextHost when the connection fails during the transaction."""
        with self._guard():
            return await self._transaction(outbound, timeouts)

    async def _transaction(self, outbound: Outbound, timeouts: Timeouts) -> dict[str, Outcome]:
        conn = self._driver.conn
        caps = conn.capabilities
        reset = self._dirty
        if reset:
            conn.rset()  # RFC 5321 §4.1.1.5; RFC 2920 §3.1 lets it lead the pipelined group
        self._dirty = True
        self.transactions += 1
        conn.mail(outbound.sender, self._mail_params(outbound))
        for recipient in outbound.recipients:
            extra = (outbound.dsn_params or {}).get(recipient, ()) if caps and caps.dsn else ()
            conn.rcpt(recipient, extra)
        # RFC 2920 §3.1: DATA may end the group, saving a round trip; BDAT waits for the RCPT replies so
        # no chunk goes out for recipients that were all refused.
        data_pipelined = caps is not None and caps.pipelining and not caps.chunking
        if data_pipelined:
            conn.data(line_endings_checked=outbound.line_endings_checked, dot_free=outbound.dot_free)
        if reset:
            await self._check_reset(timeouts)
        mail_reply = await self._driver.reply(timeouts.command)
        rcpt_replies = [await self._driver.reply(timeouts.command) for _ in outbound.recipients]
        data_reply = await self._driver.reply(timeouts.data_start) if data_pipelined else None
        outcomes = {
            r: reply_outcome(reply, self.host)
            for r, reply in zip(outbound.recipients, rcpt_replies, strict=True)
        }
        accepted = [r for r in outbound.recipients if outcomes[r].delivered]
        if mail_reply.code != 250 or not accepted:
            if data_reply is not None and data_reply.code == 354:
                # RFC 2920 §3.1: a server that says 354 with no valid recipient gets an empty message.
                conn.end_message()
                await self._driver.reply(timeouts.data_end)
            if mail_reply.code != 250:
                return fail_all(outbound.recipients, reply_outcome(mail_reply, self.host))
            return outcomes
        if caps is not None and caps.chunking:
            final = await self._send_chunked(outbound.message, timeouts)
        else:
            final = await self._send_data(outbound, timeouts, data_reply)
        for recipient in accepted:
            outcomes[recipient] = reply_outcome(final, self.host)
        return outcomes

    def _mail_params(self, outbound: Outbound) -> list[str]:
        caps = self._driver.conn.capabilities
        params = [f"SIZE={outbound.message.size}"] if caps and caps.size is not None else []
        if outbound.eightbit and caps and caps.eightbitmime:
            params.append("BODY=8BITMIME")
        if outbound.smtputf8:
            params.append("SMTPUTF8")
        if outbound.requiretls:
            params.append("REQUIRETLS")
        if caps and caps.dsn:
            params += list(outbound.envelope_params)
        return params

    async def _check_reset(self, timeouts: Timeouts) -> None:
        # A kept connection the server closed meanwhile shows here, before any of the message went out.
        try:
            reply = await self._driver.reply(timeouts.command)
        except _CONNECTION_ERRORS as error:
            raise StaleSession(str(error) or type(error).__name__) from None
        if reply.code != 250:
            raise StaleSession(f"RSET answered {reply.code}")

    async def _send_data(self, outbound: Outbound, timeouts: Timeouts, reply: Reply | None) -> Reply:
        conn = self._driver.conn
        if reply is None:
            conn.data(line_endings_checked=outbound.line_endings_checked, dot_free=outbound.dot_free)
            reply = await self._driver.reply(timeouts.data_start)
        if reply.code != 354:
            return reply
        async for chunk, last in _mark_last(outbound.message.chunks()):
            conn.send_message_chunk(chunk)  # RFC 5321 §4.5.2 dot-stuffing, chunk by chunk
            if last:
                conn.end_message()  # the terminator leaves with the last chunk, in the same write
            await self._driver.flush(timeouts.data_block)
        return await self._driver.reply(timeouts.data_end)

    async def _send_chunked(self, message: MessageSource, timeouts: Timeouts) -> Reply:
        """RFC 3030 §2: the chunks as they come, no dot-stuffing; a refused chunk ends the transaction."""
        conn = self._driver.conn
        caps = conn.capabilities
        window = BDAT_WINDOW if caps is not None and caps.pipelining else 1
        unanswered = 0
        async for chunk, last in _mark_last(message.chunks()):
            conn.bdat(chunk, last=last)
            unanswered += 1
            await self._driver.flush(timeouts.data_block)
            while unanswered >= window and not last:
                reply = await self._driver.reply(timeouts.data_block)
                unanswered -= 1
                if reply.code != 250:
                    # §2: no further BDAT after a failure; the replies to those already sent are read so
                    # the session stays in step (the next transaction's RSET clears the rest).
                    for _ in range(unanswered):
                        await self._driver.reply(timeouts.data_block)
                    return reply
        replies = [await self._driver.reply(timeouts.data_end) for _ in range(unanswered)]
        return next((reply for reply in replies if reply.code != 250), replies[-1])

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turns a failed connection into TryNextHost; any failure leaves the session unusable."""
        try:
            yield
        except _CONNECTION_ERRORS as error:
            self._usable = False
            raise TryNextHost(
                Outcome(code=451, text=f"4.4.2 Lost connection to {self.host}: {error}", remote_mta=self.host)
            ) from None
        except BaseException:
            self._usable = False
            raise

    async def close(self) -> None:
        """QUIT when the session is in step (RFC 5321 §4.1.1.10), then close the connection."""
        writer = self._driver.writer
        if self.usable:
            self._usable = False
            self._driver.conn.quit()
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await self._driver.flush(5)
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 5)


async def _mark_last(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[bytes, bool]]:
    """Each chunk with whether it is the last; an empty message is one empty last chunk (BDAT 0 LAST)."""
    previous: bytes | None = None
    async for chunk in chunks:
        if previous is not None:
            yield previous, False
        previous = chunk
    yield (previous if previous is not None else b""), True
