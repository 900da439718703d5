"""The group-commit writer: statements on the loop, commits on a thread, never waiting on the loop for a lock."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from tests.unit.store.test_sqlite_store import incoming, make_account

from kittiwake.store.sqlite import SqliteStore


async def test_a_write_waits_for_another_process_lock_without_blocking_the_loop(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    other = sqlite3.connect(store.db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process (a CLI command, say) holds the write lock
    try:
        append = asyncio.create_task(store.append(inbox.id, [await incoming(store, b"m\r\n")]))
        ticks = 0
        started = time.monotonic()
        while time.monotonic() - started < 0.3:
            await asyncio.sleep(0.01)
            ticks += 1
        assert not append.done()
        assert ticks >= 10  # the loop kept running while the write waited
    finally:
        other.execute("COMMIT")
        other.close()
    added = await asyncio.wait_for(append, 5)
    assert [a.uid for a in added] == [1]


async def test_one_failing_operation_leaves_the_rest_of_its_group_committed(store: SqliteStore) -> None:
    account = await make_account(store)
    results = await asyncio.gather(
        store.create_mailbox(account.id, "Projects"),
        store.create_mailbox(account.id, "INBOX"),  # exists already: refused
        store.create_mailbox(account.id, "Archive/2026"),
        return_exceptions=True,
    )
    assert isinstance(results[1], Exception)
    names = {mailbox.name for mailbox in await store.list_mailboxes(account.id)}
    assert {"Projects", "Archive/2026"} <= names
    groups, operations = store.writer_stats
    assert operations > groups  # the three shared transactions
