"""The embedded store against a real SQLite file: mailboxes, messages, flags, expunge, copy, counters."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from kittiwake.store import errors
from kittiwake.store.changes import Change, FlagsChanged, MailboxesChanged, MessagesAdded, MessagesExpunged
from kittiwake.store.interface import DEFAULT_MAILBOXES, FlagMode, QueuedRecipient, QueueRequest
from kittiwake.store.models import Account, Flags, IncomingMessage, SystemFlag
from kittiwake.store.sqlite import SqliteStore

SEEN = Flags(system=SystemFlag.SEEN)
DELETED = Flags(system=SystemFlag.DELETED)


async def make_account(store: SqliteStore, address: str = "alice@example.org") -> Account:
    domain = address.rpartition("@")[2]
    if domain not in {d.name for d in await store.list_domains()}:
        await store.add_domain(domain)
    return await store.add_account(address, "hash")


NO_FLAGS = Flags()


async def incoming(store: SqliteStore, body: bytes, flags: Flags = NO_FLAGS) -> IncomingMessage:
    blob = await store.save_blob(body)
    return IncomingMessage(
        blob=blob, size=len(body), internal_date=1_700_000_000, structure=b"[]", flags=flags
    )


async def test_new_account_has_the_special_use_mailboxes(store: SqliteStore) -> None:
    account = await make_account(store)
    boxes = {m.name: m.special_use for m in await store.list_mailboxes(account.id)}
    assert boxes == dict(DEFAULT_MAILBOXES)
    assert set(await store.list_subscriptions(account.id)) == set(boxes)


async def test_uid_validity_differs_between_mailboxes_and_recreations(store: SqliteStore) -> None:
    account = await make_account(store)
    first = await store.create_mailbox(account.id, "Lists")
    await store.delete_mailbox(account.id, "Lists")
    again = await store.create_mailbox(account.id, "Lists")
    validities = [m.uid_validity for m in await store.list_mailboxes(account.id)]
    assert len(set(validities)) == len(validities)
    assert again.uid_validity > first.uid_validity


async def test_create_makes_missing_parents_and_refuses_duplicates(store: SqliteStore) -> None:
    account = await make_account(store)
    await store.create_mailbox(account.id, "Work/Projects/Kittiwake")
    names = {m.name for m in await store.list_mailboxes(account.id)}
    assert {"Work", "Work/Projects", "Work/Projects/Kittiwake"} <= names
    with pytest.raises(errors.MailboxExists):
        await store.create_mailbox(account.id, "Work")


@pytest.mark.parametrize("name", ["", "a//b", "/a", "a/", "a/../b", "..", "bad\x00name"])
async def test_invalid_mailbox_names_are_refused(store: SqliteStore, name: str) -> None:
    account = await make_account(store)
    with pytest.raises(errors.InvalidMailboxName):
        await store.create_mailbox(account.id, name)


async def test_inbox_is_case_insensitive(store: SqliteStore) -> None:
    account = await make_account(store)
    assert (await store.get_mailbox(account.id, "inbox")).name == "INBOX"
    with pytest.raises(errors.MailboxExists):
        await store.create_mailbox(account.id, "Inbox")


async def test_delivery_assigns_ascending_uids_and_modseqs_and_counts(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    first = await store.deliver(await incoming(store, b"Subject: one\r\n\r\nbody\r\n"), [inbox.id])
    second = await store.deliver(await incoming(store, b"Subject: two\r\n\r\nbody!\r\n", SEEN), [inbox.id])
    assert first[0].uid < second[0].uid
    assert first[0].modseq < second[0].modseq
    after = await store.get_mailbox(account.id, "INBOX")
    assert (after.messages, after.unseen, after.uid_next) == (2, 1, second[0].uid + 1)
    assert after.size == len(b"Subject: one\r\n\r\nbody\r\n") + len(b"Subject: two\r\n\r\nbody!\r\n")
    assert after.highest_modseq == second[0].modseq


async def test_fifty_concurrent_deliveries_get_distinct_ascending_uids(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    bodies = [f"Subject: {i}\r\n\r\n{'x' * i}\r\n".encode() for i in range(50)]

    async def deliver(body: bytes) -> tuple[int, int, bytes]:
        added = await store.deliver(await incoming(store, body), [inbox.id])
        return added[0].uid, added[0].modseq, body

    results = await asyncio.gather(*(deliver(body) for body in bodies))
    uids = [uid for uid, _, _ in results]
    modseqs = [modseq for _, modseq, _ in results]
    assert len(set(uids)) == 50 and len(set(modseqs)) == 50
    # The order UIDs were given in is the order MODSEQs were: both ascend together.
    assert sorted(uids) == [uid for uid, _ in sorted(zip(uids, modseqs, strict=True), key=lambda p: p[1])]
    records = await store.load_messages(inbox.id, [(1, 10_000)])
    assert [r.uid for r in records] == sorted(uids)
    by_uid = {uid: body for uid, _, body in results}
    for record in records:
        assert await store.read_blob(record.blob_id, 0, record.size) == by_uid[record.uid]
    groups, operations = store.writer_stats
    assert operations >= 50 + 1 and groups < operations  # concurrent deliveries shared transactions


async def test_large_message_is_a_file_and_reads_back_in_ranges(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "data", inline_max=1000)
    try:
        account = await make_account(store)
        inbox = await store.get_mailbox(account.id, "INBOX")
        body = bytes(range(256)) * 40
        message = await incoming(store, body)
        assert message.blob.file_name is not None
        await store.deliver(message, [inbox.id])
        record = (await store.load_messages(inbox.id, [(1, 1)]))[0]
        assert await store.read_blob(record.blob_id, 100, 300) == body[100:300]
        streamed = b"".join([chunk async for chunk in await store.open_blob(record.blob_id, 5, len(body))])
        assert streamed == body[5:]
        assert await store.verify() == []
    finally:
        await store.close()


async def test_one_delivery_to_several_mailboxes_shares_the_bytes(store: SqliteStore) -> None:
    alice = await make_account(store)
    bob = await make_account(store, "bob@example.org")
    targets = [(await store.get_mailbox(a.id, "INBOX")).id for a in (alice, bob)]
    added = await store.deliver(await incoming(store, b"Subject: hi\r\n\r\nyo\r\n"), targets)
    records = [(await store.load_messages(a.mailbox_id, [(a.uid, a.uid)]))[0] for a in added]
    assert records[0].blob_id == records[1].blob_id
    await store.expunge(targets[0], None)  # nothing \Deleted: nothing goes
    await store.store_flags(targets[0], [(1, 1)], FlagMode.ADD, DELETED)
    await store.expunge(targets[0])
    assert await store.read_blob(records[1].blob_id, 0, 100) == b"Subject: hi\r\n\r\nyo\r\n"
    assert await store.verify() == []


async def test_store_flags_modes_counters_and_unchangedsince(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    for i in range(3):
        await store.deliver(await incoming(store, f"m{i}\r\n".encode()), [inbox.id])
    added = await store.store_flags(inbox.id, [(1, 2)], FlagMode.ADD, Flags.from_names(["\\Seen", "$Work"]))
    assert [u.uid for u in added.updated] == [1, 2]
    assert added.updated[0].flags.names() == ["\\Seen", "$Work"]
    again = await store.store_flags(inbox.id, [(1, 2)], FlagMode.ADD, SEEN)
    assert again.updated == () and [u.uid for u in again.unchanged] == [1, 2]
    box = await store.get_mailbox(account.id, "INBOX")
    assert box.unseen == 1
    stale = added.updated[0].modseq - 1
    result = await store.store_flags(inbox.id, [(1, 3)], FlagMode.REMOVE, SEEN, unchanged_since=stale)
    assert result.failed_modseq == (1, 2)  # RFC 7162: modified since; message 3 had no \Seen to remove
    replaced = await store.store_flags(inbox.id, [(3, 3)], FlagMode.REPLACE, Flags.from_names(["\\Flagged"]))
    assert replaced.updated[0].flags.names() == ["\\Flagged"]
    assert await store.verify() == []


async def test_expunge_removes_deleted_records_vanished_and_updates_counters(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    for i in range(4):
        await store.deliver(await incoming(store, f"m{i}\r\n".encode()), [inbox.id])
    before = (await store.get_mailbox(account.id, "INBOX")).highest_modseq
    await store.store_flags(inbox.id, [(2, 3)], FlagMode.ADD, DELETED)
    expunged = await store.expunge(inbox.id)
    assert [e.uid for e in expunged] == [2, 3]
    assert [r.uid for r in await store.load_messages(inbox.id, [(1, 100)])] == [1, 4]
    assert [e.uid for e in await store.load_expunged_since(inbox.id, before)] == [2, 3]
    box = await store.get_mailbox(account.id, "INBOX")
    assert (box.messages, box.deleted, box.unseen) == (2, 0, 2)
    # UIDs are never reused: the next delivery gets 5.
    assert (await store.deliver(await incoming(store, b"m\r\n"), [inbox.id]))[0].uid == 5
    assert await store.verify() == []


async def test_uid_expunge_only_touches_the_given_uids(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    for i in range(3):
        await store.deliver(await incoming(store, f"m{i}\r\n".encode(), DELETED), [inbox.id])
    assert [e.uid for e in await store.expunge(inbox.id, [(2, 2)])] == [2]
    assert [r.uid for r in await store.load_messages(inbox.id, [(1, 9)])] == [1, 3]


async def test_copy_and_move_keep_flags_and_bytes(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    archive = await store.get_mailbox(account.id, "Archive")
    for i in range(3):
        await store.deliver(await incoming(store, f"m{i}\r\n".encode(), SEEN), [inbox.id])
    pairs = await store.copy_messages(inbox.id, [(1, 2)], archive.id)
    assert pairs == [(1, 1), (2, 2)]
    moved = await store.copy_messages(inbox.id, [(3, 3)], archive.id, move=True)
    assert moved == [(3, 3)]
    assert [r.uid for r in await store.load_messages(inbox.id, [(1, 9)])] == [1, 2]
    copies = await store.load_messages(archive.id, [(1, 9)])
    assert [r.flags for r in copies] == [SEEN] * 3
    assert await store.read_blob(copies[2].blob_id, 0, 10) == b"m2\r\n"
    assert await store.verify() == []


async def test_rename_moves_children_and_inbox_rename_empties_inbox(store: SqliteStore) -> None:
    account = await make_account(store)
    await store.create_mailbox(account.id, "A/B")
    await store.rename_mailbox(account.id, "A", "Z")
    names = {m.name for m in await store.list_mailboxes(account.id)}
    assert {"Z", "Z/B"} <= names and "A" not in names and "A/B" not in names
    inbox = await store.get_mailbox(account.id, "INBOX")
    await store.deliver(await incoming(store, b"m\r\n"), [inbox.id])
    await store.rename_mailbox(account.id, "INBOX", "Old")
    old = await store.get_mailbox(account.id, "Old")
    assert old.messages == 1
    assert (await store.get_mailbox(account.id, "INBOX")).messages == 0
    assert (await store.get_mailbox(account.id, "INBOX")).uid_validity == inbox.uid_validity
    assert await store.verify() == []


async def test_renaming_inbox_under_a_new_parent_creates_the_parent(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    await store.deliver(await incoming(store, b"m\r\n"), [inbox.id])
    await store.rename_mailbox(account.id, "INBOX", "Archive/2026")  # RFC 9051 §6.3.6, as §6.3.4 for CREATE
    names = {m.name for m in await store.list_mailboxes(account.id)}
    assert {"INBOX", "Archive", "Archive/2026"} <= names
    assert (await store.get_mailbox(account.id, "Archive/2026")).messages == 1
    assert (await store.get_mailbox(account.id, "Archive")).messages == 0
    assert await store.verify() == []


async def test_delete_refuses_inbox_and_parents(store: SqliteStore) -> None:
    account = await make_account(store)
    await store.create_mailbox(account.id, "P/C")
    with pytest.raises(errors.CannotDeleteInbox):
        await store.delete_mailbox(account.id, "INBOX")
    with pytest.raises(errors.MailboxHasChildren):
        await store.delete_mailbox(account.id, "P")
    with pytest.raises(errors.MailboxNotFound):
        await store.delete_mailbox(account.id, "Nope")


async def test_changes_are_published_after_commit(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    seen: list[Change] = []
    store.changes.subscribe_mailbox(inbox.id, seen.append)
    store.changes.subscribe_account(account.id, seen.append)
    await store.deliver(await incoming(store, b"m\r\n"), [inbox.id])
    await store.store_flags(inbox.id, [(1, 1)], FlagMode.ADD, DELETED, origin="me")
    await store.expunge(inbox.id)
    await store.create_mailbox(account.id, "New")
    kinds = [type(change) for change in seen]
    assert kinds == [MessagesAdded, FlagsChanged, MessagesExpunged, MailboxesChanged]
    flags_change = seen[1]
    assert isinstance(flags_change, FlagsChanged) and flags_change.origin == "me"


async def test_a_failing_operation_does_not_spoil_the_others_in_its_group(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    message = await incoming(store, b"m\r\n")
    results = await asyncio.gather(
        store.deliver(message, [inbox.id]),
        store.deliver(message, [999_999]),
        store.deliver(message, [inbox.id]),
        return_exceptions=True,
    )
    assert isinstance(results[1], errors.MailboxNotFound)
    assert (await store.get_mailbox(account.id, "INBOX")).messages == 2
    assert await store.verify() == []


async def test_quota_refuses_a_delivery_that_would_exceed_it(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    await store.set_quota(account.id, 10, None)
    with pytest.raises(errors.QuotaExceeded):
        await store.deliver(await incoming(store, b"x" * 11), [inbox.id])
    await store.deliver(await incoming(store, b"x" * 10), [inbox.id])
    assert await store.account_usage(account.id) == (10, 1)


async def test_remove_account_removes_its_mail_and_files(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "data", inline_max=10)
    try:
        account = await make_account(store)
        inbox = await store.get_mailbox(account.id, "INBOX")
        await store.deliver(await incoming(store, b"y" * 100), [inbox.id])
        assert len(list(store.files.names())) == 1
        await store.remove_account(account.address)
        assert await store.get_account(account.address) is None
        assert list(store.files.names()) == []
        assert await store.verify() == []
    finally:
        await store.close()


async def test_verify_reports_a_missing_file_and_wrong_counters(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "data", inline_max=10)
    try:
        account = await make_account(store)
        inbox = await store.get_mailbox(account.id, "INBOX")
        await store.deliver(await incoming(store, b"z" * 100), [inbox.id])
        (name,) = store.files.names()
        store.files.path(name).unlink()
        problems = await store.verify()
        assert any("is missing" in p for p in problems)
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "data" / "kittiwake.db")
    conn.execute("UPDATE mailboxes SET messages = 7 WHERE name = 'INBOX'")
    conn.commit()
    conn.close()
    store = await SqliteStore.open(tmp_path / "data")
    try:
        assert any("counters say 7 messages" in p for p in await store.verify())
    finally:
        await store.close()


async def test_delivery_with_relay_queues_the_same_bytes_in_one_transaction(store: SqliteStore) -> None:
    account = await make_account(store)
    inbox = await store.get_mailbox(account.id, "INBOX")
    relay = QueueRequest(
        queue_id="q1",
        sender="alice@example.org",
        recipients=(QueuedRecipient(address="x@elsewhere.net"), QueuedRecipient(address="y@elsewhere.net")),
    )
    await store.deliver(await incoming(store, b"Subject: both\r\n\r\nhi\r\n"), [inbox.id], relay=relay)
    assert await store.count_queued() == 1
    await store.store_flags(inbox.id, [(1, 1)], FlagMode.ADD, DELETED)
    await store.expunge(inbox.id)  # the queue still holds a reference to the bytes
    assert await store.verify() == []
    only_relay = QueueRequest(
        queue_id="q2", sender="", recipients=(QueuedRecipient(address="z@elsewhere.net"),)
    )
    await store.deliver(await incoming(store, b"relay only\r\n"), [], relay=only_relay)
    await store.enqueue(
        QueueRequest(queue_id="q3", sender="", recipients=(QueuedRecipient(address="b@elsewhere.net"),)),
        await store.save_blob(b"bounce\r\n"),
        8,
    )
    assert await store.count_queued() == 3
    assert await store.verify() == []
