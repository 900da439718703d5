"""The SMTP service driven by third-party clients: swaks (Debian) and aiosmtplib (PyPI).

Each test sends a message with a real client and checks that the bytes the client put on the wire arrive in
the recipient's INBOX unchanged, after the trace headers the server prepends.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import pytest

from tests.service.server_harness import PASSWORD, RunningServer, running_server

SWAKS = "/usr/bin/swaks"

# A line that starts with a dot exercises dot-stuffing on the client and unstuffing on the server
# (RFC 5321 §4.5.2); the 8-bit line exercises 8BITMIME.
MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: swaks and friends\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"First line.\r\n"
    b".A line that starts with a dot.\r\n"
    b"..Two dots.\r\n"
    b"Gr\xc3\xbc\xc3\x9fe.\r\n"
    b"Last line."
)
# swaks ends the DATA with CRLF "." CRLF, so the last line of the file gains its CRLF on the wire.
DELIVERED = MESSAGE + b"\r\n"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "server") as running:
        yield running


def trace_prefix(stored: bytes, message: bytes) -> bytes:
    """The header lines the server put in front of the message, which must itself be unchanged."""
    assert stored.endswith(message), stored
    return stored[: len(stored) - len(message)]


async def swaks(server: RunningServer, tmp_path: Path, *arguments: str) -> str:
    """Run swaks with MESSAGE as its DATA and return its transcript; fail on a non-zero exit."""
    data = tmp_path / "message.eml"
    data.write_bytes(MESSAGE)
    command = [
        SWAKS,
        "--server",
        "127.0.0.1",
        "--data",
        f"@{data}",
        "--ehlo",
        "laptop.example.net",
        "--timeout",
        "20",
        *arguments,
    ]
    result = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=60, check=False)
    transcript = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
    assert result.returncode == 0, transcript
    return transcript


def tls_arguments(server: RunningServer) -> list[str]:
    return ["--tls-verify", "--tls-ca-path", str(server.ca_file), "--tls-sni", "localhost"]


def auth_arguments(mechanism: str) -> list[str]:
    return ["--auth", mechanism, "--auth-user", "alice@example.org", "--auth-password", PASSWORD]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_swaks_starttls_and_auth_on_submission_deliver_the_message_unchanged(
    server: RunningServer, tmp_path: Path, mechanism: str
) -> None:
    transcript = await swaks(
        server,
        tmp_path,
        "--port",
        str(server.ports["submission"]),
        "--tls",
        *tls_arguments(server),
        *auth_arguments(mechanism),
        "--from",
        "alice@example.org",
        "--to",
        "bob@example.org",
    )
    assert "235 2.7.0" in transcript
    (stored,) = await server.stored_messages("bob")
    prefix = trace_prefix(stored, DELIVERED)
    assert b"with ESMTPSA" in prefix


async def test_swaks_implicit_tls_on_submissions_delivers_the_message_unchanged(
    server: RunningServer, tmp_path: Path
) -> None:
    transcript = await swaks(
        server,
        tmp_path,
        "--port",
        str(server.ports["submissions"]),
        "--tls-on-connect",
        *tls_arguments(server),
        *auth_arguments("PLAIN"),
        "--from",
        "alice@example.org",
        "--to",
        "bob@example.org",
    )
    assert "STARTTLS" not in transcript.split("EHLO", 1)[1]
    (stored,) = await server.stored_messages("bob")
    assert b"with ESMTPSA" in trace_prefix(stored, DELIVERED)


async def test_swaks_plain_mx_delivery_to_a_local_user(server: RunningServer, tmp_path: Path) -> None:
    await swaks(
        server,
        tmp_path,
        "--port",
        str(server.ports["smtp"]),
        "--from",
        "someone@elsewhere.net",
        "--to",
        "alice@example.org",
    )
    (stored,) = await server.stored_messages("alice")
    prefix = trace_prefix(stored, DELIVERED)
    assert prefix.startswith(
        b"Return-Path: <someone@elsewhere.net>\r\nAuthentication-Results: mail.example.org;"
    )
    assert b"\r\nReceived: from laptop.example.net" in prefix


async def test_swaks_pipelined_session_with_several_recipients(server: RunningServer, tmp_path: Path) -> None:
    # RFC 2920 §3.1: MAIL, RCPT and DATA go out as one group and the replies come back in order.
    transcript = await swaks(
        server,
        tmp_path,
        "--port",
        str(server.ports["smtp"]),
        "--pipeline",
        "--from",
        "someone@elsewhere.net",
        "--to",
        "alice@example.org,bob@example.org",
    )
    lines = [line.strip() for line in transcript.splitlines()]
    sent = lines.index("-> MAIL FROM:<someone@elsewhere.net>")
    assert lines[sent + 1 : sent + 4] == [
        "-> RCPT TO:<alice@example.org>",
        "-> RCPT TO:<bob@example.org>",
        "-> DATA",
    ]
    for user in ("alice", "bob"):
        (stored,) = await server.stored_messages(user)
        trace_prefix(stored, DELIVERED)


async def test_swaks_pipelined_group_with_refused_recipients_delivers_to_the_accepted_one(
    server: RunningServer, tmp_path: Path
) -> None:
    # RFC 2920 §3.1: each RCPT in the group gets its own reply; DATA goes ahead if any recipient was accepted.
    transcript = await swaks(
        server,
        tmp_path,
        "--port",
        str(server.ports["smtp"]),
        "--pipeline",
        "--from",
        "someone@elsewhere.net",
        "--to",
        "nobody@example.org,alice@example.org,victim@elsewhere.net",
    )
    lines = [line.strip() for line in transcript.splitlines()]
    after_group = lines[lines.index("-> DATA") + 1 :]
    replies = [line.split()[1] for line in after_group if line.startswith(("<-", "<**"))]
    assert replies[:5] == ["250", "550", "250", "554", "354"]
    (stored,) = await server.stored_messages("alice")
    trace_prefix(stored, DELIVERED)
    assert await server.store.count_queued() == 0


async def test_swaks_pipelined_starttls_submission(server: RunningServer, tmp_path: Path) -> None:
    await swaks(
        server,
        tmp_path,
        "--port",
        str(server.ports["submission"]),
        "--pipeline",
        "--tls",
        *tls_arguments(server),
        *auth_arguments("PLAIN"),
        "--from",
        "alice@example.org",
        "--to",
        "bob@example.org",
    )
    (stored,) = await server.stored_messages("bob")
    trace_prefix(stored, DELIVERED)


async def test_aiosmtplib_starttls_auth_and_send_on_submission(server: RunningServer) -> None:
    message = MESSAGE + b"\r\n"
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=server.ports["submission"],
        tls_context=server.client_tls,
        start_tls=False,
        timeout=20,
    )
    async with client:
        await client.ehlo(hostname="laptop.example.net")
        assert not client.supports_extension("auth")
        await client.starttls(tls_context=server.client_tls, server_hostname="localhost")
        await client.ehlo(hostname="laptop.example.net")
        assert "plain" in client.server_auth_methods
        await client.login("alice@example.org", PASSWORD)
        errors, reply = await client.sendmail("alice@example.org", ["bob@example.org"], message)
    assert errors == {}
    assert reply.startswith("2.0.0")
    (stored,) = await server.stored_messages("bob")
    assert b"with ESMTPSA" in trace_prefix(stored, message)


async def test_aiosmtplib_implicit_tls_on_submissions(server: RunningServer) -> None:
    message = MESSAGE + b"\r\n"
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=server.ports["submissions"], use_tls=True, tls_context=server.client_tls
    )
    async with client:
        await client.login("alice@example.org", PASSWORD)
        errors, _ = await client.sendmail("alice@example.org", ["bob@example.org"], message)
    assert errors == {}
    (stored,) = await server.stored_messages("bob")
    assert b"with ESMTPSA" in trace_prefix(stored, message)


async def test_aiosmtplib_mx_delivery_with_smtputf8_address(server: RunningServer) -> None:
    message = "From: zoë@elsewhere.net\r\nTo: alice@example.org\r\nSubject: Grüße\r\n\r\nHallo.\r\n".encode()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.ports["smtp"], start_tls=False, timeout=20)
    async with client:
        await client.ehlo(hostname="relay.elsewhere.net")
        assert client.supports_extension("smtputf8")
        errors, _ = await client.sendmail(
            "zoë@elsewhere.net", ["alice@example.org"], message, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
    assert errors == {}
    (stored,) = await server.stored_messages("alice")
    assert trace_prefix(stored, message).startswith(b"Return-Path: <zo\xc3\xab@elsewhere.net>\r\n")
