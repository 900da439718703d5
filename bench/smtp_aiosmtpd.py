"""An aiosmtpd server that makes every message durable before its 250: one file per message, fsync'd.

The write and fsync run on the default thread pool, so concurrent sessions can wait on the disk together,
as they would with any asyncio server that does blocking I/O properly. Runs until SIGTERM or SIGINT.

    python bench/smtp_aiosmtpd.py --port 2526 --spool /tmp/spool
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session


def write_durably(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class SpoolHandler:
    """aiosmtpd handler: DATA is answered 250 only once the message file is on disk."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.numbers = itertools.count()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        path = self.spool / f"{os.getpid()}.{next(self.numbers)}.eml"
        await asyncio.to_thread(write_durably, path, content)
        return "250 2.0.0 Ok: queued"


async def serve(port: int, spool: Path, size_limit: int) -> None:
    loop = asyncio.get_running_loop()
    handler = SpoolHandler(spool)
    server = await loop.create_server(
        lambda: SMTP(handler, data_size_limit=size_limit, hostname="aiosmtpd.bench.test"),
        host="127.0.0.1",
        port=port,
    )
    stopped = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stopped.set)
    sys.stderr.write(f"aiosmtpd ready port={port}\n")
    sys.stderr.flush()
    await stopped.wait()
    server.close()
    await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--size-limit", type=int, default=64 * 1024 * 1024)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.spool, args.size_limit))


if __name__ == "__main__":
    main()
