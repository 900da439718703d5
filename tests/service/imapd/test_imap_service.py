"""The IMAP service over real sockets and TLS with stdlib imaplib, and raw transcripts for exact bytes."""

from __future__ import annotations

import asyncio
import imaplib
import re
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.service.server_harness import PASSWORD, RunningServer, running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path) as running:
        yield running


def connect(server: RunningServer, user: str = "alice") -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=server.client_tls)
    client.login(f"{user}@example.org", PASSWORD)
    return client


def deliver(server: RunningServer, subject: str, to: str = "alice@example.org") -> None:
    message = f"From: sender@elsewhere.net\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nBody of {subject}.\r\n"
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as smtp:
        smtp.sendmail("sender@elsewhere.net", [to], message.encode())


class Raw:
    """A line-level client for exact transcripts."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: RunningServer, *, tls: bool = True) -> Raw:
        if tls:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server.ports["imaps"], ssl=server.client_tls, server_hostname="localhost"
            )
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["imap"])
        raw = cls(reader, writer)
        await raw.line()
        return raw

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), 10)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, tag: str, text: str) -> list[bytes]:
        """Send one command and collect every line up to and including its tagged answer."""
        await self.send(f"{tag} {text}\r\n".encode())
        return await self.until(tag)

    async def until(self, tag: str) -> list[bytes]:
        lines = []
        while True:
            line = await self.line()
            assert line, "connection closed"
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    async def login(self, user: str = "alice") -> None:
        lines = await self.command("L", f'LOGIN {user}@example.org "{PASSWORD}"')
        assert lines[-1].startswith(b"L OK"), lines

    def close(self) -> None:
        self.writer.close()


async def selected_sessions(server: RunningServer, count: int = 2) -> list[Raw]:
    """`count` logged-in sessions, each with alice's INBOX selected."""
    sessions = [await Raw.open(server) for _ in range(count)]
    for session in sessions:
        await session.login()
        await session.command("s", "SELECT INBOX")
    return sessions


async def run(function, *args):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(function, *args)


async def test_greeting_capabilities_and_logindisabled_before_tls(server: RunningServer) -> None:
    raw = await Raw.open(server, tls=False)
    lines = await raw.command("a", "CAPABILITY")
    caps = lines[0].split()
    assert b"STARTTLS" in caps and b"LOGINDISABLED" in caps and b"AUTH=PLAIN" not in caps
    assert b"IMAP4rev2" in caps and b"IDLE" in caps
    refused = await raw.command("b", f'LOGIN alice@example.org "{PASSWORD}"')
    assert refused[-1].startswith(b"b NO [PRIVACYREQUIRED]")
    raw.close()


async def test_starttls_then_login_works_with_imaplib(server: RunningServer) -> None:
    def session() -> list[bytes]:
        client = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
        client.starttls(ssl_context=server.client_tls)
        client.login("alice@example.org", PASSWORD)
        status, data = client.list()
        client.logout()
        assert status == "OK"
        return data  # type: ignore[return-value]

    listing = b"\n".join(await run(session))
    for name in (b'"/" INBOX', b"Sent", b"Drafts", b"Trash", b"Junk", b"Archive"):
        assert name in listing
    assert b"\\Sent" in listing and b"\\HasNoChildren" in listing


async def test_wrong_password_is_refused_with_authenticationfailed(server: RunningServer) -> None:
    raw = await Raw.open(server)
    lines = await raw.command("a", "LOGIN alice@example.org wrong")
    assert lines[-1].startswith(b"a NO [AUTHENTICATIONFAILED]")
    raw.close()


async def test_authenticate_plain_with_initial_response(server: RunningServer) -> None:
    import base64

    raw = await Raw.open(server)
    token = base64.b64encode(f"\0alice@example.org\0{PASSWORD}".encode()).decode()
    lines = await raw.command("a", f"AUTHENTICATE PLAIN {token}")
    assert lines[-1].startswith(b"a OK")
    raw.close()


