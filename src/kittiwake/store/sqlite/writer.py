"""The single writer: every write runs on one thread, and writes that arrive together share one transaction.

Theory of operation: callers on the event loop submit an operation (a function of a Transaction) and await a
future. The writer thread takes the first waiting operation plus all others queued meanwhile, opens one
transaction, runs each inside its own SAVEPOINT (so one failing operation undoes only itself), then commits
once: one WAL fsync makes the whole group durable. Only after the commit are the futures resolved and the
changes published, on each caller's event loop, so nobody acknowledges anything that is not on disk. While
one group commits, the next one gathers in the queue: the busier the server, the bigger the groups.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from kittiwake.store.changes import Change
from kittiwake.store.sqlite.connection import connect

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class Transaction:
    """What an operation sees: the connection, plus what to publish and do once the commit is durable."""

    conn: sqlite3.Connection
    changes: list[Change] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


@dataclass(slots=True)
class _Operation(Generic[T]):
    run: Callable[[Transaction], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop


class GroupCommitWriter:
    def __init__(self, path: Path, publish: Callable[[Change], None], *, max_group: int = 256) -> None:
        self._path = path
        self._publish = publish
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Operation[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="store-writer", daemon=True)
        self.groups = 0  # transactions committed, for benchmarks
        self.operations = 0
        self._thread.start()

    async def submit(self, run: Callable[[Transaction], T]) -> T:
        """Run `run` in the next group transaction; returns its result once the commit is durable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Operation(run, future, loop))
        return await future

    def close(self) -> None:
        """Finish queued operations, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _serve(self) -> None:
        conn = connect(self._path)
        # Checkpoints run on their own thread (Checkpointer), so no commit waits while the WAL is copied back.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            while True:
                group, stopping = self._take_group()
                if group:
                    self._commit_group(conn, group)
                if stopping:
                    return
        finally:
            conn.close()

    def _take_group(self) -> tuple[list[_Operation[Any]], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        group = [first]
        while len(group) < self._max_group:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return group, True
            group.append(item)
        return group, False

    def _commit_group(self, conn: sqlite3.Connection, group: list[_Operation[Any]]) -> None:
        outcomes: list[tuple[_Operation[Any], object, BaseException | None, Transaction]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for operation in group:
                tx = Transaction(conn)
                conn.execute("SAVEPOINT operation")
                try:
                    result = operation.run(tx)
                except Exception as refusal:  # the caller gets it; the others in the group go on
                    conn.execute("ROLLBACK TO operation")
                    conn.execute("RELEASE operation")
                    outcomes.append((operation, None, refusal, tx))
                else:
                    conn.execute("RELEASE operation")
                    outcomes.append((operation, result, None, tx))
            conn.execute("COMMIT")
        except Exception as failure:
            log.exception("store transaction failed")
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for operation in group:
                operation.loop.call_soon_threadsafe(
                    _settle, operation.future, None, failure, [], self._publish
                )
            return
        self.groups += 1
        self.operations += len(group)
        for operation, result, error, tx in outcomes:
            if error is None:
                for action in tx.after_commit:
                    action()
            changes = tx.changes if error is None else []
            operation.loop.call_soon_threadsafe(
                _settle, operation.future, result, error, changes, self._publish
            )


def _settle(
    future: asyncio.Future[Any],
    result: object,
    error: BaseException | None,
    changes: list[Change],
    publish: Callable[[Change], None],
) -> None:
    for change in changes:
        publish(change)
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Checkpointer:
    """Copies the WAL back into the database in the background (PASSIVE: it never blocks the writer or
    readers), so the WAL stays small without a commit ever paying for a checkpoint."""

    def __init__(self, path: Path, *, interval: float = 1.0) -> None:
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="store-checkpoint", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn = connect(self._path)
        try:
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.OperationalError as error:  # busy: the next round will do
                    log.debug("checkpoint skipped: %s", error)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
