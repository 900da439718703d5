"""Message operations run by the writer thread: add, flags, expunge, copy and move.

Every operation that changes a mailbox takes one new MODSEQ for all the messages it touches (RFC 7162 §3.1
allows messages changed by one command to share a mod-sequence) and keeps the mailbox counters exact.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from kittiwake.store import errors
from kittiwake.store.blobs import FileBlobStore
from kittiwake.store.changes import FlagsChanged, MessagesAdded, MessagesExpunged
from kittiwake.store.interface import FlagMode, QueueRequest, StoreFlagsResult, UidRanges
from kittiwake.store.models import (
    AddedMessage,
    Expunged,
    Flags,
    FlagUpdate,
    IncomingMessage,
    SystemFlag,
)
from kittiwake.store.sqlite.blob_refs import add_refs, insert_blob, release_blobs
from kittiwake.store.sqlite.queue_ops import insert_queue_entry
from kittiwake.store.sqlite.writer import Transaction

SEEN = int(SystemFlag.SEEN)
DELETED = int(SystemFlag.DELETED)


def keywords_text(flags: Flags) -> str | None:
    return " ".join(sorted(flags.keywords)) or None


def flags_from_columns(system: int, keywords: str | None) -> Flags:
    return Flags(system=SystemFlag(system), keywords=frozenset(keywords.split()) if keywords else frozenset())


def range_clause(ranges: UidRanges) -> tuple[str, list[int]]:
    """SQL matching the UID ranges; many ranges fall back to their span, filtered by the caller."""
    if len(ranges) <= 64:
        clause = " OR ".join("uid BETWEEN ? AND ?" for _ in ranges) or "0"
        return f"({clause})", [bound for pair in ranges for bound in pair]
    return "(uid BETWEEN ? AND ?)", [min(r[0] for r in ranges), max(r[1] for r in ranges)]


def in_ranges(uid: int, ranges: UidRanges) -> bool:
    return any(first <= uid <= last for first, last in ranges)


def _take_uids(conn: sqlite3.Connection, mailbox_id: int, count: int) -> tuple[int, int, int]:
    """Reserve `count` UIDs and one MODSEQ: returns (first uid, modseq, account_id)."""
    row = conn.execute(
        "SELECT uid_next, highest_modseq, account_id FROM mailboxes WHERE id = ?", (mailbox_id,)
    ).fetchone()
    if row is None:
        raise errors.MailboxNotFound(f"mailbox {mailbox_id} no longer exists")
    return int(row[0]), int(row[1]) + 1, int(row[2])


def _check_quota(conn: sqlite3.Connection, account_id: int, add_bytes: int, add_messages: int) -> None:
    row = conn.execute(
        "SELECT quota_bytes, quota_messages FROM accounts WHERE id = ?", (account_id,)
    ).fetchone()
    if row is None or (row[0] is None and row[1] is None):
        return
    used_bytes, used_messages = conn.execute(
        "SELECT coalesce(sum(size), 0), coalesce(sum(messages), 0) FROM mailboxes WHERE account_id = ?",
        (account_id,),
    ).fetchone()
    if row[0] is not None and used_bytes + add_bytes > row[0]:
        raise errors.QuotaExceeded("storage quota exceeded")
    if row[1] is not None and used_messages + add_messages > row[1]:
        raise errors.QuotaExceeded("message quota exceeded")


def add_messages(tx: Transaction, mailbox_id: int, messages: Sequence[IncomingMessage]) -> list[AddedMessage]:
    """Add messages to one mailbox with consecutive UIDs; all or none (MULTIAPPEND, RFC 3502)."""
    conn = tx.conn
    first_uid, modseq, account_id = _take_uids(conn, mailbox_id, len(messages))
    _check_quota(conn, account_id, sum(m.size for m in messages), len(messages))
    rows = []
    added = []
    for offset, message in enumerate(messages):
        blob_id = insert_blob(tx, message.blob, message.size, 1)
        uid = first_uid + offset
        flags = message.flags
        rows.append(
            (mailbox_id, uid, modseq, message.internal_date, message.size, int(flags.system),
             keywords_text(flags), blob_id, message.structure)
        )  # fmt: skip
        added.append(AddedMessage(mailbox_id=mailbox_id, uid=uid, modseq=modseq))
    _insert_rows(conn, mailbox_id, rows, modseq)
    tx.changes.append(
        MessagesAdded(mailbox_id=mailbox_id, uids=tuple(a.uid for a in added), highest_modseq=modseq)
    )
    return added


def deliver(
    tx: Transaction, message: IncomingMessage, mailbox_ids: Sequence[int], relay: QueueRequest | None
) -> list[AddedMessage]:
    """One message into several mailboxes and maybe the outbound queue, sharing one copy of its bytes."""
    conn = tx.conn
    blob_id = insert_blob(tx, message.blob, message.size, len(mailbox_ids) + (relay is not None))
    if relay is not None:
        insert_queue_entry(tx, relay, blob_id)
    added = []
    for mailbox_id in mailbox_ids:
        uid, modseq, account_id = _take_uids(conn, mailbox_id, 1)
        _check_quota(conn, account_id, message.size, 1)
        flags = message.flags
        row = (mailbox_id, uid, modseq, message.internal_date, message.size, int(flags.system),
               keywords_text(flags), blob_id, message.structure)  # fmt: skip
        _insert_rows(conn, mailbox_id, [row], modseq)
        added.append(AddedMessage(mailbox_id=mailbox_id, uid=uid, modseq=modseq))
        tx.changes.append(MessagesAdded(mailbox_id=mailbox_id, uids=(uid,), highest_modseq=modseq))
    return added


def _insert_rows(
    conn: sqlite3.Connection, mailbox_id: int, rows: Sequence[tuple[Any, ...]], modseq: int
) -> None:
    conn.executemany(
        "INSERT INTO messages (mailbox_id, uid, modseq, internal_date, size, system_flags, keywords, blob_id,"
        " structure) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    keywords = {word for row in rows if row[6] for word in row[6].split()}
    if keywords:
        remember_keywords(conn, mailbox_id, keywords)
    unseen = sum(1 for row in rows if not row[5] & SEEN)
    deleted = sum(1 for row in rows if row[5] & DELETED)
    size = sum(row[4] for row in rows)
    # New UIDs are at or above UIDNEXT, so above the first recent UID: every new message is recent.
    conn.execute(
        "UPDATE mailboxes SET uid_next = ?, highest_modseq = ?, messages = messages + ?, unseen = unseen + ?,"
        " deleted = deleted + ?, size = size + ?, recent = recent + ? WHERE id = ?",
        (rows[-1][1] + 1, modseq, len(rows), unseen, deleted, size, len(rows), mailbox_id),
    )


def remember_keywords(conn: sqlite3.Connection, mailbox_id: int, keywords: Iterable[str]) -> None:
    """Add to the mailbox's list of keywords in use (migration 0005), which SELECT reports in FLAGS."""
    conn.executemany(
        "INSERT OR IGNORE INTO mailbox_keywords (mailbox_id, keyword) VALUES (?, ?)",
        [(mailbox_id, keyword) for keyword in keywords],
    )


