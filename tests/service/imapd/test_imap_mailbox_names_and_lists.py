"""LIST, LSUB and mailbox names over a real TLS socket: RFC 3501 §6.3.9 LSUB "%", RFC 5258 RECURSIVEMATCH and
CHILDINFO, \\NonExistent subscriptions, and modified UTF-7 names refused with NO."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.service.imapd.test_imap_service import Raw
from tests.service.server_harness import RunningServer, running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path) as running:
        yield running


@pytest.fixture
async def raw(server: RunningServer) -> AsyncIterator[Raw]:
    session = await Raw.open(server)
    await session.login()
    yield session
    session.close()


async def ok(raw: Raw, *commands: str) -> None:
    for number, command in enumerate(commands):
        lines = await raw.command(f"p{number}", command)
        assert lines[-1].startswith(f"p{number} OK".encode()), lines


async def test_lsub_percent_returns_an_unsubscribed_parent_as_noselect(raw: Raw) -> None:
    await ok(raw, "CREATE foo/bar", "SUBSCRIBE foo/bar")
    top = await raw.command("a", 'LSUB "" %')
    assert b'* LSUB (\\Noselect) "/" foo\r\n' in top
    assert not any(b"foo/bar" in line for line in top)
    everything = await raw.command("b", 'LSUB "" *')
    assert b'* LSUB () "/" foo/bar\r\n' in everything
    assert not any(line.endswith(b'"/" foo\r\n') for line in everything)
    await ok(raw, "SUBSCRIBE foo")
    assert b'* LSUB () "/" foo\r\n' in await raw.command("c", 'LSUB "" %')


async def test_lsub_keeps_listing_a_subscription_whose_mailbox_was_deleted(raw: Raw) -> None:
    await ok(raw, "CREATE Gone", "SUBSCRIBE Gone", "DELETE Gone")
    assert await raw.command("a", 'LSUB "" Gone') == [b'* LSUB () "/" Gone\r\n', b"a OK LSUB completed\r\n"]


async def test_list_subscribed_recursivematch_returns_a_parent_with_childinfo(raw: Raw) -> None:
    # RFC 5258 §5 example 8.
    await ok(raw, "CREATE Foo/Bar", "CREATE Foo/Baz", "CREATE Moo", "SUBSCRIBE Foo/Baz")
    plain = await raw.command("a", 'LIST (SUBSCRIBED) "" %')
    assert not any(b"Foo" in line or b"Moo" in line for line in plain)
    recursive = await raw.command("b", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
    assert b'* LIST (\\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n' in recursive
    assert not any(b"Moo" in line or b"Foo/Baz" in line for line in recursive)
    await ok(raw, "SUBSCRIBE Foo")
    subscribed_too = await raw.command("c", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (CHILDREN)')
    assert b'* LIST (\\HasChildren \\Subscribed) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n' in subscribed_too


async def test_a_subscribed_name_whose_mailbox_is_gone_is_listed_nonexistent(raw: Raw) -> None:
    # RFC 5258 §5 examples 2 and 8 A2: subscriptions outlive their mailboxes.
    await ok(raw, "CREATE Fruit/Peach", "SUBSCRIBE Fruit/Peach", "DELETE Fruit/Peach")
    subscribed = await raw.command("a", 'LIST (SUBSCRIBED) "" Fruit/*')
    assert subscribed[0] == b'* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" Fruit/Peach\r\n'
    assert not any(b"Peach" in line for line in await raw.command("b", 'LIST "" *'))
    parent = await raw.command("c", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" Fruit')
    assert parent[0] == b'* LIST (\\HasNoChildren) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    await ok(raw, "DELETE Fruit")
    gone = await raw.command("d", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
    assert b'* LIST (\\NonExistent \\HasNoChildren) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))\r\n' in gone


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("CREATE &Jjo", b"a NO [CANNOT] Invalid mailbox name: "),
        ("CREATE &AGE-", b"a NO [CANNOT] Invalid mailbox name: "),
        ("RENAME Archive &Jjo", b"a NO [CANNOT] Invalid mailbox name: "),
        ("SELECT &Jjo", b"a NO Invalid mailbox name: "),
        ("STATUS &AGE- (MESSAGES)", b"a NO Invalid mailbox name: "),
        ("DELETE R&D", b"a NO Invalid mailbox name: "),
        ("SUBSCRIBE &Jjo", b"a NO Invalid mailbox name: "),
    ],
)
async def test_an_invalid_modified_utf7_name_gets_no_not_bad(raw: Raw, command: str, answer: bytes) -> None:
    # RFC 3501 §5.1.3: the command is well formed; the name is just not one the server can accept.
    lines = await raw.command("a", command)
    assert lines[-1].startswith(answer), lines
    assert (await raw.command("b", "NOOP"))[-1].startswith(b"b OK")


async def test_a_refused_select_closes_the_selected_mailbox(raw: Raw) -> None:
    await ok(raw, "SELECT INBOX")
    lines = await raw.command("a", "SELECT &Jjo")
    assert lines[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"
    assert lines[1].startswith(b"a NO Invalid mailbox name: ")
    assert (await raw.command("b", "FETCH 1 FLAGS"))[-1].startswith(b"b BAD")  # no mailbox is selected


async def test_an_invalid_name_does_not_hide_a_grammar_error(raw: Raw) -> None:
    assert (await raw.command("a", "STATUS &Jjo (NOSUCHITEM)"))[-1].startswith(b"a BAD")


async def test_an_invalid_name_before_login_is_still_not_allowed(server: RunningServer) -> None:
    raw = await Raw.open(server)
    assert (await raw.command("a", "SELECT &Jjo"))[-1].startswith(b"a BAD")
    raw.close()


async def test_utf8_accept_sessions_take_ampersand_names_as_they_are(server: RunningServer, raw: Raw) -> None:
    # RFC 6855 §3: with UTF8=ACCEPT, names are UTF-8 and "&" is just a character.
    await ok(raw, "ENABLE UTF8=ACCEPT", 'CREATE "&Jjo"')
    listed = await raw.command("a", 'LIST "" "&Jjo"')
    assert listed[0] == b'* LIST (\\HasNoChildren) "/" &Jjo\r\n'
    other = await Raw.open(server)
    await other.login()
    assert (await other.command("b", 'LIST "" &-Jjo'))[0] == b'* LIST (\\HasNoChildren) "/" &-Jjo\r\n'
    other.close()
