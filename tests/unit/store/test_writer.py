"""The group-commit writer (statements on the loop, commits on a thread, no waiting for locks on the loop) and
what expunging does to message bytes still being read."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.unit.store.test_sqlite_store import incoming, make_account

from kittiwake.store.changes import Change, ChangedElsewhere
from kittiwake.store.errors import NotFound
from kittiwake.store.sqlite import SqliteStore
from kittiwake.store.sqlite.connection import connect
from kittiwake.store.sqlite.writer import GroupCommitWriter, Transaction


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


async def _expunge_all(store: SqliteStore, mailbox_id: int) -> None:
    from kittiwake.store.interface import FlagMode
    from kittiwake.store.models import Flags, SystemFlag

    await store.store_flags(mailbox_id, [(1, 1_000)], FlagMode.ADD, Flags(system=SystemFlag.DELETED))
    await store.expunge(mailbox_id)


async def test_an_opened_blob_reads_to_the_end_after_its_message_is_expunged(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "data", inline_max=1000)
    try:
        account = await make_account(store)
        inbox = await store.get_mailbox(account.id, "INBOX")
        small, large = b"s" * 500 + b"\r\n", bytes(range(256)) * 1000  # kept in SQLite / in a file
        added = await store.append(inbox.id, [await incoming(store, small), await incoming(store, large)])
        records = await store.load_messages(inbox.id, [(a.uid, a.uid) for a in added])
        opened = [await store.open_blob(r.blob_id, 0, r.size) for r in records]
        await _expunge_all(store, inbox.id)
        assert [b"".join([chunk async for chunk in source]) for source in opened] == [small, large]
        await store.sweep_released(int(time.time()) + 1)  # the bytes outlive the expunge until swept
        with pytest.raises(NotFound):
            await store.open_blob(records[1].blob_id, 0, records[1].size)
    finally:
        await store.close()


async def test_the_wal_is_cut_back_to_its_size_limit_when_the_writer_starts_it_over(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    connect(path).execute("CREATE TABLE t (data BLOB)")
    limit = 256 * 1024
    writer = GroupCommitWriter(path, lambda _change: None, wal_size_limit=limit)
    wal = path.with_name("w.db-wal")

    def insert(tx: Transaction) -> None:
        tx.conn.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))

    try:
        for _ in range(20):  # about 2 MB of WAL, as during a flood the checkpointer cannot keep up with
            await writer.submit(insert)
        assert wal.stat().st_size > 4 * limit
        checkpoint = connect(path)
        checkpoint.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        checkpoint.close()
        await writer.submit(insert)  # the first write after a complete checkpoint starts the WAL over
        assert wal.stat().st_size <= limit
    finally:
        await asyncio.to_thread(writer.close)


def test_deleting_a_large_body_does_not_write_it_again(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    conn = connect(path)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE t (data BLOB)")
    conn.execute("INSERT INTO t VALUES (?)", (b"x" * 1_000_000,))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("DELETE FROM t")
    # Zeroing the freed pages (secure_delete ON) would put the whole megabyte through the WAL again.
    assert path.with_name("d.db-wal").stat().st_size < 100_000
    conn.close()


async def test_only_commits_by_other_connections_count_as_made_elsewhere(store: SqliteStore) -> None:
    await make_account(store)  # the server's own commit
    assert not store._writer.committed_elsewhere()
    other = sqlite3.connect(store.db_path, isolation_level=None)
    other.execute("UPDATE accounts SET quota_bytes = 1")  # a command run beside the server
    other.close()
    assert store._writer.committed_elsewhere()
    assert not store._writer.committed_elsewhere()  # once per commit


async def test_a_commit_by_another_process_wakes_the_queue(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "data")
    seen: list[Change] = []
    woken = asyncio.Event()
    store.changes.subscribe_queue(lambda change: (seen.append(change), woken.set()))
    try:
        command = (
            "import sqlite3, sys\n"
            "sqlite3.connect(sys.argv[1], isolation_level=None).execute('CREATE TABLE elsewhere (x)')"
        )
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", command, str(store.db_path))
        assert await process.wait() == 0
        await asyncio.wait_for(woken.wait(), 30)  # a bound against hanging, not a speed claim
        assert seen == [ChangedElsewhere()]
    finally:
        await store.close()


async def test_an_operation_that_need_not_be_durable_is_answered_before_its_commit(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    conn = connect(path)
    conn.execute("CREATE TABLE t (n INTEGER)")
    conn.close()
    writer = GroupCommitWriter(path, lambda _change: None)
    held = threading.Event()
    # The committer thread is busy until the test says so: the group's COMMIT waits behind this.
    writer._committer.submit(held.wait, 10)

    def insert(n: int) -> Callable[[Transaction], int]:
        return lambda tx: int(tx.conn.execute("INSERT INTO t VALUES (?)", (n,)).lastrowid or 0)

    try:
        durable = asyncio.ensure_future(writer.submit(insert(1)))
        quick = asyncio.ensure_future(writer.submit(insert(2), durable=False))
        assert await asyncio.wait_for(quick, 5) == 2  # answered once it has run
        assert not durable.done()  # the other waits for the commit
        held.set()
        assert await durable == 1
    finally:
        held.set()
        await asyncio.to_thread(writer.close)
