"""Forward-only migrations: a store made by the first schema upgrades without losing anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from kittiwake.store.sqlite import SqliteStore
from kittiwake.store.sqlite.connection import connect, migrate, migration_scripts, schema_version


def make_first_version_store(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    conn = connect(data_dir / "kittiwake.db")
    assert migrate(conn, up_to=1) == [1]
    conn.executescript(
        """
        INSERT INTO domains (id, name) VALUES (1, 'example.org');
        INSERT INTO accounts (id, domain_id, address, password_hash, created)
            VALUES (1, 1, 'old@example.org', 'h', 0);
        INSERT INTO mailboxes (id, account_id, name, uid_validity, uid_next, highest_modseq, messages, unseen, size)
            VALUES (1, 1, 'INBOX', 42, 2, 5, 1, 1, 9);
        INSERT INTO blobs (id, size, data, refs) VALUES (1, 9, X'48656C6C6F0D0A0D0A', 1);
        INSERT INTO messages (mailbox_id, uid, modseq, internal_date, size, blob_id, structure)
            VALUES (1, 1, 5, 0, 9, 1, '[]');
        """
    )
    conn.close()


async def test_store_from_the_first_version_upgrades_and_keeps_its_mail(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    make_first_version_store(data_dir)
    store = await SqliteStore.open(data_dir)
    try:
        conn = connect(data_dir / "kittiwake.db")
        assert schema_version(conn) == migration_scripts()[-1][0] > 1
        conn.close()
        account = await store.get_account("old@example.org")
        assert account is not None
        inbox = await store.get_mailbox(account.id, "INBOX")
        assert (inbox.uid_validity, inbox.uid_next, inbox.highest_modseq) == (42, 2, 5)
        (record,) = await store.load_messages(inbox.id, [(1, 1)])
        assert await store.read_blob(record.blob_id, 0, record.size) == b"Hello\r\n\r\n"
        assert await store.count_queued() == 0  # the queue tables of the second migration exist
        assert await store.verify() == []
    finally:
        await store.close()


async def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "data")
    await store.close()
    conn = connect(tmp_path / "data" / "kittiwake.db")
    assert migrate(conn) == []
    conn.close()


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "kittiwake.db")
    conn.execute("PRAGMA user_version = 9999")
    with pytest.raises(RuntimeError, match="newer than this kittiwake"):
        migrate(conn)
    conn.close()


async def test_opening_without_recovery_leaves_spool_files_of_a_running_server(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "data")
    spool = store.new_spool_path()
    spool.write_bytes(b"a message being received right now")
    await store.close()
    beside = await SqliteStore.open(tmp_path / "data", recover=False)
    await beside.close()
    assert spool.exists()
    restarted = await SqliteStore.open(tmp_path / "data")
    await restarted.close()
    assert not spool.exists()


async def test_upgrading_lists_the_keywords_already_in_use(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True)
    conn = connect(data_dir / "kittiwake.db")
    assert migrate(conn, up_to=4) == [1, 2, 3, 4]
    conn.executescript(
        """
        INSERT INTO domains (id, name) VALUES (1, 'example.org');
        INSERT INTO accounts (id, domain_id, address, password_hash, created)
            VALUES (1, 1, 'old@example.org', 'h', 0);
        INSERT INTO mailboxes (id, account_id, name, uid_validity, uid_next, highest_modseq, messages, unseen, size)
            VALUES (1, 1, 'INBOX', 42, 4, 5, 3, 3, 27);
        INSERT INTO blobs (id, size, data, refs) VALUES (1, 9, X'48656C6C6F0D0A0D0A', 3);
        INSERT INTO messages (mailbox_id, uid, modseq, internal_date, size, blob_id, structure, keywords)
            VALUES (1, 1, 5, 0, 9, 1, '[]', '$Work Later'), (1, 2, 5, 0, 9, 1, '[]', NULL),
                   (1, 3, 5, 0, 9, 1, '[]', '$Work');
        """
    )
    conn.close()
    store = await SqliteStore.open(data_dir)
    try:
        assert await store.mailbox_keywords(1) == ["$Work", "Later"]
    finally:
        await store.close()


async def test_upgrading_makes_the_messages_already_there_recent(tmp_path: Path) -> None:
    # RFC 3501 §2.3.2: whether any session was told of them cannot be known, so they SHOULD be recent.
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True)
    conn = connect(data_dir / "kittiwake.db")
    assert migrate(conn, up_to=5) == [1, 2, 3, 4, 5]
    conn.executescript(
        """
        INSERT INTO domains (id, name) VALUES (1, 'example.org');
        INSERT INTO accounts (id, domain_id, address, password_hash, created)
            VALUES (1, 1, 'old@example.org', 'h', 0);
        INSERT INTO mailboxes (id, account_id, name, uid_validity, uid_next, highest_modseq, messages, unseen, size)
            VALUES (1, 1, 'INBOX', 42, 4, 5, 2, 2, 18), (2, 1, 'Empty', 43, 9, 1, 0, 0, 0);
        INSERT INTO blobs (id, size, data, refs) VALUES (1, 9, X'48656C6C6F0D0A0D0A', 2);
        INSERT INTO messages (mailbox_id, uid, modseq, internal_date, size, blob_id, structure)
            VALUES (1, 1, 5, 0, 9, 1, '[]'), (1, 3, 5, 0, 9, 1, '[]');
        """
    )
    conn.close()
    store = await SqliteStore.open(data_dir)
    try:
        inbox = await store.get_mailbox(1, "INBOX")
        assert (inbox.first_recent_uid, inbox.recent) == (1, 2)
        assert await store.claim_recent(inbox.id) == (1, 4)
        assert (await store.get_mailbox(1, "Empty")).recent == 0
        assert await store.verify() == []
    finally:
        await store.close()
