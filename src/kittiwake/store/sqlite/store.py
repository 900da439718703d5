"""SqliteStore: the embedded implementation of the Store protocol."""

from __future__ import annotations

import array
import asyncio
import contextlib
import dataclasses
import itertools
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from kittiwake.store import errors
from kittiwake.store.blobs import FileBlobStore
from kittiwake.store.changes import (
    Change,
    ChangeBus,
    ChangedElsewhere,
    FlagsChanged,
    LocalChangeBus,
    MailboxesChanged,
    MessagesAdded,
)
from kittiwake.store.interface import (
    DEFAULT_MAILBOXES,
    FlagMode,
    FlagRowColumn,
    QueueEntry,
    QueueRequest,
    RecipientOutcome,
    StoreFlagsResult,
    UidRanges,
)
from kittiwake.store.models import (
    Account,
    AddedMessage,
    Alias,
    BlobRef,
    Domain,
    Expunged,
    Flags,
    FlagSnapshot,
    IncomingMessage,
    Mailbox,
    MessageRecord,
)
from kittiwake.store.sqlite import mailbox_ops, message_ops, queue_ops
from kittiwake.store.sqlite.blob_refs import delete_released, insert_blob
from kittiwake.store.sqlite.connection import connect, migrate
from kittiwake.store.sqlite.queue_ops import insert_queue_entry
from kittiwake.store.sqlite.verify import sweep, verify_store
from kittiwake.store.sqlite.writer import Checkpointer, GroupCommitWriter, Transaction
from kittiwake.store.uid_cache import UID_TYPECODE, UidCache

log = logging.getLogger(__name__)
T = TypeVar("T")
BLOB_CHUNK = 65536
FLAG_SNAPSHOTS_KEPT = 8  # mailboxes; 100,000 messages take about 0.5 MB
OTHER_PROCESS_POLL = 1.0  # seconds between looks for commits by other processes
# Bytes of expunged messages stay readable this long (RFC 2180 §4.1.1), and are then deleted a few at a time
# (each batch one short write on the loop) every RELEASE_SWEEP seconds.
RELEASE_GRACE = 60
RELEASE_SWEEP = 10.0
RELEASE_BATCH = 64
_ACCOUNT_COLUMNS = "id, address, password_hash, quota_bytes, quota_messages"
_FLAG_ROW_COLUMNS = {"modseq": "modseq", "internal_date": "internal_date", "size": "size"}
_MESSAGE_COLUMNS = "mailbox_id, uid, modseq, internal_date, size, system_flags, keywords, blob_id"


def _account(row: tuple[object, ...]) -> Account:
    return Account(
        id=int(row[0]),  # type: ignore[call-overload]
        address=str(row[1]),
        password_hash=str(row[2]),
        quota_bytes=None if row[3] is None else int(row[3]),  # type: ignore[call-overload]
        quota_messages=None if row[4] is None else int(row[4]),  # type: ignore[call-overload]
    )


def _message(row: tuple[object, ...], structure: bytes | None) -> MessageRecord:
    mailbox_id, uid, modseq, internal_date, size, system, keywords, blob_id = row[:8]
    return MessageRecord(
        mailbox_id=mailbox_id,  # type: ignore[arg-type]
        uid=uid,  # type: ignore[arg-type]
        modseq=modseq,  # type: ignore[arg-type]
        internal_date=internal_date,  # type: ignore[arg-type]
        size=size,  # type: ignore[arg-type]
        flags=message_ops.flags_from_columns(system, keywords),  # type: ignore[arg-type]
        blob_id=blob_id,  # type: ignore[arg-type]
        structure=structure,
    )


