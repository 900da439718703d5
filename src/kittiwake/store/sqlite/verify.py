"""Consistency checks between the database and the message files, and the start-up sweep."""

from __future__ import annotations

import sqlite3

from kittiwake.store.blobs import FileBlobStore


def referenced_files(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT file_name FROM blobs WHERE file_name IS NOT NULL")}


def sweep(conn: sqlite3.Connection, files: FileBlobStore) -> None:
    """Remove what a crash may have left: unfinished temp files and files no committed row refers to, and
    the bytes of expunged messages, which no session is reading before the server has started."""
    conn.execute("DELETE FROM blobs WHERE released_at IS NOT NULL AND refs <= 0")
    files.clear_temp()
    files.sweep_orphans(referenced_files(conn))


def verify_store(conn: sqlite3.Connection, files: FileBlobStore) -> list[str]:
    """Every problem found, as sentences; an empty list means the store is consistent."""
    problems = [
        f"integrity_check: {row[0]}" for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"
    ]
    problems += _check_blobs(conn, files)
    problems += _check_mailboxes(conn)
    return problems


def _check_blobs(conn: sqlite3.Connection, files: FileBlobStore) -> list[str]:
    problems = []
    rows = conn.execute(
        "SELECT b.id, b.refs, b.size - coalesce(length(b.prefix), 0), b.file_name, length(b.data),"
        " (SELECT count(*) FROM messages m WHERE m.blob_id = b.id)"
        " + (SELECT count(*) FROM queue_messages q WHERE q.blob_id = b.id)"
        " FROM blobs b"
    ).fetchall()
    on_disk = set(files.names())
    for blob_id, refs, size, file_name, inline_size, uses in rows:
        if refs != uses:
            problems.append(f"blob {blob_id}: reference count {refs} but {uses} references")
        if file_name is None:
            if inline_size != size:
                problems.append(f"blob {blob_id}: {inline_size} bytes stored, {size} expected")
        elif file_name not in on_disk:
            problems.append(f"blob {blob_id}: file {file_name} is missing")
        elif files.path(file_name).stat().st_size != size:
            problems.append(f"blob {blob_id}: file {file_name} has the wrong size")
    for (orphan,) in conn.execute(
        "SELECT m.mailbox_id || '/' || m.uid FROM messages m LEFT JOIN blobs b ON b.id = m.blob_id WHERE b.id IS NULL"
    ):
        problems.append(f"message {orphan}: its bytes are missing")
    unreferenced = on_disk - {row[3] for row in rows if row[3] is not None}
    problems += [f"file {name} belongs to no message" for name in sorted(unreferenced)]
    return problems


def _check_mailboxes(conn: sqlite3.Connection) -> list[str]:
    problems = []
    rows = conn.execute(
        "SELECT mb.id, mb.name, mb.uid_next, mb.highest_modseq, mb.messages, mb.unseen, mb.deleted, mb.size,"
        " count(m.uid), coalesce(max(m.uid), 0), coalesce(max(m.modseq), 0),"
        " coalesce(sum(m.system_flags & 1 = 0), 0), coalesce(sum(m.system_flags & 8 != 0), 0),"
        " coalesce(sum(m.size), 0), mb.first_recent_uid, mb.recent, coalesce(sum(m.uid >= mb.first_recent_uid), 0)"
        " FROM mailboxes mb LEFT JOIN messages m ON m.mailbox_id = mb.id GROUP BY mb.id"
    ).fetchall()
    for (mid, name, uid_next, modseq, messages, unseen, deleted, size, n, max_uid, max_modseq, n_unseen,
         n_deleted, n_size, first_recent, recent, n_recent) in rows:  # fmt: skip
        label = f"mailbox {mid} ({name})"
        if first_recent > uid_next or recent != n_recent:
            problems.append(
                f"{label}: first recent UID {first_recent} (UIDNEXT {uid_next}) with {recent} recent,"
                f" content has {n_recent} from there"
            )
        if max_uid >= uid_next:
            problems.append(f"{label}: UID {max_uid} is not below UIDNEXT {uid_next}")
        if max_modseq > modseq:
            problems.append(f"{label}: MODSEQ {max_modseq} above HIGHESTMODSEQ {modseq}")
        if (messages, unseen, deleted, size) != (n, n_unseen, n_deleted, n_size):
            problems.append(
                f"{label}: counters say {messages} messages/{unseen} unseen/{deleted} deleted/{size} bytes,"
                f" content is {n}/{n_unseen}/{n_deleted}/{n_size}"
            )
    expunged_rows = conn.execute(
        "SELECT e.mailbox_id, e.uid FROM expunged e JOIN mailboxes mb ON mb.id = e.mailbox_id"
        " WHERE e.uid >= mb.uid_next"
    ).fetchall()
    problems += [f"mailbox {m}: expunged UID {u} is not below UIDNEXT" for m, u in expunged_rows]
    return problems
