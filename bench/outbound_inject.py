"""Hands messages to a server over SMTP, from a few concurrent sessions that each reuse their connection.

For kittiwake this is its submission port (RFC 6409): STARTTLS, then AUTH PLAIN; for Postfix its smtpd, which
relays for clients on 127.0.0.0/8 without AUTH. The loading is not timed, so the dialogue keeps to one
command at a time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from dataclasses import dataclass

from smtp_load import expect

SENDER = "bench@example.org"
PASSWORD = "password123"
LINE = b"z" * 76 + b"\r\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Injection:
    port: int
    count: int
    size: int
    recipient: str
    sessions: int = 8
    submission: bool = False


def message(size: int, number: int, recipient: str) -> bytes:
    """About `size` bytes, ending in CRLF, with no line that starts with a dot, so no stuffing is needed."""
    header = (
        f"From: <{SENDER}>\r\nTo: <{recipient}>\r\nSubject: outbound {number}\r\n"
        f"Message-ID: <outbound.{number}@example.org>\r\nDate: Sun, 22 Nov 2026 05:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
    ).encode()
    return header + LINE * max(1, (size - len(header)) // len(LINE))


def tls_context() -> ssl.SSLContext:
    # The bench's kittiwake has the self-signed certificate `kittiwake init` made: nothing to verify it with.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str, code: int) -> None:
    writer.write(line.encode() + b"\r\n")
    await expect(reader, code)


async def session(spec: Injection, numbers: range) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", spec.port)
    try:
        await expect(reader, 220)
        await command(reader, writer, "EHLO inject.bench.test", 250)
        if spec.submission:
            await command(reader, writer, "STARTTLS", 220)
            await writer.start_tls(tls_context())
            await command(reader, writer, "EHLO inject.bench.test", 250)
            token = base64.b64encode(f"\0{SENDER}\0{PASSWORD}".encode()).decode()
            await command(reader, writer, f"AUTH PLAIN {token}", 235)
        for number in numbers:
            await command(reader, writer, f"MAIL FROM:<{SENDER}>", 250)
            await command(reader, writer, f"RCPT TO:<{spec.recipient}>", 250)
            await command(reader, writer, "DATA", 354)
            # RFC 5321 §4.1.1.4: the data ends with CRLF.CRLF; the message already ends with CRLF.
            writer.write(message(spec.size, number, spec.recipient) + b".\r\n")
            await expect(reader, 250)
        await command(reader, writer, "QUIT", 221)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def inject(spec: Injection, first: int = 0) -> None:
    """Messages numbered first .. first + count - 1, spread over the sessions."""
    sessions = max(1, min(spec.sessions, spec.count))
    await asyncio.gather(
        *(session(spec, range(first + index, first + spec.count, sessions)) for index in range(sessions))
    )