def _apply(mode: FlagMode, old: Flags, change: Flags) -> Flags:
    if mode is FlagMode.REPLACE:
        return change
    if mode is FlagMode.ADD:
        return Flags(system=old.system | change.system, keywords=old.keywords | change.keywords)
    return Flags(system=old.system & ~change.system, keywords=old.keywords - change.keywords)


def store_flags(
    tx: Transaction,
    mailbox_id: int,
    ranges: UidRanges,
    mode: FlagMode,
    change: Flags,
    unchanged_since: int | None,
    origin: object | None,
) -> StoreFlagsResult:
    conn = tx.conn
    _, modseq, _ = _take_uids(conn, mailbox_id, 0)
    clause, params = range_clause(ranges)
    rows = conn.execute(
        f"SELECT uid, modseq, system_flags, keywords FROM messages WHERE mailbox_id = ? AND {clause} ORDER BY uid",
        [mailbox_id, *params],
    ).fetchall()
    updated: list[FlagUpdate] = []
    unchanged: list[FlagUpdate] = []
    failed: list[int] = []
    unseen_delta = deleted_delta = 0
    for uid, old_modseq, system, keywords in rows:
        if not in_ranges(uid, ranges):
            continue
        old = flags_from_columns(system, keywords)
        # RFC 7162 §3.1.3: UNCHANGEDSINCE fails for messages modified after the given mod-sequence.
        if unchanged_since is not None and old_modseq > unchanged_since:
            failed.append(uid)
            continue
        new = _apply(mode, old, change)
        if new == old:
            unchanged.append(FlagUpdate(uid=uid, modseq=old_modseq, flags=old))
            continue
        updated.append(FlagUpdate(uid=uid, modseq=modseq, flags=new))
        unseen_delta += bool(old.system & SEEN) - bool(new.system & SEEN)
        deleted_delta += bool(new.system & DELETED) - bool(old.system & DELETED)
    if updated:
        conn.executemany(
            "UPDATE messages SET system_flags = ?, keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
            [(int(u.flags.system), keywords_text(u.flags), modseq, mailbox_id, u.uid) for u in updated],
        )
        conn.execute(
            "UPDATE mailboxes SET highest_modseq = ?, unseen = unseen + ?, deleted = deleted + ? WHERE id = ?",
            (modseq, unseen_delta, deleted_delta, mailbox_id),
        )
        if change.keywords and mode is not FlagMode.REMOVE:
            remember_keywords(conn, mailbox_id, change.keywords)
        tx.changes.append(
            FlagsChanged(mailbox_id=mailbox_id, updates=tuple(updated), highest_modseq=modseq, origin=origin)
        )
    return StoreFlagsResult(updated=tuple(updated), unchanged=tuple(unchanged), failed_modseq=tuple(failed))


