"""Reference counting of message bytes shared by several message rows and queue entries."""

from __future__ import annotations

import time
from collections.abc import Sequence

from kittiwake.store.blobs import FileBlobStore
from kittiwake.store.models import BlobRef
from kittiwake.store.sqlite.writer import Transaction


def insert_blob(tx: Transaction, blob: BlobRef, size: int, refs: int) -> int:
    cursor = tx.conn.execute(
        "INSERT INTO blobs (size, data, file_name, refs, prefix) VALUES (?, ?, ?, ?, ?)",
        (size, blob.data, blob.file_name, refs, blob.prefix or None),
    )
    return int(cursor.lastrowid or 0)


def add_refs(tx: Transaction, counts: Sequence[tuple[int, int]]) -> None:
    tx.conn.executemany(
        "UPDATE blobs SET refs = refs + ?, released_at = NULL WHERE id = ?",
        [(n, blob_id) for blob_id, n in counts],
    )


def release_blobs(
    tx: Transaction,
    files: FileBlobStore,
    counts: Sequence[tuple[int, int]],
    *,
    keep_for_readers: bool = False,
) -> None:
    """Drop references. A blob whose last reference goes is deleted (its file only after the commit), or,
    with `keep_for_readers`, marked with the time of its release and left to `delete_released`: sessions
    not yet told of an expunge may still read its bytes for a while (RFC 2180 §4.1.1)."""
    conn = tx.conn
    released_at = int(time.time())
    conn.executemany("UPDATE blobs SET refs = refs - ? WHERE id = ?", [(n, blob_id) for blob_id, n in counts])
    for blob_id, _ in counts:
        row = conn.execute("SELECT refs, file_name FROM blobs WHERE id = ?", (blob_id,)).fetchone()
        if row is None or row[0] > 0:
            continue
        if keep_for_readers:
            conn.execute("UPDATE blobs SET released_at = ? WHERE id = ?", (released_at, blob_id))
            continue
        conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
        _remove_after_commit(tx, files, row[1])


def delete_released(tx: Transaction, files: FileBlobStore, before: int, limit: int) -> int:
    """Delete up to `limit` blobs released before `before` (seconds since the epoch); returns how many."""
    rows = tx.conn.execute(
        "SELECT id, file_name FROM blobs WHERE released_at < ? AND refs <= 0 LIMIT ?", (before, limit)
    ).fetchall()
    tx.conn.executemany("DELETE FROM blobs WHERE id = ?", [(row[0],) for row in rows])
    for _, file_name in rows:
        _remove_after_commit(tx, files, file_name)
    return len(rows)


def _remove_after_commit(tx: Transaction, files: FileBlobStore, file_name: object) -> None:
    if file_name is not None:
        name = str(file_name)
        tx.after_commit.append(lambda: files.remove(name))
