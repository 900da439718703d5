"""DKIM, ARC and DMARC checks in helper processes, so they run on a core of their own.

The SMTP loop of port 25 is one thread. Verifying a message (canonical forms, hashes, an RSA signature,
DMARC's alignment) costs about as much Python time as receiving and storing it, so in the server's own
process the checks would take a third of its throughput; in a helper process, as OpenDKIM and OpenDMARC
sit beside Postfix, they cost the loop only a pipe write and a read. The helper has its own resolver with
its own cache, asks DNS itself, and writes the Authentication-Results field (RFC 8601).

Frames on the helper's stdin and stdout are a request id and a length (8 octets), then a pickle: our own
child on a private pipe, never a peer. A helper that dies or hangs costs nothing but speed: its pending
requests answer None and the caller checks the message in its own process, and it is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pickle
import struct
import sys
import time

from kittiwake.config import InboundSettings
from kittiwake.delivery.verification import Disposition, Judgement, Verdicts

log = logging.getLogger(__name__)
FRAME = struct.Struct(">II")  # request id, length of the pickle that follows
CHILD_MODULE = "kittiwake.delivery.verify_child"
READY = FRAME.pack(0, 0)  # the helper's first frame: it has started and reads requests
STARTUP_TIMEOUT = 30.0

# Frames carry plain values, not our dataclasses: pickling those goes through Python code on both ends.
# A request: the client's address, MAIL FROM, HELO, iprev, the message (None when too big to check) and
# its header block.
Request = tuple[str, str, str, str | None, bytes | None, bytes]
# An answer: the disposition's value, the Authentication-Results field and the author domain, or None
# when the helper could not check the message.
Answer = tuple[str, bytes, str] | None


def helper_arguments(resolver_address: str, hostname: str, settings: InboundSettings) -> list[str]:
    """The helper's command line: what it needs of the configuration to decide as the server would."""
    policy = {"dmarc_reject": settings.dmarc_reject, "trusted_arc_sealers": settings.trusted_arc_sealers}
    return [resolver_address, hostname, json.dumps(policy)]


def request(verdicts: Verdicts, message: bytes | None, header_block: bytes) -> Request:
    return verdicts.ip, verdicts.mail_from, verdicts.helo, verdicts.iprev, message, header_block


class VerifyProcesses:
    """A fixed number of helper processes; each request goes to the one with the fewest in flight."""

    def __init__(
        self, count: int, resolver_address: str, hostname: str, settings: InboundSettings, *,
        timeout: float = 120.0, restart_interval: float = 10.0,
    ) -> None:  # fmt: skip
        self._arguments = helper_arguments(resolver_address, hostname, settings)
        # `timeout` is longer than the helper's own DNS time limits add up to; a helper that died is
        # started again at most once per `restart_interval` seconds.
        self._helpers = [_Helper(timeout, restart_interval) for _ in range(count)]

    async def start(self) -> None:
        for helper in self._helpers:
            await helper.start(self._arguments)

    async def judge(self, verdicts: Verdicts, message: bytes | None, header_block: bytes) -> Judgement | None:
        """The helpers' judgement of the message, or None when none could answer: the caller then checks
        it in its own process."""
        helper = min(self._helpers, key=_Helper.load)
        if not helper.alive:
            await helper.restart(self._arguments)
            if not helper.alive:
                return None
        payload = pickle.dumps(request(verdicts, message, header_block), pickle.HIGHEST_PROTOCOL)
        answer = await helper.ask(payload)
        if answer is None:
            return None
        disposition, auth_results, author_domain = answer
        return Judgement(
            disposition=Disposition(disposition), auth_results=auth_results, author_domain=author_domain
        )

    def pids(self) -> list[int]:
        """The helpers' process ids, of those running."""
        return [h.process.pid for h in self._helpers if h.alive and h.process is not None]

    async def close(self) -> None:
        for helper in self._helpers:
            await helper.close()


class _Helper:
    def __init__(self, timeout: float, restart_interval: float) -> None:
        self.timeout = timeout
        self.restart_interval = restart_interval
        self.process: asyncio.subprocess.Process | None = None
        self.alive = False
        self._pending: dict[int, asyncio.Future[Answer]] = {}
        self._next_id = 0
        self._reader: asyncio.Task[None] | None = None
        self._started = 0.0
        self._closing = False

    def load(self) -> int:
        return len(self._pending) if self.alive else 1 << 30

    async def start(self, arguments: list[str]) -> None:
        self._started = time.monotonic()
        self._closing = False
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", CHILD_MODULE, *arguments,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
        except OSError as error:
            log.warning("verification helper did not start: %s", error)
            return
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                ready = await self.process.stdout.readexactly(FRAME.size)
        except (asyncio.IncompleteReadError, TimeoutError):
            ready = b""
        if ready != READY:
            log.warning("verification helper did not start; mail is checked in the server")
            self._stop()
            await self.process.wait()
            return
        self.alive = True
        self._reader = asyncio.create_task(self._read_answers(), name="verify-helper-answers")

    async def restart(self, arguments: list[str]) -> None:
        if time.monotonic() - self._started >= self.restart_interval:
            await self.close()
            await self.start(arguments)

    async def ask(self, payload: bytes) -> Answer:
        process = self.process
        assert process is not None and process.stdin is not None
        request = self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        try:
            process.stdin.write(FRAME.pack(request, len(payload)) + payload)
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError:
            log.warning("verification helper gave no answer in %.0f s; restarting it", self.timeout)
            self._stop()
            return None
        finally:
            self._pending.pop(request, None)

    async def _read_answers(self) -> None:
        process = self.process
        assert process is not None and process.stdout is not None
        try:
            while True:
                request, length = FRAME.unpack(await process.stdout.readexactly(FRAME.size))
                answer = pickle.loads(await process.stdout.readexactly(length))
                future = self._pending.get(request)
                if future is not None and not future.done():
                    future.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not self._closing:
                log.warning("verification helper exited; its messages are checked in the server")
        finally:
            self._stop()

    def _stop(self) -> None:
        """Forget the process: whatever it still owed answers None."""
        self.alive = False
        for future in self._pending.values():
            if not future.done():
                future.set_result(None)
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def close(self) -> None:
        process = self.process
        if process is None:
            return
        self._closing = True
        if process.stdin is not None and self.alive:
            process.stdin.close()  # end of input: the helper finishes and exits
        try:
            async with asyncio.timeout(5):
                await process.wait()
        except TimeoutError:
            self._stop()
            await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self.alive = False
