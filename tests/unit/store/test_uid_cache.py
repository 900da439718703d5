"""What SELECT reads from memory (UIDs, the first unseen UID): kept current by commits, never stale."""

from __future__ import annotations

import array
import asyncio
import sqlite3
from pathlib import Path

from tests.unit.store.test_sqlite_store import incoming, make_account

from kittiwake.store.changes import MessagesAdded, MessagesExpunged
from kittiwake.store.interface import FlagMode
from kittiwake.store.models import Expunged, Flags, SystemFlag
from kittiwake.store.sqlite import SqliteStore
from kittiwake.store.uid_cache import UidCache, without

DELETED = Flags(system=SystemFlag.DELETED)


async def inbox_id(store: SqliteStore) -> int:
    account = await make_account(store)
    return (await store.get_mailbox(account.id, "INBOX")).id


async def test_uids_follow_appends_and_expunges_made_through_the_store(store: SqliteStore) -> None:
    mailbox = await inbox_id(store)
    await store.append(mailbox, [await incoming(store, b"m%d\r\n" % i) for i in range(5)])
    first = await store.load_uids(mailbox)
    assert list(first) == [1, 2, 3, 4, 5]
    await store.append(mailbox, [await incoming(store, b"new\r\n")])
    await store.store_flags(mailbox, [(2, 2), (4, 4)], FlagMode.ADD, DELETED)
    await store.expunge(mailbox)
    assert list(await store.load_uids(mailbox)) == [1, 3, 5, 6]
    assert list(first) == [1, 2, 3, 4, 5]  # an earlier snapshot is never changed under its holder


async def test_a_second_load_is_served_from_the_cache(store: SqliteStore) -> None:
    mailbox = await inbox_id(store)
    await store.append(mailbox, [await incoming(store, b"m\r\n") for _ in range(3)])
    assert await store.load_uids(mailbox) is await store.load_uids(mailbox)


async def test_a_change_made_behind_the_stores_back_is_not_served_stale(store: SqliteStore) -> None:
    mailbox = await inbox_id(store)
    await store.append(mailbox, [await incoming(store, b"m\r\n") for _ in range(3)])
    assert list(await store.load_uids(mailbox)) == [1, 2, 3]
    # Another process deletes a message and fixes the counter; no change event reaches this store.
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("DELETE FROM messages WHERE mailbox_id = ? AND uid = 2", (mailbox,))
        conn.execute("UPDATE mailboxes SET messages = messages - 1 WHERE id = ?", (mailbox,))
    assert list(await store.load_uids(mailbox)) == [1, 3]


def test_events_already_reflected_in_an_entry_are_skipped() -> None:
    cache = UidCache()
    cache.store(7, array.array("I", [1, 2, 3]), uid_next=4)
    cache.apply(MessagesAdded(mailbox_id=7, uids=(3,), highest_modseq=5))
    cache.apply(MessagesExpunged(mailbox_id=7, expunged=(Expunged(uid=9, modseq=6),), highest_modseq=6))
    cached = cache.lookup(7, messages=3, uid_next=4)
    assert cached is not None and list(cached) == [1, 2, 3]
    cache.apply(MessagesAdded(mailbox_id=7, uids=(4, 5), highest_modseq=7))
    assert cache.lookup(7, messages=3, uid_next=4) is None  # the caller's row is older: no answer
    cached = cache.lookup(7, messages=5, uid_next=6)
    assert cached is not None and list(cached) == [1, 2, 3, 4, 5]


def test_the_least_recently_used_mailboxes_go_when_full() -> None:
    cache = UidCache(capacity=5)
    cache.store(1, array.array("I", [1, 2]), uid_next=3)
    cache.store(2, array.array("I", [1, 2]), uid_next=3)
    assert cache.lookup(1, messages=2, uid_next=3) is not None  # 1 is now the most recent
    cache.store(3, array.array("I", [1, 2]), uid_next=3)
    assert cache.lookup(2, messages=2, uid_next=3) is None
    assert cache.lookup(1, messages=2, uid_next=3) is not None
    assert cache.lookup(3, messages=2, uid_next=3) is not None


def test_without_removes_few_or_many_uids() -> None:
    uids = array.array("I", range(1, 1001))
    assert list(without(uids, {1, 500, 1000, 2000})) == [u for u in range(1, 1001) if u not in {1, 500, 1000}]
    many = set(range(1, 1001, 2))
    assert list(without(uids, many)) == list(range(2, 1001, 2))
    assert len(uids) == 1000


