"""The verification helper process: `python -m kittiwake.delivery.verify_child RESOLVER HOSTNAME POLICY`.

It reads requests on stdin and writes answers on stdout, framed as verify_process describes, checking
several messages at once while their DNS answers are awaited. End of input ends it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import sys

from kittiwake import collector
from kittiwake.config import InboundSettings
from kittiwake.delivery.verification import Verdicts, judge_content
from kittiwake.delivery.verify_process import FRAME, READY, Answer
from kittiwake.resolver import DnspythonResolver, Resolver

log = logging.getLogger(__name__)


async def serve(
    resolver: Resolver, hostname: str, settings: InboundSettings, input_fd: int, output_fd: int
) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 16)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(input_fd, "rb", buffering=0)
    )
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(output_fd, "wb", buffering=0))
    running: set[asyncio.Task[None]] = set()
    transport.write(READY)

    async def answer(request: int, payload: bytes) -> None:
        reply = pickle.dumps(await _check(payload, resolver, hostname, settings), pickle.HIGHEST_PROTOCOL)
        transport.write(FRAME.pack(request, len(reply)) + reply)

    while True:
        try:
            request, length = FRAME.unpack(await reader.readexactly(FRAME.size))
            payload = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            break
        task = asyncio.create_task(answer(request, payload))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.wait(running)
    transport.close()


async def _check(payload: bytes, resolver: Resolver, hostname: str, settings: InboundSettings) -> Answer:
    try:
        ip, mail_from, helo, iprev, message, header_block = pickle.loads(payload)
        verdicts = Verdicts(ip=ip, mail_from=mail_from, helo=helo, iprev=iprev)
        judgement = await judge_content(verdicts, message, header_block, resolver, hostname, settings)
    except Exception:
        # The server checks this message itself; the traceback is for the administrator.
        log.exception("verification failed")
        return None
    return judgement.disposition.value, judgement.auth_results, judgement.author_domain


def main() -> None:
    resolver_address, hostname, policy = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    settings = InboundSettings(
        dmarc_reject=bool(policy["dmarc_reject"]),
        trusted_arc_sealers=tuple(str(domain) for domain in policy["trusted_arc_sealers"]),
    )
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Answers get a descriptor of their own; anything printed by mistake goes to stderr, not into a frame.
    output_fd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    collector.tune_for_serving()
    collector.freeze_startup()
    resolver = DnspythonResolver(resolver_address)
    asyncio.run(serve(resolver, hostname, settings, sys.stdin.fileno(), output_fd))


if __name__ == "__main__":
    main()
