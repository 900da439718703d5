"""A command's handler is finished by the time its tagged answer is sent, not left suspended for asyncio to
close later: an abandoned async generator costs the loop a wake-up through its self-pipe and a task for
every command, and keeps what the handler loaded (a FETCH's rows) alive until that task runs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.imapd.test_imap_service import Raw, deliver, run
from tests.service.server_harness import RunningServer, running_server

COMMANDS = [
    "NOOP",
    'LIST "" *',
    "STATUS INBOX (MESSAGES UNSEEN)",
    "SELECT INBOX",
    "FETCH 1:* (FLAGS UID)",
    "UID FETCH 1 (BODY.PEEK[HEADER])",
    "STORE 1 +FLAGS (\\Flagged)",
    "SEARCH FLAGGED",
    "UNSELECT",
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path) as running:
        yield running


async def test_every_command_closes_its_handler_before_answering(server: RunningServer) -> None:
    await run(deliver, server, "one")
    original = sys.get_asyncgen_hooks()
    left_to_the_loop: list[str] = []

    def finalizer(generator: AsyncGenerator[Any, None]) -> None:
        # Called only for a generator dropped while still suspended; a closed one never gets here.
        left_to_the_loop.append(generator.ag_code.co_qualname)
        if original.finalizer is not None:
            original.finalizer(generator)

    # The server runs on this loop and thread, so its handlers, started from here on, get this finalizer.
    sys.set_asyncgen_hooks(firstiter=original.firstiter, finalizer=finalizer)
    try:
        raw = await Raw.open(server)
        await raw.login()
        for number, text in enumerate(COMMANDS):
            tag = f"c{number}"
            lines = await raw.command(tag, text)
            assert lines[-1].startswith(f"{tag} OK".encode()), lines
        raw.close()
        await asyncio.sleep(0)
    finally:
        sys.set_asyncgen_hooks(*original)
    assert left_to_the_loop == []
