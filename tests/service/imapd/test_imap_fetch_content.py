"""FETCH of message content over real sockets: NUL octets in literals (RFC 3501 §4.3.1, RFC 9051 §4.3.1) and
BINARY of sections that hold other parts (RFC 3516 §4.2), checked byte for byte."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kittiwake.mail.structure import parse_structure
from kittiwake.mail.structure_codec import dump_structure
from kittiwake.store.models import IncomingMessage
from tests.service.imapd.test_imap_service import Raw
from tests.service.server_harness import RunningServer, running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path) as running:
        yield running


async def append(server: RunningServer, message: bytes) -> None:
    """Put `message` in alice's INBOX as it is, NUL octets and all (no SMTP or APPEND literal in between)."""
    store = server.store
    account = await store.get_account("alice@example.org")
    inbox = await store.get_mailbox(account.id, "INBOX")
    incoming = IncomingMessage(
        blob=await store.save_blob(message),
        size=len(message),
        internal_date=1_700_000_000,
        structure=dump_structure(parse_structure(message)),
    )
    await store.append(inbox.id, [incoming])


async def selected(server: RunningServer) -> Raw:
    raw = await Raw.open(server)
    await raw.login()
    await raw.command("s", "SELECT INBOX")
    return raw


async def fetch(raw: Raw, tag: str, command: str) -> tuple[list[bytes], list[tuple[bytes, bytes]]]:
    """Send `command` and read up to its tagged answer, each literal read exactly. Returns the lines and,
    for each literal in order, its marker (b"~" for a literal8, b"" for a plain literal) and its octets."""
    await raw.send(f"{tag} {command}\r\n".encode())
    lines: list[bytes] = []
    literals: list[tuple[bytes, bytes]] = []
    while True:
        line = await raw.line()
        lines.append(line)
        if match := re.search(rb"(~?)\{(\d+)\}\r\n$", line):
            literals.append((match[1], await asyncio.wait_for(raw.reader.readexactly(int(match[2])), 10)))
        elif line.startswith(tag.encode() + b" "):
            return lines, literals


def nul_free(data: bytes) -> bytes:
    return data.replace(b"\x00", b"\x80")


NUL_HEADER = (
    b"Subject: nul\r\n"
    b"X-Nul: a\x00b\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"\r\n"
)
NUL_BODY = b"before\x00after\x00\r\nend\r\n"
NUL_MESSAGE = NUL_HEADER + NUL_BODY


async def test_sections_holding_nul_go_in_plain_literals_with_0x80_in_place_of_nul(
    server: RunningServer,
) -> None:
    await append(server, NUL_MESSAGE)
    raw = await selected(server)
    items = "BODY.PEEK[] BODY.PEEK[TEXT] BODY.PEEK[1] RFC822.HEADER BODY.PEEK[HEADER.FIELDS (X-Nul)] RFC822"
    lines, literals = await fetch(raw, "f", f"FETCH 1 ({items})")
    assert lines[-1].startswith(b"f OK")
    assert literals == [
        (b"", nul_free(NUL_MESSAGE)),
        (b"", nul_free(NUL_BODY)),
        (b"", nul_free(NUL_BODY)),
        (b"", nul_free(NUL_HEADER)),
        (b"", b"X-Nul: a\x80b\r\n\r\n"),
        (b"", nul_free(NUL_MESSAGE)),
    ]
    raw.close()


@pytest.mark.parametrize(("offset", "length"), [(0, 30), (75, 12), (140, 100), (200, 5)])
async def test_partial_fetch_across_nul_keeps_its_origin_and_length(
    server: RunningServer, offset: int, length: int
) -> None:
    await append(server, NUL_MESSAGE)
    raw = await selected(server)
    lines, literals = await fetch(raw, "f", f"FETCH 1 BODY.PEEK[]<{offset}.{length}>")
    expected = NUL_MESSAGE[offset : offset + length]
    assert lines[0] == b"* 1 FETCH (BODY[]<%d> {%d}\r\n" % (offset, len(expected))
    assert literals == [(b"", nul_free(expected))]
    raw.close()


async def test_binary_sends_nul_exactly_in_a_literal8(server: RunningServer) -> None:
    await append(server, NUL_MESSAGE)
    raw = await selected(server)
    lines, literals = await fetch(raw, "f", "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[1]<0.6>)")
    # RFC 3516 §4.3: NUL only in a literal8, and a plain literal when the octets sent hold none.
    assert literals == [(b"~", NUL_BODY), (b"", b"before")]
    assert b"BINARY.SIZE[1] %d" % len(NUL_BODY) in b"".join(lines)
    raw.close()


async def test_a_message_in_a_file_is_streamed_with_every_nul_replaced(tmp_path: Path) -> None:
    # Stored as a file (inline_max is small), read in 64 KiB chunks: NUL octets sit at chunk edges too.
    body = bytearray(b"x" * 300_000)
    for position in (0, 65_535, 65_536, 131_071, 131_072, 299_999):
        body[position] = 0
    message = NUL_HEADER + bytes(body)
    async with running_server(tmp_path, {"storage.inline_max": 1000}) as server:
        await append(server, message)
        raw = await selected(server)
        _, literals = await fetch(raw, "f", "FETCH 1 (BODY.PEEK[] BINARY.PEEK[1])")
        assert literals == [(b"", nul_free(message)), (b"~", bytes(body))]
        raw.close()


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


