"""\\Recent for IMAP4rev1 sessions over real sockets (RFC 3501 §2.3.2, §6.3.1, §6.3.2, §6.3.10, §6.4.4,
§7.3.2): recent in the first session told of a message, claimed by SELECT, looked at by EXAMINE and STATUS,
and absent from IMAP4rev2 sessions (RFC 9051 removed it)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kittiwake.mail.structure import parse_structure
from kittiwake.mail.structure_codec import dump_structure
from kittiwake.store.models import IncomingMessage
from tests.service.imapd.test_imap_service import Raw, deliver, run
from tests.service.server_harness import RunningServer, running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path) as running:
        yield running


async def append(server: RunningServer, count: int) -> None:
    """`count` messages added to alice's INBOX in one store call, as a delivery adds them."""
    store = server.store
    account = await store.get_account("alice@example.org")
    inbox = await store.get_mailbox(account.id, "INBOX")
    messages = []
    for n in range(count):
        body = b"Subject: m%d\r\n\r\nbody\r\n" % n
        structure = dump_structure(parse_structure(body))
        blob = await store.save_blob(body)
        messages.append(
            IncomingMessage(blob=blob, size=len(body), internal_date=1_700_000_000, structure=structure)
        )
    await store.append(inbox.id, messages)


async def session(server: RunningServer, *, rev2: bool = False) -> Raw:
    raw = await Raw.open(server)
    await raw.login()
    if rev2:
        await raw.command("e", "ENABLE IMAP4rev2")
    return raw


def recent_counts(lines: list[bytes]) -> list[int]:
    return [int(match[1]) for line in lines if (match := re.fullmatch(rb"\* (\d+) RECENT\r\n", line))]


