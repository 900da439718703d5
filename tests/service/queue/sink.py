"""Sink SMTP servers for outbound tests: they accept, defer, refuse, drop or stall, and keep what they got."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes  # only the first HEAD bytes when the sink keeps only the digest
    tls: bool
    auth: str | None
    size: int = 0
    sha256: str = ""


HEAD = 65536


class _Body:
    """The message as it arrives: its digest and size always, all its bytes or only the first HEAD."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.data = bytearray()
        self.digest = hashlib.sha256()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.size += len(chunk)
        if self.keep or len(self.data) < HEAD:
            self.data += chunk if self.keep else chunk[: HEAD - len(self.data)]


@dataclass
class Sink:
    """`behaviour`: accept | defer (451 at RCPT) | refuse (550 at RCPT) | drop (close after greeting) |
    stall (never answer EHLO) | stall_after_data (read the message, never answer) | greeting554.
    `chunking` offers BDAT (RFC 3030); `keep_data=False` keeps of each message only its digest, its size
    and its first HEAD bytes."""

    behaviour: str = "accept"
    chunking: bool = False
    keep_data: bool = True
    smtputf8: bool = True
    starttls: ssl.SSLContext | None = None
    implicit_tls: bool = False
    require_auth: tuple[str, str] | None = None
    received: list[Received] = field(default_factory=list)
    stalled: list[Received] = field(default_factory=list)  # bodies read, never answered
    refuse_rset: bool = False  # answer RSET with 421 and close, as a server tired of an idle client
    refuse_bdat_after: int | None = None  # refuse a BDAT chunk once the message has this many bytes
    connections: int = 0  # accepted so far
    commands: list[bytes] = field(default_factory=list)  # verbs in the order they came, of all connections
    open: set[asyncio.StreamWriter] = field(default_factory=set)  # connections not closed yet

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open.add(writer)
        try:
            await self._session(reader, writer, tls=self.implicit_tls)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.open.discard(writer)
            writer.close()

    def disconnect(self) -> None:
        """Drop every open connection, as a server going away or timing out idle clients does."""
        for writer in list(self.open):
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: bool) -> None:
        if self.behaviour == "drop":
            return
        if self.behaviour == "greeting554":
            writer.write(b"554 5.7.1 go away\r\n")
            await writer.drain()
            return
        writer.write(b"220 sink.test ESMTP\r\n")
        sender, recipients, auth = "", [], None
        body = _Body(self.keep_data)
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            self.commands.append(verb)
            if self.behaviour == "stall":
                await asyncio.sleep(3600)
            if verb == b"EHLO":
                extensions = [b"PIPELINING", b"8BITMIME", b"SIZE 100000000"]
                if self.chunking:
                    extensions.append(b"CHUNKING")
                if self.smtputf8:
                    extensions.append(b"SMTPUTF8")
                if self.starttls is not None and not tls:
                    extensions.append(b"STARTTLS")
                if self.require_auth:
                    extensions.append(b"AUTH PLAIN")
                lines = [b"sink.test", *extensions]
                writer.write(
                    b"".join(b"250-" + x + b"\r\n" for x in lines[:-1]) + b"250 " + lines[-1] + b"\r\n"
                )
            elif verb == b"STAR":
                writer.write(b"220 go ahead\r\n")
                await writer.drain()
                assert self.starttls is not None
                await writer.start_tls(self.starttls)
                tls = True
            elif verb == b"AUTH":
                decoded = base64.b64decode(line.split()[2])
                _, user, password = decoded.split(b"\0")
                ok = self.require_auth == (user.decode(), password.decode())
                auth = user.decode() if ok else None
                writer.write(b"235 2.7.0 ok\r\n" if ok else b"535 5.7.8 no\r\n")
            elif verb == b"MAIL":
                if self.require_auth and auth is None:
                    writer.write(b"530 5.7.0 auth first\r\n")
                else:
                    sender = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                    recipients = []
                    writer.write(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                address = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                if self.behaviour == "defer":
                    writer.write(b"451 4.3.0 try later\r\n")
                elif self.behaviour == "refuse":
                    writer.write(b"550 5.1.1 no such user\r\n")
                else:
                    recipients.append(address)
                    writer.write(b"250 2.1.5 ok\r\n")
            elif verb in (b"DATA", b"BDAT") and not recipients:
                if verb == b"BDAT":
                    await reader.readexactly(int(line.split()[1]))
                writer.write(b"554 5.5.1 no valid recipients\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go\r\n")
                await writer.drain()
                while True:
                    chunk = await reader.readline()
                    if chunk == b".\r\n":
                        break
                    body.add(chunk[1:] if chunk.startswith(b"..") else chunk)
                await self._end(writer, body, sender, recipients, tls, auth)
                body = _Body(self.keep_data)
            elif verb == b"BDAT":
                words = line.split()
                chunk = await reader.readexactly(int(words[1]))
                if self.refuse_bdat_after is not None and body.size >= self.refuse_bdat_after:
                    writer.write(b"552 5.3.4 message too big for this sink\r\n")
                    recipients, body = [], _Body(self.keep_data)  # the transaction is over
                    await writer.drain()
                    continue
                body.add(chunk)
                if len(words) > 2 and words[2].upper() == b"LAST":
                    await self._end(writer, body, sender, recipients, tls, auth)
                    body = _Body(self.keep_data)
                else:
                    writer.write(b"250 2.0.0 chunk ok\r\n")
            elif verb == b"RSET" and self.refuse_rset:
                writer.write(b"421 4.4.2 sink.test idle too long, closing\r\n")
                await writer.drain()
                return
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()

    async def _end(
        self,
        writer: asyncio.StreamWriter,
        body: _Body,
        sender: str,
        recipients: list[str],
        tls: bool,
        auth: str | None,
    ) -> None:
        got = Received(
            sender=sender, recipients=recipients, data=bytes(body.data), tls=tls, auth=auth,
            size=body.size, sha256=body.digest.hexdigest(),
        )  # fmt: skip
        if self.behaviour == "stall_after_data":
            self.stalled.append(got)
            await asyncio.sleep(3600)
        self.received.append(got)
        writer.write(b"250 2.0.0 queued\r\n")


@contextlib.asynccontextmanager
async def running_sinks(port: int, sinks: dict[str, Sink]) -> AsyncIterator[dict[str, Sink]]:
    """Each sink listens on its own loopback address (127.0.0.x) at the same `port`; on exit the sinks stop
    listening and drop the connections they still have (a client may keep one open for more mail)."""
    servers = []
    for address, sink in sinks.items():
        context = sink.starttls if sink.implicit_tls else None
        servers.append(await asyncio.start_server(sink.handle, address, port, ssl=context))
    try:
        yield sinks
    finally:
        for server in servers:
            server.close()
        for sink in sinks.values():
            sink.disconnect()