async def test_the_first_unseen_uid_follows_flag_changes_and_new_mail(store: SqliteStore) -> None:
    mailbox = await inbox_id(store)
    seen = Flags(system=SystemFlag.SEEN)
    await store.append(mailbox, [await incoming(store, b"m\r\n", seen) for _ in range(3)])
    assert await store.first_unseen_uid(mailbox) is None
    await store.store_flags(mailbox, [(2, 2)], FlagMode.REMOVE, seen)
    assert await store.first_unseen_uid(mailbox) == 2
    assert await store.first_unseen_uid(mailbox) == 2
    await store.store_flags(mailbox, [(2, 2)], FlagMode.ADD, seen)
    assert await store.first_unseen_uid(mailbox) is None
    await store.append(mailbox, [await incoming(store, b"new\r\n")])
    assert await store.first_unseen_uid(mailbox) == 4


async def test_the_first_unseen_uid_from_a_row_just_read_matches_the_one_read_afresh(
    store: SqliteStore,
) -> None:
    mailbox = await inbox_id(store)
    seen = Flags(system=SystemFlag.SEEN)
    await store.append(mailbox, [await incoming(store, b"m\r\n", seen) for _ in range(3)])
    await store.store_flags(mailbox, [(3, 3)], FlagMode.REMOVE, seen)
    row = await store.get_mailbox_by_id(mailbox)
    assert await store.first_unseen_uid(mailbox, known=row) == 3
    await store.store_flags(mailbox, [(1, 1)], FlagMode.REMOVE, seen)
    # The row is older than the change: its state no longer matches what was remembered, so it is found again.
    assert await store.first_unseen_uid(mailbox, known=await store.get_mailbox_by_id(mailbox)) == 1
    assert await store.first_unseen_uid(mailbox) == 1


async def test_remembered_keywords_follow_flag_changes_appends_and_copies(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = (await store.get_mailbox(account.id, "INBOX")).id
    other = (await store.create_mailbox(account.id, "Other")).id
    await store.append(inbox, [await incoming(store, b"m\r\n")])
    assert await store.mailbox_keywords(inbox) == []
    await store.store_flags(inbox, [(1, 1)], FlagMode.ADD, Flags(keywords=frozenset({"$Work"})))
    assert await store.mailbox_keywords(inbox) == ["$Work"]
    await store.append(inbox, [await incoming(store, b"n\r\n", Flags(keywords=frozenset({"Later"})))])
    assert await store.mailbox_keywords(inbox) == ["$Work", "Later"]
    assert await store.mailbox_keywords(other) == []
    await store.copy_messages(inbox, [(1, 2)], other, move=False)
    assert await store.mailbox_keywords(other) == ["$Work", "Later"]


async def test_remembered_keywords_follow_a_keyword_stored_by_another_process(tmp_path: Path) -> None:
    server = await SqliteStore.open(tmp_path / "data")
    command = await SqliteStore.open(tmp_path / "data", recover=False)  # as a command run beside it
    try:
        account = await make_account(server)
        inbox = (await server.get_mailbox(account.id, "INBOX")).id
        await server.append(inbox, [await incoming(server, b"m\r\n")])
        assert await server.mailbox_keywords(inbox) == []
        await command.store_flags(inbox, [(1, 1)], FlagMode.ADD, Flags(keywords=frozenset({"Elsewhere"})))
        for _ in range(50):  # the server looks for other processes' commits every second
            if await server.mailbox_keywords(inbox) == ["Elsewhere"]:
                break
            await asyncio.sleep(0.1)
        assert await server.mailbox_keywords(inbox) == ["Elsewhere"]
    finally:
        await command.close()
        await server.close()


async def test_the_first_unseen_uid_of_a_mostly_read_mailbox_follows_every_change(store: SqliteStore) -> None:
    mailbox = await inbox_id(store)
    seen = Flags(system=SystemFlag.SEEN)
    for _ in range(6):
        await store.append(mailbox, [await incoming(store, b"m\r\n", seen) for _ in range(500)])
    assert await store.first_unseen_uid(mailbox) is None
    await store.store_flags(mailbox, [(2500, 2500)], FlagMode.REMOVE, seen)
    assert await store.first_unseen_uid(mailbox) == 2500
    await store.store_flags(mailbox, [(10, 10)], FlagMode.REMOVE, seen)
    assert await store.first_unseen_uid(mailbox) == 10
    await store.store_flags(mailbox, [(1, 3000)], FlagMode.ADD, seen)
    assert await store.first_unseen_uid(mailbox) is None
    await store.append(mailbox, [await incoming(store, b"new\r\n")])
    assert await store.first_unseen_uid(mailbox) == 3001
