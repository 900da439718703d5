"""Reference counting of message bytes shared by several message rows and queue entries."""

from __future__ import annotations

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
        "UPDATE blobs SET refs = refs + ? WHERE id = ?", [(n, blob_id) for blob_id, n in counts]
    )


def release_blobs(tx: Transaction, files: FileBlobStore, counts: Sequence[tuple[int, int]]) -> None:
    """Drop references; a blob whose last reference goes is deleted, its file only after the commit."""
    conn = tx.conn
    conn.executemany("UPDATE blobs SET refs = refs - ? WHERE id = ?", [(n, blob_id) for blob_id, n in counts])
    for blob_id, _ in counts:
        row = conn.execute("SELECT refs, file_name FROM blobs WHERE id = ?", (blob_id,)).fetchone()
        if row is None or row[0] > 0:
            continue
        conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
        if row[1] is not None:
            name = str(row[1])
            tx.after_commit.append(lambda name=name: files.remove(name))  # type: ignore[misc]