INNER_MESSAGE = (
    b"From: carol@example.com\r\n"
    b"Subject: inner\r\n"
    b'Content-Type: multipart/mixed; boundary="in"\r\n'
    b"\r\n"
    b"--in\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"inner text\r\n"
    b"--in\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + _base64(b"\x89PNG image bytes") + b"--in--"
)
ALTERNATIVE = (
    b"--alt\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
    b"--alt\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
    b"--alt--"
)
MIME_MESSAGE = (
    b"From: alice@example.org\r\n"
    b"Subject: parts\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="out"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--out\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"caf=C3=A9\r\n"
    b"--out\r\n"
    b'Content-Type: multipart/alternative; boundary="alt"\r\n'
    b"\r\n" + ALTERNATIVE + b"\r\n"
    b"--out\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n" + INNER_MESSAGE + b"\r\n"
    b"--out\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + _base64(b"\x00\x01\x02") + b"--out--\r\n"
    b"epilogue\r\n"
)
# The same message with each base64 and quoted-printable body decoded and its header saying so, which is
# what Dovecot answers for BINARY[] of it.
DECODED_INNER = (
    INNER_MESSAGE[: INNER_MESSAGE.index(b"Content-Transfer-Encoding: base64")]
    + b"Content-Transfer-Encoding: binary\r\n\r\n\x89PNG image bytes\r\n--in--"
)
DECODED_MESSAGE = (
    MIME_MESSAGE[: MIME_MESSAGE.index(b"Content-Transfer-Encoding: quoted-printable")]
    + b"Content-Transfer-Encoding: binary\r\n\r\ncaf\xc3\xa9\r\n"
    + b"--out\r\n"
    + b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
    + ALTERNATIVE
    + b"\r\n--out\r\nContent-Type: message/rfc822\r\n\r\n"
    + DECODED_INNER
    + b"\r\n--out\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    + b"\x00\x01\x02\r\n--out--\r\nepilogue\r\n"
)


async def test_binary_of_the_whole_message_decodes_every_part_inside_it(server: RunningServer) -> None:
    await append(server, MIME_MESSAGE)
    raw = await selected(server)
    lines, literals = await fetch(raw, "f", "FETCH 1 (BINARY.PEEK[] BINARY.SIZE[])")
    assert lines[-1].startswith(b"f OK")
    assert literals == [(b"~", DECODED_MESSAGE)]  # part 4 decodes to NUL: a literal8
    assert lines[-2] == b" BINARY.SIZE[] %d)\r\n" % len(DECODED_MESSAGE)
    raw.close()


async def test_binary_of_a_multipart_part_with_nothing_encoded_is_its_body(server: RunningServer) -> None:
    await append(server, MIME_MESSAGE)
    raw = await selected(server)
    lines, literals = await fetch(raw, "f", "FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[2])")
    assert literals == [(b"", ALTERNATIVE), (b"", ALTERNATIVE)]
    assert b" BINARY.SIZE[2] %d " % len(ALTERNATIVE) in b"".join(lines)
    raw.close()


async def test_binary_of_a_message_rfc822_part_is_the_message_with_its_parts_decoded(
    server: RunningServer,
) -> None:
    await append(server, MIME_MESSAGE)
    raw = await selected(server)
    lines, literals = await fetch(raw, "f", "FETCH 1 (BINARY.SIZE[3] BINARY.PEEK[3])")
    assert lines[0] == b"* 1 FETCH (BINARY.SIZE[3] %d BINARY[3] {%d}\r\n" % ((len(DECODED_INNER),) * 2)
    assert literals == [(b"", DECODED_INNER)]
    raw.close()


async def test_binary_partial_of_the_whole_message_counts_decoded_octets(server: RunningServer) -> None:
    await append(server, MIME_MESSAGE)
    raw = await selected(server)
    start = DECODED_MESSAGE.index(b"caf\xc3\xa9")
    _, literals = await fetch(raw, "f", f"FETCH 1 BINARY.PEEK[]<{start}.5>")
    assert literals == [(b"", b"caf\xc3\xa9")]
    raw.close()


async def test_binary_of_a_section_holding_a_part_it_cannot_decode_is_refused(server: RunningServer) -> None:
    part_4 = b"Content-Transfer-Encoding: base64\r\n\r\n" + _base64(b"\x00\x01\x02")
    message = MIME_MESSAGE.replace(part_4, b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n")
    assert message != MIME_MESSAGE
    await append(server, message)
    raw = await selected(server)
    # RFC 3516 §4.3: NO [UNKNOWN-CTE]; the parts that can be decoded still can.
    assert (await raw.command("a", "FETCH 1 BINARY.PEEK[]"))[-1].startswith(b"a NO [UNKNOWN-CTE]")
    assert (await raw.command("b", "FETCH 1 BINARY.SIZE[]"))[-1].startswith(b"b NO [UNKNOWN-CTE]")
    assert (await raw.command("c", "FETCH 1 BINARY.SIZE[3]"))[-1].startswith(b"c OK")
    raw.close()


async def test_binary_of_a_part_that_does_not_exist_is_empty(server: RunningServer) -> None:
    await append(server, MIME_MESSAGE)
    raw = await selected(server)
    lines, literals = await fetch(raw, "f", "FETCH 1 (BINARY.PEEK[9] BINARY.SIZE[9])")
    assert lines[-1].startswith(b"f OK")
    assert literals == [(b"", b"")]
    assert b" BINARY.SIZE[9] 0" in b"".join(lines)
    raw.close()
