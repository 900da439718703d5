"""Bytes of expunged messages stay readable for a while (RFC 2180 §4.1.1), then a sweep deletes them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kittiwake.store import errors
from kittiwake.store.interface import FlagMode
from kittiwake.store.models import Account, Flags, IncomingMessage, MessageRecord, SystemFlag
from kittiwake.store.sqlite import SqliteStore

DELETED = Flags(system=SystemFlag.DELETED)
BODY = b"Subject: going\r\n\r\n" + b"x" * 3000 + b"\r\n"


async def _account(store: SqliteStore) -> Account:
    await store.add_domain("example.org")
    return await store.add_account("alice@example.org", "hash")


async def _one_message(store: SqliteStore, mailbox_id: int) -> MessageRecord:
    message = IncomingMessage(
        blob=await store.save_blob(BODY), size=len(BODY), internal_date=1_700_000_000, structure=b"[]"
    )
    added = await store.deliver(message, [mailbox_id])
    return (await store.load_messages(mailbox_id, [(added[0].uid, added[0].uid)]))[0]


async def _expunge(store: SqliteStore, mailbox_id: int, uid: int) -> None:
    await store.store_flags(mailbox_id, [(uid, uid)], FlagMode.ADD, DELETED)
    assert [e.uid for e in await store.expunge(mailbox_id)] == [uid]


@pytest.mark.parametrize("inline_max", [131072, 1000], ids=["inline", "file"])
async def test_an_expunged_message_reads_back_until_the_sweep_takes_it(
    tmp_path: Path, inline_max: int
) -> None:
    store = await SqliteStore.open(tmp_path / "data", inline_max=inline_max)
    try:
        inbox = await store.get_mailbox((await _account(store)).id, "INBOX")
        record = await _one_message(store, inbox.id)
        await _expunge(store, inbox.id, record.uid)
        assert await store.load_messages(inbox.id, [(record.uid, record.uid)]) == []
        # A session that loaded the row before the expunge still gets the bytes.
        assert await store.read_blob(record.blob_id, 0, record.size) == BODY
        now = int(time.time())
        assert await store.sweep_released(now - 60) == 0  # released just now: kept
        assert await store.read_blob(record.blob_id, 0, 20) == BODY[:20]
        assert await store.verify() == []
        assert await store.sweep_released(now + 1) == 1
        with pytest.raises(errors.NotFound):
            await store.read_blob(record.blob_id, 0, 20)
        assert list(store.files.names()) == []  # the file of a large message went too
        assert await store.verify() == []
    finally:
        await store.close()


async def test_deleting_a_mailbox_keeps_its_bytes_until_the_sweep(store: SqliteStore) -> None:
    account = await _account(store)
    box = await store.create_mailbox(account.id, "Old")
    record = await _one_message(store, box.id)
    await store.delete_mailbox(account.id, "Old")
    assert await store.read_blob(record.blob_id, 0, record.size) == BODY
    assert await store.sweep_released(int(time.time()) + 1) == 1
    with pytest.raises(errors.NotFound):
        await store.read_blob(record.blob_id, 0, 20)


async def test_bytes_still_used_by_a_copy_are_never_released(store: SqliteStore) -> None:
    account = await _account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    other = await store.create_mailbox(account.id, "Kept")
    record = await _one_message(store, inbox.id)
    await store.copy_messages(inbox.id, [(record.uid, record.uid)], other.id, move=False)
    await _expunge(store, inbox.id, record.uid)
    assert await store.sweep_released(int(time.time()) + 1) == 0
    copy = (await store.load_messages(other.id, [(1, 1)]))[0]
    assert copy.blob_id == record.blob_id
    assert await store.read_blob(copy.blob_id, 0, record.size) == BODY
    assert await store.verify() == []


async def test_the_sweep_deletes_in_batches_until_none_is_left(store: SqliteStore) -> None:
    inbox = await store.get_mailbox((await _account(store)).id, "INBOX")
    records = [await _one_message(store, inbox.id) for _ in range(150)]
    await store.store_flags(inbox.id, [(1, 10_000)], FlagMode.ADD, DELETED)
    assert len(await store.expunge(inbox.id)) == 150
    groups_before, _ = store.writer_stats
    assert await store.sweep_released(int(time.time()) + 1) == 150
    groups_after, _ = store.writer_stats
    assert groups_after - groups_before == 3  # 64 + 64 + 22
    for record in records[::37]:
        with pytest.raises(errors.NotFound):
            await store.read_blob(record.blob_id, 0, 10)


async def test_a_restart_deletes_the_bytes_of_expunged_messages(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "data", inline_max=1000)
    inbox = await store.get_mailbox((await _account(store)).id, "INBOX")
    record = await _one_message(store, inbox.id)
    await _expunge(store, inbox.id, record.uid)
    await store.close()
    store = await SqliteStore.open(tmp_path / "data", inline_max=1000)
    try:
        with pytest.raises(errors.NotFound):
            await store.read_blob(record.blob_id, 0, 10)
        assert list(store.files.names()) == []
        assert await store.verify() == []
    finally:
        await store.close()
