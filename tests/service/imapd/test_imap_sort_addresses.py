"""SORT by address and FETCH ENVELOPE of groups and commented addresses, read as Dovecot (and imaptest) do."""

from __future__ import annotations

import asyncio
import imaplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.service.imapd.test_imap_service import connect
from tests.service.server_harness import RunningServer, running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path) as running:
        yield running


def _append(client: imaplib.IMAP4_SSL, to: str, cc: str) -> None:
    message = f"From: a@x.test\r\nTo: {to}\r\nCc: {cc}\r\nSubject: s\r\n\r\nbody\r\n".encode()
    typ, _ = client.append("INBOX", None, None, message)
    assert typ == "OK"


def _sort_and_envelopes(server: RunningServer) -> tuple[list[bytes], list[bytes], list[bytes]]:
    client = connect(server)
    try:
        _append(client, "Zed <m@x.test>", "kim@x.test (Kim)")  # 1
        _append(client, "crew: b@x.test, c@x.test;", "lee: a@x.test;")  # 2: groups come first in the list
        _append(client, "=?UTF-8?Q?Al=C3=A9x?= <z@x.test>", "jo@x.test")  # 3
        _append(client, "no-name@x.test", "lee@x.test")  # 4
        client.select("INBOX")
        _, by_cc = client.sort("(CC)", "UTF-8", "ALL")
        _, by_display = client.sort("(DISPLAYTO)", "UTF-8", "ALL")
        _, envelopes = client.fetch("1", "(ENVELOPE)")
        return by_cc, by_display, [e for e in envelopes if isinstance(e, bytes)]
    finally:
        client.logout()


async def test_sort_takes_a_group_name_as_the_first_address_and_a_comment_as_no_display_name(
    server: RunningServer,
) -> None:
    by_cc, by_display, envelope = await asyncio.to_thread(_sort_and_envelopes, server)
    # RFC 5256 §3: the addr-mailbox of the first Cc entry: jo, kim, lee (group), lee (tie: by number).
    assert by_cc == [b"3 1 2 4"]
    # RFC 5957 §3: the decoded display name, else the group name, else the address, compared with the
    # i;ascii-casemap collation: "Aléx", "crew" (group), "no-name@x.test", "Zed".
    assert by_display == [b"3 2 4 1"]
    # An address with no display name is named by its comment, as Dovecot's ENVELOPE does.
    assert b'(("Kim" NIL "kim" "x.test"))' in envelope[0]
