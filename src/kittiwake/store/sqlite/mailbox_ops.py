"""Mailbox operations run by the writer thread: create, delete, rename, subscriptions."""

from __future__ import annotations

import sqlite3
import time

from kittiwake.store import errors
from kittiwake.store.blobs import FileBlobStore
from kittiwake.store.changes import MailboxesChanged, MessagesExpunged
from kittiwake.store.models import Expunged, Mailbox
from kittiwake.store.sqlite.blob_refs import release_blobs
from kittiwake.store.sqlite.writer import Transaction

DELIMITER = "/"
_FIELDS = (
    "id",
    "account_id",
    "name",
    "special_use",
    "uid_validity",
    "uid_next",
    "highest_modseq",
    "messages",
    "unseen",
    "deleted",
    "size",
    "first_recent_uid",
    "recent",
)
MAILBOX_COLUMNS = ", ".join(_FIELDS)


def mailbox_from_row(row: tuple[object, ...]) -> Mailbox:
    return Mailbox(**dict(zip(_FIELDS, row, strict=True)))  # type: ignore[arg-type]


def normalize_name(name: str) -> str:
    """RFC 9051 §5.1: INBOX is case-insensitive; so is it as the first level of a hierarchy under it."""
    first, sep, rest = name.partition(DELIMITER)
    if first.upper() == "INBOX":
        return "INBOX" + sep + rest
    return name


def check_name(name: str) -> str:
    name = normalize_name(name)
    parts = name.split(DELIMITER)
    if not name or any(part in ("", ".", "..") for part in parts):
        raise errors.InvalidMailboxName(f"invalid mailbox name {name!r}")
    if any(ord(char) < 0x20 or char == "\x7f" for char in name) or len(name.encode()) > 1000:
        raise errors.InvalidMailboxName(f"invalid mailbox name {name!r}")
    return name


def select_mailbox(conn: sqlite3.Connection, account_id: int, name: str) -> Mailbox:
    row = conn.execute(
        f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? AND name = ?",
        (account_id, normalize_name(name)),
    ).fetchone()
    if row is None:
        raise errors.MailboxNotFound(name)
    return mailbox_from_row(row)


