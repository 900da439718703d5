"""Outbound queue rows, written in the same transaction as the message they carry."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from kittiwake.store import errors
from kittiwake.store.blobs import FileBlobStore
from kittiwake.store.changes import MessagesQueued
from kittiwake.store.interface import QueueEntry, QueueRecipientState, QueueRequest, RecipientOutcome
from kittiwake.store.sqlite.blob_refs import release_blobs
from kittiwake.store.sqlite.writer import Transaction

FINAL = ("delivered", "failed")


def insert_queue_entry(tx: Transaction, request: QueueRequest, blob_id: int) -> None:
    now = int(time.time())
    tx.conn.execute(
        "INSERT INTO queue_messages (id, blob_id, sender, params, created) VALUES (?, ?, ?, ?, ?)",
        (request.queue_id, blob_id, request.sender, request.params, now),
    )
    tx.conn.executemany(
        "INSERT INTO queue_recipients (queue_id, recipient, params, next_attempt) VALUES (?, ?, ?, ?)",
        [(request.queue_id, r.address, r.params, now) for r in request.recipients],
    )
    tx.changes.append(MessagesQueued(queue_id=request.queue_id))


def load_entries(
    conn: sqlite3.Connection, due_before: int | None, limit: int, queue_id: str | None = None
) -> list[QueueEntry]:
    if queue_id is not None:
        ids = [queue_id]
    elif due_before is not None:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT queue_id FROM queue_recipients WHERE status IN ('pending', 'deferred')"
                " AND next_attempt <= ? ORDER BY next_attempt LIMIT ?",
                (due_before, limit),
            )
        ]
    else:
        ids = [
            row[0] for row in conn.execute("SELECT id FROM queue_messages ORDER BY created LIMIT ?", (limit,))
        ]
    entries = []
    for entry_id in ids:
        row = conn.execute(
            "SELECT q.id, q.sender, q.params, q.blob_id, b.size, q.created FROM queue_messages q"
            " JOIN blobs b ON b.id = q.blob_id WHERE q.id = ?",
            (entry_id,),
        ).fetchone()
        if row is None:
            continue
        recipients = tuple(
            QueueRecipientState(address=r[0], params=r[1], status=r[2], attempts=r[3], next_attempt=r[4],
                                last_reply=r[5], remote_mta=r[6], warned=bool(r[7]))
            for r in conn.execute(
                "SELECT recipient, params, status, attempts, next_attempt, last_reply, remote_mta, warned"
                " FROM queue_recipients WHERE queue_id = ? ORDER BY recipient", (entry_id,))
        )  # fmt: skip
        entries.append(QueueEntry(id=row[0], sender=row[1], params=row[2], blob_id=row[3], size=row[4],
                                  created=row[5], recipients=recipients))  # fmt: skip
    return entries


def schedule_attempt(tx: Transaction, queue_id: str, addresses: Sequence[str], next_attempt: int) -> None:
    """Record the next attempt time before trying, so a crash mid-attempt retries later, not never."""
    tx.conn.executemany(
        "UPDATE queue_recipients SET next_attempt = ? WHERE queue_id = ? AND recipient = ?",
        [(next_attempt, queue_id, address) for address in addresses],
    )


def record_outcomes(
    tx: Transaction, files: FileBlobStore, queue_id: str, outcomes: Sequence[RecipientOutcome]
) -> bool:
    """Store each recipient's result; when none is left to try, remove the entry. True when removed."""
    tx.conn.executemany(
        "UPDATE queue_recipients SET status = ?, last_reply = ?, remote_mta = ?, next_attempt = ?,"
        " attempts = attempts + 1, warned = max(warned, ?) WHERE queue_id = ? AND recipient = ?",
        [
            (o.status, o.reply, o.remote_mta, o.next_attempt, int(o.warned), queue_id, o.address)
            for o in outcomes
        ],
    )
    open_rows = tx.conn.execute(
        "SELECT count(*) FROM queue_recipients WHERE queue_id = ? AND status NOT IN ('delivered', 'failed')",
        (queue_id,),
    ).fetchone()[0]
    if open_rows:
        return False
    delete_entry(tx, files, queue_id)
    return True


def delete_entry(tx: Transaction, files: FileBlobStore, queue_id: str) -> None:
    row = tx.conn.execute("SELECT blob_id FROM queue_messages WHERE id = ?", (queue_id,)).fetchone()
    if row is None:
        raise errors.NotFound(f"no queued message {queue_id}")
    tx.conn.execute("DELETE FROM queue_recipients WHERE queue_id = ?", (queue_id,))
    tx.conn.execute("DELETE FROM queue_messages WHERE id = ?", (queue_id,))
    release_blobs(tx, files, [(row[0], 1)])


def retry(tx: Transaction, queue_id: str | None, now: int) -> int:
    if queue_id is None:
        cursor = tx.conn.execute(
            "UPDATE queue_recipients SET next_attempt = ? WHERE status IN ('pending', 'deferred')", (now,)
        )
    else:
        cursor = tx.conn.execute(
            "UPDATE queue_recipients SET next_attempt = ? WHERE queue_id = ? AND status IN ('pending', 'deferred')",
            (now, queue_id),
        )
    return int(cursor.rowcount)
