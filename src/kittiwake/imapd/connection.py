"""One IMAP connection: bytes off the socket into the receiver, commands to handlers, responses back.

Theory of operation: the receiver is lazy, so each event is handled completely (a whole command run, its
responses written) before the next is parsed; that is what makes STARTTLS, COMPRESS, IDLE and refused
literals take effect at the right byte. APPEND message literals stream into spools as they arrive and the
Append command then refers to them by index. Writes are buffered and drained per command; FETCH bodies are
streamed from storage in chunks. Pending changes of the selected mailbox are flushed after each command, at
the points RFC 9051 §7.5.1 allows.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import zlib
from collections.abc import AsyncIterator

from kittiwake.delivery.spool import Spool
from kittiwake.imapd.dispatch import run_command
from kittiwake.imapd.session import ImapSession
from kittiwake.net.tls import share_read_buffer
from kittiwake.proto.imap import receiver as rx
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.states import ConnectionState
from kittiwake.proto.imap.wire_format import replace_nul

log = logging.getLogger(__name__)
READ_SIZE = 65536
WRITE_HIGH_WATER = 1 << 18


class ConnectionClosed(Exception):
    pass


class ImapConnection:
    """Implements imapd.session.ConnectionIO for the handlers."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        tls_context: ssl.SSLContext | None,
        append_limit: int,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.tls_context = tls_context
        # RFC 7889: a message literal over APPENDLIMIT is refused before the client sends it.
        self.receiver = rx.ImapReceiver(max_message=append_limit)
        self.session: ImapSession | None = None
        self._out = bytearray()
        self._inflate: zlib._Decompress | None = None
        self._deflate: zlib._Compress | None = None
        self._spools: dict[int, Spool] = {}
        self._idle_wakeup = asyncio.Event()

    # -- output ------------------------------------------------------------------------------------------

    async def send(self, response: r.Response) -> None:
        if isinstance(response, r.FetchResponse):
            for part in response.serialize_parts():
                if isinstance(part, r.BodyLiteral):
                    source: AsyncIterator[bytes] = part.source  # type: ignore[assignment]
                    binary = part.binary
                    async for chunk in source:
                        # RFC 3501 §4.3.1, RFC 9051 §4.3.1: NUL only in a literal8; replaced in C, per chunk.
                        await self._write(chunk if binary else replace_nul(chunk))
                else:
                    await self._write(part)
            return
        await self._write(response.serialize())

    async def _write(self, data: bytes) -> None:
        self._out += data
        if len(self._out) >= WRITE_HIGH_WATER:
            await self.flush()

    async def flush(self) -> None:
        if not self._out:
            return
        data = bytes(self._out)
        self._out.clear()
        if self._deflate is not None:
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self.writer.write(data)
        await self.writer.drain()

    # -- input -------------------------------------------------------------------------------------------

    async def _read(self, limit: float) -> bytes:
        async with asyncio.timeout(limit):
            data = await self.reader.read(READ_SIZE)
        if not data:
            raise ConnectionClosed
        if self._inflate is not None:
            data = self._inflate.decompress(data)
        return data

    async def read_line(self) -> bytes:
        """A line outside command framing (a SASL response): bytes the receiver has not parsed come first."""
        pending = self.receiver.take_unparsed()
        while b"\n" not in pending:
            pending += await self._read(self._timeout())
        line, _, rest = pending.partition(b"\n")
        if rest:
            self.receiver.receive_data(rest)
        return line.rstrip(b"\r")

    def _timeout(self) -> float:
        session = self.session
        assert session is not None
        if session.state is ConnectionState.NOT_AUTHENTICATED:
            return session.settings.login_timeout
        return session.settings.idle_timeout

    # -- the loop ----------------------------------------------------------------------------------------

    async def serve(self, session: ImapSession) -> None:
        self.session = session
        await self.send(
            r.UntaggedStatus(
                status=r.Status.OK,
                text=f"{session.settings.hostname} IMAP ready",
                code=r.ResponseCode.capability(session.capabilities()),
            )
        )
        await self.flush()
        try:
            while session.state is not ConnectionState.LOGOUT:
                try:
                    data = await self._read(self._timeout())
                except TimeoutError:
                    await self.send(
                        r.UntaggedStatus(status=r.Status.BYE, text="Autologout; idle for too long")
                    )
                    break
                self.receiver.receive_data(data)
                await self._handle_events(session)
                await self.flush()
        except ConnectionClosed:
            pass
        finally:
            session.unselect()
            for spool in self._spools.values():
                spool.discard()
            self._spools.clear()
        await self.flush()

    async def _handle_events(self, session: ImapSession) -> None:
        for event in self.receiver.events():
            if session.state is ConnectionState.LOGOUT:
                return
            await self._handle_event(session, event)

    async def _handle_event(self, session: ImapSession, event: rx.ReceiverEvent) -> None:
        match event:
            case rx.RawCommand():
                self._drop_unused_spools(event)
                await run_command(session, event)
                self._discard_spools()
            case rx.ContinuationNeeded():
                await self.send(r.Continuation(text="Ready for literal data"))
                await self.flush()
            case rx.LiteralStart(index=index):
                self._spools[index] = Spool(session.store, inline_max=session.settings.inline_max)
            case rx.LiteralChunk(index=index, data=data):
                self._spools[index].write(data)
            case rx.LiteralEnd():
                pass
            case rx.LiteralTooLarge(tag=tag, size=size, synchronizing=synchronizing):
                await self._refuse_literal(tag, size, synchronizing)
            case rx.CommandTooLong(tag=tag):
                await self.send(r.Tagged(tag=_tag(tag), status=r.Status.BAD, text="Command line too long"))
            case rx.IdleDone():
                pass  # only meaningful inside idle(); a stray DONE is ignored

    async def _refuse_literal(self, tag: bytes, size: int, synchronizing: bool) -> None:
        # RFC 7888 §5 / RFC 9051 §7.1: refuse a too-large literal before the client sends it.
        text = f"Literal of {size} octets is too large"
        status = r.Status.NO if synchronizing else r.Status.BAD
        await self.send(r.Tagged(tag=_tag(tag), status=status, text=text, code=r.TOOBIG))
        if synchronizing:
            self.receiver.refuse_literal()
        self._discard_spools()

    def spooled_literal(self, index: int) -> object:
        return self._spools.pop(index)

    def _drop_unused_spools(self, event: rx.RawCommand) -> None:
        if event.name != b"APPEND":
            self._discard_spools()

    def _discard_spools(self) -> None:
        for spool in self._spools.values():
            spool.discard()
        self._spools.clear()

    # -- special modes -----------------------------------------------------------------------------------

    async def start_tls(self) -> bool:
        if self.tls_context is None:
            return False
        self.receiver.take_unparsed()  # RFC 9051 §6.2.1: plaintext pipelined after STARTTLS is dropped
        await self.flush()
        try:
            async with asyncio.timeout(60):
                await self.writer.start_tls(self.tls_context)
            share_read_buffer(self.writer.transport)
        except (ssl.SSLError, OSError, TimeoutError) as error:
            log.info("STARTTLS handshake failed: %s", error)
            raise ConnectionClosed from None
        return True

    async def start_compression(self) -> None:
        """RFC 4978: everything after the tagged OK is raw DEFLATE in both directions."""
        await self.flush()
        leftover = self.receiver.take_unparsed()
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)
        if leftover:
            self.receiver.receive_data(self._inflate.decompress(leftover))

    async def idle(self, session: ImapSession) -> bool:
        """RFC 2177: send changes as they happen until the client says DONE."""
        selected = session.selected
        self._idle_wakeup.clear()
        if selected is not None:
            selected.notify = self._idle_wakeup.set
        self.receiver.start_idle()
        try:
            return await self._idle_loop(session)
        finally:
            if selected is not None:
                selected.notify = None

    async def _idle_loop(self, session: ImapSession) -> bool:
        from kittiwake.imapd.dispatch import flush_changes

        read: asyncio.Task[bytes] | None = None
        try:
            while True:
                await flush_changes(session, allow_expunge=True)
                await self.flush()
                read = read or asyncio.ensure_future(self._read(session.settings.idle_timeout))
                wake = asyncio.ensure_future(self._idle_wakeup.wait())
                done, _ = await asyncio.wait({read, wake}, return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                self._idle_wakeup.clear()
                if read in done:
                    data = read.result()  # raises TimeoutError / ConnectionClosed
                    read = None
                    self.receiver.receive_data(data)
                    for event in self.receiver.events():
                        if isinstance(event, rx.IdleDone):
                            return event.valid
        finally:
            if read is not None:
                read.cancel()


def _tag(tag: bytes) -> str:
    return tag.decode("ascii", "replace") or "*"