def next_uid_validity(conn: sqlite3.Connection) -> int:
    """UIDVALIDITY values strictly increase across the store, so a re-created name never repeats one."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'uid_validity'").fetchone()
    value = max(int(time.time()), int(row[0]) + 1 if row else 0) & 0xFFFFFFFF or 1
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('uid_validity', ?)", (value,))
    return value


def insert_mailbox(conn: sqlite3.Connection, account_id: int, name: str, special_use: str | None) -> int:
    cursor = conn.execute(
        "INSERT INTO mailboxes (account_id, name, special_use, uid_validity) VALUES (?, ?, ?, ?)",
        (account_id, name, special_use, next_uid_validity(conn)),
    )
    return int(cursor.lastrowid or 0)


def create_mailbox(tx: Transaction, account_id: int, name: str, special_use: str | None) -> Mailbox:
    name = check_name(name)
    conn = tx.conn
    if conn.execute(
        "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, name)
    ).fetchone():
        raise errors.MailboxExists(name)
    _create_superiors(conn, account_id, name)
    mailbox_id = insert_mailbox(conn, account_id, name, special_use)
    tx.changes.append(MailboxesChanged(account_id=account_id))
    row = conn.execute(f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
    return mailbox_from_row(row)


def _create_superiors(conn: sqlite3.Connection, account_id: int, name: str) -> None:
    """RFC 9051 §6.3.4 and §6.3.6: the server SHOULD create the superior names a new name needs."""
    parts = name.split(DELIMITER)
    for depth in range(1, len(parts)):
        parent = DELIMITER.join(parts[:depth])
        if not conn.execute(
            "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, parent)
        ).fetchone():
            insert_mailbox(conn, account_id, parent, None)


def _has_children(conn: sqlite3.Connection, account_id: int, name: str) -> bool:
    prefix = name + DELIMITER
    row = conn.execute(
        "SELECT 1 FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ? LIMIT 1",
        (account_id, len(prefix), prefix),
    ).fetchone()
    return row is not None


def delete_mailbox(
    tx: Transaction, blob_files: FileBlobStore, account_id: int, name: str, *, keep_for_readers: bool = True
) -> None:
    conn = tx.conn
    mailbox = select_mailbox(conn, account_id, name)
    if mailbox.name == "INBOX":
        raise errors.CannotDeleteInbox("INBOX cannot be deleted")
    if _has_children(conn, account_id, mailbox.name):
        # Dovecot and Stalwart refuse too; RFC 9051 §6.3.5 would otherwise leave a \Noselect name behind.
        raise errors.MailboxHasChildren(f"{mailbox.name} has child mailboxes; delete them first")
    blob_counts = conn.execute(
        "SELECT blob_id, count(*) FROM messages WHERE mailbox_id = ? GROUP BY blob_id", (mailbox.id,)
    ).fetchall()
    gone = [row[0] for row in conn.execute("SELECT uid FROM messages WHERE mailbox_id = ?", (mailbox.id,))]
    if gone:
        # Sessions that have this mailbox selected see its messages go.
        modseq = mailbox.highest_modseq + 1
        expunged = tuple(Expunged(uid=uid, modseq=modseq) for uid in gone)
        tx.changes.append(MessagesExpunged(mailbox_id=mailbox.id, expunged=expunged, highest_modseq=modseq))
    conn.execute("DELETE FROM messages WHERE mailbox_id = ?", (mailbox.id,))
    conn.execute("DELETE FROM expunged WHERE mailbox_id = ?", (mailbox.id,))
    conn.execute("DELETE FROM mailbox_keywords WHERE mailbox_id = ?", (mailbox.id,))
    conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox.id,))
    release_blobs(tx, blob_files, blob_counts, keep_for_readers=keep_for_readers)
    tx.changes.append(MailboxesChanged(account_id=account_id))


def rename_mailbox(tx: Transaction, account_id: int, old: str, new: str) -> None:
    conn = tx.conn
    mailbox = select_mailbox(conn, account_id, old)
    new = check_name(new)
    if conn.execute(
        "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, new)
    ).fetchone():
        raise errors.MailboxExists(new)
    if new.startswith(mailbox.name + DELIMITER):
        raise errors.InvalidMailboxName("a mailbox cannot be moved under itself")
    _create_superiors(conn, account_id, new)
    if mailbox.name == "INBOX":
        _rename_inbox(tx, mailbox, new)
        return
    prefix = mailbox.name + DELIMITER
    # RFC 9051 §6.3.6: inferior hierarchical names are renamed too.
    conn.execute(
        "UPDATE mailboxes SET name = ? || substr(name, ?) WHERE account_id = ? AND substr(name, 1, ?) = ?",
        (new + DELIMITER, len(prefix) + 1, account_id, len(prefix), prefix),
    )
    conn.execute("UPDATE mailboxes SET name = ? WHERE id = ?", (new, mailbox.id))
    tx.changes.append(MailboxesChanged(account_id=account_id))


def _rename_inbox(tx: Transaction, inbox: Mailbox, new: str) -> None:
    """RFC 9051 §6.3.6: renaming INBOX moves its messages to the new name and leaves INBOX empty."""
    conn = tx.conn
    moved = [row[0] for row in conn.execute("SELECT uid FROM messages WHERE mailbox_id = ?", (inbox.id,))]
    target_id = insert_mailbox(conn, inbox.account_id, new, None)
    conn.execute(
        "UPDATE mailboxes SET uid_next = ?, highest_modseq = ?, messages = ?, unseen = ?, deleted = ?, size = ?,"
        " first_recent_uid = ?, recent = ? WHERE id = ?",
        (
            inbox.uid_next,
            inbox.highest_modseq,
            inbox.messages,
            inbox.unseen,
            inbox.deleted,
            inbox.size,
            inbox.first_recent_uid,
            inbox.recent,
            target_id,
        ),
    )
    conn.execute("UPDATE messages SET mailbox_id = ? WHERE mailbox_id = ?", (target_id, inbox.id))
    # INBOX keeps its UIDVALIDITY and UIDNEXT, so the moved UIDs are never reused there.
    conn.execute(
        "UPDATE mailboxes SET messages = 0, unseen = 0, deleted = 0, size = 0, recent = 0,"
        " highest_modseq = highest_modseq + 1 WHERE id = ?",
        (inbox.id,),
    )
    modseq = inbox.highest_modseq + 1
    conn.execute(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) SELECT ?, uid, ? FROM messages"
        " WHERE mailbox_id = ?",
        (inbox.id, modseq, target_id),
    )
    tx.changes.append(
        MessagesExpunged(
            mailbox_id=inbox.id,
            expunged=tuple(Expunged(uid=uid, modseq=modseq) for uid in moved),
            highest_modseq=modseq,
        )
    )
    tx.changes.append(MailboxesChanged(account_id=inbox.account_id))


def claim_recent(tx: Transaction, mailbox_id: int) -> tuple[int, int]:
    """RFC 3501 §2.3.2: the UIDs `first <= uid < end` no session has claimed are now the caller's alone.

    Runs in the writer, so claims never overlap: the mailbox's first recent UID moves up to UIDNEXT, and
    the next claim starts there. Nothing to claim gives `first == end`. No MODSEQ moves: \\Recent is the
    state of a session, not of the message.
    """
    row = tx.conn.execute(
        "SELECT first_recent_uid, uid_next FROM mailboxes WHERE id = ?", (mailbox_id,)
    ).fetchone()
    if row is None:
        raise errors.MailboxNotFound(f"mailbox {mailbox_id} no longer exists")
    first, end = int(row[0]), int(row[1])
    if first >= end:
        return end, end
    tx.conn.execute("UPDATE mailboxes SET first_recent_uid = ?, recent = 0 WHERE id = ?", (end, mailbox_id))
    return first, end