def _mailbox_state(conn: sqlite3.Connection, mailbox_id: int) -> tuple[int, int, int] | None:
    """(HIGHESTMODSEQ, UIDNEXT, message count): every change to a mailbox's messages moves one of them."""
    row = conn.execute(
        "SELECT highest_modseq, uid_next, messages FROM mailboxes WHERE id = ?", (mailbox_id,)
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


def _flag_columns(conn: sqlite3.Connection, mailbox_id: int) -> FlagSnapshot:
    """Each column flattened into an array by C code, with no Python work per message."""
    where = "FROM messages WHERE mailbox_id = ? ORDER BY uid"
    uids = array.array(
        UID_TYPECODE, itertools.chain.from_iterable(conn.execute(f"SELECT uid {where}", (mailbox_id,)))
    )
    system = array.array(
        "B", itertools.chain.from_iterable(conn.execute(f"SELECT system_flags {where}", (mailbox_id,)))
    )
    keywords = dict(
        conn.execute(
            "SELECT uid, keywords FROM messages WHERE mailbox_id = ? AND keywords IS NOT NULL AND keywords != ''",
            (mailbox_id,),
        ).fetchall()
    )
    return FlagSnapshot(uids=uids, system=system, keywords=keywords)


async def _chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for position in range(0, len(data), BLOB_CHUNK):
        yield data[position : position + BLOB_CHUNK]


async def _file_chunks(handle: BinaryIO, prefix: bytes, start: int, end: int) -> AsyncIterator[bytes]:
    """[start, end) of prefix + file, read from a file opened beforehand, closed at the end."""
    with handle:
        if start < len(prefix):
            yield prefix[start:end]
        position = max(start, len(prefix))
        await asyncio.to_thread(handle.seek, position - len(prefix))
        while position < end:
            chunk = await asyncio.to_thread(handle.read, min(BLOB_CHUNK, end - position))
            if not chunk:
                return
            position += len(chunk)
            yield chunk


class SqliteStore:
    """Open with `await SqliteStore.open(data_dir)`; close with `await store.close()`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        changes: ChangeBus | None = None,
        max_group: int = 256,
        inline_max: int = 131072,
    ) -> None:
        self.data_dir = data_dir
        self.inline_max = inline_max
        self.db_path = data_dir / "kittiwake.db"
        self.files = FileBlobStore(data_dir / "blobs")
        self.changes: ChangeBus = changes if changes is not None else LocalChangeBus()
        self.uid_cache = UidCache()
        self._first_unseen: dict[int, tuple[tuple[int, int, int], int | None]] = {}
        self._keywords: dict[int, list[str]] = {}  # mailbox id -> its keywords, until a change may add one
        # (mailbox id, UIDVALIDITY) -> end of the latest claim of \\Recent, until its commit is visible
        self._claims: dict[tuple[int, int], int] = {}
        self._flag_snapshots: OrderedDict[int, tuple[tuple[int, int, int] | None, FlagSnapshot]] = (
            OrderedDict()
        )
        self._writer = GroupCommitWriter(self.db_path, self._publish, max_group=max_group)
        self._checkpointer = Checkpointer(self.db_path)
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store-reader")
        self._watcher: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        *,
        changes: ChangeBus | None = None,
        max_group: int = 256,
        inline_max: int = 131072,
        recover: bool = True,
    ) -> SqliteStore:
        """Create or upgrade the store in `data_dir` and start the writer.

        `recover` also removes what a crash left behind (unfinished spool files, files no row refers to).
        Only the server does that at start: a command run beside a running server must pass False, or it
        would delete the spool files of messages being received.
        """
        await asyncio.to_thread(prepare, data_dir, recover)
        store = cls(data_dir, changes=changes, max_group=max_group, inline_max=inline_max)
        store._watcher = asyncio.create_task(store._watch_other_processes(), name="store-watch")
        store._sweeper = asyncio.create_task(store._sweep_released_forever(), name="store-sweep")
        return store

    async def _watch_other_processes(self) -> None:
        """Commands run beside the server write to the same file; say so, so that `kittiwake queue flush`
        takes effect within a second rather than at the queue's next pass."""
        while True:
            await asyncio.sleep(OTHER_PROCESS_POLL)
            if self._writer.committed_elsewhere():
                self._publish(ChangedElsewhere())

    async def _sweep_released_forever(self) -> None:
        while True:
            await asyncio.sleep(RELEASE_SWEEP)
            try:
                await self.sweep_released(int(time.time()) - RELEASE_GRACE)
            except Exception:  # a full disk, say: the bytes wait for the next round
                log.exception("deleting the bytes of expunged messages failed")

    async def sweep_released(self, before: int) -> int:
        """Delete the bytes of expunged messages released before `before`; returns how many blobs went."""
        deleted = 0
        while self._read_now(
            lambda c: c.execute("SELECT 1 FROM blobs WHERE released_at < ? LIMIT 1", (before,)).fetchone()
        ):
            batch = await self._write(lambda tx: delete_released(tx, self.files, before, RELEASE_BATCH))
            deleted += batch
            if batch < RELEASE_BATCH:
                break
        return deleted

    @property
    def writer_stats(self) -> tuple[int, int]:
        """(transactions committed, operations committed): operations per transaction is the group size."""
        return self._writer.groups, self._writer.operations

    async def close(self) -> None:
        for task in (self._watcher, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await asyncio.to_thread(self._writer.close)
        await asyncio.to_thread(self._checkpointer.close)
        self._readers.shutdown(wait=True)
        own: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if own is not None:  # the event loop thread's connection: that thread lives on
            own.close()
            self._local.conn = None

    # -- plumbing ---------------------------------------------------------------------------------------

    async def _write(self, run: Callable[[Transaction], T]) -> T:
        return await self._writer.submit(run)

    def _publish(self, change: Change) -> None:
        self.uid_cache.apply(change)
        if isinstance(change, MessagesAdded | FlagsChanged):  # they may bring a keyword
            self._keywords.pop(change.mailbox_id, None)
        elif isinstance(change, MailboxesChanged | ChangedElsewhere):  # ids may be reused; others wrote
            self._keywords.clear()
        self.changes.publish(change)

    async def _read(self, run: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._with_reader, run)

    def _read_now(self, run: Callable[[sqlite3.Connection], T], *, snapshot: bool = False) -> T:
        """A read of a few indexed rows, run on the calling (event loop) thread: SQLite answers it from its
        page cache in microseconds, less than handing it to a reader thread and back costs. Reads whose
        size the caller does not bound go through `_read` instead. A single statement is its own
        consistent snapshot; `snapshot` wraps several in one read transaction."""
        if snapshot:
            return self._with_reader(run)
        return run(self._connection())

    def _connection(self) -> sqlite3.Connection:
        """This thread's read-only connection, in autocommit mode."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.db_path, readonly=True)
            self._local.conn = conn
        return conn

    def _with_reader(self, run: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        # One read transaction per operation: it sees one consistent snapshot, and ends here, so the next
        # operation on this thread sees everything committed since.
        conn.execute("BEGIN")
        try:
            return run(conn)
        finally:
            conn.execute("COMMIT")

    async def verify(self) -> list[str]:
        return await self._read(lambda conn: verify_store(conn, self.files))

    # -- domains, accounts, aliases ----------------------------------------------------------------------

    async def add_domain(self, name: str) -> Domain:
        def run(tx: Transaction) -> Domain:
            if tx.conn.execute("SELECT 1 FROM domains WHERE name = ?", (name,)).fetchone():
                raise errors.DomainExists(name)
            cursor = tx.conn.execute("INSERT INTO domains (name) VALUES (?)", (name,))
            return Domain(id=int(cursor.lastrowid or 0), name=name)

        return await self._write(run)

    async def remove_domain(self, name: str) -> None:
        def run(tx: Transaction) -> None:
            row = tx.conn.execute("SELECT id FROM domains WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise errors.DomainNotFound(name)
            if tx.conn.execute("SELECT 1 FROM accounts WHERE domain_id = ?", (row[0],)).fetchone():
                raise errors.StoreError(f"{name} still has accounts; remove them first")
            tx.conn.execute("DELETE FROM aliases WHERE source LIKE ?", (f"%@{name}",))
            tx.conn.execute("DELETE FROM domains WHERE id = ?", (row[0],))

        await self._write(run)

    async def list_domains(self) -> list[Domain]:
        rows = await self._read(lambda c: c.execute("SELECT id, name FROM domains ORDER BY name").fetchall())
        return [Domain(id=row[0], name=row[1]) for row in rows]

    async def add_account(self, address: str, password_hash: str) -> Account:
        domain = address.rpartition("@")[2]

        def run(tx: Transaction) -> Account:
            conn = tx.conn
            row = conn.execute("SELECT id FROM domains WHERE name = ?", (domain,)).fetchone()
            if row is None:
                raise errors.DomainNotFound(domain)
            if conn.execute("SELECT 1 FROM accounts WHERE address = ?", (address,)).fetchone():
                raise errors.AccountExists(address)
            cursor = conn.execute(
                "INSERT INTO accounts (domain_id, address, password_hash, created) VALUES (?, ?, ?, ?)",
                (row[0], address, password_hash, int(time.time())),
            )
            account_id = int(cursor.lastrowid or 0)
            for name, special_use in DEFAULT_MAILBOXES:
                mailbox_ops.insert_mailbox(conn, account_id, name, special_use)
                conn.execute("INSERT INTO subscriptions (account_id, name) VALUES (?, ?)", (account_id, name))
            return Account(
                id=account_id,
                address=address,
                password_hash=password_hash,
                quota_bytes=None,
                quota_messages=None,
            )

        return await self._write(run)

    async def remove_account(self, address: str) -> None:
        files = self.files

        def run(tx: Transaction) -> None:
            conn = tx.conn
            row = conn.execute("SELECT id FROM accounts WHERE address = ?", (address,)).fetchone()
            if row is None:
                raise errors.AccountNotFound(address)
            account_id = row[0]
            names = conn.execute(
                "SELECT name FROM mailboxes WHERE account_id = ? ORDER BY length(name) DESC", (account_id,)
            ).fetchall()
            # A removed account's mail goes at once: nobody may read it any more, and its space is wanted back.
            for (name,) in names:
                if name != "INBOX":
                    mailbox_ops.delete_mailbox(tx, files, account_id, name, keep_for_readers=False)
            inbox = mailbox_ops.select_mailbox(conn, account_id, "INBOX")
            message_ops.expunge(tx, files, inbox.id, None, only_deleted=False, keep_for_readers=False)
            conn.execute("DELETE FROM expunged WHERE mailbox_id = ?", (inbox.id,))
            conn.execute("DELETE FROM mailbox_keywords WHERE mailbox_id = ?", (inbox.id,))
            conn.execute("DELETE FROM mailboxes WHERE id = ?", (inbox.id,))
            conn.execute("DELETE FROM subscriptions WHERE account_id = ?", (account_id,))
            conn.execute("DELETE FROM accounts WHERE id = ?", (account_id,))

        await self._write(run)

    async def get_account(self, address: str) -> Account | None:
        row = self._read_now(
            lambda c: c.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE address = ?", (address,)
            ).fetchone()
        )
        return None if row is None else _account(row)

    async def get_account_by_id(self, account_id: int) -> Account | None:
        row = self._read_now(
            lambda c: c.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
        )
        return None if row is None else _account(row)

    async def list_accounts(self) -> list[Account]:
        rows = await self._read(
            lambda c: c.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY address").fetchall()
        )
        return [_account(row) for row in rows]

    async def set_password_hash(self, account_id: int, password_hash: str) -> None:
        def run(tx: Transaction) -> None:
            cursor = tx.conn.execute(
                "UPDATE accounts SET password_hash = ? WHERE id = ?", (password_hash, account_id)
            )
            if cursor.rowcount == 0:
                raise errors.AccountNotFound(str(account_id))

        await self._write(run)

    async def set_quota(self, account_id: int, quota_bytes: int | None, quota_messages: int | None) -> None:
        await self._write(
            lambda tx: tx.conn.execute(
                "UPDATE accounts SET quota_bytes = ?, quota_messages = ? WHERE id = ?",
                (quota_bytes, quota_messages, account_id),
            )
        )

    async def add_alias(self, source: str, targets: Sequence[str]) -> None:
        def run(tx: Transaction) -> None:
            tx.conn.executemany(
                "INSERT OR IGNORE INTO aliases (source, target) VALUES (?, ?)", [(source, t) for t in targets]
            )

        await self._write(run)

    async def remove_alias(self, source: str) -> None:
        def run(tx: Transaction) -> None:
            if tx.conn.execute("DELETE FROM aliases WHERE source = ?", (source,)).rowcount == 0:
                raise errors.AliasNotFound(source)

        await self._write(run)

    async def get_alias(self, source: str) -> Alias | None:
        rows = self._read_now(
            lambda c: c.execute(
                "SELECT target FROM aliases WHERE source = ? ORDER BY target", (source,)
            ).fetchall()
        )
        return Alias(source=source, targets=tuple(r[0] for r in rows)) if rows else None

    async def list_aliases(self) -> list[Alias]:
        rows = await self._read(
            lambda c: c.execute("SELECT source, target FROM aliases ORDER BY 1, 2").fetchall()
        )
        grouped: dict[str, list[str]] = {}
        for source, target in rows:
            grouped.setdefault(source, []).append(target)
        return [Alias(source=s, targets=tuple(t)) for s, t in grouped.items()]

    # -- mailboxes ---------------------------------------------------------------------------------------

    async def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        rows = self._read_now(
            lambda c: c.execute(
                f"SELECT {mailbox_ops.MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? ORDER BY name",
                (account_id,),
            ).fetchall()
        )
        return [self._with_claims(mailbox_ops.mailbox_from_row(row)) for row in rows]

    async def get_mailbox(self, account_id: int, name: str) -> Mailbox:
        return self._with_claims(self._read_now(lambda c: mailbox_ops.select_mailbox(c, account_id, name)))

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox:
        row = self._read_now(
            lambda c: c.execute(
                f"SELECT {mailbox_ops.MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
        )
        if row is None:
            raise errors.MailboxNotFound(str(mailbox_id))
        return self._with_claims(mailbox_ops.mailbox_from_row(row))

    def _with_claims(self, mailbox: Mailbox) -> Mailbox:
        """The row as it is once the claims of \\Recent already answered have committed: a claim is
        answered before its commit (see `claim_recent`), and a read in between must not count the claimed
        messages as recent again. The UIDVALIDITY in the key keeps a reused mailbox id apart."""
        key = (mailbox.id, mailbox.uid_validity)
        end = self._claims.get(key)
        if end is None:
            return mailbox
        if mailbox.first_recent_uid >= end:  # committed and visible: the overlay has done its work
            del self._claims[key]
            return mailbox
        return dataclasses.replace(mailbox, first_recent_uid=end, recent=0)

    async def create_mailbox(self, account_id: int, name: str, special_use: str | None = None) -> Mailbox:
        return await self._write(lambda tx: mailbox_ops.create_mailbox(tx, account_id, name, special_use))

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        await self._write(lambda tx: mailbox_ops.delete_mailbox(tx, self.files, account_id, name))

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        await self._write(lambda tx: mailbox_ops.rename_mailbox(tx, account_id, old, new))

    async def subscribe(self, account_id: int, name: str) -> None:
        name = mailbox_ops.check_name(name)
        await self._write(
            lambda tx: tx.conn.execute(
                "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)", (account_id, name)
            )
        )

    async def unsubscribe(self, account_id: int, name: str) -> None:
        name = mailbox_ops.normalize_name(name)

        def run(tx: Transaction) -> None:
            cursor = tx.conn.execute(
                "DELETE FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, name)
            )
            if cursor.rowcount == 0:
                raise errors.MailboxNotFound(name)

        await self._write(run)

    async def list_subscriptions(self, account_id: int) -> list[str]:
        rows = self._read_now(
            lambda c: c.execute(
                "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name", (account_id,)
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def account_usage(self, account_id: int) -> tuple[int, int]:
        row = self._read_now(
            lambda c: c.execute(
                "SELECT coalesce(sum(size), 0), coalesce(sum(messages), 0) FROM mailboxes WHERE account_id = ?",
                (account_id,),
            ).fetchone()
        )
        return int(row[0]), int(row[1])

    # -- message bytes -----------------------------------------------------------------------------------

    def new_spool_path(self) -> Path:
        return self.files.new_temp_path()

    async def save_blob(self, data: bytes) -> BlobRef:
        """Small messages go inside the database (made durable by the commit); large ones to a file."""
        if len(data) <= self.inline_max:
            return BlobRef(data=data)
        return BlobRef(file_name=await asyncio.to_thread(self.files.write, data))

    async def adopt_blob_file(self, temp_path: Path, size: int) -> BlobRef:
        if size <= self.inline_max:
            data = await asyncio.to_thread(temp_path.read_bytes)
            await asyncio.to_thread(temp_path.unlink)
            return BlobRef(data=data)
        return BlobRef(file_name=await asyncio.to_thread(self.files.adopt, temp_path))

    async def read_blob(self, blob_id: int, start: int, end: int) -> bytes:
        # Bytes kept inside SQLite are read on the loop like any row; only a file needs a thread.
        data = self._read_now(lambda c: self._read_range(c, blob_id, start, end, inline_only=True))
        if data is None:
            return await self._read(lambda c: self._read_range(c, blob_id, start, end) or b"")
        return data

    async def read_blob_ranges(self, ranges: Sequence[tuple[int, int, int]]) -> list[bytes]:
        """Several (blob id, start, end) ranges in one trip to a reader thread (SEARCH reads headers so)."""
        return await self._read(
            lambda c: [self._read_range(c, b, start, end) or b"" for b, start, end in ranges]
        )

    def _read_range(
        self, conn: sqlite3.Connection, blob_id: int, start: int, end: int, *, inline_only: bool = False
    ) -> bytes | None:
        """The bytes in [start, end); None, with `inline_only`, when they would have to be read from a file."""
        row = conn.execute("SELECT file_name, size, prefix FROM blobs WHERE id = ?", (blob_id,)).fetchone()
        if row is None:
            raise errors.NotFound(f"message bytes {blob_id} are missing")
        file_name, size, prefix = row[0], row[1], row[2] or b""
        end = min(end, size)
        if start >= end:
            return b""
        head = prefix[start:end]
        start, end = max(0, start - len(prefix)), end - len(prefix)
        if end <= start:
            return bytes(head)
        # The row and the bytes are read apart (autocommit on the loop; a file after the snapshot), so an
        # expunge committing in between can remove them: that is the message gone, not a fault.
        try:
            if file_name is not None:
                return None if inline_only else head + self.files.read(file_name, start, end)
            with conn.blobopen("blobs", "data", blob_id, readonly=True) as blob:
                blob.seek(start)
                return head + blob.read(end - start)
        except FileNotFoundError:
            raise errors.NotFound(f"message bytes {blob_id} are gone") from None
        except sqlite3.OperationalError as error:
            if "no such rowid" not in str(error):
                raise
            raise errors.NotFound(f"message bytes {blob_id} are gone") from None

    async def open_blob(self, blob_id: int, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes in [start, end) as chunks, located now: a missing blob raises NotFound here, before the
        caller promised anyone those bytes, and once open they stay readable to the end even if the message
        is expunged meanwhile (RFC 2180 §4.1): bytes kept in SQLite (at most `inline_max`) are read at once,
        and a file is opened now, so removing it later does not cut the stream short."""
        data = self._read_now(lambda c: self._read_range(c, blob_id, start, end, inline_only=True))
        if data is not None:
            return _chunks_of(data)
        row = self._read_now(
            lambda c: c.execute(
                "SELECT file_name, size, prefix FROM blobs WHERE id = ?", (blob_id,)
            ).fetchone()
        )
        if row is None:  # expunged between the two reads
            raise errors.NotFound(f"message bytes {blob_id} are missing")
        file_name, size, prefix = row[0], row[1], bytes(row[2] or b"")
        end = min(end, size)
        try:
            handle = await asyncio.to_thread(open, self.files.path(file_name), "rb")
        except FileNotFoundError:
            raise errors.NotFound(f"message bytes {blob_id} are missing") from None
        return _file_chunks(handle, prefix, start, end)

    # -- messages ----------------------------------------------------------------------------------------

    async def deliver(
        self, message: IncomingMessage, mailbox_ids: Sequence[int], *, relay: QueueRequest | None = None
    ) -> list[AddedMessage]:
        return await self._write(lambda tx: message_ops.deliver(tx, message, mailbox_ids, relay))

    async def append(self, mailbox_id: int, messages: Sequence[IncomingMessage]) -> list[AddedMessage]:
        return await self._write(lambda tx: message_ops.add_messages(tx, mailbox_id, messages))

    async def mailbox_keywords(self, mailbox_id: int) -> list[str]:
        """The keywords ever used in the mailbox, sorted. Remembered until a published change may have
        added one: SELECT and every announcement of new mail ask for them."""
        known = self._keywords.get(mailbox_id)
        if known is None:
            rows = self._read_now(
                lambda c: c.execute(
                    "SELECT keyword FROM mailbox_keywords WHERE mailbox_id = ? ORDER BY keyword",
                    (mailbox_id,),
                ).fetchall()
            )
            known = [row[0] for row in rows]
            if len(self._keywords) >= 10_000:
                self._keywords.clear()
            self._keywords[mailbox_id] = known
        return list(known)

    async def load_uids(self, mailbox_id: int) -> Sequence[int]:
        """The mailbox's UIDs, ascending, as a shared array that callers must copy before changing."""
        return self._read_now(lambda conn: self._uids(conn, mailbox_id), snapshot=True)

    def _uids(self, conn: sqlite3.Connection, mailbox_id: int) -> array.array[int]:
        row = conn.execute("SELECT messages, uid_next FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
        if row is None:
            raise errors.MailboxNotFound(str(mailbox_id))
        cached = self.uid_cache.lookup(mailbox_id, row[0], row[1])
        if cached is not None:
            return cached
        cursor = conn.execute("SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,))
        uids = array.array(UID_TYPECODE, itertools.chain.from_iterable(cursor))  # flattened in C, not per row
        self.uid_cache.store(mailbox_id, uids, row[1])
        return uids

    async def first_unseen_uid(self, mailbox_id: int, *, known: Mailbox | None = None) -> int | None:
        """The lowest UID without \\Seen: one lookup in the index of unseen messages, remembered for as
        long as the mailbox's HIGHESTMODSEQ, UIDNEXT and message count say nothing in it changed (clients
        SELECT the same mailbox again and again). `known`, the mailbox row the caller has just read,
        spares reading it again."""
        if known is not None:
            state: tuple[int, int, int] | None = (known.highest_modseq, known.uid_next, known.messages)
        else:
            state = self._read_now(lambda c: _mailbox_state(c, mailbox_id))
        remembered = self._first_unseen.get(mailbox_id)
        if state is not None and remembered is not None and remembered[0] == state:
            return remembered[1]

        def run(conn: sqlite3.Connection) -> tuple[tuple[int, int, int] | None, int | None]:
            row = conn.execute(
                "SELECT uid FROM messages INDEXED BY messages_unseen"
                " WHERE mailbox_id = ? AND system_flags & 1 = 0 ORDER BY uid LIMIT 1",
                (mailbox_id,),
            ).fetchone()
            return _mailbox_state(conn, mailbox_id), None if row is None else int(row[0])

        state, first = self._read_now(run, snapshot=True)
        if state is not None:
            if len(self._first_unseen) >= 10_000:
                self._first_unseen.clear()
            self._first_unseen[mailbox_id] = (state, first)
        return first

    async def claim_recent(self, mailbox_id: int) -> tuple[int, int]:
        """Claim for the calling session the messages no session has been told of as recent (RFC 3501
        §2.3.2): returns (first, end), UIDs `first <= uid < end` being recent in that session alone, and
        `first == end` when there are none. The usual case, nothing to claim, is one read on the loop;
        otherwise the claim is a writer operation, so two sessions never claim the same UID.

        The claim is answered before its commit is durable: SELECT need not wait for the disk over
        \\Recent. A crash may lose a claim; the messages are then recent in a later session as well, as
        RFC 3501 §2.3.2 says they should be when the server cannot tell whether a session was told."""
        mailbox = await self.get_mailbox_by_id(mailbox_id)
        if mailbox.first_recent_uid >= mailbox.uid_next:
            return mailbox.uid_next, mailbox.uid_next
        first, end = await self._writer.submit(
            lambda tx: mailbox_ops.claim_recent(tx, mailbox_id), durable=False
        )
        if first < end:
            if len(self._claims) >= 10_000:
                self._claims.clear()  # each entry is only needed for the moment before its commit
            key = (mailbox_id, mailbox.uid_validity)
            self._claims[key] = max(end, self._claims.get(key, end))
        return first, end

    async def first_recent_uid(self, mailbox_id: int) -> int:
        """The lowest UID no session has claimed as recent; a read-only session sees those from here up as
        recent without claiming them (RFC 3501 §6.3.2: EXAMINE must not make messages lose \\Recent)."""
        return (await self.get_mailbox_by_id(mailbox_id)).first_recent_uid

    async def load_messages(
        self, mailbox_id: int, uids: UidRanges, *, with_structure: bool = False
    ) -> list[MessageRecord]:
        columns = _MESSAGE_COLUMNS + (", structure" if with_structure else "")
        clause, params = message_ops.range_clause(uids)

        def run(conn: sqlite3.Connection) -> list[MessageRecord]:
            rows = conn.execute(
                f"SELECT {columns} FROM messages WHERE mailbox_id = ? AND {clause} ORDER BY uid",
                [mailbox_id, *params],
            ).fetchall()
            filtered = len(uids) > 64
            return [
                _message(row, row[8] if with_structure else None)
                for row in rows
                if not filtered or message_ops.in_ranges(row[1], uids)
            ]

        return self._read_now(run)

    async def flag_snapshot(self, mailbox_id: int) -> FlagSnapshot:
        """Built by three column scans on a reader thread, then kept until the mailbox's HIGHESTMODSEQ,
        UIDNEXT or message count moves (every change to its messages moves one of them)."""
        state = self._read_now(lambda c: _mailbox_state(c, mailbox_id))
        kept = self._flag_snapshots.get(mailbox_id)
        if kept is not None and kept[0] == state:
            self._flag_snapshots.move_to_end(mailbox_id)
            return kept[1]
        state, snapshot = await self._read(
            lambda c: (_mailbox_state(c, mailbox_id), _flag_columns(c, mailbox_id))
        )
        self._flag_snapshots[mailbox_id] = (state, snapshot)
        while len(self._flag_snapshots) > FLAG_SNAPSHOTS_KEPT:
            self._flag_snapshots.popitem(last=False)
        return snapshot

    async def load_flag_rows(
        self, mailbox_id: int, uids: UidRanges, extra: Sequence[FlagRowColumn] = ()
    ) -> list[tuple[Any, ...]]:
        """(uid, system flags, keywords, *extra) rows in UID order: what a FETCH of flags needs, as plain
        tuples with no column more than asked for (each costs per row), for the fast path that formats
        thousands of responses at once."""
        columns = ", ".join(("uid", "system_flags", "keywords", *(_FLAG_ROW_COLUMNS[name] for name in extra)))
        clause, params = message_ops.range_clause(uids)

        def run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            rows: list[tuple[Any, ...]] = conn.execute(
                f"SELECT {columns} FROM messages WHERE mailbox_id = ? AND {clause} ORDER BY uid",
                [mailbox_id, *params],
            ).fetchall()
            if len(uids) > 64:
                rows = [row for row in rows if message_ops.in_ranges(row[0], uids)]
            return rows

        return self._read_now(run)

    async def load_changed_since(self, mailbox_id: int, modseq: int) -> list[MessageRecord]:
        rows = await self._read(
            lambda c: c.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                (mailbox_id, modseq),
            ).fetchall()
        )
        return [_message(row, None) for row in rows]

    async def load_expunged_since(self, mailbox_id: int, modseq: int) -> list[Expunged]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT uid, modseq FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                (mailbox_id, modseq),
            ).fetchall()
        )
        return [Expunged(uid=row[0], modseq=row[1]) for row in rows]

    async def store_flags(
        self,
        mailbox_id: int,
        uids: UidRanges,
        mode: FlagMode,
        flags: Flags,
        *,
        unchanged_since: int | None = None,
        origin: object | None = None,
    ) -> StoreFlagsResult:
        return await self._write(
            lambda tx: message_ops.store_flags(tx, mailbox_id, uids, mode, flags, unchanged_since, origin)
        )

    async def expunge(self, mailbox_id: int, uids: UidRanges | None = None) -> list[Expunged]:
        return await self._write(lambda tx: message_ops.expunge(tx, self.files, mailbox_id, uids))

    async def copy_messages(
        self, source_id: int, uids: UidRanges, target_id: int, *, move: bool = False
    ) -> list[tuple[int, int]]:
        return await self._write(
            lambda tx: message_ops.copy_messages(tx, self.files, source_id, uids, target_id, move)
        )

    # -- queue -------------------------------------------------------------------------------------------

    async def enqueue(self, request: QueueRequest, blob: BlobRef, size: int) -> None:
        def run(tx: Transaction) -> None:
            insert_queue_entry(tx, request, insert_blob(tx, blob, size, 1))

        await self._write(run)

    async def count_queued(self) -> int:
        row = await self._read(
            lambda c: c.execute(
                "SELECT count(DISTINCT queue_id) FROM queue_recipients WHERE status IN ('pending', 'deferred')"
            ).fetchone()
        )
        return int(row[0])

    async def load_queue(self, *, due_before: int | None = None, limit: int = 1000) -> list[QueueEntry]:
        return await self._read(lambda c: queue_ops.load_entries(c, due_before, limit))

    async def get_queue_entry(self, queue_id: str) -> QueueEntry | None:
        # One entry and its recipients by key, read on the loop: the queue asks before every attempt.
        entries = self._read_now(lambda c: queue_ops.load_entries(c, None, 1, queue_id), snapshot=True)
        return entries[0] if entries else None

    async def schedule_queue_attempt(
        self, queue_id: str, addresses: Sequence[str], next_attempt: int
    ) -> None:
        await self._write(lambda tx: queue_ops.schedule_attempt(tx, queue_id, addresses, next_attempt))

    async def record_queue_outcomes(self, queue_id: str, outcomes: Sequence[RecipientOutcome]) -> bool:
        return await self._write(lambda tx: queue_ops.record_outcomes(tx, self.files, queue_id, outcomes))

    async def retry_queue(self, queue_id: str | None, now: int) -> int:
        return await self._write(lambda tx: queue_ops.retry(tx, queue_id, now))

    async def delete_queue_entry(self, queue_id: str) -> None:
        await self._write(lambda tx: queue_ops.delete_entry(tx, self.files, queue_id))


def prepare(data_dir: Path, recover: bool = True) -> None:
    """Create or upgrade the database and tidy up after a crash; runs before any writer exists."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = connect(data_dir / "kittiwake.db")
    try:
        migrate(conn)
        if recover:
            sweep(conn, FileBlobStore(data_dir / "blobs"))
    finally:
        conn.close()