async def test_delivered_message_is_listed_fetched_and_flagged(server: RunningServer) -> None:
    await run(deliver, server, "first")

    def session() -> tuple[list[object], list[object], list[object]]:
        client = connect(server)
        client.select("INBOX")
        _, peeked = client.fetch("1", "(UID FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        _, body = client.fetch("1", "(BODY[TEXT])")
        _, flags = client.fetch("1", "(FLAGS)")
        client.logout()
        return peeked, body, flags  # type: ignore[return-value]

    peeked, body, flags = await run(session)
    head = peeked[0]
    assert isinstance(head, tuple)
    # RFC 3501 §2.3.2: the first session to select the mailbox sees the new message \Recent.
    assert b"UID 1 " in head[0] and b"FLAGS (\\Recent)" in head[0] and b'"first"' in head[0]
    assert head[1] == b"Subject: first\r\n\r\n"
    text = body[0]
    assert isinstance(text, tuple) and text[1] == b"Body of first.\r\n"
    assert b"\\Seen" in text[0] or b"\\Seen" in flags[0]  # type: ignore[operator]
    assert b"\\Seen" in flags[0]  # type: ignore[operator]


async def test_append_store_copy_move_expunge(server: RunningServer) -> None:
    def session() -> dict[str, object]:
        client = connect(server)
        results: dict[str, object] = {}
        message = b"Subject: appended\r\n\r\nhello\r\n"
        results["append"] = client.append("INBOX", "(\\Flagged)", None, message)
        client.select("INBOX")
        results["store"] = client.store("1", "+FLAGS", "(\\Deleted $Label)")
        results["copy"] = client.copy("1", "Archive")
        results["expunge"] = client.expunge()
        client.select("Archive")
        results["archive"] = client.fetch("1", "(FLAGS BODY.PEEK[])")
        results["move"] = client._simple_command("MOVE", "1", "Trash")  # type: ignore[attr-defined]
        results["untagged"] = dict(client.untagged_responses)
        client.logout()
        return results

    results = await run(session)
    assert results["append"][0] == "OK"  # type: ignore[index]
    assert b"[APPENDUID" in results["append"][1][0]  # type: ignore[index]
    assert results["copy"][0] == "OK" and b"COPYUID" in results["copy"][1][0]  # type: ignore[index]
    assert results["expunge"] == ("OK", [b"1"])
    archived = results["archive"][1][0]  # type: ignore[index]
    assert b"\\Flagged" in archived[0] and b"$Label" in archived[0]
    assert archived[1] == b"Subject: appended\r\n\r\nhello\r\n"
    assert results["move"][0] == "OK"  # type: ignore[index]


async def test_bad_commands_get_bad_and_the_session_lives_on(server: RunningServer) -> None:
    raw = await Raw.open(server)
    assert (await raw.command("a", "FROBNICATE"))[-1].startswith(b"a BAD")
    assert (await raw.command("b", "SELECT"))[-1].startswith(b"b BAD")
    assert (await raw.command("c", "FETCH 1 FLAGS"))[-1].startswith(b"c BAD")  # not selected, not logged in
    await raw.login()
    assert (await raw.command("d", "SELECT INBOX"))[-1].startswith(b"d OK [READ-WRITE]")
    assert (await raw.command("e", "FETCH 99 FLAGS"))[-1].startswith(b"e BAD")
    assert (await raw.command("f", "FETCH 1:* (FLAGS"))[-1].startswith(b"f BAD")
    assert (await raw.command("g", "NOOP"))[-1].startswith(b"g OK")
    raw.close()


async def test_users_cannot_see_each_others_mailboxes(server: RunningServer) -> None:
    raw = await Raw.open(server)
    await raw.login("bob")
    await raw.command("a", "CREATE Private")
    raw.close()
    raw = await Raw.open(server)
    await raw.login("alice")
    assert (await raw.command("b", "SELECT Private"))[-1].startswith(b"b NO [NONEXISTENT]")
    assert b"Private" not in b"".join(await raw.command("c", 'LIST "" "*"'))
    raw.close()


async def test_idle_reports_a_new_delivery_at_once(server: RunningServer) -> None:
    raw = await Raw.open(server)
    await raw.login()
    await raw.command("a", "SELECT INBOX")
    await raw.send(b"b IDLE\r\n")
    assert (await raw.line()).startswith(b"+ ")
    await run(deliver, server, "while idling")
    assert await raw.line() == b"* 1 EXISTS\r\n"
    assert await raw.line() == b"* 1 RECENT\r\n"  # RFC 3501 §7.3.2: with the new size
    await raw.send(b"DONE\r\n")
    assert (await raw.line()).startswith(b"b OK")
    raw.close()


async def test_flag_changes_and_expunges_reach_the_other_session(server: RunningServer) -> None:
    await run(deliver, server, "one")
    await run(deliver, server, "two")
    first, second = await selected_sessions(server)
    await first.command("a", "STORE 1 +FLAGS.SILENT (\\Flagged)")
    lines = await second.command("b", "NOOP")
    assert any(re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\)\)", line) for line in lines), lines
    await first.command("c", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert (await first.command("d", "EXPUNGE"))[0] == b"* 1 EXPUNGE\r\n"
    # No EXPUNGE during FETCH by sequence number (RFC 9051 §7.5.1): it waits for the NOOP.
    during_fetch = await second.command("e", "FETCH 1 (FLAGS)")
    assert not any(b"EXPUNGE" in line for line in during_fetch)
    after = await second.command("f", "NOOP")
    assert after[0] == b"* 1 EXPUNGE\r\n"
    first.close()
    second.close()


async def test_too_large_append_is_refused_before_the_literal(tmp_path: Path) -> None:
    async with running_server(tmp_path, {"imap.append_limit": 1000}) as server:
        raw = await Raw.open(server)
        await raw.login()
        await raw.send(b"a APPEND INBOX {5000}\r\n")
        assert (await raw.line()).startswith(b"a NO [TOOBIG]")
        assert (await raw.command("b", "NOOP"))[-1].startswith(b"b OK")
        raw.close()


async def test_condstore_select_and_fetch_modseq(server: RunningServer) -> None:
    await run(deliver, server, "m")
    raw = await Raw.open(server)
    await raw.login()
    lines = await raw.command("a", "SELECT INBOX (CONDSTORE)")
    assert any(b"[HIGHESTMODSEQ " in line for line in lines)
    fetched = await raw.command("b", "FETCH 1 (MODSEQ)")
    assert re.match(rb"\* 1 FETCH \(MODSEQ \(\d+\)\)", fetched[0])
    stored = await raw.command("c", "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)")
    assert stored[-1].startswith(b"c OK [MODIFIED 1]")
    raw.close()


async def test_compress_deflate_keeps_the_conversation_going(server: RunningServer) -> None:
    import zlib

    raw = await Raw.open(server)
    await raw.login()
    assert (await raw.command("a", "COMPRESS DEFLATE"))[-1].startswith(b"a OK")
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    decompressor = zlib.decompressobj(-15)
    await raw.send(compressor.compress(b"b NOOP\r\n") + compressor.flush(zlib.Z_SYNC_FLUSH))
    data = b""
    while b"b OK" not in data:
        data += decompressor.decompress(await asyncio.wait_for(raw.reader.read(4096), 10))
    raw.close()


async def test_search_esearch_searchres_sort_and_thread(server: RunningServer) -> None:
    for subject in ("apple pie", "banana split", "Re: apple pie"):
        await run(deliver, server, subject)
    raw = await Raw.open(server)
    await raw.login()
    await raw.command("s", "SELECT INBOX")
    await raw.command("f", "STORE 2 +FLAGS (\\Flagged)")
    assert (await raw.command("a", "SEARCH SUBJECT apple"))[0] == b"* SEARCH 1 3\r\n"
    assert (await raw.command("b", "UID SEARCH FLAGGED"))[0] == b"* SEARCH 2\r\n"
    assert (await raw.command("c", "SEARCH NOT FLAGGED BODY banana"))[0] == b"* SEARCH\r\n"
    assert (await raw.command("d", "SEARCH OR FLAGGED BODY pie"))[0] == b"* SEARCH 1 2 3\r\n"
    esearch = await raw.command("e", "SEARCH RETURN (MIN MAX COUNT) UNFLAGGED")
    assert esearch[0] == b'* ESEARCH (TAG "e") MIN 1 MAX 3 COUNT 2\r\n'
    assert (await raw.command("g", "SEARCH RETURN (SAVE) SUBJECT banana"))[0].startswith(b"g OK")
    fetched = await raw.command("h", "FETCH $ (UID)")
    assert fetched[0] == b"* 2 FETCH (UID 2)\r\n"
    assert (await raw.command("i", "SORT (REVERSE SUBJECT) UTF-8 ALL"))[0] == b"* SORT 2 1 3\r\n"
    assert (await raw.command("j", "THREAD ORDEREDSUBJECT UTF-8 ALL"))[0] == b"* THREAD (1 3)(2)\r\n"
    assert (await raw.command("k", "SEARCH CHARSET KOI8-Q ALL"))[-1].startswith(b"k NO [BADCHARSET")
    raw.close()


async def test_flag_only_fetches_match_the_full_path_in_any_item_order(server: RunningServer) -> None:
    for subject in ("a", "b", "c", "d"):
        await run(deliver, server, subject)
    raw = await Raw.open(server)
    await raw.login()
    await raw.command("s", "SELECT INBOX (CONDSTORE)")
    await raw.command("f", "STORE 2,4 +FLAGS.SILENT (\\Seen $Work)")
    # ENVELOPE forces the general path; the same items without it take the flag-row path.
    slow = await raw.command("a", "FETCH 1:4 (RFC822.SIZE INTERNALDATE FLAGS MODSEQ UID ENVELOPE)")
    fast = await raw.command("b", "FETCH 1:4 (RFC822.SIZE INTERNALDATE FLAGS MODSEQ UID)")
    assert len(slow) == len(fast) == 5
    for full, quick in zip(slow[:-1], fast[:-1], strict=True):
        assert quick == full[: full.index(b" ENVELOPE (")] + b")\r\n"
    reordered = await raw.command("c", "FETCH 2,4 (FLAGS UID)")
    # The session selected the mailbox first, so the messages are \Recent in it (RFC 3501 §2.3.2).
    assert reordered[0] == b"* 2 FETCH (FLAGS (\\Seen \\Recent $Work) UID 2)\r\n"
    assert reordered[1] == b"* 4 FETCH (FLAGS (\\Seen \\Recent $Work) UID 4)\r\n"
    raw.close()


async def test_flag_only_fetch_keeps_the_sessions_numbers_while_others_change_the_mailbox(
    server: RunningServer,
) -> None:
    for subject in ("a", "b", "c"):
        await run(deliver, server, subject)
    first, other = await selected_sessions(server)
    await other.command("a", "STORE 2 +FLAGS.SILENT (\\Deleted)")
    await other.command("b", "EXPUNGE")
    await run(deliver, server, "d")
    lines = await first.command("c", "UID FETCH 1:* (FLAGS)")
    fetches = [line for line in lines if line.startswith(b"* ") and b" FETCH " in line]
    # The numbers are those the client knows: the expunge and the new message are announced after.
    # `first` selected the mailbox before `other`, so the messages are \Recent in it alone.
    assert fetches == [b"* 1 FETCH (UID 1 FLAGS (\\Recent))\r\n", b"* 3 FETCH (UID 3 FLAGS (\\Recent))\r\n"]
    assert lines[2:4] == [b"* 2 EXPUNGE\r\n", b"* 3 EXISTS\r\n"]
    assert lines[-1].startswith(b"c OK")
    first.close()
    other.close()


async def _fill(server: RunningServer, count: int, padding: int = 0) -> int:
    """`count` messages (with `padding` more body bytes each) appended to alice's INBOX in one store call;
    returns the mailbox id."""
    from kittiwake.mail.structure import parse_structure
    from kittiwake.mail.structure_codec import dump_structure
    from kittiwake.store.models import IncomingMessage

    store = server.store
    account = await store.get_account("alice@example.org")
    inbox = await store.get_mailbox(account.id, "INBOX")
    messages = []
    for n in range(count):
        body = b"Subject: m%d\r\n\r\nbody\r\n" % n + b"x" * padding + b"\r\n"
        messages.append(
            IncomingMessage(
                blob=await store.save_blob(body), size=len(body), internal_date=1_700_000_000,
                structure=dump_structure(parse_structure(body)),
            )
        )  # fmt: skip
    await store.append(inbox.id, messages)
    return int(inbox.id)


async def test_large_flag_fetches_answer_as_the_row_path_does(server: RunningServer) -> None:
    await _fill(server, 1200)
    raw, other = await selected_sessions(server)
    await raw.command("a", "STORE 3,700 +FLAGS.SILENT (\\Seen)")
    await raw.command("b", "STORE 5,1100 +FLAGS.SILENT ($Work \\Flagged)")
    # Fewer than 1,000 messages at a time take the row path; all 1,200 take the snapshot.
    by_rows = (await raw.command("c", "FETCH 1:600 (UID FLAGS)"))[:-1]
    by_rows += (await raw.command("d", "FETCH 601:1200 (UID FLAGS)"))[:-1]
    assert (await raw.command("e", "FETCH 1:* (UID FLAGS)"))[:-1] == by_rows
    # `raw` selected the mailbox first: every message is \Recent in it (RFC 3501 §2.3.2), on both paths.
    assert by_rows[1099] == b"* 1100 FETCH (UID 1100 FLAGS (\\Flagged \\Recent $Work))\r\n"
    # A change by another session makes the next answer new, for that session as for this one.
    await other.command("f", "STORE 1200 +FLAGS.SILENT (\\Answered)")
    again = await raw.command("g", "FETCH 1:* (FLAGS UID)")
    assert again[1199] == b"* 1200 FETCH (FLAGS (\\Answered \\Recent) UID 1200)\r\n"
    # An expunge this session has not been told of yet: the numbers stay the ones it knows.
    await other.command("h", "STORE 2 +FLAGS.SILENT (\\Deleted)")
    await other.command("i", "EXPUNGE")
    during = await raw.command("j", "FETCH 1:* (UID FLAGS)")
    assert during[1] == b"* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))\r\n"
    assert len(during) == 1200  # 1,199 messages and the tagged OK: no EXPUNGE during FETCH (RFC 9051 §7.5.1)
    assert (await raw.command("k", "NOOP"))[0] == b"* 2 EXPUNGE\r\n"
    raw.close()
    other.close()


async def test_a_fetch_racing_an_expunge_never_cuts_a_literal_short(tmp_path: Path) -> None:
    # Messages in files (inline_max is small), streamed in chunks; enough of them that the server is still
    # writing the FETCH response, blocked on the reader, when the other session's EXPUNGE commits.
    count, padding = 40, 500_000
    async with running_server(tmp_path, {"storage.inline_max": 1000}) as server:
        await _fill(server, count, padding)
        fetcher, expunger = await selected_sessions(server)
        await fetcher.send(b"f UID FETCH 1:* (BODY.PEEK[])\r\n")
        first = await fetcher.line()
        await expunger.command("a", "STORE 1:* +FLAGS.SILENT (\\Deleted)")
        await expunger.command("b", "EXPUNGE")
        bodies, line = [], first
        while not line.startswith(b"f "):
            if match := re.search(rb"\{(\d+)\}\r\n$", line):
                bodies.append(await asyncio.wait_for(fetcher.reader.readexactly(int(match[1])), 10))
            line = await fetcher.line()
        # Every literal that was started arrived whole; messages already gone are left out and the
        # command says so (RFC 2180 §4.1, RFC 5530).
        whole = {b"Subject: m%d\r\n\r\nbody\r\n" % n + b"x" * padding + b"\r\n" for n in range(count)}
        assert bodies and all(body in whole for body in bodies)
        assert line.startswith((b"f OK", b"f NO [EXPUNGEISSUED]")), line
        fetcher.close()
        expunger.close()


async def test_a_store_never_leaves_another_sessions_older_flags_to_follow_it(server: RunningServer) -> None:
    await run(deliver, server, "m")
    first, other = await selected_sessions(server)
    await first.command("c", "SELECT INBOX (CONDSTORE)")
    await first.command("s", "STORE 1 +FLAGS.SILENT (\\Seen \\Flagged)")
    await other.command("a", "STORE 1 +FLAGS.SILENT (\\Answered)")
    lines = await first.command("b", "STORE 1 -FLAGS.SILENT (\\Seen)")
    fetches = [line for line in lines if b" FETCH " in line]
    # One FETCH with the flags as they now are (the other session's \Answered included) and the newest MODSEQ.
    assert len(fetches) == 1 and fetches[0].startswith(b"* 1 FETCH (FLAGS (\\Answered \\Flagged) MODSEQ ("), (
        lines
    )
    assert not [line for line in await first.command("d", "NOOP") if b" FETCH " in line]
    first.close()
    other.close()


async def test_keywords_in_use_are_listed_in_flags_before_any_fetch_shows_them(server: RunningServer) -> None:
    await run(deliver, server, "m")
    first, other = await selected_sessions(server)
    stored = await first.command("a", "STORE 1 +FLAGS ($Work)")
    # RFC 9051 §7.3.5: the new keyword is announced in FLAGS (and PERMANENTFLAGS) before the FETCH.
    assert stored[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n"
    assert stored[1].startswith(
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)]"
    )
    assert stored[2] == b"* 1 FETCH (FLAGS (\\Recent $Work))\r\n"  # `first` selected first: \Recent there
    told = await other.command("b", "NOOP")
    assert told[0].startswith(b"* FLAGS (") and b"$Work" in told[0]
    assert told[2] == b"* 1 FETCH (UID 1 FLAGS ($Work))\r\n"
    assert not [line for line in await other.command("c", "NOOP") if line.startswith(b"* FLAGS")]
    third = await Raw.open(server)
    await third.login()
    selected = await third.command("s", "SELECT INBOX")
    assert selected[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n"
    for session in (first, other, third):
        session.close()


async def test_condstore_reports_min_and_max_modseq_and_highestmodseq_when_first_enabled(
    server: RunningServer,
) -> None:
    for subject in ("a", "b", "c"):
        await run(deliver, server, subject)
    (raw,) = await selected_sessions(server, 1)
    # RFC 7162 §3.1: the first CONDSTORE-enabling command while selected reports HIGHESTMODSEQ.
    first = await raw.command("a", "FETCH 1 (MODSEQ)")
    assert any(line.startswith(b"* OK [HIGHESTMODSEQ ") for line in first), first
    assert not any(b"HIGHESTMODSEQ" in line for line in await raw.command("b", "FETCH 1 (MODSEQ)"))
    await raw.command("c", "STORE 3 +FLAGS.SILENT (\\Seen)")
    modseqs = {}
    for line in await raw.command("d", "FETCH 1:3 (MODSEQ)"):
        if match := re.match(rb"\* (\d) FETCH \(MODSEQ \((\d+)\)\)", line):
            modseqs[int(match[1])] = int(match[2])
    assert modseqs[3] > modseqs[1]
    # RFC 7162 §3.1.5: with MIN alone (or MAX alone), MODSEQ is that message's.
    lowest = await raw.command("e", "SEARCH RETURN (MIN) 1:3 MODSEQ 1")
    assert lowest[0] == b'* ESEARCH (TAG "e") MIN 1 MODSEQ %d\r\n' % modseqs[1]
    highest = await raw.command("f", "SEARCH RETURN (MAX) 1:3 MODSEQ 1")
    assert highest[0] == b'* ESEARCH (TAG "f") MAX 3 MODSEQ %d\r\n' % modseqs[3]
    raw.close()
