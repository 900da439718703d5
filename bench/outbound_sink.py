"""An SMTP sink: accepts every message and stores nothing, printing `mesg=N` after each one (as smtp-sink -c).

Postfix's own smtp-sink ends its EHLO reply with an empty line ("250 "), which kittiwake's client does not
take; this one answers like an ordinary server. Each count is flushed as the 250 goes out, so the reader of
its output can tell when each message arrived.

    python bench/outbound_sink.py --host 127.0.0.2 --port 2526
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

EHLO = b"250-sink.bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
LIMIT = 64 * 1024 * 1024


class Counter:
    def __init__(self) -> None:
        self.messages = 0

    def arrived(self) -> None:
        self.messages += 1
        sys.stdout.buffer.write(b"mesg=%d\r" % self.messages)
        sys.stdout.buffer.flush()


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: Counter) -> None:
    writer.write(b"220 sink.bench.test ESMTP\r\n")
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(EHLO)
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                # RFC 5321 §4.1.1.4: the data ends at CRLF.CRLF; the CRLF of the DATA line came before it.
                await reader.readuntil(b"\r\n.\r\n")
                counter.arrived()
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                break
            else:
                writer.write(b"250 2.0.0 Ok\r\n")
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def main(host: str, port: int) -> None:
    counter = Counter()
    server = await asyncio.start_server(
        lambda reader, writer: serve(reader, writer, counter), host, port, limit=LIMIT, backlog=1000
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.2")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port))
