"""SMTP load generator: concurrent sessions over asyncio streams, one JSON line of results on stdout.

Each session connects, says EHLO and sends messages; with PIPELINING (RFC 2920) MAIL, RCPT and DATA go out in
one write and their three replies are read together. A message counts as accepted when its 250 after the
final dot arrives; latency runs from the moment the last byte of the body was handed to the kernel to that
250. The run stops starting messages at the deadline or at the message cap, whichever comes first.

    python bench/smtp_load.py --port 2525 --size 5120 --sessions 10 --per-connection 20 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from dataclasses import dataclass, field

LINE = b"x" * 76 + b"\r\n"
REPLY_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadSpec:
    host: str
    port: int
    size: int
    sessions: int
    per_connection: int
    seconds: float
    max_messages: int
    sender: str
    recipient: str


@dataclass(slots=True)
class Tally:
    """Shared by all sessions of one run; asyncio runs them on one thread, so no lock is needed."""

    started: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    last_error: str = ""
    pipelining: bool | None = None


class SmtpReplyError(Exception):
    """The server answered with a code other than the one the dialogue needs."""


def build_message(size: int, recipient: str) -> bytes:
    """A message of about `size` bytes whose body lines never start with a dot, so no stuffing is needed."""
    header = (
        f"From: <load@bench.test>\r\nTo: <{recipient}>\r\nSubject: load\r\n"
        "Message-ID: <load@bench.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
    ).encode()
    lines, rest = divmod(max(len(LINE), size - len(header)), len(LINE))
    tail = b"y" * (rest - 2) + b"\r\n" if rest > 2 else b""
    return header + LINE * lines + tail


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    # RFC 5321 §4.2.1: every line but the last of a multiline reply has a hyphen after the code.
    text = b""
    while True:
        line = await asyncio.wait_for(reader.readline(), REPLY_TIMEOUT)
        if not line:
            raise ConnectionError("connection closed by server")
        text += line
        if line[3:4] != b"-":
            return int(line[:3]), text


async def expect(reader: asyncio.StreamReader, code: int) -> bytes:
    got, text = await read_reply(reader)
    if got != code:
        raise SmtpReplyError(text.decode(errors="replace").strip())
    return text


class Session:
    """One client session that keeps sending until the run is over or its connection quota is used."""

    def __init__(self, spec: LoadSpec, tally: Tally, message: bytes, deadline: float) -> None:
        self.spec = spec
        self.tally = tally
        self.deadline = deadline
        self.size = len(message)
        # RFC 5321 §4.1.1.4: the data ends with CRLF.CRLF; the message already ends with CRLF.
        self.payload = message + b".\r\n"

    def may_start(self) -> bool:
        return time.perf_counter() < self.deadline and self.tally.started < self.spec.max_messages

    async def run(self) -> None:
        while self.may_start():
            try:
                await self.connection()
            except (TimeoutError, OSError, SmtpReplyError, ValueError) as error:
                self.tally.errors += 1
                self.tally.last_error = f"{type(error).__name__}: {error}"
                await asyncio.sleep(0.05)

    async def connection(self) -> None:
        reader, writer = await asyncio.open_connection(self.spec.host, self.spec.port)
        # With no high-water mark, drain() returns only once the kernel has taken every byte written, which
        # is where the latency clock starts.
        writer.transport.set_write_buffer_limits(high=0)
        try:
            await expect(reader, 220)
            writer.write(b"EHLO load.bench.test\r\n")
            capabilities = await expect(reader, 250)
            envelope = self.envelope(capabilities.upper())
            self.tally.pipelining = len(envelope) == 1
            sent = 0
            while sent < self.spec.per_connection and self.may_start():
                self.tally.started += 1
                sent += 1
                await self.transaction(reader, writer, envelope)
            writer.write(b"QUIT\r\n")
            await expect(reader, 221)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def envelope(self, capabilities: bytes) -> list[bytes]:
        """MAIL, RCPT and DATA lines, grouped into one write when the server offers PIPELINING."""
        # RFC 1870 §6: SIZE on MAIL only when the server announced the extension.
        size = (
            f" SIZE={self.size}" if b"\r\n250-SIZE" in capabilities or b"\r\n250 SIZE" in capabilities else ""
        )
        lines = [
            f"MAIL FROM:<{self.spec.sender}>{size}\r\n".encode(),
            f"RCPT TO:<{self.spec.recipient}>\r\n".encode(),
            b"DATA\r\n",
        ]
        # RFC 2920 §3.1: MAIL, RCPT and DATA may go in one group; DATA is the last of the group.
        return [b"".join(lines)] if b"PIPELINING" in capabilities else lines

    async def transaction(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, envelope: list[bytes]
    ) -> None:
        if len(envelope) == 1:
            writer.write(envelope[0])
            for code in (250, 250, 354):
                await expect(reader, code)
        else:
            for line, code in zip(envelope, (250, 250, 354), strict=True):
                writer.write(line)
                await expect(reader, code)
        writer.write(self.payload)
        await writer.drain()
        sent_at = time.perf_counter()
        code, text = await read_reply(reader)
        if code == 250:
            self.tally.accepted += 1
            self.tally.latencies.append(time.perf_counter() - sent_at)
        else:
            self.tally.rejected += 1
            self.tally.last_error = text.decode(errors="replace").strip()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(spec: LoadSpec) -> dict[str, object]:
    tally = Tally()
    message = build_message(spec.size, spec.recipient)
    cpu_before = time.process_time()
    started = time.perf_counter()
    sessions = [Session(spec, tally, message, started + spec.seconds) for _ in range(spec.sessions)]
    await asyncio.gather(*(session.run() for session in sessions))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    return {
        "accepted": tally.accepted,
        "rejected": tally.rejected,
        "errors": tally.errors,
        "elapsed": elapsed,
        "rate": tally.accepted / elapsed if elapsed > 0 else 0.0,
        "p50": percentile(tally.latencies, 0.50),
        "p99": percentile(tally.latencies, 0.99),
        "mean": statistics.fmean(tally.latencies) if tally.latencies else float("nan"),
        "message_bytes": len(message),
        "load_cpu": cpu,
        "last_error": tally.last_error,
        "pipelining": tally.pipelining,
    }


def parse_args(argv: list[str] | None = None) -> LoadSpec:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=5 * 1024, help="message size in bytes")
    parser.add_argument("--sessions", type=int, default=1, help="concurrent SMTP sessions")
    parser.add_argument(
        "--per-connection", type=int, default=1, help="messages per connection (1: a new connection each)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="stop starting messages after this")
    parser.add_argument("--max-messages", type=int, default=20000, help="stop starting messages after this")
    parser.add_argument("--sender", default="load@bench.test")
    parser.add_argument("--recipient", default="bench@example.org")
    args = parser.parse_args(argv)
    return LoadSpec(
        host=args.host,
        port=args.port,
        size=args.size,
        sessions=args.sessions,
        per_connection=args.per_connection,
        seconds=args.seconds,
        max_messages=args.max_messages,
        sender=args.sender,
        recipient=args.recipient,
    )


def main(argv: list[str] | None = None) -> None:
    result = asyncio.run(run(parse_args(argv)))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
