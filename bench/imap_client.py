"""A small IMAP client on asyncio streams for load generation: tagged commands, literals, IDLE.

It reads what the server sends only as far as the benchmark needs: lines, `{n}` literals inside them (RFC 9051
§4.3), and the tagged status. Bulk responses (100,000 FETCH lines) can be read in large chunks without
splitting them into lines, so the client costs less than the server it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
from dataclasses import dataclass

LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}\r\n$")
BULK_CHUNK = 1 << 18


class ImapError(Exception):
    """The server closed the connection or answered in a way the benchmark cannot go on from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    status: bytes  # OK, NO or BAD
    text: bytes  # the whole tagged line
    untagged: int  # untagged lines before it
    size: int  # bytes received for the command, literals included
    lines: tuple[bytes, ...] = ()  # the untagged lines, when asked to keep them


@functools.cache
def client_tls() -> ssl.SSLContext:
    """The servers under test use a self-signed certificate on 127.0.0.1: encrypt, do not verify.

    One context for every connection: a context per connection would cost the client memory per connection.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ImapClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._next_tag = 0

    @classmethod
    async def connect(cls, port: int, context: ssl.SSLContext) -> ImapClient:
        """Implicit TLS (RFC 8314 §3.3), then the server's greeting."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, limit=1 << 20)
        client = cls(reader, writer)
        greeting = await client._line()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"greeting {greeting[:80]!r}")
        return client

    def _tag(self) -> bytes:
        self._next_tag += 1
        return b"t%d" % self._next_tag

    async def _line(self) -> bytes:
        try:
            line = await self.reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError as closed:
            raise ImapError(f"connection closed after {closed.partial[-80:]!r}") from None
        return line

    async def command(self, text: bytes, literal: bytes | None = None, *, keep: bool = False) -> Reply:
        """Send one command; with `literal`, as a non-synchronizing literal (RFC 7888 LITERAL+) at its end."""
        tag = self._tag()
        if literal is None:
            self.writer.write(b"%s %s\r\n" % (tag, text))
        else:
            self.writer.write(b"%s %s {%d+}\r\n%s\r\n" % (tag, text, len(literal), literal))
        return await self.read_reply(tag, keep=keep)

    async def read_reply(self, tag: bytes, *, keep: bool = False) -> Reply:
        """Lines (with their literals) up to the tagged status for `tag`."""
        prefix = tag + b" "
        untagged = size = 0
        kept: list[bytes] = []
        while True:
            line = await self._line()
            size += len(line)
            while line.endswith(b"}\r\n"):
                match = LITERAL_AT_END.search(line)
                if match is None:
                    break
                size += int(match.group(1))
                await self.reader.readexactly(int(match.group(1)))
                line = await self._line()
                size += len(line)
            if line.startswith(prefix):
                status = line[len(prefix) :].split(b" ", 1)[0]
                return Reply(status=status, text=line, untagged=untagged, size=size, lines=tuple(kept))
            untagged += 1
            if keep:
                kept.append(line)

    async def bulk(self, text: bytes) -> Reply:
        """A command whose answer has no literals (SELECT, FETCH FLAGS): read in chunks up to the tagged line."""
        tag = self._tag()
        self.writer.write(b"%s %s\r\n" % (tag, text))
        marker = b"\r\n" + tag + b" "
        size = lines = 0  # lines: CRLFs in the chunks read before the current one
        carry = b"\r\n"
        while True:
            chunk = await self.reader.read(BULK_CHUNK)
            if not chunk:
                raise ImapError("connection closed during a bulk response")
            size += len(chunk)
            # A CRLF split between two reads is counted through the carried tail.
            joined = carry.endswith(b"\r") and chunk.startswith(b"\n")
            window = carry + chunk
            found = window.find(marker)
            if found >= 0:
                head = found + 2 - len(carry)  # where the tagged line starts in this chunk
                untagged = lines + (chunk[:head].count(b"\r\n") + joined if head > 0 else 0)
                end = window.find(b"\r\n", found + len(marker))
                while end < 0:
                    more = await self.reader.read(BULK_CHUNK)
                    if not more:
                        raise ImapError("connection closed inside the tagged line")
                    window += more
                    end = window.find(b"\r\n", found + len(marker))
                line = window[found + 2 : end + 2]
                status = line[len(tag) + 1 :].split(b" ", 1)[0]
                return Reply(status=status, text=line, untagged=untagged, size=size)
            lines += chunk.count(b"\r\n") + joined
            carry = window[-(len(marker) - 1) :]

    async def idle(self) -> None:
        """Enter IDLE (RFC 2177) and wait for the continuation request."""
        self.writer.write(self._tag() + b" IDLE\r\n")
        while True:
            line = await self._line()
            if line.startswith(b"+"):
                return
            if not line.startswith(b"*"):
                raise ImapError(f"IDLE refused: {line[:120]!r}")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(self.writer.wait_closed(), 2)
