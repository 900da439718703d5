"""The SMTP service over real sockets and TLS with stdlib smtplib: MX, submission, implicit TLS."""

from __future__ import annotations

import asyncio
import base64
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.service.server_harness import PASSWORD, RunningServer, running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path) as running:
        yield running


def unfolded(message: bytes) -> bytes:
    return message.replace(b"\r\n\t", b" ").replace(b"\r\n ", b" ")


def in_thread(function, *args):  # type: ignore[no-untyped-def]
    return asyncio.to_thread(function, *args)


MESSAGE = b"From: someone@elsewhere.net\r\nTo: alice@example.org\r\nSubject: hello\r\n\r\nHi Alice.\r\n"


async def test_mx_delivers_to_a_local_user_with_trace_headers(server: RunningServer) -> None:
    def send() -> None:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
            client.ehlo("client.elsewhere.net")
            assert client.has_extn("starttls") and not client.has_extn("auth")
            client.sendmail("someone@elsewhere.net", ["alice+news@example.org"], MESSAGE)

    await in_thread(send)
    (stored,) = await server.stored_messages("alice")
    assert stored.startswith(
        b"Return-Path: <someone@elsewhere.net>\r\nAuthentication-Results: mail.example.org;"
    )
    assert b"\r\nReceived: from client.elsewhere.net" in stored
    assert stored.endswith(MESSAGE)
    assert b"by mail.example.org with ESMTP" in unfolded(stored)


async def test_mx_with_starttls_records_the_tls_version(server: RunningServer) -> None:
    def send() -> None:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
            client.starttls(context=server.client_tls)
            client.sendmail("someone@elsewhere.net", ["bob@example.org"], MESSAGE)

    await in_thread(send)
    (stored,) = await server.stored_messages("bob")
    assert b"with ESMTPS" in unfolded(stored) and b"(using TLSv1.3 with cipher" in unfolded(stored)


async def test_mx_refuses_relay_and_unknown_users(server: RunningServer) -> None:
    def attempt(recipient: str) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
            client.ehlo("client.test")
            client.mail("someone@elsewhere.net")
            return client.docmd(f"RCPT TO:<{recipient}>")

    assert await in_thread(attempt, "victim@elsewhere.net") == (554, b"5.7.1 Relay access denied")
    assert (await in_thread(attempt, "nobody@example.org"))[0] == 550
    # The percent hack, a bang path and a source route through us: none of them may relay.
    tricks = (
        "victim%elsewhere.net@example.org",
        "elsewhere.net!victim@example.org",
        "@example.org:v@elsewhere.net",
    )
    for trick in tricks:
        code, _ = await in_thread(attempt, trick)
        assert code in (550, 554), trick


async def test_submission_needs_tls_then_auth_then_relays_into_the_queue(server: RunningServer) -> None:
    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", server.ports["submission"]) as client:
            client.ehlo("laptop")
            assert not client.has_extn("auth")  # no AUTH before TLS
            code, _ = client.mail("alice@example.org")
            assert code == 530
            client.starttls(context=server.client_tls)
            client.login("alice@example.org", PASSWORD)
            client.sendmail("alice@example.org", ["friend@elsewhere.net", "bob@example.org"], MESSAGE)
            return client.noop()

    assert (await in_thread(send))[0] == 250
    assert len(await server.stored_messages("bob")) == 1
    assert await server.store.count_queued() == 1


async def test_submission_refuses_a_sender_the_user_does_not_own(server: RunningServer) -> None:
    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", server.ports["submission"]) as client:
            client.starttls(context=server.client_tls)
            client.login("alice@example.org", PASSWORD)
            return client.mail("bob@example.org")

    assert await in_thread(send) == (553, b"5.7.1 Sender address not owned by the authenticated user")


async def test_submissions_is_implicit_tls_with_auth(server: RunningServer) -> None:
    def send() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], context=server.client_tls) as client:
            client.login("alice@example.org", PASSWORD)
            client.sendmail("alice+sent@example.org", ["bob@example.org"], MESSAGE)

    await in_thread(send)
    (stored,) = await server.stored_messages("bob")
    assert b"with ESMTPSA" in unfolded(stored)


async def test_wrong_password_is_refused(server: RunningServer) -> None:
    def login() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], context=server.client_tls) as client:
            client.login("alice@example.org", "wrong password")

    with pytest.raises(smtplib.SMTPAuthenticationError) as raised:
        await in_thread(login)
    assert raised.value.smtp_code == 535


async def test_plaintext_port_25_without_tls_still_never_offers_auth(server: RunningServer) -> None:
    def probe() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
            client.starttls(context=server.client_tls)
            client.ehlo("x")
            assert not client.has_extn("auth")
            return client.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHg=")

    assert (await in_thread(probe))[0] in (502, 503, 504)


async def test_binary_attachment_and_utf8_headers_are_stored_byte_identical(server: RunningServer) -> None:
    payload = bytes(range(256)) * 64
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    message = (
        (
            "From: Zoë <zoe@elsewhere.net>\r\nTo: alice@example.org\r\nSubject: Grüße ✓\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Hallo, schön.\r\n"
            "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + encoded
        + b"--b1--\r\n"
    )

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
            client.ehlo("x")
            assert client.has_extn("smtputf8")
            options = ["SMTPUTF8", "BODY=8BITMIME"]
            client.sendmail("zoë@elsewhere.net", ["alice@example.org"], message, mail_options=options)

    await in_thread(send)
    (stored,) = await server.stored_messages("alice")
    assert stored.endswith(message)
    assert b"Return-Path: <zo\xc3\xab@elsewhere.net>" in stored


async def test_large_message_streams_to_a_file_and_reads_back(server: RunningServer) -> None:
    body = b"".join(
        b"line %d of a large message, padded out to a decent length......\r\n" % i for i in range(40000)
    )
    message = b"From: someone@elsewhere.net\r\nSubject: big\r\n\r\n" + body

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
            client.sendmail("someone@elsewhere.net", ["alice@example.org"], message)

    await in_thread(send)
    (stored,) = await server.stored_messages("alice")
    assert stored.endswith(message)
    assert len(list(server.store.files.names())) == 1
    assert await server.store.verify() == []


async def test_too_many_connections_from_one_address_get_421(tmp_path: Path) -> None:
    async with running_server(tmp_path, {"smtp.max_connections_per_ip": 2}) as server:
        streams = [await asyncio.open_connection("127.0.0.1", server.ports["smtp"]) for _ in range(2)]
        for reader, _ in streams:
            assert (await reader.readline()).startswith(b"220 ")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["smtp"])
        assert (await reader.readline()).startswith(b"421 4.7.0")
        writer.close()
        for _, w in streams:
            w.close()


async def test_idle_client_is_disconnected_with_421(tmp_path: Path) -> None:
    async with running_server(tmp_path, {"smtp.command_timeout": 1}) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["smtp"])
        assert (await reader.readline()).startswith(b"220 ")
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"421 4.4.2")
        writer.close()


async def test_a_tls_handshake_failure_does_not_hurt_the_server(server: RunningServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["submissions"])
    writer.write(b"EHLO not-tls\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()

    def still_works() -> int:
        with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], context=server.client_tls) as client:
            return client.noop()[0]

    assert await in_thread(still_works) == 250