async def recent_uids(raw: Raw) -> set[int]:
    lines = await raw.command("r", "FETCH 1:* (UID FLAGS)")
    return {
        int(match[1])
        for line in lines
        if (match := re.match(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", line))
        and b"\\Recent" in match[2]
    }


async def test_select_claims_the_recent_messages_for_the_first_session_alone(server: RunningServer) -> None:
    await run(deliver, server, "one")
    await run(deliver, server, "two")
    first, second = await session(server), await session(server)
    selected = await first.command("a", "SELECT INBOX")
    assert recent_counts(selected) == [2]
    assert selected.index(b"* 2 RECENT\r\n") == selected.index(b"* 2 EXISTS\r\n") + 1
    fetched = await first.command("b", "FETCH 1:2 FLAGS")
    assert fetched[:2] == [b"* 1 FETCH (FLAGS (\\Recent))\r\n", b"* 2 FETCH (FLAGS (\\Recent))\r\n"]
    assert recent_counts(await second.command("c", "SELECT INBOX")) == [0]
    fetched = await second.command("d", "FETCH 1:2 FLAGS")
    assert fetched[:2] == [b"* 1 FETCH (FLAGS ())\r\n", b"* 2 FETCH (FLAGS ())\r\n"]
    first.close()
    second.close()


async def test_examine_shows_recent_messages_without_claiming_them(server: RunningServer) -> None:
    await append(server, 2)
    looker, claimer, later = await session(server), await session(server), await session(server)
    assert recent_counts(await looker.command("a", "EXAMINE INBOX")) == [2]
    assert await recent_uids(looker) == {1, 2}
    # RFC 3501 §6.3.2: EXAMINE must not cause messages to lose \Recent.
    assert recent_counts(await claimer.command("b", "SELECT INBOX")) == [2]
    assert recent_counts(await later.command("c", "SELECT INBOX")) == [0]
    for raw in (looker, claimer, later):
        raw.close()


async def test_new_mail_is_recent_in_the_first_session_told_of_it(server: RunningServer) -> None:
    first, second = await session(server), await session(server)
    await first.command("a", "SELECT INBOX")
    await second.command("b", "SELECT INBOX")
    await run(deliver, server, "new")
    # RFC 3501 §7.3.2: RECENT comes with the EXISTS that says the mailbox grew.
    assert (await first.command("c", "NOOP"))[:2] == [b"* 1 EXISTS\r\n", b"* 1 RECENT\r\n"]
    assert (await second.command("d", "NOOP"))[:2] == [b"* 1 EXISTS\r\n", b"* 0 RECENT\r\n"]
    assert await recent_uids(first) == {1}
    assert await recent_uids(second) == set()
    first.close()
    second.close()


async def test_idle_announces_new_mail_with_recent(server: RunningServer) -> None:
    raw = await session(server)
    await raw.command("a", "SELECT INBOX")
    await raw.send(b"b IDLE\r\n")
    assert (await raw.line()).startswith(b"+ ")
    await append(server, 2)
    assert [await raw.line(), await raw.line()] == [b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n"]
    await raw.send(b"DONE\r\n")
    assert (await raw.line()).startswith(b"b OK")
    raw.close()


async def test_racing_sessions_never_both_see_one_message_as_recent(server: RunningServer) -> None:
    await append(server, 20)
    sessions = [await session(server) for _ in range(6)]
    answers = await asyncio.gather(*(raw.command("s", "SELECT INBOX") for raw in sessions))
    assert sum(count for lines in answers for count in recent_counts(lines)) == 20
    seen = [await recent_uids(raw) for raw in sessions]
    assert sorted(uid for uids in seen for uid in uids) == list(range(1, 21))
    # New mail while they all have the mailbox selected: told to all, recent in one of them each.
    for _ in range(3):
        await append(server, 2)
    await asyncio.gather(*(raw.command("n", "NOOP") for raw in sessions))
    seen = [await recent_uids(raw) for raw in sessions]
    assert sorted(uid for uids in seen for uid in uids) == list(range(1, 27))
    for raw in sessions:
        raw.close()


async def test_status_recent_counts_the_unclaimed_messages_and_claims_none(server: RunningServer) -> None:
    await append(server, 3)
    first, second = await session(server), await session(server)
    for tag in ("a", "b"):
        status = await first.command(tag, "STATUS INBOX (MESSAGES RECENT)")
        assert status[0] == b"* STATUS INBOX (MESSAGES 3 RECENT 3)\r\n"  # RFC 3501 §6.3.10: no claim
    assert recent_counts(await first.command("c", "SELECT INBOX")) == [3]
    assert (await second.command("d", "STATUS INBOX (RECENT)"))[0] == b"* STATUS INBOX (RECENT 0)\r\n"
    # On its selected mailbox a session counts the messages recent in it.
    assert (await first.command("e", "STATUS INBOX (RECENT)"))[0] == b"* STATUS INBOX (RECENT 3)\r\n"
    first.close()
    second.close()


async def test_search_recent_new_and_old_follow_the_sessions_recent_messages(server: RunningServer) -> None:
    await append(server, 3)
    first, second = await session(server), await session(server)
    await first.command("a", "SELECT INBOX")
    await first.command("b", "STORE 1 +FLAGS.SILENT (\\Seen)")
    assert (await first.command("c", "SEARCH RECENT"))[0] == b"* SEARCH 1 2 3\r\n"
    assert (await first.command("d", "SEARCH NEW"))[
        0
    ] == b"* SEARCH 2 3\r\n"  # RFC 3501 §6.4.4: RECENT UNSEEN
    assert (await first.command("e", "SEARCH OLD"))[0] == b"* SEARCH\r\n"
    await second.command("f", "SELECT INBOX")
    assert (await second.command("g", "SEARCH RECENT"))[0] == b"* SEARCH\r\n"
    assert (await second.command("h", "SEARCH OLD"))[0] == b"* SEARCH 1 2 3\r\n"
    first.close()
    second.close()


async def test_flags_sent_for_store_and_for_others_changes_include_recent(server: RunningServer) -> None:
    await append(server, 1)
    first, second = await session(server), await session(server)
    await first.command("a", "SELECT INBOX")
    await second.command("b", "SELECT INBOX")
    assert (await first.command("c", "STORE 1 +FLAGS (\\Flagged)"))[
        0
    ] == b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n"
    await second.command("d", "STORE 1 +FLAGS.SILENT (\\Seen)")
    told = await first.command("e", "NOOP")
    assert told[0] == b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Flagged \\Recent))\r\n"
    assert (await second.command("f", "FETCH 1 FLAGS"))[0] == b"* 1 FETCH (FLAGS (\\Seen \\Flagged))\r\n"
    first.close()
    second.close()


async def test_expunging_a_recent_message_sends_the_new_recent_count(server: RunningServer) -> None:
    await append(server, 2)
    raw = await session(server)
    await raw.command("a", "SELECT INBOX")
    await raw.command("b", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert (await raw.command("c", "EXPUNGE"))[:2] == [b"* 1 EXPUNGE\r\n", b"* 1 RECENT\r\n"]
    raw.close()


async def test_an_imap4rev2_session_sees_no_recent_yet_a_message_it_was_told_of_is_not_recent_later(
    server: RunningServer,
) -> None:
    await append(server, 1)
    rev2 = await session(server, rev2=True)
    selected = await rev2.command("a", "SELECT INBOX")
    assert recent_counts(selected) == [] and b"* 1 EXISTS\r\n" in selected  # RFC 9051 removed RECENT
    assert (await rev2.command("b", "FETCH 1 FLAGS"))[0] == b"* 1 FETCH (FLAGS ())\r\n"
    await append(server, 1)
    assert (await rev2.command("c", "NOOP"))[:2] == [b"* 2 EXISTS\r\n", b"c OK NOOP completed\r\n"]
    # RFC 3501 §2.3.2: the IMAP4rev2 session was the first told of both messages.
    rev1 = await session(server)
    assert recent_counts(await rev1.command("d", "SELECT INBOX")) == [0]
    rev2.close()
    rev1.close()
