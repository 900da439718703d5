"""SEARCH FROM/TO/CC/BCC over a real TLS socket with stdlib imaplib: display names, comments, encoded words
and addresses are all part of the field's contents (RFC 9051 §6.4.4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.service.imapd.test_imap_service import connect
from tests.service.server_harness import RunningServer, running_server

MESSAGES = [
    b'From: "Joe Q. Public" <john.q.public@example.com> (Work)\r\nTo: team@example.org\r\nSubject: 1\r\n\r\n.\r\n',
    b"From: john@example.com (John Smith)\r\nCc: Pete(A nice \\) chap) <pete(his account)@silly.test>\r\n"
    b"Subject: 2\r\n\r\n.\r\n",
    b"From: =?UTF-8?Q?J=C3=B6rg?= <j@example.com>\r\nBcc: =?UTF-8?B?RG9lLCBKb2hu?= <doe@x.test>\r\n"
    b"Subject: 3\r\n\r\n.\r\n",
    b'From: "Joe \\"Q\\" Public"\r\n <jqp@x.test>\r\nSubject: 4\r\n\r\n.\r\n',
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path) as running:

        def append() -> None:
            client = connect(running)
            for message in MESSAGES:
                assert client.append("INBOX", None, None, message)[0] == "OK"
            client.logout()

        await asyncio.to_thread(append)
        yield running


def search(server: RunningServer, *criteria: str, utf8: str | None = None) -> list[bytes]:
    client = connect(server)
    client.select("INBOX")
    if utf8 is not None:
        client.literal = utf8.encode()  # type: ignore[attr-defined]
        status, data = client.search("UTF-8", *criteria)
    else:
        status, data = client.search(None, *criteria)
    client.logout()
    assert status == "OK"
    return data[0].split()  # type: ignore[no-any-return, union-attr]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (("FROM", '"Smith"'), [b"2"]),  # a comment
        (("FROM", '"john@example.com"'), [b"2"]),
        (("FROM", '"Public"'), [b"1", b"4"]),  # a quoted display name, once folded over two lines
        (("FROM", '"Joe Q. Public <john.q.public@example.com>"'), [b"1"]),
        (("FROM", '"Joe \\"Q\\" Public <jqp@x.test>"'), [b"4"]),  # quoted-pairs undone
        (("FROM", '"Work"'), [b"1"]),
        (("CC", '"pete@silly.test"'), [b"2"]),  # comments inside the address left out
        (("BCC", '"Doe, John <doe@x.test>"'), [b"3"]),  # a base64 encoded word with a comma in it
        (("TO", '"team@example.org"'), [b"1"]),
        (("FROM", '"nobody"'), []),
        (("OR", "FROM", '"Smith"', "FROM", '"Work"'), [b"1", b"2"]),
    ],
)
async def test_address_keys_match_display_names_comments_and_addresses(
    server: RunningServer, criteria: tuple[str, ...], expected: list[bytes]
) -> None:
    assert await asyncio.to_thread(search, server, *criteria) == expected


@pytest.mark.parametrize("name", ["Jörg", "JÖRG", "jörg <j@example.com>"])
async def test_encoded_display_names_match_a_utf8_search_string(server: RunningServer, name: str) -> None:
    # RFC 2047 §5: encoded words in a display name are decoded before matching.
    assert await asyncio.to_thread(search, server, "FROM", utf8=name) == [b"3"]
