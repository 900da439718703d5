"""\\Recent in the store (RFC 3501 §2.3.2): each mailbox's first recent UID, claimed by one session at a time."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from kittiwake.store.interface import FlagMode
from kittiwake.store.models import Account, Flags, IncomingMessage, SystemFlag
from kittiwake.store.sqlite import SqliteStore

DELETED = Flags(system=SystemFlag.DELETED)


async def make_account(store: SqliteStore) -> Account:
    await store.add_domain("example.org")
    return await store.add_account("alice@example.org", "hash")


async def _deliver(store: SqliteStore, mailbox_id: int, count: int) -> None:
    for n in range(count):
        body = b"m%d\r\n" % n
        message = IncomingMessage(
            blob=await store.save_blob(body), size=len(body), internal_date=1_700_000_000, structure=b"[]"
        )
        await store.deliver(message, [mailbox_id])


async def test_a_claim_takes_every_unclaimed_uid_and_the_next_claim_none_of_them(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    await _deliver(store, inbox.id, 3)
    assert (await store.get_mailbox(account.id, "INBOX")).recent == 3
    assert await store.claim_recent(inbox.id) == (1, 4)
    assert await store.claim_recent(inbox.id) == (4, 4)
    box = await store.get_mailbox(account.id, "INBOX")
    assert (box.first_recent_uid, box.recent) == (4, 0)
    await _deliver(store, inbox.id, 1)
    assert (await store.get_mailbox(account.id, "INBOX")).recent == 1
    assert await store.claim_recent(inbox.id) == (4, 5)
    assert await store.verify() == []


async def test_a_claim_answered_before_its_commit_is_already_seen_by_reads(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    await _deliver(store, inbox.id, 3)
    held = threading.Event()
    # The committer is busy until the test says so: the claim's group cannot commit before then.
    store._writer._committer.submit(held.wait, 10)
    try:
        assert await store.claim_recent(inbox.id) == (1, 4)
        for box in (
            await store.get_mailbox(account.id, "INBOX"),
            await store.get_mailbox_by_id(inbox.id),
            *[m for m in await store.list_mailboxes(account.id) if m.id == inbox.id],
        ):
            assert (box.first_recent_uid, box.recent) == (4, 0)  # STATUS RECENT counts none of them
        assert await store.first_recent_uid(inbox.id) == 4
        assert await store.claim_recent(inbox.id) == (4, 4)
    finally:
        held.set()
    await store.subscribe(account.id, "INBOX")  # durable, so every earlier commit is visible
    assert (await store.get_mailbox(account.id, "INBOX")).recent == 0
    assert store._claims == {}  # the overlay is dropped once the commit shows


async def test_claiming_when_nothing_is_recent_writes_nothing(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    await _deliver(store, inbox.id, 2)
    await store.claim_recent(inbox.id)
    # The claim is answered before its commit; a durable write after it returns once both are committed.
    await store.subscribe(account.id, "INBOX")
    groups = store.writer_stats[0]
    assert await store.claim_recent(inbox.id) == (3, 3)
    assert store.writer_stats[0] == groups


async def test_racing_claims_never_give_one_uid_to_two_claimers(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")

    async def claim_after(delay: int) -> tuple[int, int]:
        for _ in range(delay):
            await asyncio.sleep(0)
        return await store.claim_recent(inbox.id)

    deliveries = asyncio.gather(*(_deliver(store, inbox.id, 3) for _ in range(5)))
    claims = await asyncio.gather(*(claim_after(n % 7) for n in range(40)))
    await deliveries
    claims.append(await store.claim_recent(inbox.id))
    claimed = [uid for first, end in claims for uid in range(first, end)]
    assert sorted(claimed) == list(range(1, 16))  # every message claimed, none twice


async def test_looking_at_the_first_recent_uid_claims_nothing(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    await _deliver(store, inbox.id, 2)
    assert await store.first_recent_uid(inbox.id) == 1
    assert await store.first_recent_uid(inbox.id) == 1
    assert (await store.get_mailbox(account.id, "INBOX")).recent == 2


async def test_the_recent_count_follows_expunge_copy_move_and_inbox_rename(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    archive = await store.get_mailbox(account.id, "Archive")
    await _deliver(store, inbox.id, 2)
    await store.claim_recent(inbox.id)
    await _deliver(store, inbox.id, 3)  # UIDs 3-5, not yet claimed
    await store.store_flags(inbox.id, [(2, 3)], FlagMode.ADD, DELETED)
    await store.expunge(inbox.id)  # a claimed message and an unclaimed one
    assert (await store.get_mailbox(account.id, "INBOX")).recent == 2
    await store.copy_messages(inbox.id, [(1, 1), (4, 4)], archive.id)
    assert (await store.get_mailbox(account.id, "Archive")).recent == 2  # copies are new in Archive
    await store.copy_messages(inbox.id, [(5, 5)], archive.id, move=True)
    assert (await store.get_mailbox(account.id, "INBOX")).recent == 1
    assert (await store.get_mailbox(account.id, "Archive")).recent == 3
    await store.rename_mailbox(account.id, "INBOX", "Old")
    old = await store.get_mailbox(account.id, "Old")
    assert (old.first_recent_uid, old.recent) == (3, 1)
    assert (await store.get_mailbox(account.id, "INBOX")).recent == 0
    assert await store.verify() == []


async def test_verify_reports_a_recent_count_that_is_wrong(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "data")
    try:
        account = await make_account(store)
        inbox = await store.get_mailbox(account.id, "INBOX")
        await _deliver(store, inbox.id, 2)
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "data" / "kittiwake.db")
    conn.execute("UPDATE mailboxes SET recent = 5 WHERE name = 'INBOX'")
    conn.commit()
    conn.close()
    store = await SqliteStore.open(tmp_path / "data")
    try:
        assert any("with 5 recent, content has 2" in p for p in await store.verify())
    finally:
        await store.close()
