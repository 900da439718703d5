"""The single writer: every write runs on one connection, and writes that arrive together share one transaction.

Theory of operation: callers on the event loop submit an operation (a function of a Transaction) and await a
future. Operations submitted during one turn of the loop form a group: the loop itself opens one transaction,
runs each operation inside its own SAVEPOINT (so one failing operation undoes only itself), and hands the
COMMIT alone to the committer thread, where the WAL fsync happens without holding up the loop. Only after
the commit are the futures resolved and the changes published, so nobody acknowledges anything that is not
on disk. While one group commits, the next one gathers: the busier the server, the bigger the groups.

The statements run on the loop because they take microseconds, while a writer thread needs the GIL back
after every one of them and, when the loop is busy, waits for it each time; the commit is the only step
that waits for the disk. The loop never waits for a lock either: the connection's busy timeout is zero, and
a group that finds the database locked (by a command-line process, say) is tried again a moment later.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from kittiwake.store.changes import Change
from kittiwake.store.sqlite.connection import connect

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCKED_RETRY = 0.005  # seconds before a group that found the database locked is tried again
# The WAL is reused, not shrunk, once checkpointed; under a sustained flood of mail the checkpointer cannot
# catch up and it grows, so when the writer starts it over it is cut back to this size.
WAL_SIZE_LIMIT = 64 * 1024 * 1024


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
    durable: bool = True  # False: answered as soon as it has run; its changes still wait for the commit


@dataclass(slots=True)
class _Outcome:
    operation: _Operation[Any]
    result: object
    error: BaseException | None
    tx: Transaction


class GroupCommitWriter:
    def __init__(
        self,
        path: Path,
        publish: Callable[[Change], None],
        *,
        max_group: int = 256,
        wal_size_limit: int = WAL_SIZE_LIMIT,
    ) -> None:
        self._publish = publish
        self._max_group = max_group
        self._conn = connect(path)
        # Checkpoints run on their own thread (Checkpointer), so no commit waits while the WAL is copied back.
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._conn.execute(f"PRAGMA journal_size_limit = {int(wal_size_limit)}")
        self._conn.execute("PRAGMA busy_timeout = 0")
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")
        self._pending: deque[_Operation[Any]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self._committing = False
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self._data_version = self._read_data_version()
        self.groups = 0  # transactions committed, for benchmarks
        self.operations = 0

    async def submit(self, run: Callable[[Transaction], T], *, durable: bool = True) -> T:
        """Run `run` in the next group transaction; returns its result once the commit is durable.

        With `durable` False the result comes as soon as `run` has run, before the commit: for state
        that may be lost in a crash, whose callers must not wait for the disk. The operations of one
        writer still run one after the other, so a read-and-update in `run` stays atomic."""
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if not self._idle.is_set():
                raise RuntimeError("the store is in use by another event loop")
            self._loop = loop
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Operation(run, future, durable))
        self._idle.clear()
        self._schedule()
        return await future

    def committed_elsewhere(self) -> bool:
        """Whether another process has committed since the last call. SQLite's data_version moves for
        commits made on other connections only, and only this one writes in the server."""
        if self._committing:  # the committer thread has the connection; ask again next time
            return False
        version = self._read_data_version()
        changed, self._data_version = version != self._data_version, version
        return changed

    def _read_data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        """Wait for submitted operations to be committed, then close. Call from outside the event loop."""
        self._idle.wait()
        self._closed = True
        self._committer.shutdown(wait=True)
        self._conn.close()

    def _schedule(self, delay: float = 0.0) -> None:
        if self._scheduled or self._committing or self._loop is None:
            return
        self._scheduled = True
        if delay:
            self._loop.call_later(delay, self._start_group)
        else:
            self._loop.call_soon(self._start_group)

    def _start_group(self) -> None:
        self._scheduled = False
        if self._committing:
            return
        if not self._pending:
            self._idle.set()
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                self._schedule(LOCKED_RETRY)
                return
            self._fail(self._take(), error)
            self._schedule()
            return
        group = self._take()
        try:
            outcomes = [self._run(operation) for operation in group]
        except Exception as failure:  # the database itself failed (disk full, I/O error): nothing is kept
            log.exception("store transaction failed")
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._fail(group, failure)
            self._schedule()
            return
        self._committing = True
        self._committer.submit(self._commit_and_report, outcomes)

    def _take(self) -> list[_Operation[Any]]:
        count = min(len(self._pending), self._max_group)
        return [self._pending.popleft() for _ in range(count)]

    def _run(self, operation: _Operation[Any]) -> _Outcome:
        tx = Transaction(self._conn)
        self._conn.execute("SAVEPOINT operation")
        try:
            result = operation.run(tx)
        except Exception as refusal:  # the caller gets it; the others in the group go on
            self._conn.execute("ROLLBACK TO operation")
            self._conn.execute("RELEASE operation")
            if not operation.durable:
                operation.future.set_exception(refusal)
            return _Outcome(operation, None, refusal, tx)
        self._conn.execute("RELEASE operation")
        if not operation.durable:
            operation.future.set_result(result)
        return _Outcome(operation, result, None, tx)

    def _commit(self, outcomes: list[_Outcome]) -> None:
        """On the committer thread: make the group durable, then do what its operations asked for after."""
        self._conn.execute("COMMIT")
        for outcome in outcomes:
            if outcome.error is None:
                for action in outcome.tx.after_commit:
                    action()

    def _commit_and_report(self, outcomes: list[_Outcome]) -> None:
        """On the committer thread. The loop hears of the outcome in one callback, not through an executor
        future (whose result and done callbacks take two more turns of a busy loop): the next group starts
        in that same callback, so the disk is idle between commits as briefly as the loop allows."""
        failure: BaseException | None = None
        try:
            self._commit(outcomes)
        except BaseException as error:  # handed to the loop, which fails the group's callers
            failure = error
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._committed, outcomes, failure)

    def _committed(self, outcomes: list[_Outcome], failure: BaseException | None) -> None:
        self._committing = False
        if failure is not None:
            log.error("store transaction failed", exc_info=failure)
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._fail([outcome.operation for outcome in outcomes], failure)
        else:
            self.groups += 1
            self.operations += len(outcomes)
            for outcome in outcomes:
                _settle(outcome, self._publish)
        if self._pending:
            # What arrived while the group committed is a group already: start it now, not a turn later.
            self._start_group()
        elif not self._scheduled:
            self._idle.set()

    def _fail(self, group: list[_Operation[Any]], failure: BaseException) -> None:
        for operation in group:
            if not operation.future.done():
                operation.future.set_exception(failure)


def _settle(outcome: _Outcome, publish: Callable[[Change], None]) -> None:
    if outcome.error is None:
        for change in outcome.tx.changes:
            publish(change)
    future = outcome.operation.future
    if future.done():  # cancelled, or answered before the commit (not durable)
        return
    if outcome.error is not None:
        future.set_exception(outcome.error)
    else:
        future.set_result(outcome.result)


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