def expunge(
    tx: Transaction,
    files: FileBlobStore,
    mailbox_id: int,
    ranges: UidRanges | None,
    *,
    only_deleted: bool = True,
    keep_for_readers: bool = True,
) -> list[Expunged]:
    """Remove messages (by default those flagged \\Deleted), recording each UID for VANISHED. Their bytes
    stay readable until swept (`keep_for_readers`), or go with the commit."""
    conn = tx.conn
    _, modseq, _ = _take_uids(conn, mailbox_id, 0)
    clause, params = range_clause(ranges) if ranges is not None else ("1", [])
    deleted_only = "AND system_flags & 8" if only_deleted else ""
    rows = conn.execute(
        f"SELECT uid, blob_id, size, system_flags FROM messages WHERE mailbox_id = ? {deleted_only} AND {clause}"
        " ORDER BY uid",
        [mailbox_id, *params],
    ).fetchall()
    if ranges is not None:
        rows = [row for row in rows if in_ranges(row[0], ranges)]
    if not rows:
        return []
    conn.executemany(
        "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?", [(mailbox_id, r[0]) for r in rows]
    )
    conn.executemany(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
        [(mailbox_id, r[0], modseq) for r in rows],
    )
    (first_recent,) = conn.execute(
        "SELECT first_recent_uid FROM mailboxes WHERE id = ?", (mailbox_id,)
    ).fetchone()
    conn.execute(
        "UPDATE mailboxes SET highest_modseq = ?, messages = messages - ?, unseen = unseen - ?,"
        " deleted = deleted - ?, size = size - ?, recent = recent - ? WHERE id = ?",
        (
            modseq,
            len(rows),
            sum(1 for r in rows if not r[3] & SEEN),
            sum(1 for r in rows if r[3] & DELETED),
            sum(r[2] for r in rows),
            sum(1 for r in rows if r[0] >= first_recent),
            mailbox_id,
        ),
    )
    counts = list(Counter(r[1] for r in rows).items())
    release_blobs(tx, files, counts, keep_for_readers=keep_for_readers)
    expunged = [Expunged(uid=r[0], modseq=modseq) for r in rows]
    tx.changes.append(
        MessagesExpunged(mailbox_id=mailbox_id, expunged=tuple(expunged), highest_modseq=modseq)
    )
    return expunged


def copy_messages(
    tx: Transaction, files: FileBlobStore, source_id: int, ranges: UidRanges, target_id: int, move: bool
) -> list[tuple[int, int]]:
    """COPY (RFC 9051 §6.4.7) or MOVE (RFC 6851): returns (source uid, target uid) pairs in UID order."""
    conn = tx.conn
    clause, params = range_clause(ranges)
    rows = conn.execute(
        f"SELECT uid, internal_date, size, system_flags, keywords, blob_id, structure FROM messages"
        f" WHERE mailbox_id = ? AND {clause} ORDER BY uid",
        [source_id, *params],
    ).fetchall()
    rows = [row for row in rows if in_ranges(row[0], ranges)]
    if not rows:
        return []
    first_uid, modseq, account_id = _take_uids(conn, target_id, len(rows))
    if not move:
        _check_quota(conn, account_id, sum(r[2] for r in rows), len(rows))
    new_rows = [
        (target_id, first_uid + i, modseq, r[1], r[2], r[3], r[4], r[5], r[6]) for i, r in enumerate(rows)
    ]
    add_refs(tx, list(Counter(r[5] for r in rows).items()))
    _insert_rows(conn, target_id, new_rows, modseq)
    pairs = [(r[0], first_uid + i) for i, r in enumerate(rows)]
    tx.changes.append(
        MessagesAdded(mailbox_id=target_id, uids=tuple(p[1] for p in pairs), highest_modseq=modseq)
    )
    if move:
        expunge(tx, files, source_id, [(r[0], r[0]) for r in rows], only_deleted=False)
    return pairs
